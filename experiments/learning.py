"""Learning benchmark: does it learn 3D from unlabelled images, and how well?

Generates (once) a synthetic ground-truth set with `tfunsup3d.data.synth`
(fixed seed, separate train/val/test splits), trains one model per row from
the same initialisation for a fixed number of steps, and scores the test
split every `--eval_every` steps: SIDE (x1e-2) and MAD (degrees), mean and
std over images. Next to the rows it reports the constant null-depth and
average ground-truth-depth baselines computed by the same metric code on
the same images (`tfunsup3d.baselines`).

Rows (`--rows`, comma-separated):
  unsup            the config as given (the method),
  supervised       the upper bound: the same depth network (netD, same
                   output mapping) trained to predict the input view's depth
                   directly with L1 on the ground truth, same steps, batch,
                   optimiser and data,
  supervised_render  the method plus L1 on the ground-truth depth of the
                   rendered depth (`supervised_depth`),
  no_conf          without confidence maps (`use_conf_map: false`),
  no_albedo_flip   the flipped reconstruction uses the unflipped albedo,
  no_depth_flip    the flipped reconstruction uses the unflipped depth,
  no_perc          without the perceptual loss (`lam_perc: 0`; the same as
                   `unsup` when the config has no perceptual loss),
  given_view       diagnostic: the method with the generator's viewpoint
                   fed in place of netV's output (training and test),
  given_depth      diagnostic: the method with the generator's canonical
                   depth fed in place of netD's output,
  given_light      diagnostic: the method with the generator's light
                   (ambient, diffuse, direction) fed in place of netL's,
  given_depth_light  diagnostic: both the generator's canonical depth and
                   light fed in (netV, netA and netC learn): how fast the
                   view network learns when the depth cannot lock.
  given_albedo     diagnostic: the generator's canonical albedo fed in
                   place of netA's: does the albedo pay for a wrong relief?
  given_mask       diagnostic: the method with its reconstruction losses
                   kept to the generator's object mask (trained like
                   unsup): does the backdrop around the object lock it?
  coupled_gain     lever: the method with one learnt scalar g that scales
                   the relief about the rotation centre by g and the sines
                   of pitch and yaw and the light tilt by 1/g (its own
                   Adam, 10x the rate): which way the loss pulls along the
                   bas-relief ambiguity (`trainers.couple_to_gain`),
  coupled_gain_smooth  the same with the smoothness loss on the relief x g.
  ambiguity_search  lever: every 50 steps a line search of the batch's loss
                   along that ambiguity (g in 0.5, 0.7, 1, 1.4); when a g
                   beats 1, the networks are pulled together towards
                   their copy at the search, its factors moved to that g
                   (`trainers.AmbiguitySearchTask`).
  view_shift       lever: netV also sees each batch shifted sideways by a
                   few pixels and must give it the same rotation
                   (`trainers.ViewShiftTask`).
  The given_* rows (not given_mask) train on random batches of the train
  split held in memory, without the flip augmentation (a flip would negate
  the given yaw and light direction); they localise a shortfall of `unsup`
  to the viewpoint, the depth or the light.

Writes `<out_dir>/<name>.json` (everything, curves included; rows are added
as they finish, so an interrupted run keeps its finished rows and
`--resume` skips them), `<name>.md` (the table) and `<name>_curves.png`
(test SIDE/MAD and the training loss against steps, baselines as lines).

  python -m experiments.learning                # experiments/results/learning.*, ~2 h on 2 cores
  python -m experiments.learning --rows=unsup,supervised --steps=3000 \\
      --name=learning_long --set lr=0.0002
  python -m experiments.learning --category=car --rows=unsup  # the car set

`--category=car` scores the car-like category (`tfunsup3d.data.synth_car`)
with its own defaults (`CATEGORY_DEFAULTS`: configs/synthcar.yml, its own
data directory and result name, the category's zoom and view ranges);
flags given explicitly win.
"""

import argparse
import dataclasses
import functools
import json
import os
from typing import Dict

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

