"""Differentiable z-buffer rasteriser in plain TF ops (XLA-compilable).

Visibility is discrete and found without gradients: every triangle scatters
a packed (depth, triangle id) key into the pixels inside its bounding box,
and the smallest key wins (nearest depth, ties to the lowest id, so the
result is deterministic). The winning triangle's perspective-correct depth
(and attributes) are then recomputed differentiably from its vertices, the
same gradient semantics as neural_renderer's depth: gradients reach the
vertices of the visible face, there are no edge/visibility gradients.

Sample convention (`anti_aliasing=True`, the reference's default and the one
its checkpoints were trained with): neural_renderer rasterises at 2S x 2S with
its samples half a pixel off the K frame, then average-pools 2x2, so output
pixel (i, j) averages the z-buffer at (u, v) in {j+0.25, j+0.75} x
{i+0.25, i+0.75}, where pixel j sits at u = j in the K / grid_sample frame.
With `anti_aliasing=False` each output pixel takes one sample at (u, v) =
(j, i), exactly on the K frame (no half-pixel shift).

Triangles of both orientations are drawn; samples on an edge are inside;
depth must lie in (near, far) = (0.1, 100); background is `far` = 100.
Triangles with a vertex at depth <= near are skipped (the reference never
produces them: depths are about 1).
"""

import functools
from typing import Optional

import numpy as np
import tensorflow as tf

from tfunsup3d.render import checks

NEAR = 0.1
FAR = 100.0
_INT64_MAX = (1 << 63) - 1

# The z-buffer's first tier (`_min_keys`): triangles with boxes over this
# many cells go through small chunks. On a CPU a chunk costs its rows times
# its largest box, and the tier pays on steep depth (0.46x the z-buffer's
# time on box-shaped relief, 0.98x smooth; 2 cores). On a GPU rows are
# nearly free and each chunk is a round of a while loop whose predicate is
# read back: there the tier cost 1.7x (smooth) to 8.5x (noise) on an H100,
# so with an accelerator visible no row is large (`default_large_area`).
LARGE_AREA_CPU = 16
NO_LARGE_AREA = 2 ** 30


def _sample_grid_params(anti_aliasing: bool):
  """Returns (samples per pixel per axis, pixel offset of the samples)."""
  return (2, 0.5) if anti_aliasing else (1, 0.0)


def _triangles(vertices, faces, K, supersample: int, offset: float):
  """Per-triangle screen-space corners, triangle-major.

  Sample s (an integer, at resolution S * supersample) sits at image
  coordinate u = (s + 0.5) / supersample - 0.5 + offset, so a point at u has
  sample coordinate (u - offset + 0.5) * supersample - 0.5.

  The corners are gathered from a vertex-major `[N, B, 3]` copy, so that the
  gradient of each gather is a segment sum over whole rows: gathering along
  axis 1 of `[B, N, 3]` made the backward pass transpose every corner of
  every triangle (4.6% of the quickstart step's kernel time, `bench.profile`).

  Returns:
    (c0, c1, c2), the three corners, each a tensor of shape `[T, B, 3]`
    holding (sx, sy, z).
  """
  x, y, z = tf.unstack(tf.transpose(vertices, [1, 0, 2]), axis=-1)  # [N, B]
  u = checks.safe_divide(x, z) * K[0, 0] + K[0, 2]
  v = checks.safe_divide(y, z) * K[1, 1] + K[1, 2]
  sx = (u - offset + 0.5) * supersample - 0.5
  sy = (v - offset + 0.5) * supersample - 0.5
  screen = tf.stack([sx, sy, z], axis=-1)  # [N, B, 3]
  return tuple(tf.gather(screen, faces[:, i]) for i in range(3))


