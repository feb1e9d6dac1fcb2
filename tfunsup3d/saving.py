"""What a saved Unsup3D model is: its files, its config, one way to load it.

`load(path, defaults=None, **overrides)` builds an `Unsup3D` from any of

* a tfunsup3d checkpoint directory: `config.yml` (`CONFIG_FILE`) and TF
  checkpoints `ckpt-N` whose root object holds the model under `model`, as
  `tfunsup3d-train` and `save(model, directory)` write it;
* a TF checkpoint prefix in such a directory (`results/run/ckpt-3`);
* a `.pth` file in either torch container: the authors' released checkpoints
  (network sizes inferred from the weights) or one `save(model, 'x.pth')`
  wrote, which also carries the config as YAML text under `PTH_CONFIG_KEY`
  (torch and the authors' loader read only netD .. netC and ignore it);
* a SavedModel version directory `tfunsup3d-export` wrote (config from its
  `assets/tfunsup3d.json`, weights from its variables).

The one merge rule: `defaults` (a Config, e.g. a `--config` file; the Config
defaults when None) < the checkpoint's own config < `overrides`. Overrides
that contradict a network shape the checkpoint fixes (`SHAPE_KEYS`) raise
`CheckpointError` naming the key and both values.

A checkpoint directory whose newest checkpoint cannot be read (truncated,
missing index, ...) loads the newest one that can, with one warning line
naming both (`read_newest`, which training's resume uses too); when none can,
`CheckpointError`.

```python
from tfunsup3d import saving

model = saving.load('results/celeba', min_depth=0.95)
saving.save(model, 'celeba.pth')          # reference format + config
saving.load('celeba.pth').cfg.min_depth  # 0.95
```
"""

import os
import re
import shutil
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
import yaml

from tfunsup3d import config as config_lib
from tfunsup3d.errors import CheckpointError
from tfunsup3d.model import NETWORK_NAMES, Unsup3D

CONFIG_FILE = 'config.yml'
PREFIX = 'ckpt'  # TF checkpoints are `<directory>/ckpt-<N>`.
PTH_CONFIG_KEY = 'tfunsup3d_config'  # YAML text of the config in a .pth.
SAVED_MODEL_FILE = 'saved_model.pb'
REFERENCE_IMAGE_SIZE = 64  # every released reference checkpoint.
# Config keys that fix the networks' variables (or what they were trained on).
SHAPE_KEYS = ('image_size', 'nf_depth', 'zdim_depth', 'nf_encoder', 'nf_conf',
              'zdim_conf', 'use_conf_map')
# Keys that say where and how a run reads data and writes results: a test
# run takes them from its own config, never from the checkpoint's. Every
# other key is a model key (how the weights were trained and decompose).
RUN_KEYS = ('checkpoint_dir', 'checkpoint_name', 'test_result_dir',
            'test_data_dir', 'train_val_data_dir', 'load_gt_depth',
            'batch_size', 'crop', 'paired_data_dir_names',
            'paired_data_filename_diff', 'num_workers', 'jit_compile',
            'deterministic', 'seed', 'xla_cache_dir')
_REASON_CHARS = 200


def _short(error: BaseException) -> str:
  text = ' '.join(str(error).split()) or type(error).__name__
  return text if len(text) <= _REASON_CHARS else text[:_REASON_CHARS] + ' ...'


def write_atomic(path: str, write: Callable[[str], Any]):
  """`write(tmp)` writes a temporary file beside `path`, which is then
  renamed to `path`; a failed write (a full disk) leaves neither."""
  tmp = f'{path}.tmp-{os.getpid()}'
  try:
    write(tmp)
    os.replace(tmp, path)
  except OSError as e:
    if os.path.exists(tmp):
      os.remove(tmp)
    if e.filename == tmp:  # Name the file asked for in messages.
      e.filename = path
    raise


def write_text_atomic(path: str, text: str):
  """Writes `text` to `path` via a temporary file and a rename."""

  def write(tmp):
    with open(tmp, 'w', encoding='utf-8') as f:
      f.write(text)

  write_atomic(path, write)


