"""Tests for tfunsup3d.factors.depth (canonical depth post-processing)."""

import math

import numpy as np
import tensorflow as tf

from tfunsup3d.factors import depth


class RescaleTest(tf.test.TestCase):

  def test_endpoints_and_midpoint(self):
    got = depth.rescale(tf.constant([-1.0, 0.0, 1.0, 0.5]), 0.9, 1.1)
    # -1 -> min, 1 -> max, linear in between: 0.5 -> 0.9 + 0.75 * 0.2.
    self.assertAllClose(got, [0.9, 1.0, 1.1, 1.05], atol=1e-7)

  def test_reversed_range_is_allowed(self):
    # The light rescaler uses the same function; nothing forces min < max.
    self.assertAllClose(depth.rescale(tf.constant([-1.0, 1.0]), 2.0, -2.0),
                        [2.0, -2.0])


class CanonicalDepthTest(tf.test.TestCase):

  def test_constant_raw_gives_middle_depth(self):
    # Mean subtraction removes any constant: tanh(0) = 0 -> (min + max) / 2.
    raw = tf.fill([2, 3, 4], 7.5)
    self.assertAllClose(depth.canonical_depth(raw, 0.9, 1.1),
                        np.full([2, 3, 4], 1.0), atol=1e-7)

  def test_hand_values(self):
    # raw [[0, 2]]: mean 1 -> [-1, 1] -> tanh -> -t, t (t = tanh 1) ->
    # 1 -+ 0.1 t.
    t = math.tanh(1.0)
    got = depth.canonical_depth(tf.constant([[[0.0, 2.0]]]), 0.9, 1.1)
    self.assertAllClose(got, [[[1.0 - 0.1 * t, 1.0 + 0.1 * t]]], atol=1e-7)

  def test_mean_is_per_image(self):
    base = np.array([[0.0, 1.0], [2.0, -3.0]], np.float32)
    raw = np.stack([base, base + 10.0, base - 4.0])
    got = depth.canonical_depth(raw, 0.5, 2.0).numpy()
    self.assertAllClose(got[1], got[0], atol=1e-6)
    self.assertAllClose(got[2], got[0], atol=1e-6)
    expect = np.tanh(base - base.mean())
    self.assertAllClose(got[0], (1 + expect) / 2 * 2.0 + (1 - expect) / 2 * 0.5,
                        atol=1e-6)

  def test_within_range_for_extreme_raw(self):
    raw = tf.constant([[[-1e4, 0.0, 1e4, 3.0]]])
    got = depth.canonical_depth(raw, 0.9, 1.1).numpy()
    self.assertTrue(np.all(got >= 0.9) and np.all(got <= 1.1), got)

  def test_no_centering_is_tanh_of_raw(self):
    raw = np.array([[[0.0, 2.0], [7.5, -1.0]]], np.float32)
    got = depth.canonical_depth(raw, 0.9, 1.1, centering='none')
    self.assertAllClose(got, 1.0 + 0.1 * np.tanh(raw), atol=1e-6)

  def test_border_centering_puts_the_border_columns_at_border_depth(self):
    # The border columns' mean maps to 1.04: raw shifted by
    # atanh(0.4) - mean(border columns); the rest keeps its offsets.
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(2, 5, 8)).astype(np.float32)
    got = depth.canonical_depth(raw, 0.9, 1.1, centering='border',
                                border_depth=1.04).numpy()
    border = np.concatenate([raw[:, :, :2], raw[:, :, -2:]], 2)
    shifted = raw - border.mean(axis=(1, 2), keepdims=True) + math.atanh(0.4)
    self.assertAllClose(got, 1.0 + 0.1 * np.tanh(shifted), atol=1e-6)
    # A constant map: every pixel at the border depth.
    flat = depth.canonical_depth(tf.fill([1, 3, 6], -3.0), 0.9, 1.1,
                                 centering='border', border_depth=1.04)
    self.assertAllClose(flat, np.full([1, 3, 6], 1.04), atol=1e-6)

  def test_unknown_centering_raises(self):
    with self.assertRaisesRegex(ValueError, 'centering must be'):
      depth.canonical_depth(tf.zeros([1, 2, 2]), 0.9, 1.1, centering='median')


