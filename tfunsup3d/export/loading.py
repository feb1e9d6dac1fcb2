"""Model loading for the console scripts (export, demo, explain).

`--checkpoint` names a tfunsup3d checkpoint directory (its `config.yml` and
TF checkpoint, as `tfunsup3d-train` writes them), a TF checkpoint prefix in
one, or a reference `.pth` file (the authors' released checkpoints; network
sizes are inferred from the weights). Without `--checkpoint`, the config's
`checkpoint_dir` (joined with `checkpoint_name` when set, the reference's
test-config convention) is used.

Config values: those of the checkpoint (its `config.yml`, or the sizes
inferred from a `.pth`), overridden by the `--config` YAML file's keys and
then by the `--KEY=VALUE` flags given explicitly. Keys that fix the
networks' shapes (`SHAPE_KEYS`) must agree with a tfunsup3d checkpoint; any
mismatch is a one-line `UserError`.
"""

import os
from typing import Any, Dict, Optional

from absl import logging

from tfunsup3d import config as config_lib
from tfunsup3d.errors import UserError

# Config keys that fix the networks' variables (or what they were trained on).
SHAPE_KEYS = ('image_size', 'nf_depth', 'zdim_depth', 'nf_encoder', 'nf_conf',
              'zdim_conf', 'use_conf_map')
REFERENCE_IMAGE_SIZE = 64  # every released reference checkpoint.


def config_overrides(flag_values=None) -> Dict[str, Any]:
  """Config keys of the `--config` YAML file, then of explicit flags."""
  from tfunsup3d.tools import flags as tool_flags  # pylint: disable=g-import-not-at-top
  flag_values = flag_values if flag_values is not None else tool_flags.FLAGS
  values = {}
  path = flag_values[tool_flags.CONFIG_FLAG].value
  if path:
    values.update(config_lib.load_yaml(path))
  values.update(tool_flags.explicit_overrides(flag_values))
  return values


def resolve_checkpoint(checkpoint: Optional[str], cfg) -> str:
  """The checkpoint to load: `checkpoint`, else the config's
  `checkpoint_dir` (/ `checkpoint_name`)."""
  if checkpoint:
    return checkpoint
  path = cfg.checkpoint_dir
  if cfg.checkpoint_name:
    path = os.path.join(path, cfg.checkpoint_name)
  if not path or not os.path.exists(path):
    raise UserError(
        f'No checkpoint: pass --checkpoint=DIR_or_FILE.pth (a tfunsup3d '
        f'checkpoint directory or a reference .pth); the config\'s '
        f'checkpoint_dir{"/checkpoint_name" if cfg.checkpoint_name else ""} '
        f'({path}) does not exist.')
  return path


def _short(error: BaseException, limit: int = 300) -> str:
  text = ' '.join(str(error).split())
  return text if len(text) <= limit else text[:limit] + ' ...'


def _checkpoint_config(path: str) -> Optional[config_lib.Config]:
  directory = path if os.path.isdir(path) else os.path.dirname(path)
  cfg_path = os.path.join(directory, 'config.yml')
  if os.path.isfile(cfg_path):
    return config_lib.load(cfg_path)
  return None


def load_model(path: str, overrides: Optional[Dict[str, Any]] = None):
  """`Unsup3D.from_checkpoint(path, **overrides)` with one-line errors.

  Args:
    path: tfunsup3d checkpoint directory or prefix, or a reference `.pth`.
    overrides: config keys on top of the checkpoint's.

  Returns:
    The `Unsup3D` model.

  Raises:
    UserError: missing or unreadable checkpoint, or one that does not fit
      the config (network sizes, image size).
  """
  overrides = dict(overrides or {})
  is_file = os.path.isfile(path) and not path.endswith('.index')
  if not os.path.exists(path) and not os.path.exists(path + '.index'):
    raise UserError(f'Checkpoint not found: {path}')
  if os.path.isdir(path) and not os.path.isfile(
      os.path.join(path, 'checkpoint')):
    raise UserError(f'{path} is not a tfunsup3d checkpoint directory (no TF '
                    'checkpoint state file); pass a directory written by '
                    'tfunsup3d-train or a reference .pth file.')
  if not is_file:
    saved = _checkpoint_config(path)
    if saved is not None:
      given = config_lib.from_dict(overrides, base=saved)
      for key in SHAPE_KEYS:
        if getattr(given, key) != getattr(saved, key):
          raise UserError(
              f'Checkpoint {path} was trained with {key}={getattr(saved, key)}'
              f' but the config asks for {key}={getattr(given, key)}; drop '
              f'that override or use a checkpoint of that config.')
  from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
  try:
    model = Unsup3D.from_checkpoint(path, **overrides)
  except (ValueError, KeyError, OSError) as e:
    raise UserError(f'Cannot load checkpoint {path} with this config: '
                    f'{_short(e)}') from None
  except Exception as e:  # pylint: disable=broad-except
    # Reader errors (e.g. torch_format.CheckpointFormatError) are user input.
    if type(e).__module__.startswith('tfunsup3d'):
      raise UserError(f'Cannot read checkpoint {path}: {_short(e)}') from None
    raise
  if is_file and model.cfg.image_size != REFERENCE_IMAGE_SIZE:
    logging.warning('Reference checkpoints are trained at %dx%d; running %s '
                    'at image_size=%d.', REFERENCE_IMAGE_SIZE,
                    REFERENCE_IMAGE_SIZE, path, model.cfg.image_size)
  return model
