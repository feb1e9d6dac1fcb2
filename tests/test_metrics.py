"""Tests for tfunsup3d.metrics: SIDE, MAD, MAE, MSE and their masks."""

import math

import numpy as np
import tensorflow as tf

from tfunsup3d import metrics
from tfunsup3d.render import camera

BACKGROUND = 1.1


def _square_gt(size=8, depth=1.0):
  """GT depth: a (size-2)^2 foreground square at `depth` inside a 1-pixel
  background rim at BACKGROUND (the maximum)."""
  gt = np.full([1, size, size], BACKGROUND, np.float32)
  gt[:, 1:-1, 1:-1] = depth
  return gt


def _plane_depth(normal, z0, K, size):
  """Depth map of the plane through (0, 0, z0) with normal `normal`:
  z = n.(0,0,z0) / n.r for the z = 1 ray r = K^-1 (u, v, 1)."""
  kinv = np.linalg.inv(K.numpy().astype(np.float64))
  v, u = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
  rays = np.stack([u, v, np.ones_like(u)], -1) @ kinv.T
  n = np.asarray(normal, np.float64)
  return (n[2] * z0 / (rays @ n))[None].astype(np.float32)


class ErodeTest(tf.test.TestCase):

  def test_removes_exactly_the_rim_of_a_square(self):
    mask = np.zeros([1, 9, 9], np.float32)
    mask[0, 2:7, 2:7] = 1.0  # 5x5 square
    expect = np.zeros_like(mask)
    expect[0, 3:6, 3:6] = 1.0  # its 3x3 interior
    self.assertAllEqual(metrics.erode(mask), expect)

  def test_image_border_counts_as_background(self):
    # Zero padding is counted in the 3x3 mean: a full mask loses its frame.
    expect = np.zeros([2, 5, 6], np.float32)
    expect[:, 1:-1, 1:-1] = 1.0
    self.assertAllEqual(metrics.erode(np.ones([2, 5, 6])), expect)

  def test_one_hole_removes_its_neighbourhood(self):
    mask = np.ones([1, 7, 7], np.float32)
    mask[0, 3, 3] = 0.0
    got = metrics.erode(mask).numpy()
    self.assertAllEqual(got[0, 2:5, 2:5], np.zeros([3, 3]))
    self.assertEqual(got.sum(), 25 - 9)  # 5x5 interior minus the 3x3 hole

  def test_bool_input(self):
    self.assertAllEqual(metrics.erode(np.ones([1, 3, 3], bool)),
                        [[[0, 0, 0], [0, 1, 0], [0, 0, 0]]])


