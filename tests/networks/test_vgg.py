"""Tests for tfunsup3d.networks.vgg (VGG16 relu3_3 features, the `imagenet`
download) and reference.load_vgg16_weights (local and downloaded files).

The download tests serve a small fake `.h5` from a `file://` origin through
the real `keras.utils.get_file` and its hash check; nothing reaches the
network."""

import ast
import glob
import hashlib
import os
import shutil
import tempfile
from unittest import mock

import keras
import numpy as np
import tensorflow as tf

from tests import testcase
from tests.fixtures import REFERENCE_DIR
from tests.fixtures import require_reference
from tfunsup3d.convert import reference
from tfunsup3d.convert import torch_format
from tfunsup3d.convert.reference import load_vgg16_weights
from tfunsup3d.networks import vgg as vgg_lib
from tfunsup3d.networks.vgg import VGG16Features


def _tempdir(test):
  path = tempfile.mkdtemp(prefix='test_vgg_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _images(batch=2, size=32, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _random_torchvision_state(seed=0):
  """torchvision `vgg16().state_dict()` keys (OIHW) up to features.28."""
  rng = np.random.default_rng(seed)
  state, cin = {}, 3
  widths = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512,
            'M', 512, 512, 512]
  index = 0
  for width in widths:
    if width == 'M':
      index += 1
      continue
    std = np.sqrt(2.0 / (9 * cin))
    state[f'features.{index}.weight'] = rng.normal(
        0, std, (width, cin, 3, 3)).astype(np.float32)
    state[f'features.{index}.bias'] = rng.normal(
        0, 0.1, (width,)).astype(np.float32)
    cin, index = width, index + 2
  state['classifier.0.weight'] = np.zeros((4, 8), np.float32)
  return state


def _write_legacy_h5(path, state):
  """Writes `state` (torchvision keys) as Keras' legacy notop .h5 layout."""
  import h5py  # pylint: disable=g-import-not-at-top
  with h5py.File(path, 'w') as f:
    f.attrs['layer_names'] = [b'input_1'] + [
        name.encode() for _, _, name in vgg_lib.CONV_LAYERS]
    f.create_group('input_1')
    for index, _, name in vgg_lib.CONV_LAYERS:
      group = f.create_group(name)
      group.attrs['weight_names'] = [f'{name}/kernel:0'.encode(),
                                     f'{name}/bias:0'.encode()]
      group[f'{name}/kernel:0'] = (
          state[f'features.{index}.weight'].transpose(2, 3, 1, 0))
      group[f'{name}/bias:0'] = state[f'features.{index}.bias']
  return path


def _md5(path):
  with open(path, 'rb') as f:
    return hashlib.md5(f.read()).hexdigest()


class VGG16FeaturesTest(testcase.TestCase):

  def test_output_shape_and_relu(self):
    net = VGG16Features().build_for(64)
    out = net(_images(size=64))
    self.assertEqual(out.shape, (2, 16, 16, 256))
    self.assertAllGreaterEqual(out, 0.0)

  def test_network_caffe_convention_config(self):
    net = self.run_network_test(
        VGG16Features, dict(input_convention='caffe', name='vgg'), _images(),
        expected_output_shape=(2, 8, 8, 256))
    config = net.get_config()
    self.assertEqual(config['input_convention'], 'caffe')
    self.assertFalse(config['trainable'])

  def test_layers_are_torchvision_features_0_to_15(self):
    net = VGG16Features().build_for()
    self.assertEqual(
        [l.name for l in net.layers],
        ['features_0_conv', 'features_1_relu', 'features_2_conv',
         'features_3_relu', 'features_4_pool', 'features_5_conv',
         'features_6_relu', 'features_7_conv', 'features_8_relu',
         'features_9_pool', 'features_10_conv', 'features_11_relu',
         'features_12_conv', 'features_13_relu', 'features_14_conv',
         'features_15_relu'])
    convs = [l for l in net.layers if isinstance(l, keras.layers.Conv2D)]
    self.assertTrue(all(l.use_bias for l in convs))
    self.assertEqual([l.filters for l in convs],
                     [64, 64, 128, 128, 256, 256, 256])

  def test_frozen_by_default(self):
    net = VGG16Features().build_for()
    self.assertFalse(net.trainable)
    self.assertEmpty(net.trainable_weights)
    x = tf.constant(_images())
    with tf.GradientTape() as tape:
      tape.watch(x)
      loss = tf.reduce_sum(net(x))
    self.assertGreater(float(tf.reduce_sum(tf.abs(tape.gradient(loss, x)))),
                       0.0)

  def test_normalize_torch_convention(self):
    net = VGG16Features()
    x = np.array([[[[-1.0, 0.0, 1.0]]]], np.float32)
    expected = [(0.0 - 0.485) / 0.229, (0.5 - 0.456) / 0.224,
                (1.0 - 0.406) / 0.225]
    self.assertAllClose(net.normalize(x)[0, 0, 0], expected, atol=1e-6)

  def test_normalize_caffe_convention(self):
    net = VGG16Features(input_convention='caffe')
    x = np.array([[[[-1.0, 0.0, 1.0]]]], np.float32)  # R=0, G=127.5, B=255.
    expected = [255.0 - 103.939, 127.5 - 116.779, 0.0 - 123.68]  # B, G, R.
    self.assertAllClose(net.normalize(x)[0, 0, 0], expected, atol=1e-4)

  def test_bad_args_raise(self):
    with self.assertRaisesRegex(ValueError, 'Received: input_convention='):
      VGG16Features(input_convention='tf')
    with self.assertRaisesRegex(ValueError, 'Received: input_shape='):
      VGG16Features().build((None, 32, 32, 1))


