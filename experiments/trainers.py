"""The learning benchmark's row trainers (see `experiments.learning`).

Each trainer takes (cfg, steps, eval_every, scorer, log), trains one row from
the seeded initialisation for `steps` steps and scores the test split with
`scorer` (a `experiments.learning.Scorer`) every `eval_every` steps; it returns
{'final': scores, 'curve': [...], 'train_s_per_step', 'wall_s'}.
"""

import argparse
import dataclasses
import json
import os
import time
from typing import Dict

import keras
import numpy as np
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import losses as losses_lib
from tfunsup3d import Unsup3D
from tfunsup3d.data import synth
from tfunsup3d.data import synth_params
from tfunsup3d.factors import depth as depth_lib
from tfunsup3d.factors import light as light_lib
from tfunsup3d.factors import view as view_lib
from tfunsup3d.train import loop
from tfunsup3d.train import optimizers as optimizers_lib
from tfunsup3d.train import task as task_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def add_run_arguments(p: argparse.ArgumentParser, name: str, steps: int,
                      eval_every: int) -> None:
  """The arguments every training benchmark shares (`experiments.learning`,
  `experiments.data_variants`, `experiments.reference_code`): config, schedule, the
  synthetic set's counts and generator options, output."""
  p.add_argument('--config', default=os.path.join('configs', 'quickstart.yml'))
  p.add_argument('--overlay', action='append', default=[], metavar='FILE.yml',
                 help="a config file applied over --config's, as a second "
                 "--config of the console scripts (repeatable)")
  p.add_argument('--steps', type=int, default=steps)
  p.add_argument('--eval_every', type=int, default=eval_every)
  p.add_argument('--num_train', type=int, default=6000)
  p.add_argument('--num_val', type=int, default=32)
  p.add_argument('--num_test', type=int, default=300)
  p.add_argument('--data_seed', type=int, default=1234)
  p.add_argument('--zoom', type=float, default=synth_params.SynthOptions().zoom,
                 help="the synthetic layout's magnification (SynthOptions)")
  p.add_argument('--out_dir', default=os.path.join(REPO_ROOT, 'experiments',
                                                  'results'))
  p.add_argument('--name', default=name)
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                 help='config override (repeatable)')


def check_run_arguments(p: argparse.ArgumentParser, args) -> None:
  if args.steps <= 0 or args.eval_every <= 0 or args.num_test <= 0:
    p.error('--steps, --eval_every and --num_test must be positive')


def config_files(args) -> list:
  """`--config` and the `--overlay` files, in the order they apply."""
  return [args.config] + list(args.overlay)


def overlay_settings(args) -> Dict[str, list]:
  """What a result's settings record of `--overlay`: nothing without one
  (the settings of results written before the flag stay equal)."""
  return {'overlays': list(args.overlay)} if args.overlay else {}


def config_text(settings: Dict) -> str:
  """'`base.yml`' or '`base.yml` + `overlay.yml`' for a result's header."""
  return ' + '.join(f'`{path}`' for path in [settings['config']] +
                    list(settings.get('overlays', [])))


def base_config(args):
  """`--config` with the `--overlay` files and `--set` overrides, resolved
  (the data and output keys as the files have them)."""
  return config_lib.load(config_files(args), list(args.set)).resolved()


def study_config(args, data_dir: str):
  """`--config` with the `--overlay` files and `--set` overrides, trained
  and scored on the synthetic set in `data_dir` (its train/val splits, its
  test split, the ground-truth depth loaded), resolved."""
  return config_lib.load(config_files(args), list(args.set) + [
      f'train_val_data_dir={data_dir}', 'load_gt_depth=true',
      f'test_data_dir={os.path.join(data_dir, "test")}']).resolved()


