"""The symmetry plane seen from the input view, for display.

The canonical view's symmetry axis is its two middle columns. Warped into the
input view the way the canonical image is (`inverse_warp_grid` +
`grid_sample`), it shows where the model puts the plane of symmetry; the
reference draws it in green over the input (`recon_sym_axis`,
`input_im_symline`). Nothing here feeds a loss.
"""

import tensorflow as tf

from tfunsup3d.render import checks, reprojection

# The overlay colour in [-1, 1] RGB: green.
GREEN = (-1.0, 1.0, -1.0)


def symmetry_axis(recon_depth, view, mask, K, rot_center_depth: float):
  """The canonical middle columns as seen in the input view.

  In the following, N is the number of images and S their side.

  Args:
    recon_depth: a tensor of shape `[N, S, S]`, depth in the input view.
    view: a tensor of shape `[N, 6]` (radians, translations).
    mask: a tensor of shape `[N, S, S, 1]`, 1 where the reconstruction is
      valid (the model's `recon_im_mask_both`).
    K: a tensor of shape `[3, 3]`.
    rot_center_depth: depth of the rotation centre.

  Returns:
    A tensor of shape `[N, S, S, 1]` in [0, 1]: canonical columns S/2 - 1 and
    S/2 are 1, bilinearly warped into the input view, times `mask`.
  """
  with tf.name_scope('symmetry_axis'):
    recon_depth = checks.check_tensor(recon_depth, 'recon_depth', rank=3)
    mask = checks.check_tensor(mask, 'mask', rank=4, last_dims=(1,))
    s = recon_depth.shape[2]
    if s is None:
      raise ValueError('recon_depth needs a static width.')
    cols = tf.range(s)
    axis = tf.cast((cols >= s // 2 - 1) & (cols < s // 2 + 1), tf.float32)
    shape = tf.shape(recon_depth)
    axis = tf.tile(tf.reshape(axis, [1, 1, s, 1]), [shape[0], shape[1], 1, 1])
    grid = reprojection.inverse_warp_grid(recon_depth, view, K,
                                          rot_center_depth)
    return reprojection.grid_sample(axis, grid) * mask


def symmetry_line(images, recon_depth, view, mask, K,
                  rot_center_depth: float):
  """`images` with the symmetry axis drawn over them in green.

  In the following, N is the number of images and S their side.

  Args:
    images: a tensor of shape `[N, S, S, 3]` in [-1, 1] (the model's
      `input_im`).
    recon_depth: a tensor of shape `[N, S, S]`.
    view: a tensor of shape `[N, 6]`.
    mask: a tensor of shape `[N, S, S, 1]`.
    K: a tensor of shape `[3, 3]`.
    rot_center_depth: depth of the rotation centre.

  Returns:
    A tensor of shape `[N, S, S, 3]` in [-1, 1]: `0.5 a GREEN + (1 - 0.5 a)
    images`, a = `symmetry_axis(...)`.
  """
  with tf.name_scope('symmetry_line'):
    images = checks.check_tensor(images, 'images', rank=4, last_dims=(3,))
    half = 0.5 * symmetry_axis(recon_depth, view, mask, K, rot_center_depth)
    return half * tf.constant(GREEN) + (1 - half) * images
