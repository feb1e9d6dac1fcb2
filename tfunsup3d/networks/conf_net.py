"""ConfNet: the confidence network (netC) of Unsup3D."""

from typing import Optional

import keras

from tfunsup3d.networks.ed_deconv import check_gn_channels
from tfunsup3d.networks.ed_deconv import conv
from tfunsup3d.networks.ed_deconv import conv_transpose4x4
from tfunsup3d.networks.ed_deconv import down_path
from tfunsup3d.networks.ed_deconv import group_norm
from tfunsup3d.networks.ed_deconv import relu
from tfunsup3d.networks.encoder import ImageNetwork
from tfunsup3d.networks.encoder import build_sequence
from tfunsup3d.networks.encoder import check_int
from tfunsup3d.networks.encoder import run_sequence


@keras.saving.register_keras_serializable(package='tfunsup3d')
class ConfNet(ImageNetwork):
  """Predicts the per-pixel confidences sigma, sigma' of the reconstruction.

  Trunk (`network`): the EDDeconv down path (nf .. 8nf, GroupNorm 16/32/64,
  LeakyReLU 0.2, Conv4x4 valid to `zdim` -> ReLU), then ConvT4x4 valid to
  8nf -> ReLU (1 -> 4), `ConvT4x4 s2 -> GN -> ReLU` to 4nf and 2nf (4 -> 16).
  Head `out_net1`: two `ConvT4x4 s2 (nf) -> GN(16) -> ReLU` (16 -> 64) and a
  Conv5x5 to 2 channels -> Softplus: sigma and sigma' for the photometric
  losses at full size. Head `out_net2`: Conv3x3 to 2 channels -> Softplus at
  H/4 x W/4 for the perceptual losses. Bias-free convolutions, GroupNorm eps
  1e-5; layers are named `{sequential}_{i}_{kind}` after the reference's
  `network`, `out_net1` and `out_net2` indices.

  Other image sizes: fully convolutional; for H, W = 16k (k >= 4) the
  bottleneck is (k-3)x(k-3) and the outputs are H x W and H/4 x W/4, as the
  reference's layers give. Sizes below 64 raise.

  Args:
    nf: int. Base width, a multiple of 16 (of `gn_channels` if set).
      Defaults to 64.
    zdim: int. Bottleneck channels. Defaults to 128 (the reference's netC).
    gn_channels: int or None. Channels per GroupNorm group; None (default)
      is the reference's layout (see `ed_deconv.group_norm`).
    **kwargs: `name`, `trainable`, `dtype` for `keras.Model`.

  Returns from `call(images [B, H, W, C])` a tuple:
    sigma_l1: `[B, H, W, 2]`, > 0; channel 0 for the reconstruction, 1 for the
      flipped one (`conf_sigma_l1`, `conf_sigma_l1_flip`).
    sigma_percl: `[B, H/4, W/4, 2]`, > 0 (`conf_sigma_percl`, `_flip`).

  Example:
  ```python
  net_c = ConfNet(nf=64, zdim=128, name='netC')
  net_c.build_for(64)
  sigma_l1, sigma_percl = net_c(images)
  ```

  Reference:
    Wu, Rupprecht, Vedaldi. Unsupervised Learning of Probably Symmetric
    Deformable 3D Objects from Images in the Wild. CVPR 2020.
  """

  _LAYER_LISTS = ('network_layers', 'out_net1_layers', 'out_net2_layers')

  def __init__(self, nf: int = 64, zdim: int = 128,
               gn_channels: Optional[int] = None, **kwargs):
    check_gn_channels(nf, gn_channels)
    check_int('zdim', zdim)
    super().__init__(**kwargs)
    self.nf = nf
    self.zdim = zdim
    self.gn_channels = gn_channels

    trunk = down_path(nf, zdim, gn_channels)
    trunk += [
        conv_transpose4x4(nf * 8, 'network_13_convt', stride=1),
        relu('network_14_relu'),
        conv_transpose4x4(nf * 4, 'network_15_convt'),
        group_norm(nf * 4, nf, gn_channels, 'network_16_gn'),
        relu('network_17_relu'),
        conv_transpose4x4(nf * 2, 'network_18_convt'),
        group_norm(nf * 2, nf, gn_channels, 'network_19_gn'),
        relu('network_20_relu'),
    ]
    self.network_layers = trunk
    self.out_net1_layers = [
        conv_transpose4x4(nf, 'out_net1_0_convt'),
        group_norm(nf, nf, gn_channels, 'out_net1_1_gn'),
        relu('out_net1_2_relu'),
        conv_transpose4x4(nf, 'out_net1_3_convt'),
        group_norm(nf, nf, gn_channels, 'out_net1_4_gn'),
        relu('out_net1_5_relu'),
        conv(2, 5, 'out_net1_6_conv'),
        keras.layers.Activation('softplus', name='out_net1_7_softplus'),
    ]
    self.out_net2_layers = [
        conv(2, 3, 'out_net2_0_conv'),
        keras.layers.Activation('softplus', name='out_net2_1_softplus'),
    ]

  def build(self, input_shape):
    trunk_shape = super().build(input_shape)
    build_sequence(self.out_net1_layers, trunk_shape)
    build_sequence(self.out_net2_layers, trunk_shape)

  def call(self, images, recompute: bool = False):
    """`recompute`: see `run_sequence` (config remat, training only)."""
    features = run_sequence(self.network_layers, images, recompute)
    sigma_l1 = run_sequence(self.out_net1_layers, features, recompute)
    sigma_percl = run_sequence(self.out_net2_layers, features, recompute)
    return sigma_l1, sigma_percl

  def compute_output_shape(self, input_shape):
    batch, height, width = input_shape[:3]
    quarter = [None if s is None else s // 4 for s in (height, width)]
    return (batch, height, width, 2), (batch, quarter[0], quarter[1], 2)

  def get_config(self):
    config = super().get_config()
    config.update({'nf': self.nf, 'zdim': self.zdim,
                   'gn_channels': self.gn_channels})
    return config
