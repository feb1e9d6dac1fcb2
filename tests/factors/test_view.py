"""Tests for tfunsup3d.factors.view (viewpoint scaling)."""

import math

import tensorflow as tf

from tfunsup3d.factors import view


class ViewpointTest(tf.test.TestCase):

  def test_scaling_to_radians_and_units(self):
    raw = tf.constant([[1.0, -0.5, 0.25, 1.0, -1.0, 0.5],
                       [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    got = view.viewpoint(raw, 60.0, 0.1, 0.2)
    self.assertEqual(got.shape, (2, 6))
    # 60 deg = pi/3; -30 deg = -pi/6; 15 deg = pi/12.
    self.assertAllClose(got[0], [math.pi / 3, -math.pi / 6, math.pi / 12,
                                 0.1, -0.1, 0.1], atol=1e-7)
    self.assertAllEqual(got[1], [0.0] * 6)

  def test_z_range_zero_kills_z_only(self):
    got = view.viewpoint(tf.ones([1, 6]), 90.0, 0.3, 0.0)
    self.assertAllClose(got[0], [math.pi / 2] * 3 + [0.3, 0.3, 0.0],
                        atol=1e-7)


if __name__ == '__main__':
  tf.test.main()
