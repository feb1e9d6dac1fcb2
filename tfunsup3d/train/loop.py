"""The generic training loop: epochs, validation, checkpoints, logging.

`train(cfg)` runs `Unsup3DTask` steps over the train split for
`num_epochs` epochs (resuming from `checkpoint_dir` when `resume`), with
  * data order a function of (seed, epoch): each epoch's shuffled dataset
    is rebuilt with a seed derived from both, so a resumed epoch sees the
    same batches and skips those already done;
  * at most `max_steps_per_epoch` steps per epoch, then validation on at most
    `val_max_batches` batches (a missing val split is warned about and
    skipped; a missing or unusable train split fails before anything
    starts);
  * checkpoints every `save_checkpoint_freq` epochs, every
    `save_checkpoint_steps` steps when > 0, and after the last epoch;
  * TensorBoard under `log_dir` (default `checkpoint_dir/logs`): `train/`
    gets every step's scalars and, every `log_freq` steps, the
    visualisation of a fixed batch; `val/` gets each epoch's means;
  * `checkpoint_dir/metrics.json`: per epoch (key: 0-based epoch index as a
    string) {"train": means, "val": means, "step": global steps done}, the
    means over images of every loss and, with ground truth, SIDE (not
    scaled), MAD (degrees), MAE, MSE; train also has images_per_sec;
  * `stop`, a callable the loop asks after every step and validation batch
    (the tools pass one that a first Ctrl-C or SIGTERM sets): when it
    returns a reason, the state is saved as a mid-epoch checkpoint (unless
    that step just saved one; during validation, with the epoch's steps
    done, so that resuming validates first) and `TrainingStopped` is
    raised; resuming from it goes on exactly as if never stopped;
  * a non-finite loss stops training with `NonFiniteLossError` naming the
    epoch and step; that state is not saved. Nor is a diverged one: before
    every save `weights_problem` checks that every weight and optimiser slot
    is finite and every |weight| <= WEIGHT_LIMIT, else training stops with
    `NonFiniteLossError` too. So the checkpoint the error names as the last
    good one (also the one `resume` restores) trains on at a sane `lr`;
  * on resume the config's `lr` replaces the one saved in the optimisers
    (the flag a user passes after a divergence is the one used);
  * everything is checked before anything is written: the config, the train
    split, and that `checkpoint_dir` (and `log_dir`) can be written. A write
    that fails later (full disk, read-only directory) raises
    `errors.UserError` and leaves the previous checkpoints intact.
"""

import collections
import dataclasses
import json
import math
import os
import tempfile
import time
from typing import Any, Callable, Dict, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import errors
from tfunsup3d import progress as progress_lib
from tfunsup3d.data import images as images_lib
from tfunsup3d.train import checkpoints as checkpoints_lib
from tfunsup3d.train import distribute as distribute_lib
from tfunsup3d.train import optimizers as optimizers_lib
from tfunsup3d.train import summaries
from tfunsup3d.train.task import Unsup3DTask

METRICS_FILE = 'metrics.json'
# Weights beyond this mean a diverged run: the authors' trained nets stay
# below 100 (their largest |w| is 94, in netL), initial ones below 1.
WEIGHT_LIMIT = 1e4


class NonFiniteLossError(RuntimeError):
  """A loss became NaN or Inf, or the weights diverged; training stopped
  without saving that state."""


class TrainingStopped(Exception):
  """`train`'s `stop` asked to stop; the state was saved first.

  Attributes:
    reason: what `stop` returned (e.g. 'SIGINT').
    checkpoint: the prefix that holds the state training stopped in.
  """

  def __init__(self, reason: str, checkpoint: str, epoch: int,
               epoch_step: int, steps_per_epoch: int, step: int):
    super().__init__(
        f'stopped by {reason} at epoch {epoch}, step {epoch_step} of '
        f'{steps_per_epoch} (global step {step}); saved {checkpoint}')
    self.reason, self.checkpoint = reason, checkpoint


def _abs_max(variable) -> float:
  if not variable.shape.num_elements():
    return 0.0
  return float(tf.reduce_max(tf.abs(tf.cast(variable, tf.float32))))


