"""Tests of tfunsup3d.saving: every format, the merge rule, the fallback rule.

Round trips use a tiny model whose settings the weights cannot reveal
(gn_channels, depth range, z_translation_range, lam_depth_sm) are not the
defaults: a format that dropped one would decompose differently (depth range,
GroupNorm groups) or come back with another config.
"""

import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf
import yaml

from tests import fixtures
from tests import testcase
from tests import tiny
from tfunsup3d import config as config_lib
from tfunsup3d import saving
from tfunsup3d.convert import reference, torch_format
from tfunsup3d.errors import CheckpointError
from tfunsup3d.export import saved_model

# Settings a .pth's weights cannot reveal, all away from their defaults.
HIDDEN = dict(gn_channels=4, z_translation_range=0.3, lam_depth_sm=0.05,
              min_depth=0.8, max_depth=1.25, lam_flip=0.3, fov=12.0,
              xyz_rotation_range=30.0)


def _write_authors_pth(model, path):
  """A .pth as the authors' trainer writes it: the nets and an epoch."""
  state = {name: reference.state_dict_from_model(net, name)
           for name, net in model.networks.items()}
  state['epoch'] = 30
  os.makedirs(os.path.dirname(path), exist_ok=True)
  torch_format.save(state, path)
  return path


def _save_two(model, directory):
  """Two checkpoints (weights w, then w + 1); returns both prefixes."""
  os.makedirs(directory, exist_ok=True)
  saving.write_text_atomic(os.path.join(directory, saving.CONFIG_FILE),
                           model.cfg.to_yaml())
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                       directory, max_to_keep=2,
                                       checkpoint_name=saving.PREFIX)
  first = manager.save()
  original = [v.numpy() for v in model.weights]
  for v in model.weights:
    v.assign(v + 1.0)
  second = manager.save()
  for v, value in zip(model.weights, original):
    v.assign(value)
  return first, second


def test_write_atomic_failure_names_the_target_and_leaves_nothing(tmp_path):
  target = str(tmp_path / 'x.pth')

  def half_then_fail(tmp):
    with open(tmp, 'wb') as f:
      f.write(b'half')
    raise FileNotFoundError(2, 'No such file or directory', tmp)

  try:
    saving.write_atomic(target, half_then_fail)
  except FileNotFoundError as e:
    assert e.filename == target, e  # Not the temporary name.
  else:
    raise AssertionError('no error')
  assert os.listdir(tmp_path) == []
  saving.write_atomic(target, lambda tmp: open(tmp, 'wb').close())
  assert os.listdir(tmp_path) == ['x.pth']


