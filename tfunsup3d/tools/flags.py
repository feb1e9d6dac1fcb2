"""absl-flags plumbing shared by every tfunsup3d console script.

Every script takes `--config=FILE.yml` plus one `--KEY=VALUE` flag per field of
`tfunsup3d.config.Config`, e.g.

  tfunsup3d-train --config=configs/quickstart.yml --num_epochs=2

Values come, in increasing priority, from the `Config` defaults, the YAML file,
and the flags the user set explicitly (a flag left out never overrides the
YAML, even where its absl default differs). Flags of bool/int/float/str fields
are typed absl flags (`--use_conf_map=false`, `--nouse_conf_map`); optional and
list fields are string flags parsed as YAML (`--crop=[8,14,100,100]`,
`--crop=170`, `--test_data_dir=none`).

Scripts are written as

  def main(cfg: Config) -> None: ...
  def run() -> None: flags.run_main(main, 'train')

and report user errors (bad flag, missing file, invalid value) as one line
`tfunsup3d-<name>: error: <reason>` on stderr with exit status 2; success exits
0. Set TFUNSUP3D_DEBUG=1 to get the traceback instead.
"""

import dataclasses
import functools
import inspect
import os
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from absl import app
from absl import flags
# absl.logging defines --log_dir; import it before ours are defined, so that
# the `log_dir` config key adopts that flag instead of clashing with it.
from absl import logging  # pylint: disable=unused-import
import yaml

from tfunsup3d import config as config_lib
from tfunsup3d.errors import EXIT_USER_ERROR, UserError  # pylint: disable=unused-import

FLAGS = flags.FLAGS

CONFIG_FLAG = 'config'
PRINT_CONFIG_FLAG = 'print_config'
DEBUG_ENV = 'TFUNSUP3D_DEBUG'


# Errors that `main_wrapper` reports in one line instead of a traceback.
EXPECTED_ERRORS = (UserError, app.UsageError, flags.Error, ValueError,
                   FileNotFoundError, FileExistsError, NotADirectoryError,
                   IsADirectoryError, PermissionError)


# Help for the reference's keys (config.py comments only our additions).
_REFERENCE_HELP = {
    'model_name': 'Experiment name.',
    'run_train': 'Run training (reference run.py switch).',
    'run_test': 'Run testing (reference run.py switch).',
    'num_epochs': 'Number of training epochs.',
    'batch_size': 'Images per batch.',
    'checkpoint_dir': 'Directory of checkpoints (and by default logs).',
    'save_checkpoint_freq': 'Save a checkpoint every N epochs.',
    'keep_num_checkpoint': 'Keep the N newest checkpoints (-1: all).',
    'resume': 'Resume from the newest checkpoint in checkpoint_dir.',
    'use_logger': 'Write TensorBoard summaries.',
    'log_freq': 'Log visualisations every N iterations.',
    'archive_code': 'Archive the code with the run (reference key; unused).',
    'checkpoint_name': 'Checkpoint (in checkpoint_dir) to load for testing.',
    'test_result_dir': 'Where testing writes its results.',
    'seed': 'Random seed.',
    'num_workers': 'Parallel data-loading calls.',
    'image_size': 'Side of the square network input, in pixels.',
    'crop': 'Crop before resizing: int = centre crop, or [y0, x0, h, w].',
    'load_gt_depth': 'Load ground-truth depth paired with each image.',
    'paired_data_dir_names': 'Sub-directories of the image/depth pairs.',
    'paired_data_filename_diff': 'File-name parts to swap image -> depth.',
    'train_val_data_dir': 'Data set root with train/ and val/.',
    'test_data_dir': 'Test images directory.',
    'min_depth': 'Minimum canonical depth.',
    'max_depth': 'Maximum canonical depth.',
    'border_depth': 'Depth at the image border (default 0.7*max + 0.3*min).',
    'min_amb_light': 'Minimum ambient light coefficient.',
    'max_amb_light': 'Maximum ambient light coefficient.',
    'min_diff_light': 'Minimum diffuse light coefficient.',
    'max_diff_light': 'Maximum diffuse light coefficient.',
    'xyz_rotation_range': 'View rotation range (-r, r), degrees.',
    'xy_translation_range': 'View x/y translation range (-t, t), 3D units.',
    'z_translation_range': 'View z translation range (-t, t), 3D units.',
    'use_conf_map': 'Predict confidence maps (netC) to weight the losses.',
    'lam_perc': 'Weight of the perceptual (VGG16) loss.',
    'lam_flip': 'Weight of the flipped-reconstruction loss.',
    'lam_flip_start_epoch': 'Epoch from which the flip loss is used.',
    'lam_depth_sm': 'Weight of the depth smoothness loss.',
    'lr': 'Adam learning rate.',
    'rot_center_depth': 'Depth of the rotation centre (default mean depth).',
    'fov': 'Camera field of view, degrees.',
    'tex_cube_size': 'Neural-renderer texture size (reference key; unused).',
    'renderer_min_depth': 'Renderer near plane.',
    'renderer_max_depth': 'Renderer far plane.',
}


