"""Tests of experiments.data_variants (the relief lock on variants of the data)."""

import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from experiments import data_variants
from tfunsup3d import config as config_lib
from tfunsup3d import model
from tfunsup3d.data import synth_params


class ReliefSpreadTest(tf.test.TestCase):

  def test_central_percentile_spread_by_hand(self):
    depth = np.full([2, 8, 8], 100.0)  # the outer ring (S/8 = 1) ignored
    depth[:, 1:7, 1:7] = 1.0
    depth[0, 1:4, 1:7] = 0.0  # image 0: half 0, half 1 -> p5 0, p95 1
    self.assertAllClose(data_variants.relief_spread(depth), 0.5)


class VariantsTest(tf.test.TestCase):

  def test_every_variant_is_valid_options(self):
    for name, (_, options, scales) in data_variants.VARIANTS.items():
      synth_params.SynthOptions(**options).check()
      for net, scale in scales.items():
        self.assertIn(net, model.NETWORK_NAMES, name)
        self.assertGreater(scale, 0.0, name)

  def test_deep_relief_doubles_the_generators_amplitudes(self):
    ranges = {r[0]: r[1:] for r in synth_params.PARAM_RANGES}
    amps = sorted(k for k in ranges if k.endswith('_amp'))
    doubled = data_variants.VARIANTS['deep_relief'][1]['param_ranges']
    self.assertEqual(sorted(name for name, _, _ in doubled), amps)
    for name, lo, hi in doubled:
      self.assertAllClose([lo, hi], 2.0 * np.array(ranges[name]))

  def test_markdown_lists_each_variant_and_its_evals(self):
    test = dict(diag_best_relief_scale=0.35, diag_light_tilt_slope=0.3,
                diag_yaw_std_deg=4.0, diag_gt_yaw_std_deg=17.2,
                diag_yaw_corr=0.24, side_mean=2.5, mad_mean=30.0,
                relief_spread=0.12)
    row = dict(description='d', data_relief_spread=0.074,
               average_baseline_side=1.18, final=test,
               curve=[{'step': 50, 'test': dict(test,
                                                 diag_best_relief_scale=0.25)},
                      {'step': 100, 'test': test}])
    md = data_variants.markdown({
        'settings': dict(config='c.yml', steps=100, batch_size=16,
                         eval_every=50, data_seed=1, counts={}),
        'rows': {'default': dict(
            row, position_cue={'yaw': 0.25, 'tx': 0.97},
            baselines={'average': {'side_mean': 1.18, 'mad_mean': 27.8},
                       'null': {'side_mean': 1.58, 'mad_mean': 48.6}}),
                 # written before the position cue and the kept baselines
                 'yaw50': row}})
    self.assertIn('| default | d | 0.074 | 0.120 | 0.25 0.35 | 0.30 | '
                  '4.0° (17.2°) / 0.24 | 0.25 / 0.97 | 2.500 / 1.180 / 1.580 '
                  '| 30.00 / 27.80 / 48.60 |', md)
    self.assertIn('| yaw50 | d | 0.074 | 0.120 | 0.25 0.35 | 0.30 | '
                  '4.0° (17.2°) / 0.24 | – | 2.500 / 1.180 / – '
                  '| 30.00 / – / – |', md)

  def test_bad_arguments_are_errors(self):
    for argv in (['--variants=default,nope'], ['--steps=0'],
                 ['--num_test=0']):
      with self.assertRaises(SystemExit):
        data_variants.parse_args(argv)


# The study's end-to-end run: `slow` (./test.sh -m slow) keeps the default
# suite inside its CI budget; the study's parts are tested above.
@pytest.mark.slow
class CliTest(tf.test.TestCase):

  def test_small_run_writes_json_and_markdown(self):
    tmp = tempfile.mkdtemp()
    argv = ['--variants=small_init', '--steps=1', '--eval_every=1',
            '--num_train=16', '--num_val=0', '--num_test=4',
            f'--data_root={tmp}/data', f'--out_dir={tmp}/out']
    result = data_variants.main(argv)
    with open(f'{tmp}/out/data_variants.json', encoding='utf-8') as f:
      self.assertEqual(json.load(f), json.loads(json.dumps(result)))
    row = result['rows']['small_init']
    self.assertEqual([p['step'] for p in row['curve']], [1])
    self.assertEqual(sorted(row['baselines']), ['average', 'null'])
    # x0.1 at initialisation: a nearly flat relief after one step.
    self.assertLess(row['final']['relief_spread'],
                    0.5 * row['data_relief_spread'])
    with open(f'{tmp}/out/data_variants.md', encoding='utf-8') as f:
      self.assertIn('| small_init |', f.read())
    # The data set is written once: asking again reuses it.
    meta_path = f'{tmp}/data/default/bench_meta.json'
    with open(meta_path, encoding='utf-8') as f:
      self.assertEqual(json.load(f)['counts'],
                       {'train': 16, 'val': 0, 'test': 4})
    before = os.stat(meta_path).st_mtime_ns
    args = data_variants.parse_args(argv)
    cfg = config_lib.load(args.config, []).resolved()
    self.assertEqual(data_variants.variant_data(args, 'default', cfg),
                     f'{tmp}/data/default')
    self.assertEqual(os.stat(meta_path).st_mtime_ns, before)


if __name__ == '__main__':
  tf.test.main()