from bench import common
from experiments import trainers
from tfunsup3d import baselines
from tfunsup3d import config as config_lib
from tfunsup3d import metrics
from tfunsup3d import render
from tfunsup3d.data import images as images_lib
from tfunsup3d.data import synth_params
from tfunsup3d.train import curriculum

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = {
    'unsup': {},
    'supervised': {},  # trained by `train_supervised`, not the method
    'supervised_render': {'supervised_depth': True},
    'no_conf': {'use_conf_map': False},
    'no_albedo_flip': {'flip_albedo': False},
    'no_depth_flip': {'flip_depth': False},
    'no_perc': {'lam_perc': 0.0},
    'given_view': {},  # trained by `train_given`
    'given_depth': {},
    'given_light': {},
    'given_depth_light': {},
    'given_albedo': {},
    'given_mask': {},  # trained by `train_masked`
    'coupled_gain': {},  # trained by `train_coupled_gain`
    'coupled_gain_smooth': {},
    'ambiguity_search': {},  # trained by `train_ambiguity_search`
    'view_shift': {},  # trained by `train_view_shift`
}
# Rows that try a change to the method: only run when named in --rows.
LEVER_ROWS = ('coupled_gain', 'coupled_gain_smooth', 'ambiguity_search',
              'view_shift')
ROW_TITLES = {
    'unsup': 'Unsup3D (ours, no depth labels)',
    'supervised': 'depth network trained on GT depth (upper bound)',
    'supervised_render': 'the method + L1 on GT depth through the renderer',
    'no_conf': 'ablation: no confidence maps',
    'no_albedo_flip': 'ablation: no albedo flip',
    'no_depth_flip': 'ablation: no depth flip',
    'no_perc': 'ablation: no perceptual loss',
    'given_view': 'diagnostic: the method given the GT viewpoint',
    'given_depth': 'diagnostic: the method given the GT canonical depth',
    'given_light': 'diagnostic: the method given the GT light',
    'given_depth_light': 'diagnostic: the method given the GT canonical '
                         'depth and light',
    'given_albedo': 'diagnostic: the method given the GT canonical albedo',
    'given_mask': 'diagnostic: the method with its losses on the GT object '
                  'mask only (no backdrop)',
    'coupled_gain': 'lever: the method with one learnt gain moving relief, '
                    'turn and light tilt along the bas-relief ambiguity',
    'coupled_gain_smooth': 'lever: the same, the smoothness loss on the '
                           'gained relief',
    'ambiguity_search': 'lever: a line search along the bas-relief '
                        'ambiguity every 50 steps, the networks pulled '
                        'together to its best gain',
    'view_shift': 'lever: the rotation netV gives a batch and its copy '
                  'shifted sideways kept equal',
}


# Per category: the defaults of --config, --data_dir and --name (a category
# never reuses another's data set: its own directory, and the category is in
# the data's meta); --zoom defaults to the category's (`SynthOptions`).
CATEGORY_DEFAULTS = {
    'face': {'config': os.path.join('configs', 'quickstart.yml'),
             'data_dir': os.path.join(REPO_ROOT, 'experiments', 'data',
                                      'learning'),
             'name': 'learning'},
    'car': {'config': os.path.join('configs', 'synthcar.yml'),
            'data_dir': os.path.join(REPO_ROOT, 'experiments', 'data',
                                     'learning_car'),
            'name': 'learning_car'},
}


def light_tilt(light_d: np.ndarray) -> np.ndarray:
  """Light directions `[n, 3]` -> their tilts (dx/dz, dy/dz) `[n, 2]`."""
  return light_d[:, :2] / light_d[:, 2:]


def correlation(x: np.ndarray, y: np.ndarray) -> float:
  """Pearson correlation of x and y; nan when x is not finite or either is
  constant (nothing to correlate)."""
  if np.all(np.isfinite(x)) and np.std(x) > 0 and np.std(y) > 0:
    return float(np.corrcoef(x, y)[0, 1])
  return float('nan')