# --- the merge rule ---------------------------------------------------------


def merge_config(own: Mapping[str, Any], source: str,
                 defaults: Optional[config_lib.Config] = None,
                 overrides: Optional[Mapping[str, Any]] = None,
                 fixed: Sequence[str] = SHAPE_KEYS) -> config_lib.Config:
  """`defaults` < `own` (the checkpoint's config) < `overrides`.

  Args:
    own: config keys the checkpoint carries.
    source: the checkpoint, for messages.
    defaults: the Config under the checkpoint's (None: Config defaults).
    overrides: config keys over it.
    fixed: the keys of `own` the checkpoint's weights fix.

  Raises:
    CheckpointError: an override contradicts a fixed key.
  """
  try:
    cfg = config_lib.from_dict(dict(own), base=defaults)
  except ValueError as e:
    raise CheckpointError(f'The config of {source} does not load: '
                          f'{_short(e)}') from None
  given = config_lib.from_dict(dict(overrides or {}), base=cfg)
  for key in fixed:
    if key in own and getattr(given, key) != getattr(cfg, key):
      raise CheckpointError(
          f'{source} was trained with {key}={getattr(cfg, key)} but '
          f'{key}={getattr(given, key)} was asked for; drop that override '
          f'(the checkpoint fixes it), or load a checkpoint trained with '
          f'{key}={getattr(given, key)}.')
  return given


# --- TF checkpoints: which to read, and the fallback rule ------------------


def _number(path: str) -> int:
  m = re.search(r'-(\d+)$', path)
  return int(m.group(1)) if m else -1


STATE_FILE = 'checkpoint'  # TF's: which checkpoints a directory keeps


def checkpoint_state(directory: str):
  """`tf.train.get_checkpoint_state(directory)`, None also for a state file
  that is not text (TF reads a garbled text one as None with a warning,
  and raises UnicodeDecodeError on bytes): the checkpoints are then found
  by their file names (`checkpoint_candidates`)."""
  try:
    return tf.train.get_checkpoint_state(directory)
  except UnicodeDecodeError:
    return None


def state_file_damaged(directory: str) -> bool:
  """Whether `directory` has a state file that does not read as one."""
  return (os.path.isfile(os.path.join(directory, STATE_FILE)) and
          checkpoint_state(directory) is None)


def checkpoint_candidates(directory: str, prefix: str = PREFIX) -> List[str]:
  """Checkpoint prefixes of `directory`, newest first: those of its state
  file (in the order of saving), else every `<prefix>-N.index` by N."""
  # get_checkpoint_state already joins the file's relative entries to
  # `directory` (joining again broke relative directories).
  state = checkpoint_state(directory)
  paths = []
  if state is not None:
    paths = list(state.all_model_checkpoint_paths)
    if state.model_checkpoint_path:
      paths = [p for p in paths if p != state.model_checkpoint_path] + [
          state.model_checkpoint_path]
    paths.reverse()
  elif os.path.isdir(directory):
    paths = sorted((os.path.join(directory, f[:-len('.index')])
                    for f in os.listdir(directory)
                    if re.fullmatch(re.escape(prefix) + r'-\d+\.index', f)),
                   key=_number, reverse=True)
  return list(dict.fromkeys(paths))  # Unique, order kept.


def read_checkpoint(checkpoint: tf.train.Checkpoint, path: str):
  """Reads TF checkpoint `path` into `checkpoint`; every object it tracks
  must be found there (extra saved objects, e.g. optimisers, are fine).

  Raises:
    CheckpointError: missing, damaged, or of other variables or shapes.
  """
  try:
    if not tf.io.gfile.exists(path + '.index'):
      raise FileNotFoundError(f'{path}.index is missing')
    status = checkpoint.read(path)
    status.assert_existing_objects_matched().expect_partial()
  except Exception as e:  # pylint: disable=broad-except
    # A damaged file raises anything from OpError to IndexError.
    raise CheckpointError(f'{path}: {type(e).__name__}: {_short(e)}') from e


