"""Tests for tfunsup3d.losses: hand-computed values on tiny tensors."""

import math

import numpy as np
import tensorflow as tf

from tfunsup3d import losses

SQRT2 = math.sqrt(2.0)


def _images():
  """im1 = 0 and im2 with known |differences| per pixel and channel
  (B=1, 2x2, 3 channels): per-pixel channel sums 0.6, 1.5, 0.4, 3.0."""
  im2 = np.array([[[[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]],
                   [[-0.2, 0.0, 0.2], [1.0, -1.0, 1.0]]]], np.float32)
  return np.zeros_like(im2), im2


class PhotometricLossTest(tf.test.TestCase):

  def test_plain_mean(self):
    im1, im2 = _images()
    self.assertAllClose(losses.photometric_loss(im1, im2), 5.5 / 12,
                        atol=1e-7)

  def test_mask_is_broadcast_to_channels(self):
    im1, im2 = _images()
    mask = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]], np.float32)
    # Masked pixels (0,0) and (1,0): sum 0.6 + 0.4 = 1.0 over 2 pixels x 3
    # channels = 6 entries (a per-pixel count would give 0.5).
    self.assertAllClose(losses.photometric_loss(im1, im2, mask), 1.0 / 6,
                        atol=1e-7)

  def test_with_sigma(self):
    im1, im2 = _images()
    sigma = np.array([[[[1.0], [2.0]], [[0.5], [1.0]]]], np.float32)
    # e sqrt2 / sigma + log sigma per entry (3 per pixel).
    per_pixel = [0.6 * SQRT2 / 1.0 + 3 * math.log(1.0),
                 1.5 * SQRT2 / 2.0 + 3 * math.log(2.0),
                 0.4 * SQRT2 / 0.5 + 3 * math.log(0.5),
                 3.0 * SQRT2 / 1.0 + 3 * math.log(1.0)]
    self.assertAllClose(losses.photometric_loss(im1, im2, None, sigma),
                        sum(per_pixel) / 12, atol=2e-6)
    mask = np.array([[[[1.0], [0.0]], [[1.0], [0.0]]]], np.float32)
    self.assertAllClose(losses.photometric_loss(im1, im2, mask, sigma),
                        (per_pixel[0] + per_pixel[2]) / 6, atol=2e-6)

  def test_symmetric_and_zero_for_equal(self):
    im1, im2 = _images()
    self.assertAllClose(losses.photometric_loss(im2, im1),
                        losses.photometric_loss(im1, im2))
    self.assertEqual(float(losses.photometric_loss(im2, im2)), 0.0)

  def test_gradients_finite(self):
    im1, im2 = _images()
    im1 = tf.Variable(im1 + 0.05)
    sigma = tf.Variable(np.full([1, 2, 2, 1], 0.3, np.float32))
    mask = np.array([[[[1.0], [0.0]], [[1.0], [1.0]]]], np.float32)
    with tf.GradientTape() as tape:
      loss = losses.photometric_loss(im1, im2, mask, sigma)
    g_im, g_sigma = tape.gradient(loss, [im1, sigma])
    self.assertTrue(np.all(np.isfinite(g_im.numpy())))
    self.assertTrue(np.all(np.isfinite(g_sigma.numpy())))
    # Masked-out pixel (0, 1) gets no gradient; d/dsigma of the NLL at a kept
    # pixel is (-sum_c e_c sqrt2 / sigma^2 + 3 / sigma) / 9.
    self.assertAllEqual(g_im[0, 0, 1], [0.0, 0.0, 0.0])
    e = np.abs(im1.numpy() - im2)[0, 0, 0].sum()
    self.assertAllClose(g_sigma[0, 0, 0, 0],
                        (-e * SQRT2 / 0.09 + 3 / 0.3) / 9, rtol=1e-5)


class FeatureLossTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    # B=1, 2x2 features, 2 channels; f1 = 0, so e = f2^2.
    self.f2 = np.array([[[[1.0, 2.0], [0.0, 1.0]],
                         [[3.0, 0.0], [2.0, 2.0]]]], np.float32)
    self.f1 = np.zeros_like(self.f2)
    # Per-position sums of e over channels: 5, 1, 9, 8.

  def test_plain_mean(self):
    self.assertAllClose(losses.feature_loss(self.f1, self.f2), 23.0 / 8,
                        atol=1e-6)

  def test_mask_average_pooled_to_feature_size(self):
    # A 4x4 image mask, pooled 2x2 -> weights [[1, 0.5], [0.25, 0]].
    mask = np.zeros([1, 4, 4, 1], np.float32)
    mask[0, :2, :2] = 1.0
    mask[0, 0, 2:] = 1.0  # top-right block: 2 of 4
    mask[0, 2, 0] = 1.0  # bottom-left block: 1 of 4
    # sum(e * w) / sum(w over 2 channels) = (5 + 0.5 + 2.25) / (2 * 1.75).
    self.assertAllClose(losses.feature_loss(self.f1, self.f2, mask),
                        7.75 / 3.5, atol=1e-6)

  def test_mask_same_resolution(self):
    mask = np.array([[[[0.0], [1.0]], [[1.0], [0.0]]]], np.float32)
    self.assertAllClose(losses.feature_loss(self.f1, self.f2, mask),
                        10.0 / 4, atol=1e-6)

  def test_with_sigma(self):
    sigma = np.array([[[[1.0], [2.0]], [[0.5], [1.0]]]], np.float32)
    # e / (2 sigma^2) + log sigma per entry (2 channels per position).
    per_pos = [5 / 2.0 + 2 * math.log(1.0), 1 / 8.0 + 2 * math.log(2.0),
               9 / 0.5 + 2 * math.log(0.5), 8 / 2.0 + 2 * math.log(1.0)]
    self.assertAllClose(losses.feature_loss(self.f1, self.f2, None, sigma),
                        sum(per_pos) / 8, atol=1e-5)
    mask = np.ones([1, 4, 4, 1], np.float32)
    mask[0, 2:, 2:] = 0.0  # drops position (1, 1)
    self.assertAllClose(losses.feature_loss(self.f1, self.f2, mask, sigma),
                        sum(per_pos[:3]) / 6, atol=1e-5)

  def test_gradients_finite(self):
    f1 = tf.Variable(self.f1)
    sigma = tf.Variable(np.full([1, 2, 2, 1], 0.7, np.float32))
    mask = np.ones([1, 4, 4, 1], np.float32)
    with tf.GradientTape() as tape:
      loss = losses.feature_loss(f1, self.f2, mask, sigma)
    for g in tape.gradient(loss, [f1, sigma]):
      self.assertTrue(np.all(np.isfinite(g.numpy())))
      self.assertGreater(np.abs(g.numpy()).sum(), 0.0)


class MaskedMeanTest(tf.test.TestCase):

  def test_counts_per_channel(self):
    values = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    mask = np.array([[[[1.0], [0.0]], [[0.0], [1.0]]]], np.float32)
    # kept: (0,1) at (0,0) and (6,7) at (1,1) -> 14 / 4.
    self.assertAllClose(losses.masked_mean(values, mask), 3.5)


