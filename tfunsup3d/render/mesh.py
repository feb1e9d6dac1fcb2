"""Triangle mesh on a depth grid."""

import tensorflow as tf


def grid_faces(height: int, width: int) -> tf.Tensor:
  """Faces of the reference's grid mesh: two triangles per grid cell.

  Vertex ids are row-major (`i * width + j`). All first triangles
  [(i,j), (i+1,j), (i,j+1)] come first, then all second triangles
  [(i,j+1), (i+1,j), (i+1,j+1)], each in row-major cell order.

  Args:
    height: number of grid rows H (>= 2).
    width: number of grid columns W (>= 2).

  Returns:
    An int32 tensor of shape `[2 (H-1) (W-1), 3]`.
  """
  if height < 2 or width < 2:
    raise ValueError(f'A grid mesh needs at least 2x2 vertices. '
                     f'Received: height={height}, width={width}')
  idx = tf.reshape(tf.range(height * width, dtype=tf.int32), [height, width])
  tl, bl = idx[:-1, :-1], idx[1:, :-1]
  tr, br = idx[:-1, 1:], idx[1:, 1:]
  faces1 = tf.reshape(tf.stack([tl, bl, tr], axis=-1), [-1, 3])
  faces2 = tf.reshape(tf.stack([tr, bl, br], axis=-1), [-1, 3])
  return tf.concat([faces1, faces2], axis=0)
