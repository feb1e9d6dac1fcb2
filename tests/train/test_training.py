"""Tests of the task and the training loop on a tiny model and data set.

All tests share one `Unsup3DTask` (tests/tiny.py): tracing its steps
costs seconds, so each test resets it to the same initial state instead.
"""

import dataclasses
import glob
import json
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tests import tiny
from tfunsup3d import config as config_lib
from tfunsup3d.model import Unsup3D
from tfunsup3d.train import loop
from tfunsup3d.train.task import Unsup3DTask


class _Proxy:
  """Wraps the shared task; subclasses change `train_step`."""

  def __init__(self, task):
    self.task = task
    self.calls = 0

  def __getattr__(self, name):
    return getattr(self.task, name)

  def train_step(self, batch, epoch):
    self.calls += 1
    return self.task.train_step(batch, epoch)


class _EvalCount(_Proxy):
  """Counts validation batches too."""

  def __init__(self, task):
    super().__init__(task)
    self.evals = 0

  def eval_step(self, batch, epoch=0):
    self.evals += 1
    return self.task.eval_step(batch, epoch)


class _Names(_Proxy):
  """Records the names of the images each step trains on."""

  def __init__(self, task):
    super().__init__(task)
    self.names = []

  def train_step(self, batch, epoch):
    self.names += list(batch['name'].numpy())
    return super().train_step(batch, epoch)


class _Interrupt(Exception):
  pass


class _StopAfter(_Proxy):
  """Raises after `n` steps (a crash between checkpoints)."""

  def __init__(self, task, n):
    super().__init__(task)
    self.n = n

  def train_step(self, batch, epoch):
    if self.calls == self.n:
      raise _Interrupt()
    return super().train_step(batch, epoch)


class _Diverge(_Proxy):
  """Makes netL's output NaN at call `at` (weights diverged)."""

  def __init__(self, task, at):
    super().__init__(task)
    self.at = at

  def train_step(self, batch, epoch):
    if self.calls + 1 == self.at:
      kernel = self.task.model.netL.weights[0]
      kernel.assign(tf.fill(kernel.shape, np.nan))
    return super().train_step(batch, epoch)


class TrainingTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.task = tiny.shared_task()

  def setUp(self):
    super().setUp()
    tiny.reset(self.task)
    self.data = tiny.write_dataset(tempfile.mkdtemp(dir=self.get_temp_dir()),
                                   n_train=8, n_val=4)

  def _cfg(self, name, **overrides):
    return tiny.tiny_config(self.data, os.path.join(self.get_temp_dir(),
                                                    name), **overrides)

  def test_steps_lower_the_loss_on_a_fixed_batch(self):
    batch = next(iter(loop.train_dataset(self._cfg('fixed'), 0)))
    first = self.task.train_step(batch, 0)
    for name in ('SIDE', 'MAD', 'MAE', 'MSE', 'loss_l1_im_flip'):
      self.assertIn(name, first)
    losses = [float(first['loss_total'])]
    for _ in range(5):
      losses.append(float(self.task.train_step(batch, 0)['loss_total']))
    self.assertLess(losses[-1], losses[0] - 0.05, losses)
    # eval_step does not update.
    before = float(self.task.eval_step(batch)['loss_total'])
    self.assertAllClose(float(self.task.eval_step(batch)['loss_total']),
                        before)

  def test_a_cycle_waits_and_moves_only_its_network(self):
    # prior_start_step=1: the first step (iteration 0) is the method's, the
    # second adds the cycle, whose gradient reaches its network alone.
    batch = next(iter(loop.train_dataset(self._cfg('cycle'), 0)))

    def two_steps(task):
      return [task.train_step(batch, 0), task.train_step(batch, 0),
              {n: [v.numpy() for v in m.weights]
               for n, m in task.model.networks.items()}]

    def cycle_task(**weights):  # the shared task's start (seed 0)
      keras.utils.set_random_seed(0)
      return Unsup3DTask(tiny.tiny_config(
          load_gt_depth=True, prior_start_step=1, **weights))
    # Both cycles off: the shared task (its config differs only in
    # prior_start_step, which nothing uses without a cycle or prior).
    plain = two_steps(self.task)
    for lam_key, loss_key, net in (
        ('lam_view_cycle', 'loss_view_cycle', 'netV'),
        ('lam_light_cycle', 'loss_light_cycle', 'netL')):
      cycle = two_steps(cycle_task(**{lam_key: 1.0}))
      self.assertNotIn(loss_key, plain[0])
      self.assertAllClose(cycle[0]['loss_total'], plain[0]['loss_total'])
      self.assertGreater(float(cycle[1][loss_key]), 0.0)
      self.assertAllClose(cycle[1]['loss_total'] - plain[1]['loss_total'],
                          cycle[1][loss_key], rtol=1e-4)
      for name, values in plain[2].items():
        same = all(np.array_equal(a, b)
                   for a, b in zip(values, cycle[2][name]))
        self.assertEqual(same, name != net, (lam_key, name))

  def test_remat_trains_the_same_steps(self):
    # Config remat through the task: the same weights after two steps,
    # netC's perceptual head (no gradient at lam_perc 0) untouched too.
    # The default (light, here) against the whole networks recomputed;
    # every mode's gradients: tests/test_model.py.
    batch = next(iter(loop.train_dataset(self._cfg('fixed'), 0)))
    model = self.task.model
    n = len(model.weights)
    losses = [float(self.task.train_step(batch, 0)['loss_total'])
              for _ in range(2)]
    kept = tiny.weights(self.task)[:n]
    tiny.reset(self.task)
    self.assertLess(losses[1], losses[0])  # the step moved the weights
    cfg = model.cfg
    self.assertEqual(config_lib.remat_mode(cfg), 'light')  # auto, no XLA
    try:
      model.cfg = dataclasses.replace(cfg, remat=True)
      task = Unsup3DTask(dataclasses.replace(self.task.cfg, remat=True),
                         model=model)
      remat_losses = [float(task.train_step(batch, 0)['loss_total'])
                      for _ in range(2)]
      recomputed = [v.numpy() for v in model.weights]
    finally:
      model.cfg = cfg
      tiny.reset(self.task)
    self.assertAllClose(remat_losses, losses, rtol=1e-5)
    for a, b in zip(kept, recomputed):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)

  def test_resume_continues_the_same_run(self):
    # Straight: 2 epochs of 2 steps.
    straight = loop.train(self._cfg('straight', num_epochs=2), task=self.task)
    self.assertEqual(straight['step'], 4)
    final = tiny.weights(self.task)
    # Crash after 3 steps (mid epoch 1), with a checkpoint every step.
    tiny.reset(self.task)
    cfg = self._cfg('split', num_epochs=2, save_checkpoint_steps=1)
    with self.assertRaises(_Interrupt):
      loop.train(cfg, task=_StopAfter(self.task, 3))
    tiny.reset(self.task)  # Forget the in-memory state: only the ckpt counts.
    resumed = loop.train(cfg, task=self.task)
    self.assertEqual(os.path.basename(resumed['resumed_from']), 'ckpt-3')
    self.assertEqual(resumed['step'], 4)
    for a, b in zip(final, tiny.weights(self.task)):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    # Same per-epoch means, the resumed epoch's included.
    for epoch in ('0', '1'):
      for split in ('train', 'val'):
        want, got = straight['metrics'][epoch], resumed['metrics'][epoch]
        for key in ('loss_total', 'loss_l1_im', 'SIDE', 'MAD'):
          self.assertAllClose(want[split][key], got[split][key], rtol=1e-5)
    with open(os.path.join(cfg.checkpoint_dir, loop.METRICS_FILE)) as f:
      trace = json.load(f)
    self.assertEqual(sorted(trace), ['0', '1'])
    self.assertEqual(trace['1']['step'], 4)
    # A finished run resumes to nothing more.
    again = loop.train(cfg, task=self.task)
    self.assertEqual(again['step'], 4)

  def _stop_and_resume(self, name, asked, pattern):
    """Stops a 2-epoch run (2 steps each) when `asked(task)` on an
    `_EvalCount` proxy; checks the error against `pattern` and that the
    resumed run ends as an unstopped one. Returns the proxy."""
    straight = loop.train(self._cfg('straight', num_epochs=2), task=self.task)
    final = tiny.weights(self.task)
    tiny.reset(self.task)
    cfg = self._cfg(name, num_epochs=2)  # No step checkpoints: the stop saves.
    task = _EvalCount(self.task)
    with self.assertRaisesRegex(loop.TrainingStopped, pattern) as caught:
      loop.train(cfg, task=task, stop=lambda: 'SIGTERM' if asked(task)
                 else None)
    self.assertEqual(caught.exception.reason, 'SIGTERM')
    self.assertEqual(caught.exception.checkpoint,
                     tf.train.latest_checkpoint(cfg.checkpoint_dir))
    tiny.reset(self.task)  # Only the checkpoint counts.
    resumed = loop.train(cfg, task=self.task)
    self.assertEqual(resumed['step'], 4)
    for a, b in zip(final, tiny.weights(self.task)):
      self.assertAllClose(a, b, rtol=1e-5, atol=1e-6)
    for epoch in ('0', '1'):
      for split in ('train', 'val'):
        self.assertAllClose(straight['metrics'][epoch][split]['loss_total'],
                            resumed['metrics'][epoch][split]['loss_total'],
                            rtol=1e-5)
    return task

  def test_stop_saves_mid_epoch_and_resumes_exactly(self):
    # Asked during the 3rd step (mid epoch 1): saved after it.
    task = self._stop_and_resume(
        'stopped', lambda task: task.calls >= 3,
        r'^stopped by SIGTERM at epoch 1, step 1 of 2 \(global step 3\); '
        r'saved .*ckpt-3$')
    self.assertEqual(task.calls, 3)

  def test_stop_during_validation_resumes_with_that_validation(self):
    # Asked during epoch 0's validation: saved with the epoch's steps done.
    task = self._stop_and_resume(
        'stop_in_val', lambda task: task.evals,
        r'epoch 0, step 2 of 2 \(global step 2\); saved .*ckpt-2$')
    self.assertEqual((task.calls, task.evals), (2, 1))

  def test_resume_with_another_batch_size_goes_on_at_the_same_image(self):
    # Stopped after 2 steps of 4 images (8 of the epoch's 16 images seen),
    # resumed with batches of 2: steps 4-7 at the new size, the epoch's
    # images 8-15 in the same shuffled order (shuffle and flips are drawn
    # per image, before batching).
    tiny.write_split(self.data, 'train', 16, with_depth=True, seed=5)
    cfg = self._cfg('rebatch', num_epochs=1)
    task = _Proxy(self.task)
    with self.assertRaises(loop.TrainingStopped):
      loop.train(cfg, task=task, stop=lambda: 'SIGINT' if task.calls >= 2
                 else None)
    small = dataclasses.replace(cfg, batch_size=2)
    order = [n for batch in loop.train_dataset(small, 0)
             for n in batch['name'].numpy()]
    seen = _Names(self.task)
    with self.assertLogs(level='WARNING') as logs:
      loop.train(small, task=seen)
    self.assertEqual(seen.names, order[8:])
    self.assertIn('batch_size 2 now, 4 when this checkpoint was saved: '
                  'epoch 0 goes on after its first 8 images (step 4 at the '
                  'new size)', '\n'.join(logs.output))

  def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(self):
    tiny.write_split(self.data, 'train', 12, with_depth=True, seed=5)
    cfg = self._cfg('nan', num_epochs=3, save_checkpoint_steps=2,
                    train_val_data_dir=self.data)
    task = _Diverge(self.task, at=5)
    with self.assertRaisesRegex(
        loop.NonFiniteLossError,
        r'epoch 1, step 1 of the epoch \(global step 4, 0-based\).*'
        r'loss_total=nan.*last good checkpoint: .*ckpt-4'):
      loop.train(cfg, task=task)
    latest = tf.train.latest_checkpoint(cfg.checkpoint_dir)
    # 3 steps per epoch: ckpt-2 (steps), ckpt-3 (epoch), ckpt-4 (steps).
    self.assertEqual(os.path.basename(latest), 'ckpt-4')
    model = Unsup3D.from_checkpoint(cfg.checkpoint_dir)
    for v in model.weights:
      self.assertTrue(np.all(np.isfinite(v.numpy())), v.name)

  def test_weights_problem_names_diverged_or_non_finite_state(self):
    model, opts = self.task.model, self.task.optimizers
    self.assertIsNone(loop.weights_problem(model, opts))
    kernel = model.netL.weights[0]
    kernel.assign(tf.fill(kernel.shape, 2.0 * loop.WEIGHT_LIMIT))
    self.assertEqual(loop.weights_problem(model, opts),
                     f'weights diverged: max |w| = 2e+04 in {kernel.path}, '
                     'over 10000')
    tiny.reset(self.task)
    slot = opts['netA'].variables[-1]
    slot.assign(tf.fill(slot.shape, np.inf))
    self.assertEqual(loop.weights_problem(model, opts),
                     f'{slot.path} is not finite')
    tiny.reset(self.task)

  def test_resume_uses_the_configs_lr(self):
    cfg = self._cfg('lr', num_epochs=1, lr=1e-3)
    loop.train(cfg, task=self.task)
    tiny.reset(self.task)
    loop.train(dataclasses.replace(cfg, num_epochs=2, lr=2e-5,
                                   view_lr_scale=3.0, depth_lr_scale=0.5),
               task=self.task)
    expected = {'netV': 6e-5, 'netD': 1e-5}  # the scales apply on resume too
    for name, opt in self.task.optimizers.items():
      self.assertAllClose(opt.learning_rate.numpy(), expected.get(name, 2e-5))

  def test_missing_train_split_fails_before_anything(self):
    cfg = self._cfg('missing', train_val_data_dir=self.data + '/nowhere')
    with self.assertRaisesRegex(FileNotFoundError,
                                'train data directory does not exist'):
      loop.train(cfg, task=self.task)
    self.assertFalse(os.path.exists(cfg.checkpoint_dir))
    os.makedirs(self.data + '/empty/train/image')
    os.makedirs(self.data + '/empty/train/depth')
    cfg = self._cfg('empty', train_val_data_dir=self.data + '/empty')
    with self.assertRaisesRegex(ValueError, 'No usable images'):
      loop.train(cfg, task=self.task)
    self.assertFalse(os.path.exists(cfg.checkpoint_dir))

  def test_missing_vgg_weights_fail_before_training(self):
    cfg = self._cfg('vgg', lam_perc=1.0, vgg16_weights='/nowhere/vgg16.pth')
    with self.assertRaisesRegex(FileNotFoundError, 'VGG16 weights'):
      loop.train(cfg)  # Builds its own task (and fails there).
    self.assertFalse(os.path.exists(cfg.checkpoint_dir))

  def test_tensorboard_and_missing_val_split(self):
    data = tiny.write_dataset(tempfile.mkdtemp(dir=self.get_temp_dir()), n_train=4,
                              n_val=0)
    cfg = self._cfg('tb', num_epochs=1, use_logger=True, log_freq=1,
                    train_val_data_dir=data)
    with self.assertLogs('absl', level='WARNING') as logs:
      result = loop.train(cfg, task=self.task)
    self.assertIn('No validation', '\n'.join(logs.output))
    self.assertNotIn('val', result['metrics']['0'])
    tags = {}
    for path in glob.glob(os.path.join(cfg.checkpoint_dir, 'logs', 'train',
                                       'events.*')):
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          tags[value.tag] = value.metadata.plugin_data.plugin_name
    for tag, plugin in [
        ('Loss/loss_total', 'scalars'), ('Loss/loss_l1_im_flip', 'scalars'),
        ('Acc_masked/SIE_masked', 'scalars'),
        ('Acc_masked/NorErr_masked', 'scalars'),
        ('Depth/canon_depth_raw_hist', 'histograms'),
        ('View/view_ry', 'histograms'), ('Light/canon_light_dz', 'histograms'),
        ('Conf/conf_sigma_l1_hist', 'histograms'),
        ('Image/input_image_symline', 'images'),
        ('Image/recon_image_flip', 'images'), ('Depth/recon_normal', 'images'),
        ('Conf/conf_map_percl_flip', 'images'),
        ('Image_rotate/recon_rotate', 'images'),
        ('Depth_gt/norm_err_map_masked', 'images')]:
      self.assertEqual(tags.get(tag), plugin, tag)


if __name__ == '__main__':
  tf.test.main()