@functools.lru_cache(maxsize=None)
def _field_comments() -> Dict[str, str]:
  """Help texts from config.py: the field's trailing comment, and section."""
  try:
    lines = inspect.getsource(config_lib.Config).splitlines()
  except (OSError, TypeError):
    return {}
  helps = {}
  section = ''
  for line in lines:
    m = re.match(r'\s*# --- (.*?) ---\s*$', line)
    if m:
      section = m.group(1)
      continue
    m = re.match(r'\s{2}(\w+):[^=#]+=([^#]*)(?:#\s*(.*))?$', line)
    if m:
      name, comment = m.group(1), (m.group(3) or '').strip()
      helps[name] = comment or _REFERENCE_HELP.get(
          name, name.replace('_', ' ').capitalize() + '.')
      if section:
        helps[name] += f' [{section}]'
  return helps


def _field_help(name: str) -> str:
  return _field_comments().get(
      name, _REFERENCE_HELP.get(name, name.replace('_', ' ') + '.'))


def _default_as_text(value: Any) -> Optional[str]:
  if value is None:
    return None
  return yaml_flow(value)


def yaml_flow(value: Any) -> str:
  """One-line YAML of `value`, e.g. '[image, depth]'."""
  text = yaml.safe_dump(value, default_flow_style=True).strip()
  return text[:-len('...')].strip() if text.endswith('...') else text


def define_config_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """Defines `--config`, `--print_config` and one flag per Config field.

  Idempotent. A flag that already exists under a field's name (absl.logging's
  `--log_dir`) is adopted: its value feeds the config key of that name.

  Args:
    flag_values: the absl FlagValues to define them in (the global FLAGS by
      default; tests pass their own).
  """
  if CONFIG_FLAG not in flag_values:
    flags.DEFINE_string(
        CONFIG_FLAG, None,
        'YAML config file (a reference experiments/*.yml works unchanged). '
        'Flags set on the command line override its values.',
        flag_values=flag_values)
  if PRINT_CONFIG_FLAG not in flag_values:
    flags.DEFINE_boolean(
        PRINT_CONFIG_FLAG, False,
        'Print the effective config (YAML, derived values filled in) and exit.',
        flag_values=flag_values)
  defaults = config_lib.Config()
  for field in dataclasses.fields(config_lib.Config):
    name = field.name
    default = getattr(defaults, name)
    help_text = _field_help(name)
    if name in flag_values:
      flag = flag_values[name]
      if help_text not in (flag.help or ''):
        flag.help = f'{help_text} (Config key; shared with absl: {flag.help})'
      continue
    types, optional = config_lib.field_type(name)
    kwargs = dict(flag_values=flag_values)
    if not optional and types == (bool,):
      flags.DEFINE_boolean(name, default, help_text, **kwargs)
    elif not optional and types == (int,):
      flags.DEFINE_integer(name, default, help_text, **kwargs)
    elif not optional and types == (float,):
      flags.DEFINE_float(name, default, help_text, **kwargs)
    elif not optional and types == (str,):
      flags.DEFINE_string(name, default, help_text, **kwargs)
    else:
      if types == (str,):
        value_help = 'Value: a string, or none.'
      else:
        kinds = ' or '.join(config_lib._type_name(t) for t in types)  # pylint: disable=protected-access
        value_help = f'Value: {kinds}{" or none" if optional else ""} (YAML).'
      flags.DEFINE_string(name, _default_as_text(default),
                          f'{help_text} {value_help}', **kwargs)


