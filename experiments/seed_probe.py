"""Seed probe: where two training seeds of one recipe part.

With the loose-framing recipe on the zoom-1 faces some training seeds learn
the shape and others keep a too-deep relief (docs/experiments.md, "Four
seeds"). This trains one model per seed (`--seeds`) with the config and
`--set` overrides, as `experiments.learning` trains its rows, and at each of
`--checks` measures on the first `--num_images` test images:

- curvature, ripple and slope: the canonical depth's mean |second
  difference| (`factors.depth.curvature`), the part of it that changes sign
  within 4 pixels (`factors.depth.ripple`) and its mean |first difference|
  (the smoothness term), in units of the depth range, against the
  generator's canonical depth's;
- relief gain: the least-squares factor from the generator's canonical
  relief (about the face mean, on its face mask) to the model's;
- the reconstruction's mean |error| and its confidence-weighted loss
  (`losses.photometric_map`) over the valid pixels of the face and of the
  backdrop ring around it (the generator's face mask in the canonical
  frame: in the input view, turned up to 30 degrees, its edge lies a few
  pixels off);
- SIDE and MAD (x1e-2, degrees) of the model's canonical depth rendered
  with its own view and with the generator's: a shape error stays with the
  generator's view, a view error goes;
- the mean predicted pitch (degrees) against the generator's.

  python -m experiments.seed_probe --name=seed_probe_zoom1 --seeds=0,1 \\
      --set lam_view_cycle=1 --set min_yaw_std=15 --set min_light_tilt_std=0.3 \\
      --set prior_start_step=300 --set lam_protrusion=1

Writes <name>.json, <name>.md (one row per seed and check) and <name>.png
(per seed: the mean canonical depth minus the generator's at the last
check, and its middle row and column against the generator's).
"""

import argparse
import dataclasses
import json
import os
from typing import Dict

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import imageio.v3 as iio
import keras
import numpy as np
import tensorflow as tf

from experiments import trainers
from tfunsup3d import losses
from tfunsup3d.data import synth_params
from tfunsup3d.factors import depth as depth_lib
from tfunsup3d.train import loop
from tfunsup3d.train import task as task_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGIONS = ('face', 'ring')


def region_means(maps: np.ndarray, valid: np.ndarray,
                 face: np.ndarray) -> Dict[str, float]:
  """Mean of `maps` `[N,S,S]` over the `valid` pixels of the face mask and
  of the rest (`ring`), both `[N,S,S]` booleans."""
  return {name: float((maps * (valid & region)).sum() /
                      max((valid & region).sum(), 1))
          for name, region in (('face', face), ('ring', ~face))}


def relief_gain(depth: np.ndarray, gt: np.ndarray, face: np.ndarray) -> float:
  """Least-squares k with depth - mean ~ k (gt - mean) on the face pixels,
  each image about its own face mean; `[N,S,S]` each."""
  def about_mean(d):
    n = face.sum((1, 2), keepdims=True)
    return (d - (d * face).sum((1, 2), keepdims=True) / n) * face
  d, g = about_mean(depth), about_mean(gt)
  return float((d * g).sum() / (g * g).sum())


def _scores(model, canon_depth, view, gt_depth):
  cfg = model.cfg
  recon = model.render_depth(canon_depth, view)
  m = model.compute_metrics({'recon_depth': recon, 'recon_im_mask': (
      depth_lib.valid_mask(recon, cfg.min_depth, cfg.max_depth)[..., None])},
                            gt_depth)
  return (float(np.nanmean(m['side'].numpy()) * 100),
          float(np.nanmean(m['mad'].numpy())))