class SumFormsTest(tf.test.TestCase):
  """The (sum, count) forms: hand-counted, and their ratio is the mean."""

  def test_photometric_sum(self):
    im1, im2 = _images()
    mask = np.array([[[[1.0], [0.0]], [[1.0], [1.0]]]], np.float32)
    total, count = losses.photometric_sum(im1, im2, mask)
    # Pixels (0,0), (1,0), (1,1): 0.6 + 0.4 + 3.0 over 3 pixels x 3 channels.
    self.assertAllClose(total, 4.0, atol=1e-6)
    self.assertEqual(float(count), 9.0)
    total, count = losses.photometric_sum(im1, im2)
    self.assertAllClose(total, 5.5, atol=1e-6)
    self.assertEqual(float(count), 12.0)
    sigma = np.array([[[[1.0], [2.0]], [[0.5], [1.0]]]], np.float32)
    for m, s in ((None, None), (mask, None), (None, sigma), (mask, sigma)):
      total, count = losses.photometric_sum(im1, im2, m, s)
      self.assertAllClose(total / count,
                          losses.photometric_loss(im1, im2, m, s), rtol=1e-6)

  def test_feature_sum(self):
    f2 = np.array([[[[1.0, 2.0], [0.0, 1.0]],
                    [[3.0, 0.0], [2.0, 2.0]]]], np.float32)
    f1 = np.zeros_like(f2)
    mask = np.zeros([1, 4, 4, 1], np.float32)
    mask[0, :2, :2] = 1.0
    mask[0, 0, 2:] = 1.0
    mask[0, 2, 0] = 1.0
    # Pooled weights [[1, 0.5], [0.25, 0]] on e sums 5, 1, 9, 8, 2 channels.
    total, count = losses.feature_sum(f1, f2, mask)
    self.assertAllClose(total, 5 + 0.5 + 2.25, atol=1e-6)
    self.assertAllClose(count, 2 * 1.75, atol=1e-6)
    sigma = np.array([[[[1.0], [2.0]], [[0.5], [1.0]]]], np.float32)
    for m, s in ((None, None), (mask, None), (None, sigma), (mask, sigma)):
      total, count = losses.feature_sum(f1, f2, m, s)
      self.assertAllClose(total / count, losses.feature_loss(f1, f2, m, s),
                          rtol=1e-6)

  def test_masked_sum(self):
    values = np.arange(8, dtype=np.float32).reshape(1, 2, 2, 2)
    mask = np.array([[[[1.0], [0.0]], [[0.0], [1.0]]]], np.float32)
    total, count = losses.masked_sum(values, mask)
    self.assertEqual((float(total), float(count)), (14.0, 4.0))
    self.assertEqual(float(losses.masked_mean(values, mask)), 14.0 / 4.0)

  def test_global_means_without_replicas_are_the_means(self):
    # Outside strategy.run (and with one replica) nothing is all-reduced.
    got = losses.global_means({'a': (tf.constant(14.0), 4.0)},
                              {'b': (tf.constant(0.1), tf.constant(3.0))})
    self.assertEqual(float(got['a']), 3.5)
    self.assertEqual(float(got['b']), np.float32(0.1))  # exactly the mean
    self.assertEqual(losses.global_means(), {})
    self.assertEqual(float(losses.replica_sum(tf.constant(2.0))), 2.0)

  def test_no_gradient_through_the_count(self):
    total, count, mean = (tf.Variable(6.0), tf.Variable(3.0),
                          tf.Variable(0.5))
    with tf.GradientTape(persistent=True) as tape:
      got = losses.global_means({'a': (total, count)}, {'b': (mean, count)})
    self.assertAllClose(tape.gradient(got['a'], total), 1.0 / 3.0)
    self.assertEqual(float(tape.gradient(got['b'], mean)), 1.0)
    self.assertIsNone(tape.gradient(got['a'], count))
    self.assertIsNone(tape.gradient(got['b'], count))


class FlipWeightTest(tf.test.TestCase):

  def test_schedule(self):
    # lambda_flip = 1 while epoch < lam_flip_start_epoch, then lam_flip.
    self.assertEqual(float(losses.flip_weight(0, 0.5, 0)), 0.5)
    self.assertEqual(float(losses.flip_weight(0, 0.5, 10)), 1.0)
    self.assertEqual(float(losses.flip_weight(9, 0.5, 10)), 1.0)
    self.assertEqual(float(losses.flip_weight(10, 0.5, 10)), 0.5)
    self.assertEqual(float(losses.flip_weight(25, 0.25, 10)), 0.25)

  def test_tensor_epoch_of_any_dtype(self):
    # The training loop may keep the epoch in an int64 variable.
    for epoch in (tf.constant(3), tf.constant(3, tf.int64),
                  tf.Variable(3, dtype=tf.int64), tf.constant(3.0)):
      self.assertEqual(float(losses.flip_weight(epoch, 0.5, 4)), 1.0)
      self.assertEqual(float(losses.flip_weight(epoch, 0.5, 3)), 0.5)


