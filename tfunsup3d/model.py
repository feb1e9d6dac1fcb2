"""The Unsup3D model: five networks, the renderer settings, losses, metrics."""

import dataclasses
import os
from typing import Dict, Optional, Union

import keras
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import losses, metrics, render
from tfunsup3d.factors import confidence, depth as depth_lib, light, view
from tfunsup3d.networks import ConfNet, EDDeconv, Encoder, VGG16Features
from tfunsup3d.networks import load_vgg16_weights
from tfunsup3d.networks import precision
from tfunsup3d.networks.vgg import MISSING_WEIGHTS_HELP

NETWORK_NAMES = ('netD', 'netA', 'netL', 'netV', 'netC')


@keras.saving.register_keras_serializable(package='tfunsup3d')
class Unsup3D(keras.Model):
  """Unsup3D: canonical depth, albedo, light and view from one image.

  Owns netD, netA (EDDeconv), netL, netV (Encoder), netC (ConfNet, when
  `use_conf_map`) and, when `lam_perc > 0`, the frozen VGG16 of the
  perceptual loss (weights from the local file `vgg16_weights`; never
  downloaded). Image formation is the pure functions of `tfunsup3d.render`.

  Args:
    config: a `tfunsup3d.config.Config` (or a dict of its keys).
    **kwargs: passed to `keras.Model`.

  Example:
  ```python
  model = Unsup3D(config.load('configs/quickstart.yml'))
  out = model.decompose(images)  # images [B, S, S, 3] in [0, 1]
  out['canon_depth'][:B]         # canonical depth, [B, S, S]
  ```
  """

  def __init__(self, config: Union[config_lib.Config, Dict, None] = None,
               **kwargs):
    kwargs.setdefault('name', 'unsup3d')
    super().__init__(**kwargs)
    if config is None:
      config = config_lib.Config()
    elif isinstance(config, dict):
      config = config_lib.from_dict(config)
    self.cfg = config.resolved()
    cfg = self.cfg
    gn = cfg.gn_channels
    with precision.policy_scope(cfg.mixed_precision):
      self.netD = EDDeconv(1, cfg.nf_depth, cfg.zdim_depth, activation=None,
                           gn_channels=gn, name='netD')
      self.netA = EDDeconv(3, cfg.nf_depth, cfg.zdim_depth,
                           activation='tanh', gn_channels=gn, name='netA')
      self.netL = Encoder(4, cfg.nf_encoder, name='netL')
      self.netV = Encoder(6, cfg.nf_encoder, name='netV')
      self.netC = (ConfNet(cfg.nf_conf, cfg.zdim_conf, gn_channels=gn,
                           name='netC')
                   if cfg.use_conf_map else None)
    self.vgg = None
    self.K = render.intrinsics(cfg.image_size, cfg.fov)
    self.build_for(cfg.image_size)

  # --- construction -------------------------------------------------------

  def build_for(self, image_size: int):
    for net in self.networks.values():
      net.build_for(image_size)
    self.built = True
    return self

  def build(self, input_shape):
    self.build_for(self.cfg.image_size)

  @property
  def networks(self) -> Dict[str, keras.Model]:
    """The trained networks by reference name (netC absent without conf)."""
    nets = {'netD': self.netD, 'netA': self.netA, 'netL': self.netL,
            'netV': self.netV}
    if self.netC is not None:
      nets['netC'] = self.netC
    return nets

  def load_perceptual(self, path: Optional[str] = None):
    """Builds the VGG16 features and loads their weights from `path`
    (default: config `vgg16_weights`). Needed when `lam_perc > 0`."""
    path = path or self.cfg.vgg16_weights
    if not path:
      raise FileNotFoundError(
          f'The perceptual loss (lam_perc={self.cfg.lam_perc:g}) needs VGG16 '
          'weights, but the config key `vgg16_weights` is not set: '
          f'{MISSING_WEIGHTS_HELP}.')
    with precision.policy_scope(self.cfg.mixed_precision):
      vgg = VGG16Features(name='vgg16')
    load_vgg16_weights(vgg, path)
    # Freeze every layer: VGG16Features(trainable=False) creates its conv
    # layers trainable, and setting an unchanged `trainable` again does not
    # reach them, so their weights would be in this model's
    # trainable_variables.
    for layer in [vgg] + list(vgg.layers):
      layer.trainable = False
    self.vgg = vgg
    return vgg

  def get_config(self):
    return {'config': self.cfg.to_dict(), 'name': self.name}

  @classmethod
  def from_config(cls, config):
    return cls(config_lib.from_dict(config['config']), name=config.get('name'))

  @classmethod
  def from_checkpoint(cls, path: str, **config_overrides):
    """Builds a model from a tfunsup3d checkpoint or a reference `.pth`.

    Args:
      path: a reference checkpoint file (`.pth`, legacy or zip container;
        network sizes are inferred from the weights), or a tfunsup3d
        checkpoint directory (its `config.yml` and latest TF checkpoint), or
        a TF checkpoint prefix inside such a directory.
      **config_overrides: config keys to set on top.
    """
    from tfunsup3d.convert import reference, torch_format  # pylint: disable=g-import-not-at-top
    if not os.path.exists(path) and not tf.io.gfile.exists(path + '.index'):
      raise FileNotFoundError(f'Checkpoint not found: {path}')
    if os.path.isfile(path) and not path.endswith('.index'):
      state = torch_format.load_state_dicts(path)
      nets = {k: v for k, v in state.items() if k in NETWORK_NAMES}
      if not nets:
        raise ValueError(f'{path} holds no Unsup3D networks '
                         f'(expected keys {NETWORK_NAMES}).')
      values = reference.config_sizes(reference.infer_sizes(nets))
      values['use_conf_map'] = 'netC' in nets
      values.update(config_overrides)
      model = cls(config_lib.from_dict(values))
      for name, net in model.networks.items():
        if name not in nets:
          raise ValueError(f'{path} has no {name} state dict.')
        reference.assign_state_dict(net, nets[name], name)
      return model
    ckpt_dir = path if os.path.isdir(path) else os.path.dirname(path)
    prefix = tf.train.latest_checkpoint(path) if os.path.isdir(path) else path
    if prefix is None:
      raise FileNotFoundError(f'No TF checkpoint in {path}')
    cfg_path = os.path.join(ckpt_dir, 'config.yml')
    cfg = config_lib.load(cfg_path if os.path.isfile(cfg_path) else None,
                          config_overrides)
    model = cls(cfg)
    status = tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    try:
      status.assert_existing_objects_matched()
    except AssertionError as e:
      raise ValueError(f'{prefix} does not match the model built from its '
                       f'config (different network sizes?): {e}') from None
    return model

  # --- forward --------------------------------------------------------------

  def call(self, images, training=False):
    return self.decompose(images, training=training)

  def decompose(self, images, training: bool = False) -> Dict[str, tf.Tensor]:
    """Splits images into canonical factors and re-renders them.

    Args:
      images: float32 `[B, S, S, 3]` in [0, 1], S = config image_size.
      training: unused (no layer differs between training and inference).

    Returns:
      dict of NHWC tensors named as the reference's attributes. Tensors
      with 2B rows hold the B originals first, then the B flipped
      (symmetric) versions: canon_depth, canon_albedo, canon_light_*,
      canon_normal, canon_diffuse_shading, canon_im, view, recon_depth,
      recon_normal, recon_im, recon_im_mask, recon_im_mask_both. Also
      canon_depth_raw `[B,S,S]`, input_im `[B,S,S,3]` in [-1,1], the four
      conf_sigma_* maps (None without confidence), loss_depth_sm, and
      recon_sym_axis / input_im_symline for display.
    """
    del training
    cfg = self.cfg
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
      raise ValueError(f'images must be [B, H, W, 3]. Received: shape='
                       f'{images.shape}')
    if images.shape[1] != cfg.image_size or images.shape[2] != cfg.image_size:
      raise ValueError(f'images must be {cfg.image_size}x{cfg.image_size} '
                       f'(config image_size). Received: shape={images.shape}')
    out = {}
    input_im = images * 2.0 - 1.0
    out['input_im'] = input_im
    b = tf.shape(input_im)[0]

    raw = self.netD(input_im)[..., 0]
    out['canon_depth_raw'] = raw
    depth = depth_lib.canonical_depth(raw, cfg.min_depth, cfg.max_depth)
    out['loss_depth_sm'] = depth_lib.smoothness(depth, cfg.min_depth,
                                                cfg.max_depth)
    depth = depth_lib.set_border(depth, cfg.border_depth)
    # The second half feeds the flipped reconstruction; the ablations of
    # Table 2 leave depth or albedo unflipped there.
    out['canon_depth'] = tf.concat(
        [depth, depth[:, :, ::-1] if cfg.flip_depth else depth], 0)
    albedo = self.netA(input_im)
    out['canon_albedo'] = tf.concat(
        [albedo, albedo[:, :, ::-1] if cfg.flip_albedo else albedo], 0)
    if self.netC is not None:
      out.update(confidence.split_sigmas(*self.netC(input_im)))
    else:
      out.update({k: None for k in ('conf_sigma_l1', 'conf_sigma_l1_flip',
                                    'conf_sigma_percl',
                                    'conf_sigma_percl_flip')})
    light_raw = tf.tile(self.netL(input_im), [2, 1])
    out['canon_light_a'], out['canon_light_b'], out['canon_light_d'] = (
        light.canonical_light(light_raw, cfg.min_amb_light, cfg.max_amb_light,
                              cfg.min_diff_light, cfg.max_diff_light))
    out['canon_normal'] = render.depth_to_normals(out['canon_depth'], self.K)
    out['canon_im'], out['canon_diffuse_shading'] = render.shade(
        out['canon_albedo'], out['canon_normal'], out['canon_light_a'],
        out['canon_light_b'], out['canon_light_d'])
    out['view'] = view.viewpoint(tf.tile(self.netV(input_im), [2, 1]),
                                 cfg.xyz_rotation_range,
                                 cfg.xy_translation_range,
                                 cfg.z_translation_range)

    recon_depth = render.render_depth(
        out['canon_depth'], out['view'], self.K, cfg.rot_center_depth,
        cfg.min_depth, cfg.max_depth, anti_aliasing=cfg.anti_aliasing)
    out['recon_depth'] = recon_depth
    out['recon_normal'] = render.depth_to_normals(recon_depth, self.K)
    grid = render.inverse_warp_grid(recon_depth, out['view'], self.K,
                                    cfg.rot_center_depth)
    recon_im = render.grid_sample(out['canon_im'], grid)
    mask = depth_lib.valid_mask(recon_depth, cfg.min_depth, cfg.max_depth)
    mask_both = tf.stop_gradient(tf.tile((mask[:b] * mask[b:])[..., None],
                                         [2, 1, 1, 1]))
    out['recon_im_mask'] = mask[..., None]
    out['recon_im_mask_both'] = mask_both
    out['recon_im'] = recon_im * mask_both

    s = cfg.image_size
    axis = tf.cast((tf.range(s) >= s // 2 - 1) & (tf.range(s) < s // 2 + 1),
                   tf.float32)
    axis = tf.tile(tf.reshape(axis, [1, 1, s, 1]), [2 * b, s, 1, 1])
    sym = render.grid_sample(axis, grid) * mask_both
    out['recon_sym_axis'] = sym
    green = tf.constant([-1.0, 1.0, -1.0])
    out['input_im_symline'] = (0.5 * sym) * green + (1 - 0.5 * sym) * tf.tile(
        input_im, [2, 1, 1, 1])
    return out

  # --- losses and metrics ---------------------------------------------------

  def perceptual_features(self, images_pm1):
    if self.vgg is None:
      self.load_perceptual()
    return precision.to_float32(self.vgg(images_pm1))

  def compute_losses(self, outputs, images=None, epoch=0,
                     depth_gt=None) -> Dict[str, tf.Tensor]:
    """The reference's losses.

    Args:
      outputs: the dict of `decompose`.
      images: unused (the input is `outputs['input_im']`); kept for the
        documented signature.
      epoch: current epoch (for the lambda_flip schedule).
      depth_gt: ground-truth depth `[B, S, S]`, used only when the config
        asks for the supervised baseline (`supervised_depth`).

    Returns:
      dict with loss_l1_im, loss_l1_im_flip, loss_perc_im, loss_perc_im_flip
      (0 when lam_perc == 0), loss_depth_sm, loss_total.
    """
    del images
    cfg = self.cfg
    inp = outputs['input_im']
    b = tf.shape(inp)[0]
    recon, mask = outputs['recon_im'], outputs['recon_im_mask_both']
    res = {
        'loss_l1_im': losses.photometric_loss(
            recon[:b], inp, mask[:b], outputs['conf_sigma_l1']),
        'loss_l1_im_flip': losses.photometric_loss(
            recon[b:], inp, mask[b:], outputs['conf_sigma_l1_flip']),
        'loss_depth_sm': outputs['loss_depth_sm'],
    }
    lam_flip = losses.flip_weight(epoch, cfg.lam_flip, cfg.lam_flip_start_epoch)
    perc = perc_flip = None
    if cfg.lam_perc > 0:
      feats = self.perceptual_features(tf.concat([recon, inp], 0))
      f_recon, f_in = feats[:2 * b], feats[2 * b:]
      perc = losses.feature_loss(f_recon[:b], f_in, mask[:b],
                                 outputs['conf_sigma_percl'])
      perc_flip = losses.feature_loss(f_recon[b:], f_in, mask[b:],
                                      outputs['conf_sigma_percl_flip'])
    zero = tf.zeros([], tf.float32)
    res['loss_perc_im'] = perc if perc is not None else zero
    res['loss_perc_im_flip'] = perc_flip if perc_flip is not None else zero
    total = losses.total_loss(res['loss_l1_im'], res['loss_l1_im_flip'], perc,
                              perc_flip, res['loss_depth_sm'], lam_flip,
                              cfg.lam_perc, cfg.lam_depth_sm)
    if cfg.supervised_depth:
      if depth_gt is None:
        raise ValueError('supervised_depth needs ground-truth depth '
                         '(load_gt_depth: true).')
      valid = tf.cast(depth_gt < tf.reduce_max(depth_gt), tf.float32)
      err = tf.abs(outputs['recon_depth'][:b] - depth_gt) / (
          cfg.max_depth - cfg.min_depth)
      res['loss_depth_gt'] = losses.masked_mean(err, valid)
      total = total + res['loss_depth_gt']
    res['loss_total'] = total
    return res

  def depth_from_png(self, depth_p):
    """Ground-truth depth PNG values p `[B, S, S(, 1)]` -> depth `[B, S, S]`."""
    return depth_lib.depth_from_png(depth_p, self.cfg.min_depth,
                                    self.cfg.max_depth)

  def compute_metrics(self, outputs, depth_gt) -> Dict[str, tf.Tensor]:
    """SIDE, MAD, MAE, MSE per image (SPEC §6).

    Args:
      outputs: the dict of `decompose`.
      depth_gt: ground-truth depth `[B, S, S]` in the input view (use
        `depth_from_png` for the ground-truth layout's PNG values).

    Returns:
      dict of `[B]` tensors `mae`, `mse`, `side`, `mad` and `[B,S,S]` maps.
    """
    b = tf.shape(depth_gt)[0]
    return metrics.depth_metrics(outputs['recon_depth'][:b], outputs[
        'recon_im_mask'][:b, ..., 0], depth_gt, self.K)

  def with_config(self, **overrides) -> 'Unsup3D':
    """A new model with `overrides` applied and this model's weights."""
    model = Unsup3D(dataclasses.replace(self.cfg, **overrides))
    for name, net in model.networks.items():
      net.set_weights(self.networks[name].get_weights())
    return model
