"""Viewpoint: 3 rotation angles + 3 translations -> rigid transform.

Rotation R = Rz Ry Rx (tensorflow-graphics' `rotation_matrix_3d.from_euler`
uses exactly this convention; checked against the reference's matrices in
tests), applied about the point (0, 0, rot_center_depth), then translated.
"""

import inspect
import sys

import tensorflow as tf
from tensorflow_graphics.util import export_api as _tfg_export_api


def _caller_module(depth: int = 2):
  return sys.modules[sys._getframe(depth).f_globals['__name__']]  # pylint: disable=protected-access


def _public_functions_and_classes():
  """tensorflow-graphics' `export_api.get_functions_and_classes`: the same
  names, its caller found from the frame's globals.

  tf-graphics' modules call it (and `get_modules`, below) at import to set
  their `__all__`. The originals find their caller with `inspect.stack()`,
  which reads the source of every frame and scans `sys.modules` for each:
  with TensorFlow loaded, 2-3.5 s of every rendering script's start.
  """
  return [name for name, obj in inspect.getmembers(_caller_module())
          if inspect.isfunction(obj) or
          inspect.isclass(obj) and not name.startswith('_')]


def _public_modules():
  """tensorflow-graphics' `export_api.get_modules`, likewise."""
  module = _caller_module()
  return [name for name, obj in inspect.getmembers(module)
          if inspect.ismodule(obj) and
          obj.__name__.rsplit('.', 1)[0] == module.__name__ and
          not name.startswith('_')]


# Before the first tf-graphics geometry module is imported.
_tfg_export_api.get_functions_and_classes = _public_functions_and_classes
_tfg_export_api.get_modules = _public_modules
# pylint: disable=g-import-not-at-top,wrong-import-position
from tensorflow_graphics.geometry.transformation import rotation_matrix_3d

from tfunsup3d.render import checks
# pylint: enable=g-import-not-at-top,wrong-import-position


def rotation_matrix(angles) -> tf.Tensor:
  """Rotation matrices Rz(angles[2]) Ry(angles[1]) Rx(angles[0]).

  Args:
    angles: a tensor of shape `[A1, ..., An, 3]` in radians.

  Returns:
    A tensor of shape `[A1, ..., An, 3, 3]`.
  """
  angles = checks.check_tensor(angles, 'angles', last_dims=(3,))
  return rotation_matrix_3d.from_euler(angles)


def view_to_transform(view):
  """Splits a viewpoint into a rotation matrix and a translation.

  Args:
    view: a tensor of shape `[B, 6]` (rx, ry, rz in radians, tx, ty, tz),
      `[B, 5]` (no tz) or `[B, 3]` (no translation).

  Returns:
    (rot `[B, 3, 3]`, trans `[B, 3]`).
  """
  view = checks.check_tensor(view, 'view', rank=2)
  n = view.shape[-1]
  if n not in (3, 5, 6):
    raise ValueError(f'view must have 3, 5 or 6 columns. Received: shape='
                     f'{view.shape}')
  rot = rotation_matrix(view[:, :3])
  trans = view[:, 3:]
  if n < 6:
    trans = tf.pad(trans, [[0, 0], [0, 6 - n]])
  return rot, trans


def transform_points(points, view, rot_center_depth: float,
                     inverse: bool = False) -> tf.Tensor:
  """Moves points by the viewpoint (or its inverse).

  Forward: p' = R (p - c) + c + t with c = (0, 0, rot_center_depth).
  Inverse: p = R^T (p' - t - c) + c.

  Args:
    points: a tensor of shape `[B, N, 3]`.
    view: a tensor of shape `[B, 6]` (see `view_to_transform`).
    rot_center_depth: depth of the rotation centre on the optical axis.
    inverse: apply the inverse transform.

  Returns:
    A tensor of shape `[B, N, 3]`.
  """
  with tf.name_scope('transform_points'):
    points = checks.check_tensor(points, 'points', rank=3, last_dims=(3,))
    rot, trans = view_to_transform(view)
    centre = tf.constant([0.0, 0.0, rot_center_depth], tf.float32)
    if inverse:
      p = points - trans[:, tf.newaxis, :] - centre
      return _rotate_rows(p, rot, transpose=False) + centre
    p = _rotate_rows(points - centre, rot, transpose=True)
    return p + centre + trans[:, tf.newaxis, :]


def _rotate_rows(p, rot, transpose: bool) -> tf.Tensor:
  """Rows `p` [B, N, 3] times `rot^T` (transpose) or `rot` [B, 3, 3].

  Written as three multiply-adds rather than a matmul: GPUs run float32
  matmuls in TensorFloat-32 by default (10-bit mantissa), which would move
  projected vertices by ~0.02 px at 64 px; elementwise float32 arithmetic
  is exact float32 on every device.
  """
  cols = [rot[:, tf.newaxis, :, j] if transpose else rot[:, tf.newaxis, j, :]
          for j in range(3)]
  return p[..., 0:1] * cols[0] + p[..., 1:2] * cols[1] + p[..., 2:3] * cols[2]