class ScheduledWeightTest(tf.test.TestCase):

  def test_hold_then_linear_then_end(self):
    got = [float(losses.scheduled_weight(s, 5.0, 1.0, 10, 20))
           for s in (0, 10, 15, 20, 30, 100)]
    # 5 + (1 - 5) * clip((s - 10) / 20, 0, 1)
    self.assertAllClose(got, [5.0, 5.0, 4.0, 3.0, 1.0, 1.0], atol=1e-6)

  def test_no_ramp_jumps_after_hold_and_takes_a_tensor_step(self):
    got = [float(losses.scheduled_weight(tf.constant(s, tf.int64), 0.0, 2.0,
                                         4, 0)) for s in (0, 3, 4, 9)]
    self.assertAllClose(got, [0.0, 0.0, 2.0, 2.0])


class YawSpreadTest(tf.test.TestCase):

  def test_values(self):
    # Yaw of +-5 deg: std 5 deg (population), half of a 10 deg minimum.
    yaw = tf.constant(np.radians([-5.0, 5.0, -5.0, 5.0]), tf.float32)
    self.assertAllClose(losses.yaw_spread(yaw, 10.0), 0.25, atol=1e-6)
    self.assertAllClose(losses.yaw_spread(yaw, 5.0), 0.0, atol=1e-6)
    self.assertAllClose(losses.yaw_spread(yaw, 4.0), 0.0)  # wider: no cost
    # No spread at all: the full cost (1e-6 rad of the sqrt's epsilon).
    self.assertAllClose(losses.yaw_spread(tf.zeros([4]), 10.0), 1.0,
                        atol=1e-4)

  def test_gradient_widens_the_spread(self):
    yaw = tf.Variable(np.radians([-2.0, 1.0, 3.0]), dtype=tf.float32)
    with tf.GradientTape() as tape:
      loss = losses.yaw_spread(yaw, 10.0)
    grad = tape.gradient(loss, yaw).numpy()
    # Descent moves each yaw away from the mean (0.667 deg).
    self.assertAllEqual(np.sign(-grad), [-1.0, 1.0, 1.0])
    with tf.GradientTape() as tape:
      flat = tf.zeros([3])
      tape.watch(flat)
      loss = losses.yaw_spread(flat, 10.0)
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, flat).numpy())))


class YawShiftCorrelationTest(tf.test.TestCase):

  @staticmethod
  def _view(yaw, shift):
    zeros = np.zeros(len(yaw))
    return tf.constant(np.stack([zeros, yaw, zeros, shift, zeros, zeros], 1),
                       tf.float32)

  def test_values(self):
    shift = np.array([-0.1, 0.0, 0.05, 0.1])
    # A yaw that follows the shift (either sign, any scale): the full cost.
    for yaw in (3 * shift + 0.2, -0.5 * shift):
      self.assertAllClose(
          losses.yaw_shift_correlation(self._view(yaw, shift)), 1.0,
          atol=1e-5)
    # Orthogonal to it (centred): no cost; a constant yaw: none either.
    self.assertAllClose(losses.yaw_shift_correlation(
        self._view(np.array([1.0, -1.0, -1.0, 1.0]) * 0.1,
                   np.array([1.0, 1.0, -1.0, -1.0]))), 0.0, atol=1e-6)
    self.assertAllClose(losses.yaw_shift_correlation(
        self._view(np.full(4, 0.3), shift)), 0.0, atol=1e-6)
    # By hand: yaw (1, 0, 0, -1) - 0, shift (1, 1, -1, -1): cov 0.5,
    # var 0.5 and 1, so corr^2 = 0.25 / 0.5 = 0.5.
    self.assertAllClose(losses.yaw_shift_correlation(
        self._view(np.array([1.0, 0.0, 0.0, -1.0]),
                   np.array([1.0, 1.0, -1.0, -1.0]))), 0.5, atol=1e-6)

  def test_gradient_moves_only_the_yaw_away_from_the_shift(self):
    view = tf.Variable(self._view(np.array([0.1, 0.0, 0.25]),
                                  np.array([-0.05, 0.0, 0.05])))
    with tf.GradientTape() as tape:
      loss = losses.yaw_shift_correlation(view)
    grad = tape.gradient(loss, view).numpy()
    self.assertAllEqual(grad[:, [0, 2, 3, 4, 5]], np.zeros([3, 5]))
    # One descent step lowers the correlation.
    after = losses.yaw_shift_correlation(view - 0.01 * grad)
    self.assertLess(float(after), float(loss))
    with tf.GradientTape() as tape:
      flat = self._view(np.zeros(3), np.zeros(3))
      tape.watch(flat)
      loss = losses.yaw_shift_correlation(flat)
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, flat).numpy())))


