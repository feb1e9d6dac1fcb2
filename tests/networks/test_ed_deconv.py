"""Tests for tfunsup3d.networks.ed_deconv (EDDeconv: netD, netA)."""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import testcase
from tfunsup3d.networks import ed_deconv as ed_deconv_lib
from tfunsup3d.networks.ed_deconv import EDDeconv

_images = testcase.images


class ConvTransposeAlignmentTest(tf.test.TestCase):
  """Keras' cropping equals PyTorch's ConvTranspose2d(k=4) padding."""

  def test_stride2_same_is_full_output_cropped_by_one(self):
    # PyTorch: full output (H-1)*2+4 = 2H+2, minus padding=1 on each side.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 6, 3)).astype(np.float32)
    same = ed_deconv_lib.conv_transpose4x4(4, 'same')
    full = keras.layers.Conv2DTranspose(4, 4, strides=2, padding='valid',
                                        use_bias=False)
    same.build(x.shape)
    full.build(x.shape)
    full.kernel.assign(same.kernel)
    y_full = full(x).numpy()
    self.assertEqual(y_full.shape, (2, 12, 14, 4))
    y = same(x).numpy()
    self.assertEqual(y.shape, (2, 10, 12, 4))
    self.assertAllClose(y, y_full[:, 1:-1, 1:-1], atol=1e-6)

  def test_stride1_from_1x1_is_the_kernel_times_input(self):
    # ConvTranspose2d(k=4, s=1, p=0) of a 1x1 map: y[h, w, o] =
    # sum_c x[c] * W[c, o, h, w], no spatial flip.
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 1, 1, 3)).astype(np.float32)
    w_torch = rng.normal(size=(3, 2, 4, 4)).astype(np.float32)  # in,out,h,w
    layer = ed_deconv_lib.conv_transpose4x4(2, 'valid', stride=1)
    layer.build(x.shape)
    layer.kernel.assign(w_torch.transpose(2, 3, 1, 0))
    expected = np.einsum('c,cohw->hwo', x[0, 0, 0], w_torch)
    self.assertAllClose(layer(x)[0], expected, atol=1e-5)


class EDDeconvTest(testcase.TestCase):

  def test_depth_network_unbounded(self):
    net = self.run_network_test(
        EDDeconv, dict(cout=1, nf=16, zdim=64, activation=None, name='netD'),
        _images(), expected_output_shape=(2, 64, 64, 1))
    self.assertNotIn('network_43_tanh', [l.name for l in net.layers])

  def test_albedo_network_in_tanh_range(self):
    net = self.run_network_test(
        EDDeconv, dict(cout=3, nf=16, zdim=32, gn_channels=4, name='netA'),
        _images(batch=1), expected_output_shape=(1, 64, 64, 3))
    self.assertAllInRange(net(_images()), -1.0, 1.0)
    self.assertEqual(
        {k: net.get_config()[k] for k in ('cout', 'nf', 'zdim', 'activation',
                                          'gn_channels')},
        {'cout': 3, 'nf': 16, 'zdim': 32, 'activation': 'tanh',
         'gn_channels': 4})

  def test_layer_graph_matches_reference(self):
    nf, zdim = 16, 64
    net = EDDeconv(cout=1, nf=nf, zdim=zdim).build_for(64)
    by_name = {l.name: l for l in net.layers}
    gn = {n: l.groups for n, l in by_name.items()
          if isinstance(l, keras.layers.GroupNormalization)}
    self.assertEqual(gn, {
        'network_1_gn': 16, 'network_4_gn': 32, 'network_7_gn': 64,
        'network_18_gn': 64, 'network_21_gn': 64, 'network_24_gn': 32,
        'network_27_gn': 32, 'network_30_gn': 16, 'network_33_gn': 16,
        'network_37_gn': 16, 'network_40_gn': 16})
    # gn_channels=4: groups of 4 channels (the reference's layout at nf=64).
    net4 = EDDeconv(cout=1, nf=nf, zdim=zdim, gn_channels=4).build_for(64)
    self.assertEqual(
        [l.groups for l in net4.layers
         if isinstance(l, keras.layers.GroupNormalization)],
        [4, 8, 16, 16, 16, 8, 8, 4, 4, 4, 4])
    ref = EDDeconv(cout=1, nf=64, zdim=8).build_for(64)
    self.assertEqual(
        [l.groups for l in ref.layers
         if isinstance(l, keras.layers.GroupNormalization)],
        [l.groups for l in EDDeconv(cout=1, nf=64, zdim=8, gn_channels=4)
         .build_for(64).layers
         if isinstance(l, keras.layers.GroupNormalization)])
    self.assertTrue(all(l.epsilon == 1e-5 for l in net.layers
                        if isinstance(l, keras.layers.GroupNormalization)))
    convts = {n: tuple(l.kernel.shape) for n, l in by_name.items()
              if isinstance(l, keras.layers.Conv2DTranspose)}
    self.assertEqual(convts, {
        'network_13_convt': (4, 4, 8 * nf, zdim),
        'network_17_convt': (4, 4, 4 * nf, 8 * nf),
        'network_23_convt': (4, 4, 2 * nf, 4 * nf),
        'network_29_convt': (4, 4, nf, 2 * nf)})
    self.assertEqual(tuple(by_name['network_11_conv'].kernel.shape),
                     (4, 4, 8 * nf, zdim))
    self.assertEqual(tuple(by_name['network_42_conv'].kernel.shape),
                     (5, 5, nf, 1))
    self.assertFalse(any(getattr(l, 'use_bias', False) for l in net.layers))
    # 16 (transposed) convolutions + 11 GroupNorms (scale and offset).
    self.assertLen(net.weights, 16 + 2 * 11)

  @parameterized.parameters(80, 128)
  def test_fully_convolutional_at_larger_sizes(self, size):
    net = EDDeconv(cout=1, nf=16, zdim=32, activation=None).build_for(size)
    self.assertEqual(net(_images(batch=1, size=size)).shape,
                     (1, size, size, 1))

  @parameterized.parameters(32, 56, 66)
  def test_unsupported_image_sizes_raise(self, size):
    with self.assertRaisesRegex(ValueError, 'multiples of 16 and at least 64'):
      EDDeconv(cout=1, nf=16, zdim=32).build_for(size)

  @parameterized.parameters(
      dict(cout=0), dict(nf=8), dict(nf=24), dict(nf=0),
      dict(gn_channels=3), dict(gn_channels=0), dict(zdim=0),
      dict(zdim=1.5), dict(activation='sigmoid'))
  def test_bad_args_raise(self, **kwargs):
    args = dict(cout=1, nf=16, zdim=32)
    args.update(kwargs)
    with self.assertRaisesRegex(ValueError, 'Received: '):
      EDDeconv(**args)


if __name__ == '__main__':
  tf.test.main()
