"""Tests for tfunsup3d.networks.conf_net (ConfNet: netC)."""

from absl.testing import parameterized
import keras
import tensorflow as tf

from tests import testcase
from tfunsup3d.networks.conf_net import ConfNet

_images = testcase.images


class ConfNetTest(testcase.TestCase):

  def test_network_outputs_positive(self):
    x = _images(batch=3)
    net = self.run_network_test(
        ConfNet, dict(nf=32, zdim=16, name='netC'), x,
        expected_output_shape=((3, 64, 64, 2), (3, 16, 16, 2)))
    self.assertEqual({k: net.get_config()[k] for k in ('nf', 'zdim')},
                     {'nf': 32, 'zdim': 16})
    sigma_l1, sigma_percl = net(x)
    self.assertAllGreater(sigma_l1, 0.0)
    self.assertAllGreater(sigma_percl, 0.0)

  def test_layer_graph_matches_reference(self):
    nf, zdim = 16, 32
    net = ConfNet(nf=nf, zdim=zdim).build_for(64)
    shapes = {l.name: tuple(l.kernel.shape) for l in net.layers
              if hasattr(l, 'kernel')}
    self.assertEqual(shapes, {
        'network_0_conv': (4, 4, 3, nf),
        'network_3_conv': (4, 4, nf, 2 * nf),
        'network_6_conv': (4, 4, 2 * nf, 4 * nf),
        'network_9_conv': (4, 4, 4 * nf, 8 * nf),
        'network_11_conv': (4, 4, 8 * nf, zdim),
        'network_13_convt': (4, 4, 8 * nf, zdim),
        'network_15_convt': (4, 4, 4 * nf, 8 * nf),
        'network_18_convt': (4, 4, 2 * nf, 4 * nf),
        'out_net1_0_convt': (4, 4, nf, 2 * nf),
        'out_net1_3_convt': (4, 4, nf, nf),
        'out_net1_6_conv': (5, 5, nf, 2),
        'out_net2_0_conv': (3, 3, 2 * nf, 2)})
    groups = {l.name: l.groups for l in net.layers
              if isinstance(l, keras.layers.GroupNormalization)}
    self.assertEqual(groups, {
        'network_1_gn': 16, 'network_4_gn': 32, 'network_7_gn': 64,
        'network_16_gn': 64, 'network_19_gn': 32, 'out_net1_1_gn': 16,
        'out_net1_4_gn': 16})
    net4 = ConfNet(nf=nf, zdim=zdim, gn_channels=4).build_for(64)
    self.assertEqual(
        sorted(l.groups for l in net4.layers
               if isinstance(l, keras.layers.GroupNormalization)),
        [4, 4, 4, 8, 8, 16, 16])
    self.assertFalse(any(getattr(l, 'use_bias', False) for l in net.layers))

  @parameterized.parameters(80, 128)
  def test_fully_convolutional_at_larger_sizes(self, size):
    sigma_l1, sigma_percl = ConfNet(nf=16, zdim=32)(
        _images(batch=1, size=size))
    self.assertEqual(sigma_l1.shape, (1, size, size, 2))
    self.assertEqual(sigma_percl.shape, (1, size // 4, size // 4, 2))

  def test_unsupported_image_size_raises(self):
    with self.assertRaisesRegex(ValueError, 'multiples of 16 and at least 64'):
      ConfNet(nf=16, zdim=32).build_for(48)

  @parameterized.parameters(
      dict(nf=32.0), dict(nf=20), dict(nf=0), dict(gn_channels=5), dict(zdim=0), dict(zdim=None))
  def test_bad_args_raise(self, **kwargs):
    args = dict(nf=16, zdim=32)
    args.update(kwargs)
    with self.assertRaisesRegex(ValueError, 'Received: '):
      ConfNet(**args)


if __name__ == '__main__':
  tf.test.main()