def weights_problem(model, optimizers) -> Optional[str]:
  """Why a training state must not be saved, or None if it may.

  A state may be saved when every model weight is finite with |w| <=
  `WEIGHT_LIMIT` and every floating optimiser variable (Adam's moments, lr)
  is finite.

  Args:
    model: the `Unsup3D`.
    optimizers: {'netD': optimizer, ...}.
  Returns:
    None, or one line naming the worst variable.
  """
  worst, worst_name = 0.0, ''
  for var in model.weights:
    value = _abs_max(var)
    if not math.isfinite(value):
      return f'{var.path} is not finite'
    if value > worst:
      worst, worst_name = value, var.path
  for opt in optimizers.values():
    for var in opt.variables:
      if 'float' in str(var.dtype) and not math.isfinite(_abs_max(var)):
        return f'{var.path} is not finite'
  if worst > WEIGHT_LIMIT:
    return (f'weights diverged: max |w| = {worst:.3g} in {worst_name}, over '
            f'{WEIGHT_LIMIT:g}')
  return None


class Means:
  """Running means over images of step scalars (weights: batch sizes)."""

  def __init__(self, state: Optional[Dict[str, Any]] = None):
    state = state or {}
    self.sums = collections.OrderedDict(state.get('sums', {}))
    self.mass = dict(state.get('mass', {}))

  def update(self, scalars: Dict[str, float], batch_size: int):
    for k, v in scalars.items():
      self.sums[k] = self.sums.get(k, 0.0) + float(v) * batch_size
      self.mass[k] = self.mass.get(k, 0) + batch_size

  def result(self) -> Dict[str, float]:
    return {k: self.sums[k] / self.mass[k] for k in self.sums}

  def state(self) -> Dict[str, Any]:
    return {'sums': dict(self.sums), 'mass': dict(self.mass)}


def setup_runtime(cfg: config_lib.Config):
  """Seeds Python, NumPy and TF (`cfg.seed`); with `cfg.deterministic` also
  enables TF op determinism (process-wide, irreversible)."""
  import keras  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(cfg.seed)
  if cfg.deterministic:
    tf.config.experimental.enable_op_determinism()


def epoch_seed(seed: int, epoch: int) -> int:
  """The data seed of `epoch`: a fixed function of (seed, epoch)."""
  return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0]
             & 0x7fffffff)


def train_dataset(cfg: config_lib.Config, epoch: int) -> tf.data.Dataset:
  """The train split of `epoch`, shuffled and flipped by `epoch_seed`.

  tf.data runs in deterministic order here whatever `cfg.deterministic`, so
  the batches depend on (seed, epoch) only.
  """
  epoch_cfg = dataclasses.replace(cfg, seed=epoch_seed(cfg.seed, epoch),
                                  deterministic=True)
  return images_lib.build_dataset(epoch_cfg, 'train', training=True)


def check_writable(directory: str, key: str):
  """Checks that a file can be written in `directory`; leaves nothing behind
  (directories it had to make for the check are removed again).

  Raises:
    errors.UserError: one line naming `key`, the directory and the cause.
  """
  if os.path.exists(directory) and not os.path.isdir(directory):
    raise errors.UserError(f'{key} {directory} is a file, not a directory: '
                           f'set {key} to a directory.')
  made, path = [], os.path.abspath(directory)
  while not os.path.exists(path):  # Deepest first.
    made.append(path)
    path = os.path.dirname(path)
  try:
    os.makedirs(directory, exist_ok=True)
    fd, probe = tempfile.mkstemp(dir=directory, prefix='.write-test-')
    os.close(fd)
    os.remove(probe)
  except OSError as e:
    raise errors.UserError(f'Cannot write to {key} {directory}: '
                           f'{errors.write_failure(e, key)}.') from e
  finally:
    for path in made:
      if os.path.isdir(path) and not os.listdir(path):
        os.rmdir(path)


def _write_metrics(path: str, epochs: Dict[str, Any]):
  checkpoints_lib.write_run_file(path, json.dumps(epochs, indent=2))


