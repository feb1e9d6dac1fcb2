"""Global light: ambient and diffuse strengths and a direction."""

import tensorflow as tf

from tfunsup3d.factors.depth import rescale


def canonical_light(raw, min_amb: float, max_amb: float, min_diff: float,
                    max_diff: float):
  """Light encoder output (4, tanh) -> (k_a, k_d, direction).

  Args:
    raw: a tensor of shape `[B, 4]` in [-1, 1].

  Returns:
    (light_a `[B, 1]`, light_b `[B, 1]`, light_d `[B, 3]` unit vectors
    (dx, dy, 1) / |.|).
  """
  light_a = rescale(raw[:, :1], min_amb, max_amb)
  light_b = rescale(raw[:, 1:2], min_diff, max_diff)
  d = tf.concat([raw[:, 2:], tf.ones_like(raw[:, :1])], axis=1)
  light_d = d / tf.sqrt(tf.reduce_sum(d * d, axis=1, keepdims=True))
  return light_a, light_b, light_d
