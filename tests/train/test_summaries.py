"""Tests of tfunsup3d.train.summaries (the tags are checked through a real
training run in test_training.py)."""

import math

import numpy as np
import tensorflow as tf

from tests import testcase
from tests import tiny
from tfunsup3d import render
from tfunsup3d.train import summaries


class VisualizerTest(testcase.TestCase):

  def test_yaw_strip_is_sampled_once_per_pixel(self):
    model = tiny.tiny_model()
    images = tf.constant(testcase.images(batch=2))
    out = summaries.Visualizer(model, yaw_samples=3)._fn(images)
    canon = model.decompose(images)
    v0 = tf.tile(tf.constant([[-math.pi / 3 * 0.1, 0, 0, 0, 0, 0]]), [2, 1])
    both = tf.concat([canon['canon_im'][:2], canon['canon_normal'][:2]], -1)

    def strip(anti_aliasing):
      return render.render_yaw(both, canon['canon_depth'][:2], model.K,
                               model.cfg.rot_center_depth, v_before=v0,
                               max_rotation=90.0, num_samples=3,
                               anti_aliasing=anti_aliasing)[..., :3].numpy()

    self.assertAllClose(out['canon_im_rotate'], strip(False), atol=1e-5)
    # The supersampled strip differs, so the check above can fail.
    self.assertGreater(np.abs(strip(True) - strip(False)).max(), 0.01)


if __name__ == '__main__':
  tf.test.main()