class _Run:
  """State of one `train` call (kept out of `train` for readability)."""

  def __init__(self, cfg, task, ckpts, writers, val_ds, viz_batch,
               steps_per_epoch, stop=None):
    self.cfg, self.task, self.ckpts, self.stop = cfg, task, ckpts, stop
    self.writers, self.val_ds, self.viz_batch = writers, val_ds, viz_batch
    self.steps_per_epoch = steps_per_epoch
    self.visualizer = summaries.Visualizer(task.model) if writers else None
    st = ckpts.state.get()
    self.epoch, self.step, self.epoch_step = (st['epoch'], st['step'],
                                              st['epoch_step'])
    self.epochs = st['trace'].get('epochs', {})
    self.means = Means(st['trace'].get('partial'))
    self.last_checkpoint = ckpts.latest
    # Every worker runs the loop; only the chief shows its progress.
    self.progress = progress_lib.TrainProgress(
        cfg.num_epochs,
        mode=None if distribute_lib.is_chief(task.strategy) else 'none')

  def trace(self):
    return {'epochs': self.epochs, 'partial': self.means.state()}

  def stopped(self) -> str:
    """The end of a stop message: nothing saved, the last good checkpoint."""
    if self.last_checkpoint:
      return ('Stopped without saving this state; last good checkpoint: '
              f'{self.last_checkpoint} (resume from it with a lower lr).')
    return ('Stopped without saving this state; no checkpoint was saved '
            'before (start again with a lower lr).')

  def save(self):
    problem = weights_problem(self.task.model, self.task.optimizers)
    if problem:
      raise NonFiniteLossError(
          f'Training diverged by epoch {self.epoch}, global step {self.step}: '
          f'{problem}. ' + self.stopped())
    self.last_checkpoint = self.ckpts.save(self.epoch, self.step,
                                           self.epoch_step, self.trace())

  def check_stop(self, saved: bool):
    """Saves (unless `saved`) and raises `TrainingStopped` when `stop` asks."""
    reason = self.stop() if self.stop is not None else None
    if not reason:
      return
    if not saved:
      self.save()
    raise TrainingStopped(reason, self.last_checkpoint, self.epoch,
                          self.epoch_step, self.steps_per_epoch, self.step)

  def train_epoch(self):
    cfg, epoch = self.cfg, self.epoch
    total = self.steps_per_epoch
    ds = train_dataset(cfg, epoch).take(total).skip(self.epoch_step)
    ds = self.task.distribute_dataset(ds)
    logging.info('Starting training epoch %d (step %d of %d).', epoch,
                 self.epoch_step, total)
    self.progress.start_epoch(epoch, total, self.epoch_step)
    epoch_saved = self._epoch_save_due()
    timer, timed_images, speed = None, 0, 0.0
    writer = self.writers.get('train') if self.writers else None
    for batch in ds:
      scalars = {k: float(v) for k, v in
                 self.task.train_step(batch, epoch).items()}
      bad = [k for k, v in scalars.items()
             if k.startswith('loss') and not math.isfinite(v)]
      if bad:
        raise NonFiniteLossError(
            f'Non-finite loss at epoch {epoch}, step {self.epoch_step} of the '
            f'epoch (global step {self.step}, 0-based): '
            + ', '.join(f'{k}={scalars[k]}' for k in bad) + '. '
            + self.stopped())
      batch_size = distribute_lib.global_batch_size(batch, self.task.strategy)
      self.means.update(scalars, batch_size)
      summaries.write_scalars(writer, scalars, self.step)
      if writer is not None and self.step % cfg.log_freq == 0:
        self.visualizer.write(writer, self.step, self.viz_batch)
      self.step += 1
      self.epoch_step += 1
      if timer is None:  # The first step compiles: time from the second.
        timer = time.time()
      else:
        timed_images += batch_size
        speed = timed_images / max(time.time() - timer, 1e-9)
      self.progress.step(batch_size, scalars)
      n = cfg.save_checkpoint_steps
      saved = bool(n and self.step % n == 0 and not (
          epoch_saved and self.epoch_step == total))
      if saved:
        self.save()
      self.check_stop(saved)
    self.progress.end_epoch()
    result = self.means.result()
    if speed:
      result['images_per_sec'] = speed
    return result

  def validate(self) -> Optional[Dict[str, float]]:
    if self.val_ds is None:
      return None
    means = Means()
    for batch in self.task.distribute_dataset(self.val_ds):
      scalars = self.task.eval_step(batch, self.epoch)
      means.update({k: float(v) for k, v in scalars.items()},
                   distribute_lib.global_batch_size(batch, self.task.strategy))
      # A long validation must not outlast a scheduler's grace period: the
      # state saved here (the epoch's steps done) resumes with validation.
      self.check_stop(saved=False)
    result = means.result()
    logging.info('Validation epoch %d: %s', self.epoch, ', '.join(
        f'{k} {v:.5f}' for k, v in result.items()))
    if self.writers:
      summaries.write_scalars(self.writers['val'], result, self.step)
    return result

  def _epoch_save_due(self) -> bool:
    freq = self.cfg.save_checkpoint_freq
    last = self.epoch + 1 == self.cfg.num_epochs
    return last or (freq > 0 and (self.epoch + 1) % freq == 0)

  def run(self):
    cfg = self.cfg
    logging.info('%s: optimizing to %d epochs (%d steps each) on %s.',
                 cfg.model_name, cfg.num_epochs, self.steps_per_epoch,
                 distribute_lib.devices_in_use(self.task.strategy))
    note = distribute_lib.missing_gpu_note()
    if note and distribute_lib.is_chief(self.task.strategy):
      logging.warning(note)
    while self.epoch < cfg.num_epochs:
      train_means = self.train_epoch()
      entry = {'train': train_means, 'step': self.step}
      val_means = self.validate()
      if val_means is not None:
        entry['val'] = val_means
      self.epochs[str(self.epoch)] = entry
      save = self._epoch_save_due()
      self.epoch, self.epoch_step, self.means = self.epoch + 1, 0, Means()
      if save:
        self.save()
      if distribute_lib.is_chief(self.task.strategy):
        _write_metrics(os.path.join(cfg.checkpoint_dir, METRICS_FILE),
                       self.epochs)
      if self.epoch < cfg.num_epochs:
        self.check_stop(save)
    logging.info('Training completed after %d epochs.', self.epoch)


