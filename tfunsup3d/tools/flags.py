"""absl-flags plumbing shared by every tfunsup3d console script.

Every script takes `--config=FILE.yml` plus one `--KEY=VALUE` flag per field of
`tfunsup3d.config.Config`, e.g.

  tfunsup3d-train --config=configs/quickstart.yml --num_epochs=2

`--config` may be given more than once: each file overlays the ones before it
(`--config=configs/quickstart.yml --config=configs/loose_framing.yml`).
Values come, in increasing priority, from the `Config` defaults, the YAML files,
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

Help: a flag's help is its Config field's metadata (`config.field_help`).
`--help` shows the script module's docstring and its key flags: the flags the
script (or a library helper such as tfunsup3d.demo.cli) defines, the config
flags, --progress and --verbosity (`register_key_flags`); `--helpfull` shows
every flag. With `--config=FILE`, help shows the values FILE sets as the
flags' defaults (the last file's value where several set a key).
`--progress` (auto|bar|lines|none) sets the process-wide progress display
(tfunsup3d.progress).
"""

import contextlib
import dataclasses
import functools
import os
import signal
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from absl import app
from absl import flags
# absl.logging defines --log_dir; import it before ours are defined, so that
# the `log_dir` config key adopts that flag instead of clashing with it.
from absl import logging  # pylint: disable=unused-import
import yaml

from tfunsup3d import compile_cache
from tfunsup3d import config as config_lib
from tfunsup3d import errors
from tfunsup3d import progress
from tfunsup3d.tools import quiet_import
from tfunsup3d.errors import EXIT_USER_ERROR, UserError  # pylint: disable=unused-import

FLAGS = flags.FLAGS

CONFIG_FLAG = 'config'
PRINT_CONFIG_FLAG = 'print_config'
PROGRESS_FLAG = 'progress'
DEBUG_ENV = 'TFUNSUP3D_DEBUG'


# Errors that `main_wrapper` reports in one line instead of a traceback.
EXPECTED_ERRORS = (UserError, app.UsageError, flags.Error, ValueError,
                   FileNotFoundError, FileExistsError, NotADirectoryError,
                   IsADirectoryError, PermissionError)


def _default_as_text(value: Any) -> Optional[str]:
  if value is None:
    return None
  return yaml_flow(value)


def yaml_flow(value: Any) -> str:
  """One-line YAML of `value`, e.g. '[image, depth]'."""
  text = yaml.safe_dump(value, default_flow_style=True).strip()
  return text[:-len('...')].strip() if text.endswith('...') else text


def define_config_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """Defines `--config`, `--print_config`, `--progress` and one flag per
  Config field.

  Idempotent. A flag that already exists under a field's name (absl.logging's
  `--log_dir`) is adopted: its value feeds the config key of that name.

  Args:
    flag_values: the absl FlagValues to define them in (the global FLAGS by
      default; tests pass their own).
  """
  if CONFIG_FLAG not in flag_values:
    flags.DEFINE_multi_string(
        CONFIG_FLAG, None,
        'YAML config file (a reference experiments/*.yml works unchanged). '
        'Give it more than once to overlay files: each file\'s keys override '
        'the files before it. Flags set on the command line override them '
        'all.', flag_values=flag_values)
  if PRINT_CONFIG_FLAG not in flag_values:
    flags.DEFINE_boolean(
        PRINT_CONFIG_FLAG, False,
        'Print the effective config (YAML, derived values filled in) and exit.',
        flag_values=flag_values)
  if PROGRESS_FLAG not in flag_values:
    flags.DEFINE_enum(
        PROGRESS_FLAG, 'auto', progress.MODES,
        'Progress of long work on stderr (synth per image, train per epoch: '
        'step, images/s, ETA, losses; test per batch, demo per image, export '
        'per stage): auto = a bar on a terminal, a plain line every tenth or '
        '30 s elsewhere (CI logs), nothing with --verbosity=-1 or lower; '
        'bar; lines; none. A display setting, not a config key.',
        flag_values=flag_values)
  defaults = config_lib.Config()
  for field in dataclasses.fields(config_lib.Config):
    name = field.name
    default = getattr(defaults, name)
    help_text = config_lib.field_help(name)
    if name in flag_values:
      flag = flag_values[name]
      if help_text not in (flag.help or ''):
        flag.help = f'{help_text} (Config key; shared with absl: {flag.help})'
      continue
    _define_field_flag(name, default, help_text, flag_values)


