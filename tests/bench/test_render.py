"""Tests for bench/render.py: the z-buffer split's two variants and summary."""

import io
import json
from contextlib import redirect_stdout

import numpy as np
import tensorflow as tf

from bench import render as render_bench


class RenderBenchTest(tf.test.TestCase):

  def test_zbuffer_variants_agree_on_every_depth_case(self):
    fns = render_bench.make_functions(16, xla=True, anti_aliasing=True)
    view = tf.constant(render_bench.views(2))
    image = tf.zeros([2, 16, 16, 3])
    for make in (render_bench.smooth_depth, render_bench.steps_depth,
                 render_bench.rough_depth):
      depth = tf.constant(make(2, 16))
      ids = fns['zbuffer'](depth, view, image).numpy()
      self.assertEqual(ids.shape, (2, 32, 32))
      self.assertGreater(np.mean(ids >= 0), 0.5)
      self.assertAllEqual(fns['zbuffer_one_tier'](depth, view, image), ids)

  def test_summary_has_the_split_ratio_per_depth_case(self):
    out = io.StringIO()
    with redirect_stdout(out):
      render_bench.main(['--batch=2', '--rows=1', '--size=16',
                         '--repeats=1', '--warmup=0', '--xla=on',
                         '--what=zbuffer,zbuffer_one_tier',
                         '--depth=smooth,steps'])
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    summary = records[-1]
    self.assertEqual(summary['event'], 'summary')
    ratios = summary['zbuffer_over_one_tier']
    self.assertEqual(sorted(ratios), ['smooth/rows=2/aa=on',
                                      'steps/rows=2/aa=on'])
    self.assertTrue(all(r > 0 for r in ratios.values()))

  def test_unknown_depth_case_is_an_error(self):
    with self.assertRaises(SystemExit), redirect_stdout(io.StringIO()):
      render_bench.main(['--depth=bumpy'])


if __name__ == '__main__':
  tf.test.main()
