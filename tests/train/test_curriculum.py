"""Tests for tfunsup3d.train.curriculum: hand-derived schedules and crops,
and the training task's use of them."""

import numpy as np
import tensorflow as tf

from tfunsup3d import config
from tfunsup3d import render
from tfunsup3d.train import curriculum
from tfunsup3d.train import task as task_lib
from tests import tiny


class RampTest(tf.test.TestCase):

  def test_hold_then_linear_then_one(self):
    got = [float(curriculum.ramp(s, 0.6, 10, 20))
           for s in (0, 10, 15, 20, 30, 100)]
    # 0.6 + 0.4 * clip((s - 10) / 20, 0, 1)
    self.assertAllClose(got, [0.6, 0.6, 0.7, 0.8, 1.0, 1.0], atol=1e-6)

  def test_no_ramp_jumps_after_hold(self):
    got = [float(curriculum.ramp(s, 0.5, 4, 0)) for s in (0, 3, 4, 9)]
    self.assertAllClose(got, [0.5, 0.5, 1.0, 1.0])

  def test_start_one_is_off(self):
    self.assertAllClose(curriculum.ramp(0, 1.0, 5, 5), 1.0)


class CentreCropTest(tf.test.TestCase):

  def test_linear_ramp_is_zoomed_about_the_centre(self):
    # image[.., j] = j; bilinear sampling of a linear map is exact: output
    # column j samples c + (j - c) * f with c = (W - 1) / 2.
    w, f = 9, 0.5
    image = np.tile(np.arange(w, dtype=np.float32), (1, 5, 1))[..., None]
    out = curriculum.centre_crop(image, f).numpy()[0, :, :, 0]
    c = (w - 1) / 2.0
    expected = c + (np.arange(w) - c) * f
    self.assertAllClose(out, np.tile(expected, (5, 1)), atol=1e-5)

  def test_fraction_one_is_identity(self):
    image = np.random.default_rng(0).uniform(size=(2, 8, 8, 3))
    out = curriculum.centre_crop(image.astype(np.float32), 1.0)
    self.assertAllClose(out, image, atol=1e-5)

  def test_mirror_symmetry_is_kept(self):
    rng = np.random.default_rng(1)
    half = rng.uniform(size=(1, 16, 8, 3)).astype(np.float32)
    image = np.concatenate([half, half[:, :, ::-1]], axis=2)
    out = curriculum.centre_crop(image, 0.7).numpy()
    self.assertAllClose(out, out[:, :, ::-1], atol=1e-5)
    self.assertGreater(np.abs(out - image).max(), 0.05)  # it did crop


class CropSomeTest(tf.test.TestCase):

  def test_each_image_cropped_or_kept_with_its_depth(self):
    rng = np.random.default_rng(4)
    inputs = {'image': rng.uniform(size=(64, 8, 8, 3)).astype(np.float32),
              'depth_gt': rng.uniform(size=(64, 8, 8, 1)).astype(np.float32)}
    seed = tf.constant([0, 7])
    out = curriculum.crop_some(inputs, 0.5, 0.3, seed)
    cropped = {k: curriculum.centre_crop(v, 0.5).numpy()
               for k, v in inputs.items()}
    picked = np.array([np.allclose(out['image'][i], cropped['image'][i])
                       for i in range(64)])
    kept = np.array([np.allclose(out['image'][i], inputs['image'][i])
                     for i in range(64)])
    self.assertTrue(np.all(picked ^ kept))  # each image one or the other
    self.assertBetween(picked.mean(), 0.1, 0.5)  # about 0.3 of 64
    for key in inputs:  # the depth follows its image
      expect = np.where(picked[:, None, None, None], cropped[key],
                        inputs[key])
      self.assertAllClose(out[key], expect)
    again = curriculum.crop_some(inputs, 0.5, 0.3, seed)
    self.assertAllClose(again['image'], out['image'])  # same seed, same
    for p, share in ((0.0, 0.0), (1.0, 1.0)):
      all_or_none = curriculum.crop_some(inputs, 0.5, p, seed)['image']
      self.assertAllClose(all_or_none, cropped['image'] if share
                          else inputs['image'])


def _task_and_image(seed: int, **overrides):
  """A tiny task (batch 2, `overrides`) and a random [2,64,64,3] image."""
  task = task_lib.Unsup3DTask(tiny.tiny_config(batch_size=2, **overrides))
  image = tf.constant(np.random.default_rng(seed).uniform(
      size=(2, 64, 64, 3)).astype(np.float32))
  return task, image