def _edge_terms(c0, c1, c2):
  """Barycentric coefficients relative to corner 0.

  For a sample p, with d = p - v0: w1 = d.x * a1 + d.y * b1,
  w2 = d.x * a2 + d.y * b2, w0 = 1 - w1 - w2.

  Args:
    c0, c1, c2: the corners, `[..., 3]` each (see `_triangles`).

  Returns:
    (x0, y0, a1, b1, a2, b2, valid) each `[...]`; valid is False for
    degenerate (zero-area) triangles.
  """
  x0, y0 = c0[..., 0], c0[..., 1]
  ex1, ey1 = c1[..., 0] - x0, c1[..., 1] - y0
  ex2, ey2 = c2[..., 0] - x0, c2[..., 1] - y0
  area = ex1 * ey2 - ex2 * ey1
  valid = tf.abs(area) > 1e-10
  inv = checks.safe_divide(tf.ones_like(area), area, eps=1e-10)
  return x0, y0, ey2 * inv, -ex2 * inv, -ey1 * inv, ex1 * inv, valid


def _coefficients(corners):
  """`_edge_terms` and the corners' inverse depths, `[T, B, 9]`, and valid."""
  x0, y0, a1, b1, a2, b2, valid = _edge_terms(*corners)
  zs = tf.stack([c[..., 2] for c in corners], axis=-1)  # [T, B, 3]
  # Invisible triangles may have a corner at depth 0: safe, finite gradient.
  inv_depth = checks.safe_divide(tf.ones_like(zs), zs)
  return tf.concat([tf.stack([x0, y0, a1, b1, a2, b2], axis=-1), inv_depth],
                   axis=-1), valid


def _interpolate_depth(w0, w1, w2, inv_depth):
  """Perspective-correct depth 1 / sum(w_i / z_i) from the corners' inverse
  depths `inv_depth` `[..., 3]`, and whether it is valid."""
  inv_z = (w0 * inv_depth[..., 0] + w1 * inv_depth[..., 1] +
           w2 * inv_depth[..., 2])
  z = checks.safe_divide(tf.ones_like(inv_z), inv_z)
  return z, (inv_z > 0.0) & (z > NEAR) & (z < FAR)


# Upper bounds (inclusive) of the box-area buckets of `_order_by_area_bucket`.
_AREA_BUCKETS = (0, 2, 4, 6, 9, 12, 16, 25, 36, 64, 144)
# Rows per block of `_order_by_area_bucket`'s two-level count.
_RANK_BLOCK = 8


def _order_by_area_bucket(area):
  """A permutation of `area` `[N]` (int32) by area bucket, largest first.

  A counting sort over `_AREA_BUCKETS` (O(N) vectorised, stable within a
  bucket): chunks of the result hold triangles of similar box size, which is
  all the chunked z-buffer needs, at a fraction of the cost of a comparison
  sort (XLA:CPU's sort was about half of the z-buffer's time).

  A row's rank within its bucket is counted in two levels: against the
  earlier rows of its block of `_RANK_BLOCK` rows (pairwise, elementwise
  work), plus the bucket's count in all earlier blocks (a prefix sum over
  N / _RANK_BLOCK blocks). A prefix sum over all N rows' one-hot buckets,
  which XLA:CPU runs as a reduce-window, took 2.5-3 times as long.
  """
  edges = tf.constant(_AREA_BUCKETS, tf.int32)
  num_buckets = len(_AREA_BUCKETS) + 1
  bucket = num_buckets - 1 - tf.reduce_sum(
      tf.cast(area[:, tf.newaxis] > edges, tf.int32), axis=1)
  n = tf.shape(area)[0]
  k = _RANK_BLOCK
  # Padding rows get bucket `num_buckets`: counted apart, dropped below.
  blocks = tf.reshape(tf.pad(bucket, [[0, (-n) % k]],
                             constant_values=num_buckets), [-1, k])
  earlier = tf.constant(np.tril(np.ones([k, k], bool), -1))
  within = tf.reduce_sum(tf.cast(
      (blocks[:, :, tf.newaxis] == blocks[:, tf.newaxis, :]) & earlier,
      tf.int32), axis=2)  # [M, k]
  counts = tf.reduce_sum(tf.one_hot(blocks, num_buckets + 1, dtype=tf.int32),
                         axis=1)  # [M, num_buckets + 1]
  before = tf.cumsum(counts, axis=0, exclusive=True)
  rank = tf.reshape(within + tf.gather(before, blocks, batch_dims=1), [-1])
  offsets = tf.cumsum(tf.reduce_sum(counts[:, :num_buckets], axis=0),
                      exclusive=True)
  position = tf.gather(offsets, bucket) + rank[:n]
  return tf.scatter_nd(position[:, tf.newaxis], tf.range(n), [n])