_PLAIN_DEFINES = {bool: flags.DEFINE_boolean, int: flags.DEFINE_integer,
                  float: flags.DEFINE_float, str: flags.DEFINE_string}


def _is_plain_flag(name: str) -> bool:
  """Whether field `name`'s flag holds the typed value (else YAML text)."""
  types, optional = config_lib.field_type(name)
  return not optional and len(types) == 1 and types[0] in _PLAIN_DEFINES


def _define_field_flag(name: str, default: Any, help_text: str,
                       flag_values: flags.FlagValues) -> None:
  """A typed flag for a bool/int/float/str field, else a string flag whose
  text is parsed as YAML."""
  types, optional = config_lib.field_type(name)
  if _is_plain_flag(name):
    _PLAIN_DEFINES[types[0]](name, default, help_text, flag_values=flag_values)
    return
  if types == (str,):
    value_help = 'Value: a string, or none.'
  else:
    kinds = ' or '.join(config_lib._type_name(t) for t in types)  # pylint: disable=protected-access
    value_help = f'Value: {kinds}{" or none" if optional else ""} (YAML).'
  flags.DEFINE_string(name, _default_as_text(default),
                      f'{help_text} {value_help}', flag_values=flag_values)


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
    FileNotFoundError: a `--config` file does not exist.
    ValueError: unknown key in the YAML, or a value of the wrong type.
    absl.flags.Error: unknown flag or bad flag value (command-line form only).
  """
  flag_values = _as_flag_values(argv_or_flags)
  return config_lib.load(config_paths(flag_values),
                         explicit_overrides(flag_values))


def config_paths(flag_values: flags.FlagValues = FLAGS) -> List[str]:
  """The `--config` files in the order given (later ones overlay)."""
  return list(flag_values[CONFIG_FLAG].value or [])


def _one_line(error: BaseException) -> str:
  if isinstance(error, OSError) and error.strerror:
    text = error.strerror + (f': {error.filename}' if error.filename else '')
  else:
    text = str(error)
    if isinstance(error, KeyError) and len(error.args) == 1:
      text = str(error.args[0])
  text = ' '.join(part.strip() for part in text.splitlines() if part.strip())
  return text or type(error).__name__


def fail(prog: str, error: Union[str, BaseException],
         status: int = EXIT_USER_ERROR) -> None:
  """Writes `<prog>: error: <reason>` (one line) to stderr and exits with
  `status` (2)."""
  reason = error if isinstance(error, str) else _one_line(error)
  progress.close_open()  # The message starts on a line of its own.
  sys.stdout.flush()
  sys.stderr.write(f'{prog}: error: {reason}\n')
  sys.stderr.flush()
  sys.exit(status)


@contextlib.contextmanager
def stop_on_signal(prog: str, enabled: bool = True):
  """Turns a first Ctrl-C (SIGINT) or SIGTERM into a request to stop.

  Yields `stop() -> 'SIGINT' | 'SIGTERM' | None` for `loop.train(stop=...)`,
  which saves a checkpoint after the step in progress and stops. The first
  signal prints one line saying so; a second Ctrl-C or SIGTERM raises
  KeyboardInterrupt at once (nothing saved). Outside the main thread, or
  with `enabled` false (multi-worker runs, whose workers must stop
  together), signals keep their default handling and `stop()` is None.
  """
  if not enabled or threading.current_thread() is not threading.main_thread():
    yield lambda: None
    return
  received = []

  def handler(signum, frame):
    del frame
    if received:
      raise KeyboardInterrupt
    received.append(signal.Signals(signum).name)
    # A line of its own, after any progress bar (not closed here: the
    # handler may run while the main thread is inside it).
    sys.stderr.write(f'\n{prog}: {received[0]}: saving a checkpoint after this '
                     'step, then stopping (Ctrl-C again: stop now, without '
                     'saving)\n')
    sys.stderr.flush()

  previous = {s: signal.signal(s, handler)
              for s in (signal.SIGINT, signal.SIGTERM)}
  try:
    yield lambda: received[0] if received else None
  finally:
    for s, old in previous.items():
      signal.signal(s, old)


def stopped(prog: str, error: Exception, resume: bool) -> int:
  """Reports a `loop.TrainingStopped` (one line on stderr); returns the
  exit status of a process ended by that signal, 128 + its number."""
  again = ('run the same command to resume' if resume else
           'add --resume=true to resume')
  progress.close_open()
  sys.stdout.flush()
  sys.stderr.write(f'{prog}: {error}; {again}.\n')
  sys.stderr.flush()
  number = getattr(signal.Signals, str(error.reason), signal.SIGINT)
  return 128 + int(number)


def train_stoppable(cfg: config_lib.Config, name: str):
  """`loop.train(cfg)` with a first Ctrl-C or SIGTERM turned into a saved
  stop (`stop_on_signal`; not in multi-worker runs).

  Returns:
    (the training result, 0), or (None, the exit status) after a stop,
    reported by `stopped`.
  """
  from tfunsup3d.train import loop  # pylint: disable=g-import-not-at-top
  prog = program_name(name)
  try:
    with stop_on_signal(prog, cfg.strategy != 'multi_worker') as stop:
      return loop.train(cfg, stop=stop), 0
  except loop.TrainingStopped as e:
    return None, stopped(prog, e, cfg.resume)


def program_name(name: Optional[str] = None) -> str:
  if name:
    return name if name.startswith('tfunsup3d') else f'tfunsup3d-{name}'
  base = os.path.basename(sys.argv[0] if sys.argv else '') or 'tfunsup3d'
  base = os.path.splitext(base)[0]
  return base if base.startswith('tfunsup3d') else f'tfunsup3d-{base}'


def _debug() -> bool:
  return os.environ.get(DEBUG_ENV, '').lower() not in ('', '0', 'false', 'no')


def check_local_flags(flag_values: flags.FlagValues) -> None:
  """Refuses a URL in any flag set on the command line that is not a config
  key (`--checkpoint`, `--input`, `--output_dir`, ...; config keys are
  checked by `Config.resolved`, wherever they were set).

  Raises:
    UserError: naming the flag and its value.
  """
  keys = set(config_lib.field_names())
  for name in flag_values:
    flag = flag_values[name]
    if name in keys or not flag.present:
      continue
    values = flag.value if isinstance(flag.value, list) else [flag.value]
    for value in values:
      if isinstance(value, str) and not config_lib.is_local_path(value):
        raise UserError(f'--{name} must be {config_lib.LOCAL_PATH}. '
                        f'Received: --{name}={value}')


def refuse_unused(names: Sequence[str], enabled: bool, enabler: str,
                  purpose: str, flag_values: flags.FlagValues = FLAGS
                  ) -> None:
  """Refuses flags set on the command line that only matter when
  `enabler` is on, when it is off: they would be ignored without a word.
  A boolean flag counts only when set true (`--nomp4` asks for nothing).

  Raises:
    UserError: naming the flags and what to add.
  """
  if enabled:
    return
  stray = [f'--{name}' for name in names if flag_values[name].present and
           flag_values[name].value is not False]
  if stray:
    raise UserError(f'{", ".join(stray)} without {enabler}: add {enabler} '
                    f'{purpose}.')


def main_wrapper(fn: Callable[[config_lib.Config], Optional[int]],
                 name: Optional[str] = None) -> Callable[[List[str]], int]:
  """Turns `fn(cfg)` into an absl `main(argv)`.

  The returned main builds the Config from the parsed global FLAGS and checks
  that it resolves, prints it and exits if `--print_config` is set, else runs
  `fn(cfg)` with the Config as given (call `cfg.resolved()` for derived
  values). Expected user
  errors (EXPECTED_ERRORS) and writes the disk refuses (full, read-only:
  `errors.is_disk_failure`) become one line `tfunsup3d-<name>: error:
  <reason>` on stderr and exit status 2; any other exception is a bug and
  keeps its traceback. TensorFlow's notices (start-up and runtime C++ log
  lines) are held back (`quiet_import`) unless TFUNSUP3D_DEBUG is set.

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
      check_local_flags(FLAGS)
      cfg = config_from_flags(FLAGS)
      resolved = cfg.resolved()  # Validates (e.g. batch_size >= 1).
      if PROGRESS_FLAG in FLAGS:
        progress.set_mode(FLAGS[PROGRESS_FLAG].value)
      if PRINT_CONFIG_FLAG in FLAGS and FLAGS[PRINT_CONFIG_FLAG].value:
        sys.stdout.write(resolved.to_yaml())
        return 0
      with (contextlib.nullcontext() if _debug() else
            quiet_import.held_back()):  # TF's C++ notices
        status = fn(cfg)
      if not status or status > 128:  # Success, or stopped by a signal.
        compile_cache.publish()  # What this run compiled, for later runs.
    except EXPECTED_ERRORS as e:
      if _debug():
        raise
      fail(prog, e)
    except KeyboardInterrupt:
      fail(prog, 'interrupted', 128 + signal.SIGINT)
    except Exception as e:  # pylint: disable=broad-except
      memory = errors.out_of_memory(e)
      if _debug() or not (memory or errors.is_disk_failure(e)):
        raise  # A bug: keep the traceback.
      where = getattr(e, 'filename', None)
      fail(prog, memory or f'Cannot write{f" {where}" if where else ""}: '
           f'{errors.write_failure(e, "the output folder")}')
    return int(status or 0)

  return main