class TaskFramingTest(tf.test.TestCase):

  def test_training_inputs_follow_the_schedule(self):
    task, image = _task_and_image(2, crop_curriculum=[0.5, 1, 0])
    framed, relief, K = task._curricula({'image': image})  # pylint: disable=protected-access
    self.assertAllClose(framed['image'], curriculum.centre_crop(image, 0.5))
    self.assertEqual(relief, 1.0)
    self.assertIsNone(K)  # crop_camera is for crop_mix only
    task.train_step({'image': image}, 0)
    framed, _, _ = task._curricula({'image': image})  # pylint: disable=protected-access
    self.assertAllClose(framed['image'], image, atol=1e-5)

  def test_relief_narrows_the_depth_range_about_its_centre(self):
    task, image = _task_and_image(3, relief_curriculum=[0.4, 0, 10])
    _, relief, _ = task._curricula({'image': image})  # pylint: disable=protected-access
    self.assertAllClose(relief, 0.4)
    full = task.model.canonical(image)['canon_depth_raw']
    # depth at relief r = mid + r * (depth at 1 - mid), mid = 1.0
    whole = 1.0 + 0.1 * np.tanh(full - np.mean(full, axis=(1, 2),
                                               keepdims=True))
    narrow = task.model.canonical(image, relief)
    self.assertAllClose(narrow['canon_depth'][:, :, 2:-2],
                        1.0 + 0.4 * (whole - 1.0)[:, :, 2:-2], atol=1e-6)
    self.assertAllClose(narrow['canon_depth'][:, :, :2], np.full(
        (2, 64, 2), task.cfg.border_depth), atol=1e-6)

  def test_crop_mix_draws_per_step(self):
    task, _ = _task_and_image(5, crop_mix=[0.5, 0.5])
    image = tf.constant(np.random.default_rng(5).uniform(
        size=(32, 64, 64, 3)).astype(np.float32))
    framed, _, _ = task._curricula({'image': image})  # pylint: disable=protected-access
    expect = curriculum.crop_some({'image': image}, 0.5, 0.5,
                                  tf.constant([task.cfg.seed, 0]))
    self.assertAllClose(framed['image'], expect['image'])
    task.optimizers['netD'].iterations.assign(1)
    later, _, _ = task._curricula({'image': image})  # pylint: disable=protected-access
    self.assertNotAllClose(later['image'], framed['image'])

  def test_off_by_default(self):
    task = task_lib.Unsup3DTask(tiny.tiny_config())
    inputs = {'image': tf.zeros([1, 64, 64, 3])}
    framed, relief, K = task._curricula(inputs)  # pylint: disable=protected-access
    self.assertIs(framed, inputs)
    self.assertEqual(relief, 1.0)
    self.assertIsNone(K)

  def test_crop_camera_renders_the_crops_with_their_field_of_view(self):
    task, image = _task_and_image(6, crop_mix=[0.5, 1.0], crop_camera=True)
    framed, _, K = task._curricula({'image': image})  # pylint: disable=protected-access
    self.assertAllClose(framed['image'], curriculum.centre_crop(image, 0.5))
    # Half the frame: twice the focal length, the same centre.
    full = render.intrinsics(64, task.cfg.fov).numpy()
    self.assertAllClose(K, full * [[2, 1, 1], [1, 2, 1], [1, 1, 1]],
                        rtol=1e-6)
    # A pixel at the crop's edge sees the ray of the whole frame's pixel at
    # half its offset from the centre: same direction in both cameras.
    ray_crop = np.linalg.solve(K.numpy(), [63.0, 31.5, 1.0])
    ray_full = np.linalg.solve(full, [31.5 + 31.5 / 2, 31.5, 1.0])
    self.assertAllClose(ray_crop, ray_full, rtol=1e-6)
    # The step renders with it: training metrics differ from the
    # configured camera's on the same weights and crops.
    with_crop = task._scalars(framed, 0, K=K)  # pylint: disable=protected-access
    plain = task._scalars(framed, 0)  # pylint: disable=protected-access
    self.assertNotAllClose(with_crop['loss_total'], plain['loss_total'])
    self.assertTrue(np.isfinite(task.train_step({'image': image}, 0)[
        'loss_total']))

  def test_crop_camera_needs_every_image_cropped(self):
    for crop_mix in (None, [0.7, 0.5]):
      with self.assertRaisesRegex(config.ConfigError, 'crop_camera'):
        config.Config(crop_mix=crop_mix, crop_camera=True).resolved()
    config.Config(crop_mix=[0.7, 1.0], crop_camera=True).resolved()

  def test_bad_start_is_a_config_error(self):
    for key in ('crop_curriculum', 'relief_curriculum'):
      for bad in ([1.5, 0, 0], [0.5, -1, 0], [0.5, 0], [0.5, 0, float('nan')]):
        with self.assertRaisesRegex(config.ConfigError, key):
          config.Config(**{key: bad}).resolved()
    self.assertEqual(config.load(None, ['crop_curriculum=[0.7,10,20]'])
                     .crop_curriculum, [0.7, 10.0, 20.0])
    for bad in ([0.0, 0.5], [0.5, 1.5], [0.5], [0.5, float('nan')]):
      with self.assertRaisesRegex(config.ConfigError, 'crop_mix'):
        config.Config(crop_mix=bad).resolved()
    self.assertEqual(config.load(None, ['crop_mix=[0.69,0.5]']).crop_mix,
                     [0.69, 0.5])