def _as_flag_values(argv_or_flags: Union[None, flags.FlagValues, Sequence[str]]
                    ) -> flags.FlagValues:
  if argv_or_flags is None:
    argv_or_flags = FLAGS
  if isinstance(argv_or_flags, flags.FlagValues):
    if not argv_or_flags.is_parsed():
      raise RuntimeError('config_from_flags: the FlagValues are not parsed.')
    return argv_or_flags
  argv = list(argv_or_flags)
  if not argv or argv[0].startswith('-'):
    argv = ['tfunsup3d'] + argv  # argv[0] is the program name.
  flag_values = flags.FlagValues()
  define_config_flags(flag_values)
  rest = flag_values(argv)
  if len(rest) > 1:
    raise app.UsageError(f'Unexpected argument(s): {" ".join(rest[1:])}')
  return flag_values


def explicit_overrides(flag_values: flags.FlagValues) -> Dict[str, Any]:
  """Config values of the flags set explicitly (FLAGS[name].present)."""
  return {
      name: flag_values[name].value
      for name in config_lib.field_names()
      if name in flag_values and flag_values[name].present
  }


def config_from_flags(
    argv_or_flags: Union[None, flags.FlagValues, Sequence[str]] = None
) -> config_lib.Config:
  """Builds the Config: defaults <- `--config` YAML <- explicitly set flags.

  Args:
    argv_or_flags: parsed absl FlagValues (default: the global FLAGS, parsed by
      `app.run`), or a command line (list of str, program name first; it is
      parsed into fresh FlagValues, so the global FLAGS stay untouched).

  Returns:
    The Config (not `resolved()`).

  Raises:
    FileNotFoundError: the `--config` file does not exist.
    ValueError: unknown key in the YAML, or a value of the wrong type.
    absl.flags.Error: unknown flag or bad flag value (command-line form only).
  """
  flag_values = _as_flag_values(argv_or_flags)
  path = flag_values[CONFIG_FLAG].value or None
  return config_lib.load(path, explicit_overrides(flag_values))


def _one_line(error: BaseException) -> str:
  if isinstance(error, OSError) and error.strerror:
    text = error.strerror + (f': {error.filename}' if error.filename else '')
  else:
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:
      text = str(error.args[0])
  text = ' '.join(part.strip() for part in text.splitlines() if part.strip())
  return text or type(error).__name__


def fail(prog: str, error: Union[str, BaseException]) -> None:
  """Writes `<prog>: error: <reason>` (one line) to stderr and exits 2."""
  reason = error if isinstance(error, str) else _one_line(error)
  sys.stdout.flush()
  sys.stderr.write(f'{prog}: error: {reason}\n')
  sys.stderr.flush()
  sys.exit(EXIT_USER_ERROR)


def program_name(name: Optional[str] = None) -> str:
  if name:
    return name if name.startswith('tfunsup3d') else f'tfunsup3d-{name}'
  base = os.path.basename(sys.argv[0] if sys.argv else '') or 'tfunsup3d'
  base = os.path.splitext(base)[0]
  return base if base.startswith('tfunsup3d') else f'tfunsup3d-{base}'


