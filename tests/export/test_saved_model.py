"""SavedModel export: TF Serving layout, signatures, fresh-process parity.

One tiny model is exported once (setUpClass); a fresh Python process that
imports only TensorFlow loads it, runs both signatures and writes the
outputs back; the tests compare them with the Keras model in this process.
"""

import base64
import contextlib
import io
import logging
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from unittest import mock

from absl import logging as absl_logging
import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tests import tiny
from tfunsup3d import config as config_lib
from tfunsup3d.data import images as data_images
from tfunsup3d.export import saved_model

# Outputs that amplify float32 rounding of the depth (see
# assert_outputs_close).
DEPTH_DERIVED = ('canon_normal', 'canon_diffuse_shading', 'canon_im',
                 'recon_im')
DEPLOY_DOC = os.path.join(tiny.REPO_ROOT, 'docs', 'deploy.md')

# Runs in a fresh interpreter: TensorFlow only.
_CHILD = r'''
import json, sys
import numpy as np
import tensorflow as tf
path, inputs_npz, out_npz = sys.argv[1:4]
loaded = tf.saved_model.load(path)
data = np.load(inputs_npz)
res = {}
serve = loaded.signatures['serving_default']
encoded = loaded.signatures['predict_encoded']
for name in ('images', 'png_decoded', 'jpeg_decoded'):
  for k, v in serve(images=tf.constant(data[name])).items():
    res[name + '/' + k] = v.numpy()
for name in ('png', 'jpeg', 'doc_png'):
  blobs = [bytes(b) for b in data[name + '_bytes']]
  for k, v in encoded(image_bytes=tf.constant(blobs)).items():
    res[name + '/' + k] = v.numpy()
np.savez(out_npz, **res)
specs = {}
for sig in ('serving_default', 'predict_encoded'):
  (_, kwargs) = loaded.signatures[sig].structured_input_signature
  specs[sig] = {k: [v.dtype.name, v.shape.as_list()] for k, v in kwargs.items()}
print(json.dumps({'tfunsup3d_imported': 'tfunsup3d' in sys.modules,
                  'input_specs': specs}))
'''


def _doc_blocks():
  """The fenced blocks after `<!-- rest-example:NAME -->` in docs/deploy.md."""
  with open(DEPLOY_DOC, encoding='utf-8') as f:
    text = f.read()
  pattern = re.compile(r'<!-- rest-example:([\w-]+) -->\s*```\w*\n(.*?)```',
                       re.S)
  return {m.group(1): m.group(2) for m in pattern.finditer(text)}


RENAME_NOTICE = 'with unsupported characters which will be renamed'


@contextlib.contextmanager
def _absl_records():
  """The absl logger's records inside the block, at INFO verbosity."""
  records = []
  handler = logging.Handler()
  handler.emit = records.append
  logger = absl_logging.get_absl_logger()
  verbosity = absl_logging.get_verbosity()
  absl_logging.set_verbosity(absl_logging.INFO)
  logger.addHandler(handler)
  try:
    yield records
  finally:
    logger.removeHandler(handler)
    absl_logging.set_verbosity(verbosity)


class SavedModelExportTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-sm-test-')
    cls.model = tiny.tiny_model()
    with _absl_records() as cls.export_log:
      cls.path = saved_model.export_saved_model(
          cls.model, os.path.join(cls.tmp, 'saved_models'), 'tiny',
          source='/checkpoints/tiny')
    rng = np.random.RandomState(1)
    cls.images = rng.rand(2, 64, 64, 3).astype(np.float32)
    # A non-square picture as PNG and JPEG; decoded and resized by the data
    # pipeline (an independent code path) for serving_default.
    picture = tiny.face_like_image(90, 120)
    cls.png_path = tiny.write_image(os.path.join(cls.tmp, 'face.png'), picture)
    cls.jpeg_path = tiny.write_image(os.path.join(cls.tmp, 'face.jpg'),
                                     picture, quality=95)
    cls.png_decoded = data_images.load_image_file(cls.png_path, 64)[None]
    cls.jpeg_decoded = data_images.load_image_file(cls.jpeg_path, 64)[None]
    blocks = _doc_blocks()
    cls.doc_blocks = blocks
    doc_request = json.loads(blocks['predict_encoded'])
    doc_png = base64.b64decode(doc_request['instances'][0]['b64'])
    with open(cls.png_path, 'rb') as f:
      png_bytes = f.read()
    with open(cls.jpeg_path, 'rb') as f:
      jpeg_bytes = f.read()
    inputs_npz = os.path.join(cls.tmp, 'inputs.npz')
    np.savez(inputs_npz, images=cls.images, png_decoded=cls.png_decoded,
             jpeg_decoded=cls.jpeg_decoded,
             png_bytes=np.array([png_bytes], dtype=object),
             jpeg_bytes=np.array([jpeg_bytes, jpeg_bytes], dtype=object),
             doc_png_bytes=np.array([doc_png], dtype=object))
    out_npz = os.path.join(cls.tmp, 'outputs.npz')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
    env.pop('PYTHONPATH', None)
    # allow_pickle is needed for the object arrays of bytes.
    child = _CHILD.replace('np.load(inputs_npz)',
                           'np.load(inputs_npz, allow_pickle=True)')
    cls.child = subprocess.run(
        [sys.executable, '-c', child, cls.path, inputs_npz, out_npz],
        cwd=cls.tmp, env=env, capture_output=True, text=True, timeout=600,
        check=False)
    cls.child_info = None
    cls.child_out = None
    if cls.child.returncode == 0:
      cls.child_info = json.loads(cls.child.stdout.strip().splitlines()[-1])
      with np.load(out_npz) as data:
        cls.child_out = {k: data[k] for k in data.files}

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _child(self):
    self.assertEqual(self.child.returncode, 0, self.child.stderr[-3000:])
    return self.child_out

  def _keras(self, images):
    out = saved_model.serving_outputs(self.model, tf.constant(images))
    return {k: v.numpy() for k, v in out.items()}

  def assert_outputs_close(self, got, want, key, sensitive=('recon_im',)):
    """1e-5, but max 2e-4 / mean 2e-6 for the `sensitive` outputs.

    Outputs computed from depth by finite differences (normals, shading,
    canonical image: x ~f/2 = 180) or by reprojection (recon_im: a depth
    change dz moves its sample by ~f sin(yaw) dz pixels, f = 360 at 64 px)
    turn the ~1 ulp by which float32 kernels may round the depth differently
    (another batch size or process) into up to ~1e-4.
    """
    self.assertEqual(got.shape, want.shape, key)
    self.assertTrue(np.all(np.isfinite(got)), key)
    if key in sensitive:
      diff = np.abs(got - want)
      self.assertLess(float(diff.max()), 2e-4, key)
      self.assertLess(float(diff.mean()), 2e-6, key)
    else:
      np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, err_msg=key)

  def test_tf_serving_layout_and_metadata_asset(self):
    self.assertEqual(self.path, os.path.join(self.tmp, 'saved_models', 'tiny',
                                             '1'))
    for name in ('saved_model.pb', 'variables', 'assets/tfunsup3d.json'):
      self.assertTrue(os.path.exists(os.path.join(self.path, name)), name)
    leftovers = [d for d in os.listdir(os.path.dirname(self.path))
                 if d.startswith('.tmp')]
    self.assertEqual(leftovers, [])
    meta = saved_model.read_metadata(self.path)
    self.assertEqual(meta['image_size'], 64)
    self.assertEqual(meta['source_checkpoint'], '/checkpoints/tiny')
    self.assertEqual(meta['config']['nf_encoder'], 4)
    self.assertEqual(meta['tfunsup3d_version'],
                     __import__('tfunsup3d').__version__)
    self.assertEqual(meta['tensorflow_version'], tf.__version__)
    self.assertEqual(set(meta['signatures']), set(saved_model.SIGNATURES))
    self.assertEqual(
        set(meta['signatures']['serving_default']['outputs']),
        set(saved_model.OUTPUT_KEYS))

  def test_saved_model_cli_lists_both_signatures(self):
    cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
    if not os.path.exists(cli):
      self.skipTest(f'saved_model_cli not found beside {sys.executable}')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
    proc = subprocess.run([cli, 'show', '--all', '--dir', self.path],
                          capture_output=True, text=True, env=env,
                          timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr[-2000:])
    out = proc.stdout
    for sig in saved_model.SIGNATURES:
      self.assertIn(f"signature_def['{sig}']", out)
    self.assertRegex(out, r"inputs\['images'\] tensor_info:\s+dtype: DT_FLOAT"
                          r"\s+shape: \(-1, 64, 64, 3\)")
    self.assertRegex(out, r"inputs\['image_bytes'\] tensor_info:\s+dtype: "
                          r"DT_STRING\s+shape: \(-1\)")
    for key in saved_model.OUTPUT_KEYS:
      self.assertIn(f"outputs['{key}']", out)
    self.assertIn('tensorflow/serving/predict', out)

  def test_fresh_process_loads_without_tfunsup3d(self):
    self._child()
    self.assertFalse(self.child_info['tfunsup3d_imported'])
    self.assertEqual(self.child_info['input_specs'], {
        'serving_default': {'images': ['float32', [None, 64, 64, 3]]},
        'predict_encoded': {'image_bytes': ['string', [None]]}})

  def test_fresh_process_reproduces_keras_outputs(self):
    out = self._child()
    keras_out = self._keras(self.images)
    self.assertEqual(set(keras_out), set(saved_model.OUTPUT_KEYS))
    # Every output to 1e-5, except recon_im (see assert_outputs_close):
    # graph-mode kernels may round the depth by ~1 ulp differently, which
    # moves recon_im of this random, pixel-noisy texture by up to ~1e-4
    # (mean < 1e-6). Keras itself differs that much between a batch of 2
    # and single images (checked below).
    for key, want in keras_out.items():
      self.assert_outputs_close(out['images/' + key], want, key)
    single = self._keras(self.images[:1])
    self.assertLess(float(np.abs(single['recon_im'] -
                                 keras_out['recon_im'][:1]).max()), 2e-4)

  def test_outputs_are_the_first_b_rows(self):
    out = self._child()
    full = self.model.decompose(self.images)
    np.testing.assert_allclose(out['images/view'], full['view'][:2].numpy(),
                               atol=1e-6)
    np.testing.assert_allclose(out['images/light_d'],
                               full['canon_light_d'][:2].numpy(), atol=1e-6)
    self.assertEqual(out['images/canon_depth'].shape, (2, 64, 64))
    self.assertEqual(out['images/conf_sigma_percl'].shape, (2, 16, 16, 1))

  def test_predict_encoded_png_matches_serving_default(self):
    out = self._child()
    for key in saved_model.OUTPUT_KEYS:
      self.assert_outputs_close(out['png/' + key], out['png_decoded/' + key],
                                key)

  def test_predict_encoded_jpeg_matches_serving_default(self):
    out = self._child()
    for key in saved_model.OUTPUT_KEYS:
      got = out['jpeg/' + key]
      self.assertEqual(got.shape[0], 2, key)  # batch of two strings.
      # A batch of 2 against a batch of 1: kernels may round differently.
      self.assert_outputs_close(got[:1], out['jpeg_decoded/' + key], key,
                                DEPTH_DERIVED)
      self.assert_outputs_close(got[1:], got[:1], key, DEPTH_DERIVED)

  def test_jpeg_decodes_close_to_png(self):
    # Inputs only: a random network amplifies JPEG artefacts arbitrarily.
    np.testing.assert_allclose(self.jpeg_decoded, self.png_decoded, atol=0.08)
    self.assertLess(float(np.abs(self.jpeg_decoded -
                                 self.png_decoded).mean()), 0.01)

  def test_docs_rest_examples_match_the_signatures(self):
    out = self._child()
    specs = self.child_info['input_specs']
    # predict_encoded: a literal JSON body.
    body = json.loads(self.doc_blocks['predict_encoded'])
    self.assertEqual(body['signature_name'], 'predict_encoded')
    self.assertEqual(list(specs['predict_encoded']), ['image_bytes'])
    self.assertIsInstance(body['instances'], list)
    for instance in body['instances']:
      self.assertEqual(set(instance), {'b64'})
      blob = base64.b64decode(instance['b64'])
      with Image.open(io.BytesIO(blob)) as im:
        self.assertEqual(im.format, 'PNG')
    self.assertEqual(out['doc_png/canon_depth'].shape, (1, 64, 64))
    # serving_default: the doc's Python snippet builds the body from a file.
    snippet = self.doc_blocks['serving_default']
    namespace = {}
    cwd = os.getcwd()
    try:
      os.chdir(self.tmp)
      exec(compile(snippet, 'docs/deploy.md', 'exec'), namespace)  # pylint: disable=exec-used
      with open(os.path.join(self.tmp, 'request.json'), encoding='utf-8') as f:
        body = json.load(f)
    finally:
      os.chdir(cwd)
    self.assertEqual(set(body), {'signature_name', 'instances'})
    self.assertEqual(body['signature_name'], 'serving_default')
    dtype, shape = specs['serving_default']['images']
    instances = np.asarray(body['instances'])
    self.assertEqual(dtype, 'float32')
    self.assertEqual(instances.dtype.kind, 'f')
    self.assertEqual(list(instances.shape[1:]), shape[1:])
    self.assertGreaterEqual(instances.min(), 0.0)
    self.assertLessEqual(instances.max(), 1.0)
    # The same body as the library's helper makes.
    helper = saved_model.rest_request('serving_default', instances)
    self.assertEqual(set(helper), set(body))
    np.testing.assert_allclose(np.asarray(helper['instances']), instances,
                               atol=1e-7)

  def test_next_version_and_existing_version(self):
    base = os.path.join(self.tmp, 'saved_models')
    self.assertEqual(saved_model.next_version(os.path.join(base, 'tiny')), 2)
    for d in ('3', '10', 'tmp', '.tmp-4-x'):
      os.makedirs(os.path.join(self.tmp, 'versions', d))
    self.assertEqual(
        saved_model.next_version(os.path.join(self.tmp, 'versions')), 11)
    self.assertEqual(
        saved_model.next_version(os.path.join(self.tmp, 'missing')), 1)
    with self.assertRaisesRegex(FileExistsError, 'exists'):
      saved_model.export_saved_model(self.model, base, 'tiny', version=1)
    with self.assertRaisesRegex(ValueError, 'name'):
      saved_model.export_saved_model(self.model, base, 'bad/name')
    for version in (-1, 2 ** 63, True, 1.0):
      with self.assertRaisesRegex(ValueError, r'version must be an int in '
                                  r'\[0, 2\^63 - 1\]'):
        saved_model.export_saved_model(self.model, base, 'tiny',
                                       version=version)
    with self.assertRaisesRegex(ValueError, 'encoded_crop'):
      saved_model.export_saved_model(self.model, base, 'tiny', version=7,
                                     encoded_crop='diagonal')

  def test_a_failed_export_leaves_no_folder_behind(self):
    full = tf.errors.ResourceExhaustedError(None, None,
                                            'x; No space left on device')
    base = os.path.join(self.tmp, 'full_disk')
    with mock.patch.object(tf.saved_model, 'save', side_effect=full):
      with self.assertRaises(tf.errors.ResourceExhaustedError):
        saved_model.export_saved_model(self.model, base, 'first')
      self.assertFalse(os.path.exists(base))  # Not even the base it made.
      os.makedirs(os.path.join(base, 'kept', '1'))
      with self.assertRaises(tf.errors.ResourceExhaustedError):
        saved_model.export_saved_model(self.model, base, 'kept')
    self.assertEqual(os.listdir(os.path.join(base, 'kept')), ['1'])

  def test_export_logs_no_capture_renames(self):
    self.assertEqual([r.getMessage()[:80] for r in self.export_log
                      if RENAME_NOTICE in r.getMessage()], [])


