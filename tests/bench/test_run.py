"""Tests for bench/run.py: the table and plot of the performance records."""

import os
import tempfile

import tensorflow as tf

from bench import run


def _records():
  rec = []
  for xla in (True, False):
    for i, stage in enumerate(run.STAGES):
      rec.append(dict(config='quickstart', xla=xla, precision='float32',
                      what=f'train_stage/{stage}', batch=4,
                      median_s=0.1 * (i + 1), first_s=1.0,
                      peak_rss_mib=100.0))
  rec.append(dict(config='quickstart', precision='mixed_float16',
                  what='train_stage/step', skipped='no GPU'))
  return rec


class RunBenchTest(tf.test.TestCase):

  def test_table_gives_stage_differences(self):
    md = run.table(_records())
    self.assertIn('train step: networks forward (+0.100 s)', md)
    self.assertIn('train step: optimiser (+0.100 s); whole step 0.500 s', md)
    self.assertIn('skipped: no GPU', md)

  def test_plot_writes_png(self):
    path = os.path.join(tempfile.mkdtemp(), 'p.png')
    run.plot(_records(), path)
    self.assertTrue(os.path.getsize(path) > 0)
