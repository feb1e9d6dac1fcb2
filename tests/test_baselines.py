"""Tests for tfunsup3d.baselines: the paper's null and average-depth
baselines, checked against hand-derived values."""

import shutil
import tempfile

import numpy as np
import tensorflow as tf

from tfunsup3d import baselines
from tfunsup3d import config as config_lib
from tfunsup3d import metrics
from tfunsup3d import render
from tfunsup3d.data import synth

S = 16
BACKGROUND = 1.1  # the depth code of background pixels (the maximum)


def _maps(values, masks):
  """[N, S, S] depth maps: values[i] where masks[i], BACKGROUND elsewhere."""
  return np.where(masks, np.asarray(values, np.float32)[:, None, None],
                  BACKGROUND).astype(np.float32)


class ForegroundTest(tf.test.TestCase):

  def test_background_is_the_maximum(self):
    d = np.array([[[0.9, 1.1], [1.0, 1.1]]], np.float32)
    self.assertAllEqual(baselines.foreground(d), [[[True, False],
                                                   [True, False]]])


class AverageDepthTest(tf.test.TestCase):

  def test_mean_over_foreground_only_and_fill(self):
    left = np.zeros((S, S), bool)
    left[:, :6] = True
    right = np.zeros((S, S), bool)
    right[:, 4:12] = True  # columns 4, 5 are foreground in both
    train = _maps([0.9, 1.0], np.stack([left, right]))
    avg = baselines.average_depth(train)
    self.assertAllClose(avg[:, :4], np.full((S, 4), 0.9))
    self.assertAllClose(avg[:, 4:6], np.full((S, 2), 0.95))
    self.assertAllClose(avg[:, 6:12], np.full((S, 6), 1.0))
    # Never foreground: the mean over all foreground pixels (6 columns of
    # 0.9 and 8 of 1.0), not the background code.
    fill = (6 * 0.9 + 8 * 1.0) / 14
    self.assertAllClose(avg[:, 12:], np.full((S, 4), fill))

  def test_explicit_mask_overrides_the_code(self):
    train = np.full((2, S, S), 1.0, np.float32)  # no pixel below the max
    mask = np.zeros((2, S, S), bool)
    mask[0, 3, 3] = True
    train[0, 3, 3] = 0.95
    avg = baselines.average_depth(train, mask)
    self.assertAllClose(avg[3, 3], 0.95)
    self.assertAllClose(avg[0, 0], 0.95)  # the fill

  def test_no_foreground_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'no foreground'):
      baselines.average_depth(np.ones((2, S, S), np.float32))


class BaselineScoresTest(tf.test.TestCase):

  def test_null_side_is_the_log_depth_spread(self):
    # A tilted plane in rows/cols 2..13; the metric mask is it eroded by one
    # pixel (3..12). A constant prediction's SIDE is then the population std
    # of log d over that mask, whatever the constant.
    K = render.intrinsics(S, 10.0)
    ramp = 0.92 + 0.01 * np.arange(S, dtype=np.float32)[None, :]
    box = np.zeros((S, S), bool)
    box[2:14, 2:14] = True
    test = np.where(box, ramp, BACKGROUND)[None].astype(np.float32)
    train = np.where(box, 0.97, BACKGROUND)[None].astype(np.float32)
    r = baselines.baseline_scores(test, train, K)
    expected = np.std(np.log(ramp[:, 3:13].repeat(10, 0)))
    self.assertAllClose(r['null']['side'], [expected], rtol=1e-4)
    self.assertAllClose(r['null']['side_mean'], 100 * expected, rtol=1e-4)
    # The average of one flat map is that flat map: the same error.
    self.assertAllClose(r['average']['side'], [expected], rtol=1e-4)

  def test_average_of_identical_maps_is_exact(self):
    cfg = config_lib.Config(image_size=S)
    _, depth, _ = synth.render_instances(
        synth.sample_factors(np.random.default_rng(0), 4, S), cfg)
    K = render.intrinsics(S, 10.0)
    same = np.repeat(depth[:1], 3, axis=0)
    r = baselines.baseline_scores(same, same, K)
    self.assertAllClose(r['average']['side'], np.zeros(3), atol=1e-6)
    # MAD is not 0 even for the ground truth itself: like the reference,
    # normals are n / (|n| + 1e-7) with |n| ~ 1e-4 here, so n.n < 1.
    floor = metrics.depth_metrics(same, np.ones_like(same), same, K)['mad']
    self.assertAllClose(r['average']['mad'], floor.numpy(), atol=1e-3)
    self.assertGreater(r['null']['side_mean'], 0.1)  # x1e-2
    self.assertGreater(r['null']['mad_mean'], 5.0)

  def test_null_is_worse_than_average_on_synthetic_faces(self):
    cfg = config_lib.Config(image_size=S)
    sample = lambda seed, n: synth.sample_factors(
        np.random.default_rng(seed), n, S)
    _, train, _ = synth.render_instances(sample(1, 64), cfg)
    _, test, mask = synth.render_instances(sample(2, 16), cfg)
    K = render.intrinsics(S, 10.0)
    r = baselines.baseline_scores(test, train, K)
    self.assertGreater(r['null']['side_mean'], r['average']['side_mean'])
    self.assertGreater(r['null']['mad_mean'], r['average']['mad_mean'])
    self.assertEqual(r['null']['side'].shape, (16,))
    # Explicit masks give the same scores as the max-depth background code.
    m = baselines.baseline_scores(test, train, K, test_mask=mask)
    self.assertAllClose(m['null']['side'], r['null']['side'])
    avg = baselines.average_depth(train)
    self.assertEqual(avg.shape, (S, S))
    self.assertLess(avg.max(), 1.1)

  def test_wrong_rank_is_an_error(self):
    K = render.intrinsics(S, 10.0)
    with self.assertRaisesRegex(ValueError, r'\[N, H, W\]'):
      baselines.baseline_scores(np.ones((S, S)), np.ones((1, S, S)), K)


class SplitBaselinesTest(tf.test.TestCase):

  def test_reads_the_ground_truth_layout(self):
    root = tempfile.mkdtemp(prefix='test_baselines_')
    self.addCleanup(shutil.rmtree, root, ignore_errors=True)
    cfg = config_lib.Config(image_size=S, train_val_data_dir=root,
                            test_data_dir=root + '/test', batch_size=4,
                            num_workers=1, load_gt_depth=True)
    synth.write_dataset(root, {'train': 6, 'test': 5}, cfg)
    test = baselines.split_depths(cfg, 'test')
    train = baselines.split_depths(cfg, 'train')
    self.assertEqual(test.shape, (5, S, S))
    self.assertEqual(train.shape, (6, S, S))
    # The written PNGs decode to the rendered depth within 16-bit steps.
    self.assertBetween(float(test.min()), 0.9, 1.1)
    self.assertAllClose(test.max(), 1.1, atol=1e-5)  # background code
    got = baselines.split_baselines(cfg)
    want = baselines.baseline_scores(test, train, render.intrinsics(S, 10.0))
    for name in ('null', 'average'):
      self.assertAllClose(got[name]['side'], want[name]['side'])
      self.assertAllClose(got[name]['mad'], want[name]['mad'])


if __name__ == '__main__':
  tf.test.main()
