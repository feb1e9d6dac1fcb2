"""Tests for tfunsup3d.render.rasterizer."""

import functools
from unittest import mock

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tfunsup3d.render import camera, mesh, rasterizer, view


def _grid_vertices(depth, K):
  b = depth.shape[0]
  return tf.reshape(camera.depth_to_points(depth, K), [b, -1, 3])


def _brute_force_depth(vertices, faces, K, size, anti_aliasing):
  """Slow, obviously correct float64 z-buffer (one sample at a time)."""
  ss, off = (2, 0.5) if anti_aliasing else (1, 0.0)
  K = np.asarray(K, np.float64)
  v = np.asarray(vertices, np.float64)
  u = v[..., 0] / v[..., 2] * K[0, 0] + K[0, 2]
  w = v[..., 1] / v[..., 2] * K[1, 1] + K[1, 2]
  out = np.full([v.shape[0], size * ss, size * ss], rasterizer.FAR)
  for b in range(v.shape[0]):
    for f in np.asarray(faces):
      p = np.stack([u[b, f], w[b, f]], -1)
      z = v[b, f, 2]
      area = np.cross(p[1] - p[0], p[2] - p[0])
      if abs(area) < 1e-12:
        continue
      for sy in range(size * ss):
        for sx in range(size * ss):
          q = np.array([(sx + 0.5) / ss - 0.5 + off, (sy + 0.5) / ss - 0.5 + off])
          w1 = np.cross(q - p[0], p[2] - p[0]) / area
          w2 = np.cross(p[1] - p[0], q - p[0]) / area
          w0 = 1 - w1 - w2
          if min(w0, w1, w2) < 0:
            continue
          zz = 1.0 / (w0 / z[0] + w1 / z[1] + w2 / z[2])
          if rasterizer.NEAR < zz < rasterizer.FAR:
            out[b, sy, sx] = min(out[b, sy, sx], zz)
  return out.reshape(v.shape[0], size, ss, size, ss).mean(axis=(2, 4))