def measure(model, images: np.ndarray, depth_p: np.ndarray,
            factors: Dict[str, np.ndarray]) -> Dict[str, object]:
  """The probe's numbers for `images` `[N,S,S,3]` in [0, 1] with their
  ground-truth depth PNG values `depth_p` `[N,S,S]` in [0, 1] and the
  generator's `factors` (canon_depth, face_mask, view; N rows)."""
  cfg = model.cfg
  n = len(images)
  out = model.decompose(tf.constant(images))
  depth = out['canon_depth'][:n]
  face = factors['face_mask'] > 0.5
  gt_canon = factors['canon_depth'].astype(np.float32)
  valid = out['recon_im_mask_both'][:n, ..., 0].numpy() > 0.5
  err = tf.reduce_mean(tf.abs(out['recon_im'][:n] - out['input_im']), -1)
  nll = tf.reduce_mean(losses.photometric_map(
      out['recon_im'][:n], out['input_im'], out['conf_sigma_l1']), -1)
  gt_depth = model.depth_from_png(tf.constant(depth_p))
  view = out['view'][:n]
  own, given = (_scores(model, depth, v, gt_depth) for v in (
      view, tf.constant(factors['view'], tf.float32)))
  lo, hi = cfg.min_depth, cfg.max_depth
  return {
      'curvature': float(depth_lib.curvature(depth, lo, hi)),
      'curvature_gt': float(depth_lib.curvature(gt_canon, lo, hi)),
      'ripple': float(depth_lib.ripple(depth, lo, hi)),
      'ripple_gt': float(depth_lib.ripple(gt_canon, lo, hi)),
      'slope': float(depth_lib.smoothness(depth, lo, hi)),
      'slope_gt': float(depth_lib.smoothness(gt_canon, lo, hi)),
      'relief_gain': relief_gain(depth.numpy(), gt_canon, face),
      'err': region_means(err.numpy(), valid, face),
      'nll': region_means(nll.numpy(), valid, face),
      'side_own_view': own[0], 'mad_own_view': own[1],
      'side_given_view': given[0], 'mad_given_view': given[1],
      'pitch_deg': float(np.degrees(view[:, 0].numpy().mean())),
      'pitch_gt_deg': float(np.degrees(factors['view'][:, 0].mean())),
      'mean_depth': depth.numpy().mean(0),
  }


def read_test(data_dir: str, count: int):
  """The first `count` test images `[N,S,S,3]` in [0, 1], their depth PNG
  values `[N,S,S]` in [0, 1] and generator factors (`trainers.read_split`)."""
  images, factors = trainers.read_split(data_dir, 'test', count,
                                        ('canon_depth', 'face_mask', 'view'))
  depths = np.stack([iio.imread(os.path.join(
      data_dir, 'test', 'depth', f'{i:06d}_depth.png'))
                     for i in range(len(images))])
  if depths.ndim == 4:
    depths = depths[..., 0]
  scale = float(np.iinfo(depths.dtype).max)
  return images, depths.astype(np.float32) / scale, factors


def probe_seed(cfg, steps: int, checks, data, log) -> list:
  """Trains the method from seed `cfg.seed` for `steps` steps and
  `measure`s at each step in `checks`."""
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  points, step, epoch = [], 0, 0
  while step < steps:
    for batch in loop.train_dataset(cfg, epoch):
      task.train_step(batch, epoch)
      step += 1
      if step in checks:
        point = dict(step=step, **measure(task.model, *data))
        log(f'  seed {cfg.seed} step {step}: curvature '
            f'{point["curvature"]:.4f} (GT {point["curvature_gt"]:.4f}), '
            f'ripple {point["ripple"]:.4f} (GT {point["ripple_gt"]:.4f}), '
            f'err face/ring '
            f'{point["err"]["face"]:.3f}/{point["err"]["ring"]:.3f}, SIDE '
            f'{point["side_own_view"]:.3f} (given view '
            f'{point["side_given_view"]:.3f})')
        points.append(point)
      if step >= steps:
        break
    epoch += 1
  return points


def _pair(point, key: str) -> str:
  """'value (GT value)' of `key` in a probe point; '-' where absent."""
  if key not in point:
    return '-'
  return f'{point[key]:.4f} ({point[key + "_gt"]:.4f})'


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  lines = [
      f'# Seed probe: `{result["name"]}`', '',
      f'Config {trainers.config_text(s)} with {s["overrides"]}; data '
      f'`{s["data_dir"]}`, the first {s["num_images"]} test images. '
      f'{s["machine"]}.', '',
      '| seed | step | curvature (GT) | ripple (GT) | slope (GT) | '
      'relief gain | |error| face / ring | loss face / ring | SIDE / MAD, '
      'own view | SIDE / MAD, generator\'s view | mean pitch (GT) |',
      '|---|---|---|---|---|---|---|---|---|---|---|']
  for seed, points in result['seeds'].items():
    for p in points:
      lines.append(
          f'| {seed} | {p["step"]} | {_pair(p, "curvature")} '
          f'| {_pair(p, "ripple")} '
          f'| {p["slope"]:.4f} ({p["slope_gt"]:.4f}) | {p["relief_gain"]:.2f} '
          f'| {p["err"]["face"]:.3f} / {p["err"]["ring"]:.3f} '
          f'| {p["nll"]["face"]:.3f} / {p["nll"]["ring"]:.3f} '
          f'| {p["side_own_view"]:.3f} / {p["mad_own_view"]:.2f} '
          f'| {p["side_given_view"]:.3f} / {p["mad_given_view"]:.2f} '
          f'| {p["pitch_deg"]:.2f}° ({p["pitch_gt_deg"]:.2f}°) |')
  lines += ['', 'Curvature: mean |second difference| of the canonical '
            'depth; ripple: the part of it that changes sign within 4 '
            'pixels (-: not measured); slope: mean |first difference|; all '
            'in units of the depth '
            'range; relief gain: the factor from the generator\'s canonical '
            'relief on the face to the model\'s (1: right depth); error and '
            'loss: the reconstruction\'s mean |error| and confidence-'
            'weighted loss on the face and on the backdrop ring.']
  return '\n'.join(lines) + '\n'


