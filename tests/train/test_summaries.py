"""Tests of tfunsup3d.train.summaries (the tags are checked through a real
training run in test_training.py)."""

import gc
import glob
import math
import os

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


class WriteScalarsTest(testcase.TestCase):

  def _read(self, directory):
    found = []
    for path in glob.glob(os.path.join(directory, 'events.*')):
      for event in tf.compat.v1.train.summary_iterator(path):
        for value in event.summary.value:
          found.append((event.step, value.tag,
                        float(tf.make_ndarray(value.tensor)),
                        value.metadata.plugin_data.plugin_name))
    return sorted(found)

  def test_each_writer_gets_its_own_values_steps_and_tags(self):
    root = self.scratch_dir()
    writers = {name: tf.summary.create_file_writer(os.path.join(root, name))
               for name in ('train', 'val')}
    for step in (0, 1):
      summaries.write_scalars(writers['train'],
                              {'loss_total': 0.5 + step, 'SIDE': 2.0}, step)
    summaries.write_scalars(writers['val'], {'loss_total': -3.0}, 7,
                            prefix='val/')
    summaries.write_scalars(writers['train'], {}, 2)  # Nothing to write.
    for writer in writers.values():
      writer.flush()
    side = summaries.tag('SIDE')
    self.assertNotEqual(side, 'SIDE')  # A reference tag, not the raw name.
    self.assertEqual(self._read(os.path.join(root, 'train')), sorted([
        (0, 'Loss/loss_total', 0.5, 'scalars'), (0, side, 2.0, 'scalars'),
        (1, 'Loss/loss_total', 1.5, 'scalars'), (1, side, 2.0, 'scalars')]))
    self.assertEqual(self._read(os.path.join(root, 'val')),
                     [(7, 'val/Loss/loss_total', -3.0, 'scalars')])

  def test_a_writer_is_not_kept_alive(self):
    writer = tf.summary.create_file_writer(self.scratch_dir())
    summaries.write_scalars(writer, {'loss_total': 1.0}, 0)
    self.assertIn(writer, summaries._SCALAR_WRITERS)  # pylint: disable=protected-access
    count = len(summaries._SCALAR_WRITERS)  # pylint: disable=protected-access
    del writer
    gc.collect()
    self.assertLen(summaries._SCALAR_WRITERS, count - 1)  # pylint: disable=protected-access


if __name__ == '__main__':
  tf.test.main()
