"""The Unsup3D model: five networks, the renderer settings, losses, metrics."""

import functools
import math
from typing import Dict, Optional, Union

import keras
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import losses, metrics, render
from tfunsup3d.convert.reference import load_vgg16_weights
from tfunsup3d.factors import confidence, depth as depth_lib, light, view
from tfunsup3d.networks import ConfNet, EDDeconv, Encoder, VGG16Features
from tfunsup3d.networks import encoder, precision
from tfunsup3d.networks.vgg import MISSING_WEIGHTS_HELP

NETWORK_NAMES = ('netD', 'netA', 'netL', 'netV', 'netC')
# The batch priors: loss term, config keys of its setting (a minimum
# spread; 0: off) and of its weight, its value fn(outputs, B, setting,
# config), and whether it waits for `prior_start_step`.
_BATCH_PRIORS = (
    ('loss_yaw_std', 'min_yaw_std', 'lam_yaw_std',
     lambda out, b, least, _: losses.yaw_spread(out['view'][:b, 1], least),
     True),
    ('loss_light_std', 'min_light_tilt_std', 'lam_light_std',
     lambda out, b, least, _: losses.light_tilt_spread(
         out['canon_light_d'][:b], least), True),
    # No setting but its weight (0: off).
    ('loss_yaw_shift_corr', 'lam_yaw_shift_corr', 'lam_yaw_shift_corr',
     lambda out, b, *_: losses.yaw_shift_correlation(out['view'][:b]), True),
    ('loss_protrusion', 'lam_protrusion', 'lam_protrusion',
     lambda out, b, _, cfg: losses.protrusion(
         out['canon_depth'][:b], cfg.min_depth, cfg.max_depth), False),
)
# The canonical depth's regularisers (`Unsup3D._depth_terms`).
_DEPTH_TERMS = ('loss_depth_sm', 'loss_depth_curv', 'loss_depth_ripple')
# The confidence maps of `canonical` (None without netC).
CONF_KEYS = ('conf_sigma_l1', 'conf_sigma_l1_flip', 'conf_sigma_percl',
             'conf_sigma_percl_flip')