class MaxPool2x2Test(tf.test.TestCase):

  def test_values_and_gradient_after_relu_match_keras_max_pooling(self):
    z = tf.random.stateless_normal([3, 9, 10, 5], seed=(1, 2))  # odd H
    w = tf.random.stateless_normal([3, 4, 5, 5], seed=(3, 4))
    results = []
    for layer in (keras.layers.MaxPooling2D(2), vgg_lib.MaxPool2x2()):
      with tf.GradientTape() as tape:
        tape.watch(z)
        y = layer(tf.nn.relu(z))
        loss = tf.reduce_sum(y * w)
      results.append((y, tape.gradient(loss, z)))
    self.assertEqual(vgg_lib.MaxPool2x2().compute_output_shape((None, 9, 10, 5)),
                     (None, 4, 5, 5))
    self.assertAllEqual(results[1][0], results[0][0])
    self.assertAllEqual(results[1][1], results[0][1])  # ties only at ReLU 0
    unknown_size = tf.function(
        vgg_lib.MaxPool2x2(),
        input_signature=[tf.TensorSpec([None, None, None, 5])])
    self.assertAllEqual(unknown_size(tf.nn.relu(z)), results[0][0])

  def test_ties_share_the_gradient_as_reduce_max(self):
    # Small integers: many windows with tied positive maxima. The gradient
    # is reduce_max's (shared among the ties; three-way ties may differ in
    # the last bit), eagerly and traced.
    x = tf.constant(np.random.default_rng(0).integers(
        0, 3, (4, 16, 16, 8)).astype(np.float32))
    w = tf.random.stateless_normal([4, 8, 8, 8], seed=(7, 8))

    def reduce_max_pool(v):
      return tf.reduce_max(tf.reshape(v, (-1, 8, 2, 8, 2, 8)), (2, 4))

    def grad(x, pool):
      with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(pool(x) * w)
      return tape.gradient(loss, x)
    expected = grad(x, reduce_max_pool)
    self.assertGreater(np.mean(expected.numpy() != 0), 0.3)  # ties: shared
    for fn in (grad, tf.function(grad)):
      self.assertAllClose(fn(x, vgg_lib.MaxPool2x2()), expected, rtol=2e-7,
                          atol=0.0)

  def test_no_scatter_in_the_xla_gradient(self):
    x = tf.random.stateless_normal([2, 8, 8, 4], seed=(5, 6))

    def hlo_of_gradient(pool):
      @tf.function(jit_compile=True)
      def grad(x):
        with tf.GradientTape() as tape:
          tape.watch(x)
          loss = tf.reduce_sum(pool(tf.nn.relu(x)) ** 2)
        return tape.gradient(loss, x)
      return grad.experimental_get_compiler_ir(x)(stage='optimized_hlo')
    with tf.device('/CPU:0'):
      self.assertIn(' scatter(', hlo_of_gradient(
          keras.layers.MaxPooling2D(2)))  # what MaxPool2x2 avoids
      self.assertNotIn(' scatter(', hlo_of_gradient(vgg_lib.MaxPool2x2()))


