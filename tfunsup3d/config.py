"""The one place for configuration.

`Config` holds every key of the reference's YAML files (so a reference
`experiments/*.yml` loads unchanged) plus the keys this project adds. Values
come, in increasing priority, from the defaults below, a YAML file, and
`KEY=VALUE` overrides (the console scripts turn `--KEY=VALUE` flags into
those).

Each field carries its documentation as metadata (`field_help`): `help` (one
or two sentences), `section` (trainer, data, model, renderer, networks,
export) and, for some, `compat` (the key is accepted for compatibility with
the reference only and has no effect; the text says what happens instead).
`Config.resolved()` checks every value and warns once per process about a
compatibility-only key set to a non-default value.
"""

import dataclasses
import functools
import math
import os
import reprlib
import typing
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from absl import logging
import yaml

from tfunsup3d.errors import UserError

SECTIONS = ('trainer', 'data', 'model', 'renderer', 'networks', 'export')


class ConfigError(UserError, ValueError):
  """A config value that cannot be right; names the key and the value."""


# pylint: disable=redefined-builtin
def _key(default: Any = None, help: str = '', section: str = '',
         factory: Optional[Callable[[], Any]] = None,
         **metadata: Any) -> Any:
  """A `Config` field with its help text and section as metadata."""
  metadata = dict(help=help, section=section, **metadata)
  if factory is not None:
    return dataclasses.field(default_factory=factory, metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


def _compat(default: Any, help: str, section: str, instead: str) -> Any:
  """A field accepted only for compatibility; `instead` says what is true."""
  return _key(default, f'{help} No effect (accepted for compatibility with '
              f'the reference): {instead}', section, compat=instead)
# pylint: enable=redefined-builtin


_T, _D, _M, _R = 'trainer', 'data', 'model', 'renderer'
_N, _E = 'networks', 'export'


@dataclasses.dataclass
class Config:
  """Unsup3D configuration; field names are the reference's YAML keys.

  Derived values (`border_depth`, `rot_center_depth`) default to `None` and are
  resolved by `resolved()`, exactly as the reference derives them. Each
  field's help and section are in its metadata (`field_help(name)`).
  """
  # --- reference keys: trainer ---
  model_name: str = _key('unsup3d', 'Experiment name.', _T)
  device: str = _compat(
      'cpu', 'Reference training device.', _T,
      'TensorFlow places ops itself; choose devices with CUDA_VISIBLE_DEVICES '
      'and the strategy key.')
  run_train: bool = _compat(
      False, 'Reference run.py switch to train.', _T,
      'the console script decides; tfunsup3d-train trains.')
  run_test: bool = _compat(
      False, 'Reference run.py switch to test.', _T,
      'the console script decides; tfunsup3d-test tests.')
  num_epochs: int = _key(30, 'Number of training epochs (0: none).', _T)
  batch_size: int = _key(64, 'Images per batch (over all replicas).', _T)
  checkpoint_dir: str = _key(
      'results', 'Directory of checkpoints (and by default logs).', _T)
  save_checkpoint_freq: int = _key(
      1, 'Save a checkpoint every N epochs (<= 0: after the last only).', _T)
  keep_num_checkpoint: int = _key(
      2, 'Keep the N newest checkpoints (<= 0: all).', _T)
  resume: bool = _key(
      True, 'Resume from the newest checkpoint in checkpoint_dir.', _T)
  use_logger: bool = _key(True, 'Write TensorBoard summaries.', _T)
  log_freq: int = _key(
      1000, 'Write the visualisation summaries every N steps.', _T)
  archive_code: bool = _compat(
      False, 'Reference switch to archive the code with the run.', _T,
      'no code archive is written; the checkpoint directory keeps the '
      'config.yml.')
  checkpoint_name: Optional[str] = _key(
      None, 'Checkpoint (in checkpoint_dir) to load for testing.', _T)
  test_result_dir: Optional[str] = _key(
      None, 'Where testing writes its results (default '
      'checkpoint_dir/test_results).', _T)
  seed: int = _key(0, 'Random seed (>= 0).', _T)
  # --- reference keys: data ---
  num_workers: int = _key(
      4, 'Parallel data-loading calls (>= 0; 0 and 1: one call, as the '
      'reference\'s loader in the main process).', _D)
  image_size: int = _key(64, 'Side of the square network input, in pixels.',
                         _D)
  crop: Optional[Union[int, List[int]]] = _key(
      None, 'Crop before resizing: int = centre crop, or [y0, x0, h, w].', _D)
  load_gt_depth: bool = _key(
      False, 'Load ground-truth depth paired with each image.', _D)
  paired_data_dir_names: List[str] = _key(
      help='Sub-directories of the image/depth pairs.', section=_D,
      factory=lambda: ['image', 'depth'])
  paired_data_filename_diff: List[str] = _key(
      help='File-name parts to swap image -> depth.', section=_D,
      factory=lambda: ['image', 'depth'])
  train_val_data_dir: str = _key(
      './data', 'Data set root with train/ and val/.', _D)
  test_data_dir: Optional[str] = _key(None, 'Test images directory.', _D)
  # --- reference keys: model ---
  min_depth: float = _key(0.9, 'Minimum canonical depth (> 0).', _M)
  max_depth: float = _key(1.1, 'Maximum canonical depth.', _M)
  border_depth: Optional[float] = _key(
      None, 'Depth at the image border (default 0.7*max + 0.3*min).', _M)
  depth_centering: str = _key(
      'mean', "How netD's raw map is centred before tanh: mean (the "
      "reference: each image's mean maps to the middle of the depth range), "
      'none, or border (the border columns map to border_depth); see '
      'docs/experiments.md.', _M)
  min_amb_light: float = _key(0.0, 'Minimum ambient light coefficient.', _M)
  max_amb_light: float = _key(1.0, 'Maximum ambient light coefficient.', _M)
  min_diff_light: float = _key(0.0, 'Minimum diffuse light coefficient.', _M)
  max_diff_light: float = _key(1.0, 'Maximum diffuse light coefficient.', _M)
  xyz_rotation_range: float = _key(
      60.0, 'View rotation range (-r, r), degrees.', _M)
  xy_translation_range: float = _key(
      0.1, 'View x/y translation range (-t, t), 3D units.', _M)
  z_translation_range: float = _key(
      0.1, 'View z translation range (-t, t), 3D units.', _M)
  use_conf_map: bool = _key(
      True, 'Predict confidence maps (netC) to weight the losses.', _M)
  lam_perc: float = _key(1.0, 'Weight of the perceptual (VGG16) loss.', _M)
  lam_flip: float = _key(0.5, 'Weight of the flipped-reconstruction loss.',
                         _M)
  lam_flip_start_epoch: int = _key(
      0, 'Epoch from which the flip loss is used.', _M)
  lam_depth_sm: float = _key(0.0, 'Weight of the depth smoothness loss.', _M)
  lam_depth_curv: float = _key(
      0.0, 'Weight of the depth curvature loss: the mean |second '
      'difference| of the canonical depth along columns and rows, in units '
      'of the depth range (factors.depth.curvature), which charges ripples '
      'of the pixel grid\'s scale far more than a smooth relief; 0: off '
      '(the reference has none).', _M)
  lam_depth_ripple: float = _key(
      0.0, 'Weight of the depth ripple loss: the part of the canonical '
      'depth\'s second differences that changes sign within 4 pixels, in '
      'units of the depth range (factors.depth.ripple), which charges a '
      'ripple of the pixel grid\'s scale as lam_depth_curv does and a '
      'smooth relief or a ridge not at all; 0: off (the reference has '
      'none).', _M)
  depth_curv_curriculum: Optional[List[float]] = _key(
      None, 'Curvature weight schedule [start, hold_steps, ramp_steps]: the '
      'curvature loss weighted start for hold_steps steps, then linearly '
      'to lam_depth_curv over ramp_steps (evaluation uses lam_depth_curv); '
      'none: lam_depth_curv from the first step.', _M)
  depth_curv_min_radius: float = _key(
      0.0, 'The curvature loss only over the canonical depth at least this '
      'far from its centre, in half-sides (the corners are at 1.41): the '
      'band around a loosely framed object; 0: the whole map.', _M)
  lr: float = _key(1e-4, 'Adam learning rate (> 0).', _M)
  lr_decay: Optional[List[float]] = _key(
      None, 'Learning-rate schedule [hold_steps, ramp_steps, final_scale]: '
      'every network\'s learning rate held for hold_steps steps, then '
      'linearly to final_scale times it over ramp_steps; none: constant '
      '(the reference).', _M)
  view_lr_scale: float = _key(
      1.0, 'Learning-rate multiplier of the view network (netV); 1: the '
      'reference.', _M)
  light_lr_scale: float = _key(
      1.0, 'Learning-rate multiplier of the light network (netL); 1: the '
      'reference.', _M)
  depth_lr_scale: float = _key(
      1.0, 'Learning-rate multiplier of the depth network (netD); 1: the '
      'reference.', _M)
  depth_init_scale: float = _key(
      1.0, 'Multiplier of the depth network\'s last convolution\'s '
      'initial weights, so of the initial canonical depth\'s relief and '
      'its pixel-scale ripple (0: a flat start); a fresh model\'s '
      'initialisation only, loaded weights are kept; 1: the reference.', _M)
  # --- reference keys: renderer ---
  rot_center_depth: Optional[float] = _key(
      None, 'Depth of the rotation centre (default mean depth).', _R)
  fov: float = _key(10.0, 'Camera field of view, degrees, in [1, 179].', _R)
  tex_cube_size: int = _compat(
      2, 'Reference neural-renderer texture size.', _R,
      'the rasteriser draws per-pixel depth and the image is warped by '
      'reprojection (render/reprojection.py); there are no textures.')
  renderer_min_depth: float = _compat(
      0.1, 'Reference renderer near plane.', _R,
      'the rasteriser\'s near plane is fixed at 0.1 (render/rasterizer.py '
      'NEAR).')
  renderer_max_depth: float = _compat(
      10.0, 'Reference renderer far plane.', _R,
      'the rasteriser\'s far plane is fixed at 100 (render/rasterizer.py '
      'FAR).')
  # --- tfunsup3d additions ---
  nf_depth: int = _key(64, 'nf of netD and netA (EDDeconv).', _N)
  zdim_depth: int = _key(256, 'zdim of netD and netA.', _N)
  nf_encoder: int = _key(32, 'nf of netL and netV (Encoder).', _N)
  nf_conf: int = _key(64, 'nf of netC (ConfNet).', _N)
  zdim_conf: int = _key(128, 'zdim of netC.', _N)
  gn_channels: Optional[int] = _key(
      None, 'Channels per GroupNorm group (none: the reference\'s 16 groups '
      'per nf).', _N)
  vgg16_weights: Optional[str] = _key(
      None, 'VGG16 weights of the perceptual loss: `imagenet` (Keras\' '
      'notop file, downloaded once and hash-checked) or a local file.', _M)
  anti_aliasing: bool = _key(
      True, 'Reference rasteriser convention (2x supersampling, +0.5px).', _R)
  weight_decay: float = _key(
      5e-4, 'PyTorch-style L2 added to the gradient.', _T)
  jit_compile: Union[bool, str] = _key(
      'auto', 'XLA for the whole train/eval steps (the rasteriser is always '
      'XLA-compiled); auto: on a GPU or TPU, and on CPU for narrow networks '
      '(nf_depth < 32) only: with the reference\'s widths TF\'s own CPU '
      'kernels are faster (`jit_compile(cfg)`, docs/performance.md).', _T)
  deterministic: bool = _key(
      False, 'tf.config.experimental.enable_op_determinism.', _T)
  xla_cache_dir: Optional[str] = _key(
      'auto', "XLA's persistent compilation cache: compiled steps are kept "
      'there and reused by later runs on the same machine and TF version '
      '(console scripts); auto: $XDG_CACHE_HOME/tfunsup3d/xla (default '
      '~/.cache); none: off (tfunsup3d/compile_cache.py).', _T)
  max_steps_per_epoch: Optional[int] = _key(
      None, 'Cap on steps per epoch (quick runs).', _T)
  save_checkpoint_steps: int = _key(
      0, 'Also checkpoint every N steps (0: off).', _T)
  val_max_batches: Optional[int] = _key(
      None, 'Cap on validation batches.', _T)
  strategy: str = _key(
      'default', 'tf.distribute strategy: default, mirrored, multi_worker or '
      'tpu.', _T)
  supervised_depth: bool = _key(
      False, 'Upper-bound baseline: L1 on ground-truth depth.', _M)
  flip_albedo: bool = _key(
      True, 'False: the paper\'s Table 2 ablation "no albedo flip".', _M)
  flip_depth: bool = _key(
      True, 'False: the paper\'s Table 2 ablation "no depth flip".', _M)
  relief_curriculum: Optional[List[float]] = _key(
      None, 'Relief curriculum [start, hold_steps, ramp_steps]: the canonical '
      'depth range narrowed about its centre to the fraction start, held '
      'hold_steps steps, then widened linearly to [min_depth, max_depth] '
      'over ramp_steps; none: off (train/curriculum.py).', _T)
  crop_curriculum: Optional[List[float]] = _key(
      None, 'Framing curriculum [start, hold_steps, ramp_steps]: training '
      'images centre-cropped to the fraction start of each side (resized '
      'back), held, then widened linearly to the whole frame; none: off.', _T)
  crop_mix: Optional[List[float]] = _key(
      None, 'Crop mix [fraction, probability]: at every training step each '
      'image is centre-cropped to the fraction of each side (resized back) '
      'with the probability; none: off (train/curriculum.py).', _T)
  crop_camera: bool = _key(
      False, 'With crop_mix [f, 1] (every training image cropped): train '
      'with the camera such a crop has, the focal length divided by f (a '
      'narrower field of view); false: the configured camera for the crops '
      'too (the earlier runs).', _T)
  min_yaw_std: float = _key(
      0.0, 'Yaw-spread prior: the smallest standard deviation, in degrees, '
      'of the predicted yaw over a batch; a smaller one adds lam_yaw_std * '
      '(1 - std / min_yaw_std)^2 to the loss; 0: off (the reference).', _T)
  lam_yaw_std: float = _key(1.0, 'Weight of the yaw-spread prior.', _T)
  min_light_tilt_std: float = _key(
      0.0, 'Light-tilt spread prior: the smallest standard deviation of the '
      'predicted light tilts dx/dz and dy/dz over a batch, each; smaller '
      'ones add lam_light_std * (1 - std / min_light_tilt_std)^2 (mean over '
      'x and y) to the loss; 0: off (the reference).', _T)
  lam_light_std: float = _key(1.0, 'Weight of the light-tilt spread prior.',
                              _T)
  lam_yaw_shift_corr: float = _key(
      0.0, 'Yaw/shift decorrelation prior: adds this weight times the '
      'squared correlation, over a batch, of the predicted yaw with the '
      'predicted x-translation (only the yaw moves), so that the yaw does '
      'not stand in for where the object sits; 0: off (the reference).', _T)
  lam_protrusion: float = _key(
      0.0, 'Protrusion prior: adds this weight times how far the canonical '
      'depth of the central third of the frame lies behind that of its '
      'border (mean over each, a fraction of the depth range, only when '
      'behind), so that the object stands out of its frame and the hollow '
      'twin of a relief is not learnt; 0: off (the reference).', _T)
  lam_view_cycle: float = _key(
      0.0, 'View cycle: each training step the batch\'s canonical factors '
      '(gradient stopped) are rendered again with the predicted view but a '
      'yaw drawn uniformly from +-view_cycle_max_yaw, and this weight times '
      'the mean |netV\'s yaw on those renders - the drawn yaw| (netV\'s '
      'output units: degrees / xyz_rotation_range) joins the loss, so that '
      'netV reads the turn from the object, not from where it sits; 0: off '
      '(the reference).', _T)
  view_cycle_max_yaw: float = _key(
      30.0, 'The largest yaw, in degrees, of the view cycle\'s renders (at '
      'most xyz_rotation_range).', _T)
  lam_light_cycle: float = _key(
      0.0, 'Light cycle: as the view cycle, for the light: the renders are '
      'shaded with a light tilt (dx/dz and dy/dz) drawn uniformly from '
      '+-light_cycle_max_tilt, and this weight times the mean |netL\'s '
      'tilts on those renders - the drawn ones| joins the loss, so that '
      'netL reads the light from the shading of the model\'s own depth; '
      'only netL learns from it; 0: off (the reference).', _T)
  light_cycle_max_tilt: float = _key(
      0.75, 'The largest light tilt (dx/dz, dy/dz; at most 1, netL\'s '
      'range) of the light cycle\'s renders.', _T)
  prior_start_step: int = _key(
      0, 'The training step from which the view and light cycles and the '
      'spread and decorrelation priors (min_yaw_std, min_light_tilt_std, '
      'lam_yaw_shift_corr) apply: they wait until the networks read the '
      'factors\' directions; 0: from the first step.', _T)
  log_dir: Optional[str] = _key(
      None, 'TensorBoard dir (default checkpoint_dir/logs).', _T)
  export_dir: str = _key('saved_models', 'Base directory of exports.', _E)
  mixed_precision: str = _key(
      'none', 'Compute dtype of the networks: none (float32), bfloat16 or '
      'float16 (with a static loss scale); see networks/precision.py.', _T)
  remat: Union[bool, str] = _key(
      'auto', 'What the backward pass recomputes instead of keeping from '
      'the forward pass (`remat_mode(cfg)`, docs/performance.md, "Memory"): '
      'false: nothing; light: the normalisations and activations between '
      'the image networks\' convolutions (less memory, about the same '
      'time); true: the image networks whole (netD, netA; netC with '
      'lam_perc > 0: the least memory, more time per step); auto: light '
      'unless the whole step is XLA-compiled (jit_compile), then false.',
      _T)

  def resolved(self) -> 'Config':
    """Returns a checked copy with derived defaults filled in.

    Raises:
      ConfigError: a value that cannot be right (one line naming the key and
        the value), e.g. batch_size=0 or lr=nan.
    """
    cfg = dataclasses.replace(self)
    check(cfg)
    if cfg.border_depth is None:
      cfg.border_depth = 0.7 * cfg.max_depth + 0.3 * cfg.min_depth
    if cfg.rot_center_depth is None:
      cfg.rot_center_depth = (cfg.min_depth + cfg.max_depth) / 2.0
    warn_compat_keys(cfg)
    return cfg

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_yaml(self) -> str:
    return yaml.safe_dump(self.to_dict(), sort_keys=False)


def field_names() -> List[str]:
  return [f.name for f in dataclasses.fields(Config)]


def field_metadata(name: str) -> Dict[str, Any]:
  """The metadata of field `name`: help, section (and compat)."""
  fields = {f.name: f for f in dataclasses.fields(Config)}
  return dict(fields[name].metadata)


def field_help(name: str) -> str:
  """`<help> [<section>]` of field `name`, as the console scripts show it."""
  meta = field_metadata(name)
  return f'{meta["help"]} [{meta["section"]}]'


_CURRICULUM = '[start in (0, 1], hold_steps >= 0, ramp_steps >= 0] or none'
LOCAL_PATH = ('a local path (URLs such as gs://... are not read or written: '
              'copy the files to a local disk first)')


def is_local_path(path: str) -> bool:
  """Whether `path` names no remote file system (`scheme://...`).

  Images are listed with `os.walk` and decoded by PIL, and outputs are
  written with `os`, so a URL would be missed or, worse, made as a local
  folder `gs:/...`: every path the tools take must pass this.
  """
  return '://' not in str(path)


def _is_curriculum(v) -> bool:
  return (len(v) == 3 and all(math.isfinite(x) for x in v)
          and 0 < v[0] <= 1 and v[1] >= 0 and v[2] >= 0)


# Value checks of `resolved()`: (key, test of a value that is not None, what
# the value must be). Every float field is also checked to be finite.
_CHECKS = (
    ('batch_size', lambda v: v >= 1, '>= 1'),
    ('num_workers', lambda v: v >= 0, '>= 0'),
    ('num_epochs', lambda v: v >= 0, '>= 0'),
    ('image_size', lambda v: 8 <= v <= 1024, 'in [8, 1024]'),
    ('lr', lambda v: v > 0, '> 0'),
    ('view_lr_scale', lambda v: v > 0, '> 0'),
    ('light_lr_scale', lambda v: v > 0, '> 0'),
    ('depth_lr_scale', lambda v: v > 0, '> 0'),
    ('log_freq', lambda v: v >= 1, '>= 1'),
    ('seed', lambda v: v >= 0, '>= 0'),
    ('min_depth', lambda v: v > 0, '> 0'),
    # Under 1 degree the image spans less than the translation range (0.1
    # at depth 1 in the reference): the object is rendered off-screen.
    ('fov', lambda v: 1 <= v <= 179, 'in [1, 179] degrees'),
    ('max_steps_per_epoch', lambda v: v >= 1, '>= 1 or none'),
    ('val_max_batches', lambda v: v >= 1, '>= 1 or none'),
    ('save_checkpoint_steps', lambda v: v >= 0, '>= 0'),
    ('prior_start_step', lambda v: v >= 0, '>= 0'),
    ('light_cycle_max_tilt', lambda v: 0 <= v <= 1, 'in [0, 1]'),
    ('lam_flip_start_epoch', lambda v: v >= 0, '>= 0'),
    ('gn_channels', lambda v: v >= 1, '>= 1 or none'),
    ('jit_compile', lambda v: v in (True, False, 'auto'),
     'true, false or auto'),
    ('remat', lambda v: v in (True, False, 'light', 'auto'),
     'true, false, light or auto'),
    ('depth_centering', lambda v: v in ('mean', 'none', 'border'),
     'mean, none or border'),
    ('relief_curriculum', _is_curriculum, _CURRICULUM),
    ('crop_curriculum', _is_curriculum, _CURRICULUM),
    ('depth_curv_curriculum',
     lambda v: len(v) == 3 and all(math.isfinite(x) and x >= 0 for x in v),
     '[start >= 0, hold_steps >= 0, ramp_steps >= 0] or none'),
    ('lr_decay', lambda v: (len(v) == 3 and all(math.isfinite(x) for x in v)
                            and v[0] >= 0 and v[1] >= 0 and 0 < v[2] <= 1),
     '[hold_steps >= 0, ramp_steps >= 0, final_scale in (0, 1]] or none'),
    ('crop_mix', lambda v: (len(v) == 2 and all(math.isfinite(x) for x in v)
                            and 0 < v[0] <= 1 and 0 <= v[1] <= 1),
     '[fraction in (0, 1], probability in [0, 1]] or none'),
) + tuple((k, lambda v: v >= 0, '>= 0') for k in (
    'xyz_rotation_range', 'xy_translation_range', 'z_translation_range',
    'lam_perc', 'lam_flip', 'lam_depth_sm', 'lam_depth_curv',
    'lam_depth_ripple', 'weight_decay', 'depth_init_scale',
    'depth_curv_min_radius',
    'min_yaw_std', 'lam_yaw_std', 'min_light_tilt_std', 'lam_light_std',
    'lam_yaw_shift_corr', 'lam_protrusion', 'lam_view_cycle',
    'view_cycle_max_yaw', 'lam_light_cycle')) + tuple(
        (k, lambda v: v >= 1, '>= 1') for k in (
            'nf_depth', 'zdim_depth', 'nf_encoder', 'nf_conf', 'zdim_conf')
    ) + tuple((k, is_local_path, LOCAL_PATH) for k in (
        'checkpoint_dir', 'checkpoint_name', 'test_result_dir',
        'train_val_data_dir', 'test_data_dir', 'vgg16_weights',
        'xla_cache_dir', 'log_dir', 'export_dir'))

_FLOAT32_MAX = 3.4028234663852886e38

# (smaller key, larger key): the first must be below (or at) the second.
_ORDERED = (('min_depth', 'max_depth', '<'),
            ('min_amb_light', 'max_amb_light', '<='),
            ('min_diff_light', 'max_diff_light', '<='),
            ('view_cycle_max_yaw', 'xyz_rotation_range', '<='))


# Narrowest netD/netA (nf_depth) whose CPU steps run faster on TF's own
# (oneDNN) kernels, the rasteriser alone under XLA, than XLA-compiled whole
# (bench.levers --lever=xla: nf 16 at batch 16 1.26x slower, nf 32 at batch
# 64 0.95x, nf 64 at batch 16 0.94x and at batch 64 0.83x).
CPU_XLA_MAX_NF = 32


def jit_compile(cfg: Config) -> bool:
  """Whether the train and eval steps are XLA-compiled whole.

  The `jit_compile` key's value; for `auto`, True when TF sees a GPU or TPU,
  and on CPU only when nf_depth < `CPU_XLA_MAX_NF`.
  """
  if cfg.jit_compile != 'auto':
    return bool(cfg.jit_compile)
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if any(tf.config.list_logical_devices(kind) for kind in ('GPU', 'TPU')):
    return True
  return cfg.nf_depth < CPU_XLA_MAX_NF


def remat_mode(cfg: Config) -> str:
  """What a training step recomputes: 'networks', 'light' or 'none'.

  The `remat` key's value (true: 'networks', false: 'none'); for `auto`,
  'light' unless the whole step is XLA-compiled (`jit_compile(cfg)`), where
  XLA schedules its own buffers and the quickstart's speed was measured.
  """
  if cfg.remat == 'auto':
    return 'none' if jit_compile(cfg) else 'light'
  if cfg.remat == 'light':
    return 'light'
  return 'networks' if cfg.remat else 'none'


def check(cfg: Config) -> None:
  """Raises ConfigError naming the first key whose value cannot be right."""
  for name in field_names():
    value = getattr(cfg, name)
    if isinstance(value, float) and not math.isfinite(value):
      raise ConfigError(f'{name} must be a finite number. Received: '
                        f'{name}={value}')
    if isinstance(value, float) and abs(value) > _FLOAT32_MAX:
      raise ConfigError(f'{name} must fit a 32-bit float (at most '
                        f'{_FLOAT32_MAX:.3g} in size), as the model computes '
                        f'in float32. Received: {name}={value}')
  for name, test, requirement in _CHECKS:
    value = getattr(cfg, name)
    if value is not None and not test(value):
      raise ConfigError(f'{name} must be {requirement}. Received: '
                        f'{name}={value}')
  for low, high, op in _ORDERED:
    a, b = getattr(cfg, low), getattr(cfg, high)
    if not (a < b if op == '<' else a <= b):
      raise ConfigError(f'{low} must be {op} {high}. Received: {low}={a}, '
                        f'{high}={b}')
  if cfg.crop_camera and not (cfg.crop_mix and cfg.crop_mix[1] == 1):
    raise ConfigError('crop_camera needs crop_mix [fraction, 1] (every '
                      'training image cropped alike). Received: '
                      f'crop_mix={cfg.crop_mix}')


_WARNED = set()  # compatibility keys warned about in this process.


def compat_keys() -> List[str]:
  """Keys accepted only for compatibility with the reference (no effect)."""
  return [n for n in field_names() if field_metadata(n).get('compat')]


def warn_compat_keys(cfg: Config) -> List[str]:
  """Warns (one line, once per key and process) about each compatibility-only
  key of `cfg` set to a value other than its default; returns those keys."""
  defaults = Config()
  set_keys = [n for n in compat_keys()
              if getattr(cfg, n) != getattr(defaults, n)]
  for name in set_keys:
    if name not in _WARNED:
      _WARNED.add(name)
      logging.warning('Config key %s=%r has no effect (accepted for '
                      'compatibility with the reference): %s', name,
                      getattr(cfg, name), field_metadata(name)['compat'])
  return set_keys


_NONE_WORDS = ('none', 'null', '~', '')
_TRUE_WORDS = ('1', 'true', 'yes', 'on')
_FALSE_WORDS = ('0', 'false', 'no', 'off')


@functools.lru_cache(maxsize=None)
def _type_hints() -> Dict[str, Any]:
  return typing.get_type_hints(Config)  # Resolves string annotations too.


def field_type(name: str) -> Tuple[Tuple[Any, ...], bool]:
  """Returns (accepted types, optional) of field `name`.

  `accepted types` lists the non-None alternatives of the annotation, e.g.
  `(int, List[int])` for `crop`; `optional` says whether None is allowed.
  """
  tp = _type_hints()[name]
  if typing.get_origin(tp) is Union:
    args = typing.get_args(tp)
    return tuple(a for a in args if a is not type(None)), type(None) in args
  return (tp,), False


def _type_name(tp: Any) -> str:
  if typing.get_origin(tp) is None and hasattr(tp, '__name__'):
    return tp.__name__
  return str(tp).replace('typing.', '')


def _is_none_word(value: Any) -> bool:
  return isinstance(value, str) and value.strip().lower() in _NONE_WORDS


def _to_scalar(tp: Any, value: Any) -> Any:
  """Converts `value` to the scalar type `tp`; raises ValueError if it can't."""
  if tp is bool:
    if isinstance(value, bool):
      return value
    if isinstance(value, int) and value in (0, 1):
      return bool(value)
    if isinstance(value, str):
      if value.strip().lower() in _TRUE_WORDS:
        return True
      if value.strip().lower() in _FALSE_WORDS:
        return False
    raise ValueError
  if tp is int:
    if isinstance(value, bool):
      raise ValueError
    if isinstance(value, int):
      return value
    if isinstance(value, float) and value.is_integer():
      return int(value)
    if isinstance(value, str):
      text = value.strip()
      try:
        return int(text)
      except ValueError:
        return _to_scalar(int, float(text))  # '3.0', '1e3'; not '3.5'.
    raise ValueError
  if tp is float:
    if isinstance(value, bool):
      raise ValueError
    if isinstance(value, (int, float)):
      return float(value)
    if isinstance(value, str):
      return float(value.strip())  # also takes '1e-4', which YAML 1.1 doesn't.
    raise ValueError
  if tp is str:
    if isinstance(value, str):
      return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return str(value)  # e.g. an unquoted YAML `checkpoint_name: 030`.
    raise ValueError
  raise ValueError


def _to_type(tp: Any, value: Any) -> Any:
  if typing.get_origin(tp) in (list, List):
    (item_tp,) = typing.get_args(tp) or (Any,)
    if isinstance(value, str):
      text = value.strip()
      parsed = parse_yaml(text)
      # Also accept the flag-friendly 'a,b,c' form.
      value = parsed if isinstance(parsed, list) else (
          [v.strip() for v in text.split(',')] if ',' in text else parsed)
    if isinstance(value, tuple):
      value = list(value)
    if not isinstance(value, list):
      raise ValueError
    return [v if item_tp is Any else _to_scalar(item_tp, v) for v in value]
  return _to_scalar(tp, value)


def _coerce(name: str, value: Any) -> Any:
  """Coerces a YAML value or a flag's string to the type of field `name`.

  Strings are parsed: 'none'/'null'/'' give None (Optional fields only),
  'true'/'false' give bools, '[8, 14, 100, 100]' gives a list (YAML syntax).
  """
  types, optional = field_type(name)
  expected = ' or '.join(_type_name(t) for t in types) + (
      ' or None' if optional else '')
  if value is None or (_is_none_word(value) and str not in types):
    if optional:
      return None
    raise ValueError(f'Config key {name!r} cannot be None.')
  if _is_none_word(value) and optional:
    return None  # Optional[str]: 'none' means None, not the string 'none'.
  for tp in types:
    try:
      return _to_type(tp, value)
    except (TypeError, ValueError, yaml.YAMLError):
      continue
  raise ValueError(
      f'Config key {name!r} expects {expected}. Received: '
      f'{_SHORT_REPR.repr(value)}')


# Bounded reprs for messages: a value is echoed, not dumped whole.
_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = _SHORT_REPR.maxother = 200
_SHORT_REPR.maxlist = _SHORT_REPR.maxdict = 8


def from_dict(values: Dict[str, Any], base: Optional[Config] = None,
              strict: bool = True) -> Config:
  """Builds a Config from `values` on top of `base` (defaults if None)."""
  known = set(field_names())
  unknown = sorted(k for k in values if k not in known)
  if unknown and strict:
    raise ValueError(f'Unknown config key(s): {", ".join(unknown)}. '
                     f'Known keys: {", ".join(sorted(known))}')
  cfg = dataclasses.replace(base) if base is not None else Config()
  for k, v in values.items():
    if k in known:
      setattr(cfg, k, _coerce(k, v))
  return cfg


class _UniqueKeyLoader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
  """`yaml.SafeLoader` that refuses a key given twice in one mapping (plain
  YAML loaders keep the last, so `batch_size: 8` above `batch_size: 16`
  would be dropped without a word) and aliases (`*name`: a config needs
  none, and nested ones expand a few lines into billions of values)."""

  def compose_node(self, parent, index):
    if self.check_event(yaml.events.AliasEvent):
      raise yaml.composer.ComposerError(
          None, None, 'aliases (*name) are not allowed in a config',
          self.peek_event().start_mark)
    return super().compose_node(parent, index)

  def construct_mapping(self, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
      key = self.construct_object(key_node, deep=deep)
      if key in seen:
        raise yaml.constructor.ConstructorError(
            None, None, f'duplicate key {key!r}', key_node.start_mark)
      seen.add(key)
    return super().construct_mapping(node, deep=deep)


def parse_yaml(text) -> Any:
  """YAML `text` (a str or an open file): safe tags only, unique keys, no
  aliases. Raises yaml.YAMLError."""
  return yaml.load(text, Loader=_UniqueKeyLoader)


def load_yaml(path: str) -> Dict[str, Any]:
  """The mapping of the YAML file `path` (safe tags only, unique keys).

  Raises:
    FileNotFoundError: `path` is no file.
    ValueError: not UTF-8, not valid YAML, a duplicate key or no mapping;
      one line naming the file.
  """
  if os.path.isdir(path):
    raise FileNotFoundError(f'Config file {path} is a folder, not a file')
  if os.path.exists(path) and not os.path.isfile(path):
    raise FileNotFoundError(f'Config file {path} is not a regular file (a '
                            'device, a pipe or a socket)')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Config file not found: {path}')
  with open(path, 'r', encoding='utf-8') as f:
    try:
      data = parse_yaml(f) or {}
    except UnicodeDecodeError as e:
      raise ValueError(f'Config file {path} is not UTF-8 text: {e}') from e
    except yaml.YAMLError as e:
      raise ValueError(f'Config file {path} is not valid YAML: {e}') from e
  if not isinstance(data, dict):
    raise ValueError(f'Config file {path} must hold a mapping of keys.')
  return data


def load(path: Union[None, str, Sequence[str]] = None,
         overrides: Optional[Union[Dict[str, Any], Sequence[str]]] = None
         ) -> Config:
  """Loads a config: defaults <- YAML file(s) `path` <- `overrides`.

  Args:
    path: optional YAML file with reference keys, or a list of them, each
      applied over the ones before it (a base config, then overlays such as
      configs/loose_framing.yml).
    overrides: a dict, or a list of 'KEY=VALUE' strings.
  """
  cfg = Config()
  for one in ([path] if isinstance(path, str) else path or []):
    values = load_yaml(one)
    try:
      cfg = from_dict(values, base=cfg)
    except ValueError as e:
      raise ValueError(f'Config file {one}: {e}') from e
  if overrides:
    if not isinstance(overrides, dict):
      pairs = {}
      for item in overrides:
        if '=' not in item:
          raise ValueError(f'Override must be KEY=VALUE. Received: {item!r}')
        k, v = item.split('=', 1)
        pairs[k.strip().lstrip('-')] = v
      overrides = pairs
    cfg = from_dict(overrides, base=cfg)
  return cfg
