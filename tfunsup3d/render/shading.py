"""Lambertian shading of the canonical albedo."""

import tensorflow as tf

from tfunsup3d.render import checks


def diffuse_shading(normal, light_d) -> tf.Tensor:
  """max(0, n . l).

  Args:
    normal: a tensor of shape `[B, H, W, 3]` of unit normals.
    light_d: a tensor of shape `[B, 3]` of unit light directions.

  Returns:
    A tensor of shape `[B, H, W, 1]`.
  """
  normal = checks.check_tensor(normal, 'normal', rank=4, last_dims=(3,))
  light_d = checks.check_tensor(light_d, 'light_d', rank=2, last_dims=(3,))
  s = tf.reduce_sum(normal * light_d[:, tf.newaxis, tf.newaxis, :], axis=-1,
                    keepdims=True)
  return tf.maximum(s, 0.0)


def shade(albedo, normal, light_a, light_b, light_d):
  """Canonical image: ((a + 1) / 2 * (k_a + k_d max(0, n.l))) * 2 - 1.

  Args:
    albedo: a tensor of shape `[B, H, W, 3]` in [-1, 1].
    normal: a tensor of shape `[B, H, W, 3]`.
    light_a: ambient strength, shape `[B, 1]`.
    light_b: diffuse strength, shape `[B, 1]`.
    light_d: light direction, shape `[B, 3]`.

  Returns:
    (canon_im `[B, H, W, 3]` in about [-1, 1], diffuse shading `[B, H, W, 1]`).
  """
  albedo = checks.check_tensor(albedo, 'albedo', rank=4)
  s = diffuse_shading(normal, light_d)
  ka = tf.reshape(light_a, [-1, 1, 1, 1])
  kd = tf.reshape(light_b, [-1, 1, 1, 1])
  canon_im = (albedo / 2.0 + 0.5) * (ka + kd * s) * 2.0 - 1.0
  return canon_im, s
