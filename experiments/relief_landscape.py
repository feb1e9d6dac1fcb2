"""Relief landscape: does the method's loss prefer the true depth relief?

The learning benchmark's model ends with its relief about 3x too deep, its
yaw and light tilt about 3x too small (`experiments.learning`'s diagnostics):
nearly the same image under a nearly orthographic camera (the bas-relief
ambiguity). This asks whether that is a minimum of the objective or a place
the networks get stuck. For test images of a synthetic set and each relief
scale k it holds netD's output at the generator's canonical depth with its
relief (about the border depth) scaled by k, starts from the generator's
albedo, light and view with pitch and yaw (sin) and the light tilt divided by
k (the first-order equivalent), and re-fits albedo, light and view per image
with Adam (`--steps`): the networks' outputs become free variables. It
reports the method's photometric loss (L1 + lam_flip * L1 of the flipped
reconstruction; no confidence maps, no smoothness, no perceptual loss) at
the start and end, and the refitted yaw and tilt as multiples of the
generator's (least-squares slopes). Then (`--view_steps`) it refits the view
alone from zero, the networks' start, with the generator's other factors
held: whether the loss leads the view to the truth when the rest is right.

  python -m experiments.relief_landscape   # experiments/results/relief_landscape.*
"""

import argparse
import dataclasses
import json
import os
from typing import Dict

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from bench import common
from experiments import learning
from experiments import trainers
from tfunsup3d import config as config_lib
from tfunsup3d import Unsup3D
from tfunsup3d import render

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETS = ('netD', 'netA', 'netL', 'netV')
VIEW_NAMES = ('pitch', 'yaw', 'roll', 'tx', 'ty')


def scale_relief(factors: Dict[str, np.ndarray], k: float,
                 border_depth: float, min_depth: float, max_depth: float
                 ) -> Dict[str, np.ndarray]:
  """The generator's factors with relief x k and pitch, yaw (their sines)
  and light tilt / k; the depth is kept inside the model's open range."""
  out = dict(factors)
  span = max_depth - min_depth
  out['canon_depth'] = np.clip(
      border_depth + k * (factors['canon_depth'] - border_depth),
      min_depth + 1e-3 * span, max_depth - 1e-3 * span)
  view = factors['view'].astype(np.float64).copy()
  view[:, :2] = np.arcsin(np.clip(np.sin(view[:, :2]) / k, -1.0, 1.0))
  out['view'] = view
  d = factors['light_d'].astype(np.float64)
  d = np.concatenate([d[:, :2] / d[:, 2:] / k, np.ones_like(d[:, :1])], 1)
  out['light_d'] = d / np.linalg.norm(d, axis=1, keepdims=True)
  return out


def stretch_map(raw, stretch):
  """`raw` [n,S,S,C] widened by stretch[:, 0] and heightened by stretch[:, 1]
  ([n,2], > 0) about the map's centre (bilinear; samples beyond the map's
  edge repeat its edge): out(u, v) = raw(u / sx, v / sy), u, v in [-1, 1]."""
  size = tf.shape(raw)[1]
  axis = tf.linspace(-1.0, 1.0, size)
  u = axis[None, None, :] / stretch[:, 0, None, None]
  v = axis[None, :, None] / stretch[:, 1, None, None]
  grid = tf.stack([tf.broadcast_to(u, tf.shape(raw)[:3]),
                   tf.broadcast_to(v, tf.shape(raw)[:3])], -1)
  return render.grid_sample(raw, tf.clip_by_value(grid, -1.0, 1.0))


def equivalent_stretch(factors: Dict[str, np.ndarray], k: float) -> np.ndarray:
  """[n,2] (sx, sy) = cos(yaw) / cos(yaw_k), cos(pitch) / cos(pitch_k), with
  sin(angle_k) = sin(angle) / k (`scale_relief`): the widening that keeps the
  canonical map's points where the generator's view puts them, to second
  order, under an orthographic camera."""
  angles = factors['view'][:, :2].astype(np.float64)
  scaled = np.arcsin(np.clip(np.sin(angles) / k, -1.0, 1.0))
  return (np.cos(angles) / np.cos(scaled))[:, ::-1].astype(np.float32)


def _factor_model(cfg, factors: Dict[str, np.ndarray], n: int,
                  stretch: bool = False):
  """The method with its networks replaced by per-image variables set to the
  generator's `factors` (netD's raw output; the others before their tanh);
  with `stretch`, netD's map is also widened and heightened per image by the
  variable `state['stretch']` [n,2] (`stretch_map`).

  Returns (model, state, values): `state[name]` is the variable standing for
  net `name`; `values(f)` gives its value for the factors `f`."""
  model = Unsup3D(cfg)
  index = np.arange(n)

  def values(f):
    return {name: trainers.net_output(cfg, f, index, name) if name == 'netD'
            else np.arctanh(np.clip(trainers.net_output(cfg, f, index, name),
                                    -0.999, 0.999)) for name in NETS}
  state = {name: tf.Variable(v) for name, v in values(factors).items()}
  if stretch:
    state['stretch'] = tf.Variable(tf.ones([n, 2]))
    model.netD.call = lambda *args, **kwargs: stretch_map(state['netD'],
                                                          state['stretch'])
  else:
    model.netD.call = lambda *args, **kwargs: tf.identity(state['netD'])
  for name in NETS[1:]:
    getattr(model, name).call = (
        lambda *args, var=state[name], **kwargs: tf.tanh(var))
  return model, state, values


