"""TFLite export: float32 parity per encoder, float16 / int8 run and report."""

import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from tests import tiny
from tfunsup3d import render
from tfunsup3d.export import tflite

ENCODERS = ('netD', 'netA', 'netL', 'netV', 'netC')
# float16 / int8 of the small nets in the default run; of all in the slow one.
QUANTISED = ('netL', 'netV', 'netC')


class TFLiteEncodersTest(unittest.TestCase):
  """Every network, every variant, converted once for the class."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-tflite-test-')
    cls.model = tiny.tiny_model()
    cls.images = tflite.sample_images(64, count=2, seed=3)
    cls.report = tflite.export_tflite(
        cls.model, cls.tmp, variants=['float32'], names=list(ENCODERS),
        images=cls.images, source='/checkpoints/tiny')
    quantised = tflite.export_tflite(
        cls.model, os.path.join(cls.tmp, 'quantised'),
        variants=['float16', 'int8'], names=list(QUANTISED),
        images=cls.images)
    for name in QUANTISED:
      cls.report['models'][name]['variants'].update(
          quantised['models'][name]['variants'])

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _result(self, name, variant):
    result = self.report['models'][name]['variants'][variant]
    self.assertNotIn('error', result, result.get('error'))
    return result

  def test_float32_matches_keras_per_encoder(self):
    for name in ENCODERS:
      result = self._result(name, 'float32')
      self.assertLess(result['max_abs_error'], 1e-4, name)
      self.assertLess(result['mean_abs_error'], 1e-5, name)

  def test_float32_file_runs_on_its_own(self):
    # Re-run a written file through the interpreter and compare with Keras.
    path = os.path.join(self.tmp, 'netV_float32.tflite')
    got = tflite.run_tflite(path, self.images * 2.0 - 1.0)['output']
    want = self.model.netV(self.images * 2.0 - 1.0).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4)
    got = tflite.run_tflite(os.path.join(self.tmp, 'netC_float32.tflite'),
                            self.images * 2.0 - 1.0)
    sigma_l1, sigma_percl = self.model.netC(self.images * 2.0 - 1.0)
    np.testing.assert_allclose(got['sigma_l1'], sigma_l1.numpy(), atol=1e-4)
    np.testing.assert_allclose(got['sigma_percl'], sigma_percl.numpy(),
                               atol=1e-4)

  def test_float16_and_int8_run_with_sane_errors(self):
    for name in QUANTISED:
      f16 = self._result(name, 'float16')
      i8 = self._result(name, 'int8')
      scale = max(e['reference_abs_max'] for e in f16['errors'].values())
      # Loose sanity bounds: quantised, not broken.
      self.assertLess(f16['max_abs_error'], 0.05 * scale + 1e-3, name)
      self.assertLess(i8['mean_abs_error'], 0.1 * scale + 1e-3, name)
      self.assertTrue(np.isfinite(i8['max_abs_error']), name)

  def test_sizes_shrink_with_quantisation(self):
    for name in QUANTISED:
      f32 = self._result(name, 'float32')['bytes']
      f16 = self._result(name, 'float16')['bytes']
      i8 = self._result(name, 'int8')['bytes']
      self.assertGreater(f32, 1.6 * i8, name)
      self.assertGreater(f32, 1.3 * f16, name)
      self.assertEqual(os.path.getsize(os.path.join(
          self.tmp, 'quantised', f'{name}_int8.tflite')), i8)
    for name in ENCODERS:
      self.assertEqual(os.path.getsize(os.path.join(
          self.tmp, f'{name}_float32.tflite')),
                       self._result(name, 'float32')['bytes'])

  def test_report_file(self):
    with open(os.path.join(self.tmp, tflite.REPORT_FILE)) as f:
      report = json.load(f)
    self.assertEqual(set(report['models']), set(ENCODERS))
    self.assertEqual(report['image_size'], 64)
    self.assertEqual(report['variants'], ['float32'])
    self.assertEqual(report['source_checkpoint'], '/checkpoints/tiny')
    self.assertTrue(report['interpreter'].startswith(('ai_edge_litert',
                                                      'tf.lite')))
    self.assertEqual(report['models']['netC']['outputs'],
                     {'sigma_l1': [64, 64, 2], 'sigma_percl': [16, 16, 2]})
    table = tflite.report_table(report)
    self.assertIn('| netD | float32 |', table)

  def test_latency_is_recorded_with_the_cores(self):
    for name in ENCODERS:
      result = self._result(name, 'float32')
      self.assertGreater(result['seconds_per_image'], 0.0, name)
      self.assertLess(result['seconds_per_image'], 10.0, name)
      self.assertEqual(result['num_threads'], tflite.cpu_threads())
      self.assertNotIn('canon_depth_side', result)  # canonical only

  def test_thread_count_does_not_change_outputs(self):
    path = os.path.join(self.tmp, 'netV_float32.tflite')
    one = tflite.run_tflite(path, self.images * 2 - 1, num_threads=1)
    every = tflite.run_tflite(path, self.images * 2 - 1)
    np.testing.assert_allclose(one['output'], every['output'], atol=1e-6)
    self.assertGreater(
        tflite.seconds_per_image(path, self.images[:1], repeats=2,
                                 num_threads=1), 0.0)

  def test_interpreter_is_ai_edge_litert(self):
    _, name = tflite.interpreter_class()
    self.assertTrue(name.startswith('ai_edge_litert'), name)


class CanonicalHelpersTest(unittest.TestCase):

  def test_canonical_outputs_are_decompose_first_rows(self):
    model = tiny.tiny_model()
    images = tflite.sample_images(64, count=2)
    full = model.decompose(images)
    lite = tflite.canonical_outputs(model, images)
    self.assertEqual(tuple(lite), tflite.CANONICAL_OUTPUTS)
    for key, value in lite.items():
      np.testing.assert_array_equal(value.numpy(), full[key][:2].numpy(),
                                    err_msg=key)

  def test_canonical_outputs_without_confidence(self):
    model = tiny.tiny_model(use_conf_map=False)
    lite = tflite.canonical_outputs(model, tflite.sample_images(64, count=1))
    self.assertEqual(tuple(lite), tflite.CANONICAL_OUTPUTS[:9])

  def test_failures_are_recorded(self):
    model = tiny.tiny_model()
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-tflite-fail-')
    self.addCleanup(shutil.rmtree, tmp, ignore_errors=True)
    error = RuntimeError('no builtin\nlong converter log')
    with mock.patch.object(tflite, 'convert', side_effect=error):
      report = tflite.export_tflite(model, tmp, variants=['float32'],
                                    names=['netL'])
    self.assertEqual(report['models']['netL']['variants']['float32'],
                     {'error': 'conversion failed: RuntimeError: no builtin'})
    with mock.patch.object(tflite, 'run_tflite', side_effect=error):
      report = tflite.export_tflite(model, tmp, variants=['float32'],
                                    names=['netL'])
    result = report['models']['netL']['variants']['float32']
    self.assertEqual(result['error'],
                     'interpreter failed: RuntimeError: no builtin')
    self.assertEqual(result['file'], 'netL_float32.tflite')

  def test_unknown_variant_or_model(self):
    model = tiny.tiny_model()
    with self.assertRaisesRegex(ValueError, 'variant'):
      tflite.export_tflite(model, tempfile.mkdtemp(), variants=['int4'])
    with self.assertRaisesRegex(ValueError, 'netX'):
      tflite.export_tflite(model, tempfile.mkdtemp(), names=['netX'])


@pytest.mark.slow
class TFLiteAllVariantsTest(unittest.TestCase):

  def test_large_nets_quantise(self):
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-tflite-all-')
    try:
      report = tflite.export_tflite(tiny.tiny_model(), tmp,
                                    variants=['float16', 'int8'],
                                    names=['netD', 'netA'])
      for name in ('netD', 'netA'):
        for variant in ('float16', 'int8'):
          result = report['models'][name]['variants'][variant]
          self.assertNotIn('error', result)
          scale = max(e['reference_abs_max']
                      for e in result['errors'].values())
          self.assertLess(result['mean_abs_error'], 0.1 * scale + 1e-3)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.slow
class TFLiteCanonicalTest(unittest.TestCase):
  """The whole canonical decomposition (no rasteriser) in three variants."""

  def test_canonical_converts_and_matches(self):
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-tflite-canon-')
    try:
      model = tiny.tiny_model()
      report = tflite.export_tflite(model, tmp, names=[tflite.CANONICAL])
      entry = report['models'][tflite.CANONICAL]
      self.assertEqual(set(entry['outputs']), {
          'canon_depth', 'canon_albedo', 'canon_normal',
          'canon_diffuse_shading', 'canon_im', 'canon_light_a',
          'canon_light_b', 'canon_light_d', 'view', 'conf_sigma_l1',
          'conf_sigma_l1_flip', 'conf_sigma_percl', 'conf_sigma_percl_flip'})
      f32 = entry['variants']['float32']
      self.assertNotIn('error', f32)
      # Normals difference nearly equal depths: a little above 1e-5.
      self.assertLess(f32['max_abs_error'], 1e-3)
      self.assertLess(f32['errors']['canon_depth']['max_abs_error'], 1e-5)
      self.assertLess(f32['errors']['view']['max_abs_error'], 1e-5)
      # Its 3D in the depth metrics' units: float32 agrees to rounding,
      # the quantised variants less (here random weights; see deploy.md).
      self.assertLess(f32['canon_depth_side'], 1e-5)
      self.assertLess(f32['canon_normal_mad_deg'], 0.05)
      for variant in ('float16', 'int8'):
        self.assertNotIn('error', entry['variants'][variant], variant)
      i8 = entry['variants']['int8']
      self.assertGreater(i8['canon_depth_side'], f32['canon_depth_side'])
      self.assertGreater(i8['canon_normal_mad_deg'],
                         f32['canon_normal_mad_deg'])
      table = tflite.report_table(report)
      self.assertIn(f"{100 * i8['canon_depth_side']:.3g} / "
                    f"{i8['canon_normal_mad_deg']:.3g} |", table)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)

  def test_canonical_agreement_by_hand(self):
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.9, 1.1, (2, 4, 4))
    normal = np.zeros((2, 4, 4, 3))
    normal[..., 2] = 1.0
    same = tflite.canonical_agreement(
        {'canon_depth': 1.5 * depth, 'canon_normal': normal},
        {'canon_depth': depth, 'canon_normal': normal})
    self.assertAlmostEqual(same['canon_depth_side'], 0.0, places=6)
    self.assertAlmostEqual(same['canon_normal_mad_deg'], 0.0, places=6)
    # log depth off by +a on half of each image's pixels and -a on the
    # other half: SIDE a. Normals turned 90 degrees on half the pixels:
    # mean angle 45.
    a = 0.01
    signs = np.where(np.arange(16).reshape(4, 4) % 2 == 0, 1.0, -1.0)
    turned = normal.copy()
    turned[:, :2] = [1.0, 0.0, 0.0]
    agree = tflite.canonical_agreement(
        {'canon_depth': depth * np.exp(a * signs), 'canon_normal': turned},
        {'canon_depth': depth, 'canon_normal': normal})
    self.assertAlmostEqual(agree['canon_depth_side'], a, places=9)
    self.assertAlmostEqual(agree['canon_normal_mad_deg'], 45.0, places=9)

  def test_renderer_normals_convert(self):
    # tf.linalg.cross has no TFLite builtin; the renderer's normals avoid it.
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-tflite-normals-')
    try:
      spec = tf.TensorSpec([1, 16, 16], tf.float32, name='images')
      K = render.intrinsics(16, 10.0)
      tflite._save_for_conversion(  # pylint: disable=protected-access
          lambda d: {'n': render.depth_to_normals(d, K)}, [], spec, tmp)
      self.assertGreater(len(tflite.convert(tmp, 'float32')), 0)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
  unittest.main()