class SavingTest(testcase.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-saving-')
    cls.model = tiny.tiny_model(seed=3, **HIDDEN)
    cls.images = tf.constant(np.stack(
        [tiny.face_like_image(64, 64, seed=s) for s in (0, 1)]
    ).astype(np.float32) / 255.0)
    cls.want = testcase.model_outputs(cls.model, cls.images)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def path(self, name):
    return os.path.join(self.tmp, self.id().rsplit('.', 1)[-1], name)

  def assert_same(self, loaded, what):
    self.assert_same_model(loaded, self.model, self.images, what, self.want)

  def save_and_load(self, loaded, path):
    """`run_saving_test` of a model that is `self.model` loaded back."""
    return self.run_saving_test(loaded, self.images, path, self.want)

  # --- formats and round trips -------------------------------------------

  def test_directory_round_trip_names_its_directory(self):
    directory = self.path('dir')
    prefix = saving.save(self.model, directory)
    self.assertEqual(prefix, os.path.join(directory, 'ckpt-1'))
    with self.assertRaises(FileExistsError):
      saving.save(self.model, directory)
    for path in (directory, prefix, prefix + '.index',
                 os.path.relpath(directory)):
      loaded = saving.load(path)
      self.assert_same(loaded, path)
      self.assertEqual(loaded.cfg.checkpoint_dir, directory)

  def test_pth_round_trip_both_directions(self):
    loaded = self.save_and_load(self.model, self.path('q.pth'))
    # .pth -> directory -> .pth: the same model each time.
    directory = self.path('from_pth')
    loaded = self.save_and_load(loaded, directory)
    again = self.save_and_load(loaded, self.path('again.pth'))
    # The converted config names its own place, not the source's.
    self.assertEqual(config_lib.load(
        os.path.join(directory, saving.CONFIG_FILE)).checkpoint_dir, directory)
    self.assertEqual(again.cfg.checkpoint_name, 'again.pth')

  def test_pth_holds_the_reference_keys_and_the_config(self):
    pth = self.path('q.pth')
    saving.save(self.model, pth, epoch=7)
    state = torch_format.load(pth)
    self.assertEqual(sorted(state), sorted(
        ['epoch', 'netA', 'netC', 'netD', 'netL', 'netV',
         saving.PTH_CONFIG_KEY]))
    self.assertIsInstance(state[saving.PTH_CONFIG_KEY], str)  # torch reads it
    carried = config_lib.from_dict(
        yaml.safe_load(state[saving.PTH_CONFIG_KEY]))
    self.assertEqual(carried.gn_channels, 4)
    self.assertEqual(carried.z_translation_range, 0.3)
    self.assertEqual(carried.lam_depth_sm, 0.05)
    # The state dicts are the ones the reference layout maps to.
    nets = torch_format.load_state_dicts(pth)
    self.assertEqual(nets['netD']['network.0.weight'].shape, (16, 3, 4, 4))

  def test_saved_model_outputs_and_load_back(self):
    export = saved_model.export_saved_model(self.model, self.path('sm'),
                                            'tiny', 1)
    served = tf.saved_model.load(export).signatures['serving_default'](
        images=self.images)
    keras_out = saved_model.serving_outputs(self.model, self.images)
    for key, want in keras_out.items():
      # recon_im: see tests/export/test_saved_model.py (graph kernels may
      # round depth by 1 ulp, which moves reprojected pixels by ~1e-4).
      atol = 2e-4 if key == 'recon_im' else 1e-5
      np.testing.assert_allclose(served[key].numpy(), want.numpy(),
                                 atol=atol, rtol=0, err_msg=key)
    loaded = saving.load(export)
    with self.assertRaisesRegex(CheckpointError, 'pass one version directory'):
      saving.load(os.path.dirname(export))
    for a, b in zip(self.model.weights, loaded.weights):
      self.assertAllEqual(a, b)
    self.assert_same(loaded, 'SavedModel')
    # SavedModel -> .pth -> directory keeps the model too.
    loaded = self.save_and_load(loaded, self.path('from_sm.pth'))
    self.save_and_load(loaded, self.path('from_sm_dir'))

  def test_saved_model_without_metadata_says_what_to_pass(self):
    bare = self.path('bare')
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, bare)
    with self.assertRaisesRegex(CheckpointError, 'for serving.*pass the '
                                'checkpoint directory or .pth'):
      saving.load(bare)

  def test_authors_pth_sizes_from_weights(self):
    pth = _write_authors_pth(self.model, self.path('authors.pth'))
    # The authors' file has only the sizes: the defaults give the rest.
    loaded = saving.load(pth, tiny.tiny_config(**HIDDEN))
    self.assertEqual((loaded.cfg.nf_depth, loaded.cfg.nf_encoder), (16, 4))
    self.assert_same(loaded, 'authors .pth')

  def test_authors_fixtures_load(self):
    fixtures.require_reference(self, 'ckpt_zip.pth', 'ckpt_legacy_trainer.pth')
    for name in ('ckpt_zip.pth', 'ckpt_legacy_trainer.pth'):
      model = saving.load(fixtures.reference_path(name))
      self.assertEqual(model.cfg.nf_depth, 16, name)
      self.assertTrue(model.cfg.use_conf_map, name)
      # The authors' file -> .pth of ours: the same weights, sizes carried.
      pth = self.path(name)
      saving.save(model, pth)
      back = saving.load(pth)
      for a, b in zip(model.weights, back.weights):
        self.assertAllEqual(a, b)

  # --- the merge rule ------------------------------------------------------

  def test_merge_defaults_under_own_under_overrides(self):
    defaults = config_lib.from_dict(dict(nf_depth=64, lam_flip=0.9,
                                         min_depth=0.85, lam_depth_sm=0.2))
    # A directory's own config has every key: defaults never show.
    directory = self.path('dir')
    saving.save(self.model, directory)
    cfg = saving.load(directory, defaults, lam_depth_sm=0.5).cfg
    self.assertEqual((cfg.nf_depth, cfg.lam_flip, cfg.min_depth),
                     (16, 0.3, 0.8))
    self.assertEqual(cfg.lam_depth_sm, 0.5)
    # An authors' .pth has only its sizes: the defaults give the rest.
    pth = _write_authors_pth(self.model, self.path('authors.pth'))
    cfg = saving.load(pth, defaults, lam_flip=0.1).cfg
    self.assertEqual((cfg.nf_depth, cfg.min_depth, cfg.lam_flip,
                      cfg.lam_depth_sm), (16, 0.85, 0.1, 0.2))
    # A .pth of ours carries its config: defaults lose, overrides win.
    ours = self.path('ours.pth')
    saving.save(self.model, ours)
    cfg = saving.load(ours, defaults, min_depth=0.7).cfg
    self.assertEqual((cfg.lam_flip, cfg.min_depth, cfg.gn_channels),
                     (0.3, 0.7, 4))

  def test_shape_override_mismatch_is_one_line(self):
    directory = self.path('dir')
    saving.save(self.model, directory)
    for path in (directory, self.path('q.pth')):
      saving.save(self.model, path, overwrite=True)
      with self.assertRaises(CheckpointError) as caught:
        saving.load(path, nf_encoder=8)
      message = str(caught.exception)
      self.assertNotIn('\n', message)
      for part in (path, 'nf_encoder=4', 'nf_encoder=8', 'drop that override'):
        self.assertIn(part, message)
    # Equal values of shape keys are fine.
    self.assertEqual(saving.load(directory, nf_encoder=4).cfg.nf_encoder, 4)

  def test_authors_pth_runs_at_another_image_size_with_a_warning(self):
    pth = _write_authors_pth(self.model, self.path('authors.pth'))
    with self.assertLogs('absl', level='WARNING') as logs:
      model = saving.load(pth, image_size=128)
    self.assertEqual(model.cfg.image_size, 128)
    self.assertIn('image_size=128', '\n'.join(logs.output))
    with self.assertRaisesRegex(CheckpointError, 'use_conf_map=True'):
      saving.load(pth, use_conf_map=False)

  def test_with_config_refuses_other_shapes(self):
    other = self.model.with_config(lam_flip=1.0)
    self.assertEqual(other.cfg.lam_flip, 1.0)
    with self.assertRaisesRegex(CheckpointError, 'nf_depth=16.*nf_depth=32'):
      self.model.with_config(nf_depth=32)

  # --- the fallback rule ---------------------------------------------------

  def test_unloadable_newest_falls_back_with_one_warning(self):
    directory = self.path('two')
    first, second = _save_two(self.model, directory)
    data = second + '.data-00000-of-00001'
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
    before = sorted(os.listdir(directory))
    with self.assertLogs('absl', level='WARNING') as logs:
      loaded = saving.load(directory)
    self.assert_same(loaded, 'fallback')  # w, not w + 1
    warnings = [r.getMessage() for r in logs.records]
    self.assertLen(warnings, 1)
    self.assertNotIn('\n', warnings[0])
    self.assertIn(f'Skipped unloadable checkpoint {second}', warnings[0])
    self.assertIn(f'loaded {first}', warnings[0])
    self.assertEqual(sorted(os.listdir(directory)), before)  # Read-only.

  def test_no_loadable_checkpoint_is_one_line(self):
    directory = self.path('none')
    first, second = _save_two(self.model, directory)
    os.remove(first + '.index')
    with open(second + '.index', 'wb') as f:
      f.write(b'not an index')
    with self.assertRaises(CheckpointError) as caught:
      saving.load(directory)
    message = str(caught.exception)
    self.assertNotIn('\n', message)
    self.assertIn(f'No checkpoint in {directory} can be loaded', message)
    self.assertIn('ckpt-1.index is missing', message)
    # A prefix named explicitly gets no fallback.
    with self.assertRaisesRegex(CheckpointError, 'ckpt-2'):
      saving.load(second)

  def test_missing_and_foreign_paths(self):
    with self.assertRaisesRegex(CheckpointError, 'Checkpoint not found'):
      saving.load(self.path('nothing'))
    empty = self.path('empty')
    os.makedirs(empty)
    with self.assertRaisesRegex(CheckpointError, 'No TF checkpoint in'):
      saving.load(empty)
    text = self.path('notes.pth')
    with open(text, 'w') as f:
      f.write('hello')
    with self.assertRaisesRegex(CheckpointError, 'notes.pth'):
      saving.load(text)

  def test_non_finite_weights_are_refused_in_every_format(self):
    broken = tiny.tiny_model(seed=4, **HIDDEN)
    var = broken.netD.weights[0]
    value = var.numpy()
    value.flat[3] = np.nan
    var.assign(value)
    for path in (self.path('nan.pth'), self.path('nan_dir')):
      saving.save(broken, path)
      with self.assertRaises(CheckpointError) as caught:
        saving.load(path)
      self.assertEqual(
          str(caught.exception),
          f'{path} holds non-finite weights (NaN or Inf) in {var.path}: it '
          'is not a usable model.')

  def test_path_from_config(self):
    directory = self.path('run')
    saving.save(self.model, directory)
    cfg = config_lib.from_dict({'checkpoint_dir': directory})
    self.assertEqual(saving.path_from_config(cfg), directory)
    named = config_lib.from_dict({'checkpoint_dir': directory,
                                  'checkpoint_name': 'ckpt-1'})
    self.assertEqual(saving.path_from_config(named),
                     os.path.join(directory, 'ckpt-1'))
    pths = self.path('pths')
    os.makedirs(pths)
    for name in ('checkpoint010.pth', 'checkpoint030.pth'):
      open(os.path.join(pths, name), 'wb').close()
    self.assertEqual(saving.path_from_config(
        config_lib.from_dict({'checkpoint_dir': pths})),
                     os.path.join(pths, 'checkpoint030.pth'))
    with self.assertRaisesRegex(CheckpointError, 'No checkpoint in'):
      saving.path_from_config(config_lib.from_dict(
          {'checkpoint_dir': self.path('nowhere')}))


if __name__ == '__main__':
  tf.test.main()
