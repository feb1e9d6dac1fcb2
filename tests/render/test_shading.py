"""Tests for tfunsup3d.render.shading."""

import numpy as np
import tensorflow as tf

from tests import fixtures
from tfunsup3d.render import shading


class ShadingTest(tf.test.TestCase):

  def test_preset(self):
    normal = np.zeros([1, 1, 2, 3], np.float32)
    normal[0, 0, 0] = [0, 0, 1]
    normal[0, 0, 1] = [0, 0, -1]  # facing away: clamped to 0
    light_d = np.array([[0.6, 0.0, 0.8]], np.float32)
    albedo = np.full([1, 1, 2, 3], 0.5, np.float32)  # (0.5+1)/2 = 0.75
    im, s = shading.shade(albedo, normal, [[0.2]], [[0.5]], light_d)
    self.assertAllClose(s[0, 0, :, 0], [0.8, 0.0])
    self.assertAllClose(im[0, 0, 0], [0.75 * (0.2 + 0.5 * 0.8) * 2 - 1] * 3)
    self.assertAllClose(im[0, 0, 1], [0.75 * 0.2 * 2 - 1] * 3)

  def test_matches_reference(self):
    fixtures.require_reference(self)
    ref = fixtures.reference_outputs_nhwc()
    im, s = shading.shade(ref['canon_albedo'], ref['canon_normal'],
                          ref['canon_light_a'], ref['canon_light_b'],
                          ref['canon_light_d'])
    self.assertAllClose(s, ref['canon_diffuse_shading'], atol=1e-5)
    self.assertAllClose(im, ref['canon_im'], atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
