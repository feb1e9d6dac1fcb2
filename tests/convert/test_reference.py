"""Tests for tfunsup3d.convert.reference (reference state dicts <-> Keras).

The fixture tests load the authors' weights (quarter width) from the
reference fixture (docs/reference_fixture.md) and compare our nets' outputs
with the reference's own forward pass (NCHW there, NHWC here).
"""

import os
import shutil
import tempfile

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from tests import torch_ops
from tests.fixtures import REFERENCE_DIR
from tests.fixtures import require_reference
from tfunsup3d.convert import reference
from tfunsup3d.convert import torch_format
from tfunsup3d.networks import ConfNet
from tfunsup3d.networks import EDDeconv
from tfunsup3d.networks import Encoder
from tfunsup3d.networks import VGG16Features

TOLERANCE = 1e-4  # max abs error against the reference's float32 outputs.
QUARTER_SIZES = {'netD': {'cout': 1, 'nf': 16, 'zdim': 64},
                 'netA': {'cout': 3, 'nf': 16, 'zdim': 64},
                 'netL': {'cout': 4, 'nf': 8},
                 'netV': {'cout': 6, 'nf': 8},
                 'netC': {'nf': 16, 'zdim': 32}}


def _quarter_nets():
  return {
      'netD': EDDeconv(cout=1, nf=16, zdim=64, activation=None, name='netD'),
      'netA': EDDeconv(cout=3, nf=16, zdim=64, name='netA'),
      'netL': Encoder(cout=4, nf=8, name='netL'),
      'netV': Encoder(cout=6, nf=8, name='netV'),
      'netC': ConfNet(nf=16, zdim=32, name='netC'),
  }


def _torch_conv_transpose2d(x, w, stride, pad):
  """PyTorch ConvTranspose2d by definition: input pixel (i, j) adds
  `x[:, i, j] . w[:, :, kh, kw]` at output (i*s + kh - p, j*s + kw - p).
  x `[C, H, W]`, w `[C, O, kh, kw]` -> `[O, H', W']`."""
  _, out_c, kh, kw = w.shape
  _, height, width = x.shape
  full = np.zeros(
      (out_c, (height - 1) * stride + kh, (width - 1) * stride + kw))
  for i in range(height):
    for j in range(width):
      full[:, i * stride:i * stride + kh, j * stride:j * stride + kw] += (
          np.tensordot(x[:, i, j], w, axes=([0], [0])))
  return full[:, pad:full.shape[1] - pad, pad:full.shape[2] - pad]


def _random_state(model, net_name, seed=0):
  rng = np.random.default_rng(seed)
  return {k: rng.normal(size=v.shape).astype(np.float32)
          for k, v in reference.state_dict_from_model(model, net_name).items()}


class HandComputedLayoutTest(tf.test.TestCase):
  """One layer with known PyTorch weights vs. a numpy computation."""

  def test_conv_oihw_to_hwio(self):
    net = Encoder(cout=4, nf=8).build_for(64)
    state = _random_state(net, 'netL', seed=1)
    reference.assign_state_dict(net, state, 'netL')
    x = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype(np.float32)
    pad, conv = net.network_layers[:2]
    got = conv(pad(x)).numpy()[0].transpose(2, 0, 1)
    want = torch_ops.conv2d(x[0].transpose(2, 0, 1),
                            state['network.0.weight'], stride=2, pad=1)
    self.assertEqual(got.shape, (8, 32, 32))
    self.assertAllClose(got, want, atol=1e-4)

  def test_conv_transpose_needs_no_flip(self):
    net = EDDeconv(cout=1, nf=16, zdim=16).build_for(64)
    state = _random_state(net, 'netD', seed=3)
    reference.assign_state_dict(net, state, 'netD')
    layers = {l.name: l for l in net.layers}
    rng = np.random.default_rng(4)
    # ConvTranspose2d(k4, s2, p1): 4x4 -> 8x8, weights [in=128, out=64, 4, 4].
    x = rng.normal(size=(1, 4, 4, 128)).astype(np.float32)
    got = layers['network_17_convt'](x).numpy()[0].transpose(2, 0, 1)
    want = _torch_conv_transpose2d(x[0].transpose(2, 0, 1),
                                   state['network.17.weight'], 2, 1)
    self.assertEqual(got.shape, (64, 8, 8))
    self.assertAllClose(got, want, atol=1e-4)
    # ConvTranspose2d(k4, s1, p0): 1x1 -> 4x4, weights [in=16, out=128, 4, 4].
    z = rng.normal(size=(1, 1, 1, 16)).astype(np.float32)
    got = layers['network_13_convt'](z).numpy()[0].transpose(2, 0, 1)
    want = _torch_conv_transpose2d(z[0].transpose(2, 0, 1),
                                   state['network.13.weight'], 1, 0)
    self.assertAllClose(got, want, atol=1e-4)

  def test_group_norm_weight_bias(self):
    net = ConfNet(nf=16, zdim=16).build_for(64)
    state = _random_state(net, 'netC', seed=5)
    reference.assign_state_dict(net, state, 'netC')
    gn = {l.name: l for l in net.layers}['out_net1_4_gn']
    self.assertAllEqual(gn.gamma, state['out_net1.4.weight'])
    self.assertAllEqual(gn.beta, state['out_net1.4.bias'])


class MappingTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters('netD', 'netA', 'netL', 'netV', 'netC', 'vgg')
  def test_state_dict_round_trip(self, net_name):
    make = dict(_quarter_nets(), vgg=VGG16Features())
    model = make[net_name]
    state = _random_state(model, net_name)
    reference.assign_state_dict(model, state, net_name)
    got = reference.state_dict_from_model(model, net_name)
    self.assertEqual(list(got), list(state))
    for key in state:
      self.assertAllEqual(got[key], state[key])

  def test_key_order_is_torch_registration_order(self):
    keys = list(reference.state_dict_from_model(
        ConfNet(nf=16, zdim=16), 'netC'))
    self.assertEqual(keys[:3], ['network.0.weight', 'network.1.weight',
                                'network.1.bias'])
    self.assertEqual(keys[-4:], ['out_net1.4.weight', 'out_net1.4.bias',
                                 'out_net1.6.weight', 'out_net2.0.weight'])

  def test_bad_state_dict_lists_every_problem(self):
    net = Encoder(cout=4, nf=8).build_for(64)
    state = _random_state(net, 'netL')
    before = [w.numpy() for w in net.weights]
    del state['network.4.weight']
    state['network.2.weight'] = np.zeros((16, 8, 3, 3), np.float32)
    state['network.99.bias'] = np.zeros((7,), np.float32)
    with self.assertRaises(ValueError) as ctx:
      reference.assign_state_dict(net, state, 'netL')
    message = str(ctx.exception)
    for part in ('netL', 'missing keys: network.4.weight (expected '
                 '(32, 16, 4, 4))', 'unexpected keys: network.99.bias (7,)',
                 'mis-shaped keys: network.2.weight: state dict '
                 '(16, 8, 3, 3), model (16, 8, 4, 4)'):
      self.assertIn(part, message)
    for old, new in zip(before, net.weights):  # Nothing assigned.
      self.assertAllEqual(old, new)

  def test_wrong_class_or_name_raises(self):
    with self.assertRaisesRegex(ValueError, 'netD is a EDDeconv'):
      reference.assign_state_dict(Encoder(cout=1, nf=8), {}, 'netD')
    with self.assertRaisesRegex(ValueError, 'Received: net_name='):
      reference.state_dict_from_model(Encoder(cout=1, nf=8), 'netX')

  def test_infer_sizes_and_config_sizes(self):
    nets = {'netD': EDDeconv(cout=1, nf=32, zdim=48),
            'netA': EDDeconv(cout=3, nf=32, zdim=48),
            'netL': Encoder(cout=4, nf=4), 'netV': Encoder(cout=6, nf=4),
            'netC': ConfNet(nf=16, zdim=8)}
    states = {n: reference.state_dict_from_model(m, n)
              for n, m in nets.items()}
    states['optimizerD'] = {'state': {}}  # Ignored.
    sizes = reference.infer_sizes(states)
    self.assertEqual(sizes, {
        'netD': {'cout': 1, 'nf': 32, 'zdim': 48},
        'netA': {'cout': 3, 'nf': 32, 'zdim': 48},
        'netL': {'cout': 4, 'nf': 4}, 'netV': {'cout': 6, 'nf': 4},
        'netC': {'nf': 16, 'zdim': 8}})
    self.assertEqual(reference.config_sizes(sizes), {
        'nf_depth': 32, 'zdim_depth': 48, 'nf_encoder': 4, 'nf_conf': 16,
        'zdim_conf': 8})
    sizes['netA']['zdim'] = 64
    with self.assertRaisesRegex(ValueError, 'zdim_depth'):
      reference.config_sizes(sizes)
    with self.assertRaisesRegex(ValueError, "no 'network.11.weight'"):
      reference.infer_sizes({'netC': {'network.0.weight': np.zeros((16, 3))}})

  def test_build_from_state_dict(self):
    state = _random_state(EDDeconv(cout=1, nf=16, zdim=24), 'netD')
    net = reference.build_from_state_dict(state, 'netD')
    self.assertIsInstance(net, EDDeconv)
    self.assertEqual((net.nf, net.zdim, net.cout, net.activation),
                     (16, 24, 1, None))