def _triangle_table(corners, height: int, width: int):
  """Per-triangle data of the z-buffer, one row per triangle of the batch.

  Args:
    corners: (c0, c1, c2), each `[T, B, 3]` (see `_triangles`).
    height: sample rows.
    width: sample columns.

  Returns:
    (floats `[T*B, 9]`: x0, y0, a1, b1, a2, b2 (`_edge_terms`) and the
    corners' inverse depths; ints `[T*B, 6]` int32: the bounding box's first
    column and row and its width (clipped to the image), its area (0 when
    the triangle is degenerate or crosses the near plane), the flat index of
    its image's first sample, and its id within the image). Row t * B + b is
    triangle t of image b.
  """
  batch = tf.shape(corners[0])[1]
  floats, nondegenerate = _coefficients(corners)
  floats = tf.reshape(floats, [-1, 9])
  nondegenerate = tf.reshape(nondegenerate, [-1])
  xs, ys, zs = (tf.reshape(tf.stack([c[..., k] for c in corners], -1), [-1, 3])
                for k in range(3))  # [T*B, 3] each
  xmin = tf.maximum(tf.math.ceil(tf.reduce_min(xs, -1)), 0.0)
  xmax = tf.minimum(tf.math.floor(tf.reduce_max(xs, -1)), width - 1.0)
  ymin = tf.maximum(tf.math.ceil(tf.reduce_min(ys, -1)), 0.0)
  ymax = tf.minimum(tf.math.floor(tf.reduce_max(ys, -1)), height - 1.0)
  box_w = tf.maximum(xmax - xmin + 1.0, 0.0)
  box_h = tf.maximum(ymax - ymin + 1.0, 0.0)
  drawable = nondegenerate & (tf.reduce_min(zs, -1) > NEAR)
  box_area = tf.where(drawable, tf.cast(box_w * box_h, tf.int32), 0)
  row = tf.range(tf.shape(xs)[0], dtype=tf.int32)
  pixel_base = (row % batch) * (height * width)
  ints = tf.stack([tf.cast(xmin, tf.int32), tf.cast(ymin, tf.int32),
                   tf.cast(box_w, tf.int32), box_area,
                   pixel_base, row // batch], axis=-1)
  return floats, ints


def _sort_by_area(floats, ints, pad: int):
  """`_triangle_table`'s rows by box area bucket, largest first, then `pad`
  zero rows (box area 0: they draw nothing), so that a slice of up to `pad`
  rows starting at any row before the end stays in range.

  Returns:
    (floats `[N + pad, 9]`, ints `[N + pad, 6]`).
  """
  order = _order_by_area_bucket(ints[:, 3])
  return (tf.pad(tf.gather(floats, order), [[0, pad], [0, 0]]),
          tf.pad(tf.gather(ints, order), [[0, pad], [0, 0]]))


def _scatter_cell(k, keys, f, i, width: int, dummy):
  """Visits cell k of every box of one chunk and scatter-mins their keys.

  Args:
    k: scalar int32, the cell index in each box (row-major in the box).
    keys: `[dummy + 1]` int64 z-buffer, depth bits << 32 | triangle id.
    f: `[rows, 9]`, i: `[rows, 6]`: one chunk of `_sort_by_area`'s
      table.
    width: sample columns.
    dummy: the slot that receives rejected candidates (B * height * width).

  Returns:
    The updated keys `[dummy + 1]`.
  """
  box_w = tf.maximum(i[:, 2], 1)  # padding rows hold zeros
  px_int = i[:, 0] + k % box_w
  py_int = i[:, 1] + k // box_w
  dx = tf.cast(px_int, tf.float32) - f[:, 0]
  dy = tf.cast(py_int, tf.float32) - f[:, 1]
  w1 = dx * f[:, 2] + dy * f[:, 3]
  w2 = dx * f[:, 4] + dy * f[:, 5]
  w0 = 1.0 - w1 - w2
  z, valid = _interpolate_depth(w0, w1, w2, f[:, 6:])
  hit = ((k < i[:, 3]) & valid &
         (w0 >= 0.0) & (w1 >= 0.0) & (w2 >= 0.0))
  pix = tf.where(hit, i[:, 4] + py_int * width + px_int, dummy)
  z_bits = tf.cast(tf.bitcast(tf.where(hit, z, FAR), tf.int32), tf.int64)
  key = tf.bitwise.bitwise_or(tf.bitwise.left_shift(z_bits, 32),
                              tf.cast(i[:, 5], tf.int64))
  return tf.tensor_scatter_nd_min(keys, pix[:, tf.newaxis], key)


def _min_keys(floats, ints, width: int, size: int, chunk_size: int,
              large_chunk_size: int, large_area: int):
  """Runs the z-buffer loops: over chunks of rows, then over their boxes'
  cells.

  A chunk costs its row count times its largest box's area, so the rows
  with boxes larger than `large_area` (the head of the sorted table) go
  through chunks of `large_chunk_size` rows, the rest through chunks of
  `chunk_size`: a few large triangles (steep depth, as at a car's edges
  seen from the side, or noisy depth early in training) then no longer
  make a whole chunk of small ones visit every cell of the largest box.

  Args:
    floats, ints: from `_sort_by_area`, padded by at least `chunk_size`.
    width: sample columns.
    size: B * height * width, the number of samples.
    chunk_size, large_chunk_size: rows per chunk (static ints;
      `large_chunk_size` <= `chunk_size`).
    large_area: box area (cells) above which a row is large.

  Returns:
    `[size]` int64: per sample the smallest key (depth bits << 32 | id),
    `_INT64_MAX` where no triangle covers it.
  """
  area = ints[:, 3]
  num_large = tf.reduce_sum(tf.cast(area > large_area, tf.int32))
  num_drawn = tf.reduce_sum(tf.cast(area > 0, tf.int32))

  def run_chunk(start, rows, keys):
    f = tf.slice(floats, [start, 0], [rows, 9])
    i = tf.slice(ints, [start, 0], [rows, 6])
    max_area = tf.reduce_max(i[:, 3])
    _, keys = tf.while_loop(
        lambda k, _: k < max_area,
        lambda k, keys: (k + 1, _scatter_cell(k, keys, f, i, width, size)),
        (tf.constant(0), keys))
    return keys

  keys = tf.fill([size + 1], tf.constant(_INT64_MAX, tf.int64))
  _, keys = tf.while_loop(
      lambda start, _: start < num_large,
      lambda start, keys: (start + large_chunk_size,
                           run_chunk(start, large_chunk_size, keys)),
      (tf.constant(0), keys))
  first_small = ((num_large + large_chunk_size - 1) // large_chunk_size
                 * large_chunk_size)
  _, keys = tf.while_loop(
      lambda start, _: start < num_drawn,
      lambda start, keys: (start + chunk_size,
                           run_chunk(start, chunk_size, keys)),
      (first_small, keys))
  return keys[:-1]


@functools.lru_cache(maxsize=None)
def default_large_area() -> int:
  """`LARGE_AREA_CPU`, or `NO_LARGE_AREA` when a GPU or TPU is visible.

  TensorFlow places the z-buffer on the first accelerator when there is
  one; pinned to the CPU of such a machine it runs in one tier (the same
  visible triangles, slower only on steep depth).
  """
  accelerated = (tf.config.list_logical_devices('GPU')
                 or tf.config.list_logical_devices('TPU'))
  return NO_LARGE_AREA if accelerated else LARGE_AREA_CPU


def _visible_faces(corners, height: int, width: int,
                   chunk_size: int = 16384, large_chunk_size: int = 1024,
                   large_area: Optional[int] = None) -> tf.Tensor:
  """Z-buffer: the id of the visible triangle per sample, -1 for background.

  Every triangle visits the sample cells of its (clipped) bounding box and
  scatter-mins a packed key (depth bits << 32 | triangle id) into them. To
  keep the work proportional to the total box area even when a few
  triangles are large (noisy depth early in training), triangles are grouped
  by box area (`_order_by_area_bucket`) and processed in chunks
  (`_min_keys`): a `tf.while_loop` over chunks, inside it a loop over the
  cells of the chunk's largest box (iteration k visits cell k of every box
  in the chunk); triangles with boxes over `large_area` cells go in chunks
  of `large_chunk_size`, the rest in chunks of `chunk_size`. Everything
  compiles under XLA; no Python loop ends up in the graph.

  Args:
    corners: (c0, c1, c2), each `[T, B, 3]` (see `_triangles`).
    height: sample rows.
    width: sample columns.
    chunk_size, large_chunk_size, large_area: see `_min_keys`;
      `large_area` None: `default_large_area()`, by the devices TF sees.

  Returns:
    An int32 tensor of shape `[B, height, width]`.
  """
  if large_area is None:
    large_area = default_large_area()
  corners = tuple(tf.stop_gradient(c) for c in corners)
  batch = tf.shape(corners[0])[1]
  floats, ints = _triangle_table(corners, height, width)
  floats, ints = _sort_by_area(floats, ints, chunk_size)
  keys = _min_keys(floats, ints, width, batch * height * width, chunk_size,
                   large_chunk_size, large_area)
  ids = tf.cast(tf.bitwise.bitwise_and(keys, 0xFFFFFFFF), tf.int32)
  ids = tf.where(keys == _INT64_MAX, -1, ids)
  return tf.reshape(ids, [batch, height, width])


# The z-buffer runs XLA-compiled wherever it is called: eagerly (an eager
# while loop would run op by op), in a graph that is not compiled (0.92 ->
# 0.22 s for 128 maps of 64x64 on 2 CPU cores, while the networks keep TF's
# own kernels), and inside an XLA cluster (inlined). It has no gradient.
_find_visible_faces = tf.function(_visible_faces, jit_compile=True,
                                  reduce_retracing=True, autograph=False)


def _barycentrics(corners, face_ids, height: int, width: int):
  """Differentiable screen-space barycentrics and depth of the visible face.

  The edge terms and the corners' inverse depths are computed once per
  triangle and gathered per sample, so the backward pass scatters 9 plain
  per-sample partials and differentiates the edge terms per triangle (per
  sample it was the single largest kernel of the XLA training step).

  Args:
    corners: (c0, c1, c2), each `[T, B, 3]` (see `_triangles`).
    face_ids: `[B, height, width]` int32 from `_visible_faces`.

  Returns:
    (w `[B, h, w, 3]`, z `[B, h, w]`, mask `[B, h, w]` bool, the visible
    triangles' corner inverse depths `[B, h*w, 3]`).
  """
  batch = tf.shape(corners[0])[1]
  flat_ids = tf.reshape(face_ids, [batch, height * width])
  mask = flat_ids >= 0
  coeffs, _ = _coefficients(corners)  # [T, B, 9]
  rows = tf.maximum(flat_ids, 0) * batch + tf.range(batch)[:, tf.newaxis]
  coeffs = tf.gather(tf.reshape(coeffs, [-1, 9]), rows)  # [B, P, 9]
  x0, y0, a1, b1, a2, b2 = tf.unstack(coeffs[..., :6], axis=-1)  # [B, P]
  inv_depth = coeffs[..., 6:]  # [B, P, 3]
  py, px = tf.meshgrid(tf.range(height, dtype=tf.float32),
                       tf.range(width, dtype=tf.float32), indexing='ij')
  dx = tf.reshape(px, [1, -1]) - x0
  dy = tf.reshape(py, [1, -1]) - y0
  w1 = dx * a1 + dy * b1
  w2 = dx * a2 + dy * b2
  w0 = 1.0 - w1 - w2
  z, _ = _interpolate_depth(w0, w1, w2, inv_depth)
  w = tf.stack([w0, w1, w2], axis=-1)
  w = tf.where(mask[..., tf.newaxis], w, 0.0)
  z = tf.where(mask, z, FAR)
  return (tf.reshape(w, [batch, height, width, 3]),
          tf.reshape(z, [batch, height, width]),
          tf.reshape(mask, [batch, height, width]), inv_depth)


def _check_inputs(vertices, faces, K):
  vertices = checks.check_tensor(vertices, 'vertices', rank=3, last_dims=(3,))
  faces = checks.check_tensor(faces, 'faces', rank=2, last_dims=(3,),
                              dtype=tf.int32)
  return vertices, faces, tf.convert_to_tensor(K, tf.float32)


def _pool(x, supersample: int, height: int, width: int):
  """Averages supersample x supersample blocks of `[B, h*s, w*s, C]`."""
  if supersample == 1:
    return x
  x = tf.reshape(x, [-1, height, supersample, width, supersample, x.shape[-1]])
  return tf.reduce_mean(x, axis=[2, 4])


def rasterize_depth(vertices, faces, K, height: int, width: int,
                    anti_aliasing: bool = True) -> tf.Tensor:
  """Renders the depth map of a mesh with a z-buffer.

  Args:
    vertices: camera-space vertices, a tensor of shape `[B, N, 3]`.
    faces: int32 vertex ids, a tensor of shape `[T, 3]`.
    K: the camera matrix, shape `[3, 3]`.
    height: output rows H.
    width: output columns W.
    anti_aliasing: the reference's 2x supersampled convention (see module
      docstring); False renders one sample per pixel on the K frame.

  Returns:
    A tensor of shape `[B, H, W]`: perspective-correct depth, `FAR` (100)
    where no triangle is hit; a pixel with a background sub-sample averages
    to >= 25.
  """
  with tf.name_scope('rasterize_depth'):
    vertices, faces, K = _check_inputs(vertices, faces, K)
    ss, offset = _sample_grid_params(anti_aliasing)
    corners = _triangles(vertices, faces, K, ss, offset)
    ids = _find_visible_faces(corners, height * ss, width * ss)
    _, z, _, _ = _barycentrics(corners, ids, height * ss, width * ss)
    return _pool(z[..., tf.newaxis], ss, height, width)[..., 0]


def rasterize_attributes(vertices, faces, attributes, K, height: int,
                         width: int, anti_aliasing: bool = True,
                         background: float = 0.0):
  """Renders per-vertex attributes (e.g. colours) with a z-buffer.

  Attributes are interpolated perspective-correctly:
  a = z * sum(w_i a_i / z_i).

  Args:
    vertices: a tensor of shape `[B, N, 3]`.
    faces: a tensor of shape `[T, 3]`.
    attributes: a tensor of shape `[B, N, C]`.
    K: a tensor of shape `[3, 3]`.
    height: output rows.
    width: output columns.
    anti_aliasing: see `rasterize_depth`.
    background: value of pixels not covered.

  Returns:
    (image `[B, H, W, C]`, coverage `[B, H, W, 1]` in [0, 1]).
  """
  with tf.name_scope('rasterize_attributes'):
    vertices, faces, K = _check_inputs(vertices, faces, K)
    attributes = checks.check_tensor(attributes, 'attributes', rank=3)
    ss, offset = _sample_grid_params(anti_aliasing)
    corners = _triangles(vertices, faces, K, ss, offset)
    ids = _find_visible_faces(corners, height * ss, width * ss)
    w, z, mask, inv_depth = _barycentrics(corners, ids, height * ss,
                                          width * ss)
    batch = tf.shape(w)[0]
    attr = tf.gather(attributes, faces, axis=1)  # [B, T, 3, C]
    flat_ids = tf.maximum(tf.reshape(ids, [batch, -1]), 0)
    attr = tf.gather(attr, flat_ids, batch_dims=1)  # [B, P, 3, C]
    wz = tf.reshape(w, [batch, -1, 3]) * inv_depth
    zf = tf.reshape(z, [batch, -1, 1])
    values = zf * tf.reduce_sum(wz[..., tf.newaxis] * attr, axis=2)
    maskf = tf.cast(tf.reshape(mask, [batch, -1, 1]), values.dtype)
    values = values * maskf + background * (1.0 - maskf)
    c = attributes.shape[-1]
    values = tf.reshape(values, [batch, height * ss, width * ss, c])
    maskf = tf.reshape(maskf, [batch, height * ss, width * ss, 1])
    return (_pool(values, ss, height, width), _pool(maskf, ss, height, width))
