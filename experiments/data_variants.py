"""Data variants: does the relief lock come from the synthetic data?

The learning benchmark's model settles, within its first 50 steps, on a depth
relief about 3x too deep with light tilt and yaw about 1/3 of the truth (the
bas-relief ambiguity; see `experiments.learning` and `experiments.relief_landscape`).
This trains the method briefly (quickstart config, `--steps`) on variants of
the synthetic category, each changing one thing (`VARIANTS`), and on the
default data with netD's or netV's last layer initialised at another scale,
and reports per variant the diagnostics of `experiments.learning.Scorer` at
every evaluation with the spread of the canonical depth (5th to 95th
percentile over the central 3/4 of the image, mean over the first test
images) next to the data's.

  python -m experiments.data_variants   # experiments/results/data_variants.*
"""

import argparse
import os
from typing import Dict

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np

from bench import common
from experiments import learning
from experiments import trainers
from tfunsup3d import baselines
from tfunsup3d.data import synth_params
from tfunsup3d.train import task as task_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_AMPS = tuple(r[:3] for r in synth_params.PARAM_RANGES
              if r[0].endswith('_amp'))  # the generator's, doubled below
# name -> (description, SynthOptions keywords, {network: scale of its last
# layer's initial kernel}).
VARIANTS = {
    'default': ('the default category', {}, {}),
    'smooth_rim': ('head profile without steep rims (head_pow 1-1.5)',
                   {'param_ranges': (('head_pow', 1.0, 1.5),)}, {}),
    'plain': ('no hair, no mark, exactly mirrored albedo',
              {'param_ranges': (('hair', 0.8, 1.0), ('mark', 0.6, 1.0)),
               'asymmetry': 0.0}, {}),
    'yaw50': ('yaw up to 50 degrees (default 30)', {'max_yaw': 50.0}, {}),
    'soft_light': ('light tilt within +-0.3 (default +-0.75)',
                   {'param_ranges': (('light_dxy', -0.3, 0.3),)}, {}),
    'deep_relief': ('every relief amplitude doubled',
                    {'param_ranges': tuple((n, 2 * lo, 2 * hi)
                                           for n, lo, hi in _AMPS)}, {}),
    'shallow_relief': ('every relief amplitude / 1.45 (at zoom 1, the '
                       'depth-to-width ratio of the zoom-1.45 faces)',
                       {'param_ranges': tuple((n, lo / 1.45, hi / 1.45)
                                              for n, lo, hi in _AMPS)}, {}),
    'small_init': ("default data; netD's last layer initialised x0.1", {},
                   {'netD': 0.1}),
    'init_x0.3': ("default data; netD's last layer initialised x0.3", {},
                  {'netD': 0.3}),
    'init_x3': ("default data; netD's last layer initialised x3", {},
                {'netD': 3.0}),
    'view_init_x10': ("default data; netV's last layer initialised x10", {},
                      {'netV': 10.0}),
    'no_shift': ('no x/y translation: the object moves in the frame only '
                 'as the view turns it', {'max_translation': 0.0}, {}),
    'canvas': ('rendered on a canvas 1.5 image sides wide and centre-'
               'cropped: turned views do not show where the canonical map '
               'ends', {'canvas': 1.5}, {}),
}
DEPTH_SAMPLE = 64  # test images whose canonical depth spread is reported


def relief_spread(depth: np.ndarray) -> float:
  """Mean over images `[n, S, S]` of the 5th-95th percentile spread of the
  depth in the central 3/4 of the image."""
  s = depth.shape[1]
  inner = depth[:, s // 8:s - s // 8, s // 8:s - s // 8].reshape(
      len(depth), -1)
  return float(np.mean(np.percentile(inner, 95, axis=1) -
                       np.percentile(inner, 5, axis=1)))


def variant_data(args, name: str, cfg) -> str:
  """Writes (once) the variant's data set; returns its directory, named
  after the first variant with the same data."""
  options = VARIANTS[name][1]
  first = next(n for n, v in VARIANTS.items() if v[1] == options)
  data_dir = os.path.join(args.data_root, first)
  trainers.synth_data(data_dir, {'train': args.num_train,
                                 'val': args.num_val, 'test': args.num_test},
                      trainers.data_config(args, cfg), args.data_seed,
                      synth_params.SynthOptions(**dict(
                          {'zoom': args.zoom}, **options)))
  return data_dir


def run_variant(args, name: str) -> Dict[str, object]:
  """Trains the method on one variant; its diagnostics at every eval."""
  base = trainers.base_config(args)
  data_dir = variant_data(args, name, base)
  cfg = trainers.study_config(args, data_dir)
  scorer = learning.Scorer(cfg, os.path.join(data_dir, 'test',
                                             'factors.npz'))
  base_scores = baselines.split_baselines(cfg)
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  for net, scale in VARIANTS[name][2].items():
    kernel = [w for w in task.model.networks[net].weights
              if 'kernel' in w.path][-1]
    kernel.assign(kernel * scale)
  images = np.concatenate([b[0] for b in scorer.batches])[:DEPTH_SAMPLE]

  def evaluate():
    scores = scorer(task.model)
    depth = task.model.decompose(images, training=False)['canon_depth']
    scores['relief_spread'] = relief_spread(
        np.asarray(depth)[:len(images)])
    return scores
  out = trainers._loop(cfg, args.steps, args.eval_every,  # pylint: disable=protected-access
                       lambda m: print(f'{name}{m}', flush=True), evaluate,
                       task.train_step)
  data_depth = scorer.factors['canon_depth'][:DEPTH_SAMPLE]
  margin = (data_depth.shape[1] - cfg.image_size) // 2  # > 0: a canvas
  data_depth = data_depth[:, margin:margin + cfg.image_size,
                          margin:margin + cfg.image_size]
  return {'description': VARIANTS[name][0],
          'data_relief_spread': relief_spread(data_depth),
          'baselines': {k: {m: float(base_scores[k][m])
                            for m in ('side_mean', 'mad_mean')}
                        for k in ('average', 'null')},
          'position_cue': scorer.position_cue(),
          'curve': [{'step': p['step'], 'test': p['test']}
                    for p in out['curve']],
          'final': out['final']}


