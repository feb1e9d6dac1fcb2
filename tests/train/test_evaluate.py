"""Tests of tfunsup3d.train.evaluate's score summaries (the Tester and the
CLI are exercised end to end in tests/tools/test_test_cli.py)."""

import os
import tempfile

import numpy as np
import tensorflow as tf

from tfunsup3d.train import evaluate

# Rows: MAE, MSE, SIE (SIDE, unscaled), NorErr (MAD, degrees).
_SCORES = np.array([[0.1, 0.01, 0.02, 20.0],
                    [0.3, 0.09, 0.04, 30.0],
                    [0.2, 0.04, 0.03, 40.0]])


class MeanStdTest(tf.test.TestCase):

  def test_unbiased_std_as_torch(self):
    mean, std, left_out = evaluate.mean_std(_SCORES)
    self.assertAllClose(mean, [0.2, 0.14 / 3, 0.03, 30.0])
    # SIE column 0.02, 0.03, 0.04: squared deviations 2e-4 over n - 1 = 2.
    self.assertAllClose(std[2], 0.01)
    self.assertAllClose(std[3], 10.0)
    self.assertEqual(left_out, 0)

  def test_nan_rows_are_left_out_and_counted(self):
    scores = np.concatenate([_SCORES, np.full([2, 4], np.nan)])
    mean, std, left_out = evaluate.mean_std(scores)
    self.assertAllClose(mean, evaluate.mean_std(_SCORES)[0])
    self.assertAllClose(std, evaluate.mean_std(_SCORES)[1])
    self.assertEqual(left_out, 2)

  def test_one_or_no_finite_row(self):
    mean, std, left_out = evaluate.mean_std(_SCORES[:1])
    self.assertAllClose(mean, _SCORES[0])
    self.assertTrue(np.all(np.isnan(std)))
    self.assertEqual(left_out, 0)
    mean, std, left_out = evaluate.mean_std(np.full([3, 4], np.nan))
    self.assertTrue(np.all(np.isnan(mean)) and np.all(np.isnan(std)))
    self.assertEqual(left_out, 3)


class SummaryTest(tf.test.TestCase):

  def test_summary_line(self):
    self.assertEqual(evaluate.summary_line(_SCORES),
                     'SIDE (x1e-2): 3.000 ± 1.000, MAD (deg): 30.00 ± 10.00')

  def test_summary_line_names_left_out_images(self):
    scores = np.concatenate([_SCORES, np.full([1, 4], np.nan)])
    self.assertEqual(
        evaluate.summary_line(scores),
        'SIDE (x1e-2): 3.000 ± 1.000, MAD (deg): 30.00 ± 10.00 (over 3 of 4 '
        'images; 1 without a valid pixel left out)')

  def test_scores_file_round_trips_and_notes_left_out(self):
    path = os.path.join(tempfile.mkdtemp(), evaluate.SCORES_FILE)
    scores = np.concatenate([_SCORES, np.full([1, 4], np.nan)])
    evaluate.save_scores(path, scores)
    self.assertAllClose(np.loadtxt(path, delimiter=','), scores)
    with open(path, encoding='utf-8') as f:
      header = [line for line in f if line.startswith('#')]
    self.assertEqual(header[0], '# ' + ', '.join(evaluate.SCORE_NAMES) + '\n')
    self.assertEqual(header[1].split(), ['#', 'Mean:', '0.20000000,',
                                         '0.04666667,', '0.03000000,',
                                         '30.00000000'])
    self.assertIn('Left out of Mean and Std: 1 of 4 images', header[3])


if __name__ == '__main__':
  tf.test.main()
