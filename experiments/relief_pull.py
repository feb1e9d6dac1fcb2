"""Relief pull: which pixels make the loss prefer a deeper relief?

Along the coupled-gain runs on loosely framed faces (zoom 1) the method's
loss pulls the relief deeper at every step (`experiments.learning
--rows=coupled_gain`: one learnt gain along the bas-relief ambiguity
climbs), on tightly framed ones (zoom 1.45) it does not. This measures that
pull at the plain method's own states and locates it in the image. For each zoom it
trains the method (`--steps`) on the set `experiments.learning` writes for
that zoom and, as it trains, moves its factors along the ambiguity by a
gain g (`trainers.couple_to_gain`: relief about the rotation centre x g, the
sines of pitch and yaw / g, the light tilt / g; g = 1 is the model) and
takes, for each test image, every pixel's share of the image's
reconstruction loss (`losses.photometric_map`, confidence included, as the
loss averages it) at g = 1 + eps and 1 - eps:

  pull = -(share(1 + eps) - share(1 - eps)) / (2 eps)

per pixel, for the reconstruction and for its flipped twin. A positive pull
is a pixel whose loss falls as the relief deepens; the sum over an image is
minus the slope of its loss along the ambiguity (the flipped term weighted
by `lam_flip` in the total). Each pixel keeps its validity at g = 1 (the
training gradient does not see the valid mask move either); pixels whose
validity changes within +-eps are left out and counted. The pull is summed
over three regions of the input view, from the generator's depth: the
object's interior, its rim (object pixels within `--rim` pixels of the
backdrop) and the backdrop. Measured before training and at every evaluation
(`--eval_every`), with the scores of `experiments.learning.Scorer`.

  python -m experiments.relief_pull   # experiments/results/relief_pull.*

With `--gains` it also takes, at every evaluation, the test images' mean
loss (l1 + lam_flip x l1_flip, each g with its own valid pixels) at each of
those gains: the loss along the ambiguity far from g = 1, with the
networks' own albedo, confidence and factors.

Writes <name>.json, <name>.md and <name>.png (the mean pull maps at the
last evaluation).
"""

import argparse
import json
import os
from typing import Callable, Dict, List

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from bench import common
from experiments import learning
from experiments import trainers
from tfunsup3d import losses
from tfunsup3d.data import synth_params
from tfunsup3d.train import task as task_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TERMS = ('l1', 'l1_flip')
# The losses taken along the ambiguity (`--gains`): result key -> (label,
# the terms summed as terms[0] + lam_flip x terms[1]).
LOSSES_ALONG = {'loss_along': ('with confidence', TERMS),
                'loss_along_plain': ('plain L1', ('plain', 'plain_flip'))}
REGIONS = ('interior', 'rim', 'backdrop')


def regions(object_mask: np.ndarray, rim: int) -> Dict[str, np.ndarray]:
  """`[B, S, S]` bool masks of the interior, rim and backdrop of objects.

  Args:
    object_mask: `[B, S, S]` bool, the object's pixels.
    rim: object pixels within this many pixels (chessboard distance) of a
      backdrop pixel form the rim; 0: no rim.
  """
  backdrop = ~object_mask
  near = backdrop.copy()
  for _ in range(rim):  # grow the backdrop by one pixel each round
    grown = near.copy()
    grown[:, 1:, :] |= near[:, :-1, :]
    grown[:, :-1, :] |= near[:, 1:, :]
    grown[:, :, 1:] |= near[:, :, :-1]
    grown[:, :, :-1] |= near[:, :, 1:]
    grown[:, 1:, 1:] |= near[:, :-1, :-1]
    grown[:, :-1, :-1] |= near[:, 1:, 1:]
    grown[:, 1:, :-1] |= near[:, :-1, 1:]
    grown[:, :-1, 1:] |= near[:, 1:, :-1]
    near = grown
  return {'interior': object_mask & ~near, 'rim': object_mask & near,
          'backdrop': backdrop}


def shares(loss: np.ndarray, valid: np.ndarray) -> np.ndarray:
  """Each pixel's share of its image's mean loss over valid pixels.

  Args:
    loss: `[B, S, S, C]` per pixel and channel.
    valid: `[B, S, S]` bool.

  Returns:
    `[B, S, S]`: sum over channels of loss x valid / (C x valid pixels); an
    image's shares sum to its loss.
  """
  count = valid.sum((1, 2), keepdims=True) * loss.shape[-1]
  return loss.sum(-1) * valid / np.maximum(count, 1)


