"""Viewpoint: view encoder output (6, tanh) -> rotations and translations."""

import math

import tensorflow as tf


def viewpoint(raw, xyz_rotation_range: float, xy_translation_range: float,
              z_translation_range: float):
  """Scales the raw view to radians and scene units.

  Args:
    raw: a tensor of shape `[B, 6]` in [-1, 1].
    xyz_rotation_range: rotation range in degrees.
    xy_translation_range: x/y translation range.
    z_translation_range: z translation range.

  Returns:
    A tensor of shape `[B, 6]`: (rx, ry, rz) radians, (tx, ty, tz).
  """
  return tf.concat([
      raw[:, :3] * (math.pi / 180.0 * xyz_rotation_range),
      raw[:, 3:5] * xy_translation_range,
      raw[:, 5:] * z_translation_range], axis=1)
