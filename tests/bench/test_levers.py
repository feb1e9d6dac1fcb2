"""Tests for bench/levers.py: each lever's two variants differ as named."""

import io
import json
from contextlib import redirect_stdout
from unittest import mock

import tensorflow as tf

from bench import levers
from bench import model as model_bench


class LeversTest(tf.test.TestCase):

  def test_every_lever_changes_what_it_names(self):
    for lever, ((_, xla_a, over_a), (_, xla_b, over_b)) in (
        levers.LEVERS.items()):
      self.assertTrue(xla_a != xla_b or over_a != over_b, lever)

  def test_anti_aliasing_lever_builds_both_renderers(self):
    built = []
    real = model_bench.build_model

    def spy(cfg, seed=0):
      built.append((cfg.anti_aliasing, cfg.mixed_precision))
      return real(cfg, seed)

    out = io.StringIO()
    with mock.patch.object(model_bench, 'build_model', spy), \
        redirect_stdout(out):
      levers.main(['--lever=anti_aliasing', '--config=quickstart',
                   '--batch=1', '--lam_perc=0', '--repeats=2'])
    self.assertEqual(built, [(True, 'none'), (False, 'none')])
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    self.assertEqual((summary['a'], summary['b'], summary['n']),
                     ('anti_aliased', 'aliased', 2))
    self.assertGreater(summary['ratio_b_over_a'], 0.0)


if __name__ == '__main__':
  tf.test.main()
