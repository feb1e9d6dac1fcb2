"""Tests for tfunsup3d.render.symmetry."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import fixtures
from tfunsup3d import render
from tfunsup3d.render import symmetry

S = 8
FOV = 10.0


def _flat_case(tx_pixels: float):
  """Depth 1 everywhere, rotation centre 1, the view translated by
  `tx_pixels` pixels along x (tx = z / f per pixel), the first row masked
  out."""
  K = render.intrinsics(S, FOV)
  f = float(K[0, 0])
  depth = np.ones([1, S, S], np.float32)
  view = np.array([[0.0, 0.0, 0.0, tx_pixels / f, 0.0, 0.0]], np.float32)
  mask = np.ones([1, S, S, 1], np.float32)
  mask[:, 0] = 0.0
  return depth, view, mask, K


class SymmetryTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      # Canonical columns 3 and 4 (S/2 - 1, S/2) hold the axis.
      ('identity', 0.0, {3: 1.0, 4: 1.0}),
      # Input point x' = x + tx: input column u samples canonical u - 1.
      ('one_pixel_right', 1.0, {4: 1.0, 5: 1.0}),
      # Half a pixel: bilinear halves at both sides.
      ('half_pixel_right', 0.5, {3: 0.5, 4: 1.0, 5: 0.5}),
  )
  def test_axis_preset(self, tx_pixels, columns):
    axis = symmetry.symmetry_axis(*_flat_case(tx_pixels), 1.0).numpy()
    expect = np.zeros([1, S, S, 1], np.float32)
    for col, value in columns.items():
      expect[0, 1:, col] = value  # row 0 is masked out.
    self.assertAllClose(axis, expect, atol=1e-5)

  def test_line_preset(self):
    images = np.full([1, S, S, 3], 0.2, np.float32)
    line = symmetry.symmetry_line(images, *_flat_case(0.5), 1.0).numpy()
    # 0.5 a green + (1 - 0.5 a) 0.2 with green = (-1, 1, -1).
    for col, a in ((0, 0.0), (3, 0.5), (4, 1.0), (5, 0.5), (7, 0.0)):
      want = [0.5 * a * g + (1 - 0.5 * a) * 0.2 for g in (-1.0, 1.0, -1.0)]
      self.assertAllClose(line[0, 4, col], want, atol=1e-5, msg=col)
    self.assertAllClose(line[0, 0], images[0, 0], atol=0)  # masked row.

  def test_matches_reference(self):
    # The authors' own recon_depth, view and mask give their overlays.
    fixtures.require_reference(self)
    ref = fixtures.reference_outputs_nhwc()
    K = render.intrinsics(64, FOV)
    args = (ref['recon_depth'], ref['view'], ref['recon_im_mask_both'], K, 1.0)
    self.assertAllClose(symmetry.symmetry_axis(*args), ref['recon_sym_axis'],
                        atol=1e-4)
    images = np.tile(ref['input_im'], [2, 1, 1, 1])
    self.assertAllClose(symmetry.symmetry_line(images, *args),
                        ref['input_im_symline'], atol=1e-4)

  @parameterized.named_parameters(
      ('depth_rank', (1, S, S, 1), (1, S, S, 1), (1, S, S, 3), 'recon_depth'),
      ('mask_channels', (1, S, S), (1, S, S, 3), (1, S, S, 3), 'mask'),
      ('image_channels', (1, S, S), (1, S, S, 1), (1, S, S, 1), 'images'),
  )
  def test_bad_shapes_raise(self, depth_shape, mask_shape, image_shape, name):
    with self.assertRaisesRegex(ValueError, name):
      symmetry.symmetry_line(np.zeros(image_shape, np.float32),
                             np.ones(depth_shape, np.float32),
                             np.zeros([1, 6], np.float32),
                             np.ones(mask_shape, np.float32),
                             render.intrinsics(S, FOV), 1.0)


if __name__ == '__main__':
  tf.test.main()