def pull_maps(losses_at: Callable[[float], Dict[str, np.ndarray]],
              valid_at: Callable[[float], np.ndarray], eps: float
              ) -> Dict[str, np.ndarray]:
  """Central-difference pull of every pixel's loss share along g.

  Args:
    losses_at: g -> {term: `[B, S, S, C]` per-pixel loss}.
    valid_at: g -> `[B, S, S]` bool, the pixels the loss counts.
    eps: the step in g.

  Returns:
    {term: `[B, S, S]` pull}, with the valid pixels at g = 1 and 0 on
    pixels whose validity differs at 1 +- eps; 'kept': `[B, S, S]` bool.
  """
  valid = valid_at(1.0)
  kept = valid & valid_at(1.0 + eps) & valid_at(1.0 - eps)
  up, down = losses_at(1.0 + eps), losses_at(1.0 - eps)
  out = {term: -(shares(up[term], valid) - shares(down[term], valid))
               * kept / (2.0 * eps) for term in up if term in TERMS}
  out['kept'] = kept
  return out


def loss_along(losses_at: Callable[[float], Dict[str, np.ndarray]],
               valid_at: Callable[[float], np.ndarray], gains: List[float],
               lam_flip: float, terms=TERMS) -> np.ndarray:
  """`[G, B]`: each image's loss, terms[0] + lam_flip x terms[1] (default
  l1 + lam_flip x l1_flip) over the pixels valid at that gain, at each of
  `gains` (`losses_at`, `valid_at` as in `pull_maps`)."""
  rows = []
  for g in gains:
    valid, loss = valid_at(g), losses_at(g)
    rows.append(shares(loss[terms[0]], valid).sum((1, 2)) +
                lam_flip * shares(loss[terms[1]], valid).sum((1, 2)))
  return np.stack(rows) if rows else np.zeros([0, valid_at(1.0).shape[0]])


def _forward(model):
  """A compiled images -> {l1, l1_flip: per-pixel losses, plain,
  plain_flip: the same without the confidence maps, valid} of the model's
  reconstruction and its flipped twin."""
  @tf.function(autograph=False)
  def forward(images):
    out = model.decompose(images)
    b = tf.shape(images)[0]
    recon, inp = out['recon_im'], out['input_im']
    return {'l1': losses.photometric_map(recon[:b], inp,
                                         out['conf_sigma_l1']),
            'l1_flip': losses.photometric_map(recon[b:], inp,
                                              out['conf_sigma_l1_flip']),
            'plain': losses.photometric_map(recon[:b], inp),
            'plain_flip': losses.photometric_map(recon[b:], inp),
            'valid': out['recon_im_mask_both'][:b, ..., 0] > 0.5}
  return forward


def _model_losses(forward, images: np.ndarray, log_gain: tf.Variable):
  """(losses_at, valid_at) of `pull_maps` for `_forward` of a model wrapped
  by `trainers.couple_to_gain(model, log_gain)`."""
  cache = {}

  def at(g):
    if g not in cache:
      log_gain.assign(np.log(g))
      cache[g] = {k: v.numpy() for k, v in forward(images).items()}
    return cache[g]
  return ((lambda g: {t: v for t, v in at(g).items() if t != 'valid'}),
          (lambda g: at(g)['valid']))


def measure(model, log_gain: tf.Variable, batches, lam_flip: float,
            eps: float, rim: int, gains=()) -> Dict[str, object]:
  """Pull maps over the test batches: region sums (mean over images) per
  term and their `lam_flip`-weighted total, the mean maps, the share of
  valid pixels left out, and the mean losses at each of `gains`
  (`loss_along` of each of `LOSSES_ALONG`)."""
  along = {key: [] for key in LOSSES_ALONG}
  maps = {t: [] for t in TERMS}
  sums = {t: {r: [] for r in REGIONS} for t in TERMS}
  left_out, inputs = [], []
  forward = _forward(model)
  for image, depth_p in batches:
    images = np.asarray(image)
    losses_at, valid_at = _model_losses(forward, images, log_gain)
    pulls = pull_maps(losses_at, valid_at, eps)
    masks = regions(np.asarray(depth_p)[..., 0] > 0, rim)
    valid = valid_at(1.0)
    left_out.append((valid & ~pulls['kept']).sum() / max(valid.sum(), 1))
    inputs.append(images)
    for key, (_, terms) in LOSSES_ALONG.items():
      along[key].append(loss_along(losses_at, valid_at, list(gains),
                                   lam_flip, terms))
    for t in TERMS:
      maps[t].append(pulls[t])
      for r in REGIONS:
        sums[t][r].append((pulls[t] * masks[r]).sum((1, 2)))
  log_gain.assign(0.0)
  region = {t: {r: float(np.concatenate(sums[t][r]).mean()) for r in REGIONS}
            for t in TERMS}
  region['total'] = {r: region['l1'][r] + lam_flip * region['l1_flip'][r]
                     for r in REGIONS}
  return {'regions': region,
          'left_out': float(np.mean(left_out)),
          **{key: [float(v) for v in np.concatenate(rows, axis=1).mean(1)]
             for key, rows in along.items()},
          'maps': {t: np.concatenate(maps[t]).mean(0) for t in TERMS},
          'mean_input': np.concatenate(inputs).mean(0)}


