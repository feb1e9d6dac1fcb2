"""Tests for experiments.seed_probe: where two training seeds part."""

import numpy as np
import tensorflow as tf

from experiments import seed_probe
from tests import tiny


class HelpersTest(tf.test.TestCase):

  def test_region_means_keep_to_valid_pixels_of_each_region(self):
    maps = np.arange(8, dtype=np.float64).reshape(1, 2, 4)
    face = np.array([[[True, True, False, False], [True, True, False, False]]])
    valid = np.array([[[True, False, True, True], [True, True, True, False]]])
    got = seed_probe.region_means(maps, valid, face)
    self.assertAllClose(got['face'], (0 + 4 + 5) / 3)
    self.assertAllClose(got['ring'], (2 + 3 + 6) / 3)

  def test_relief_gain_of_a_scaled_and_shifted_relief(self):
    rng = np.random.default_rng(0)
    gt = 1.0 + 0.05 * rng.random([3, 6, 6])
    face = np.zeros([3, 6, 6], bool)
    face[:, 1:5, 1:5] = True
    # Each image shifted by its own constant, relief x0.5 on the face;
    # outside the face anything.
    depth = np.where(face, 0.5 * gt + rng.random([3, 1, 1]), 7.0)
    self.assertAllClose(seed_probe.relief_gain(depth, gt, face), 0.5)


class MeasureTest(tf.test.TestCase):

  def test_given_its_own_view_the_two_scores_agree(self):
    model = tiny.tiny_model()
    rng = np.random.default_rng(0)
    images = np.stack([tiny.smooth_image(rng) for _ in range(2)]).astype(
        np.float32) / 255.0
    out = model.decompose(images)
    face = np.zeros([2, 64, 64], bool)
    face[:, 16:48, 20:44] = True
    canon = out['canon_depth'][:2].numpy()
    # Ground truth: the model's own depth in the input view, as PNG values.
    cfg = model.cfg
    recon = out['recon_depth'][:2].numpy()
    depth_p = np.where(out['recon_im_mask'][:2, ..., 0].numpy() > 0,
                       (cfg.max_depth - recon) / (cfg.max_depth - cfg.min_depth),
                       0.0).astype(np.float32)
    factors = {'canon_depth': canon, 'face_mask': face,
               'view': out['view'][:2].numpy()}
    got = seed_probe.measure(model, images, depth_p, factors)
    self.assertAllClose(got['side_own_view'], got['side_given_view'])
    self.assertAllClose(got['mad_own_view'], got['mad_given_view'])
    self.assertLess(got['side_own_view'], 1e-3)  # its own depth
    self.assertAllClose(got['relief_gain'], 1.0, rtol=1e-5)
    for key in ('curvature', 'ripple'):
      self.assertAllClose(got[key], got[key + '_gt'], rtol=1e-5)
    self.assertLess(got['ripple'], got['curvature'])
    self.assertAllClose(got['pitch_deg'], got['pitch_gt_deg'], rtol=1e-5)
    self.assertEqual(set(got['err']), set(seed_probe.REGIONS))
    self.assertEqual(got['mean_depth'].shape, (64, 64))
    # Another view for the generator's: the scores part.
    factors['view'] = factors['view'] + np.radians([8.0, 8, 0, 0, 0, 0])
    moved = seed_probe.measure(model, images, depth_p, factors)
    self.assertGreater(moved['side_given_view'], got['side_given_view'])


class MarkdownTest(tf.test.TestCase):

  def test_one_row_per_seed_and_check(self):
    point = {'step': 300, 'curvature': 0.01, 'curvature_gt': 0.005,
             'ripple': 0.007, 'ripple_gt': 0.001, 'slope': 0.02,
             'slope_gt': 0.018, 'relief_gain': 1.2,
             'err': {'face': 0.1, 'ring': 0.2},
             'nll': {'face': -0.5, 'ring': -0.4}, 'side_own_view': 1.5,
             'mad_own_view': 25.0, 'side_given_view': 1.4,
             'mad_given_view': 24.0, 'pitch_deg': 2.0, 'pitch_gt_deg': -0.5}
    result = {'name': 'n', 'settings': {
        'config': 'c.yml', 'overrides': [], 'steps': 300, 'data_dir': 'd',
        'num_images': 8, 'machine': 'm'},
              'seeds': {'0': [point], '1': [point, dict(point, step=500)]}}
    md = seed_probe.markdown(result)
    self.assertEqual(md.count('\n| 0 | '), 1)
    self.assertEqual(md.count('\n| 1 | '), 2)
    self.assertIn('| 0.0100 (0.0050) | 0.0070 (0.0010) |', md)
    # A point measured before the ripple was: '-' in its column.
    del point['ripple'], point['ripple_gt']
    self.assertIn('| 0.0100 (0.0050) | - |', seed_probe.markdown(result))
    self.assertIn('| 2.00° (-0.50°) |', md)


if __name__ == '__main__':
  tf.test.main()