class LoadVGG16WeightsTest(tf.test.TestCase):

  def test_missing_file_says_what_to_do(self):
    path = os.path.join(_tempdir(self), 'vgg16-397923af.pth')
    for bad in (path, None):
      with self.assertRaises(FileNotFoundError) as ctx:
        load_vgg16_weights(VGG16Features(), bad)
      message = str(ctx.exception)
      self.assertIn(repr(bad), message)
      for hint in ('vgg16-397923af.pth',
                   'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5',
                   'vgg16_weights: PATH', 'lam_perc: 0'):
        self.assertIn(hint, message)

  def test_torchvision_pth_extra_keys_ignored(self):
    state = _random_torchvision_state()
    path = os.path.join(_tempdir(self), 'vgg16.pth')
    torch_format.save(state, path)
    net = load_vgg16_weights(VGG16Features(input_convention='caffe'), path)
    self.assertEqual(net.input_convention, 'torch')
    got = reference.state_dict_from_model(net, 'vgg')
    self.assertLen(got, 14)
    for key, value in got.items():
      self.assertAllEqual(value, state[key])

  def test_pth_without_vgg_keys_raises(self):
    path = os.path.join(_tempdir(self), 'other.pth')
    torch_format.save({'network.0.weight': np.zeros((2, 3, 4, 4), np.float32)},
                      path)
    with self.assertRaisesRegex(ValueError, 'features.0.weight'):
      load_vgg16_weights(VGG16Features(), path)

  def test_keras_weights_h5_matches_keras_applications(self):
    keras_vgg = keras.applications.VGG16(include_top=False, weights=None,
                                         input_shape=(32, 32, 3))
    path = os.path.join(_tempdir(self), 'vgg16.weights.h5')
    keras_vgg.save_weights(path)
    net = load_vgg16_weights(VGG16Features(), path)
    self.assertEqual(net.input_convention, 'caffe')
    relu3_3 = keras.Model(keras_vgg.input,
                          keras_vgg.get_layer('block3_conv3').output)
    images01 = (_images() + 1) / 2
    want = relu3_3(keras.applications.vgg16.preprocess_input(images01 * 255))
    got = net(images01 * 2 - 1)
    self.assertAllClose(got, want, atol=1e-3 * float(tf.reduce_max(want)))

  def test_legacy_keras_h5_layout(self):
    state = _random_torchvision_state(seed=3)
    path = _write_legacy_h5(os.path.join(_tempdir(self), 'vgg16_notop.h5'),
                            state)
    net = load_vgg16_weights(VGG16Features(), path)
    self.assertEqual(net.input_convention, 'caffe')
    got = reference.state_dict_from_model(net, 'vgg')
    for key, value in got.items():
      self.assertAllEqual(value, state[key])

  def test_h5_missing_layer_raises(self):
    import h5py  # pylint: disable=g-import-not-at-top
    path = os.path.join(_tempdir(self), 'partial.h5')
    with h5py.File(path, 'w') as f:
      f['block1_conv1/block1_conv1/kernel:0'] = np.zeros((3, 3, 3, 64))
      f['block1_conv1/block1_conv1/bias:0'] = np.zeros((64,))
    with self.assertRaisesRegex(ValueError, 'block1_conv2'):
      load_vgg16_weights(VGG16Features(), path)

  def test_h5_that_is_no_hdf5_raises_naming_it(self):
    path = os.path.join(_tempdir(self), 'w.h5')
    with open(path, 'w') as f:
      f.write('not hdf5')
    with self.assertRaisesRegex(ValueError, f'Cannot read the VGG16 weights '
                                f'{path} as HDF5'):
      load_vgg16_weights(VGG16Features(), path)

  def test_reference_fixture_features(self):
    require_reference(self)
    net = load_vgg16_weights(
        VGG16Features(), os.path.join(REFERENCE_DIR, 'vgg16_features.pth'))
    with np.load(os.path.join(REFERENCE_DIR, 'inputs.npz')) as inputs:
      images = inputs['images_nhwc'].astype(np.float32) * 2 - 1
    with np.load(os.path.join(REFERENCE_DIR, 'ref_outputs.npz')) as ref:
      want = ref['vgg_relu3_3_input'].transpose(0, 2, 3, 1)
    self.assertAllClose(net(images), want, rtol=0, atol=1e-4)


