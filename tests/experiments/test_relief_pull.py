"""Tests for experiments.relief_pull: where the loss pulls the relief."""

import json
import os
import tempfile

import numpy as np
import pytest
import tensorflow as tf

from experiments import relief_pull
from experiments import trainers
from tests import tiny
from tfunsup3d import losses


class RegionsTest(tf.test.TestCase):

  def test_a_square_object_splits_into_ring_and_core(self):
    # A 5x5 object in a 7x7 image: with a rim of 1 its outer ring (16
    # pixels) is the rim, the 3x3 core the interior, the 24 others backdrop.
    obj = np.zeros([1, 7, 7], bool)
    obj[0, 1:6, 1:6] = True
    r = relief_pull.regions(obj, rim=1)
    self.assertEqual([int(r[k].sum()) for k in relief_pull.REGIONS],
                     [9, 16, 24])
    self.assertTrue(r['interior'][0, 2:5, 2:5].all())
    self.assertEqual(int(relief_pull.regions(obj, rim=2)['interior'].sum()),
                     1)
    self.assertEqual(int(relief_pull.regions(obj, rim=0)['rim'].sum()), 0)
    # The three regions tile the image.
    total = sum(r[k].astype(int) for k in relief_pull.REGIONS)
    self.assertTrue((total == 1).all())


class PullTest(tf.test.TestCase):

  def test_shares_sum_to_the_masked_mean_loss(self):
    rng = np.random.default_rng(0)
    loss = rng.random([2, 5, 5, 3]).astype(np.float32)
    valid = rng.random([2, 5, 5]) > 0.3
    got = relief_pull.shares(loss, valid).sum((1, 2))
    for i in range(2):
      total, count = losses.masked_sum(loss[i:i + 1],
                                       valid[i:i + 1, ..., None])
      self.assertAllClose(got[i], total / count, rtol=1e-5)

  def test_central_difference_of_a_quadratic_is_its_slope(self):
    # loss = a g^2 per entry: d(share)/dg = 2 a g / (C n) at g = 1, so the
    # pull is -2 a / (C n) summed over channels; one pixel turns invalid
    # at g = 1 + eps and is left out (0) but still counts in n.
    rng = np.random.default_rng(1)
    a = rng.random([1, 4, 4, 2])
    eps = 0.05

    def valid_at(g):
      valid = np.ones([1, 4, 4], bool)
      if g > 1.0:
        valid[0, 0, 0] = False
      return valid
    pulls = relief_pull.pull_maps(lambda g: {'l1': a * g ** 2}, valid_at, eps)
    want = -2.0 * a.sum(-1) / (2 * 16)
    want[0, 0, 0] = 0.0
    self.assertAllClose(pulls['l1'], want)
    self.assertEqual(int((~pulls['kept']).sum()), 1)


  def test_loss_along_takes_each_gain_with_its_own_valid_pixels(self):
    # l1 = a g^2, l1_flip = b g per entry, 2 channels, 4x4; at g = 2 one
    # pixel is invalid, so the mean is over 15 pixels there.
    rng = np.random.default_rng(2)
    a, b = rng.random([2, 4, 4, 2]), rng.random([2, 4, 4, 2])

    def valid_at(g):
      valid = np.ones([2, 4, 4], bool)
      valid[:, 0, 0] = g < 1.5
      return valid
    got = relief_pull.loss_along(lambda g: {'l1': a * g ** 2, 'l1_flip': b * g},
                                 valid_at, [0.5, 2.0], lam_flip=0.5)
    self.assertEqual(got.shape, (2, 2))
    self.assertAllClose(got[0], (a * 0.25 + 0.5 * b * 0.5).sum((1, 2, 3)) / 32)
    keep = valid_at(2.0)[..., None]
    self.assertAllClose(got[1], ((a * 4 + 0.5 * b * 2) * keep).sum((1, 2, 3))
                        / 30)
    self.assertEqual(relief_pull.loss_along(
        lambda g: {}, valid_at, [], lam_flip=0.5).shape, (0, 2))