class RasterizerTest(tf.test.TestCase, parameterized.TestCase):

  def test_identity_plane_plain(self):
    K = camera.intrinsics(16)
    depth = tf.fill([2, 16, 16], 1.05)
    z = rasterizer.rasterize_depth(_grid_vertices(depth, K),
                                   mesh.grid_faces(16, 16), K, 16, 16,
                                   anti_aliasing=False)
    self.assertAllClose(z, depth, atol=1e-6)

  def test_identity_plane_anti_aliased(self):
    # Samples sit at +0.25/+0.75 px, so both samples of the last row and
    # column fall outside the mesh (background FAR); all else is the plane.
    K = camera.intrinsics(16)
    depth = tf.fill([1, 16, 16], 0.95)
    z = rasterizer.rasterize_depth(_grid_vertices(depth, K),
                                   mesh.grid_faces(16, 16), K, 16,
                                   16).numpy()[0]
    self.assertAllClose(z[:-1, :-1], np.full([15, 15], 0.95), atol=1e-6)
    self.assertAllClose(z[:, -1], np.full([16], 100.0))
    self.assertAllClose(z[-1, :], np.full([16], 100.0))

  def test_yawed_plane_analytic_ramp(self):
    size, d0, c, theta = 32, 1.0, 1.0, np.radians(20.0)
    K = camera.intrinsics(size)
    depth = tf.fill([1, size, size], d0)
    pts = view.transform_points(
        _grid_vertices(depth, K),
        np.array([[0.0, theta, 0.0, 0.0, 0.0, 0.0]], np.float32), c)
    z = rasterizer.rasterize_depth(pts, mesh.grid_faces(size, size), K, size,
                                   size, anti_aliasing=False).numpy()[0]
    f, cx = K.numpy()[0, 0], K.numpy()[0, 2]
    u = np.arange(size)
    analytic = ((d0 - c) + c * np.cos(theta)) / (
        np.cos(theta) + np.sin(theta) * (u - cx) / f)
    covered = z < 50.0
    # The rotated plane covers the middle columns; compare there.
    self.assertGreater(covered[size // 2].sum(), size // 2)
    for row in (4, size // 2, size - 5):
      cols = covered[row]
      self.assertAllClose(z[row, cols], analytic[cols], atol=1e-5)

  def test_occlusion_near_triangle_wins(self):
    K = camera.intrinsics(8, 40.0)
    def tri(zv, scale):
      kinv = np.linalg.inv(K.numpy())
      px = np.array([[-2, -2, 1], [12, -2, 1], [-2, 12, 1]], np.float64) * scale
      px[:, 2] = 1
      return (px @ kinv.T) * zv
    far = tri(2.0, 1.0)
    near = tri(1.0, 1.0)
    for order in ([far, near], [near, far]):
      verts = np.concatenate(order, 0)[None].astype(np.float32)
      faces = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
      z = rasterizer.rasterize_depth(verts, faces, K, 8, 8,
                                     anti_aliasing=False).numpy()[0]
      self.assertAllClose(z[0, 0], 1.0, atol=1e-5)
      self.assertAllClose(z[2, 3], 1.0, atol=1e-5)

  def test_matches_brute_force(self):
    rng = np.random.RandomState(0)
    size = 8
    K = camera.intrinsics(size)
    depth = 1.0 + 0.05 * rng.randn(2, size, size).astype(np.float32)
    v = np.array([[0.1, 0.4, -0.1, 0.01, 0.0, 0.0],
                  [-0.2, -0.3, 0.2, 0.0, 0.02, 0.0]], np.float32)
    pts = view.transform_points(_grid_vertices(depth, K), v, 1.0)
    faces = mesh.grid_faces(size, size)
    for aa in (False, True):
      z = rasterizer.rasterize_depth(pts, faces, K, size, size,
                                     anti_aliasing=aa).numpy()
      oracle = _brute_force_depth(pts.numpy(), faces.numpy(), K.numpy(), size,
                                  aa)
      agree = (z < 50) == (oracle < 50)
      self.assertGreaterEqual(agree.mean(), 0.99)
      both = (z < 50) & (oracle < 50)
      self.assertGreater(both.sum(), 40)
      self.assertAllClose(z[both], oracle[both], atol=1e-4)

  def test_xla_matches_eager_and_batch_sizes(self):
    size = 16
    K = camera.intrinsics(size)
    faces = mesh.grid_faces(size, size)
    fn = lambda p: rasterizer.rasterize_depth(p, faces, K, size, size)
    xla = tf.function(fn, jit_compile=True)
    graph = tf.function(fn, jit_compile=False)
    for b in (1, 64):
      depth = tf.random.uniform([b, size, size], 0.9, 1.1, seed=b)
      v = tf.random.uniform([b, 6], -0.3, 0.3, seed=b + 1) * [1, 1, 1, .1, .1, 0]
      pts = view.transform_points(_grid_vertices(depth, K), v, 1.0)
      eager = fn(pts)
      self.assertEqual(eager.shape, (b, size, size))
      self.assertAllClose(xla(pts), eager, atol=1e-5)
      self.assertAllClose(graph(pts), eager, atol=1e-5)

  def test_chunking_leaves_the_z_buffer_unchanged(self):
    # Rough depth seen from the side: boxes from 0 to hundreds of cells.
    # However the rows are split between the large triangles' small chunks
    # and the rest's large chunks (none, some or all large; chunks that end
    # inside the table or on its end), the visible ids are the same (none
    # large: one tier of equal chunks, the z-buffer before the split).
    size = 16
    K = camera.intrinsics(size)
    rng = np.random.RandomState(3)
    depth = 1.0 + 0.03 * rng.randn(3, size, size).astype(np.float32)
    v = np.array([[0.0, 0.6, 0.0, 0.0, 0.0, 0.0]] * 3, np.float32)
    pts = view.transform_points(_grid_vertices(depth, K), v, 1.0)
    faces = mesh.grid_faces(size, size)
    corners = rasterizer._triangles(pts, faces, K, 2, 0.5)
    area = rasterizer._triangle_table(corners, 2 * size, 2 * size)[1][:, 3]
    n = int(area.shape[0])
    self.assertBetween(int(np.sum(area > 16)), 20, n // 4)
    results = []
    for chunk, large_chunk, large_area in ((16384, 1024, 16), (64, 8, 16),
                                           (64, 8, 0), (64, 8, 10 ** 6),
                                           (n, 7, 4), (100, 100, 9)):
      fn = tf.function(functools.partial(
          rasterizer._visible_faces, height=2 * size, width=2 * size,
          chunk_size=chunk, large_chunk_size=large_chunk,
          large_area=large_area), jit_compile=True)
      results.append(fn(corners).numpy())
    for ids in results[1:]:
      self.assertAllEqual(ids, results[0])
    self.assertGreater(np.mean(results[0] >= 0), 0.5)

  def test_one_tier_where_an_accelerator_is_visible(self):
    # Two tiers with only CPUs listed; a GPU or a TPU turns the first off.
    self.addCleanup(rasterizer.default_large_area.cache_clear)
    for kind, want in ((None, rasterizer.LARGE_AREA_CPU),
                       ('GPU', rasterizer.NO_LARGE_AREA),
                       ('TPU', rasterizer.NO_LARGE_AREA)):
      rasterizer.default_large_area.cache_clear()
      listed = lambda k, kind=kind: [f'/device:{k}:0'] if k == kind else []
      with mock.patch.object(tf.config, 'list_logical_devices', listed):
        self.assertEqual(rasterizer.default_large_area(), want, kind)

  def test_large_triangles_not_truncated(self):
    # Two triangles covering the whole image: boxes far larger than a chunk
    # cell count; every pixel must be covered.
    K = camera.intrinsics(32)
    depth = tf.fill([1, 2, 2], 1.0)
    kinv = np.linalg.inv(K.numpy())
    corners = np.array([[-1, -1, 1], [40, -1, 1], [-1, 40, 1], [40, 40, 1]],
                       np.float64) @ kinv.T
    verts = corners[None].astype(np.float32)
    z = rasterizer.rasterize_depth(verts, mesh.grid_faces(2, 2), K, 32, 32)
    del depth
    self.assertAllClose(z, np.ones([1, 32, 32]), atol=1e-5)

  def test_gradients_match_finite_differences(self):
    size = 6
    K = camera.intrinsics(size)
    faces = mesh.grid_faces(size, size)
    rng = np.random.RandomState(1)
    base = (1.0 + 0.02 * rng.randn(1, size, size)).astype(np.float32)
    v = np.array([[0.05, 0.13, 0.02, 0.0, 0.0, 0.0]], np.float32)

    def f(depth):
      pts = view.transform_points(_grid_vertices(depth, K), v, 1.0)
      z = rasterizer.rasterize_depth(pts, faces, K, size, size,
                                     anti_aliasing=False)
      return z[:, 1:-1, 1:-1]  # interior samples, all covered

    theoretical, numerical = tf.test.compute_gradient(f, [base], delta=1e-3)
    t, n = theoretical[0], numerical[0]
    self.assertTrue(np.all(np.isfinite(t)))
    self.assertGreater(np.abs(t).sum(), 1.0)
    # Visibility is discrete: a sample within ~0.005 px of an edge changes
    # face under the finite-difference step (a handful of entries). All
    # other entries must agree.
    close = np.abs(t - n) <= 2e-2
    self.assertGreaterEqual(close.mean(), 0.99)
    self.assertAllClose(t[close].sum(), n[close].sum(), rtol=1e-2)

  def test_gradients_of_a_flat_triangle_beside_undrawn_ones(self):
    # A triangle at depth 1 facing the camera, a triangle with a corner at
    # depth 0 (skipped: behind the near plane) and a degenerate one. With
    # equal corner depths z = 1 / sum(w_i / z_i) = 1 for any barycentrics,
    # so dz/dz_i = w_i and dz/dx_i = dz/dy_i = 0 (hand-derived): the depth
    # gradients of the drawn corners sum to the number of covered samples.
    K = camera.intrinsics(8, 40.0)
    kinv = np.linalg.inv(K.numpy())
    px = np.array([[-2, -2, 1], [12, -2, 1], [-2, 12, 1]], np.float64)
    drawn = px @ kinv.T
    undrawn = np.array([[0, 0, 0], [0.1, 0, 1], [0, 0.1, 1]], np.float64)
    degenerate = np.array([[0, 0, 1], [0, 0, 1], [0, 0, 1]], np.float64)
    verts = tf.constant(np.concatenate([drawn, undrawn, degenerate])[None],
                        tf.float32)
    faces = np.arange(9, dtype=np.int32).reshape(3, 3)
    with tf.GradientTape() as tape:
      tape.watch(verts)
      z = rasterizer.rasterize_depth(verts, faces, K, 8, 8,
                                     anti_aliasing=False)
      covered = tf.cast(z < rasterizer.FAR, tf.float32)
      total = tf.reduce_sum(z * covered)
    grad = tape.gradient(total, verts).numpy()[0]
    self.assertTrue(np.all(np.isfinite(grad)))
    self.assertAllClose(z.numpy()[covered.numpy() > 0], np.ones(
        int(covered.numpy().sum())), atol=1e-5)
    self.assertGreater(covered.numpy().sum(), 20)
    self.assertAllClose(grad[:3, 2].sum(), covered.numpy().sum(), rtol=1e-4)
    self.assertTrue(np.all(grad[:3, 2] > 0))
    self.assertAllClose(grad[:3, :2], np.zeros([3, 2]), atol=1e-3)
    self.assertAllEqual(grad[3:], np.zeros([6, 3]))

  def test_attributes_interpolate_linear_colour(self):
    size = 8
    K = camera.intrinsics(size)
    depth = tf.fill([1, size, size], 1.0)
    u = np.tile(np.arange(size, dtype=np.float32), size)
    attrs = np.stack([u, 2 * u, np.ones_like(u)], -1)[None]
    img, cov = rasterizer.rasterize_attributes(
        _grid_vertices(depth, K), mesh.grid_faces(size, size), attrs, K, size,
        size, anti_aliasing=False, background=-1.0)
    self.assertAllClose(img[0, 2, :, 0], np.arange(size), atol=1e-4)
    self.assertAllClose(img[0, 2, :, 1], 2 * np.arange(size), atol=1e-4)
    self.assertAllClose(cov, np.ones([1, size, size, 1]))

  @parameterized.parameters((777, False), (777, True), (8, True), (1, False))
  def test_order_by_area_bucket(self, n, jit):
    # A permutation; buckets non-increasing; original order within a bucket
    # (sizes off and on the rank's block of 8 rows, eager and under XLA).
    rng = np.random.default_rng(n)
    area = rng.choice([0, 1, 3, 5, 8, 20, 30, 50, 100, 500], size=n)
    order_fn = rasterizer._order_by_area_bucket  # pylint: disable=protected-access
    if jit:
      order_fn = tf.function(order_fn, jit_compile=True)
    order = order_fn(tf.constant(area, tf.int32)).numpy()
    self.assertAllEqual(np.sort(order), np.arange(n))
    bucket = np.searchsorted(rasterizer._AREA_BUCKETS, area[order])  # pylint: disable=protected-access
    self.assertTrue(np.all(np.diff(bucket) <= 0))
    for b in np.unique(bucket):
      ids = order[bucket == b]
      self.assertTrue(np.all(np.diff(ids) > 0))
    # The same as NumPy's stable sort by descending bucket.
    expected = np.argsort(-np.searchsorted(rasterizer._AREA_BUCKETS, area),  # pylint: disable=protected-access
                          kind='stable')
    self.assertAllEqual(order, expected)

  def test_bad_inputs(self):
    K = camera.intrinsics(4)
    faces = mesh.grid_faces(2, 2)
    with self.assertRaisesRegex(ValueError, 'vertices must have rank 3'):
      rasterizer.rasterize_depth(np.zeros([4, 3], np.float32), faces, K, 4, 4)
    with self.assertRaisesRegex(ValueError, 'NaN'):
      rasterizer.rasterize_depth(np.full([1, 4, 3], np.nan, np.float32),
                                 faces, K, 4, 4)
    with self.assertRaisesRegex(ValueError, r'faces must have shape'):
      rasterizer.rasterize_depth(np.ones([1, 4, 3], np.float32),
                                 np.zeros([2, 4], np.int32), K, 4, 4)


if __name__ == '__main__':
  tf.test.main()
