"""Tests for tfunsup3d.model.Unsup3D: reference parity, layouts, errors."""

import dataclasses
import functools
import os

from absl.testing import parameterized
import keras
import numpy as np
import pytest
import tensorflow as tf

from tests import fixtures
from tests import testcase
from tests import tiny
from tfunsup3d import Unsup3D
from tfunsup3d import render
from tfunsup3d import saving
from tfunsup3d.convert import torch_format
from tfunsup3d.errors import CheckpointError
from tfunsup3d.factors import depth as depth_lib
from tfunsup3d.networks import VGG16Features

# The fixture's settings beside the code defaults (its README).
FIXTURE_OVERRIDES = dict(border_depth=1.04, z_translation_range=0.1)
CHECKPOINTS = ('ckpt_legacy_trainer.pth', 'ckpt_zip.pth')

# decompose() output -> reference attribute, compared to ATOL max abs.
# (Every key both produce; recon_normal, recon_im and the masks are checked
# apart.)
COMPARED = ('input_im', 'canon_depth_raw', 'canon_depth', 'canon_albedo',
            'conf_sigma_l1', 'conf_sigma_l1_flip', 'conf_sigma_percl',
            'conf_sigma_percl_flip', 'canon_light_a', 'canon_light_b',
            'canon_light_d', 'canon_normal', 'canon_diffuse_shading',
            'canon_im', 'view', 'recon_depth',
            'recon_im_mask_both', 'loss_depth_sm')
# Display-only: drawn by render.symmetry_line from decompose()'s outputs.
SYMMETRY_KEYS = ('recon_sym_axis', 'input_im_symline')
ATOL = 1e-4
# recon_normal: the rasterised recon_depth differs from the reference's
# float64 z-buffer by <= 1.2e-6 (measured). A normal is a cross product of
# central differences of points 2 px apart, |t| = 2 z / f ~ 0.0056 at
# f = 360, so a depth error dz moves a normal component by up to
# ~2 dz f / (2 z) = dz f / z ~ 450 dz (z >= 0.8): 1.2e-6 -> 5.4e-4 in the
# worst case; measured 2.0e-4 (legacy and zip). canon_normal, from the
# float-exact canonical depth (error 1.2e-7), stays within ATOL (4.3e-5).
RECON_NORMAL_ATOL = 5e-4
# recon_im samples the canonical image where recon_depth sends each pixel:
# the same depth rounding moves the sample point, times the image gradient
# (up to ~1 per pixel at albedo edges). Measured 8.3e-5 on one CPU and 2.0e-4
# on an AVX-512 one (XLA:CPU rounds the z-buffer differently).
RECON_IM_ATOL = 5e-4
LOSS_KEYS = ('loss_l1_im', 'loss_l1_im_flip', 'loss_perc_im',
             'loss_perc_im_flip', 'loss_depth_sm', 'loss_total')
# Our metric key -> the reference's.
METRIC_KEYS = {'mae': 'acc_mae_masked', 'mse': 'acc_mse_masked',
               'side': 'acc_sie_masked', 'mad': 'acc_normal_masked'}
RTOL = 1e-4


@functools.lru_cache(maxsize=None)
def _reference_run(checkpoint: str):
  """Model from a reference checkpoint and its outputs, losses, metrics on
  the fixture's inputs (computed once per checkpoint)."""
  model = Unsup3D.from_checkpoint(
      fixtures.reference_path(checkpoint),
      vgg16_weights=fixtures.reference_path('vgg16_features.pth'),
      **FIXTURE_OVERRIDES)
  inputs = fixtures.reference_inputs()
  out = model.decompose(inputs['images_nhwc'])
  loss = model.compute_losses(out, inputs['images_nhwc'], epoch=0)
  metric = model.compute_metrics(out, inputs['depth_gt'])
  to_np = lambda d: {k: v.numpy() for k, v in d.items() if v is not None}
  return model, to_np(out), to_np(loss), to_np(metric)


def _tiny_model(**overrides) -> Unsup3D:
  """The tiny model with the current seed's weights (unscaled encoders)."""
  return Unsup3D(tiny.tiny_config(**overrides))


def _synthetic_images(batch=2, size=64):
  """A fixed, smooth, mirror-symmetric 'face': a shaded ellipse on a
  gradient background, in [0, 1]."""
  v, u = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size),
                     indexing='ij')
  blob = np.clip(1.0 - (u / 0.6) ** 2 - (v / 0.8) ** 2, 0.0, 1.0)
  images = []
  for i in range(batch):
    shade = 0.3 + 0.6 * np.sqrt(blob) * (1.0 - 0.2 * i * v)
    image = np.stack([shade, 0.8 * shade, 0.6 * shade + 0.1 * (v + 1)], -1)
    images.append(np.clip(image, 0.0, 1.0))
  return np.asarray(images, np.float32)