class CaptureRenameNoticeTest(unittest.TestCase):
  """TF's notice on a signature that captures a variable, with the filter
  the export uses and without it (so the filter is not dead code)."""

  def _notices(self, context):
    module = tf.Module()
    module.v = tf.Variable(2.0)
    module.f = tf.function(lambda x: x * module.v,
                           input_signature=[tf.TensorSpec([], tf.float32)])
    with _absl_records() as records, context:
      tf.saved_model.save(module, tempfile.mkdtemp(),
                          signatures=module.f.get_concrete_function())
    return [r for r in records if RENAME_NOTICE in r.getMessage()]

  def test_tf_logs_it_and_the_export_filter_drops_only_it(self):
    self.assertEqual(len(self._notices(contextlib.nullcontext())), 1)
    self.assertEqual(self._notices(saved_model._quiet_capture_renames()), [])
    with _absl_records() as records, saved_model._quiet_capture_renames():
      absl_logging.info('another message')
    self.assertEqual([r.getMessage() for r in records], ['another message'])


class EncodedPreprocessingTest(unittest.TestCase):
  """The in-graph decode/crop/resize equals the data pipeline's."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-sm-pre-')
    picture = tiny.face_like_image(101, 130)
    cls.png = tiny.write_image(os.path.join(cls.tmp, 'a.png'), picture)
    cls.jpeg = tiny.write_image(os.path.join(cls.tmp, 'a.jpg'), picture,
                                quality=90)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def _decode(self, path, crop):
    with open(path, 'rb') as f:
      blob = f.read()
    return saved_model.decode_images(tf.constant([blob]), 64, crop)[0].numpy()

  def test_matches_load_image_file(self):
    for path in (self.png, self.jpeg):
      for crop in (None, 71, 80, [5, 20, 90, 96]):
        want = data_images.load_image_file(path, 64, crop)
        np.testing.assert_allclose(self._decode(path, crop), want, atol=1e-6,
                                   err_msg=f'{path} crop={crop}')

  def test_square_crop(self):
    got = self._decode(self.png, 'square')
    want = data_images.load_image_file(self.png, 64, [0, 14, 101, 101])
    np.testing.assert_allclose(got, want, atol=1e-6)

  def test_crop_larger_than_image_fails_at_run_time(self):
    with self.assertRaises(tf.errors.InvalidArgumentError):
      self._decode(self.png, 120)

  def test_output_shapes_without_confidence(self):
    cfg = config_lib.Config(use_conf_map=False).resolved()
    shapes = saved_model.output_shapes(cfg)
    self.assertNotIn('conf_sigma_l1', shapes)
    self.assertEqual(shapes['canon_albedo'], [None, 64, 64, 3])

  def test_rest_request_helper(self):
    body = saved_model.rest_request('predict_encoded', image_bytes=b'\x89PNG')
    self.assertEqual(body, {'signature_name': 'predict_encoded',
                            'instances': [{'b64': 'iVBORw=='}]})
    with self.assertRaises(ValueError):
      saved_model.rest_request('nope')


@pytest.mark.slow
class NoConfidenceExportTest(unittest.TestCase):

  def test_signature_without_confidence_outputs(self):
    model = tiny.tiny_model(use_conf_map=False)
    module = saved_model.ServingModule(model)
    outputs = module.signatures()['serving_default'].structured_outputs
    self.assertEqual(set(outputs),
                     set(saved_model.OUTPUT_KEYS) -
                     set(saved_model.CONF_OUTPUT_KEYS))


if __name__ == '__main__':
  unittest.main()
