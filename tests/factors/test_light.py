"""Tests for tfunsup3d.factors.light (ambient, diffuse, direction)."""

import math

import numpy as np
import tensorflow as tf

from tfunsup3d.factors import light


class CanonicalLightTest(tf.test.TestCase):

  def test_strength_rescaling(self):
    raw = tf.constant([[-1.0, 1.0, 0.0, 0.0],
                       [1.0, -1.0, 0.0, 0.0],
                       [0.0, 0.5, 0.0, 0.0]])
    a, b, _ = light.canonical_light(raw, 0.2, 0.6, 0.5, 0.9)
    self.assertEqual(a.shape, (3, 1))
    self.assertEqual(b.shape, (3, 1))
    # -1 -> min, 1 -> max, 0 -> middle, 0.5 -> min + 0.75 (max - min).
    self.assertAllClose(a[:, 0], [0.2, 0.6, 0.4], atol=1e-7)
    self.assertAllClose(b[:, 0], [0.9, 0.5, 0.8], atol=1e-7)

  def test_direction_is_normalised_dx_dy_1(self):
    raw = tf.constant([[0.0, 0.0, 0.0, 0.0],
                       [0.0, 0.0, 0.5, -0.5],
                       [0.0, 0.0, 1.0, 1.0],
                       [0.0, 0.0, -0.6, 0.8]])
    _, _, d = light.canonical_light(raw, 0.0, 1.0, 0.0, 1.0)
    s = 1.0 / math.sqrt(1.5)
    expect = [[0.0, 0.0, 1.0],
              [0.5 * s, -0.5 * s, s],
              [1 / math.sqrt(3), 1 / math.sqrt(3), 1 / math.sqrt(3)],
              [-0.6 / math.sqrt(2), 0.8 / math.sqrt(2), 1 / math.sqrt(2)]]
    self.assertAllClose(d, expect, atol=1e-6)
    self.assertAllClose(np.linalg.norm(d.numpy(), axis=1), np.ones(4),
                        atol=1e-6)

  def test_direction_ignores_strengths(self):
    rng = np.random.default_rng(0)
    raw = rng.uniform(-1, 1, (5, 4)).astype(np.float32)
    raw2 = raw.copy()
    raw2[:, :2] = rng.uniform(-1, 1, (5, 2))
    _, _, d1 = light.canonical_light(raw, 0.0, 1.0, 0.0, 1.0)
    _, _, d2 = light.canonical_light(raw2, 0.0, 1.0, 0.0, 1.0)
    self.assertAllEqual(d1, d2)


if __name__ == '__main__':
  tf.test.main()