_HELP_FLAGS = ('help', '?', 'helpshort', 'helpfull', 'helpxml')


def _flag_names(argv: Sequence[str]) -> List[Tuple[int, str, Optional[str]]]:
  """(index, name, value or None) of each `-name[=value]` in argv[1:]."""
  found = []
  for i, arg in enumerate(argv[1:], 1):
    if arg == '--':
      break
    if arg.startswith('-'):
      name, eq, value = arg.lstrip('-').partition('=')
      found.append((i, name, value if eq else None))
  return found


def help_config_paths(argv: Sequence[str]) -> List[str]:
  """The `--config` files of a command line that asks for help, else []."""
  found = _flag_names(argv)
  if not any(name in _HELP_FLAGS for _, name, _ in found):
    return []
  paths = []
  for i, name, value in found:
    if name == CONFIG_FLAG:
      paths.append(value if value is not None else (
          argv[i + 1] if i + 1 < len(argv) else ''))
  return [p for p in paths if p]


def show_file_values(paths: Sequence[str],
                     flag_values: flags.FlagValues = FLAGS) -> None:
  """Makes the defaults `--help` shows the values the config files set.

  Each flag of a key that a file of `paths` sets gets the value it has after
  all of them (`config.load`) as its default and `(value from PATH)`, the
  last file that sets it, at the end of its help.

  Raises:
    FileNotFoundError / ValueError: unreadable file, unknown key, bad value.
  """
  cfg = config_lib.load(paths)
  source = {name: path for path in paths
            for name in config_lib.load_yaml(path)}
  for name, path in source.items():
    value = getattr(cfg, name)
    flag_values.set_default(
        name, value if _is_plain_flag(name) else _default_as_text(value))
    flag_values[name].help += f' (value from {path})'


