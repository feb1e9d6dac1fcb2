"""Tests for tfunsup3d.data.synth_car: the car-like category."""

import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import render
from tfunsup3d.data import images
from tfunsup3d.data import synth
from tfunsup3d.data import synth_car

S = 32
CAR = synth.SynthOptions.for_category('car')


def _cfg(root='.', **kw):
  values = dict(image_size=S, train_val_data_dir=root, load_gt_depth=True,
                batch_size=4, num_workers=1, border_depth=1.08)
  values.update(kw)
  return config_lib.Config(**values)


def _factors(seed=0, n=8, size=S, **options):
  return synth.sample_factors(
      np.random.default_rng(seed), n, size, 0.9, 1.1, 1.08,
      options=synth.SynthOptions.for_category('car', **options))


class CarFactorsTest(tf.test.TestCase):

  def test_same_keys_shapes_and_ranges_as_the_face(self):
    car, face = _factors(n=6), synth.sample_factors(
        np.random.default_rng(0), 6, S)
    self.assertEqual({k: v.shape for k, v in car.items()},
                     {k: v.shape for k, v in face.items()})
    self.assertEqual({k: v.dtype for k, v in car.items()},
                     {k: v.dtype for k, v in face.items()})
    self.assertAllInRange(car['canon_depth'], 0.9, 1.1)
    self.assertAllInRange(car['canon_albedo'], -1.0, 1.0)
    self.assertAllClose(car['canon_depth'][:, :, :2], np.full((6, S, 2), 1.08))
    self.assertAllClose(np.linalg.norm(car['light_d'], axis=1), np.ones(6))
    # The diffuse light stays within configs/synthcar.yml's [0.5, 1].
    self.assertAllInRange(car['light_b'], 0.5, 1.1 - car['light_a'].min())
    self.assertAllEqual(car['light_a'] + car['light_b'] <= 1.1 + 1e-6,
                        np.ones((6, 1), bool))

  def test_exact_mirror_symmetry_without_asymmetry(self):
    f = _factors(n=16, asymmetry=0.0)
    for key in ('canon_depth', 'canon_albedo', 'face_mask',
                'backdrop_albedo'):
      self.assertAllEqual(f[key], f[key][:, :, ::-1])
    asym = _factors(n=16, asymmetry=1.0)
    self.assertAllEqual(asym['canon_depth'], asym['canon_depth'][:, :, ::-1])
    self.assertGreater(np.abs(asym['canon_albedo']
                              - asym['canon_albedo'][:, :, ::-1]).max(), 0.1)

  def test_the_car_is_nearer_than_the_backdrop(self):
    f = _factors(n=12, size=64)
    d, car = f['canon_depth'], f['face_mask'] > 0.5
    inner = np.zeros_like(car)
    inner[:, :, 2:-2] = True
    for i in range(len(d)):
      backdrop = d[i][inner[i] & ~car[i]]
      self.assertLess(np.ptp(backdrop), 1e-6)  # a plane
      self.assertLess(d[i][car[i]].max(), backdrop.min())
      self.assertLess(d[i][car[i]].mean(), backdrop.min() - 0.04)
    coverage = car.mean(axis=(1, 2))
    self.assertAllInRange(coverage, 0.12, 0.45)

  def test_front_face_depth_by_hand(self):
    # A car whose lower body is centred on the middle row (y = 0) of a
    # 33-pixel grid at zoom 1: sill 0.2, front face 0.25, hood band 0.15
    # (belt -0.2). At the centre pixel the relief is body_amp exactly, so in
    # tanh space (what `representable` shifts uniformly) the front stands
    # atanh((1.08 - 0.2 body_amp - 1) / 0.1) - atanh(0.8) before the
    # backdrop.
    params = synth.sample_params(np.random.default_rng(3), 2, CAR)
    params.update(zoom=np.ones(2), ground_y=np.full(2, 0.3),
                  clearance=np.full(2, 0.1), body_h=np.full(2, 0.25),
                  hood_h=np.full(2, 0.15), body_amp=np.array([0.5, 0.6]))
    d = synth_car.factors_from_params(params, 33, 0.9, 1.1, 1.08)[
        'canon_depth'].astype(np.float64)
    raw = np.arctanh((d - 1.0) / 0.1)
    relief = raw[:, 16, 16] - raw[:, 0, 16]  # the centre, the top backdrop
    expected = np.arctanh((1.08 - 0.2 * params['body_amp'] - 1.0) / 0.1
                          ) - np.arctanh(0.8)
    self.assertAllClose(relief, expected, atol=2e-5)  # float32 depth

  def test_shape_varies_per_instance(self):
    f = _factors(n=8, size=64, asymmetry=0.0)
    widths = f['face_mask'].max(axis=1).sum(axis=1)  # silhouette widths
    heights = f['face_mask'].max(axis=2).sum(axis=1)
    self.assertGreater(np.ptp(widths), 3)
    self.assertGreater(np.ptp(heights), 3)
    self.assertGreater(np.std(f['canon_depth'].min(axis=(1, 2))), 1e-3)

  def test_same_seed_same_factors(self):
    a, b, c = _factors(3), _factors(3), _factors(4)
    for key in a:
      self.assertAllEqual(a[key], b[key])
    self.assertNotAllClose(a['canon_depth'], c['canon_depth'])

  def test_views_turn_wide(self):
    view = synth.sample_params(np.random.default_rng(0), 400, CAR)['view']
    yaw = np.degrees(np.abs(view[:, 1]))
    self.assertLessEqual(yaw.max(), 60.0)
    self.assertGreater(np.mean(yaw > 45.0), 0.15)
    self.assertLessEqual(np.degrees(np.abs(view[:, 0])).max(), 5.0)
    self.assertLessEqual(np.degrees(np.abs(view[:, 2])).max(), 3.0)