def _photometric(cfg):
  """`cfg` without confidence, smoothness and perceptual loss."""
  return dataclasses.replace(cfg, use_conf_map=False, lam_depth_sm=0.0,
                             lam_perc=0.0)


def _loss(model, cfg, image):
  """L1 + lam_flip x L1 flip (the `_photometric` loss), L1, L1 flip."""
  losses = model.compute_losses(model.decompose(image))
  l1, l1_flip = losses['loss_l1_im'], losses['loss_l1_im_flip']
  return l1 + cfg.lam_flip * l1_flip, l1, l1_flip


def landscape(cfg, images: np.ndarray, factors: Dict[str, np.ndarray],
              scales, steps: int, lr: float, log=print, stretch: bool = False):
  """Start and end losses of the per-image refit at each relief scale (the
  photometric loss only: `cfg` without confidence, smoothness, perceptual);
  with `stretch` the held depth map is also widened and heightened per image,
  starting from `equivalent_stretch` and refitted with the rest."""
  cfg = _photometric(cfg)
  n = len(images)
  model, state, values = _factor_model(cfg, factors, n, stretch)
  variables = [state[name] for name in NETS[1:]]
  if stretch:
    variables.append(state['stretch'])
  image = tf.constant(images)

  @tf.function(jit_compile=True)
  def loss_and_grads():
    with tf.GradientTape() as tape:
      loss, l1, l1_flip = _loss(model, cfg, image)
    return loss, l1, l1_flip, tape.gradient(loss, variables)

  rows = []
  gt_yaw = factors['view'][:, 1]
  gt_tilt = learning.light_tilt(factors['light_d'])
  for k in scales:
    start = scale_relief(factors, k, cfg.border_depth, cfg.min_depth,
                         cfg.max_depth)
    for name, value in values(start).items():
      state[name].assign(value)
    if stretch:
      state['stretch'].assign(equivalent_stretch(factors, k))
    opt = keras.optimizers.Adam(lr)
    first = float(loss_and_grads()[0])
    for _ in range(steps):
      grads = loss_and_grads()[3]
      opt.apply_gradients(zip(grads, variables))
    loss, l1, l1_flip, _ = loss_and_grads()
    out = model.decompose(image)
    row = {'relief_scale': float(k), 'loss_start': first,
           'loss_end': float(loss), 'l1_end': float(l1),
           'l1_flip_end': float(l1_flip),
           'yaw_slope': learning.slope(gt_yaw, out['view'].numpy()[:n, 1]),
           'tilt_slope': learning.slope(gt_tilt, learning.light_tilt(
               out['canon_light_d'].numpy()[:n]))}
    if stretch:
      row['stretch_x'] = float(np.mean(state['stretch'].numpy()[:, 0]))
    log(json.dumps(row))
    rows.append(row)
  return rows


