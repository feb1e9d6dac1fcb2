"""Tests for tfunsup3d.networks.encoder (Encoder: netL, netV)."""

import functools

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testcase
from tests import torch_ops
from tfunsup3d.networks import encoder as encoder_lib
from tfunsup3d.networks.ed_deconv import EDDeconv
from tfunsup3d.networks.encoder import Encoder

_images = testcase.images


class EncoderTest(testcase.TestCase):

  def test_network_and_tanh_range(self):
    x = _images(batch=3)
    net = self.run_network_test(Encoder, dict(cout=6, nf=8), x,
                                expected_output_shape=(3, 6))
    self.assertAllInRange(net(x), -1.0, 1.0)

  def test_network_without_activation(self):
    net = self.run_network_test(
        Encoder, dict(cout=6, nf=8, activation=None, name='netV'), _images(),
        expected_output_shape=(2, 6))
    self.assertEqual({k: net.get_config()[k] for k in ('cout', 'nf',
                                                       'activation')},
                     {'cout': 6, 'nf': 8, 'activation': None})

  def test_no_activation_gives_raw_outputs(self):
    net = Encoder(cout=4, nf=8, activation=None).build_for(64)
    self.assertNotIn('network_11_tanh', [l.name for l in net.layers])
    for layer in net.layers:
      if isinstance(layer, keras.layers.Conv2D):
        layer.kernel.assign(tf.ones_like(layer.kernel))
    out = net(np.ones((1, 64, 64, 3), np.float32))
    self.assertGreater(float(tf.reduce_min(out)), 1.0)

  def test_weights_match_reference_layer_graph(self):
    nf, cout = 8, 4
    net = Encoder(cout=cout, nf=nf).build_for(64)
    convs = [l for l in net.layers if isinstance(l, keras.layers.Conv2D)]
    self.assertEqual([l.name for l in convs],
                     [f'network_{i}_conv' for i in (0, 2, 4, 6, 8, 10)])
    self.assertEqual([tuple(l.kernel.shape) for l in convs],
                     [(4, 4, 3, nf), (4, 4, nf, 2 * nf),
                      (4, 4, 2 * nf, 4 * nf), (4, 4, 4 * nf, 8 * nf),
                      (4, 4, 8 * nf, 8 * nf), (1, 1, 8 * nf, cout)])
    self.assertFalse(any(l.use_bias for l in convs))
    self.assertLen(net.weights, 6)

  def test_conv4x4_s2_is_torch_padding_1(self):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 8, 8, 2)).astype(np.float32)
    w_oihw = rng.normal(size=(3, 2, 4, 4)).astype(np.float32)
    pad, conv = encoder_lib.conv4x4_s2(3, 'network_0')
    conv(pad(x))  # Builds.
    conv.kernel.assign(w_oihw.transpose(2, 3, 1, 0))
    y = conv(pad(x)).numpy()[0].transpose(2, 0, 1)
    expected = torch_ops.conv2d(x[0].transpose(2, 0, 1), w_oihw, 2, 1)
    self.assertEqual(y.shape, (3, 4, 4))
    self.assertAllClose(y, expected, atol=1e-5)

  @parameterized.parameters(80, 128)
  def test_larger_images_pool_before_head(self, size):
    net = Encoder(cout=6, nf=8).build_for(size)
    self.assertEqual(net(_images(size=size)).shape, (2, 6))

  def test_pool_is_identity_at_64(self):
    net = Encoder(cout=4, nf=8).build_for(64)
    x = _images()
    h = x
    for layer in net.network_layers:
      if layer.name != 'pool':
        h = layer(h)
    self.assertAllEqual(net(x), tf.reshape(h, (-1, 4)))

  @parameterized.parameters(32, 48, 72, 100)
  def test_unsupported_image_sizes_raise(self, size):
    with self.assertRaisesRegex(ValueError, 'multiples of 16 and at least 64'):
      Encoder(cout=4, nf=8).build_for(size)

  @parameterized.parameters(
      dict(cout=0), dict(cout=2.0), dict(cout=True), dict(nf=0),
      dict(nf=-8), dict(nf='8'), dict(activation='relu'))
  def test_bad_args_raise(self, **kwargs):
    args = dict(cout=4, nf=8)
    args.update(kwargs)
    with self.assertRaisesRegex(ValueError, 'Received: '):
      Encoder(**args)


class RunSequenceTest(testcase.TestCase):
  """run_sequence(recompute=True): config remat 'light'."""

  def test_runs_are_cut_after_each_convolution(self):
    conv = lambda name: keras.layers.Conv2D(1, 1, name=name)
    layers = [conv('c0'), keras.layers.GroupNormalization(1, name='gn'),
              keras.layers.ReLU(name='r1'),
              keras.layers.ZeroPadding2D(1, name='pad'), conv('c1'),
              keras.layers.ReLU(name='r2'),
              keras.layers.Conv2DTranspose(1, 1, name='t2'),
              keras.layers.Activation('tanh', name='tanh'),
              keras.layers.ReLU(name='r3')]
    runs = encoder_lib._convolution_runs(layers)  # pylint: disable=protected-access
    self.assertEqual([[layer.name for layer in run] for run in runs],
                     [['c0'], ['gn', 'r1', 'pad', 'c1'], ['r2', 't2'],
                      ['tanh'], ['r3']])

  def test_recompute_keeps_values_and_gradients_and_less_memory(self):
    # A narrow netD on 8 images (activations outweigh weights): the same
    # output and gradients; TF's allocator peaks lower above what it held
    # before (the process may hold other tests' tensors) while the gradient
    # is taken, because only the convolutions' outputs are kept. The peak
    # depends on the order two inter-op threads run the ops in (12 calls
    # each, idle: 13.8-15.8 MiB against 21.9-23.9; one CI run's single
    # calls: 17.1 against 20.9), so each mode's is the least of four calls
    # and the bound leaves room: recompute that kept everything would give
    # about 1.
    keras.utils.set_random_seed(0)
    net = EDDeconv(cout=1, nf=16, zdim=64, activation=None).build_for(64)
    x = tf.constant(_images(batch=8) * 2.0 - 1.0)

    def grads(recompute):
      with tf.GradientTape() as tape:
        y = net(x, recompute=recompute)
        loss = tf.reduce_sum(tf.square(y))
      return [loss] + tape.gradient(loss, net.trainable_variables)

    results, peaks = {}, {}
    for recompute in (False, True):
      fn = tf.function(functools.partial(grads, recompute))
      fn()
      for _ in range(4):
        tf.config.experimental.reset_memory_stats('CPU:0')
        held = tf.config.experimental.get_memory_info('CPU:0')['current']
        results[recompute] = [t.numpy() for t in fn()]
        peak = tf.config.experimental.get_memory_info('CPU:0')['peak'] - held
        peaks[recompute] = min(peaks.get(recompute, peak), peak)
    for kept, recomputed in zip(results[False], results[True]):
      self.assertAllClose(kept, recomputed, rtol=1e-5, atol=1e-6)
    self.assertLess(peaks[True], 0.85 * peaks[False], peaks)


if __name__ == '__main__':
  tf.test.main()