class SetBorderTest(tf.test.TestCase):

  def test_two_left_and_right_columns_only(self):
    d = np.arange(5 * 7, dtype=np.float32).reshape(1, 5, 7) / 100.0 + 1.0
    got = depth.set_border(d, 0.25).numpy()
    expect = d.copy()
    expect[:, :, [0, 1, 5, 6]] = 0.25
    # Exact: the rows at the top and bottom are not touched.
    self.assertAllEqual(got, expect)

  def test_border_width(self):
    d = np.ones([2, 3, 6], np.float32)
    got = depth.set_border(d, 4.0, border_width=1).numpy()
    self.assertAllEqual(got[:, :, 0], np.full([2, 3], 4.0))
    self.assertAllEqual(got[:, :, -1], np.full([2, 3], 4.0))
    self.assertAllEqual(got[:, :, 1:-1], np.ones([2, 3, 4]))


class SmoothnessTest(tf.test.TestCase):

  def test_hand_value(self):
    # d = [[1.0, 1.1, 1.3], [0.9, 0.9, 1.0]], range 0.2:
    # vertical |diffs| 0.1, 0.2, 0.3 -> mean 0.2 / 0.2 = 1.0;
    # horizontal 0.1, 0.2, 0.0, 0.1 -> mean 0.1 / 0.2 = 0.5.
    d = tf.constant([[[1.0, 1.1, 1.3], [0.9, 0.9, 1.0]]])
    self.assertAllClose(depth.smoothness(d, 0.9, 1.1), 1.5, atol=1e-5)

  def test_constant_is_zero(self):
    self.assertEqual(float(depth.smoothness(tf.ones([2, 4, 4]), 0.9, 1.1)),
                     0.0)


def _check_gradient(test, term, shape):
  """`term(depth, 0.9, 1.1)`'s gradient against finite differences at a
  random depth of `shape`."""
  d = tf.constant(np.random.default_rng(0).uniform(0.9, 1.1, shape),
                  tf.float64)
  theoretical, numerical = tf.test.compute_gradient(
      lambda x: term(x, 0.9, 1.1), [d], delta=1e-7)
  test.assertAllClose(theoretical, numerical, atol=1e-5)


class CurvatureTest(tf.test.TestCase):

  def test_plane_is_free(self):
    ys, xs = np.meshgrid(np.arange(5.0), np.arange(6.0), indexing='ij')
    plane = tf.constant((1.0 + 0.01 * ys - 0.02 * xs)[None], tf.float32)
    self.assertAllClose(depth.curvature(plane, 0.9, 1.1), 0.0, atol=1e-6)

  def test_parabola_pays_twice_its_coefficient(self):
    # z = 1 + a x^2 along the rows: second difference 2a everywhere along
    # x, 0 along y; range 0.2 -> 2a / 0.2.
    a = 0.003
    xs = np.arange(7.0)
    d = tf.constant(np.tile(1.0 + a * xs ** 2, (2, 4, 1)), tf.float32)
    self.assertAllClose(depth.curvature(d, 0.9, 1.1), 2 * a / 0.2, atol=1e-5)

  def test_checkerboard_pays_twice_what_smoothness_does(self):
    # +-e alternating: |second difference| 4e on each axis, |first| 2e.
    e = 0.01
    ys, xs = np.meshgrid(np.arange(6), np.arange(6), indexing='ij')
    d = tf.constant((1.0 + e * (-1.0) ** (ys + xs))[None], tf.float32)
    self.assertAllClose(depth.curvature(d, 0.9, 1.1), 8 * e / 0.2, atol=1e-5)
    self.assertAllClose(depth.smoothness(d, 0.9, 1.1), 4 * e / 0.2, atol=1e-5)

  def test_gradient_matches_finite_differences(self):
    _check_gradient(self, depth.curvature, (2, 5, 6))

  def test_min_radius_charges_only_the_band_around_the_centre(self):
    # 8x8, pixel centres at -1, -5/7, ..., 1: a checkerboard inside radius
    # 0.5 and flat beyond. Every second difference at radius >= 0.8 reads
    # pixels at radius >= 0.8 - 2/7 > 0.5 only: flat, free; the whole map
    # pays. The checkerboard everywhere pays 4e per axis in any band.
    c = np.linspace(-1.0, 1.0, 8)
    r = np.hypot(*np.meshgrid(c, c, indexing='ij'))
    e = 0.01
    board = e * (-1.0) ** np.add.outer(np.arange(8), np.arange(8))
    centre = tf.constant((1.0 + board * (r < 0.5))[None], tf.float32)
    self.assertAllClose(depth.curvature(centre, 0.9, 1.1, 0.8), 0.0)
    self.assertGreater(float(depth.curvature(centre, 0.9, 1.1)), 0.01)
    everywhere = tf.constant((1.0 + board)[None], tf.float32)
    for radius in (0.0, 0.8, 1.2):
      self.assertAllClose(depth.curvature(everywhere, 0.9, 1.1, radius),
                          8 * e / 0.2, atol=1e-5)
    _check_gradient(self, lambda x, lo, hi: depth.curvature(x, lo, hi, 0.8),
                    (2, 8, 8))