def _debug() -> bool:
  return os.environ.get(DEBUG_ENV, '').lower() not in ('', '0', 'false', 'no')


def main_wrapper(fn: Callable[[config_lib.Config], Optional[int]],
                 name: Optional[str] = None) -> Callable[[List[str]], int]:
  """Turns `fn(cfg)` into an absl `main(argv)`.

  The returned main builds the Config from the parsed global FLAGS and checks
  that it resolves, prints it and exits if `--print_config` is set, else runs
  `fn(cfg)` with the Config as given (call `cfg.resolved()` for derived
  values). Expected user
  errors (EXPECTED_ERRORS) become one line `tfunsup3d-<name>: error: <reason>`
  on stderr and exit status 2; any other exception is a bug and keeps its
  traceback.

  Args:
    fn: takes the Config; returns None (success) or an int exit status.
    name: script name without the `tfunsup3d-` prefix, e.g. 'train'.

  Returns:
    `main(argv) -> int` for `absl.app.run`.
  """
  prog = program_name(name)

  @functools.wraps(fn)
  def main(argv: List[str]) -> int:
    try:
      if len(argv) > 1:
        raise app.UsageError(
            f'unexpected argument(s): {" ".join(argv[1:])} (flags are '
            f'--KEY=VALUE; see --helpfull)')
      cfg = config_from_flags(FLAGS)
      resolved = cfg.resolved()  # Validates (e.g. min_depth < max_depth).
      if PRINT_CONFIG_FLAG in FLAGS and FLAGS[PRINT_CONFIG_FLAG].value:
        sys.stdout.write(resolved.to_yaml())
        return 0
      status = fn(cfg)
    except EXPECTED_ERRORS as e:
      if _debug():
        raise
      fail(prog, e)
    except KeyboardInterrupt:
      fail(prog, 'interrupted')
    return int(status or 0)

  return main


def make_flags_parser(prog: str) -> Callable[[List[str]], List[str]]:
  """An absl `flags_parser` whose errors are one line and exit status 2.

  absl's help flags (--help, --helpfull, --helpxml) exit with status 1 after
  printing the help; here they exit 0, as a requested help is a success.
  """

  def parse(argv: List[str]) -> List[str]:
    try:
      return FLAGS(argv)
    except (flags.Error, OSError) as e:  # OSError: an unreadable --flagfile.
      fail(prog, e)
    except SystemExit as e:
      if e.code == 1:  # Raised by the help flags, and only by them, here.
        raise SystemExit(0) from None
      raise
    return []  # Unreachable; fail() exits.

  return parse


def run_main(fn: Callable[[config_lib.Config], Optional[int]], name: str,
             argv: Optional[List[str]] = None) -> None:
  """Runs `fn(cfg)` as console script `tfunsup3d-<name>` via absl.app.run."""
  define_config_flags(FLAGS)
  # Make the config flags "key flags" of the main module, so the short --help
  # lists them too (it shows the main module's key flags only).
  main_module = sys.argv[0] if sys.argv else '__main__'
  for flag_name in [CONFIG_FLAG, PRINT_CONFIG_FLAG] + config_lib.field_names():
    FLAGS.register_key_flag_for_module(main_module, FLAGS[flag_name])
  prog = program_name(name)
  app.run(main_wrapper(fn, name), argv=argv, flags_parser=make_flags_parser(prog))


def load_model(checkpoint: Optional[str], cfg: config_lib.Config,
               flag_values: flags.FlagValues = FLAGS):
  """`(model, path)`: `tfunsup3d.saving.load` of `checkpoint` (default: the
  one `cfg` names), the `--config` file under the checkpoint's own config and
  the flags set explicitly over it."""
  from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
  path = checkpoint or saving.path_from_config(cfg)
  file_cfg = config_lib.load(flag_values[CONFIG_FLAG].value or None)
  return saving.load(path, file_cfg, **explicit_overrides(flag_values)), path


define_config_flags(FLAGS)