def slope(x: np.ndarray, y: np.ndarray) -> float:
  """Least-squares slope of y on x through the origin (all entries)."""
  return float(np.sum(x * y) / np.sum(x * x))


def _centre_crop(image, depth_p, fraction: float):
  """(image, depth PNG value) centre-cropped to `fraction` (1: unchanged);
  a depth pixel whose bilinear footprint touches the background (0) is set
  to background."""
  if fraction >= 1.0:
    return image, depth_p
  valid = curriculum.centre_crop(tf.cast(depth_p > 0, tf.float32), fraction)
  depth_p = curriculum.centre_crop(depth_p, fraction)
  return (curriculum.centre_crop(image, fraction),
          tf.where(valid > 0.999, depth_p, tf.zeros_like(depth_p)))


RELIEF_SCALES = (0.25, 0.35, 0.5, 0.7, 1.0, 1.4)


class Scorer:
  """Scores a model on the test split (the model's metrics, XLA).

  Besides SIDE and MAD it reports diagnostics (not scores): the SIDE
  of the predicted depth with its relief (log depth about its mean over the
  face) scaled by one global factor, the best of `RELIEF_SCALES`, which
  separates "wrong shape" from "right shape, wrong depth scale" (the
  relief/rotation ambiguity of a nearly orthographic camera); and the
  predicted yaw's spread and correlation against the generator's yaw, and
  against the generator's x-translation (a face shifted sideways looks, to
  first order, like a face turned about the rotation centre behind it: a
  netV that reads yaw from the face's position shows a high value here);
  and the slope of the predicted light tilt (dx/dz, dy/dz of the light
  direction) against the generator's, through the origin and pooled over x
  and y, with their correlation (pooled likewise: whether the light is read
  at all); and the fraction of the object's pixels whose predicted depth
  lies in the nearest 5% of the depth range (a relief pushed against the
  near bound, where tanh saturates). Relief scaled by k with yaw and tilt
  scaled by 1/k renders nearly the same image (the bas-relief ambiguity of
  Lambertian shading under a nearly orthographic camera), so a model stuck
  at relief k shows a best relief scale near 1/k and a tilt slope near 1/k.
  """

  def __init__(self, cfg, factors_path: str, crop: float = 1.0):
    """`crop` < 1: every test image and its depth centre-cropped to that
    fraction of the side (`curriculum.centre_crop`, the `crop_mix` crop),
    depth pixels kept only where the crop saw no background."""
    ds = images_lib.build_dataset(
        config_lib.from_dict({'load_gt_depth': True}, base=cfg), 'test',
        training=False)  # in file order: batch k holds the next images
    self.batches = [_centre_crop(b['image'], b['depth_gt'], crop)
                    for b in ds]
    self.factors = trainers.read_factors(factors_path)  # the generator's
    self.near = cfg.min_depth + 0.05 * (cfg.max_depth - cfg.min_depth)
    self.K = render.intrinsics(cfg.image_size, cfg.fov)  # the data's camera

  def position_cue(self) -> Dict[str, float]:
    """How much the object's position tells about the view: the
    correlation of the horizontal centroid of each test image's object
    (its ground-truth depth's valid pixels, as far as the frame shows it)
    with the generator's yaw and with its x-translation. A view network
    that reads the object's position learns the yaw only as far as the
    first is large."""
    centroids = []
    for _, depth_p in self.batches:
      mask = depth_p.numpy()[..., 0] > 0
      cols = np.arange(mask.shape[2], dtype=np.float64)
      centroids.append((mask * cols).sum((1, 2)) /
                       np.maximum(mask.sum((1, 2)), 1))
    x = np.concatenate(centroids)
    view = self.factors['view'][:len(x)]
    return {'yaw': correlation(x, view[:, 1]),
            'tx': correlation(x, view[:, 3])}

  def __call__(self, model, before_batch=None) -> Dict[str, float]:
    """Scores `model.decompose`'s input-view depth (see `score`)."""
    def predict(image):
      out = model.decompose(image, training=False)
      b = tf.shape(image)[0]
      return (out['recon_depth'][:b], out['recon_im_mask'][:b, ..., 0],
              out['view'][:b, 1], out['canon_light_d'][:b])
    return self.score(predict, model.depth_from_png, self.K, before_batch)

  def score(self, predict, depth_from_png, K,
            before_batch=None) -> Dict[str, float]:
    """Scores `predict(image) -> (depth, valid, yaw, light_d)` `[B,S,S]`x2,
    `[B]`, `[B,3]` (yaw and light_d all 0: none predicted);
    `before_batch(first_index, count)`, if given, runs before each batch."""
    @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
    def score(image, depth_p):
      depth, valid, yaw, light_d = predict(image)
      gt = depth_from_png(depth_p)
      m = metrics.depth_metrics(depth, valid, gt, K)
      mask = m['mask']
      n = tf.reduce_sum(mask, [1, 2], keepdims=True)
      mean = lambda x: tf.reduce_sum(x * mask, [1, 2], keepdims=True) / n
      log_d = tf.math.log(depth)
      log_gt = tf.math.log(gt)
      scaled = []
      for s in RELIEF_SCALES:
        e = mean(log_d) + s * (log_d - mean(log_d)) - log_gt
        scaled.append(tf.sqrt(tf.maximum(
            mean(e ** 2) - mean(e) ** 2, 0.0))[:, 0, 0])
      near = mean(tf.cast(depth < self.near, tf.float32))[:, 0, 0]
      return m['side'], m['mad'], tf.stack(scaled, 1), yaw, light_d, near
    outs, first = [], 0
    for image, depth_p in self.batches:
      if before_batch is not None:
        before_batch(first, int(image.shape[0]))
      outs.append([t.numpy() for t in score(image, depth_p)])
      first += int(image.shape[0])
    side, mad, scaled, yaw, light_d, near = (np.concatenate(x)
                                             for x in zip(*outs))
    if not np.any(yaw):
      yaw = np.full_like(yaw, np.nan)  # no viewpoint (supervised row)
    n = len(yaw)
    tilt_slope = tilt_corr = float('nan')  # no light (supervised row)
    if np.any(light_d[:, :2]):
      gt_tilt, tilt = (light_tilt(d) for d in (self.factors['light_d'][:n],
                                               light_d))
      tilt_slope = slope(gt_tilt, tilt)
      tilt_corr = float(np.corrcoef(gt_tilt.ravel(), tilt.ravel())[0, 1])
    result = metrics.paper_summary(side, mad)
    scaled = scaled[np.isfinite(side) & np.isfinite(mad)]  # as the summary
    best = int(np.argmin(scaled.mean(0))) if len(scaled) else 0
    gt_yaw, gt_tx = (self.factors['view'][:n, i] for i in (1, 3))
    result.update({
        'diag_best_relief_scale': RELIEF_SCALES[best],
        'diag_side_at_best_scale': (float(scaled[:, best].mean() * 100)
                                    if len(scaled) else float('nan')),
        'diag_yaw_std_deg': float(np.degrees(yaw.std())),
        'diag_gt_yaw_std_deg': float(np.degrees(gt_yaw.std())),
        'diag_yaw_corr': correlation(yaw, gt_yaw),
        'diag_yaw_tx_corr': correlation(yaw, gt_tx),
        'diag_light_tilt_slope': tilt_slope,
        'diag_light_tilt_corr': tilt_corr,
        'diag_near_bound': float(np.mean(near[np.isfinite(near)]))})
    return result


