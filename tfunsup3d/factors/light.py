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
  return light_a, light_b, direction(raw[:, 2:])


def direction(tilt):
  """Light tilts -> unit light directions.

  Args:
    tilt: a tensor of shape `[B, 2]`, (dx, dy) per unit of dz.

  Returns:
    A tensor of shape `[B, 3]`: (dx, dy, 1) / |(dx, dy, 1)|.
  """
  d = tf.concat([tilt, tf.ones_like(tilt[:, :1])], axis=1)
  return d / tf.sqrt(tf.reduce_sum(d * d, axis=1, keepdims=True))