class RippleTest(tf.test.TestCase):

  def _grid(self, n=12):
    return np.meshgrid(np.arange(float(n)), np.arange(float(n)),
                       indexing='ij')

  def test_curvature_of_one_sign_is_free(self):
    ys, xs = self._grid()
    bowl = 1.0 + 0.003 * xs ** 2 + 0.001 * ys ** 2
    crease = 1.0 + 0.01 * np.abs(xs - 5.0)  # one kink: one second difference
    for d in (bowl, crease):
      d = tf.constant(d[None], tf.float32)
      self.assertGreater(float(depth.curvature(d, 0.9, 1.1)), 1e-3)
      self.assertAllClose(depth.ripple(d, 0.9, 1.1), 0.0, atol=1e-6)

  def test_checkerboard_and_period_four_wave_pay_their_curvature(self):
    ys, xs = self._grid()
    e = 0.01
    for d in (1.0 + e * (-1.0) ** (ys + xs), 1.0 + e * np.sin(np.pi / 2 * xs)):
      d = tf.constant(d[None], tf.float32)
      self.assertAllClose(depth.ripple(d, 0.9, 1.1),
                          depth.curvature(d, 0.9, 1.1), rtol=1e-5)
    # The checkerboard by hand: |a| = 4e on both axes, range 0.2.
    self.assertAllClose(depth.ripple(tf.constant(
        (1.0 + e * (-1.0) ** (ys + xs))[None], tf.float32), 0.9, 1.1),
                        8 * e / 0.2, atol=1e-5)

  def test_step_costs_half_its_height_in_three_windows(self):
    # A step h between columns 5 and 6: second differences +h at column 5,
    # -h at 6 (indices 4, 5 of the 10); 7 windows of 4 per row, 3 hold both
    # at (2h - 0) / 4 each; none along the columns.
    h = 0.01
    _, xs = self._grid()
    d = tf.constant((1.0 + h * (xs > 5))[None], tf.float32)
    self.assertAllClose(depth.ripple(d, 0.9, 1.1), 3 * (h / 2) / 7 / 0.2,
                        atol=1e-6)

  def test_gradient_matches_finite_differences(self):
    _check_gradient(self, depth.ripple, (2, 7, 8))


class DecodeDepthPngTest(tf.test.TestCase):

  def test_endpoints(self):
    # p = 0 (background) -> max_depth, p = 1 -> min_depth.
    got = depth.decode_depth_png(tf.constant([0.0, 1.0, 0.25]), 0.9, 1.1)
    self.assertAllClose(got, [1.1, 0.9, 1.05], atol=1e-7)


class DepthFromPngTest(tf.test.TestCase):

  def test_channel_zero_of_the_loader_layout(self):
    # [B, S, S, 3]: channel 0 is decoded, the others ignored.
    p = np.zeros([1, 2, 2, 3], np.float32)
    p[0, :, :, 0] = [[0.0, 1.0], [0.5, 0.25]]
    p[0, :, :, 1:] = 0.9
    got = depth.depth_from_png(p, 0.9, 1.1)
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllClose(got, [[[1.1, 0.9], [1.0, 1.05]]], atol=1e-6)

  def test_rank_three_is_decoded_as_is(self):
    got = depth.depth_from_png(np.array([[[0.0, 1.0]]]), 0.5, 1.5)
    self.assertAllClose(got, [[[1.5, 0.5]]], atol=1e-6)


class ValidMaskTest(tf.test.TestCase):

  def test_threshold_is_max_plus_half_range(self):
    # Range [0.9, 1.1]: m = 0.1, so the threshold is 1.2 (strict).
    d = tf.constant([[[0.9, 1.1, 1.19, 1.2, 1.25]]])
    got = depth.valid_mask(d, 0.9, 1.1)
    self.assertEqual(got.dtype, tf.float32)
    self.assertAllEqual(got, [[[1.0, 1.0, 1.0, 0.0, 0.0]]])

  def test_other_range(self):
    # Range [0.5, 1.5]: m = 0.5, threshold 2.0.
    got = depth.valid_mask(tf.constant([[[1.9, 2.1]]]), 0.5, 1.5)
    self.assertAllEqual(got, [[[1.0, 0.0]]])


if __name__ == '__main__':
  tf.test.main()