def _fmt(r: Dict[str, float]) -> str:
  left_out = (f' (left out, no valid pixel: {r["num_left_out"]} images)'
              if r.get('num_left_out') else '')
  return (f'{r["side_mean"]:.3f} ± {r["side_std"]:.3f} | '
          f'{r["mad_mean"]:.2f} ± {r["mad_std"]:.2f}{left_out}')


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  lines = [
      f'# Learning benchmark: `{result["name"]}`', '',
      f'Config {trainers.config_text(s)} with '
      f'{s["overrides"] or "no overrides"}; '
      f'{s["steps"]} steps of batch {s["batch_size"]} per row; synthetic '
      f'{s.get("category", "face")} data (seed {s["data_seed"]}, zoom '
      f'{s.get("zoom", 1.0)}'
      + (f', yaw within ±{s["max_yaw"]}°' if 'max_yaw' in s else '')
      + (f', rendered with a {s["data_fov"]}° field of view, scored with '
         'it' if 'data_fov' in s else '') + '): '
      f'{s["counts"]}; test split scored with '
      'the model\'s metrics (SIDE x1e-2, MAD degrees, mean ± std over test '
      f'images). {s["machine"]}.', '',
      *([f'The rows are scored on the test images centre-cropped to '
         f'{s["test_crop"]} of their side (depth pixels next to the '
         'background left out); the baselines on whole frames, so compare '
         'the rows\' diagnostics, not their scores, with them.', '']
        if 'test_crop' in s else []),
      *([f'The test objects\' horizontal position correlates '
         f'{result["position_cue"]["yaw"]:.2f} with the generator\'s yaw '
         f'and {result["position_cue"]["tx"]:.2f} with its x-translation '
         '(`Scorer.position_cue`).', ''] if 'position_cue' in result
        else []),
      '| row | SIDE (×1e-2) ↓ | MAD (deg) ↓ | train s/step | wall s | '
      'diag: SIDE at best relief scale | diag: yaw std (GT) / corr | '
      'diag: yaw corr with GT x-shift | diag: light tilt slope (/ corr) | '
      'diag: object at the near bound |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for key in ('null', 'average'):
    title = {'null': 'baseline: constant null depth',
             'average': 'baseline: average ground-truth depth'}[key]
    lines.append(f'| {title} | {_fmt(result["baselines"][key])} | – | – '
                 '| – | – | – | – | – |')
  rank = {name: i for i, name in enumerate(ROWS)}  # ROWS order, then others
  for name in sorted(result['rows'], key=lambda n: rank.get(n, len(rank))):
    row = result['rows'][name]
    title = ROW_TITLES.get(name, name)
    if row.get('same_as'):
      title += f' (the config has it already: the {row["same_as"]} run)'
    f = row['final']
    yaw = ('– (no viewpoint)' if not np.isfinite(f['diag_yaw_corr']) else
           f'{f["diag_yaw_std_deg"]:.1f}° ({f["diag_gt_yaw_std_deg"]:.1f}°)'
           f' / {f["diag_yaw_corr"]:.2f}')
    tx = f.get('diag_yaw_tx_corr', float('nan'))  # absent in older results
    tx = f'{tx:.2f}' if np.isfinite(tx) else '–'
    tilt = f.get('diag_light_tilt_slope', float('nan'))
    tilt = f'{tilt:.2f}' if np.isfinite(tilt) else '–'
    tilt_corr = f.get('diag_light_tilt_corr', float('nan'))  # absent: older
    tilt += f' / {tilt_corr:.2f}' if np.isfinite(tilt_corr) else ''
    near = f.get('diag_near_bound', float('nan'))  # absent: older results
    near = f'{near:.0%}' if np.isfinite(near) else '–'
    lines.append(f'| {title} | {_fmt(f)} | '
                 f'{row["train_s_per_step"]:.3f} | {row["wall_s"]:.0f} | '
                 f'{f["diag_side_at_best_scale"]:.3f} (×'
                 f'{f["diag_best_relief_scale"]}) | {yaw} | {tx} | {tilt} | '
                 f'{near} |')
  lines += [
      '', 'Diagnostics, not scores: the SIDE of the prediction with its '
      'relief (log depth about the face mean) scaled by the best single '
      'factor for the whole test set (same-shape-wrong-scale shows as a '
      'low value at a factor != 1), and the spread of the predicted yaw '
      'next to the generator\'s, with their correlation, and its '
      'correlation with the generator\'s x-translation (a sideways shift '
      'mistaken for a turn), and the slope of the predicted light tilt '
      'against the generator\'s, with their correlation where measured '
      '(relief too deep by k shows as a best relief scale and a tilt slope '
      'near 1/k: the bas-relief ambiguity), and the fraction of the '
      'object\'s pixels predicted in the nearest 5% of the depth range '
      '(a relief pushed against the bound, where tanh saturates).']
  return '\n'.join(lines) + '\n'


def plot(result: Dict[str, object], path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
  for (metric, title), ax in zip((('side_mean', 'test SIDE (×1e-2)'),
                                  ('mad_mean', 'test MAD (deg)')), axes):
    for name, row in result['rows'].items():
      if row.get('same_as'):
        continue
      ax.plot([p['step'] for p in row['curve']],
              [p['test'][metric] for p in row['curve']], marker='o', ms=3,
              label=name)
    for key, style in (('null', ':'), ('average', '--')):
      ax.axhline(result['baselines'][key][metric], color='k', ls=style,
                 label=f'{key} depth baseline')
    ax.set_title(title)
    ax.set_xlabel('step')
  for name, row in result['rows'].items():
    if row.get('same_as'):
      continue
    axes[2].plot([p['step'] for p in row['curve']],
                 [p['train']['loss_total'] for p in row['curve']], label=name)
  axes[2].set_title('training loss (mean since last point)')
  axes[2].set_xlabel('step')
  axes[0].legend(fontsize=8)
  fig.suptitle(f'learning benchmark {result["name"]}: '
               f'{result["settings"]["config"]}')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  trainers.add_run_arguments(p, 'learning', steps=1500, eval_every=250)
  p.add_argument('--rows', default=','.join(
      name for name in ROWS if name not in LEVER_ROWS))
  p.add_argument('--data_dir')
  p.add_argument('--category', default='face',
                 choices=list(synth_params.CATEGORIES),
                 help='the synthetic category; sets the defaults of --config, '
                 '--data_dir, --name and --zoom (CATEGORY_DEFAULTS)')
  p.add_argument('--max_yaw', type=float, default=None,
                 help="the generator's yaw range in degrees, +-max_yaw "
                 "(default: the category's, SynthOptions)")
  p.add_argument('--test_crop', type=float, default=1.0,
                 help='score the rows on the test images centre-cropped to '
                 'this fraction of the side (the crop_mix crop; the '
                 'baselines stay on whole frames)')
  p.add_argument('--data_fov', type=float, default=None,
                 help="the generator's field of view in degrees, when it is "
                 "not the trained config's fov (the data, its baselines "
                 "and the normals of MAD use it; default: the config's)")
  p.add_argument('--resume', action='store_true',
                 help='keep finished rows of <out_dir>/<name>.json')
  p.set_defaults(config=None, name=None, zoom=None)
  args = p.parse_args(argv)
  for key, value in CATEGORY_DEFAULTS[args.category].items():
    if getattr(args, key) is None:
      setattr(args, key, value)
  if args.zoom is None:
    args.zoom = synth_params.SynthOptions.for_category(args.category).zoom
  unknown = [r for r in args.rows.split(',') if r not in ROWS]
  if unknown:
    p.error(f'unknown rows {unknown}; choose from {list(ROWS)}')
  trainers.check_run_arguments(p, args)
  if not 0 < args.test_crop <= 1:
    p.error('--test_crop must be in (0, 1]')
  if args.data_fov is not None and not 0 < args.data_fov < 180:
    p.error('--data_fov must be in (0, 180) degrees')
  return args


def main(argv=None) -> Dict[str, object]:
  args = parse_args(argv)
  base = trainers.study_config(args, args.data_dir)
  counts = {'train': args.num_train, 'val': args.num_val,
            'test': args.num_test}
  yaw = {} if args.max_yaw is None else {'max_yaw': args.max_yaw}
  fov = {} if args.data_fov is None else {'data_fov': args.data_fov}
  data_cfg = trainers.data_config(args, base)
  if args.data_fov is not None:
    data_cfg = config_lib.from_dict({'fov': args.data_fov}, base=data_cfg)
  trainers.synth_data(args.data_dir, counts, data_cfg, args.data_seed,
                      synth_params.SynthOptions.for_category(
                          args.category, zoom=args.zoom, **yaw))
  os.makedirs(args.out_dir, exist_ok=True)
  json_path = os.path.join(args.out_dir, f'{args.name}.json')
  settings = {'config': os.path.relpath(os.path.abspath(args.config),
                                        REPO_ROOT),
              **trainers.overlay_settings(args),
              'overrides': args.set, 'steps': args.steps,
              'eval_every': args.eval_every, 'batch_size': base.batch_size,
              'counts': counts, 'data_seed': args.data_seed,
              'zoom': args.zoom, 'category': args.category, **yaw, **fov,
              **({'test_crop': args.test_crop} if args.test_crop < 1 else {}),
              'machine': f'{os.cpu_count()} CPU cores, TF {tf.__version__}, '
                         f'devices {[d.device_type for d in tf.config.list_logical_devices()]}'}
  result = {'name': args.name, 'settings': settings, 'rows': {}}
  if args.resume and os.path.isfile(json_path):
    with open(json_path, encoding='utf-8') as f:
      old = json.load(f)
    # Results written before --category are faces.
    if dict({'category': 'face'}, **old.get('settings', {})) == settings:
      result['rows'] = old['rows']
  base_scores = baselines.split_baselines(data_cfg)
  result['baselines'] = {
      key: {m: float(base_scores[key][m]) for m in
            ('side_mean', 'side_std', 'mad_mean', 'mad_std')}
      for key in ('null', 'average')}
  scorer = Scorer(data_cfg,
                  os.path.join(args.data_dir, 'test', 'factors.npz'),
                  args.test_crop)
  result['position_cue'] = scorer.position_cue()

  order = args.rows.split(',')

  def write():
    common.write_results(args.out_dir, args.name, result, markdown(result))
    plot(result, os.path.join(args.out_dir, f'{args.name}_curves.png'))

  for key in ('null', 'average'):
    print(f'baseline {key}: {_fmt(result["baselines"][key])}', flush=True)
  for name in order:
    if name in result['rows']:
      print(f'row {name}: kept from {json_path}', flush=True)
      continue
    cfg = dataclasses.replace(base, **ROWS[name])
    if (name in ('no_conf', 'no_albedo_flip', 'no_depth_flip', 'no_perc')
        and cfg == base and
        'unsup' in result['rows']):
      print(f'row {name}: the config already has {ROWS[name]}; same run as '
            'unsup', flush=True)
      result['rows'][name] = dict(result['rows']['unsup'], same_as='unsup')
      continue
    print(f'row {name} ({ROWS[name] or "as configured"})', flush=True)
    trainer = {'supervised': trainers.train_supervised,
               'given_mask': trainers.train_masked,
               'coupled_gain': trainers.train_coupled_gain,
               'coupled_gain_smooth': functools.partial(
                   trainers.train_coupled_gain, smooth_effective=True),
               'ambiguity_search': trainers.train_ambiguity_search,
               'view_shift': trainers.train_view_shift,
               }.get(name) or (
                   functools.partial(trainers.train_given,
                                     given=name.removeprefix('given_'))
                   if name.startswith('given_') else trainers.train_row)
    result['rows'][name] = trainer(cfg, args.steps, args.eval_every, scorer,
                                   lambda msg: print(msg, flush=True))
    print(f'row {name}: {_fmt(result["rows"][name]["final"])}', flush=True)
    write()
  write()
  print(json.dumps({'name': args.name, 'baselines': result['baselines'],
                    'rows': {k: v['final'] for k, v in
                             result['rows'].items()}}))
  return result


if __name__ == '__main__':
  main()