class ModelPullTest(tf.test.TestCase):

  def test_the_pull_summed_over_an_image_is_minus_the_loss_gradient(self):
    # One image, so its loss share is the batch's loss: the pull summed over
    # every pixel, flipped term weighted by lam_flip, is -dL/dg of the
    # training loss (its smoothness term does not depend on g), by autodiff.
    model = tiny.tiny_model()
    log_gain = tf.Variable(0.0)
    trainers.couple_to_gain(model, log_gain)
    image = (tiny.smooth_image(np.random.default_rng(0))[None] / 255.0
             ).astype(np.float32)  # [1, 64, 64, 3] in [0, 1]
    object_mask = np.zeros([1, 64, 64, 1], np.float32)
    object_mask[:, 16:48, 16:48] = 1.0
    m = relief_pull.measure(model, log_gain, [(image, object_mask)],
                            model.cfg.lam_flip, eps=1e-3, rim=2,
                            gains=[1.0, 1.5])
    with tf.GradientTape() as tape:
      terms = model.compute_losses(model.decompose(image))
      loss = terms['loss_total']
    want = -float(tape.gradient(loss, log_gain))
    # The loss along the ambiguity at g = 1 is the training loss's
    # photometric part; at 1.5 it differs.
    self.assertAllClose(m['loss_along'][0], float(
        terms['loss_l1_im'] + model.cfg.lam_flip * terms['loss_l1_im_flip']),
                        rtol=1e-5)
    self.assertNotAllClose(m['loss_along'][1], m['loss_along'][0])
    # Without the confidence maps: the plain L1 the no_conf ablation trains.
    out = model.decompose(image)
    mask = out['recon_im_mask_both']
    plain = [losses.masked_sum(tf.abs(out['recon_im'][i:i + 1] - out['input_im']),
                               mask[i:i + 1]) for i in (0, 1)]
    self.assertAllClose(m['loss_along_plain'][0],
                        float(plain[0][0] / plain[0][1] + model.cfg.lam_flip
                              * plain[1][0] / plain[1][1]), rtol=1e-5)
    self.assertNotAllClose(want, 0.0, atol=1e-6)  # the check can fail
    self.assertAllClose(sum(m['regions']['total'].values()), want,
                        rtol=2e-2, atol=1e-6)
    self.assertEqual(float(log_gain.numpy()), 0.0)  # left at g = 1


class MarkdownAndArgsTest(tf.test.TestCase):

  def test_rows_and_header(self):
    point = {'step': 250, 'left_out': 0.01,
             'regions': {t: dict.fromkeys(relief_pull.REGIONS, 1e-3)
                         for t in ('l1', 'l1_flip', 'total')},
             'scores': {'side_mean': 2.5, 'diag_best_relief_scale': 0.35}}
    result = {'name': 'n', 'settings': {
        'config': 'c.yml', 'overrides': [], 'steps': 300, 'eval_every': 250,
        'eps': 0.02, 'rim': 3, 'counts': {'test': 300}, 'machine': 'm'},
              'zooms': {'1': {'curve': [dict(point, step=0), point]}}}
    md = relief_pull.markdown(result)
    self.assertIn('| 1 | 0 | 2.500 | ×0.35 | ' + ' | '.join(['+1.00e-03'] * 9)
                  + ' | +3.00e-03 | 1.0% |', md)
    self.assertIn('| 1 | 250 | 2.500 | ×0.35 |', md)
    self.assertIn('every 250 steps', md)
    self.assertNotIn('Loss along', md)
    result['settings']['gains'] = [0.5, 1.0]
    for p in result['zooms']['1']['curve']:
      p['loss_along'] = [0.2, 0.1]
      p['loss_along_plain'] = [0.05, 0.1]
    md = relief_pull.markdown(result)
    self.assertIn('| loss | g = 0.5 | g = 1 | lowest at |', md)
    self.assertIn('| 1 | 250 | ×0.35 | with confidence | 0.2000 | **0.1000** '
                  '| g = 1 |', md)
    self.assertIn('| 1 | 250 | ×0.35 | plain L1 | **0.0500** | 0.1000 '
                  '| g = 0.5 |', md)

  def test_bad_arguments_are_errors(self):
    for argv in (['--zooms=1,x'], ['--eps=0'], ['--rim=-1'], ['--zooms=0'],
                 ['--steps=0'], ['--zoom=1'], ['--gains=0.5,0'],
                 ['--gains=1,x']):
      with self.assertRaises(SystemExit, msg=argv):
        relief_pull.parse_args(argv)
    self.assertEqual(relief_pull.parse_args([]).zooms, [1.0, 1.45])
    self.assertEqual(relief_pull.parse_args([]).gains, [])
    self.assertEqual(relief_pull.parse_args(['--gains=0.5, 2']).gains,
                     [0.5, 2.0])


# Trains and renders: `slow` (./test.sh -m slow), as the other studies' runs.
@pytest.mark.slow
class CliTest(tf.test.TestCase):

  def test_small_run_writes_json_markdown_and_png(self):
    tmp = tempfile.mkdtemp()
    result = relief_pull.main([
        '--zooms=1', '--steps=1', '--eval_every=1', '--num_train=16',
        '--num_val=0',
        '--num_test=4', '--gains=0.5,1', f'--data_root={tmp}/data',
        f'--out_dir={tmp}/out'])
    with open(f'{tmp}/out/relief_pull.json', encoding='utf-8') as f:
      self.assertEqual(json.load(f), result)
    self.assertTrue(os.path.isfile(f'{tmp}/out/relief_pull.png'))
    curve = result['zooms']['1']['curve']
    self.assertEqual([p['step'] for p in curve], [0, 1])
    for point in curve:
      regions = point['regions']
      self.assertTrue(np.isfinite([regions[t][r] for t in regions
                                   for r in relief_pull.REGIONS]).all())
      self.assertAllClose(
          regions['total']['rim'],
          regions['l1']['rim'] + 0.5 * regions['l1_flip']['rim'])
      self.assertIn('side_mean', point['scores'])
      self.assertEqual(len(point['loss_along']), 2)
      self.assertEqual(len(point['loss_along_plain']), 2)
    with open(f'{tmp}/out/relief_pull.md', encoding='utf-8') as f:
      self.assertIn('| 1 | 1 |', f.read())