class NoImportCycleTest(tf.test.TestCase):

  def test_networks_import_nothing_from_convert(self):
    folder = os.path.dirname(vgg_lib.__file__)
    imported = []
    for path in glob.glob(os.path.join(folder, '*.py')):
      with open(path, encoding='utf-8') as f:
        tree = ast.parse(f.read())
      for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
          imported.append((path, node.module))
        elif isinstance(node, ast.Import):
          imported += [(path, alias.name) for alias in node.names]
    self.assertIn((vgg_lib.__file__, 'keras'), imported)  # the walk works.
    self.assertEmpty([(p, m) for p, m in imported
                      if m.startswith('tfunsup3d.convert')])


class ImagenetDownloadTest(tf.test.TestCase):
  """`vgg16_weights: imagenet` through keras.utils.get_file, served from a
  local `file://` origin (never the network)."""

  def setUp(self):
    super().setUp()
    root = _tempdir(self)
    self.state = _random_torchvision_state(seed=5)
    os.makedirs(os.path.join(root, 'origin'))
    self.served = _write_legacy_h5(
        os.path.join(root, 'origin', vgg_lib.KERAS_NOTOP_FILE), self.state)
    self.origin = 'file://' + self.served
    self.md5 = _md5(self.served)
    self.cache = os.path.join(root, 'keras_home')
    self.cached = os.path.join(self.cache, 'models', vgg_lib.KERAS_NOTOP_FILE)

  def test_constants_are_keras_applications(self):
    from keras.src.applications import vgg16  # pylint: disable=g-import-not-at-top
    self.assertEqual(vgg_lib.KERAS_NOTOP_URL, vgg16.WEIGHTS_PATH_NO_TOP)
    self.assertEqual(vgg_lib.KERAS_NOTOP_FILE,
                     os.path.basename(vgg16.WEIGHTS_PATH_NO_TOP))
    import inspect  # pylint: disable=g-import-not-at-top
    self.assertIn(f'file_hash="{vgg_lib.KERAS_NOTOP_MD5}"',
                  inspect.getsource(vgg16.VGG16))

  def test_downloads_once_into_the_cache_and_loads(self):
    net = load_vgg16_weights(VGG16Features(), 'imagenet', origin=self.origin,
                             file_hash=self.md5, cache_dir=self.cache)
    self.assertTrue(os.path.isfile(self.cached))
    self.assertEqual(_md5(self.cached), self.md5)
    self.assertEqual(net.input_convention, 'caffe')
    got = reference.state_dict_from_model(net, 'vgg')
    for key, value in got.items():
      self.assertAllEqual(value, self.state[key])
    # Second time: the cached file (hash still right) is used; the origin
    # is gone, so any download attempt would fail.
    os.remove(self.served)
    path = vgg_lib.weights_file('imagenet', origin=self.origin,
                                file_hash=self.md5, cache_dir=self.cache)
    self.assertEqual(path, self.cached)

  def test_wrong_hash_is_refused(self):
    wrong = '0' * 32
    with self.assertRaises(FileNotFoundError) as ctx:
      vgg_lib.weights_file('imagenet', origin=self.origin, file_hash=wrong,
                           cache_dir=self.cache)
    message = str(ctx.exception)
    self.assertIn('hash', message)
    self.assertIn(self.cached, message)

  def test_offline_message_says_what_to_place_where(self):
    missing = 'file://' + os.path.join(_tempdir(self), 'nowhere.h5')
    with self.assertRaises(FileNotFoundError) as ctx:
      vgg_lib.weights_file('imagenet', origin=missing, file_hash=self.md5,
                           cache_dir=self.cache)
    message = str(ctx.exception)
    self.assertNotIn('\n', message)
    for part in (missing, self.cached, '`vgg16_weights: imagenet`',
                 '`vgg16_weights: PATH`', '`lam_perc: 0`'):
      self.assertIn(part, message)
    self.assertFalse(os.path.exists(self.cached))

  def test_default_cache_is_keras_home(self):
    with mock.patch.dict(os.environ, {'KERAS_HOME': self.cache}):
      path = vgg_lib.weights_file('imagenet', origin=self.origin,
                                  file_hash=self.md5)
    self.assertEqual(path, self.cached)
    self.assertEqual(_md5(path), self.md5)
    home = os.path.join(os.path.expanduser('~'), '.keras')
    with mock.patch.dict(os.environ, {'KERAS_HOME': ''}):
      self.assertEqual(vgg_lib.keras_cache_dir(), home)


if __name__ == '__main__':
  tf.test.main()