def read_newest(checkpoint: tf.train.Checkpoint, directory: str,
                prefix: str = PREFIX, hint: str = ''
                ) -> Tuple[Optional[str], List[str]]:
  """Reads the newest checkpoint of `directory` that loads.

  Unloadable newer ones are skipped with one warning line naming them and
  the one read. Files are left as they are.

  Args:
    checkpoint: the `tf.train.Checkpoint` to read into.
    directory: the checkpoint directory.
    prefix: checkpoint file prefix.
    hint: appended to the error, what the user can do.

  Returns:
    (the prefix read, or None when the directory holds no checkpoint;
     the prefixes skipped, newest first).

  Raises:
    CheckpointError: checkpoints exist but none loads.
  """
  candidates = checkpoint_candidates(directory, prefix)
  skipped, reasons = [], []
  for path in candidates:
    try:
      read_checkpoint(checkpoint, path)
    except CheckpointError as e:
      skipped.append(path)
      reasons.append(str(e))
      continue
    if skipped:
      logging.warning('Skipped unloadable checkpoint %s (%s); loaded %s.',
                      ', '.join(skipped), '; '.join(reasons), path)
    return path, skipped
  if not candidates:
    return None, []
  raise CheckpointError(f'No checkpoint in {directory} can be loaded: '
                        + '; '.join(reasons) + (f'. {hint}' if hint else '.'))


# --- load -------------------------------------------------------------------


def path_from_config(cfg: config_lib.Config) -> str:
  """The checkpoint a config names: `checkpoint_dir/checkpoint_name`, else
  `checkpoint_dir` when it holds TF checkpoints, else its last `*.pth`.

  Raises:
    CheckpointError: there is none.
  """
  directory = cfg.checkpoint_dir or '.'
  if cfg.checkpoint_name:
    return os.path.join(directory, cfg.checkpoint_name)
  if checkpoint_candidates(directory):
    return directory
  pths = sorted(tf.io.gfile.glob(os.path.join(directory, '*.pth')))
  if pths:
    return pths[-1]
  raise CheckpointError(
      f'No checkpoint in {directory} (neither a tfunsup3d checkpoint nor a '
      'reference .pth): set checkpoint_dir (and checkpoint_name) to where '
      'one is.')


def config_path(checkpoint: str) -> str:
  """The `config.yml` of a TF checkpoint: in the directory, or beside the
  prefix."""
  folder = (checkpoint if os.path.isdir(checkpoint)
            else os.path.dirname(checkpoint))
  return os.path.join(folder, CONFIG_FILE)


def _load_tf(path: str, defaults, overrides) -> Unsup3D:
  """A tfunsup3d checkpoint directory or a TF checkpoint prefix."""
  is_dir = os.path.isdir(path)
  if is_dir and not checkpoint_candidates(path):
    versions = sorted(tf.io.gfile.glob(os.path.join(path, '*',
                                                    SAVED_MODEL_FILE)))
    if versions:
      raise CheckpointError(
          f'{path} holds SavedModel versions; pass one version directory, '
          f'e.g. {os.path.dirname(versions[-1])}.')
    raise CheckpointError(
        f'No TF checkpoint in {path}: it is not a tfunsup3d checkpoint '
        'directory; pass a directory written by tfunsup3d-train or '
        'tfunsup3d-convert, a TF checkpoint prefix, a .pth file or a '
        'SavedModel version directory.')
  cfg_path = config_path(path)
  try:
    own = config_lib.load_yaml(cfg_path) if os.path.isfile(cfg_path) else {}
  except ValueError as e:
    raise CheckpointError(_short(e)) from None
  model = Unsup3D(merge_config(own, path, defaults, overrides))
  checkpoint = tf.train.Checkpoint(model=model)
  if is_dir:
    read_newest(checkpoint, path, hint=(
        'Remove or replace them, or pass another checkpoint.'))
  else:
    read_checkpoint(checkpoint, path)
  return model


