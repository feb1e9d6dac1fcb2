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
