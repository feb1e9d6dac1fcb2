"""Tests for tfunsup3d.factors.confidence."""

import numpy as np
import tensorflow as tf

from tfunsup3d.factors import confidence


class ConfidenceTest(tf.test.TestCase):

  def test_split_sigmas_channels(self):
    l1 = np.stack([np.full([2, 8, 8], 1.0), np.full([2, 8, 8], 2.0)],
                  -1).astype(np.float32)
    percl = np.stack([np.full([2, 2, 2], 3.0), np.full([2, 2, 2], 4.0)],
                     -1).astype(np.float32)
    got = confidence.split_sigmas(l1, percl)
    self.assertEqual(set(got), {'conf_sigma_l1', 'conf_sigma_l1_flip',
                                'conf_sigma_percl', 'conf_sigma_percl_flip'})
    # Channel 0 is sigma (original), channel 1 sigma' (flipped), as the
    # reference's conf_sigma_l1[:, :1] / [:, 1:].
    for key, shape, value in (('conf_sigma_l1', (2, 8, 8, 1), 1.0),
                              ('conf_sigma_l1_flip', (2, 8, 8, 1), 2.0),
                              ('conf_sigma_percl', (2, 2, 2, 1), 3.0),
                              ('conf_sigma_percl_flip', (2, 2, 2, 1), 4.0)):
      self.assertEqual(tuple(got[key].shape), shape, key)
      self.assertAllEqual(got[key], np.full(shape, value))

  def test_confidence_map(self):
    got = confidence.confidence_map(tf.constant([0.0, 1.0, 3.0]))
    self.assertAllClose(got, [1.0, 0.5, 0.25], atol=1e-6)


if __name__ == '__main__':
  tf.test.main()