def _val_dataset(cfg):
  try:
    images_lib.list_split(cfg, 'val')
  except (FileNotFoundError, ValueError) as e:
    logging.warning('No validation: %s', e)
    return None
  ds = images_lib.build_dataset(cfg, 'val', training=False)
  return ds.take(cfg.val_max_batches) if cfg.val_max_batches else ds


def _resume(cfg: config_lib.Config, task: Unsup3DTask,
            ckpts: checkpoints_lib.Checkpoints) -> Optional[str]:
  """Restores the newest loadable checkpoint (if `cfg.resume`) and sets the
  optimisers' lr to `cfg.lr`; returns the restored prefix or None."""
  resumed = None
  if cfg.resume:
    saved = ckpts.check_config(cfg)
    resumed = ckpts.restore()
    if resumed and saved is not None:
      _rebatch(ckpts.state, saved.batch_size, cfg.batch_size)
  elif ckpts.candidates():
    logging.warning('resume=false: starting over; the checkpoints already in '
                    '%s will be replaced as new ones are saved.',
                    cfg.checkpoint_dir)
  if resumed:
    problem = weights_problem(task.model, task.optimizers)
    if problem:
      raise checkpoints_lib.CheckpointError(
          f'Cannot resume from {resumed}: {problem}. Move its files out of '
          f'{cfg.checkpoint_dir} to resume from an older one, or set '
          'resume=false.')
  for name, opt in task.optimizers.items():
    saved = float(opt.learning_rate.numpy())
    lr = optimizers_lib.network_lr(cfg, name)
    if not math.isclose(saved, lr, rel_tol=1e-6):
      logging.info('%s: lr %g (config) replaces the checkpoint\'s %g.', name,
                   lr, saved)
      opt.learning_rate.assign(lr)
  return resumed