class ReferenceParityTest(tf.test.TestCase, parameterized.TestCase):
  """The converted quarter-width reference checkpoints reproduce every
  tensor, loss and metric of the authors' run (fixtures/reference)."""

  def setUp(self):
    super().setUp()
    fixtures.require_reference(self, *CHECKPOINTS, 'vgg16_features.pth',
                               'inputs.npz', 'ref_outputs.npz')
    self.ref = fixtures.reference_outputs_nhwc()

  def test_both_containers_hold_the_same_weights(self):
    legacy, zipped = _reference_run(CHECKPOINTS[0])[0], _reference_run(
        CHECKPOINTS[1])[0]
    self.assertEqual(legacy.cfg, zipped.cfg)
    self.assertEqual(
        (legacy.cfg.nf_depth, legacy.cfg.zdim_depth, legacy.cfg.nf_encoder,
         legacy.cfg.nf_conf, legacy.cfg.zdim_conf), (16, 64, 8, 16, 32))
    for name, net in legacy.networks.items():
      for a, b in zip(net.get_weights(), zipped.networks[name].get_weights()):
        self.assertAllEqual(a, b, msg=name)

  @parameterized.parameters(*CHECKPOINTS)
  def test_outputs(self, checkpoint):
    _, out, _, _ = _reference_run(checkpoint)
    for key in COMPARED:
      ref = self.ref[key]
      self.assertEqual(out[key].shape, ref.shape, msg=key)
      error = np.abs(out[key] - ref).max()
      self.assertLessEqual(error, ATOL, msg=f'{key}: max abs error {error}')
    for key, atol in (('recon_normal', RECON_NORMAL_ATOL),
                      ('recon_im', RECON_IM_ATOL)):
      error = np.abs(out[key] - self.ref[key]).max()
      self.assertLessEqual(error, atol, msg=f'{key}: max abs error {error}')

  @parameterized.parameters(*CHECKPOINTS)
  def test_symmetry_line_from_outputs(self, checkpoint):
    # What the summaries and the test writer draw, from our outputs, is the
    # reference's recon_sym_axis / input_im_symline (all 2B rows).
    model, out, _, _ = _reference_run(checkpoint)
    args = (out['recon_depth'], out['view'], out['recon_im_mask_both'],
            model.K, model.cfg.rot_center_depth)
    ours = {
        'recon_sym_axis': render.symmetry_axis(*args),
        'input_im_symline': render.symmetry_line(
            np.tile(out['input_im'], [2, 1, 1, 1]), *args)}
    for key in SYMMETRY_KEYS:
      self.assertEqual(ours[key].shape, self.ref[key].shape, msg=key)
      error = np.abs(ours[key].numpy() - self.ref[key]).max()
      self.assertLessEqual(error, ATOL, msg=f'{key}: max abs error {error}')

  @parameterized.parameters(*CHECKPOINTS)
  def test_every_shared_key_is_compared(self, checkpoint):
    _, out, _, _ = _reference_run(checkpoint)
    checked = set(COMPARED) | {'recon_normal', 'recon_im', 'recon_im_mask'}
    self.assertEmpty(set(out) & set(SYMMETRY_KEYS))
    self.assertEmpty((set(out) & set(self.ref)) - checked)

  @parameterized.parameters(*CHECKPOINTS)
  def test_validity_mask(self, checkpoint):
    _, out, _, _ = _reference_run(checkpoint)
    ref_mask = self.ref['recon_im_mask']  # [2B, H, W]
    ours = out['recon_im_mask'][..., 0]
    self.assertEqual(ours.shape, ref_mask.shape)
    self.assertGreaterEqual(np.mean(ours == ref_mask), 0.999)
    # Sanity: the fixture's views do invalidate pixels (so this can fail).
    self.assertGreater(np.mean(ref_mask == 0), 0.01)
    both = out['recon_im_mask_both'][..., 0]
    b = both.shape[0] // 2
    self.assertAllEqual(both[:b], ours[:b] * ours[b:])
    self.assertAllEqual(both[b:], both[:b])

  @parameterized.parameters(*CHECKPOINTS)
  def test_losses(self, checkpoint):
    _, _, loss, _ = _reference_run(checkpoint)
    for key in LOSS_KEYS:
      self.assertAllClose(loss[key], self.ref[key], rtol=RTOL, atol=0,
                          msg=key)

  @parameterized.parameters(*CHECKPOINTS)
  def test_metrics(self, checkpoint):
    model, _, _, metric = _reference_run(checkpoint)
    inputs = fixtures.reference_inputs()
    depth_gt = model.depth_from_png(inputs['depth_gt_p'].transpose(0, 2, 3, 1))
    self.assertAllClose(depth_gt, self.ref['depth_gt'], atol=1e-6)
    self.assertAllClose(inputs['depth_gt'], self.ref['depth_gt'], atol=1e-6)
    for ours, theirs in METRIC_KEYS.items():
      self.assertAllClose(metric[ours], self.ref[theirs], rtol=RTOL, atol=0,
                          msg=ours)
    self.assertAllClose(metric['side'].mean(), self.ref['SIE_masked'],
                        rtol=RTOL, atol=0)
    self.assertAllClose(metric['mad'].mean(), self.ref['NorErr_masked'],
                        rtol=RTOL, atol=0)
    self.assertAllEqual(metric['mask'], self.ref['metric_mask'])
    # Float32 rounding of unit normals computed in a different op order:
    # measured 1.02e-5.
    self.assertAllClose(metric['normal_gt'], self.ref['normal_gt'],
                        atol=ATOL)
    self.assertAllClose(metric['sie_map'], self.ref['sie_map_masked'],
                        atol=1e-6)


