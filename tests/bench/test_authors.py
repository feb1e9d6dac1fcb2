"""Tests for bench/authors.py's pure parts: ratios, summary, table, flags
(no torch)."""

import io
import subprocess
import sys
import unittest
from unittest import mock

from bench import authors


class PairStatsTest(unittest.TestCase):

  def test_medians_spreads_and_ratios(self):
    # ours 2, 4, 3 s; theirs 4, 4, 6 s: medians 3 and 4, pair ratios
    # 0.5, 1.0, 0.5.
    stats = authors.pair_stats([2.0, 4.0, 3.0], [4.0, 4.0, 6.0])
    self.assertEqual(stats['ours_median_s'], 3.0)
    self.assertEqual(stats['theirs_median_s'], 4.0)
    self.assertEqual(stats['ours_spread_s'], [2.0, 4.0])
    self.assertEqual(stats['theirs_spread_s'], [4.0, 6.0])
    self.assertEqual(stats['ratio'], 0.75)
    self.assertEqual(stats['ratio_min'], 0.5)
    self.assertEqual(stats['ratio_max'], 1.0)
    self.assertEqual(stats['n'], 3)

  def test_unpaired_timings_raise(self):
    with self.assertRaisesRegex(ValueError, 'Received: 2, 1'):
      authors.pair_stats([1.0, 2.0], [1.0])
    with self.assertRaisesRegex(ValueError, 'at least one'):
      authors.pair_stats([], [])


class SummaryTest(unittest.TestCase):

  def test_meets_is_ratio_at_most_target(self):
    records = {'train/batch=64': authors.pair_stats([7.0], [10.0]),
               'infer/batch=1': authors.pair_stats([0.6], [1.0]),
               'infer/batch=64': authors.pair_stats([3.0], [2.0])}
    summary = authors.summarize(
        records, {'train/batch=64': 0.7, 'infer/batch=1': 0.5})
    self.assertEqual(summary['ratios'], {'train/batch=64': 0.7,
                                         'infer/batch=1': 0.6,
                                         'infer/batch=64': 1.5})
    self.assertEqual(summary['meets'], {'train/batch=64': True,
                                        'infer/batch=1': False,
                                        'infer/batch=64': None})
    md = authors.markdown(summary, records, {'xla': True})
    self.assertIn('| train/batch=64 | 10.0 (10.0-10.0) | 7.0 (7.0-7.0) | '
                  '0.7 [0.7, 0.7] | <= 0.7 |', md)
    self.assertIn('| infer/batch=64 | 2.0 (2.0-2.0) | 3.0 (3.0-3.0) | '
                  '1.5 [1.5, 1.5] | - |', md)
    self.assertIn('xla: True', md)

  def test_unknown_tflite_variant_is_a_usage_error(self):
    with self.assertRaises(SystemExit) as raised, \
        mock.patch.object(authors, 'run') as run, \
        mock.patch('sys.stderr', new_callable=io.StringIO) as stderr:
      authors.main(['--reference_dir=.', '--tflite=float32,int4'])
    self.assertEqual(raised.exception.code, 2)
    self.assertIn("unknown variants ['int4']", stderr.getvalue())
    run.assert_not_called()
    with mock.patch.object(authors, 'run') as run:
      authors.main(['--reference_dir=.', '--tflite=int8, float32'])
    self.assertEqual(run.call_args.args[0].tflite, ['int8', 'float32'])
    from tfunsup3d.export import tflite  # pylint: disable=g-import-not-at-top
    self.assertEqual(authors.TFLITE_VARIANTS, tflite.VARIANTS)

  def test_importing_needs_no_torch_nor_tensorflow(self):
    code = ('import sys, bench.authors; '
            'print(sorted({"torch", "tensorflow"} & set(sys.modules)))')
    out = subprocess.run([sys.executable, '-c', code], check=True,
                         capture_output=True, text=True).stdout
    self.assertEqual(out.strip(), '[]')


if __name__ == '__main__':
  unittest.main()