def run_zoom(args, zoom: float, log) -> Dict[str, object]:
  """Trains the method on one zoom's set and measures its pull before
  training and at every evaluation: {'data_dir', 'curve': [{'step',
  'scores', 'regions', 'left_out'}], 'maps', 'mean_input'} (the maps of
  the last evaluation)."""
  data_dir = os.path.join(args.data_root,
                          f'learning_zoom{zoom:g}'.replace('.', ''))
  cfg = trainers.study_config(args, data_dir)
  trainers.synth_data(data_dir, {'train': args.num_train,
                                 'val': args.num_val, 'test': args.num_test},
                      trainers.data_config(args, cfg), args.data_seed,
                      synth_params.SynthOptions.for_category('face',
                                                             zoom=zoom))
  scorer = learning.Scorer(cfg, os.path.join(data_dir, 'test', 'factors.npz'))
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  log_gain = tf.Variable(0.0, trainable=False, name='pull_log_gain')
  plain = task.model.canonical  # trains as the method
  trainers.couple_to_gain(task.model, log_gain)
  coupled, task.model.canonical = task.model.canonical, plain
  last = {}

  def evaluate():
    scores = scorer(task.model)
    task.model.canonical = coupled  # g = 1: the model itself
    try:
      last.update(measure(task.model, log_gain, scorer.batches,
                          cfg.lam_flip, args.eps, args.rim, args.gains))
    finally:
      task.model.canonical = plain
    return dict(scores, pull=last['regions'], left_out=last['left_out'],
                **{key: last[key] for key in LOSSES_ALONG})
  curve = [{'step': 0, 'test': evaluate()}]
  curve += trainers._loop(cfg, args.steps, args.eval_every, log, evaluate,  # pylint: disable=protected-access
                          task.train_step)['curve']
  return {'data_dir': os.path.basename(data_dir),
          'curve': [{'step': p['step'],
                     'regions': p['test'].pop('pull'),
                     'left_out': p['test'].pop('left_out'),
                     **{key: p['test'].pop(key) for key in LOSSES_ALONG},
                     'scores': p['test']} for p in curve],
          'maps': last['maps'], 'mean_input': last['mean_input']}


def _row(zoom: float, point: Dict[str, object]) -> str:
  r, sc = point['regions'], point['scores']
  cells = [f'{r[t][k]:+.2e}' for t in ('l1', 'l1_flip', 'total')
           for k in REGIONS]
  return (f'| {zoom:g} | {point["step"]} | {sc["side_mean"]:.3f} | '
          f'×{sc["diag_best_relief_scale"]:g} | ' + ' | '.join(cells) +
          f' | {sum(r["total"].values()):+.2e} | {point["left_out"]:.1%} |')


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  lines = [
      f'# Relief pull: `{result["name"]}`', '',
      f'Config {trainers.config_text(s)} with '
      f'{s["overrides"] or "no overrides"}; '
      f'the method trained {s["steps"]} steps per zoom, measured before '
      f'training and every {s["eval_every"]} steps on the test split '
      f'({s["counts"]["test"]} images) moved along the bas-relief ambiguity '
      f'by g = 1 ± {s["eps"]}. Pull = minus the slope of each pixel\'s share '
      'of its image\'s loss along g (positive: the loss falls as the relief '
      'deepens), summed over the object\'s interior, its rim (object pixels '
      f'within {s["rim"]} px of the backdrop) and the backdrop, mean over the '
      'test images; total = l1 + lam_flip x l1_flip. Left out: valid pixels '
      f'whose validity changes within ±{s["eps"]}. {s["machine"]}.', '',
      '| zoom | step | SIDE ×1e-2 | best relief scale | ' + ' | '.join(
          f'{t}: {k}' for t in ('l1', 'l1_flip', 'total') for k in REGIONS)
      + ' | total, all pixels | left out |',
      '|' + '---|' * 15]
  for zoom, z in result['zooms'].items():
    lines += [_row(float(zoom), point) for point in z['curve']]
  gains = s.get('gains') or []
  if gains:
    lines += [
        '', 'Loss along the ambiguity: the test images\' mean loss '
        '(l1 + lam_flip x l1_flip, each gain with its own valid pixels) with '
        'the factors moved by g, as trained (with the confidence maps) and '
        'as plain L1 (without them); the lowest in bold.', '',
        '| zoom | step | best relief scale | loss | ' +
        ' | '.join(f'g = {g:g}' for g in gains) + ' | lowest at |',
        '|' + '---|' * (len(gains) + 5)]
    for zoom, z in result['zooms'].items():
      for point in z['curve']:
        for key, (label, _) in LOSSES_ALONG.items():
          if key not in point:  # results written before it was measured
            continue
          vals = point[key]
          best = int(np.argmin(vals))
          cells = [f'**{v:.4f}**' if i == best else f'{v:.4f}'
                   for i, v in enumerate(vals)]
          lines.append(
              f'| {float(zoom):g} | {point["step"]} | '
              f'×{point["scores"]["diag_best_relief_scale"]:g} | {label} | '
              + ' | '.join(cells) + f' | g = {gains[best]:g} |')
  return '\n'.join(lines) + '\n'