class ProtrusionTest(tf.test.TestCase):
  """12x12 maps: the central third is the 4x4 square of rows/columns 4-7,
  the border eighth the outermost ring of pixels (44 of them)."""

  @staticmethod
  def _map(centre, border, rest=1.0):
    d = np.full((12, 12), rest, np.float32)
    d[4:8, 4:8] = centre
    d[[0, -1], :] = border
    d[:, [0, -1]] = border
    return d

  def test_values(self):
    convex = self._map(0.95, 1.1)  # in front of its backdrop: 0
    hollow = self._map(1.1, 0.9)  # behind its border by the whole range: 1
    half = self._map(1.05, 1.0, rest=0.5)  # 0.05 of 0.2 behind: 0.25
    self.assertAllClose(losses.protrusion(np.stack([convex]), 0.9, 1.1), 0.0)
    self.assertAllClose(losses.protrusion(np.stack([hollow]), 0.9, 1.1), 1.0)
    self.assertAllClose(
        losses.protrusion(np.stack([convex, hollow, half]), 0.9, 1.1),
        (0.0 + 1.0 + 0.25) / 3, atol=1e-6)

  def test_gradient_brings_the_centre_forward_and_the_border_back(self):
    d = tf.constant(np.stack([self._map(1.1, 0.9), self._map(0.95, 1.1)]))
    with tf.GradientTape() as tape:
      tape.watch(d)
      loss = losses.protrusion(d, 0.9, 1.1)
    g = tape.gradient(loss, d).numpy()
    # Mean over 2 images, range 0.2: 1/(2*0.2*16) per centre pixel.
    self.assertAllClose(g[0, 4:8, 4:8], np.full((4, 4), 1 / 6.4))
    self.assertAllClose(g[0, 0, :], np.full(12, -1 / (2 * 0.2 * 44)))
    self.assertAllClose(g[0, 2, 2], 0.0)
    self.assertAllClose(g[1], np.zeros((12, 12)))  # convex: no pull


class SpreadPriorTest(tf.test.TestCase):

  def test_columns_are_held_apart(self):
    # Column 0 spreads 1 (std), column 1 spreads 4: a minimum of 2 costs
    # (1 - 1/2)^2 = 0.25 on column 0 and nothing on column 1.
    values = tf.constant([[-1.0, -4.0], [1.0, 4.0]])
    self.assertAllClose(losses.spread_prior(values, 2.0), 0.125, atol=1e-6)

  def test_light_tilts(self):
    # Tilts dx/dz of +-0.2 and dy/dz of +-0.6 from unnormalised directions.
    d = np.array([[0.2, 0.6, 1.0], [-0.2, -0.6, 1.0]], np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    self.assertAllClose(losses.light_tilt_spread(tf.constant(d), 0.4),
                        0.125, atol=1e-5)


class TotalLossTest(tf.test.TestCase):

  def test_composition(self):
    # L1 + lf L1' + lp (P + lf P') + ls sm = 1 + 0.5*2 + 0.1*(3 + 0.5*4)
    # + 0.2*5.
    got = losses.total_loss(1.0, 2.0, tf.constant(3.0), tf.constant(4.0), 5.0,
                            0.5, 0.1, 0.2)
    self.assertAllClose(got, 1 + 1 + 0.5 + 1.0, atol=1e-6)

  def test_no_perceptual(self):
    got = losses.total_loss(1.0, 2.0, None, None, 5.0, 0.5, 0.1, 0.0)
    self.assertAllClose(got, 2.0, atol=1e-6)

  def test_gradients(self):
    parts = [tf.Variable(v) for v in (1.0, 2.0, 3.0, 4.0, 5.0)]
    with tf.GradientTape() as tape:
      total = losses.total_loss(*parts, 0.5, 0.1, 0.2)
    grads = tape.gradient(total, parts)
    self.assertAllClose(grads, [1.0, 0.5, 0.1, 0.05, 0.2], atol=1e-7)


if __name__ == '__main__':
  tf.test.main()