class DepthMetricsTest(tf.test.TestCase):

  def test_mae_mse_hand_values(self):
    size = 8
    K = camera.intrinsics(size)
    gt = _square_gt(size)  # foreground rows/cols 1..6 -> eroded 2..5 (4x4)
    pred = np.full_like(gt, 5.0)  # outside the mask: must not count
    pred[:, 2:6, 2:4] = 1.1  # 8 pixels off by +0.1
    pred[:, 2:6, 4:6] = 0.95  # 8 pixels off by -0.05
    out = metrics.depth_metrics(pred, np.ones_like(gt), gt, K)
    mask = np.zeros_like(gt)
    mask[:, 2:6, 2:6] = 1.0
    self.assertAllEqual(out['mask'], mask)
    self.assertAllClose(out['mae'], [(8 * 0.1 + 8 * 0.05) / 16], atol=1e-6)
    self.assertAllClose(out['mse'], [(8 * 0.01 + 8 * 0.0025) / 16],
                        atol=1e-7)
    # SIDE by an independent numpy computation over the same 16 pixels.
    delta = (np.log(pred[mask > 0].astype(np.float64)) -
             np.log(gt[mask > 0].astype(np.float64)))
    self.assertAllClose(out['side'], [delta.std()], rtol=1e-4)

  def test_side_is_scale_invariant(self):
    size = 16
    K = camera.intrinsics(size)
    rng = np.random.default_rng(0)
    gt = _square_gt(size)
    gt[:, 1:-1, 1:-1] = rng.uniform(0.92, 1.05, [size - 2, size - 2])
    out = metrics.depth_metrics(gt * 1.3, np.ones_like(gt), gt, K)
    self.assertLess(float(out['side'][0]), 1e-6)
    self.assertGreater(float(out['mae'][0]), 0.25)  # but not depth-equal
    noisy = gt * rng.uniform(0.98, 1.02, gt.shape).astype(np.float32)
    self.assertGreater(
        float(metrics.depth_metrics(noisy * 1.3, np.ones_like(gt), gt,
                                    K)['side'][0]), 5e-3)

  def test_background_excluded(self):
    size = 10
    K = camera.intrinsics(size)
    gt = np.full([1, size, size], BACKGROUND, np.float32)
    gt[:, 2:8, 3:9] = 1.0  # foreground 6x6 -> eroded rows 3..6, cols 4..7
    good = gt.copy()
    good[:, 3:7, 4:8] = 1.02
    wild = np.where(gt == BACKGROUND, 0.5, good).astype(np.float32)
    valid = np.ones_like(gt)
    a = metrics.depth_metrics(good, valid, gt, K)
    b = metrics.depth_metrics(wild, valid, gt, K)
    self.assertEqual(float(a['mask'].numpy().sum()), 16.0)
    for key in ('mae', 'mse', 'side'):
      self.assertAllClose(a[key], b[key], atol=1e-7, msg=key)
    self.assertAllClose(a['mae'], [0.02], atol=1e-6)

  def test_prediction_mask_eroded(self):
    size = 8
    K = camera.intrinsics(size)
    gt = _square_gt(size)
    valid = np.ones_like(gt)
    valid[:, 3, 5] = 0.0  # one invalid rendered pixel
    out = metrics.depth_metrics(gt.copy(), valid, gt, K)
    mask = np.zeros_like(gt)
    mask[:, 2:6, 2:6] = 1.0
    mask[:, 2:5, 4:6] = 0.0  # its 3x3 neighbourhood inside the 4x4 square
    self.assertAllEqual(out['mask'], mask)

  def test_background_is_the_batch_maximum(self):
    # The reference takes max(depth_gt) over the whole batch: in image 2,
    # whose own background (1.05) is below the batch maximum, the background
    # counts as foreground.
    size = 6
    K = camera.intrinsics(size)
    gt = np.stack([_square_gt(size)[0], np.full([size, size], 1.05)])
    gt[1, 1:-1, 1:-1] = 1.0
    self.assertEqual(gt.dtype, np.float64)  # float64 input is accepted too
    out = metrics.depth_metrics(gt, np.ones_like(gt), gt, K)
    self.assertEqual(out['mask'][0].numpy().sum(), 4.0)
    self.assertEqual(out['mask'][1].numpy().sum(), 16.0)  # 6x6 eroded by 1

  def test_mad_identical_depths(self):
    # The reference normalises normals by |n| + 1e-7. For a fronto-parallel
    # plane at depth z, t_u = (2z/f, 0, 0), t_v = (0, 2z/f, 0), so
    # r = |t_u x t_v| = 4 z^2 / f^2 and n = (0, 0, r / (r + 1e-7)): identical
    # depths score acos((r / (r + 1e-7))^2), 6.51 deg at the reference camera
    # (64 px, fov 10, f = 360) and z = 1 -- a floor baked into its MAD.
    size = 64
    K = camera.intrinsics(size, 10.0)
    f = float(K[0, 0])
    for z, valid_tol in ((1.0, 1e-3), (1000.0, 1e-2)):
      gt = np.full([1, size, size], 2.0 * z, np.float32)
      gt[:, 4:-4, 4:-4] = z
      out = metrics.depth_metrics(gt, np.ones_like(gt), gt, K)
      r = 4.0 * z * z / (f * f)
      expect = math.degrees(math.acos((r / (r + 1e-7)) ** 2))
      self.assertAllClose(out['mad'], [expect], atol=valid_tol, msg=z)
      self.assertAllClose(out['side'], [0.0], atol=1e-7)
      self.assertAllClose(out['mae'], [0.0], atol=1e-7)
    # At z = 1000 the 1e-7 is negligible: the floor is < 0.01 deg.
    self.assertLess(float(out['mad'][0]), 0.01)

  def test_mad_two_tilted_planes(self):
    # Points of a plane give tangents in that plane, so the normal operator
    # returns the plane's normal exactly; two planes with normals
    # n1 = (sin a, 0, cos a) and n2 = (0, sin b, cos b) are acos(cos a cos b)
    # apart. Depth ~1000 makes the reference's +1e-7 negligible (see above).
    size = 64
    K = camera.intrinsics(size, 10.0)
    a, b = math.radians(20.0), math.radians(-35.0)
    n1 = (math.sin(a), 0.0, math.cos(a))
    n2 = (0.0, math.sin(b), math.cos(b))
    pred = _plane_depth(n1, 1000.0, K, size)
    gt = _plane_depth(n2, 1000.0, K, size)
    gt[:, :3] = gt[:, -3:] = gt[:, :, :3] = gt[:, :, -3:] = 3000.0  # bg
    out = metrics.depth_metrics(pred, np.ones_like(pred), gt, K)
    self.assertEqual(float(out['mask'].numpy().sum()), (size - 8) ** 2)
    expect = math.degrees(math.acos(math.cos(a) * math.cos(b)))
    self.assertAllClose(out['mad'], [expect], atol=0.02)
    masked = out['normal_err_map'].numpy()[out['mask'].numpy() > 0]
    self.assertAllClose(masked, np.full_like(masked, expect), atol=0.05)
    # And a plane against itself tilted about y only: the angle is a.
    out = metrics.depth_metrics(
        pred, np.ones_like(pred),
        np.where(gt == 3000.0, 3000.0, _plane_depth((0, 0, 1), 1000.0, K,
                                                    size)), K)
    self.assertAllClose(out['mad'], [20.0], atol=0.02)