def view_from_zero(cfg, images: np.ndarray, factors: Dict[str, np.ndarray],
                   steps: int, lr: float) -> Dict[str, Dict[str, float]]:
  """Refits the viewpoint alone per image from the zero view (Adam on the
  photometric loss), with the generator's depth, albedo and light held.

  Returns, per view component (pitch, yaw, roll, tx, ty), the least-squares
  slope of the refitted value against the generator's and their correlation
  (0 when either is constant): 1 and 1 when the loss leads the view to the
  truth from the networks' starting point."""
  cfg = _photometric(cfg)
  n = len(images)
  model, state, _ = _factor_model(cfg, factors, n)
  state['netV'].assign(tf.zeros_like(state['netV']))
  image = tf.constant(images)

  @tf.function(jit_compile=True)
  def grads():
    with tf.GradientTape() as tape:
      loss = _loss(model, cfg, image)[0]
    return tape.gradient(loss, state['netV'])

  opt = keras.optimizers.Adam(lr)
  for _ in range(steps):
    opt.apply_gradients([(grads(), state['netV'])])
  fitted = model.decompose(image)['view'].numpy()[:n]
  out = {}
  for j, name in enumerate(VIEW_NAMES):
    gt, fit = factors['view'][:n, j], fitted[:, j]
    constant = np.std(gt) == 0 or np.std(fit) == 0
    out[name] = {'slope': learning.slope(gt, fit), 'corr': 0.0 if constant
                 else float(np.corrcoef(gt, fit)[0, 1])}
  return out


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  stretch = s.get('stretch')  # results written before --stretch lack it
  lines = [
      '# Relief landscape', '',
      f'{s["num_images"]} test images of `{s["data_dir"]}`, config '
      f'`{s["config"]}`; per relief scale k: the generator\'s factors with '
      'relief x k and pitch/yaw/light tilt / k, then albedo, light and view '
      f're-fitted per image ({s["steps"]} Adam steps, lr {s["lr"]}) with the '
      'depth held' + (
          ' but widened and heightened per image (started at the '
          'second-order equivalent, refitted)' if stretch else '') +
      '. Loss: L1 + lam_flip x L1 of the flipped reconstruction '
      '(no confidence).' + (
          f' Config overrides: {s["overrides"]}.' if s.get('overrides')
          else ''), '',
      '| relief scale k | loss at start | loss after refit | L1 | L1 flip | '
      'yaw / GT yaw | light tilt / GT tilt |' + (
          ' mean widening |' if stretch else ''),
      '|---|---|---|---|---|---|---|' + ('---|' if stretch else '')]
  for r in result['rows']:
    lines.append(f'| {r["relief_scale"]:g} | {r["loss_start"]:.4f} | '
                 f'{r["loss_end"]:.4f} | {r["l1_end"]:.4f} | '
                 f'{r["l1_flip_end"]:.4f} | {r["yaw_slope"]:.2f} | '
                 f'{r["tilt_slope"]:.2f} |' + (
                     f' {r["stretch_x"]:.3f} |' if stretch else ''))
  view = result.get('view_from_zero')
  if view:
    lines += [
        '', '## The view from zero', '',
        'The same images with the generator\'s depth, albedo and light '
        'held and the view alone refitted from the zero view (the '
        f'networks\' start), {s["view_steps"]} Adam steps, lr {s["lr"]}; '
        'slope and correlation of the refitted against the generator\'s.',
        '', '| view component | slope | correlation |', '|---|---|---|']
    lines += [f'| {name} | {v["slope"]:.3f} | {v["corr"]:.3f} |'
              for name, v in view.items()]
  return '\n'.join(lines) + '\n'


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  p.add_argument('--config', default=os.path.join('configs', 'quickstart.yml'))
  p.add_argument('--data_dir', default=os.path.join(REPO_ROOT, 'experiments',
                                                   'data', 'learning'),
                 help='a tfunsup3d-synth set (experiments.learning writes it)')
  p.add_argument('--num_images', type=int, default=16)
  p.add_argument('--scales', default='0.5,0.7,1,1.4,2,3')
  p.add_argument('--steps', type=int, default=1500)
  p.add_argument('--lr', type=float, default=0.01)
  p.add_argument('--view_steps', type=int, default=600,
                 help='steps of the view-from-zero refit (0: skip it)')
  p.add_argument('--out_dir', default=os.path.join(REPO_ROOT, 'experiments',
                                                  'results'))
  p.add_argument('--name', default='relief_landscape')
  p.add_argument('--stretch', action='store_true',
                 help='also widen/heighten the held depth per image '
                 '(equivalent_stretch, refitted)')
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                 help='config override (repeatable)')
  args = p.parse_args(argv)
  try:
    args.scales = [float(x) for x in args.scales.split(',')]
  except ValueError:
    p.error(f'--scales must be comma-separated numbers: {args.scales!r}')
  if (min(args.scales) <= 0 or args.num_images <= 0 or args.steps < 0
      or args.view_steps < 0):
    p.error('--scales and --num_images must be positive, --steps and '
            '--view_steps >= 0')
  if not os.path.isfile(os.path.join(args.data_dir, 'test', 'factors.npz')):
    p.error(f'no synthetic test split with factors.npz in {args.data_dir} '
            '(run python -m experiments.learning once, or tfunsup3d-synth)')
  return args


def main(argv=None) -> Dict[str, object]:
  args = parse_args(argv)
  cfg = config_lib.load(args.config, list(args.set) + [
      f'train_val_data_dir={args.data_dir}']).resolved()
  images, factors = trainers.read_split(args.data_dir, 'test',
                                        args.num_images)
  rows = landscape(cfg, images, factors, args.scales, args.steps, args.lr,
                   stretch=args.stretch)
  data_dir = os.path.abspath(args.data_dir)  # relative to the repo if in it
  if data_dir.startswith(REPO_ROOT + os.sep):
    data_dir = os.path.relpath(data_dir, REPO_ROOT)
  result = {'settings': {'config': args.config, 'data_dir': data_dir,
                         'num_images': len(images), 'steps': args.steps,
                         'lr': args.lr, 'view_steps': args.view_steps,
                         'overrides': list(args.set),
                         'stretch': args.stretch},
            'rows': rows}
  if args.view_steps:
    result['view_from_zero'] = view_from_zero(cfg, images, factors,
                                              args.view_steps, args.lr)
  common.write_results(args.out_dir, args.name, result, markdown(result))
  print(markdown(result))
  return result


if __name__ == '__main__':
  main()
