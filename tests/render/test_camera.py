"""Tests for tfunsup3d.render.camera."""

import math

import numpy as np
import tensorflow as tf

from tfunsup3d.render import camera


class CameraTest(tf.test.TestCase):

  def test_intrinsics_preset(self):
    K = camera.intrinsics(64, 10.0).numpy()
    f = 31.5 / math.tan(math.radians(5.0))
    self.assertAllClose(K, [[f, 0, 31.5], [0, f, 31.5], [0, 0, 1]])

  def test_intrinsics_bad_args(self):
    with self.assertRaisesRegex(ValueError, 'image_size'):
      camera.intrinsics(1)
    with self.assertRaisesRegex(ValueError, 'fov'):
      camera.intrinsics(64, 0.0)

  def test_depth_to_points_plane(self):
    K = camera.intrinsics(5, 10.0)
    depth = tf.fill([2, 5, 5], 2.0)
    p = camera.depth_to_points(depth, K).numpy()
    f = K.numpy()[0, 0]
    self.assertAllClose(p[..., 2], np.full([2, 5, 5], 2.0))
    # Pixel (row 1, col 4): u = 4, v = 1, centre 2.
    self.assertAllClose(p[0, 1, 4], [2.0 * 2 / f, 2.0 * -1 / f, 2.0])

  def test_project_inverts_lift(self):
    K = camera.intrinsics(8, 10.0)
    depth = tf.random.uniform([3, 8, 8], 0.9, 1.1, seed=1)
    uv = camera.project_points(camera.depth_to_points(depth, K), K).numpy()
    v, u = np.meshgrid(np.arange(8), np.arange(8), indexing='ij')
    self.assertAllClose(uv[1, ..., 0], u, atol=1e-4)
    self.assertAllClose(uv[1, ..., 1], v, atol=1e-4)

  def test_points_to_grid_align_corners(self):
    K = camera.intrinsics(6, 10.0)
    grid = camera.points_to_grid(
        camera.depth_to_points(tf.ones([1, 6, 6]), K), K).numpy()
    self.assertAllClose(grid[0, 0, 0], [-1.0, -1.0], atol=1e-5)
    self.assertAllClose(grid[0, -1, -1], [1.0, 1.0], atol=1e-5)
    self.assertAllClose(grid[0, 0, -1], [1.0, -1.0], atol=1e-5)

  def test_bad_input_raises(self):
    K = camera.intrinsics(4)
    with self.assertRaisesRegex(ValueError, 'rank 3'):
      camera.depth_to_points(tf.ones([4, 4]), K)
    with self.assertRaisesRegex(ValueError, 'NaN'):
      camera.depth_to_points(np.full([1, 4, 4], np.nan, np.float32), K)


if __name__ == '__main__':
  tf.test.main()
