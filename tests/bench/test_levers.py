"""Tests for bench/levers.py: each lever's two variants differ as named."""

import io
import json
import os
from contextlib import redirect_stdout
from unittest import mock

import pytest
import tensorflow as tf

from bench import levers
from tfunsup3d.networks import vgg as vgg_lib
from bench import model as model_bench


class LeversTest(tf.test.TestCase):

  def test_every_lever_changes_what_it_names(self):
    for lever, (a, b) in levers.LEVERS.items():
      self.assertNotEqual(a[1:], b[1:], lever)  # xla, overrides, patch

  def test_vgg_pool_lever_swaps_only_the_pools(self):
    cfg = model_bench.build_config('quickstart', 1.0)
    model = model_bench.build_model(cfg)
    images = tf.random.uniform([2, cfg.image_size, cfg.image_size, 3], -1, 1)
    before = model.vgg(images)
    levers._keras_max_pools(model)  # pylint: disable=protected-access
    pools = [model.vgg.features_layers[i] for i in vgg_lib.POOL_INDICES]
    self.assertTrue(all(isinstance(p, tf.keras.layers.MaxPooling2D)
                        for p in pools))
    self.assertAllEqual(model.vgg(images), before)

  @pytest.mark.slow  # builds and times both renderers: ~28 s on 2 cores
  def test_anti_aliasing_lever_builds_both_renderers(self):
    built = []
    real = model_bench.build_model

    def spy(cfg, seed=0):
      built.append((cfg.anti_aliasing, cfg.mixed_precision))
      return real(cfg, seed)

    out, results = io.StringIO(), self.get_temp_dir()
    with mock.patch.object(model_bench, 'build_model', spy), \
        redirect_stdout(out):
      levers.main(['--lever=anti_aliasing', '--config=quickstart',
                   '--batch=1', '--lam_perc=0', '--repeats=2',
                   '--xla=off',  # no whole-step compiles: the test is fast
                   f'--out={results}'])
    self.assertEqual(built, [(True, 'none'), (False, 'none')])
    summary = json.loads(out.getvalue().strip().splitlines()[-1])
    self.assertEqual((summary['a'], summary['b'], summary['n']),
                     ('anti_aliased', 'aliased', 2))
    self.assertGreater(summary['ratio_b_over_a'], 0.0)
    # --out keeps it: the JSON as printed, and its table.
    with open(os.path.join(results, 'levers_anti_aliasing.json')) as f:
      kept = json.load(f)
    self.assertEqual(kept['ratio_b_over_a'], summary['ratio_b_over_a'])
    self.assertIn('environment', kept)
    with open(os.path.join(results, 'levers_anti_aliasing.md')) as f:
      table = f.read()
    self.assertIn(f"aliased / anti_aliased: **{summary['ratio_b_over_a']}**",
                  table)
    self.assertIn(f"| anti_aliased | {summary['a_median_s']} |", table)


if __name__ == '__main__':
  tf.test.main()
