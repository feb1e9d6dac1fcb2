"""Tests for tfunsup3d.render.normals."""

import numpy as np
import tensorflow as tf

from tests import fixtures
from tfunsup3d.render import camera, normals


class NormalsTest(tf.test.TestCase):

  def test_cross_matches_numpy(self):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 4, 5, 3)).astype(np.float32)
    self.assertAllClose(normals.cross(a, b), np.cross(a, b), atol=1e-6)

  def test_plane(self):
    K = camera.intrinsics(8)
    n = normals.depth_to_normals(tf.ones([1, 8, 8]), K).numpy()
    # |t_u x t_v| is ~3e-5 here, so the reference's +1e-7 in the
    # normalisation leaves n_z = 0.99996.
    self.assertAllClose(n[0, 3, 3], [0.0, 0.0, 1.0], atol=1e-4)
    self.assertAllClose(n[0, 0, 0], [0.0, 0.0, 1.0], atol=1e-6)

  def test_sphere_analytic(self):
    # Depth map of a sphere of radius r centred at (0, 0, c) seen from the
    # camera: normals must be (p - centre)/r up to the camera-facing sign.
    size, c, r = 64, 3.0, 0.6
    K = camera.intrinsics(size, 20.0)
    kinv = np.linalg.inv(K.numpy().astype(np.float64))
    v, u = np.meshgrid(np.arange(size), np.arange(size), indexing='ij')
    rays = np.stack([u, v, np.ones_like(u)], -1) @ kinv.T  # z = 1 rays
    a = (rays ** 2).sum(-1)
    b = -2 * c * rays[..., 2]
    disc = b * b - 4 * a * (c * c - r * r)
    t = (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a)
    depth = np.where(disc > 0, t, c)  # z of the hit point (rays have z=1)
    n = normals.depth_to_normals(depth[None].astype(np.float32), K).numpy()[0]
    # Undo the reference's +1e-7 in the norm (|n| ~ 1e-3 here) to compare
    # directions.
    n = n / np.linalg.norm(n, axis=-1, keepdims=True)
    p = rays * depth[..., None]
    expect = (p - [0, 0, c]) / r
    # The reference's normals point away from the camera: n_z > 0 on a
    # surface facing the camera, whose outward normal has n_z < 0.
    expect = -expect
    inner = disc > 0
    inner[1:-1, 1:-1] &= (disc[:-2, 1:-1] > 0) & (disc[2:, 1:-1] > 0) & (
        disc[1:-1, :-2] > 0) & (disc[1:-1, 2:] > 0)
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    err = np.degrees(np.arccos(np.clip((n * expect).sum(-1), -1, 1)))[inner]
    self.assertGreater(inner.sum(), 500)
    self.assertLess(np.median(err), 0.1)
    self.assertLess(err.max(), 5.0)

  def test_matches_reference(self):
    fixtures.require_reference(self)
    ref = fixtures.reference_outputs_nhwc()
    K = camera.intrinsics(64, 10.0)
    self.assertAllClose(normals.depth_to_normals(ref['canon_depth'], K),
                        ref['canon_normal'], atol=1e-5)
    self.assertAllClose(normals.depth_to_normals(ref['recon_depth'], K),
                        ref['recon_normal'], atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