def _scores(row: Dict[str, object], metric: str) -> str:
  """'model / average / null' for `metric` ('side' or 'mad'); results
  written before the baselines were kept have the average's SIDE only
  (`average_baseline_side`)."""
  digits = 3 if metric == 'side' else 2
  fmt = lambda v: '–' if v is None else f'{v:.{digits}f}'
  kept = row.get('baselines') or {
      'average': {'side_mean': row['average_baseline_side']}}
  return ' / '.join(fmt(v) for v in (
      row['final'][f'{metric}_mean'],
      *(kept.get(k, {}).get(f'{metric}_mean') for k in ('average', 'null'))))


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  lines = [
      '# Data variants', '',
      f'Config {trainers.config_text(s)}, {s["steps"]} steps of batch '
      f'{s["batch_size"]} per variant, evaluated every {s["eval_every"]}; '
      f'synthetic data (seed {s["data_seed"]}, zoom {s.get("zoom", 1.0)}): '
      f'{s["counts"]}. Relief '
      'spread: 5th-95th percentile of the canonical depth over the central '
      f'3/4 of the image, mean over the first (up to) {DEPTH_SAMPLE} test '
      'images. Best relief '
      'scale and tilt slope: `experiments.learning` diagnostics (a relief k times '
      'too deep shows both near 1/k). Position cue: the correlation of the '
      'test objects\' horizontal position with the generator\'s yaw and '
      'x-translation (`learning.Scorer.position_cue`).', '',
      '| variant | change | data relief spread | model relief spread | '
      'best relief scale at each eval | light tilt slope | yaw std (GT) / '
      'corr | position cue: yaw / x-shift | SIDE (×1e-2): model / average '
      '/ null depth | MAD (°): model / average / null depth |',
      '|---|---|---|---|---|---|---|---|---|---|']
  for name, r in result['rows'].items():
    f = r['final']
    cue = r.get('position_cue')  # absent in older results
    cue = (' / '.join('–' if np.isnan(cue[k]) else f'{cue[k]:.2f}'
                      for k in ('yaw', 'tx')) if cue else '–')
    lines.append(
        f'| {name} | {r["description"]} | {r["data_relief_spread"]:.3f} | '
        f'{f["relief_spread"]:.3f} | '
        + ' '.join(f'{p["test"]["diag_best_relief_scale"]:g}'
                   for p in r['curve'])
        + f' | {f["diag_light_tilt_slope"]:.2f} | '
        f'{f["diag_yaw_std_deg"]:.1f}° ({f["diag_gt_yaw_std_deg"]:.1f}°) / '
        f'{f["diag_yaw_corr"]:.2f} | {cue} | {_scores(r, "side")} | '
        f'{_scores(r, "mad")} |')
  return '\n'.join(lines) + '\n'


def add_data_variant_arguments(p: argparse.ArgumentParser, name: str) -> None:
  """Short runs (300 steps) on data sets under `--data_root` (shared with
  `experiments.reference_code`)."""
  trainers.add_run_arguments(p, name, steps=300, eval_every=50)
  p.add_argument('--data_root', default=os.path.join(REPO_ROOT, 'experiments',
                                                    'data', 'variants'))


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  add_data_variant_arguments(p, 'data_variants')
  p.add_argument('--variants', default=','.join(VARIANTS))
  args = p.parse_args(argv)
  args.variants = args.variants.split(',')
  unknown = [v for v in args.variants if v not in VARIANTS]
  if unknown:
    p.error(f'unknown variants {unknown}; choose from {list(VARIANTS)}')
  trainers.check_run_arguments(p, args)
  return args


def main(argv=None) -> Dict[str, object]:
  args = parse_args(argv)
  base = trainers.base_config(args)
  result = {'settings': {'config': args.config,
                         **trainers.overlay_settings(args),
                         'overrides': args.set,
                         'steps': args.steps, 'eval_every': args.eval_every,
                         'batch_size': base.batch_size,
                         'data_seed': args.data_seed,
                         'zoom': args.zoom,
                         'counts': {'train': args.num_train,
                                    'val': args.num_val,
                                    'test': args.num_test}},
            'rows': {}}
  for name in args.variants:
    result['rows'][name] = run_variant(args, name)
    common.write_results(args.out_dir, args.name, result,  # after each
                         markdown(result))
  print(markdown(result))
  return result


if __name__ == '__main__':
  main()
