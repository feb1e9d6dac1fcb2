"""Tests of tfunsup3d.train.checkpoints: round trip, fallback, config."""

import os

import keras
import numpy as np
import tensorflow as tf

from tests import tiny
from tfunsup3d import saving
from tfunsup3d.model import Unsup3D
from tfunsup3d.train import checkpoints
from tfunsup3d.train import optimizers


def _model_and_optimizers(cfg):
  model = Unsup3D(cfg)
  return model, optimizers.build_optimizers(model.networks, cfg)


def _perturb(model, opts, value):
  """Gives every variable a recognisable value."""
  for v in model.weights:
    v.assign(tf.fill(v.shape, value))
  for opt in opts.values():
    for v in opt.variables:
      v.assign(tf.cast(tf.fill(v.shape, value), v.dtype))


class CheckpointsTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    keras.utils.set_random_seed(0)
    cls.cfg = tiny.tiny_config().resolved()
    cls.model, cls.opts = _model_and_optimizers(cls.cfg)

  def _checkpoints(self, directory, keep=2):
    return checkpoints.Checkpoints(directory, self.model, self.opts, keep)

  def _save_two(self, directory):
    ckpts = self._checkpoints(directory)
    ckpts.write_config(self.cfg)
    _perturb(self.model, self.opts, 1.0)
    first = ckpts.save(epoch=0, step=3, epoch_step=3, trace={'a': 1})
    _perturb(self.model, self.opts, 2.0)
    second = ckpts.save(epoch=1, step=6, epoch_step=0, trace={'a': 2})
    _perturb(self.model, self.opts, 9.0)
    return first, second

  def test_round_trip_weights_slots_and_state(self):
    directory = self.get_temp_dir() + '/round_trip'
    ckpts = self._checkpoints(directory)
    ckpts.write_config(self.cfg)
    rng = np.random.default_rng(0)
    for v in self.model.weights + [
        s for o in self.opts.values() for s in o.variables]:
      v.assign(tf.cast(rng.standard_normal(v.shape), v.dtype))
    saved = [v.numpy() for v in self.model.weights]
    slots = [v.numpy() for o in self.opts.values() for v in o.variables]
    path = ckpts.save(epoch=2, step=17, epoch_step=5, trace={'x': [1, 2]})
    self.assertEqual(os.path.basename(path), 'ckpt-17')
    _perturb(self.model, self.opts, 0.0)
    again = self._checkpoints(directory)
    self.assertEqual(again.restore(), path)
    for a, b in zip(saved, self.model.weights):
      self.assertAllEqual(a, b.numpy())
    for a, b in zip(slots, [v for o in self.opts.values()
                            for v in o.variables]):
      self.assertAllEqual(a, b.numpy())
    self.assertEqual(again.state.get(), {'epoch': 2, 'step': 17,
                                         'epoch_step': 5,
                                         'trace': {'x': [1, 2]}})
    # The directory is a model for Unsup3D.from_checkpoint (config.yml).
    loaded = Unsup3D.from_checkpoint(directory)
    for a, b in zip(saved, loaded.weights):
      self.assertAllEqual(a, b.numpy())

  def test_resume_from_a_relative_directory(self):
    directory = self.get_temp_dir() + '/relative'
    _, second = self._save_two(directory)
    relative = os.path.relpath(directory)
    again = self._checkpoints(relative)
    self.assertEqual(again.restore(), os.path.join(relative, 'ckpt-6'))
    self.assertEqual(os.path.basename(second), 'ckpt-6')
    self.assertEqual(again.state.get()['step'], 6)

  def test_empty_directory_restores_nothing(self):
    ckpts = self._checkpoints(self.get_temp_dir() + '/empty')
    self.assertIsNone(ckpts.restore())

  def test_keep_num_checkpoint(self):
    directory = self.get_temp_dir() + '/keep'
    ckpts = self._checkpoints(directory, keep=2)
    for step in (1, 2, 3):
      ckpts.save(0, step, step, {})
    self.assertEqual(sorted(os.path.basename(p) for p in ckpts.candidates()),
                     ['ckpt-2', 'ckpt-3'])
    every = self._checkpoints(directory + '_all', keep=-1)
    for step in (1, 2, 3):
      every.save(0, step, step, {})
    self.assertLen(every.candidates(), 3)

  def test_newest_is_the_last_saved_not_the_highest_number(self):
    # A run restarted with resume=false saves lower step numbers.
    directory = self.get_temp_dir() + '/restarted'
    self._checkpoints(directory).save(3, 100, 0, {})
    _perturb(self.model, self.opts, 5.0)
    restarted = self._checkpoints(directory).save(0, 2, 2, {})
    _perturb(self.model, self.opts, 0.0)
    ckpts = self._checkpoints(directory)
    self.assertEqual(ckpts.candidates()[0], restarted)
    self.assertEqual(ckpts.restore(), restarted)
    self.assertEqual(ckpts.state.get()['step'], 2)

  def _check_fallback(self, directory, first, second):
    ckpts = self._checkpoints(directory)
    with self.assertLogs('absl', level='WARNING') as logs:
      self.assertEqual(ckpts.restore(), first)
    self.assertIn('ckpt-6', '\n'.join(logs.output))
    self.assertAllEqual(self.model.weights[0].numpy(),
                        np.ones(self.model.weights[0].shape))
    self.assertEqual(ckpts.state.get()['step'], 3)
    # The bad one is moved aside and the state file no longer names it.
    self.assertEqual(tf.train.latest_checkpoint(directory), first)
    self.assertTrue(os.listdir(os.path.join(directory, 'corrupt')))
    self.assertEqual(checkpoints.Checkpoints(
        directory, self.model, self.opts).candidates(), [first])
    # New saves go on from there.
    third = ckpts.save(1, 4, 1, {})
    self.assertEqual(tf.train.latest_checkpoint(directory), third)
    # The older one kept is still under max_to_keep (2): the next save
    # deletes it instead of leaving it orphaned.
    fourth = ckpts.save(1, 7, 4, {})
    self.assertEqual(ckpts.candidates(), [fourth, third])
    self.assertEqual(tf.io.gfile.glob(first + '.*'), [])

  def test_truncated_newest_falls_back_to_previous(self):
    directory = self.get_temp_dir() + '/truncated'
    first, second = self._save_two(directory)
    data = second + '.data-00000-of-00001'
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
    self._check_fallback(directory, first, second)

  def test_missing_index_falls_back_to_previous(self):
    directory = self.get_temp_dir() + '/no_index'
    first, second = self._save_two(directory)
    os.remove(second + '.index')
    self._check_fallback(directory, first, second)

  def test_garbage_index_falls_back_to_previous(self):
    directory = self.get_temp_dir() + '/garbage'
    first, second = self._save_two(directory)
    with open(second + '.index', 'wb') as f:
      f.write(b'not a checkpoint index')
    self._check_fallback(directory, first, second)

  def test_a_state_file_of_bytes_or_garbage_is_rewritten(self):
    for name, junk in (('bytes', bytes(range(256)) * 2),
                       ('text', b'no state here: {\n')):
      with self.subTest(name):
        directory = self.get_temp_dir() + '/state_' + name
        first, second = self._save_two(directory)
        with open(os.path.join(directory, 'checkpoint'), 'wb') as f:
          f.write(junk)
        self.assertEqual(saving.checkpoint_candidates(directory),
                         [second, first])  # by number
        ckpts = self._checkpoints(directory)
        self.assertIsNone(ckpts.latest)
        self.assertEqual(ckpts.restore(), second)
        self.assertEqual(tf.train.latest_checkpoint(directory), second)
        third = ckpts.save(2, 9, 3, {})
        self.assertEqual(ckpts.candidates(), [third, second])

  def test_a_bad_state_file_without_checkpoints_is_set_aside(self):
    directory = self.get_temp_dir() + '/state_only'
    os.makedirs(directory)
    with open(os.path.join(directory, 'checkpoint'), 'wb') as f:
      f.write(bytes(range(256)))
    ckpts = self._checkpoints(directory)
    self.assertIsNone(ckpts.restore())
    first = ckpts.save(0, 1, 1, {})
    self.assertEqual(ckpts.candidates(), [first])
    self.assertEqual(os.listdir(os.path.join(directory, 'corrupt')),
                     ['checkpoint'])

  def test_a_saved_model_folder_is_not_taken_for_a_run(self):
    directory = self.get_temp_dir() + '/model_only'
    saving.save(self.model, directory)
    self.assertEqual(saving.load(directory).cfg.nf_depth, self.cfg.nf_depth)
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                'holds a saved model, not a training run'):
      self._checkpoints(directory).restore()

  def test_all_unloadable_is_an_error(self):
    directory = self.get_temp_dir() + '/all_bad'
    first, second = self._save_two(directory)
    for path in (first, second):
      os.remove(path + '.index')
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                'No checkpoint in .* can be loaded'):
      self._checkpoints(directory).restore()

  def test_other_network_sizes_are_a_clear_error(self):
    directory = self.get_temp_dir() + '/sizes'
    self._save_two(directory)
    other = tiny.tiny_config(nf_encoder=8)
    with self.assertRaisesRegex(checkpoints.CheckpointError,
                                'nf_encoder: 4 in .*8 now'):
      self._checkpoints(directory).check_config(other)
    self._checkpoints(directory).check_config(self.cfg)  # Same sizes: fine.


if __name__ == '__main__':
  tf.test.main()