def plot(result: Dict[str, object], gt_mean: np.ndarray, means,
         path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  seeds = list(result['seeds'])
  fig, axes = plt.subplots(len(seeds), 2, figsize=(8, 3.6 * len(seeds)),
                           squeeze=False)
  mid = gt_mean.shape[0] // 2
  for row, seed in zip(axes, seeds):
    step = result['seeds'][seed][-1]['step']
    diff = means[seed] - gt_mean
    im = row[0].imshow(diff, cmap='RdBu', vmin=-0.05, vmax=0.05)
    fig.colorbar(im, ax=row[0])
    row[0].set_title(f'seed {seed}, step {step}: mean depth - GT')
    for data, style, label in ((gt_mean, 'k', 'GT'),
                               (means[seed], 'r', 'model')):
      row[1].plot(data[mid], style, label=f'{label}, middle row')
      row[1].plot(data[:, mid], style + '--', label=f'{label}, middle column')
    row[1].legend(fontsize=7)
    row[1].set_title('mean canonical depth')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None) -> Dict[str, object]:
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  trainers.add_run_arguments(p, 'seed_probe', steps=1500, eval_every=250)
  p.add_argument('--seeds', default='0,1')
  p.add_argument('--checks', default='300,500,1000,1500',
                 help='the steps at which to measure')
  p.add_argument('--num_images', type=int, default=96)
  p.add_argument('--data_dir', default=os.path.join(
      REPO_ROOT, 'experiments', 'data', 'learning_zoom1'))
  p.set_defaults(zoom=1.0)
  args = p.parse_args(argv)
  trainers.check_run_arguments(p, args)
  checks = sorted(int(c) for c in args.checks.split(','))
  if not checks or checks[0] < 1 or checks[-1] > args.steps:
    p.error('--checks must lie in [1, --steps]')
  base = trainers.study_config(args, args.data_dir)
  trainers.synth_data(args.data_dir, {'train': args.num_train,
                                      'val': args.num_val,
                                      'test': args.num_test},
                      trainers.data_config(args, base), args.data_seed,
                      synth_params.SynthOptions.for_category(
                          'face', zoom=args.zoom))
  data = read_test(args.data_dir, args.num_images)
  result = {'name': args.name, 'settings': {
      'config': args.config, **trainers.overlay_settings(args),
      'overrides': args.set, 'steps': args.steps,
      'data_dir': os.path.relpath(args.data_dir, REPO_ROOT),
      'num_images': len(data[0]),
      'machine': f'{os.cpu_count()} CPU cores, TF {tf.__version__}'},
            'seeds': {}}
  means = {}
  for seed in args.seeds.split(','):
    cfg = dataclasses.replace(base, seed=int(seed))
    points = probe_seed(cfg, args.steps, set(checks), data, print)
    means[seed] = points[-1]['mean_depth']
    result['seeds'][seed] = [{k: v for k, v in pt.items()
                              if k != 'mean_depth'} for pt in points]
  os.makedirs(args.out_dir, exist_ok=True)
  stem = os.path.join(args.out_dir, args.name)
  with open(stem + '.json', 'w') as f:
    json.dump(result, f, indent=1)
  with open(stem + '.md', 'w') as f:
    f.write(markdown(result))
  plot(result, data[2]['canon_depth'].mean(0), means, stem + '.png')
  print(markdown(result))
  return result


if __name__ == '__main__':
  main()