def _rebatch(state, saved_batch: int, batch: int):
  """Keeps a mid-epoch resume at the same place in the epoch's images when
  the batch size changed (a run resumed with a smaller batch after running
  out of memory): the epoch's steps done are counted again in batches of
  the new size (rounded down: at most one batch of images is seen twice)."""
  done = int(state.epoch_step.numpy())
  if saved_batch == batch or not done:
    return
  images = done * saved_batch
  state.epoch_step.assign(images // batch)
  logging.warning(
      'batch_size %d now, %d when this checkpoint was saved: epoch %d goes '
      'on after its first %d images (step %d at the new size).', batch,
      saved_batch, int(state.epoch.numpy()), images, images // batch)


def _train_steps(cfg: config_lib.Config) -> int:
  """Steps per epoch; checks the config and the train split (writes nothing).
  """
  config_lib.check(cfg)
  records, _ = images_lib.list_split(cfg, 'train')  # Fails early.
  if len(records) < cfg.batch_size:
    raise ValueError(
        f'The train split ({images_lib.split_dir(cfg, "train")}) has '
        f'{len(records)} usable images, fewer than batch_size='
        f'{cfg.batch_size}. Lower batch_size.')
  steps = len(records) // cfg.batch_size
  if cfg.max_steps_per_epoch:
    steps = min(steps, cfg.max_steps_per_epoch)
  return steps


def _summary_writers(cfg: config_lib.Config, val_ds):
  """TensorBoard's {'train', 'val'} writers and the batch the visualiser
  shows, or (None, None) without `use_logger`."""
  if not cfg.use_logger:
    return None, None
  log_dir = cfg.log_dir or os.path.join(cfg.checkpoint_dir, 'logs')
  writers = {name: tf.summary.create_file_writer(os.path.join(log_dir, name))
             for name in ('train', 'val')}
  viz_ds = val_ds if val_ds is not None else train_dataset(cfg, 0)
  return writers, next(iter(viz_ds))


def train(cfg: config_lib.Config,
          task: Optional[Unsup3DTask] = None,
          stop: Optional[Callable[[], Optional[str]]] = None
          ) -> Dict[str, Any]:
  """Trains Unsup3D as configured; see the module docstring.

  Args:
    cfg: `Config`.
    task: optional `Unsup3DTask` to train (default: built from `cfg` after
      seeding with `cfg.seed`).
    stop: optional callable, asked after every step: a reason (str) to
      save and stop, or None to go on.

  Returns:
    dict: 'epoch' (epochs completed), 'step' (global steps), 'checkpoint'
    (the last checkpoint's prefix or None), 'metrics' (metrics.json's
    content), 'resumed_from' (prefix or None).

  Raises:
    FileNotFoundError / ValueError: unusable train split or config.
    errors.UserError: checkpoint_dir or log_dir cannot be written.
    NonFiniteLossError: a loss became NaN/Inf or the weights diverged.
    checkpoints.CheckpointError: resume impossible.
    TrainingStopped: `stop` asked; the state was saved.
  """
  cfg = cfg.resolved()
  steps = _train_steps(cfg)
  check_writable(cfg.checkpoint_dir, 'checkpoint_dir')
  if cfg.use_logger and cfg.log_dir:
    check_writable(cfg.log_dir, 'log_dir')
  if task is None:
    # multi_worker: the strategy must exist before TF runs any op.
    strategy = distribute_lib.make_strategy(cfg.strategy)
    setup_runtime(cfg)
    # Loads VGG16 weights if lam_perc > 0.
    task = Unsup3DTask(cfg, strategy=strategy)
  chief = distribute_lib.is_chief(task.strategy)  # Only the chief writes.
  ckpts = distribute_lib.make_checkpoints(task.strategy, cfg.checkpoint_dir,
                                          task.model, task.optimizers,
                                          cfg.keep_num_checkpoint)
  resumed = _resume(cfg, task, ckpts)
  ckpts.write_config(cfg)
  if resumed and chief:  # Drop epochs the restored checkpoint hadn't reached.
    _write_metrics(os.path.join(cfg.checkpoint_dir, METRICS_FILE),
                   ckpts.state.get()['trace'].get('epochs', {}))
  val_ds = _val_dataset(cfg)
  writers, viz_batch = (_summary_writers(cfg, val_ds) if chief else
                        (None, None))
  run = _Run(cfg, task, ckpts, writers, val_ds, viz_batch, steps, stop)
  try:
    run.run()
  finally:
    run.progress.end_epoch()  # Ends a bar an error interrupted.
    for writer in (writers or {}).values():
      writer.close()
  return {'epoch': run.epoch, 'step': run.step,
          'checkpoint': run.last_checkpoint, 'metrics': run.epochs,
          'resumed_from': resumed}