class OutputLayoutTest(tf.test.TestCase):
  """Shapes, ranges and the original/flipped row layout of a tiny random
  model."""

  B = 3
  CFG = dict(min_amb_light=0.2, max_amb_light=0.6, min_diff_light=0.5,
             max_diff_light=0.9, border_depth=1.07, xyz_rotation_range=30.0,
             xy_translation_range=0.05, z_translation_range=0.02)

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    keras.utils.set_random_seed(1)
    cls.model = _tiny_model(**cls.CFG)
    rng = np.random.default_rng(0)
    cls.images = rng.uniform(0, 1, (cls.B, 64, 64, 3)).astype(np.float32)
    cls.out = {k: v.numpy() for k, v in
               cls.model.decompose(cls.images).items()}

  def test_shapes(self):
    b, s = self.B, 64
    expect = {
        'input_im': (b, s, s, 3), 'canon_depth_raw': (b, s, s),
        'canon_depth': (2 * b, s, s), 'canon_albedo': (2 * b, s, s, 3),
        'conf_sigma_l1': (b, s, s, 1), 'conf_sigma_l1_flip': (b, s, s, 1),
        'conf_sigma_percl': (b, s // 4, s // 4, 1),
        'conf_sigma_percl_flip': (b, s // 4, s // 4, 1),
        'canon_light_a': (2 * b, 1), 'canon_light_b': (2 * b, 1),
        'canon_light_d': (2 * b, 3), 'canon_normal': (2 * b, s, s, 3),
        'canon_diffuse_shading': (2 * b, s, s, 1),
        'canon_im': (2 * b, s, s, 3), 'view': (2 * b, 6),
        'recon_depth': (2 * b, s, s), 'recon_normal': (2 * b, s, s, 3),
        'recon_im': (2 * b, s, s, 3), 'recon_im_mask': (2 * b, s, s, 1),
        'recon_im_mask_both': (2 * b, s, s, 1), 'loss_depth_sm': ()}
    self.assertEqual({k: v.shape for k, v in self.out.items()}, expect)

  def test_input_mapping(self):
    self.assertAllClose(self.out['input_im'], self.images * 2 - 1, atol=1e-7)

  def test_depth_range_and_border(self):
    cfg = self.model.cfg
    d = self.out['canon_depth']
    self.assertTrue(np.all(d >= cfg.min_depth) and np.all(d <= cfg.max_depth))
    # The 2 left and right columns are exactly border_depth, rows are not.
    self.assertTrue(np.all(d[:, :, [0, 1, -2, -1]] == np.float32(1.07)))
    self.assertFalse(np.any(d[:, [0, -1], 2:-2] == np.float32(1.07)))
    # The canonical depth is the post-processed raw output.
    expect = depth_lib.set_border(
        depth_lib.canonical_depth(self.out['canon_depth_raw'], cfg.min_depth,
                                  cfg.max_depth), 1.07)
    self.assertAllClose(d[:self.B], expect, atol=1e-7)
    smooth = depth_lib.smoothness(
        depth_lib.canonical_depth(self.out['canon_depth_raw'], cfg.min_depth,
                                  cfg.max_depth), cfg.min_depth, cfg.max_depth)
    self.assertAllClose(self.out['loss_depth_sm'], smooth, atol=1e-7)
    margin = (cfg.max_depth - cfg.min_depth) / 2
    r = self.out['recon_depth']
    self.assertTrue(np.all(r >= cfg.min_depth - margin - 1e-6))
    self.assertTrue(np.all(r <= cfg.max_depth + margin + 1e-6))

  def test_depth_centering_key_reaches_the_depth(self):
    # The same raw map, centred as the config says ('none': tanh of raw).
    keras.utils.set_random_seed(1)
    model = _tiny_model(**dict(self.CFG, depth_centering='none'))
    out = model.canonical(self.images)
    cfg = model.cfg
    expect = depth_lib.set_border(depth_lib.rescale(
        np.tanh(out['canon_depth_raw'].numpy()), cfg.min_depth,
        cfg.max_depth), cfg.border_depth)
    self.assertAllClose(out['canon_depth'], expect, atol=1e-6)
    centred = depth_lib.set_border(depth_lib.canonical_depth(
        out['canon_depth_raw'], cfg.min_depth, cfg.max_depth),
                                   cfg.border_depth)
    self.assertGreater(np.abs(expect - centred.numpy()).max(), 1e-3)

  def test_light_ranges(self):
    a, b = self.out['canon_light_a'], self.out['canon_light_b']
    d = self.out['canon_light_d']
    self.assertTrue(np.all((a >= 0.2) & (a <= 0.6)), a)
    self.assertTrue(np.all((b >= 0.5) & (b <= 0.9)), b)
    self.assertAllClose(np.linalg.norm(d, axis=1), np.ones(2 * self.B),
                        atol=1e-6)
    self.assertTrue(np.all(d[:, 2] > 0))

  def test_view_ranges(self):
    v = self.out['view']
    self.assertTrue(np.all(np.abs(v[:, :3]) <= np.radians(30.0) + 1e-7))
    self.assertTrue(np.all(np.abs(v[:, 3:5]) <= 0.05 + 1e-7))
    self.assertTrue(np.all(np.abs(v[:, 5]) <= 0.02 + 1e-7))

  def test_sigmas_positive_and_albedo_in_range(self):
    for key in ('conf_sigma_l1', 'conf_sigma_l1_flip', 'conf_sigma_percl',
                'conf_sigma_percl_flip'):
      self.assertTrue(np.all(self.out[key] > 0), key)
    albedo = self.out['canon_albedo']
    self.assertTrue(np.all(albedo >= -1) and np.all(albedo <= 1))

  def test_shading_composition_numpy(self):
    # Independent numpy: shading = max(0, n.l); canon_im = ((a+1)/2 (k_a +
    # k_d shading)) 2 - 1, each row with its own light.
    n, l = self.out['canon_normal'], self.out['canon_light_d']
    shading = np.maximum(0.0, np.einsum('bhwc,bc->bhw', n, l))[..., None]
    self.assertAllClose(self.out['canon_diffuse_shading'], shading, atol=1e-6)
    ka = self.out['canon_light_a'][:, None, None, :]
    kd = self.out['canon_light_b'][:, None, None, :]
    albedo = self.out['canon_albedo']
    expect = (albedo / 2 + 0.5) * (ka + kd * shading) * 2 - 1
    self.assertAllClose(self.out['canon_im'], expect, atol=1e-5)

  def test_flip_layout(self):
    # Rows B.. are the flipped canonical maps of rows ..B with the same light
    # and view (the reference's torch.cat([x, x.flip(2)], 0) and repeat).
    b, out = self.B, self.out
    self.assertAllEqual(out['canon_depth'][b:], out['canon_depth'][:b, :, ::-1])
    self.assertAllEqual(out['canon_albedo'][b:],
                        out['canon_albedo'][:b, :, ::-1])
    for key in ('canon_light_a', 'canon_light_b', 'canon_light_d', 'view'):
      self.assertAllEqual(out[key][b:], out[key][:b], msg=key)
    # The flipped depth is not the original (a random net is not symmetric),
    # so the check above can fail.
    self.assertGreater(
        np.abs(out['canon_depth'][b:] - out['canon_depth'][:b]).max(), 1e-6)

  def test_mask_applied(self):
    mask = self.out['recon_im_mask_both']
    self.assertTrue(np.all((mask == 0) | (mask == 1)))
    self.assertTrue(np.all(self.out['recon_im'][np.broadcast_to(
        mask == 0, self.out['recon_im'].shape)] == 0))

  def test_flip_ablations(self):
    # Table 2's "no albedo flip" / "no depth flip": the second half keeps the
    # unflipped map, the other map is still flipped.
    for key, other, flag in (('canon_albedo', 'canon_depth', 'flip_albedo'),
                             ('canon_depth', 'canon_albedo', 'flip_depth')):
      model = self.model.with_config(**{flag: False})
      out = model.decompose(self.images)
      b = self.B
      self.assertAllEqual(out[key][b:], out[key][:b], msg=flag)
      self.assertAllEqual(out[other][b:], out[other][:b, :, ::-1], msg=flag)
      self.assertAllClose(out[key][:b], self.out[key][:b], atol=1e-6)

  def test_without_confidence(self):
    model = _tiny_model(use_conf_map=False)
    self.assertNotIn('netC', model.networks)
    out = model.decompose(self.images[:1])
    self.assertIsNone(out['conf_sigma_l1'])
    loss = model.compute_losses(out)
    self.assertTrue(np.isfinite(float(loss['loss_total'])))

  def _check_prior(self, key, prior_key, value, weight_key, expected_fn,
                   edit=lambda out: out):
    """The prior `key` (on with config `prior_key` = `value`, weighted by
    `weight_key` = 2.5) is `expected_fn(out)` and adds its weighted value;
    `edit(out)` replaces the outputs first."""
    model = tiny.tiny_model(**{prior_key: value, weight_key: 2.5})
    out = edit(model.decompose(self.images))
    loss = model.compute_losses(out)
    expected = expected_fn({k: v[:len(self.images)].numpy()
                            for k, v in out.items() if v is not None
                            and k in ('view', 'canon_light_d', 'canon_depth')})
    self.assertGreater(expected, 0.0)
    self.assertAllClose(loss[key], expected, rtol=1e-4)
    model.cfg = dataclasses.replace(model.cfg, **{prior_key: 0.0})
    off = model.compute_losses(out)
    self.assertNotIn(key, off)
    self.assertAllClose(loss['loss_total'] - off['loss_total'],
                        2.5 * expected, rtol=1e-4)

  def test_yaw_spread_prior_adds_its_weighted_term(self):
    self._check_prior(
        'loss_yaw_std', 'min_yaw_std', 60.0, 'lam_yaw_std',
        lambda o: (1.0 - o['view'][:, 1].std() / np.radians(60.0)) ** 2)

  def test_light_spread_prior_adds_its_weighted_term(self):
    def expected(o):
      tilt = o['canon_light_d'][:, :2] / o['canon_light_d'][:, 2:]
      return np.mean(np.maximum(1.0 - tilt.std(0) / 0.5, 0.0) ** 2)
    self._check_prior('loss_light_std', 'min_light_tilt_std', 0.5,
                      'lam_light_std', expected)

  def test_yaw_shift_prior_adds_its_weighted_term(self):
    def expected(o):
      return np.corrcoef(o['view'][:, 1], o['view'][:, 3])[0, 1] ** 2
    self._check_prior('loss_yaw_shift_corr', 'lam_yaw_shift_corr', 2.5,
                      'lam_yaw_shift_corr', expected)

  def test_protrusion_prior_adds_its_weighted_term(self):
    # The untrained depth stands out of its frame (prior 0): mirrored about
    # the range's middle, 1, it is hollow.
    def hollow(out):
      return dict(out, canon_depth=2.0 - out['canon_depth'])

    def expected(o):  # 64x64: the centre's 22 rows/columns, the border's 8
      d = o['canon_depth']
      s = d.shape[1]
      self.assertEqual(s, 64)
      centre = d[:, s // 3:s - s // 3, s // 3:s - s // 3].mean((1, 2))
      ring = np.ones((s, s), bool)
      ring[s // 8:s - s // 8, s // 8:s - s // 8] = False
      return np.maximum((centre - d[:, ring].mean(1)) / 0.2, 0.0).mean()
    self._check_prior('loss_protrusion', 'lam_protrusion', 2.5,
                      'lam_protrusion', expected, edit=hollow)

  def _check_depth_term(self, loss_key, lam_key, term):
    """`loss_key` is `term` of the canonical depth before its border is set
    (as the smoothness: the border columns' step to border_depth would be
    charged otherwise), weighted by `lam_key` from the first step (it does
    not wait for prior_start_step), and absent when the weight is 0."""
    model = tiny.tiny_model(**{lam_key: 2.5, 'prior_start_step': 10})
    cfg = model.cfg
    out = model.decompose(self.images)
    depth = depth_lib.canonical_depth(out['canon_depth_raw'], cfg.min_depth,
                                      cfg.max_depth)
    expected = float(term(depth, cfg.min_depth, cfg.max_depth))
    self.assertGreater(expected, 0.0)
    self.assertAllClose(out[loss_key], expected, rtol=1e-5)
    self.assertNotAllClose(expected, float(term(
        out['canon_depth'][:self.B], cfg.min_depth, cfg.max_depth)),
                           rtol=1e-4)
    loss = model.compute_losses(out, step=tf.constant(0))
    self.assertAllClose(loss[loss_key], expected, rtol=1e-5)
    off = model.compute_losses(
        {k: v for k, v in out.items() if k != loss_key}, step=tf.constant(0))
    self.assertNotIn(loss_key, off)
    self.assertAllClose(loss['loss_total'] - off['loss_total'],
                        2.5 * expected, rtol=1e-4)
    self.assertNotIn(loss_key, tiny.tiny_model().canonical(self.images[:1]))

  def test_curvature_term_is_on_the_depth_before_its_border(self):
    self._check_depth_term('loss_depth_curv', 'lam_depth_curv',
                           depth_lib.curvature)

  def test_curvature_min_radius_reaches_the_term(self):
    model = tiny.tiny_model(lam_depth_curv=1.0, depth_curv_min_radius=0.8)
    cfg = model.cfg
    out = model.decompose(self.images)
    depth = depth_lib.canonical_depth(out['canon_depth_raw'], cfg.min_depth,
                                      cfg.max_depth)
    band = float(depth_lib.curvature(depth, cfg.min_depth, cfg.max_depth,
                                     0.8))
    self.assertAllClose(out['loss_depth_curv'], band, rtol=1e-5)
    self.assertNotAllClose(band, float(depth_lib.curvature(
        depth, cfg.min_depth, cfg.max_depth)), rtol=1e-3)

  def test_ripple_term_is_on_the_depth_before_its_border(self):
    self._check_depth_term('loss_depth_ripple', 'lam_depth_ripple',
                           depth_lib.ripple)

  def test_curvature_weight_follows_its_schedule(self):
    # Weight 4 for 10 steps, then linear to lam_depth_curv = 0 by step 30:
    # the term is on although its final weight is 0.
    model = tiny.tiny_model(depth_curv_curriculum=[4.0, 10.0, 20.0])
    out = model.decompose(self.images)
    curv = float(out['loss_depth_curv'])
    self.assertGreater(curv, 0.0)
    off = model.compute_losses(
        {k: v for k, v in out.items() if k != 'loss_depth_curv'},
        step=tf.constant(0))['loss_total']
    for step, weight in ((0, 4.0), (10, 4.0), (20, 2.0), (30, 0.0),
                         (None, 0.0)):  # no step: the final weight
      total = model.compute_losses(
          out, step=None if step is None else tf.constant(step))
      self.assertAllClose(total['loss_total'] - off, weight * curv,
                          atol=1e-6, msg=f'step {step}')

  def test_priors_wait_for_prior_start_step(self):
    model = tiny.tiny_model(min_yaw_std=60.0, lam_yaw_std=2.5,
                            lam_protrusion=2.5, prior_start_step=10)
    out = model.decompose(self.images)
    out = dict(out, canon_depth=2.0 - out['canon_depth'])  # hollow
    before, after = (model.compute_losses(out, step=tf.constant(s))
                     for s in (9, 10))
    self.assertGreater(float(before['loss_yaw_std']), 0.0)
    self.assertGreater(float(before['loss_protrusion']), 0.0)
    self.assertAllClose(after['loss_total'] - before['loss_total'],
                        2.5 * before['loss_yaw_std'], rtol=1e-5)
    # The protrusion prior never waits; without a step every prior is on.
    model.cfg = dataclasses.replace(model.cfg, lam_protrusion=0.0)
    self.assertAllClose(
        before['loss_total'] - model.compute_losses(
            out, step=tf.constant(9))['loss_total'],
        2.5 * before['loss_protrusion'], rtol=1e-5)
    self.assertAllClose(model.compute_losses(out)['loss_total'],
                        after['loss_total'] - 2.5 * after['loss_protrusion'],
                        rtol=1e-5)

  def test_render_view_is_the_reconstruction_where_valid(self):
    b = len(self.images)
    image = self.model.render_view(self.out['canon_depth'][:b],
                                   self.out['canon_im'][:b],
                                   self.out['view'][:b])
    # Valid pixels off the frame's edge (there reconstruct's sampling pads
    # with 0 where its grid reaches just past the canonical map).
    mask = self.out['recon_im_mask_both'][:b] > 0
    mask[:, :2] = mask[:, -2:] = mask[:, :, :2] = mask[:, :, -2:] = False
    self.assertGreater(mask.mean(), 0.5)
    self.assertAllClose(np.where(mask, image, 0.0),
                        np.where(mask, self.out['recon_im'][:b], 0.0),
                        atol=1e-5)
    # Elsewhere a colour of the canonical image, not 0.
    self.assertAllInRange(image, -1.5, 1.5)

  def _cycle(self, model, key, net):
    """decompose and `cycle_errors`'s `key` at step 7 `[B]`, checking that
    the draw gives only that term and its gradient reaches only `net`."""
    with tf.GradientTape() as tape:
      out = model.decompose(self.images)
      errors = model.cycle_errors(out, len(self.images), tf.constant(7))
      self.assertEqual(set(errors), {key})
      total = tf.reduce_sum(errors[key])
    grads = tape.gradient(total, {n: m.trainable_variables for n, m in
                                  model.networks.items()})
    for name, g in grads.items():
      moved = any(x is not None and float(tf.reduce_max(tf.abs(x))) > 0
                  for x in g)
      self.assertEqual(moved, name == net, name)
    return out, errors[key]

  def test_view_cycle(self):
    model = tiny.tiny_model(lam_view_cycle=2.5, view_cycle_max_yaw=20.0,
                            prior_start_step=5)
    b = len(self.images)
    out, errors = self._cycle(model, 'loss_view_cycle', 'netV')
    yaw, turned = cycle_view(model, out, b, 7)
    full = model.cfg.xyz_rotation_range
    self.assertAllInRange(yaw, -20.0 / full, 20.0 / full)
    image = model.render_view(out['canon_depth'][:b], out['canon_im'][:b],
                              turned)
    self.assertAllClose(errors, np.abs(model.netV(image)[:, 1] - yaw),
                        atol=1e-5)
    self.assertNotAllClose(errors, model.cycle_errors(
        out, b, tf.constant(8))['loss_view_cycle'])
    # In the loss: lam_view_cycle x its mean, from prior_start_step on.
    before, after = (model.compute_losses(out, step=tf.constant(s))
                     for s in (4, 5))
    self.assertAllClose(before['loss_view_cycle'],
                        np.mean(model.cycle_errors(out, b, tf.constant(4))[
                            'loss_view_cycle']), rtol=1e-5)
    with_term = after['loss_total'] - before['loss_total']
    self.assertAllClose(with_term, 2.5 * after['loss_view_cycle'], rtol=1e-4)

  def test_light_cycle(self):
    model = tiny.tiny_model(lam_light_cycle=2.5, light_cycle_max_tilt=0.5)
    b = len(self.images)
    out, errors = self._cycle(model, 'loss_light_cycle', 'netL')
    # The drawn tilts: uniform in +-0.5, netL's units (dx/dz, dy/dz).
    tilt = tf.random.stateless_uniform(
        [b, 2], tf.constant([model.cfg.seed + 3, 7]), -1.0, 1.0) * 0.5
    self.assertAllInRange(tilt, -0.5, 0.5)
    factors = {k: out[k][:b] for k in (
        'canon_depth', 'canon_albedo', 'canon_light_a', 'canon_light_b')}
    d = np.concatenate([tilt, np.ones([b, 1])], 1)
    factors['canon_light_d'] = d / np.linalg.norm(d, axis=1, keepdims=True)
    lit = model.shade(factors)['canon_im']  # shaded afresh: normals too
    image = model.render_view(out['canon_depth'][:b], lit, out['view'][:b])
    self.assertAllClose(
        errors, np.abs(model.netL(image)[:, 2:] - tilt).mean(1), atol=1e-5)
    # Both cycles: one render, each network on it with its own draw.
    model.cfg = dataclasses.replace(model.cfg, lam_view_cycle=1.0)
    errors = model.cycle_errors(out, b, tf.constant(7))
    yaw, turned = cycle_view(model, out, b, 7)
    image = model.render_view(out['canon_depth'][:b], lit, turned)
    self.assertAllClose(errors['loss_light_cycle'], np.abs(
        model.netL(image)[:, 2:] - tilt).mean(1), atol=1e-5)
    self.assertAllClose(errors['loss_view_cycle'],
                        np.abs(model.netV(image)[:, 1] - yaw), atol=1e-5)
    terms = model.compute_losses(out, step=tf.constant(7))
    self.assertAllClose(terms['loss_light_cycle'],
                        np.mean(errors['loss_light_cycle']), rtol=1e-5)


def cycle_view(model, out, b, step):
  """The view cycle's drawn yaws `[b]` for `step` (uniform in
  +-view_cycle_max_yaw, in netV's units) and the first `b` predicted views
  with them in place of the yaw `[b, 6]`."""
  full = model.cfg.xyz_rotation_range
  yaw = tf.random.stateless_uniform(
      [b], tf.constant([model.cfg.seed + 2, step]), -1.0, 1.0) * (
          model.cfg.view_cycle_max_yaw / full)
  turned = out['view'][:b].numpy()
  turned[:, 1] = yaw.numpy() * np.radians(full)
  return yaw, turned


class HalvesTest(tf.test.TestCase):
  """decompose = reconstruct(canonical(images)): the B inputs' factors, then
  the flip, shading, rendering, warp and masks."""

  B = 2

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    keras.utils.set_random_seed(2)
    cls.model = _tiny_model(xyz_rotation_range=30.0)
    rng = np.random.default_rng(1)
    cls.images = rng.uniform(0, 1, (cls.B, 64, 64, 3)).astype(np.float32)
    cls.factors = cls.model.canonical(cls.images)
    cls.out = cls.model.decompose(cls.images)

  def test_canonical_has_b_rows(self):
    b, s = self.B, 64
    self.assertEqual({k: tuple(v.shape) for k, v in self.factors.items()}, {
        'input_im': (b, s, s, 3), 'canon_depth_raw': (b, s, s),
        'canon_depth': (b, s, s), 'canon_albedo': (b, s, s, 3),
        'canon_light_a': (b, 1), 'canon_light_b': (b, 1),
        'canon_light_d': (b, 3), 'view': (b, 6),
        'conf_sigma_l1': (b, s, s, 1), 'conf_sigma_l1_flip': (b, s, s, 1),
        'conf_sigma_percl': (b, s // 4, s // 4, 1),
        'conf_sigma_percl_flip': (b, s // 4, s // 4, 1),
        'loss_depth_sm': ()})

  def test_canonical_is_the_first_half_of_decompose(self):
    for key, value in self.factors.items():
      want = self.out[key] if value.shape.rank == 0 else self.out[key][:self.B]
      self.assertAllEqual(value, want, msg=key)

  def test_reconstruct_of_canonical_is_decompose(self):
    again = self.model.reconstruct(self.model.canonical(self.images))
    self.assertEqual(set(again), set(self.out))
    for key, value in again.items():
      self.assertAllEqual(value, self.out[key], msg=key)

  def test_canonical_without_confidence(self):
    factors = _tiny_model(use_conf_map=False).canonical(self.images)
    self.assertEqual([k for k, v in factors.items() if v is None],
                     ['conf_sigma_l1', 'conf_sigma_l1_flip',
                      'conf_sigma_percl', 'conf_sigma_percl_flip'])

  def test_reconstruct_flip_ablations(self):
    # The same B-row factors, rendered by models whose configs differ only in
    # the flip flags (reconstruct reads no network weights).
    b = self.B
    depth, albedo = self.factors['canon_depth'], self.factors['canon_albedo']
    for flip_depth in (True, False):
      for flip_albedo in (True, False):
        model = _tiny_model(xyz_rotation_range=30.0, flip_depth=flip_depth,
                            flip_albedo=flip_albedo)
        out = model.reconstruct(self.factors)
        msg = f'flip_depth={flip_depth}, flip_albedo={flip_albedo}'
        self.assertAllEqual(out['canon_depth'][:b], depth, msg=msg)
        self.assertAllEqual(out['canon_albedo'][:b], albedo, msg=msg)
        self.assertAllEqual(out['canon_depth'][b:], depth[:, :, ::-1]
                            if flip_depth else depth, msg=msg)
        self.assertAllEqual(out['canon_albedo'][b:], albedo[:, :, ::-1]
                            if flip_albedo else albedo, msg=msg)
    # A random net is not symmetric, so the flipped and unflipped differ.
    self.assertGreater(float(tf.reduce_max(tf.abs(
        depth - depth[:, :, ::-1]))), 1e-4)

  def test_reconstruct_renders_the_given_factors(self):
    # Ambient light 1 and no diffuse term: the canonical image is the albedo;
    # the identity view warps every pixel onto itself, so the
    # reconstruction is the canonical image wherever it is valid.
    factors = dict(self.factors)
    factors['canon_light_a'] = tf.ones([self.B, 1])
    factors['canon_light_b'] = tf.zeros([self.B, 1])
    factors['view'] = tf.zeros([self.B, 6])
    out = self.model.reconstruct(factors)
    self.assertAllClose(out['canon_im'], out['canon_albedo'], atol=1e-6)
    mask = out['recon_im_mask_both'].numpy()
    self.assertGreater(mask.mean(), 0.5)
    self.assertAllClose(out['recon_im'], out['canon_im'] * mask, atol=1e-4)


class BadInputTest(tf.test.TestCase, parameterized.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = _tiny_model()

  @parameterized.named_parameters(
      ('rank3', (64, 64, 3), r'\[B, H, W, 3\].*\(64, 64, 3\)'),
      ('rank5', (1, 1, 64, 64, 3), r'\[B, H, W, 3\]'),
      ('one_channel', (2, 64, 64, 1), r'\[B, H, W, 3\].*\(2, 64, 64, 1\)'),
      ('four_channels', (2, 64, 64, 4), r'\[B, H, W, 3\]'),
      ('small', (2, 32, 32, 3), r'64x64 \(config image_size\).*32, 32'),
      ('not_square', (2, 64, 48, 3), r'64x64 \(config image_size\)'),
  )
  def test_raises(self, shape, pattern):
    with self.assertRaisesRegex(ValueError, pattern):
      self.model.decompose(np.zeros(shape, np.float32))


class TrainingTest(tf.test.TestCase):

  def test_adam_steps_lower_the_loss(self):
    keras.utils.set_random_seed(3)
    model = _tiny_model()
    images = _synthetic_images()
    variables = model.trainable_variables
    optimizer = keras.optimizers.Adam(1e-3)

    def loss_and_grads():
      with tf.GradientTape() as tape:
        loss = model.compute_losses(model.decompose(images))['loss_total']
      return loss, tape.gradient(loss, variables)

    first, grads = loss_and_grads()
    # Gradients reach every network through the renderer (depth and view
    # through the rasterised depth and the inverse warp). Only ConfNet's
    # perceptual sigma head has none: lam_perc is 0.
    by_var = {v.path: g for v, g in zip(variables, grads)}
    for name in ('netD', 'netA', 'netL', 'netV', 'netC'):
      norms = [float(tf.norm(g)) for p, g in by_var.items()
               if p.startswith(name + '/') and g is not None]
      self.assertTrue(norms and all(np.isfinite(norms)), name)
      self.assertGreater(sum(norms), 0.0, name)
    self.assertEqual([p for p, g in by_var.items() if g is None],
                     ['netC/out_net2_0_conv/kernel'])
    for _ in range(4):
      optimizer.apply_gradients(
          [(g, v) for g, v in zip(grads, variables) if g is not None])
      loss, grads = loss_and_grads()
    self.assertLess(float(loss), float(first) - 0.1,
                    msg=f'{float(first)} -> {float(loss)}')

  def test_remat_recomputes_with_the_same_gradients(self):
    self._check_remat(xla=False)
    self._check_remat(xla=False, perceptual=True)

  @pytest.mark.slow  # one XLA compile per remat mode: ~1 min on 2 cores
  def test_remat_recomputes_under_xla(self):
    self._check_remat(xla=True)

  def _check_remat(self, xla, perceptual=False):
    # Config remat: the image networks (true) or the layers between their
    # convolutions (light) run again in the backward pass (calls counted:
    # eagerly, or as they are traced into the XLA step), and every gradient
    # is the one kept activations give.
    images = _synthetic_images()
    results = {}
    for remat in (False, True, 'light'):
      keras.utils.set_random_seed(3)
      model = _tiny_model(remat=remat, lam_perc=float(perceptual))
      if perceptual:  # a random VGG16: no weights file in the tests
        model.vgg = VGG16Features(name='vgg16').build_for(64)
        model.vgg.trainable = False
      model.decompose(images)  # builds the networks before counting
      calls = {}
      gn = [layer for layer in model.netD.network_layers
            if isinstance(layer, keras.layers.GroupNormalization)][-1]
      for name, layer in [(n, getattr(model, n))
                          for n in ('netD', 'netA', 'netC', 'netV')] + [
                              ('netD_gn', gn)]:

        def counted(x, call=layer.call, name=name, **kwargs):
          calls[name] = calls.get(name, 0) + 1
          return call(x, **kwargs)
        layer.call = counted
      variables = model.trainable_variables
      forward = {}

      # Called right below, in this iteration: the closure is current.
      def step():  # pylint: disable=cell-var-from-loop
        with tf.GradientTape() as tape:
          loss = model.compute_losses(
              model.decompose(images, training=True))['loss_total']
        forward.update(calls)
        return loss, tape.gradient(loss, variables)
      if xla and remat:  # the baseline stays eager: one compile each
        step = tf.function(step, jit_compile=True)
      loss, grads = step()
      results[remat] = (float(loss), forward, dict(calls), [
          np.zeros(v.shape) if g is None else g.numpy()
          for v, g in zip(variables, grads)])
    loss0, fwd0, all0, grads0 = results[False]
    self.assertEqual(fwd0, {'netD': 1, 'netA': 1, 'netC': 1, 'netV': 1,
                            'netD_gn': 1})
    self.assertEqual(all0, fwd0)
    # netC is recomputed whole only with the perceptual loss (see
    # image_networks); light recomputes layers, not the networks' calls.
    recomputed = {True: {'netD': 2, 'netA': 2, 'netV': 1, 'netD_gn': 2,
                         'netC': 2 if perceptual else 1},
                  'light': dict(fwd0, netD_gn=2)}
    for remat, expected in recomputed.items():
      loss1, fwd1, all1, grads1 = results[remat]
      self.assertAllClose(loss0, loss1, rtol=1e-5)
      self.assertEqual(fwd1, fwd0)
      self.assertEqual(all1, expected, remat)
      for g0, g1 in zip(grads0, grads1):
        if xla:  # XLA sums in another order: equal to float32 rounding
          self.assertLessEqual(np.linalg.norm(g1 - g0),
                               1e-3 * np.linalg.norm(g0))
        else:
          self.assertAllClose(g0, g1, rtol=1e-5, atol=1e-7)


class ConstructionTest(testcase.TestCase):

  def test_config_round_trip(self):
    model = _tiny_model(lam_flip=0.25, border_depth=1.05)
    config = model.get_config()
    clone = Unsup3D.from_config(config)
    self.assertEqual(clone.cfg, model.cfg)
    self.assertEqual(clone.cfg.border_depth, 1.05)
    self.assertEqual(
        [v.shape for v in clone.trainable_variables],
        [v.shape for v in model.trainable_variables])
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(model))
    self.assertIsInstance(revived, Unsup3D)
    self.assertEqual(revived.cfg, model.cfg)

  def test_config_dict_and_derived_defaults(self):
    model = Unsup3D(dict(tiny.TINY, min_depth=0.8, max_depth=1.2))
    self.assertAllClose(model.cfg.border_depth, 0.7 * 1.2 + 0.3 * 0.8)
    self.assertAllClose(model.cfg.rot_center_depth, 1.0)

  def test_with_config_keeps_weights(self):
    keras.utils.set_random_seed(5)
    model = _tiny_model()
    other = model.with_config(lam_flip=1.0)
    self.assertEqual(other.cfg.lam_flip, 1.0)
    images = _synthetic_images(1)
    self.assertAllClose(model.decompose(images)['recon_im'],
                        other.decompose(images)['recon_im'], atol=1e-6)

  def test_from_checkpoint_of_a_saved_directory(self):
    keras.utils.set_random_seed(6)
    model = _tiny_model(lam_flip=0.3)
    directory = os.path.join(self.scratch_dir(), 'run')
    images = _synthetic_images(1)
    saving.save(model, directory)
    restored = Unsup3D.from_checkpoint(directory)
    self.assertEqual(restored.cfg.lam_flip, 0.3)
    self.assert_same_model(restored, model, images, 'from_checkpoint')

  def test_depth_init_scale_scales_only_the_depth_nets_last_kernel(self):
    models = {}
    for scale in (1.0, 0.5, 0.0):
      keras.utils.set_random_seed(7)
      models[scale] = _tiny_model(depth_init_scale=scale)
    last = {s: m.netD.network_layers[-1].kernel.numpy()
            for s, m in models.items()}
    self.assertGreater(np.abs(last[1.0]).max(), 0.0)
    self.assertAllClose(last[0.5], 0.5 * last[1.0], rtol=1e-6, atol=0)
    n = len(models[1.0].weights)
    for i, (a, b) in enumerate(zip(models[1.0].weights, models[0.5].weights)):
      if a is not models[1.0].netD.network_layers[-1].kernel:
        self.assertAllEqual(a.numpy(), b.numpy(), msg=f'{i}/{n} {a.path}')
    # 0: a flat start, the canonical depth one value inside its border.
    depth = models[0.0].canonical(_synthetic_images(2))['canon_depth']
    inner = depth.numpy()[:, 4:-4, 4:-4]
    self.assertAllClose(inner, np.full_like(inner, inner[0, 0, 0]),
                        atol=1e-6)
    self.assertGreater(float(tf.math.reduce_std(
        models[1.0].canonical(_synthetic_images(2))['canon_depth'][
            :, 4:-4, 4:-4])), 1e-3)
    # A checkpoint's weights are loaded as saved, not scaled again.
    directory = os.path.join(self.scratch_dir(), 'half')
    saving.save(models[0.5], directory)
    self.assert_same_model(Unsup3D.from_checkpoint(directory), models[0.5],
                           _synthetic_images(1), 'depth_init_scale')

  def test_from_checkpoint_missing_path(self):
    path = os.path.join(self.scratch_dir(), 'nope.pth')
    with self.assertRaisesRegex(CheckpointError, 'not found.*nope.pth'):
      Unsup3D.from_checkpoint(path)

  def test_from_checkpoint_directory_without_checkpoint(self):
    with self.assertRaisesRegex(CheckpointError, 'No TF checkpoint'):
      Unsup3D.from_checkpoint(self.scratch_dir())

  def test_from_checkpoint_not_a_checkpoint(self):
    path = os.path.join(self.scratch_dir(), 'notes.pth')
    with open(path, 'w') as f:
      f.write('hello\n')
    with self.assertRaisesRegex(CheckpointError,
                                r'cannot read torch checkpoint .*notes\.pth'):
      Unsup3D.from_checkpoint(path)

  def test_from_checkpoint_without_networks(self):
    fixtures.require_reference(self, 'vgg16_features.pth')
    with self.assertRaisesRegex(CheckpointError, 'holds no Unsup3D networks'):
      Unsup3D.from_checkpoint(fixtures.reference_path('vgg16_features.pth'))

  def test_perceptual_loss_without_weights(self):
    model = _tiny_model(lam_perc=1.0)
    out = model.decompose(_synthetic_images(1))
    with self.assertRaises(FileNotFoundError) as caught:
      model.compute_losses(out)
    message = str(caught.exception)
    # Says why, what to get, where to put it, and how to do without.
    for part in ('lam_perc=1', 'vgg16_weights', 'vgg16-397923af.pth',
                 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
                 '`vgg16_weights: PATH`', '`lam_perc: 0`'):
      self.assertIn(part, message)
    self.assertNotIn('None', message)

  def test_perceptual_vgg_is_frozen(self):
    # A VGG16 weights file in torchvision's layout with random weights.
    rng = np.random.default_rng(0)
    state, cin = {}, 3
    for index, cout in ((0, 64), (2, 64), (5, 128), (7, 128), (10, 256),
                        (12, 256), (14, 256)):
      state[f'features.{index}.weight'] = rng.normal(
          0, (2.0 / (9 * cin)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
      state[f'features.{index}.bias'] = np.zeros(cout, np.float32)
      cin = cout
    path = os.path.join(self.scratch_dir(), 'vgg16.pth')
    torch_format.save(state, path)
    keras.utils.set_random_seed(7)
    model = _tiny_model(lam_perc=1.0, vgg16_weights=path)
    n_trainable = len(model.trainable_variables)
    with tf.GradientTape() as tape:
      out = model.decompose(_synthetic_images(1))
      loss = model.compute_losses(out)
    self.assertIsNotNone(model.vgg)
    # The VGG's 7 kernels and biases are not trainable weights of the model.
    self.assertLen(model.trainable_variables, n_trainable)
    self.assertEmpty([v.path for v in model.trainable_variables
                      if v.path.startswith('vgg16/')])
    self.assertLen(model.vgg.non_trainable_variables, 14)
    self.assertNotEqual(float(loss['loss_perc_im']), 0.0)
    # With lam_perc > 0 ConfNet's perceptual sigma head gets a gradient too.
    grads = tape.gradient(loss['loss_total'], model.trainable_variables)
    self.assertTrue(all(g is not None and np.all(np.isfinite(g.numpy()))
                        for g in grads))

  def test_perceptual_loss_with_missing_weights_file(self):
    path = os.path.join(self.scratch_dir(), 'vgg16.pth')
    model = _tiny_model(lam_perc=1.0, vgg16_weights=path)
    out = model.decompose(_synthetic_images(1))
    with self.assertRaisesRegex(FileNotFoundError,
                                r'(?s)vgg16\.pth.*`lam_perc: 0`'):
      model.compute_losses(out)


if __name__ == '__main__':
  tf.test.main()
