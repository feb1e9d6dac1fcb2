"""Pinhole camera of the reference: intrinsics, lifting and projection.

Pixel (u, v): u to the right (column), v down (row); pixel j sits at u = j.
A pixel with depth z is the 3D point z * K^-1 (u, v, 1)^T.
"""

import math

import tensorflow as tf

from tfunsup3d.render import checks


def intrinsics(image_size: int, fov: float = 10.0) -> tf.Tensor:
  """Camera matrix of the reference renderer.

  Args:
    image_size: S, the side of the square image in pixels.
    fov: the field of view in degrees.

  Returns:
    A float32 tensor of shape `[3, 3]`: f = (S-1)/2 / tan(fov/2), c = (S-1)/2.
  """
  if image_size < 2:
    raise ValueError(f'image_size must be >= 2. Received: {image_size}')
  if not 0.0 < fov < 180.0:
    raise ValueError(f'fov must be in (0, 180) degrees. Received: {fov}')
  f = (image_size - 1) / 2.0 / math.tan(fov / 2.0 * math.pi / 180.0)
  c = (image_size - 1) / 2.0
  return tf.constant([[f, 0.0, c], [0.0, f, c], [0.0, 0.0, 1.0]], tf.float32)


def pixel_grid(height: int, width: int) -> tf.Tensor:
  """Returns a `[H, W, 2]` float32 grid of pixel coordinates (u, v)."""
  v, u = tf.meshgrid(tf.range(height, dtype=tf.float32),
                     tf.range(width, dtype=tf.float32), indexing='ij')
  return tf.stack([u, v], axis=-1)


def depth_to_points(depth, K) -> tf.Tensor:
  """Lifts a depth map to camera-space 3D points.

  Args:
    depth: a tensor of shape `[B, H, W]` of depths (z).
    K: a tensor of shape `[3, 3]`, the camera matrix.

  Returns:
    A tensor of shape `[B, H, W, 3]`: z * K^-1 (u, v, 1).
  """
  with tf.name_scope('depth_to_points'):
    depth = checks.check_tensor(depth, 'depth', rank=3)
    K = tf.convert_to_tensor(K, tf.float32)
    h, w = tf.shape(depth)[1], tf.shape(depth)[2]
    uv = pixel_grid(h, w)
    x = (uv[..., 0] - K[0, 2]) / K[0, 0]
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    rays = tf.stack([x, y, tf.ones_like(x)], axis=-1)  # [H, W, 3]
    return rays[tf.newaxis] * depth[..., tf.newaxis]


def project_points(points, K) -> tf.Tensor:
  """Projects camera-space points to pixel coordinates.

  Args:
    points: a tensor of shape `[A1, ..., An, 3]` with z > 0.
    K: a tensor of shape `[3, 3]`.

  Returns:
    A tensor of shape `[A1, ..., An, 2]` with (u, v) in pixels.
  """
  with tf.name_scope('project_points'):
    points = tf.convert_to_tensor(points, tf.float32)
    K = tf.convert_to_tensor(K, tf.float32)
    z = points[..., 2]
    u = checks.safe_divide(points[..., 0], z) * K[0, 0] + K[0, 2]
    v = checks.safe_divide(points[..., 1], z) * K[1, 1] + K[1, 2]
    return tf.stack([u, v], axis=-1)


def points_to_grid(points, K) -> tf.Tensor:
  """Projects `[B, H, W, 3]` points to a sampling grid normalised to [-1, 1].

  The reference normalises by (W-1, H-1): align-corners semantics, so -1 and
  1 are the centres of the first and last pixels.

  Returns:
    A tensor of shape `[B, H, W, 2]`, (x, y) in [-1, 1] for in-image points.
  """
  with tf.name_scope('points_to_grid'):
    uv = project_points(points, K)
    h = tf.cast(tf.shape(points)[1], tf.float32)
    w = tf.cast(tf.shape(points)[2], tf.float32)
    scale = tf.stack([w - 1.0, h - 1.0])
    return uv / scale * 2.0 - 1.0
