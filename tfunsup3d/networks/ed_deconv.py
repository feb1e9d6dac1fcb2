"""EDDeconv: the depth (netD) and albedo (netA) encoder-decoder of Unsup3D."""

from typing import List, Optional

import keras

from tfunsup3d.networks.encoder import ImageNetwork
from tfunsup3d.networks.encoder import check_activation
from tfunsup3d.networks.encoder import check_int
from tfunsup3d.networks.encoder import conv4x4_s2
from tfunsup3d.networks.encoder import run_sequence
from tfunsup3d.networks.encoder import torch_init

GN_EPSILON = 1e-5  # torch.nn.GroupNorm's default eps.


def check_gn_channels(nf: int, gn_channels: Optional[int]) -> None:
  """nf must split into GroupNorm groups (see `group_norm`)."""
  if gn_channels is None:
    check_int('nf', nf, multiple_of=16)
  else:
    check_int('gn_channels', gn_channels)
    check_int('nf', nf, multiple_of=gn_channels)


def group_norm(channels: int, nf: int, gn_channels: Optional[int],
               name: str) -> keras.layers.Layer:
  """torch GroupNorm over `channels` (a multiple of nf).

  gn_channels None: the reference's layout, 16 groups per nf channels (4
  channels a group at its nf = 64, but 1, i.e. instance norm, at nf = 16).
  An int: groups of that many channels at any width (4 gives the reference's
  layers at nf = 64 and keeps narrow nets from normalising every channel on
  its own; at nf = 16 the quickstart learnt markedly faster with it).
  """
  groups = (16 * channels // nf if gn_channels is None
            else channels // gn_channels)
  return keras.layers.GroupNormalization(groups=groups, epsilon=GN_EPSILON,
                                         name=name)


def conv_transpose4x4(filters: int, name: str,
                      stride: int = 2) -> keras.layers.Layer:
  """PyTorch `ConvTranspose2d(k=4)`: s2 p1 (H -> 2H) or s1 p0 (H -> H+3).

  For k=4, s=2, p=1 Keras' 'same' cropping equals PyTorch's (one row/column
  off each side of the full 2H+2 output); for s=1, p=0 nothing is cropped
  ('valid'). Both are checked numerically in tests/networks/test_ed_deconv.py.
  """
  return keras.layers.Conv2DTranspose(
      filters, 4, strides=stride, padding='same' if stride == 2 else 'valid',
      use_bias=False, kernel_initializer=torch_init(), name=name)


def conv(filters: int, kernel_size: int, name: str) -> keras.layers.Layer:
  """PyTorch `Conv2d(k, s=1, p=k//2)` for odd k: 'same' padding."""
  return keras.layers.Conv2D(filters, kernel_size, padding='same',
                             use_bias=False, kernel_initializer=torch_init(),
                             name=name)


def down_path(nf: int, zdim: int,
              gn_channels: Optional[int] = None) -> List[keras.layers.Layer]:
  """Indices 0-12 of the reference EDDeconv/ConfNet `network`: 64 -> 1x1.

  Conv4x4 s2 (nf, 2nf, 4nf with GroupNorm, see `group_norm`; 8nf without)
  each followed by LeakyReLU(0.2), then Conv4x4 valid (zdim) -> ReLU.
  """
  layers = []
  index = 0
  for mult, norm in ((1, True), (2, True), (4, True), (8, False)):
    layers += conv4x4_s2(nf * mult, f'network_{index}')
    if norm:
      layers.append(group_norm(nf * mult, nf, gn_channels,
                               f'network_{index + 1}_gn'))
      index += 1
    layers.append(keras.layers.LeakyReLU(negative_slope=0.2,
                                         name=f'network_{index + 1}_lrelu'))
    index += 2
  layers += [
      keras.layers.Conv2D(zdim, 4, padding='valid', use_bias=False,
                          kernel_initializer=torch_init(),
                          name='network_11_conv'),
      keras.layers.ReLU(name='network_12_relu'),
  ]
  return layers


def relu(name: str) -> keras.layers.Layer:
  return keras.layers.ReLU(name=name)


@keras.saving.register_keras_serializable(package='tfunsup3d')
class EDDeconv(ImageNetwork):
  """Image to image encoder-decoder of the reference (netD, netA).

  Down: Conv4x4 s2 to nf, 2nf, 4nf, 8nf (GroupNorm 16/32/64 groups on the
  first three, LeakyReLU 0.2), Conv4x4 valid to `zdim` -> ReLU (64 -> 1).
  Up: ConvT4x4 valid to 8nf -> ReLU (1 -> 4), Conv3x3 -> ReLU, then three
  `ConvT4x4 s2 -> GN -> ReLU -> Conv3x3 -> GN -> ReLU` stages (4nf, 2nf, nf;
  4 -> 32), nearest upsampling x2, Conv3x3 -> GN -> ReLU, Conv5x5 -> GN ->
  ReLU, Conv5x5 to `cout` and an optional Tanh. All convolutions bias-free,
  GroupNorm eps 1e-5. Layers are named `network_{i}_{kind}` after index `i`
  of the reference's `nn.Sequential`.

  Other image sizes: the net is fully convolutional. For H, W = 16k (k >= 4)
  the bottleneck is (k-3)x(k-3)x`zdim` and the 4x4 'valid' transposed
  convolution brings it back to k x k, so the output is H x W -- the same
  computation the reference's layers do at that size (at 64, the reference's
  1x1 bottleneck). Sizes below 64 raise.

  Args:
    cout: int. Output channels (1 for depth, 3 for albedo).
    nf: int. Base width, a multiple of 16 (of `gn_channels` if set).
      Defaults to 64.
    zdim: int. Bottleneck channels. Defaults to 256 (the reference model's
      netD/netA).
    activation: str or None. `'tanh'` (albedo) or None (raw depth). Defaults
      to `'tanh'`.
    gn_channels: int or None. Channels per GroupNorm group; None (default)
      is the reference's layout (see `group_norm`).
    **kwargs: `name`, `trainable`, `dtype` for `keras.Model`.

  Example:
  ```python
  net_d = EDDeconv(cout=1, nf=64, zdim=256, activation=None, name='netD')
  net_d.build_for(64)
  depth_raw = net_d(images)[..., 0]  # [B, 64, 64, 3] in [-1, 1] -> [B, 64, 64].
  ```

  Reference:
    Wu, Rupprecht, Vedaldi. Unsupervised Learning of Probably Symmetric
    Deformable 3D Objects from Images in the Wild. CVPR 2020.
  """

  def __init__(self, cout: int, nf: int = 64, zdim: int = 256,
               activation: Optional[str] = 'tanh',
               gn_channels: Optional[int] = None, **kwargs):
    check_int('cout', cout)
    check_gn_channels(nf, gn_channels)
    check_int('zdim', zdim)
    check_activation(activation)
    super().__init__(**kwargs)
    self.cout = cout
    self.nf = nf
    self.zdim = zdim
    self.activation = activation
    self.gn_channels = gn = gn_channels

    layers = down_path(nf, zdim, gn)
    layers += [
        conv_transpose4x4(nf * 8, 'network_13_convt', stride=1),
        relu('network_14_relu'),
        conv(nf * 8, 3, 'network_15_conv'),
        relu('network_16_relu'),
    ]
    index = 17
    for mult in (4, 2, 1):
      layers += [
          conv_transpose4x4(nf * mult, f'network_{index}_convt'),
          group_norm(nf * mult, nf, gn, f'network_{index + 1}_gn'),
          relu(f'network_{index + 2}_relu'),
          conv(nf * mult, 3, f'network_{index + 3}_conv'),
          group_norm(nf * mult, nf, gn, f'network_{index + 4}_gn'),
          relu(f'network_{index + 5}_relu'),
      ]
      index += 6
    layers += [
        keras.layers.UpSampling2D(2, interpolation='nearest',
                                  name='network_35_upsample'),
        conv(nf, 3, 'network_36_conv'),
        group_norm(nf, nf, gn, 'network_37_gn'),
        relu('network_38_relu'),
        conv(nf, 5, 'network_39_conv'),
        group_norm(nf, nf, gn, 'network_40_gn'),
        relu('network_41_relu'),
        conv(cout, 5, 'network_42_conv'),
    ]
    if activation == 'tanh':
      layers.append(keras.layers.Activation('tanh', name='network_43_tanh'))
    self.network_layers = layers

  def call(self, images, recompute: bool = False):
    """`recompute`: see `run_sequence` (config remat, training only)."""
    return run_sequence(self.network_layers, images, recompute)

  def compute_output_shape(self, input_shape):
    return tuple(input_shape[:3]) + (self.cout,)

  def get_config(self):
    config = super().get_config()
    config.update({
        'cout': self.cout,
        'nf': self.nf,
        'zdim': self.zdim,
        'activation': self.activation,
        'gn_channels': self.gn_channels,
    })
    return config