def _loop(cfg, steps: int, eval_every: int, log, evaluate,
          train_step, batches=None) -> Dict[str, object]:
  """Runs `train_step(batch, epoch) -> scalars` for `steps` steps over the
  epochs of `batches(epoch)` (default `loop.train_dataset`), with
  `evaluate()` every `eval_every`."""
  batches = batches or (lambda epoch: loop.train_dataset(cfg, epoch))
  curve, sums, count = [], {}, 0
  step, epoch, start, train_s = 0, 0, time.time(), 0.0
  while step < steps:
    for batch in batches(epoch):
      t0 = time.time()
      scalars = {k: float(v) for k, v in train_step(batch, epoch).items()}
      train_s += time.time() - t0
      if not np.isfinite(scalars['loss_total']):
        raise FloatingPointError(f'loss is {scalars["loss_total"]} at step '
                                 f'{step + 1}')
      for k, v in scalars.items():
        sums[k] = sums.get(k, 0.0) + v
      count, step = count + 1, step + 1
      if step % eval_every == 0 or step == steps:
        point = {'step': step, 'epoch': epoch,
                 'wall_s': round(time.time() - start, 1),
                 'train': {k: v / count for k, v in sums.items()},
                 'test': evaluate()}
        sums, count = {}, 0
        curve.append(point)
        log(f'  step {step}: test SIDE {point["test"]["side_mean"]:.3f} '
            f'MAD {point["test"]["mad_mean"]:.2f} ({point["wall_s"]:.0f} s)')
      if step >= steps:
        break
    epoch += 1
  return {'final': curve[-1]['test'], 'curve': curve,
          'train_s_per_step': train_s / steps,
          'wall_s': round(time.time() - start, 1)}


def train_row(cfg, steps: int, eval_every: int, scorer,
              log) -> Dict[str, object]:
  """Trains one row of the method from the seeded initialisation."""
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  return _loop(cfg, steps, eval_every, log, lambda: scorer(task.model),
               task.train_step)


_FACTOR_KEYS = ('view', 'canon_depth', 'canon_albedo', 'light_a', 'light_b',
                'light_d')
GIVEN_NETS = {'view': 'netV', 'depth': 'netD', 'light': 'netL',
              'albedo': 'netA'}


# Config keys that a study's `--set` changes in the model only: its
# synthetic set is rendered with the `--config` file's values (`data_config`),
# so that a lever row such as `--set border_depth=1.02` trains on the same
# set as the method's row, wherever it runs first.
MODEL_ONLY_KEYS = ('border_depth', 'rot_center_depth', 'anti_aliasing')
# The rendering settings `bench_meta.json` records (with counts, seed and
# the `SynthOptions`); the last three only since December 2026.
_DATA_KEYS = ('image_size', 'fov', 'min_depth', 'max_depth') + MODEL_ONLY_KEYS


def data_config(args, cfg):
  """`cfg` (a study's config, `--set` applied) with `MODEL_ONLY_KEYS` as
  the `--config` (and `--overlay`) files have them: the config to render
  its data with."""
  file_cfg = config_lib.load(config_files(args)).resolved()
  return dataclasses.replace(cfg, **{k: getattr(file_cfg, k)
                                     for k in MODEL_ONLY_KEYS})


def _differences(old: Dict, new: Dict, prefix: str = '') -> list:
  """'key old -> new' for each (nested: 'options.zoom') value that differs."""
  out = []
  for key in sorted(set(old) | set(new)):
    a, b = old.get(key), new.get(key)
    if isinstance(a, dict) and isinstance(b, dict):
      out += _differences(a, b, f'{prefix}{key}.')
    elif a != b:
      out.append(f'{prefix}{key} {a} -> {b}')
  return out


def synth_data(data_dir: str, counts: Dict[str, int], cfg, seed: int,
               options=None) -> bool:
  """Writes a `tfunsup3d-synth` set to `data_dir` unless the one there was
  made with the same counts, seed, rendering settings (`_DATA_KEYS` of
  `cfg`) and `SynthOptions`, its category included (recorded in
  `bench_meta.json`; what a meta predates counts as the value asked for
  now, `synth.with_predated_options` for the options). Returns whether it
  wrote one."""
  options = options or synth.SynthOptions()
  meta = dict({k: getattr(cfg, k) for k in _DATA_KEYS},
              counts=dict(counts), seed=seed,
              options=json.loads(json.dumps(dataclasses.asdict(options))))
  meta_path = os.path.join(data_dir, 'bench_meta.json')
  if os.path.isfile(meta_path):
    with open(meta_path, encoding='utf-8') as f:
      recorded = json.load(f)
    written = dict(meta, **recorded)
    written['options'] = synth.with_predated_options(
        written.get('options', {}))
    if written == meta:
      if recorded != meta:  # Record what it predates, from now on.
        with open(meta_path, 'w', encoding='utf-8') as f:
          json.dump(meta, f)
      return False
    print(f'replacing the set in {data_dir}, made with other settings: '
          + ', '.join(_differences(written, meta)), flush=True)
  print(f'generating {counts} -> {data_dir}', flush=True)
  synth.write_dataset(data_dir, counts, cfg, seed=seed, overwrite=True,
                      options=options)
  with open(meta_path, 'w', encoding='utf-8') as f:
    json.dump(meta, f)
  return True