class CarWriteTest(tf.test.TestCase):

  def test_written_split_gt_depth_mask_and_meta(self):
    root = tempfile.mkdtemp(prefix='test_synth_car_')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    cfg = _cfg(root)
    synth.write_dataset(root, {'test': 5}, cfg, seed=2, options=CAR)
    test = os.path.join(root, 'test')
    with np.load(os.path.join(test, 'factors.npz')) as z:
      meta = json.loads(str(z['meta']))
      params = {k[len('param_'):]: z[k] for k in z.files
                if k.startswith('param_')}
    self.assertEqual(meta['options']['category'], 'car')
    self.assertEqual(meta['options']['max_yaw'], 60.0)
    # The scene's geometry is recorded with it, as the renderer used it.
    self.assertEqual({k: meta[k] for k in ('min_depth', 'max_depth',
                                           'border_depth', 'fov',
                                           'rot_center_depth',
                                           'anti_aliasing')},
                     dict(min_depth=0.9, max_depth=1.1, border_depth=1.08,
                          fov=cfg.fov, rot_center_depth=1.0,
                          anti_aliasing=True))
    self.assertIn('body_w', params)
    self.assertEqual(synth.changed_options(test, CAR), {})
    self.assertEqual(synth.changed_options(test)['category'], ('car', 'face'))
    # Re-render from the stored parameters: the PNGs hold that depth exactly
    # where the car is, p = 0 elsewhere.
    f = synth_car.factors_from_params(params, S, 0.9, 1.1, 1.08)
    _, depth, mask = synth.render_instances(f, cfg)
    pngs = np.stack([np.asarray(Image.open(os.path.join(
        test, 'depth', f'{i:06d}_depth.png'))) for i in range(5)])
    self.assertAllEqual(pngs > 0, mask)
    self.assertGreater(mask.mean(), 0.05)
    got = images.decode_depth(pngs / 65535.0, 0.9, 1.1)
    self.assertAllClose(got[mask], depth[mask], atol=0.2 / 65535 + 1e-6)
    # The rendered car is nearer than the backdrop around it.
    K = render.intrinsics(S, cfg.resolved().fov)
    full = render.render_depth(f['canon_depth'], f['view'], K, 1.0, 0.9, 1.1,
                               anti_aliasing=True).numpy()
    for i in range(5):
      backdrop = full[i][~mask[i] & (full[i] < 1.1)]
      self.assertLess(np.median(depth[i][mask[i]]), np.median(backdrop))


if __name__ == '__main__':
  tf.test.main()