@keras.saving.register_keras_serializable(package='tfunsup3d')
class Unsup3D(keras.Model):
  """Unsup3D: canonical depth, albedo, light and view from one image.

  Owns netD, netA (EDDeconv), netL, netV (Encoder), netC (ConfNet, when
  `use_conf_map`) and, when `lam_perc > 0`, the frozen VGG16 of the
  perceptual loss (weights from `vgg16_weights`: a local file, or
  `imagenet`, downloaded once into Keras' cache). Image formation is the
  pure functions of `tfunsup3d.render`. `decompose(images)` is
  `reconstruct(canonical(images))`: `canonical` runs the networks and gives
  the B inputs' factors, `reconstruct` adds the flipped half, shading,
  rendering, warp and masks.

  Args:
    config: a `tfunsup3d.config.Config` (or a dict of its keys).
    **kwargs: passed to `keras.Model`.

  Example:
  ```python
  model = Unsup3D(config.load('configs/quickstart.yml'))
  out = model.decompose(images)  # images [B, S, S, 3] in [0, 1]
  out['canon_depth'][:B]         # canonical depth, [B, S, S]
  factors = model.canonical(images)  # only the B inputs' factors
  factors['canon_depth']             # the same [B, S, S]
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
    if not encoder.size_fits(cfg.image_size):
      raise config_lib.ConfigError(
          f'image_size={cfg.image_size}: the networks take sides that are '
          f'{encoder.SIZE_RULE} (64, 80, 96, 128, ...)')
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
    if cfg.depth_init_scale != 1:
      last = self.netD.network_layers[-1].kernel
      last.assign(last * cfg.depth_init_scale)

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
  def from_checkpoint(cls, path: str, **config_overrides) -> 'Unsup3D':
    """`tfunsup3d.saving.load(path, **config_overrides)`.

    Args:
      path: a tfunsup3d checkpoint directory (its `config.yml` and newest
        loadable TF checkpoint), a TF checkpoint prefix, a `.pth` file
        (reference or tfunsup3d-written) or a SavedModel version directory.
      **config_overrides: config keys over the checkpoint's own config.

    Raises:
      tfunsup3d.errors.CheckpointError: see `tfunsup3d.saving.load`.
    """
    del cls  # One door: every format is built by tfunsup3d.saving.
    from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
    return saving.load(path, **config_overrides)

  # --- forward --------------------------------------------------------------

  def call(self, images, training=False):
    return self.decompose(images, training=training)

  def decompose(self, images, training: bool = False,
                relief=1.0, K=None) -> Dict[str, tf.Tensor]:
    """Splits images into canonical factors and re-renders them:
    `reconstruct(canonical(images, relief))`.

    Args:
      images: float32 `[B, S, S, 3]` in [0, 1], S = config image_size.
      training: see `canonical` (no layer differs between training and
        inference; only config `remat` looks at it).
      relief: see `canonical`.
      K: see `reconstruct`.

    Returns:
      The dict of `reconstruct`.
    """
    return self.reconstruct(self.canonical(images, relief, training), K)

  def canonical(self, images, relief=1.0,
                training: bool = False) -> Dict[str, tf.Tensor]:
    """The first half of `decompose`: the factors of the B input images.

    Args:
      images: float32 `[B, S, S, 3]` in [0, 1], S = config image_size.
      relief: scalar in (0, 1]: the fraction of [min_depth, max_depth] the
        canonical depth spans about its centre (the relief curriculum,
        train/curriculum.py); 1 (inference): the whole range.
      training: see `image_networks`.

    Returns:
      dict named as the reference's attributes, B rows each (no flipped
      copies): input_im `[B,S,S,3]` in [-1,1], canon_depth_raw `[B,S,S]`,
      canon_depth `[B,S,S]` (with its border), canon_albedo `[B,S,S,3]`,
      canon_light_a, canon_light_b `[B,1]`, canon_light_d `[B,3]`, view
      `[B,6]`, conf_sigma_l1, conf_sigma_l1_flip `[B,S,S,1]`,
      conf_sigma_percl, conf_sigma_percl_flip `[B,S/4,S/4,1]` (None without
      confidence), the scalars of `_depth_terms` (loss_depth_sm, ...).

    Raises:
      ValueError: `images` is not `[B, S, S, 3]`.
    """
    cfg = self.cfg
    images = tf.convert_to_tensor(images, tf.float32)
    if images.shape.rank != 4 or images.shape[-1] != 3:
      raise ValueError(f'images must be [B, H, W, 3]. Received: shape='
                       f'{images.shape}')
    if images.shape[1] != cfg.image_size or images.shape[2] != cfg.image_size:
      raise ValueError(f'images must be {cfg.image_size}x{cfg.image_size} '
                       f'(config image_size). Received: shape={images.shape}')
    input_im = images * 2.0 - 1.0
    net_d, net_a, net_c = self.image_networks(training)
    raw = net_d(input_im)[..., 0]
    lo, hi = cfg.min_depth, cfg.max_depth
    if not (isinstance(relief, float) and relief == 1.0):
      mid, half = (lo + hi) / 2.0, (hi - lo) / 2.0 * relief
      lo, hi = mid - half, mid + half
    depth = depth_lib.canonical_depth(raw, lo, hi, cfg.depth_centering,
                                      cfg.border_depth)
    out = {
        'input_im': input_im,
        'canon_depth_raw': raw,
        'canon_depth': depth_lib.set_border(depth, cfg.border_depth),
        'canon_albedo': net_a(input_im),
        **self._depth_terms(depth),
    }
    if net_c is not None:
      out.update(confidence.split_sigmas(*net_c(input_im)))
    else:
      out.update(dict.fromkeys(CONF_KEYS))
    out['canon_light_a'], out['canon_light_b'], out['canon_light_d'] = (
        light.canonical_light(self.netL(input_im), cfg.min_amb_light,
                              cfg.max_amb_light, cfg.min_diff_light,
                              cfg.max_diff_light))
    out['view'] = view.viewpoint(self.netV(input_im), cfg.xyz_rotation_range,
                                 cfg.xy_translation_range,
                                 cfg.z_translation_range)
    return out

  def _depth_terms(self, depth) -> Dict[str, tf.Tensor]:
    """loss_depth_sm and, with lam_depth_curv > 0 or a
    depth_curv_curriculum, loss_depth_curv, and with lam_depth_ripple > 0
    loss_depth_ripple, of the canonical depth before its border
    `[B,S,S]`."""
    lo, hi = self.cfg.min_depth, self.cfg.max_depth
    terms = {'loss_depth_sm': depth_lib.smoothness(depth, lo, hi)}
    if self.cfg.lam_depth_curv > 0 or self.cfg.depth_curv_curriculum:
      terms['loss_depth_curv'] = depth_lib.curvature(
          depth, lo, hi, self.cfg.depth_curv_min_radius)
    if self.cfg.lam_depth_ripple > 0:
      terms['loss_depth_ripple'] = depth_lib.ripple(depth, lo, hi)
    return terms

  def image_networks(self, training: bool = False):
    """netD, netA and netC (None without confidence maps) as `canonical`
    calls them. With `training`, per `config.remat_mode`: 'light' runs them
    with `recompute=True` (the layers between their convolutions are
    recomputed in the backward pass, see `encoder.run_sequence`);
    'networks' runs them under `tf.recompute_grad`, so that a gradient taken
    through them recomputes all their activations instead of keeping them
    from the forward pass. Either way the same values and gradients, less
    memory; 'networks' also costs their forward pass again.

    'networks' recomputes netC only when lam_perc > 0: `tf.recompute_grad`
    gives a zero gradient, not None, to a variable the loss does not reach,
    and without the perceptual loss netC's perceptual head is such a
    variable; a zero gradient would still move it (weight decay, Adam), a
    None does not. ('light' has no such case: a run of layers whose output
    the loss does not reach gets no gradient call at all.)
    """
    nets = (self.netD, self.netA, self.netC)
    mode = config_lib.remat_mode(self.cfg) if training else 'none'
    if mode == 'light':
      return tuple(None if net is None else
                   functools.partial(net, recompute=True) for net in nets)
    if mode == 'none':
      return nets
    recompute = (True, True, self.cfg.lam_perc > 0)
    return tuple(tf.recompute_grad(net) if net is not None and on else net
                 for net, on in zip(nets, recompute))

  def shade(self, factors, K=None) -> Dict[str, tf.Tensor]:
    """Normals, diffuse shading and the shaded canonical image.

    Args:
      factors: dict with canon_depth `[N,S,S]`, canon_albedo `[N,S,S,3]`,
        canon_light_a, canon_light_b `[N,1]`, canon_light_d `[N,3]` (any
        N: the B rows of `canonical` or the 2B of `reconstruct`).
      K: see `reconstruct`.

    Returns:
      dict with canon_normal `[N,S,S,3]`, canon_diffuse_shading
      `[N,S,S,1]` and canon_im `[N,S,S,3]`.
    """
    normal = render.depth_to_normals(factors['canon_depth'],
                                     self.K if K is None else K)
    canon_im, shading = render.shade(
        factors['canon_albedo'], normal, factors['canon_light_a'],
        factors['canon_light_b'], factors['canon_light_d'])
    return {'canon_normal': normal, 'canon_diffuse_shading': shading,
            'canon_im': canon_im}

  def reconstruct(self, factors, K=None) -> Dict[str, tf.Tensor]:
    """The second half of `decompose`: flip, shade, render, warp, mask.

    Args:
      factors: the dict of `canonical` (B rows).
      K: `[3, 3]` camera matrix; None: the configured one (`self.K`).
        Training on centre crops passes the crops' (config `crop_camera`).

    Returns:
      `factors` with canon_depth, canon_albedo, canon_light_*, view
      replaced by 2B rows (the B originals first, then the B flipped,
      i.e. symmetric, versions; config flip_depth / flip_albedo false keep
      that map unflipped in the second half), and 2B rows of canon_normal,
      canon_diffuse_shading, canon_im, recon_depth `[2B,S,S]`,
      recon_normal, recon_im `[2B,S,S,3]` (0 where invalid), recon_im_mask
      and recon_im_mask_both `[2B,S,S,1]`.
    """
    cfg = self.cfg
    K = self.K if K is None else K
    b = tf.shape(factors['canon_depth'])[0]
    out = dict(factors)
    out.update(self._symmetric(factors))
    out.update(self.shade(out, K))
    recon_depth = self.render_depth(out['canon_depth'], out['view'], K)
    out['recon_depth'] = recon_depth
    out['recon_normal'] = render.depth_to_normals(recon_depth, K)
    grid = render.inverse_warp_grid(recon_depth, out['view'], K,
                                    cfg.rot_center_depth)
    recon_im = render.grid_sample(out['canon_im'], grid)
    mask = depth_lib.valid_mask(recon_depth, cfg.min_depth, cfg.max_depth)
    mask_both = tf.stop_gradient(tf.tile((mask[:b] * mask[b:])[..., None],
                                         [2, 1, 1, 1]))
    out['recon_im_mask'] = mask[..., None]
    out['recon_im_mask_both'] = mask_both
    out['recon_im'] = recon_im * mask_both
    return out

  def _symmetric(self, factors) -> Dict[str, tf.Tensor]:
    """B rows -> 2B: the originals, then the horizontally flipped maps with
    the same light and view. The ablations of Table 2 (config flip_depth /
    flip_albedo false) leave depth or albedo unflipped there."""
    cfg = self.cfg
    depth, albedo = factors['canon_depth'], factors['canon_albedo']
    out = {
        'canon_depth': tf.concat(
            [depth, depth[:, :, ::-1] if cfg.flip_depth else depth], 0),
        'canon_albedo': tf.concat(
            [albedo, albedo[:, :, ::-1] if cfg.flip_albedo else albedo], 0),
    }
    for key in ('canon_light_a', 'canon_light_b', 'canon_light_d', 'view'):
      out[key] = tf.tile(factors[key], [2, 1])
    return out

  # --- losses and metrics ---------------------------------------------------

  def perceptual_features(self, images_pm1):
    if self.vgg is None:
      self.load_perceptual()
    return precision.to_float32(self.vgg(images_pm1))

  def compute_losses(self, outputs, images=None, epoch=0, depth_gt=None,
                     step=None) -> Dict[str, tf.Tensor]:
    """The reference's losses (docs/method.md §4), exact on any replicas.

    Each term is a mean over the batch, its sum divided by its count by
    `losses.global_means`: in a replica context of N > 1 replicas the count
    is summed over them first, so each value is this replica's part and the
    SUM over the replicas of a value (and of its gradient) is the one-device
    value on the global batch. Otherwise the values are the plain means.

    Args:
      outputs: the dict of `decompose`.
      images: unused (the input is `outputs['input_im']`); kept for the
        documented signature.
      epoch: current epoch (for the lambda_flip schedule).
      depth_gt: ground-truth depth `[B, S, S]`, used only when the config
        asks for the supervised baseline (`supervised_depth`).
      step: the training step (an integer scalar): the cycles' draws
        and `prior_start_step`; None: step 0's draw, the priors on.

    Returns:
      dict with loss_l1_im, loss_l1_im_flip, loss_perc_im, loss_perc_im_flip
      (0 when lam_perc == 0), loss_depth_sm (+ loss_depth_gt when
      supervised, + loss_view_cycle, loss_light_cycle and the batch
      priors' terms that are on), loss_total.
    """
    del images
    cfg = self.cfg
    inp = outputs['input_im']
    b = tf.shape(inp)[0]
    recon, mask = outputs['recon_im'], outputs['recon_im_mask_both']
    sums = {}  # term -> (sum, count) over this replica's batch
    sums['loss_l1_im'] = losses.photometric_sum(
        recon[:b], inp, mask[:b], outputs['conf_sigma_l1'])
    sums['loss_l1_im_flip'] = losses.photometric_sum(
        recon[b:], inp, mask[b:], outputs['conf_sigma_l1_flip'])
    if cfg.lam_perc > 0:
      # Input features without gradient (VGG16's backward runs on the 2B
      # recons only); one split: a slice's gradient pads a copy of all 2B.
      f_im, f_flip = tf.split(self.perceptual_features(recon), 2)
      f_in = tf.stop_gradient(self.perceptual_features(inp))
      sums['loss_perc_im'] = losses.feature_sum(
          f_im, f_in, mask[:b], outputs['conf_sigma_percl'])
      sums['loss_perc_im_flip'] = losses.feature_sum(
          f_flip, f_in, mask[b:], outputs['conf_sigma_percl_flip'])
    if cfg.supervised_depth:
      sums['loss_depth_gt'] = self._depth_gt_sum(outputs, depth_gt, b)
    if cfg.lam_view_cycle > 0 or cfg.lam_light_cycle > 0:
      for key, errors in self.cycle_errors(outputs, b, step).items():
        sums[key] = (tf.reduce_sum(errors), tf.cast(b, tf.float32))
    res = losses.global_means(sums, self._prior_means(outputs, b))
    lam_flip = losses.flip_weight(epoch, cfg.lam_flip, cfg.lam_flip_start_epoch)
    res['loss_total'] = losses.total_loss(
        res['loss_l1_im'], res['loss_l1_im_flip'], res.get('loss_perc_im'),
        res.get('loss_perc_im_flip'), res['loss_depth_sm'], lam_flip,
        cfg.lam_perc, cfg.lam_depth_sm) + res.get(
            'loss_depth_gt', 0.0) + self._weighted_priors(res, step)
    zero = tf.zeros([], tf.float32)
    return dict({'loss_perc_im': zero, 'loss_perc_im_flip': zero}, **res)

  def _depth_gt_sum(self, outputs, depth_gt, b):
    """(sum, count) of the supervised baseline's L1 on depth (in units of
    the depth range) over the ground truth's object pixels."""
    if depth_gt is None:
      raise ValueError('supervised_depth needs ground-truth depth '
                       '(load_gt_depth: true).')
    valid = tf.cast(depth_gt < tf.reduce_max(depth_gt), tf.float32)
    return losses.masked_sum(tf.abs(outputs['recon_depth'][:b] - depth_gt) / (
        self.cfg.max_depth - self.cfg.min_depth), valid)

  def _weighted_priors(self, res, step):
    """The sum of the priors' and the cycles' terms in `res`, each
    times its weight; those that wait for `prior_start_step` only from it
    on (all of them when `step` is None); the curvature's weight at `step`
    of `depth_curv_curriculum` (lam_depth_curv when `step` is None)."""
    cfg = self.cfg
    on = (1.0 if step is None or cfg.prior_start_step == 0 else
          tf.cast(step >= cfg.prior_start_step, tf.float32))
    curv = cfg.lam_depth_curv
    if cfg.depth_curv_curriculum and step is not None:
      start, hold, ramp = cfg.depth_curv_curriculum
      curv = losses.scheduled_weight(step, start, curv, hold, ramp)
    terms = [(k, getattr(cfg, lam) * (on if waits else 1.0))
             for k, _, lam, _, waits in _BATCH_PRIORS] + [
                 ('loss_depth_curv', curv),
                 ('loss_depth_ripple', cfg.lam_depth_ripple),
                 ('loss_view_cycle', cfg.lam_view_cycle * on),
                 ('loss_light_cycle', cfg.lam_light_cycle * on)]
    return sum(w * res[k] for k, w in terms if k in res)

  def _prior_means(self, outputs, b) -> Dict[str, tuple]:
    """The priors' (mean, count) for `losses.global_means`: the depth
    smoothness and, when on, curvature and ripple, means over the B images'
    pixels, and the yaw- and light-spread priors (`min_yaw_std`,
    `min_light_tilt_std` > 0) and the yaw/shift decorrelation and the
    protrusion prior (`lam_yaw_shift_corr`, `lam_protrusion` > 0), one value
    per replica's batch."""
    means = {k: (outputs[k], tf.cast(b, tf.float32))
             for k in _DEPTH_TERMS if k in outputs}
    for key, least_key, _, prior, _ in _BATCH_PRIORS:
      least = getattr(self.cfg, least_key)
      if least > 0:
        means[key] = (prior(outputs, b, least, self.cfg), tf.constant(1.0))
    return means

  def cycle_errors(self, outputs, b, step=None) -> Dict[str, tf.Tensor]:
    """The view and light cycles' per-image errors (config
    `lam_view_cycle`, `lam_light_cycle`).

    The first B rows' canonical factors (gradient stopped) are rendered
    once more, as `reconstruct` renders them (`render_view`), with the
    predicted view and light but, for the view cycle, a yaw drawn uniformly
    from +-`view_cycle_max_yaw` and, for the light cycle, light tilts
    (dx/dz, dy/dz) drawn uniformly from +-`light_cycle_max_tilt`; the
    draws are seeded by (seed + 2, step) and (seed + 3, step), so every
    replica draws the same pattern for its share. The errors are |netV's
    yaw on the render - the drawn yaw|, in netV's output units (degrees /
    xyz_rotation_range), and the mean over x and y of |netL's tilt - the
    drawn tilt|. Only netV and netL get gradients, each from its own error.

    Args:
      outputs: the dict of `decompose`.
      b: the number of input images B.
      step: the training step (integer scalar); None: 0.

    Returns:
      dict with loss_view_cycle and/or loss_light_cycle `[B]`, those on.
    """
    cfg = self.cfg
    step = tf.cast(0 if step is None else step, tf.int32)

    def draw(offset, shape, largest):
      seed = tf.stack([tf.constant(cfg.seed + offset, tf.int32), step])
      return tf.random.stateless_uniform(shape, seed, -1.0, 1.0) * largest

    out = {k: tf.stop_gradient(outputs[k][:b]) for k in (
        'canon_depth', 'canon_im', 'view')}
    errors = {}
    if cfg.lam_light_cycle > 0:
      tilt = draw(3, [b, 2], cfg.light_cycle_max_tilt)
      out['canon_im'], _ = render.shade(
          *(tf.stop_gradient(outputs[k][:b]) for k in (
              'canon_albedo', 'canon_normal', 'canon_light_a',
              'canon_light_b')), light.direction(tilt))
    if cfg.lam_view_cycle > 0:
      yaw = draw(2, [b], cfg.view_cycle_max_yaw / cfg.xyz_rotation_range)
      out['view'] = tf.concat([out['view'][:, :1], yaw[:, None] * (
          math.pi / 180.0 * cfg.xyz_rotation_range), out['view'][:, 2:]], 1)
    image = self.render_view(out['canon_depth'], out['canon_im'], out['view'])
    if cfg.lam_view_cycle > 0:
      errors['loss_view_cycle'] = tf.abs(
          precision.to_float32(self.netV(image))[:, 1] - yaw)
    if cfg.lam_light_cycle > 0:
      errors['loss_light_cycle'] = tf.reduce_mean(tf.abs(
          precision.to_float32(self.netL(image))[:, 2:] - tilt), 1)
    return errors

  def render_view(self, canon_depth, canon_im, view) -> tf.Tensor:
    """A shaded canonical image rendered from `view`, as an input image.

    Args:
      canon_depth: `[N,S,S]`.
      canon_im: `[N,S,S,3]`, the canonical image `shade` gives.
      view: `[N,6]` (radians, scene units).

    Returns:
      `[N,S,S,3]` in about [-1, 1]: `reconstruct`'s image where it is
      valid; the pixels the canonical map does not cover take the colour of
      its nearest edge (`reconstruct` leaves them 0), as a photo shows
      something there.
    """
    depth = self.render_depth(canon_depth, view)
    grid = tf.clip_by_value(render.inverse_warp_grid(
        depth, view, self.K, self.cfg.rot_center_depth), -1.0, 1.0)
    return render.grid_sample(canon_im, grid)

  def render_depth(self, canon_depth, view, K=None) -> tf.Tensor:
    """`render.render_depth` with the configured camera (or `K`), rotation
    centre, depth range and anti-aliasing: the depth `[N,S,S]` that the
    canonical depth `[N,S,S]` shows from `view` `[N,6]`."""
    cfg = self.cfg
    return render.render_depth(canon_depth, view,
                               self.K if K is None else K,
                               cfg.rot_center_depth, cfg.min_depth,
                               cfg.max_depth, anti_aliasing=cfg.anti_aliasing)

  def depth_from_png(self, depth_p):
    """Ground-truth depth PNG values p `[B, S, S(, 1)]` -> depth `[B, S, S]`."""
    return depth_lib.depth_from_png(depth_p, self.cfg.min_depth,
                                    self.cfg.max_depth)

  def compute_metrics(self, outputs, depth_gt,
                      K=None) -> Dict[str, tf.Tensor]:
    """SIDE, MAD, MAE, MSE per image (docs/method.md §6).

    Args:
      outputs: the dict of `decompose`.
      depth_gt: ground-truth depth `[B, S, S]` in the input view (use
        `depth_from_png` for the ground-truth layout's PNG values).
      K: the camera `decompose` was given (None: `self.K`).

    Returns:
      dict of `[B]` tensors `mae`, `mse`, `side`, `mad` and `[B,S,S]` maps.
    """
    b = tf.shape(depth_gt)[0]
    return metrics.depth_metrics(outputs['recon_depth'][:b], outputs[
        'recon_im_mask'][:b, ..., 0], depth_gt, self.K if K is None else K)

  def with_config(self, **overrides) -> 'Unsup3D':
    """A new model with `overrides` applied and this model's weights.

    Raises:
      tfunsup3d.errors.CheckpointError: an override changes a network shape
        (`tfunsup3d.saving.SHAPE_KEYS`).
    """
    from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
    model = Unsup3D(saving.merge_config(self.cfg.to_dict(), 'this model',
                                        overrides=overrides))
    for name, net in model.networks.items():
      net.set_weights(self.networks[name].get_weights())
    return model
