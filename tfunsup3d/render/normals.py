"""Surface normals from a depth map."""

import tensorflow as tf

from tfunsup3d.render import camera, checks

EPS = 1e-7


def cross(a, b) -> tf.Tensor:
  """a x b of `[..., 3]` tensors with elementwise ops only (TFLite builtins;
  equal to `tf.linalg.cross` to float rounding)."""
  ax, ay, az = a[..., 0:1], a[..., 1:2], a[..., 2:3]
  bx, by, bz = b[..., 0:1], b[..., 1:2], b[..., 2:3]
  return tf.concat([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx],
                   axis=-1)


def depth_to_normals(depth, K) -> tf.Tensor:
  """Normals of the depth map's 3D points by central differences.

  t_u = P[i, j+1] - P[i, j-1], t_v = P[i+1, j] - P[i-1, j], n = t_u x t_v,
  normalised (|n| + 1e-7, as the reference); border pixels get (0, 0, 1).
  With u right and v down, a fronto-parallel plane gets n = (0, 0, 1)
  (pointing away from the camera, the reference's convention). The cross
  product is written with multiplications (`cross`): `tf.linalg.cross` has no
  TFLite builtin, and this way the exported canonical model shares it.

  Args:
    depth: a tensor of shape `[B, H, W]`.
    K: a tensor of shape `[3, 3]`.

  Returns:
    A tensor of shape `[B, H, W, 3]`.
  """
  with tf.name_scope('depth_to_normals'):
    depth = checks.check_tensor(depth, 'depth', rank=3)
    p = camera.depth_to_points(depth, K)
    tu = p[:, 1:-1, 2:] - p[:, 1:-1, :-2]
    tv = p[:, 2:, 1:-1] - p[:, :-2, 1:-1]
    n = cross(tu, tv)
    n = tf.pad(n, [[0, 0], [1, 1], [1, 1], [0, 0]])
    border = tf.pad(tf.zeros_like(n[..., :1])[:, 1:-1, 1:-1],
                    [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0)
    n = n + border * tf.constant([0.0, 0.0, 1.0])
    norm = tf.sqrt(tf.reduce_sum(n * n, axis=-1, keepdims=True))
    return n / (norm + EPS)
