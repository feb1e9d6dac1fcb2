"""Training checkpoints: weights, optimiser state, progress, metrics trace.

One `tf.train.Checkpoint` holds
  model=Unsup3D (the key `Unsup3D.from_checkpoint` reads),
  optimizerD, optimizerA, optimizerL, optimizerV[, optimizerC] (TorchAdam),
  train_state=TrainState (epoch, global step, step in epoch, data seed and
    the JSON metrics trace),
written by a `tf.train.CheckpointManager` as `checkpoint_dir/ckpt-<global
step>`; `checkpoint_dir/config.yml` holds the config (so a directory is a
complete model for `Unsup3D.from_checkpoint`).

Atomicity: TensorFlow writes the data and index files first and rewrites the
`checkpoint` state file (atomically, by rename) only after the write has
finished, and it deletes old checkpoints only after that; a process killed
while saving therefore leaves the state file naming the previous complete
checkpoint. `restore` does not trust that alone: it tries the listed
checkpoints newest first and falls back (with a warning) past any that fail
to load, moving their files to `checkpoint_dir/corrupt/` and rewriting the
state file without them (with save timestamps, so that the CheckpointManager
still deletes the kept older ones in turn).

A save that fails (full disk, read-only or unwritable directory) removes what
it wrote (`ckpt-N_temp/`, `ckpt-N.*`, the state file's temporary) and raises
`errors.UserError` naming the directory, the cause and the intact previous
checkpoint.
"""

import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from absl import logging
import tensorflow as tf

from tfunsup3d import errors
from tfunsup3d import saving
from tfunsup3d.errors import CheckpointError  # pylint: disable=unused-import

# The files of a checkpoint directory, the shape keys and the rule for an
# unloadable newest checkpoint are tfunsup3d.saving's (one place).
CONFIG_FILE = saving.CONFIG_FILE
PREFIX = saving.PREFIX
SHAPE_KEYS = saving.SHAPE_KEYS
write_text_atomic = saving.write_text_atomic


def write_run_file(path: str, text: str):
  """Writes a run's text file (config.yml, metrics.json) atomically, making
  its directory; a failed write is one `errors.UserError` line naming the
  file, the cause and the remedy (checkpoint_dir)."""
  try:
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    write_text_atomic(path, text)
  except OSError as e:
    reason = errors.write_failure(e, 'checkpoint_dir')
    raise errors.UserError(f'Cannot write {path}: {reason}.') from e
CORRUPT_DIR = 'corrupt'


class TrainState(tf.Module):
  """Progress counters saved with the weights.

  Attributes:
    epoch: the epoch in progress (0-based; == epochs completed when
      `epoch_step` is 0).
    step: global optimisation steps done.
    epoch_step: steps done in `epoch` (batches to skip on resume).
    trace: JSON text of the metrics trace and the running means of the epoch
      in progress.
  """

  def __init__(self):
    super().__init__(name='train_state')
    self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name='epoch')
    self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name='step')
    self.epoch_step = tf.Variable(0, dtype=tf.int64, trainable=False,
                                  name='epoch_step')
    self.trace = tf.Variable('{}', dtype=tf.string, trainable=False,
                             name='trace')

  def get(self) -> Dict[str, Any]:
    return {'epoch': int(self.epoch.numpy()), 'step': int(self.step.numpy()),
            'epoch_step': int(self.epoch_step.numpy()),
            'trace': json.loads(self.trace.numpy().decode('utf-8') or '{}')}

  def set(self, epoch: int, step: int, epoch_step: int,
          trace: Optional[Dict[str, Any]] = None):
    self.epoch.assign(epoch)
    self.step.assign(step)
    self.epoch_step.assign(epoch_step)
    if trace is not None:
      self.trace.assign(json.dumps(trace))


