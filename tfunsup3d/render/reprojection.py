"""Reprojection Π: canonical view -> input view.

Forward: the canonical depth grid becomes a mesh, moved by the viewpoint and
z-buffered into the input view (`render_depth`). Backward: every input pixel
is lifted with that depth, moved by the inverse viewpoint and projected into
the canonical view (`inverse_warp_grid`), where the canonical image is
sampled bilinearly (`grid_sample`).
"""

import math

import tensorflow as tf

from tfunsup3d.render import camera, checks, mesh, rasterizer, view as view_lib


def render_depth(canon_depth, view, K, rot_center_depth: float,
                 min_depth: float, max_depth: float,
                 anti_aliasing: bool = True, clamp: bool = True):
  """Renders the canonical depth seen from `view` (the reference's
  `warp_canon_depth`).

  Args:
    canon_depth: a tensor of shape `[B, H, W]`.
    view: a tensor of shape `[B, 6]` (radians, translations).
    K: a tensor of shape `[3, 3]`.
    rot_center_depth: depth of the rotation centre.
    min_depth: lower end of the depth range.
    max_depth: upper end of the depth range.
    anti_aliasing: reference sample convention (see `rasterizer`).
    clamp: clamp to [min_depth - m, max_depth + m], m = (max - min) / 2.

  Returns:
    A tensor of shape `[B, H, W]`; pixels at `max_depth + m` are invalid.
  """
  with tf.name_scope('render_depth'):
    canon_depth = checks.check_tensor(canon_depth, 'canon_depth', rank=3)
    b = tf.shape(canon_depth)[0]
    h, w = canon_depth.shape[1], canon_depth.shape[2]
    if h is None or w is None:
      raise ValueError('canon_depth needs static height and width.')
    points = tf.reshape(camera.depth_to_points(canon_depth, K), [b, -1, 3])
    points = view_lib.transform_points(points, view, rot_center_depth)
    depth = rasterizer.rasterize_depth(points, mesh.grid_faces(h, w), K, h, w,
                                       anti_aliasing=anti_aliasing)
    if clamp:
      margin = (max_depth - min_depth) / 2.0
      depth = tf.clip_by_value(depth, min_depth - margin, max_depth + margin)
    return depth


def inverse_warp_grid(recon_depth, view, K, rot_center_depth: float):
  """Where each input-view pixel lands in the canonical view.

  Args:
    recon_depth: a tensor of shape `[B, H, W]` (depth in the input view).
    view: a tensor of shape `[B, 6]`.
    K: a tensor of shape `[3, 3]`.
    rot_center_depth: depth of the rotation centre.

  Returns:
    A tensor of shape `[B, H, W, 2]` of (x, y) in [-1, 1] (align corners).
  """
  with tf.name_scope('inverse_warp_grid'):
    recon_depth = checks.check_tensor(recon_depth, 'recon_depth', rank=3)
    shape = tf.shape(recon_depth)
    points = tf.reshape(camera.depth_to_points(recon_depth, K),
                        [shape[0], -1, 3])
    points = view_lib.transform_points(points, view, rot_center_depth,
                                       inverse=True)
    points = tf.reshape(points, [shape[0], shape[1], shape[2], 3])
    return camera.points_to_grid(points, K)