# Rows: MAE, MSE, SIE (SIDE, unscaled), NorErr (MAD, degrees).
_SCORES = np.array([[0.1, 0.01, 0.02, 20.0],
                    [0.3, 0.09, 0.04, 30.0],
                    [0.2, 0.04, 0.03, 40.0]])


class MeanStdTest(tf.test.TestCase):

  def test_unbiased_std_as_torch(self):
    mean, std, left_out = metrics.mean_std(_SCORES)
    self.assertAllClose(mean, [0.2, 0.14 / 3, 0.03, 30.0])
    # SIE column 0.02, 0.03, 0.04: squared deviations 2e-4 over n - 1 = 2.
    self.assertAllClose(std[2], 0.01)
    self.assertAllClose(std[3], 10.0)
    self.assertEqual(left_out, 0)

  def test_nan_rows_are_left_out_and_counted(self):
    scores = np.concatenate([_SCORES, np.full([2, 4], np.nan)])
    mean, std, left_out = metrics.mean_std(scores)
    self.assertAllClose(mean, metrics.mean_std(_SCORES)[0])
    self.assertAllClose(std, metrics.mean_std(_SCORES)[1])
    self.assertEqual(left_out, 2)

  def test_one_or_no_finite_row(self):
    mean, std, left_out = metrics.mean_std(_SCORES[:1])
    self.assertAllClose(mean, _SCORES[0])
    self.assertTrue(np.all(np.isnan(std)))
    self.assertEqual(left_out, 0)
    mean, std, left_out = metrics.mean_std(np.full([3, 4], np.nan))
    self.assertTrue(np.all(np.isnan(mean)) and np.all(np.isnan(std)))
    self.assertEqual(left_out, 3)


class PaperSummaryTest(tf.test.TestCase):

  def test_side_scaled_and_std_unbiased(self):
    r = metrics.paper_summary(np.array([0.01, 0.03]), np.array([10.0, 30.0]))
    # Two values a +- d: unbiased std d * sqrt(2).
    self.assertAllClose([r['side_mean'], r['side_std'], r['mad_mean'],
                         r['mad_std']], [2.0, math.sqrt(2), 20.0,
                                         10.0 * math.sqrt(2)])
    self.assertEqual(r['num_left_out'], 0)

  def test_nan_images_left_out_and_counted(self):
    r = metrics.paper_summary(np.array([0.01, np.nan, 0.03, 0.02]),
                              np.array([10.0, np.nan, 30.0, np.nan]))
    self.assertAllClose([r['side_mean'], r['mad_mean']], [2.0, 20.0])
    self.assertEqual(r['num_left_out'], 2)
    r = metrics.paper_summary(np.array([np.nan]), np.array([np.nan]))
    self.assertTrue(np.isnan(r['side_mean']) and np.isnan(r['mad_std']))
    self.assertEqual(r['num_left_out'], 1)


if __name__ == '__main__':
  tf.test.main()