def _pth_config(path: str, state: Mapping[str, Any]
                ) -> Tuple[Dict[str, Any], Tuple[str, ...]]:
  """(the .pth's own config keys, the keys its weights fix)."""
  from tfunsup3d.convert import reference  # pylint: disable=g-import-not-at-top
  nets = {k: v for k, v in state.items() if k in NETWORK_NAMES}
  try:
    inferred = reference.config_sizes(reference.infer_sizes(nets))
  except ValueError as e:
    raise CheckpointError(f'{path}: {_short(e)}') from None
  inferred['use_conf_map'] = 'netC' in nets
  text = state.get(PTH_CONFIG_KEY)
  if text is None:  # The authors' files: sizes only; any image_size runs.
    return inferred, tuple(inferred)
  try:
    carried = config_lib.parse_yaml(text) if isinstance(text, str) else None
  except yaml.YAMLError as e:
    raise CheckpointError(f'{path}: its {PTH_CONFIG_KEY!r} entry is not '
                          f'valid YAML: {_short(e)}') from None
  if not isinstance(carried, dict):
    raise CheckpointError(f'{path}: its {PTH_CONFIG_KEY!r} entry is not a '
                          'YAML mapping of config keys.')
  for key, value in inferred.items():
    if key in carried and carried[key] != value:
      raise CheckpointError(
          f'{path} is inconsistent: its config says {key}={carried[key]} but '
          f'its weights have {key}={value}.')
  return dict(carried, **inferred), SHAPE_KEYS


def _load_pth(path: str, defaults, overrides) -> Unsup3D:
  """A `.pth` in either torch container."""
  from tfunsup3d.convert import reference, torch_format  # pylint: disable=g-import-not-at-top
  try:
    obj = torch_format.load(path)
  except (torch_format.CheckpointFormatError,
          torch_format.UnsafeCheckpointError) as e:
    raise CheckpointError(_short(e)) from None
  state = obj if isinstance(obj, Mapping) else {}
  nets = {k: v for k, v in state.items()
          if k in NETWORK_NAMES and isinstance(v, Mapping)}
  if not nets:
    raise CheckpointError(f'{path} holds no Unsup3D networks (expected keys '
                          f'{", ".join(NETWORK_NAMES)}).')
  own, fixed = _pth_config(path, dict(state, **nets))
  model = Unsup3D(merge_config(own, path, defaults, overrides, fixed))
  for name, net in model.networks.items():
    if name not in nets:
      raise CheckpointError(f'{path} has no {name} state dict.')
    try:
      reference.assign_state_dict(net, nets[name], name)
    except (ValueError, KeyError) as e:
      raise CheckpointError(f'{path}: {name}: {_short(e)}') from None
  if 'image_size' not in fixed and (
      model.cfg.image_size != REFERENCE_IMAGE_SIZE):
    logging.warning('Reference checkpoints are trained at %dx%d; running %s '
                    'at image_size=%d.', REFERENCE_IMAGE_SIZE,
                    REFERENCE_IMAGE_SIZE, path, model.cfg.image_size)
  return model


def _load_saved_model(path: str, defaults, overrides) -> Unsup3D:
  """A SavedModel version directory written by `tfunsup3d-export`."""
  from tfunsup3d.export import saved_model  # pylint: disable=g-import-not-at-top
  try:
    own = saved_model.read_metadata(path)['config']
  except (OSError, ValueError, KeyError, TypeError):
    raise CheckpointError(
        f'{path} is a SavedModel without tfunsup3d metadata '
        f'(assets/{saved_model.METADATA_FILE}): it is for serving '
        '(tf.saved_model.load); pass the checkpoint directory or .pth it was '
        'exported from.') from None
  model = Unsup3D(merge_config(own, path, defaults, overrides))
  variables = [getattr(v, 'value', v) for v in model.weights]
  read_checkpoint(tf.train.Checkpoint(model_variables=variables),
                  os.path.join(path, 'variables', 'variables'))
  return model