def plot(zooms: Dict[str, Dict[str, object]], path: str) -> None:
  """Per zoom: the mean test input and the mean pull maps at the last
  evaluation."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(len(zooms), 3, figsize=(9, 3 * len(zooms)),
                           squeeze=False)
  for row, (zoom, z) in zip(axes, zooms.items()):
    row[0].imshow(np.clip(z['mean_input'], 0, 1))
    row[0].set_title(f'zoom {float(zoom):g}: mean test input, step '
                     f'{z["curve"][-1]["step"]}', fontsize=9)
    for ax, t in zip(row[1:], TERMS):
      lim = float(np.abs(z['maps'][t]).max()) or 1.0
      im = ax.imshow(z['maps'][t], cmap='RdBu', vmin=-lim, vmax=lim)
      ax.set_title(f'{t} pull (blue: deeper is cheaper)', fontsize=9)
      fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in row:
      ax.axis('off')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  trainers.add_run_arguments(p, 'relief_pull', steps=1500, eval_every=250)
  p.add_argument('--data_root', default=os.path.join(REPO_ROOT, 'experiments',
                                                    'data'),
                 help="the sets' parent folder: learning_zoom<zoom> in it, "
                 "shared with experiments.learning (written if missing or "
                 "made with other counts)")
  p.add_argument('--zooms', default='1,1.45',
                 help='comma-separated zooms, each its own set and model')
  p.add_argument('--eps', type=float, default=0.02,
                 help='the step in g of the central difference')
  p.add_argument('--rim', type=int, default=3,
                 help='the rim: object pixels within this many of the backdrop')
  p.add_argument('--gains', default='',
                 help='comma-separated gains g > 0 at which to take the mean '
                 'test loss at every evaluation (none by default)')
  args = p.parse_args(argv)
  trainers.check_run_arguments(p, args)
  if args.zoom != synth_params.SynthOptions().zoom:
    p.error('--zoom: this study takes --zooms (comma-separated)')
  try:
    args.zooms = [float(z) for z in args.zooms.split(',')]
  except ValueError:
    p.error(f'--zooms must be numbers. Received: {args.zooms!r}')
  try:
    args.gains = [float(g) for g in args.gains.split(',') if g.strip()]
  except ValueError:
    p.error(f'--gains must be numbers. Received: {args.gains!r}')
  if any(g <= 0 for g in args.gains):
    p.error(f'--gains must be > 0. Received: {args.gains}')
  if not 0 < args.eps < 0.5 or args.rim < 0 or min(args.zooms) <= 0:
    p.error('--eps must be in (0, 0.5), --rim >= 0 and the zooms > 0')
  return args


def main(argv=None) -> Dict[str, object]:
  args = parse_args(argv)
  cfg = trainers.base_config(args)
  result = {'name': args.name, 'settings': {
      'config': os.path.relpath(os.path.abspath(args.config), REPO_ROOT),
      **trainers.overlay_settings(args), 'overrides': args.set,
      'steps': args.steps, 'eval_every': args.eval_every, 'eps': args.eps,
      'rim': args.rim, 'gains': args.gains, 'batch_size': cfg.batch_size,
      'counts': {'train': args.num_train, 'val': args.num_val,
                 'test': args.num_test}, 'data_seed': args.data_seed,
      'machine': f'{os.cpu_count()} CPU cores, TF {tf.__version__}'},
      'zooms': {}}
  for zoom in args.zooms:
    print(f'zoom {zoom:g}', flush=True)
    result['zooms'][f'{zoom:g}'] = run_zoom(
        args, zoom, lambda msg: print(msg, flush=True))
  os.makedirs(args.out_dir, exist_ok=True)
  plot(result['zooms'], os.path.join(args.out_dir, args.name + '.png'))
  stored = json.loads(json.dumps(result, default=lambda a: None))
  for z in stored['zooms'].values():  # the maps are in the PNG
    z.pop('maps'), z.pop('mean_input')
  common.write_results(args.out_dir, args.name, stored, markdown(stored))
  print(markdown(stored))
  return stored


if __name__ == '__main__':
  main()