def read_factors(path: str, count=None,
                 keys=_FACTOR_KEYS) -> Dict[str, np.ndarray]:
  """The generator's factors `keys` (first `count`) from a split's
  factors.npz."""
  with np.load(path) as f:
    return {k: f[k][:count] for k in keys}


def read_split(data_dir: str, split: str, count=None, keys=_FACTOR_KEYS):
  """A synth split (its first `count` instances) in memory: images
  [n,S,S,3] in [0, 1] and the generator's factors `keys` (`read_factors`;
  'view' among them)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  factors = read_factors(os.path.join(data_dir, split, 'factors.npz'), count,
                         keys)
  images = np.stack([np.asarray(Image.open(os.path.join(
      data_dir, split, 'image', f'{i:06d}_image.png')), np.float32) / 255.0
                     for i in range(len(factors['view']))])
  return images, factors


def net_output(cfg, factors, index, net: str) -> np.ndarray:
  """The output of `net` (netV, netL and netA: after their tanh; netD: its
  raw map `[n,S,S,1]`) for which the model's factor is the generator's
  `factors` (`read_split`'s arrays) at `index`."""
  def unscale(x, lo, hi):  # the inverse of factors.depth.rescale
    return 2.0 * (x - lo) / (hi - lo) - 1.0
  if net == 'netV':
    # netV's output -> view multiplies by these; a 0 range (z): a 0 view.
    scale = view_lib.viewpoint(tf.ones([1, 6]), cfg.xyz_rotation_range,
                               cfg.xy_translation_range,
                               cfg.z_translation_range).numpy()[0]
    scale[scale == 0] = 1.0
    out = factors['view'][index] / scale
  elif net == 'netL':
    d = factors['light_d'][index]
    out = np.concatenate([
        unscale(factors['light_a'][index], cfg.min_amb_light,
                cfg.max_amb_light),
        unscale(factors['light_b'][index], cfg.min_diff_light,
                cfg.max_diff_light),
        d[:, :2] / d[:, 2:]], 1)
  elif net == 'netA':  # stored as uint8 (a + 1) * 127.5
    out = factors['canon_albedo'][index] / 127.5 - 1.0
  else:  # netD: the inverse of its mapping (exact: synth_maps.representable)
    d = factors['canon_depth'][index].astype(np.float64)
    out = np.arctanh(np.clip(unscale(d, cfg.min_depth, cfg.max_depth),
                             -1 + 1e-6, 1 - 1e-6))[..., None]
  return out.astype(np.float32)


def train_given(cfg, steps: int, eval_every: int, scorer, log,
                given: str) -> Dict[str, object]:
  """A diagnostic row: `train_row` with netV's (`given='view'`), netD's
  (`given='depth'`), netL's (`given='light'`) or netA's (`given='albedo'`)
  output, or several of them (`'depth_light'`), replaced by the generator's
  ground truth, fed through variables set before each training and test
  batch."""
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  model = task.model
  images, train_factors = read_split(cfg.train_val_data_dir, 'train')
  test_factors = scorer.factors
  nets = [GIVEN_NETS[name] for name in given.split('_')]
  values = {}
  for name in nets:
    first = net_output(cfg, train_factors, [0], name)
    values[name] = tf.Variable(first, shape=tf.TensorShape(
        [None] + list(first.shape[1:])), trainable=False)
    getattr(model, name).call = (
        lambda *args, value=values[name], **kwargs: tf.identity(value))

  def set_batch(factors, index):
    for name, value in values.items():
      value.assign(net_output(cfg, factors, index, name))

  def set_test_batch(first_index, count):
    set_batch(test_factors, np.arange(first_index, first_index + count))
  rng = np.random.default_rng(cfg.seed)

  def batches(epoch):
    del epoch
    order = rng.permutation(len(images))
    for k in range(len(images) // cfg.batch_size):
      yield order[k * cfg.batch_size:(k + 1) * cfg.batch_size]

  def train_step(index, epoch):
    set_batch(train_factors, index)
    return task.train_step({'image': tf.constant(images[index])}, epoch)
  return _loop(cfg, steps, eval_every, log,
               lambda: scorer(model, set_test_batch), train_step, batches)


def losses_on_object(model) -> None:
  """Keeps `model.compute_losses`' reconstruction terms to the generator's
  object: the ground-truth depth's covered pixels (the metrics' mask), so
  the backdrop around the object adds nothing to them."""
  compute_losses = model.compute_losses

  def object_losses(outputs, images=None, epoch=0, depth_gt=None):
    if depth_gt is None:
      raise ValueError('the object mask needs ground-truth depth '
                       '(load_gt_depth: true)')
    obj = tf.cast(depth_gt < tf.reduce_max(depth_gt), tf.float32)[..., None]
    outputs = dict(outputs, recon_im_mask_both=(
        outputs['recon_im_mask_both'] * tf.concat([obj, obj], 0)))
    return compute_losses(outputs, images, epoch, depth_gt)
  model.compute_losses = object_losses


def move_along(out, g, cfg) -> Dict[str, tf.Tensor]:
  """`canonical`'s factors moved along the bas-relief ambiguity by g
  (docs/experiments.md): the relief about the rotation centre x g, the
  sines of pitch and yaw / g, the light tilt / g.

  Args:
    out: a dict of `Unsup3D.canonical` (B rows).
    g: scalar gain (1: unchanged).
    cfg: the model's config (rotation centre, border depth).

  Returns:
    {'canon_depth' `[B, S, S]`, 'view' `[B, 6]`, 'canon_light_d' `[B, 3]`}.
  """
  centre = cfg.rot_center_depth
  depth = depth_lib.set_border(centre + g * (out['canon_depth'] - centre),
                               cfg.border_depth)
  view = out['view']
  turn = tf.asin(tf.clip_by_value(tf.sin(view[:, :2]) / g, -0.999, 0.999))
  d = out['canon_light_d']
  return {'canon_depth': depth, 'view': tf.concat([turn, view[:, 2:]], 1),
          'canon_light_d': light_lib.direction(d[:, :2] / (d[:, 2:] * g))}


def couple_to_gain(model, log_gain: tf.Variable,
                   smooth_effective: bool = False) -> None:
  """Wraps `model.canonical` so that one scalar g = exp(log_gain) moves the
  factors along the bas-relief ambiguity (`move_along`). The networks'
  outputs render the same image at every g (up to perspective and the
  shading's normalisation), so g's gradient is the loss's slope along the
  ambiguity, which no single network sees. The smoothness loss stays on
  netD's own map unless `smooth_effective`, which puts it on the relief x g
  (it is linear in the relief: x g)."""
  canonical, cfg = model.canonical, model.cfg

  def coupled(images, relief=1.0, training=False):
    out = dict(canonical(images, relief, training))
    g = tf.exp(log_gain)
    if smooth_effective:
      out['loss_depth_sm'] = g * out['loss_depth_sm']
    out.update(move_along(out, g, cfg))
    return out
  model.canonical = coupled


class CoupledGainTask(task_lib.Unsup3DTask):
  """`Unsup3DTask` with `couple_to_gain`; g has its own Adam (no decay) at
  `gain_lr_scale` x the networks' rate."""

  def __init__(self, cfg, gain_lr_scale: float = 10.0,
               smooth_effective: bool = False):
    self.log_gain = tf.Variable(0.0, name='relief_log_gain')
    super().__init__(cfg)
    couple_to_gain(self.model, self.log_gain, smooth_effective)
    self.gain_optimizer = optimizers_lib.TorchAdam(
        cfg.lr * gain_lr_scale, 0.9, 0.999, 1e-8, 0.0, name='optimizerG')
    self.gain_optimizer.build([self.log_gain])

  def _trainables(self):
    return dict(super()._trainables(),
                gain=(self.gain_optimizer, [self.log_gain]))

  def _train_replica(self, inputs, epoch):
    result = super()._train_replica(inputs, epoch)
    result['relief_gain'] = tf.exp(self.log_gain)
    return result


VIEW_SHIFT_PX = 4  # the largest sideways shift of `ViewShiftTask`'s copy


def shift_columns(images, shift):
  """`[B, H, W, C]` moved right by `shift` pixels (an int scalar tensor,
  |shift| < W), the columns brought in mirrored from the edge (a gather:
  one compiled program for every shift, where a slice at a varying offset
  would be compiled again for each)."""
  width = images.shape[2]
  source = tf.range(width) - shift
  source = tf.where(source < 0, -source - 1, source)
  source = tf.where(source >= width, 2 * width - source - 1, source)
  return tf.gather(images, source, axis=2)


class ViewShiftTask(task_lib.Unsup3DTask):
  """The method with a view that a sideways shift of the photo must not
  turn: each step netV also sees the batch moved by a random whole number
  of pixels in [-VIEW_SHIFT_PX, VIEW_SHIFT_PX] (one per step, seeded by
  (seed + 1, step)), and `weight` x mean |rotation(moved) - rotation|
  (netV's raw outputs, in units of `xyz_rotation_range`) joins the loss, so
  that a position can only be explained by the translation."""

  def __init__(self, cfg, weight: float = 1.0):
    self.weight = weight
    super().__init__(cfg)

  def _scalars(self, inputs, epoch, relief=1.0, K=None):
    result = super()._scalars(inputs, epoch, relief, K)
    step, images = self.optimizers['netD'].iterations, inputs['image']
    seed = tf.stack([tf.constant(self.cfg.seed + 1, tf.int32),
                     tf.cast(step, tf.int32)])
    shift = tf.random.stateless_uniform([], seed, -VIEW_SHIFT_PX,
                                        VIEW_SHIFT_PX + 1, dtype=tf.int32)
    raw, moved = (self.model.netV(im * 2.0 - 1.0)
                  for im in (images, shift_columns(images, shift)))
    result['loss_view_shift'] = tf.reduce_mean(
        tf.abs(moved[:, :3] - raw[:, :3]))
    result['loss_total'] += self.weight * result['loss_view_shift']
    return result


def train_view_shift(cfg, steps: int, eval_every: int, scorer,
                     log) -> Dict[str, object]:
  """A lever row: the method with `ViewShiftTask`."""
  keras.utils.set_random_seed(cfg.seed)
  task = ViewShiftTask(cfg)
  return _loop(cfg, steps, eval_every, log, lambda: scorer(task.model),
               task.train_step)


def train_coupled_gain(cfg, steps: int, eval_every: int, scorer, log,
                       smooth_effective: bool = False) -> Dict[str, object]:
  """A lever row: the method with `CoupledGainTask`."""
  keras.utils.set_random_seed(cfg.seed)
  task = CoupledGainTask(cfg, smooth_effective=smooth_effective)
  return _loop(cfg, steps, eval_every, log, lambda: scorer(task.model),
               task.train_step)


class AmbiguitySearchTask(task_lib.Unsup3DTask):
  """The method with a joint move along the bas-relief ambiguity, which no
  single network can make: `search(images)` (every `every` steps in
  `train_ambiguity_search`) takes the batch's photometric loss (l1 + lam_flip x flipped) at each of `gains`
  (the networks' factors moved by `move_along`, their own albedo and
  confidence) and, if the lowest is below g = 1's, sets the target gain g*
  to it (else 1), and copies the networks into a held teacher. Until the
  next search, each step adds `lam` x the pull

    |depth - depth_T(g*)| / depth range + |turn - turn_T(g*)| + |d - d_T(g*)|

  (means), where _T(g*) are the teacher's factors for the same images moved
  to g* (no gradient): all three networks are pulled together towards where
  the search found the loss lower, and no further. At g* = 1 the pull and
  its gradient are 0: the method."""

  def __init__(self, cfg, gains=(0.5, 0.7, 1.0, 1.4), lam: float = 1.0):
    if 1.0 not in gains:
      raise ValueError(f'gains must hold 1. Received: {gains}')
    self.gains, self.lam = tuple(gains), lam
    self.target_gain = tf.Variable(1.0, trainable=False, name='target_gain')
    self.log_gain = tf.Variable(0.0, trainable=False, name='search_log_gain')
    super().__init__(cfg)
    plain, model = self.model.canonical, self.model
    self.teacher = Unsup3D(model.cfg)
    self.teacher.canonical(tf.zeros([1, cfg.image_size, cfg.image_size, 3]))
    self.sync_teacher()
    couple_to_gain(model, self.log_gain)
    self._coupled = model.canonical
    self._pull = None

    def pulled(images, relief=1.0, training=False):
      out = plain(images, relief, training)
      held = self.teacher.canonical(images, relief, training)
      target = {k: tf.stop_gradient(v) for k, v in
                move_along(held, self.target_gain, model.cfg).items()}
      active = tf.cast(tf.not_equal(self.target_gain, 1.0), tf.float32)
      self._pull = active * (  # exactly 0, and no gradient, at g* = 1
          tf.reduce_mean(tf.abs(out['canon_depth'] - target['canon_depth']))
          / (model.cfg.max_depth - model.cfg.min_depth)
          + tf.reduce_mean(tf.abs(out['view'][:, :2] - target['view'][:, :2]))
          + tf.reduce_mean(tf.abs(out['canon_light_d']
                                  - target['canon_light_d'])))
      return out
    self._pulled = model.canonical = pulled
    self._photometric = tf.function(self._photometric_loss, autograph=False)

  def sync_teacher(self) -> None:
    """The teacher takes the networks' current weights."""
    for name, net in self.model.networks.items():
      self.teacher.networks[name].set_weights(net.get_weights())

  def _photometric_loss(self, images):
    losses = self.model.compute_losses(self.model.decompose(images))
    return losses['loss_l1_im'] + self.cfg.lam_flip * losses['loss_l1_im_flip']

  def search(self, images) -> float:
    """Sets and returns the target gain for the batch `images` `[B, S, S, 3]`
    in [0, 1], and syncs the teacher."""
    losses = []
    self.model.canonical = self._coupled
    try:
      for g in self.gains:
        self.log_gain.assign(np.log(g))
        losses.append(float(self._photometric(images)))
    finally:
      self.log_gain.assign(0.0)
      self.model.canonical = self._pulled
    best = int(np.argmin(losses))
    target = self.gains[best] if losses[best] < losses[
        self.gains.index(1.0)] else 1.0
    self.target_gain.assign(target)
    self.sync_teacher()
    return target

  def _scalars(self, inputs, epoch, relief=1.0, K=None):
    result = super()._scalars(inputs, epoch, relief, K)
    result['loss_ambiguity_pull'] = self._pull
    result['loss_total'] = result['loss_total'] + self.lam * self._pull
    result['target_gain'] = tf.identity(self.target_gain)
    return result


def train_ambiguity_search(cfg, steps: int, eval_every: int, scorer, log,
                           every: int = 50, **task_args) -> Dict[str, object]:
  """A lever row: the method with `AmbiguitySearchTask`, searching every
  `every` steps on the step's batch."""
  keras.utils.set_random_seed(cfg.seed)
  task = AmbiguitySearchTask(cfg, **task_args)
  count = [0]

  def step(batch, epoch):
    if count[0] % every == 0:
      task.search(batch['image'])
    count[0] += 1
    return task.train_step(batch, epoch)
  return _loop(cfg, steps, eval_every, log, lambda: scorer(task.model), step)



def train_masked(cfg, steps: int, eval_every: int, scorer,
                 log) -> Dict[str, object]:
  """A diagnostic row: `train_row` with `losses_on_object`."""
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  losses_on_object(task.model)
  return _loop(cfg, steps, eval_every, log, lambda: scorer(task.model),
               task.train_step)


def train_supervised(cfg, steps: int, eval_every: int, scorer,
                     log) -> Dict[str, object]:
  """The upper-bound row: netD, seeded as in `train_row`, trained with L1 on
  the ground-truth depth of the input view (in units of the depth range,
  over the object mask), predicted with the model's depth mapping
  (`canonical_depth`: centred tanh into [min_depth, max_depth])."""
  keras.utils.set_random_seed(cfg.seed)
  model = Unsup3D(cfg)
  net = model.netD
  opt = optimizers_lib.build_optimizers({'netD': net}, cfg)['netD']
  span = cfg.max_depth - cfg.min_depth

  def to_depth(raw):
    return depth_lib.canonical_depth(raw, cfg.min_depth, cfg.max_depth,
                                     cfg.depth_centering, cfg.border_depth)

  def predict(image):
    depth = to_depth(net(image * 2.0 - 1.0, training=False)[..., 0])
    return (depth, tf.ones_like(depth), tf.zeros_like(depth[:, 0, 0]),
            tf.zeros_like(depth[:, 0, :3]))  # no view, no light

  @tf.function(jit_compile=config_lib.jit_compile(cfg),
               reduce_retracing=True)
  def step(image, depth_p):
    gt = model.depth_from_png(depth_p)
    valid = tf.cast(gt < tf.reduce_max(gt), tf.float32)
    with tf.GradientTape() as tape:
      depth = to_depth(net(image * 2.0 - 1.0, training=True)[..., 0])
      loss = losses_lib.masked_mean(tf.abs(depth - gt) / span, valid)
    grads = tape.gradient(loss, net.trainable_variables)
    optimizers_lib.apply_gradients(opt, grads, net.trainable_variables)
    return loss

  def evaluate():
    return scorer.score(predict, model.depth_from_png, model.K)
  return _loop(cfg, steps, eval_every, log, evaluate,
               lambda batch, epoch: {'loss_total': step(
                   batch['image'], batch['depth_gt'])})