def _enable_compile_cache() -> None:
  """XLA's persistent cache per the config's `xla_cache_dir`
  (`compile_cache.enable`), once the flags are parsed. It must happen here,
  not in main: between the flags parser and main, absl's `app.run` set-up
  makes TF read `TF_XLA_FLAGS` (measured: set in main, the cache stays
  empty). Only the two keys are read: checking the config is
  `main_wrapper`'s, which reports a bad one (and runs nothing to cache)."""
  try:
    cfg = config_from_flags(FLAGS)
  except EXPECTED_ERRORS:
    return
  compile_cache.enable(cfg.xla_cache_dir, cfg.deterministic)


def make_flags_parser(prog: str) -> Callable[[List[str]], List[str]]:
  """An absl `flags_parser` whose errors are one line and exit status 2.

  absl's help flags (--help, --helpfull, --helpxml) exit with status 1 after
  printing the help; here they exit 0, as a requested help is a success.
  With `--config=FILE`, the help shows the values FILE sets as the defaults.
  """

  def parse(argv: List[str]) -> List[str]:
    try:
      paths = help_config_paths(argv)
      if paths:
        show_file_values(paths)
      rest = FLAGS(argv)
      _enable_compile_cache()
      return rest
    except (flags.Error, OSError, ValueError) as e:  # OSError: --flagfile.
      fail(prog, e)
    except SystemExit as e:
      if e.code == 1:  # Raised by the help flags, and only by them, here.
        raise SystemExit(0) from None
      raise
    return []  # Unreachable; fail() exits.

  return parse