def _model_only(path: str) -> bool:
  """Whether checkpoint `path` reads and holds a model without the training
  state `Checkpoints` saves."""
  try:
    names = [name for name, _ in tf.train.list_variables(path)]
  except Exception:  # pylint: disable=broad-except
    return False  # Damaged: `read_newest`'s message says so.
  return (any(n.startswith('model/') for n in names) and
          not any(n.startswith('train_state/') for n in names))


class Checkpoints:
  """Saves and restores a training run in `checkpoint_dir`.

  Args:
    checkpoint_dir: str, the run directory.
    model: the `Unsup3D`.
    optimizers: {'netD': optimizer, ...} (built, so that their slots
      restore immediately).
    keep_num_checkpoint: int, checkpoints to keep; <= 0 keeps all
      (reference: -1).
  """

  def __init__(self, checkpoint_dir: str, model, optimizers: Dict[str, Any],
               keep_num_checkpoint: int = 2):
    self.directory = checkpoint_dir
    self.state = TrainState()
    opts = {name.replace('net', 'optimizer'): opt
            for name, opt in optimizers.items()}
    self.checkpoint = tf.train.Checkpoint(model=model, train_state=self.state,
                                          **opts)
    self.max_to_keep = (keep_num_checkpoint if keep_num_checkpoint > 0
                        else None)
    self._manager = None

  @property
  def manager(self) -> tf.train.CheckpointManager:
    if self._manager is None:
      os.makedirs(self.directory, exist_ok=True)
      if saving.state_file_damaged(self.directory):  # TF would raise.
        logging.warning('Moved the unreadable checkpoint state file of %s '
                        'to %s.', self.directory, CORRUPT_DIR)
        self._move_to_corrupt(os.path.join(self.directory,
                                           saving.STATE_FILE))
      self._manager = tf.train.CheckpointManager(
          self.checkpoint, self.directory, max_to_keep=self.max_to_keep,
          checkpoint_name=PREFIX)
    return self._manager

  @property
  def latest(self) -> Optional[str]:
    """The newest complete checkpoint's prefix (per the state file)."""
    if saving.state_file_damaged(self.directory):
      return None
    return tf.train.latest_checkpoint(self.directory)

  def write_config(self, cfg):
    """Writes `config.yml` (atomically) for `Unsup3D.from_checkpoint`.

    Raises:
      errors.UserError: it cannot be written (one line: cause and remedy).
    """
    write_run_file(os.path.join(self.directory, CONFIG_FILE), cfg.to_yaml())

  def check_config(self, cfg):
    """The run's config.yml as a `Config` (None without one); raises
    CheckpointError if it has other network sizes than `cfg` (its
    checkpoints could not load)."""
    path = os.path.join(self.directory, CONFIG_FILE)
    if not os.path.isfile(path):
      return None
    from tfunsup3d import config as config_lib  # pylint: disable=g-import-not-at-top
    saved = config_lib.load(path)
    diff = [f'{k}: {getattr(saved, k)!r} in {path}, {getattr(cfg, k)!r} now'
            for k in SHAPE_KEYS if getattr(saved, k) != getattr(cfg, k)]
    if diff and self.candidates():
      raise CheckpointError(
          'Cannot resume from ' + self.directory + ', the network sizes '
          'differ (' + '; '.join(diff) + '). Use another checkpoint_dir, or '
          'resume=false to start over there.')
    return saved

  def candidates(self) -> List[str]:
    """Checkpoint prefixes to try, newest first (see
    `saving.checkpoint_candidates`)."""
    return saving.checkpoint_candidates(self.directory, PREFIX)

  def restore(self) -> Optional[str]:
    """Restores the newest checkpoint that loads; returns its prefix.

    Returns None (and changes nothing) when the directory holds no
    checkpoint. Checkpoints that fail to load are skipped with a warning
    (`saving.read_newest`) and moved to `corrupt/`.

    Raises:
      CheckpointError: checkpoints exist but none loads.
    """
    try:
      path, bad = saving.read_newest(
          self.checkpoint, self.directory, PREFIX,
          hint='Remove them, or set resume=false.')
    except CheckpointError:
      candidates = self.candidates()
      if candidates and all(map(_model_only, candidates)):
        raise CheckpointError(
            f'{self.directory} holds a saved model, not a training run: no '
            'optimiser state or step count (tfunsup3d-convert and '
            '`saving.save` write such folders; tfunsup3d-test, -demo and '
            '-export read it as it is). Train into another checkpoint_dir.'
        ) from None
      raise
    if path is None:
      return None
    damaged = saving.state_file_damaged(self.directory)
    if damaged:
      logging.warning('The checkpoint state file in %s does not read; it is '
                      'rewritten from the checkpoint files.', self.directory)
    if bad or damaged:
      self._drop(bad, keep=[p for p in self.candidates() if p not in bad])
    logging.info('Resumed from %s (epoch %d, step %d).', path,
                 int(self.state.epoch.numpy()), int(self.state.step.numpy()))
    return path

  def _drop(self, bad: List[str], keep: List[str]):
    """Moves unloadable checkpoints aside; rewrites the state file."""
    for path in bad:
      for f in tf.io.gfile.glob(path + '.*'):
        self._move_to_corrupt(f)
      logging.warning('Moved the files of unloadable checkpoint %s to %s.',
                      path, os.path.join(self.directory, CORRUPT_DIR))
    keep = [os.path.basename(p) for p in reversed(keep)]  # Oldest first.
    # Timestamps after last_preserved_timestamp: without them the manager
    # would keep the older checkpoints forever, outside max_to_keep.
    state = saving.checkpoint_state(self.directory)
    known = {} if state is None else {
        os.path.basename(p): t for p, t in zip(
            state.all_model_checkpoint_paths,
            state.all_model_checkpoint_timestamps)}
    now = time.time()
    stamps = [known.get(k, now - len(keep) + i) for i, k in enumerate(keep)]
    tf.compat.v1.train.update_checkpoint_state(
        self.directory, model_checkpoint_path=keep[-1],
        all_model_checkpoint_paths=keep,
        all_model_checkpoint_timestamps=stamps,
        last_preserved_timestamp=min(stamps) - 1.0)
    self._manager = None  # Re-read the state file.

  def _move_to_corrupt(self, path: str) -> None:
    """Moves file `path` into the run's `corrupt/` folder."""
    corrupt = os.path.join(self.directory, CORRUPT_DIR)
    os.makedirs(corrupt, exist_ok=True)
    shutil.move(path, os.path.join(corrupt, os.path.basename(path)))

  def _remove_partial(self, prefix: str):
    """Removes the files of a failed save of `prefix` (not in the state)."""
    if prefix in self.candidates():
      return
    for path in (tf.io.gfile.glob(prefix + '_temp*') + tf.io.gfile.glob(
        prefix + '.*') + tf.io.gfile.glob(
            os.path.join(self.directory, 'checkpoint.tmp*'))):
      try:
        if os.path.isdir(path):
          shutil.rmtree(path)
        else:
          os.remove(path)
      except OSError as e:
        logging.warning('Could not remove %s of a failed save: %s', path, e)

  def save(self, epoch: int, step: int, epoch_step: int,
           trace: Dict[str, Any]) -> str:
    """Saves the current weights and state as `ckpt-<step>`; returns the
    prefix."""
    self.state.set(epoch, step, epoch_step, trace)
    previous = self.latest
    try:
      path = self.manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
      self._remove_partial(os.path.join(self.directory, f'{PREFIX}-{step}'))
      reason = errors.write_failure(e, 'checkpoint_dir')
      raise errors.UserError(
          f'Cannot save checkpoint {PREFIX}-{step} in {self.directory}: '
          f'{reason}. The previous checkpoint ({previous or "none"}) is '
          'intact.') from e
    logging.info('Saved checkpoint %s (epoch %d, step %d in epoch, global '
                 'step %d).', path, epoch, epoch_step, step)
    return path