class ReferenceFixtureTest(tf.test.TestCase, parameterized.TestCase):
  """Our nets with the reference's weights reproduce its outputs."""

  def setUp(self):
    super().setUp()
    require_reference(self)
    with np.load(os.path.join(REFERENCE_DIR, 'inputs.npz')) as inputs:
      self.images = inputs['images_nhwc'].astype(np.float32) * 2 - 1
    with np.load(os.path.join(REFERENCE_DIR, 'ref_outputs.npz')) as ref:
      self.ref = {k: ref[k] for k in ref.files}

  def _expected(self):
    """Reference tensors (NCHW -> NHWC, channel axis dropped for maps)."""
    ref = self.ref
    expected = {
        'netL_out': ref['netL_out'],
        'netV_out': ref['netV_out'],
        'canon_depth_raw': ref['canon_depth_raw'],
        'canon_albedo': ref['canon_albedo'][:3].transpose(0, 2, 3, 1),
    }
    for key in ('conf_sigma_l1', 'conf_sigma_l1_flip', 'conf_sigma_percl',
                'conf_sigma_percl_flip'):
      expected[key] = ref[key][:, 0]
    return expected

  def _outputs(self, nets):
    sigma_l1, sigma_percl = nets['netC'](self.images)
    return {
        'netL_out': nets['netL'](self.images).numpy(),
        'netV_out': nets['netV'](self.images).numpy(),
        'canon_depth_raw': nets['netD'](self.images).numpy()[..., 0],
        'canon_albedo': nets['netA'](self.images).numpy(),
        'conf_sigma_l1': sigma_l1.numpy()[..., 0],
        'conf_sigma_l1_flip': sigma_l1.numpy()[..., 1],
        'conf_sigma_percl': sigma_percl.numpy()[..., 0],
        'conf_sigma_percl_flip': sigma_percl.numpy()[..., 1],
    }

  def _load(self, states):
    nets = _quarter_nets()
    for name, net in nets.items():
      reference.assign_state_dict(net, states[name], name)
    return nets

  @parameterized.parameters('ckpt_zip.pth', 'ckpt_legacy_trainer.pth')
  def test_nets_match_reference_outputs(self, filename):
    states = torch_format.load_state_dicts(
        os.path.join(REFERENCE_DIR, filename))
    self.assertEqual(reference.infer_sizes(states), QUARTER_SIZES)
    got = self._outputs(self._load(states))
    for key, want in self._expected().items():
      self.assertEqual(got[key].shape, want.shape, key)
      error = float(np.max(np.abs(got[key] - want)))
      print(f'{filename} {key}: max abs error {error:.3g}')
      self.assertLess(error, TOLERANCE, key)

  def test_vgg_matches_reference_features(self):
    states = torch_format.load_state_dicts(
        os.path.join(REFERENCE_DIR, 'vgg16_features.pth'))
    (state,) = states.values()
    net = reference.build_from_state_dict(state, 'vgg')
    want = self.ref['vgg_relu3_3_input'].transpose(0, 2, 3, 1)
    error = float(np.max(np.abs(net(self.images).numpy() - want)))
    print(f'vgg_relu3_3_input: max abs error {error:.3g} '
          f'(max |value| {np.abs(want).max():.3g})')
    self.assertLess(error, TOLERANCE)

  def test_save_load_assign_round_trip(self):
    states = torch_format.load_state_dicts(
        os.path.join(REFERENCE_DIR, 'ckpt_zip.pth'))
    nets = self._load(states)
    saved = {}
    for name, net in nets.items():
      saved[name] = reference.state_dict_from_model(net, name)
      self.assertEqual(list(saved[name]), list(states[name]))
      for key, value in saved[name].items():
        self.assertAllEqual(value, states[name][key])
    folder = tempfile.mkdtemp(prefix='test_reference_')
    self.addCleanup(shutil.rmtree, folder, ignore_errors=True)
    path = os.path.join(folder, 'round_trip.pth')
    torch_format.save(saved, path)
    fresh = self._load(torch_format.load_state_dicts(path))
    want = self._outputs(nets)
    for key, got in self._outputs(fresh).items():
      self.assertAllEqual(got, want[key])


if __name__ == '__main__':
  tf.test.main()