def _flags_of_script(module: str, script_module: str) -> bool:
  """Whether flags defined in `module` are the script's: its own, the
  config's and those of library helpers (tfunsup3d.demo.cli), but not those
  of another console script imported into the process."""
  if module in (script_module, sys.argv[0] if sys.argv else ''):
    return True
  if not module.startswith('tfunsup3d.'):
    return False
  other_script = (module.startswith('tfunsup3d.tools.') and
                  callable(getattr(sys.modules.get(module), 'run', None)))
  return not other_script


def register_key_flags(script_module: str,
                       flag_values: flags.FlagValues = FLAGS) -> List[str]:
  """Makes the script's flags key flags of the main module, which the short
  `--help` lists (absl lists the main module's key flags only).

  Generic: every flag defined in `script_module` (the module of the script's
  main function) or in a tfunsup3d library module, the config flags and
  absl's --verbosity.

  Returns:
    The names registered.
  """
  main_module = sys.argv[0] if sys.argv else '__main__'
  names = [CONFIG_FLAG, PRINT_CONFIG_FLAG, PROGRESS_FLAG, 'verbosity']
  for module, module_flags in flag_values.flags_by_module_dict().items():
    if _flags_of_script(module, script_module):
      names += [f.name for f in module_flags]
  names = [n for n in dict.fromkeys(names) if n in flag_values]
  for name in names:
    flag_values.register_key_flag_for_module(main_module, flag_values[name])
  return names


def run_main(fn: Callable[[config_lib.Config], Optional[int]], name: str,
             argv: Optional[List[str]] = None) -> None:
  """Runs `fn(cfg)` as console script `tfunsup3d-<name>` via absl.app.run.

  `--help` shows the docstring of `fn`'s module and its key flags
  (`register_key_flags`): the script's own flags and the config's.
  """
  define_config_flags(FLAGS)
  register_key_flags(fn.__module__)
  main = sys.modules.get('__main__')
  if main is not None and not main.__doc__:  # A console-script wrapper.
    main.__doc__ = sys.modules[fn.__module__].__doc__
  prog = program_name(name)
  app.run(main_wrapper(fn, name), argv=argv, flags_parser=make_flags_parser(prog))


def check_checkpoint_exists(path: str) -> None:
  """Fails on a checkpoint path that does not exist (a TF checkpoint
  prefix exists when its `.index` file does) before TensorFlow loads, so
  that a mistyped path costs no start-up; `saving.load` checks the rest.

  Raises:
    UserError: naming the path.
  """
  base = path[:-len('.index')] if path.endswith('.index') else path
  if not (os.path.exists(base) or os.path.exists(base + '.index')):
    raise UserError(f'Checkpoint not found: {path} (no such file or '
                    'directory)')


def load_model(checkpoint: Optional[str], cfg: config_lib.Config,
               flag_values: flags.FlagValues = FLAGS,
               flag: str = 'checkpoint'):
  """`(model, path)`: `tfunsup3d.saving.load` of `checkpoint` (default: the
  one `cfg` names), the `--config` file under the checkpoint's own config and
  the flags set explicitly over it. `flag`: the script's flag that gives
  `checkpoint`, named when there is none."""
  if checkpoint:
    check_checkpoint_exists(checkpoint)
  from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
  try:
    path = checkpoint or saving.path_from_config(cfg)
  except saving.CheckpointError as e:  # A script with --checkpoint: say so.
    raise saving.CheckpointError(
        f'{e} Or pass --{flag}=DIR_or_FILE.pth.') from None
  file_cfg = config_lib.load(config_paths(flag_values))
  return saving.load(path, file_cfg, **explicit_overrides(flag_values)), path


define_config_flags(FLAGS)