def load(path: str, defaults: Optional[config_lib.Config] = None,
         **overrides) -> Unsup3D:
  """Builds the model saved at `path` (any format of the module doc).

  Args:
    path: a tfunsup3d checkpoint directory, a TF checkpoint prefix, a `.pth`
      file, or a SavedModel version directory.
    defaults: Config under the checkpoint's own config (None: defaults).
    **overrides: config keys over the checkpoint's own config.

  Returns:
    The `Unsup3D` (no VGG16 loaded; call `load_perceptual` for training).

  Raises:
    CheckpointError: missing, unreadable, or not fitting `overrides`; the
      message is one line.
  """
  path = os.fspath(path)
  if path.endswith('.index'):
    path = path[:-len('.index')]
  if os.path.isdir(path):
    loader = (_load_saved_model
              if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))
              else _load_tf)
  elif tf.io.gfile.exists(path + '.index'):
    loader = _load_tf
  elif os.path.isfile(path):
    loader = _load_pth
  else:
    raise CheckpointError(f'Checkpoint not found: {path}')
  return _finite(loader(path, defaults, overrides), path)


def _finite(model: Unsup3D, path: str) -> Unsup3D:
  """`model`, once every weight is known to be finite: a NaN or Inf weight
  would make every output NaN (training never saves one; a file from
  elsewhere may hold one)."""
  for var in model.weights:
    if not np.all(np.isfinite(var.numpy())):
      raise CheckpointError(f'{path} holds non-finite weights (NaN or Inf) '
                            f'in {var.path}: it is not a usable model.')
  return model


# --- save -------------------------------------------------------------------


def _save_pth(model: Unsup3D, path: str, epoch: Optional[int]) -> str:
  from tfunsup3d.convert import reference, torch_format  # pylint: disable=g-import-not-at-top
  state = {name: reference.state_dict_from_model(net, name)
           for name, net in model.networks.items()}
  if epoch is not None:
    state['epoch'] = int(epoch)
  cfg = config_lib.from_dict({'checkpoint_dir': os.path.dirname(path) or '.',
                              'checkpoint_name': os.path.basename(path)},
                             base=model.cfg)
  state[PTH_CONFIG_KEY] = cfg.to_yaml()
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  write_atomic(path, lambda tmp: torch_format.save(state, tmp))
  return path


def _save_directory(model: Unsup3D, directory: str) -> str:
  made = not os.path.exists(directory)
  try:
    os.makedirs(directory, exist_ok=True)
    cfg = config_lib.from_dict({'checkpoint_dir': directory,
                                'checkpoint_name': None}, base=model.cfg)
    write_text_atomic(os.path.join(directory, CONFIG_FILE), cfg.to_yaml())
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         directory, max_to_keep=1,
                                         checkpoint_name=PREFIX)
    return manager.save()
  except (OSError, tf.errors.OpError):
    if made:  # A full disk leaves no half-written checkpoint directory.
      shutil.rmtree(directory, ignore_errors=True)
    raise


def save(model: Unsup3D, path: str, overwrite: bool = False,
         epoch: Optional[int] = None) -> str:
  """Saves `model` so that `load(path)` rebuilds it exactly.

  Args:
    model: an `Unsup3D`.
    path: a `.pth` file (the reference's zip container: netD netA netL netV
      [netC], which `torch.load` and the authors' `Trainer.load_checkpoint`
      read, plus the config under `PTH_CONFIG_KEY`), or else a directory
      (`config.yml` + TF checkpoint). The saved config's `checkpoint_dir`
      (and for a .pth `checkpoint_name`) name where it was saved.
    overwrite: replace an existing file, or a directory's checkpoint.
    epoch: optional `epoch` entry of a .pth.

  Returns:
    The `.pth` path, or the TF checkpoint prefix written.

  Raises:
    FileExistsError: `path` exists (holds a checkpoint) and not overwrite.
  """
  path = os.fspath(path)
  if path.endswith('.pth'):
    if os.path.exists(path) and not overwrite:
      raise FileExistsError(f'{path} exists; pass --overwrite to replace it.')
    return _save_pth(model, path, epoch)
  if checkpoint_candidates(path) and not overwrite:
    raise FileExistsError(f'{path} already holds a checkpoint; pass '
                          '--overwrite to replace it.')
  return _save_directory(model, path)