def grid_sample(image, grid):
  """Bilinear sampling with align-corners semantics and zero padding.

  Equivalent to torch's `F.grid_sample(image, grid, mode='bilinear',
  padding_mode='zeros', align_corners=True)`: x = -1 and 1 are the centres
  of the first and last columns; neighbours outside the image count as 0.

  Args:
    image: a tensor of shape `[B, H, W, C]`.
    grid: a tensor of shape `[B, Ho, Wo, 2]` of (x, y) in [-1, 1].

  Returns:
    A tensor of shape `[B, Ho, Wo, C]`.
  """
  with tf.name_scope('grid_sample'):
    image = checks.check_tensor(image, 'image', rank=4)
    grid = checks.check_tensor(grid, 'grid', rank=4, last_dims=(2,))
    shape = tf.shape(image)
    b, h, w = shape[0], shape[1], shape[2]
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    x = (grid[..., 0] + 1.0) / 2.0 * (wf - 1.0)
    y = (grid[..., 1] + 1.0) / 2.0 * (hf - 1.0)
    # Far-away coordinates cannot contribute; clipping keeps int casts safe.
    x = tf.clip_by_value(x, -2.0, wf + 1.0)
    y = tf.clip_by_value(y, -2.0, hf + 1.0)
    x0, y0 = tf.floor(x), tf.floor(y)
    fx, fy = x - x0, y - y0
    flat = tf.reshape(image, [b, -1, tf.shape(image)[3]])
    out = 0.0
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
      for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
        xi, yi = x0 + dx, y0 + dy
        inside = (xi >= 0) & (xi <= wf - 1) & (yi >= 0) & (yi <= hf - 1)
        idx = (tf.cast(tf.clip_by_value(yi, 0, hf - 1), tf.int32) * w +
               tf.cast(tf.clip_by_value(xi, 0, wf - 1), tf.int32))
        idx = tf.reshape(idx, [b, -1])
        vals = tf.gather(flat, idx, batch_dims=1)
        vals = tf.reshape(vals, tf.concat([tf.shape(grid)[:3], [-1]], 0))
        weight = tf.where(inside, wx * wy, 0.0)[..., tf.newaxis]
        out = out + vals * weight
    return out


def render_yaw(image, depth, K, rot_center_depth: float, v_before=None,
               max_rotation: float = 90.0, num_samples: int = 9,
               rotations=None, anti_aliasing: bool = True,
               background: float = 1.0):
  """Renders the canonical shape, textured by `image`, rotated about yaw.

  The mesh of `depth` (optionally moved by the inverse of `v_before` first)
  is rotated by each yaw angle about (0, 0, rot_center_depth) and rendered
  with per-vertex colours taken from `image` (the reference's
  `render_yaw`, with vertex colours interpolated perspective-correctly).

  Args:
    image: a tensor of shape `[B, H, W, C]`, e.g. the canonical image or
      normals in [-1, 1].
    depth: canonical depth, a tensor of shape `[B, H, W]`.
    K: a tensor of shape `[3, 3]`.
    rot_center_depth: depth of the rotation centre.
    v_before: optional view `[B, 6]` whose inverse is applied first.
    max_rotation: yaw range in degrees, samples in [-max, max].
    num_samples: number of yaw angles T.
    rotations: optional explicit yaw angles in radians, shape `[T]`.
    anti_aliasing: see `rasterizer`.
    background: value of uncovered pixels.

  Returns:
    A tensor of shape `[B, T, H, W, C]` clipped to [-1, 1].
  """
  with tf.name_scope('render_yaw'):
    image = checks.check_tensor(image, 'image', rank=4)
    depth = checks.check_tensor(depth, 'depth', rank=3)
    b = tf.shape(depth)[0]
    h, w, c = image.shape[1], image.shape[2], image.shape[3]
    points = tf.reshape(camera.depth_to_points(depth, K), [b, -1, 3])
    if v_before is not None:
      points = view_lib.transform_points(points, v_before, rot_center_depth,
                                         inverse=True)
    if rotations is None:
      r = max_rotation * math.pi / 180.0
      rotations = tf.linspace(-r, r, num_samples)
    rotations = tf.cast(tf.reshape(rotations, [-1]), tf.float32)
    t = tf.shape(rotations)[0]
    yaw = tf.stack([tf.zeros_like(rotations), rotations,
                    tf.zeros_like(rotations)], axis=-1)  # [T, 3]
    views = tf.reshape(tf.tile(yaw[tf.newaxis], [b, 1, 1]), [-1, 3])
    points = tf.repeat(points, t, axis=0)  # [B*T, N, 3]
    points = view_lib.transform_points(points, tf.pad(views, [[0, 0], [0, 3]]),
                                       rot_center_depth)
    colours = tf.repeat(tf.reshape(image, [b, -1, c]), t, axis=0)
    rendered, _ = rasterizer.rasterize_attributes(
        points, mesh.grid_faces(h, w), colours, K, h, w,
        anti_aliasing=anti_aliasing, background=background)
    rendered = tf.reshape(rendered, [b, t, h, w, c])
    return tf.clip_by_value(rendered, -1.0, 1.0)
