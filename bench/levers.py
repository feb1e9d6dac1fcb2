"""One speed lever at a time: two variants of the training step, alternated.

  python -m bench.levers --lever=xla --config=full --batch=64
  python -m bench.levers --lever=precision --config=quickstart --batch=16

Levers (variant A -> variant B; ratio = B / A, below 1: B is faster):
  xla: the whole step in one XLA cluster (`jit_compile: true`, the default)
    -> only the renderer XLA-compiled (`jit_compile: false`: the rasteriser
    is always compiled, the networks run on TF's oneDNN kernels).
  precision: float32 -> `mixed_precision: bfloat16` (with `--xla`).
  precision16: float32 -> `mixed_precision: float16` (with `--xla`).
  anti_aliasing: the z-buffer at 2S, pooled (the reference's) ->
    `anti_aliasing: false` (at S; with `--xla`).
  remat: the image networks' activations kept for the backward pass ->
    recomputed there (`remat: true`; with `--xla`). Peak memory is per
    process: measure it with `bench.model --what=train --remat=VALUE`.
  remat_light: kept -> the layers between the image networks'
    convolutions recomputed (`remat: light`; with `--xla`).
  vgg_pool: VGG16's max pools as `keras.layers.MaxPooling2D` (before) ->
    `MaxPool2x2` (a reshape and a max: the default; with `--xla`).
  view_priors: the method -> with the view cycle and the yaw- and
    light-spread priors of the loose-framing recipe (`lam_view_cycle: 1`,
    `min_yaw_std: 15`, `min_light_tilt_std: 0.3`, `lam_protrusion: 1`;
    with `--xla`): what the cycle's extra render and netV pass cost.

Both steps are built and called once first (first call = trace + compile,
reported), then called `--repeats` times in ABBA order so that load on a
shared machine hits both alike. Prints JSON lines and a summary with the
medians, spreads, ratio of medians and the per-pair ratios' min and max;
`--out=DIR` also keeps it as DIR/<name>.json and a table, DIR/<name>.md.
The training step is `bench.model`'s (perceptual loss with a random VGG16).
"""

import argparse
import functools
import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from bench import authors
from bench import common
from bench import model as model_bench
from tfunsup3d import config as config_lib
from tfunsup3d.networks import vgg as vgg_lib


def _keras_max_pools(model) -> None:
  """VGG16's pools back to `keras.layers.MaxPooling2D` (the vgg_pool lever's
  'before'); they have no weights, so the swap keeps everything else."""
  layers = model.vgg.features_layers
  for i in vgg_lib.POOL_INDICES:
    layers[i] = keras.layers.MaxPooling2D(2, name=layers[i].name)


# lever -> ((name, xla, config overrides) of A, of B); xla None: `--xla`.
# An optional fourth item is applied to the built model.
LEVERS = {
    'xla': (('xla_whole_step', True, {}), ('xla_renderer_only', False, {})),
    'precision': (('float32', None, {}),
                  ('bfloat16', None, {'mixed_precision': 'bfloat16'})),
    'precision16': (('float32', None, {}),
                    ('float16', None, {'mixed_precision': 'float16'})),
    'anti_aliasing': (('anti_aliased', None, {'anti_aliasing': True}),
                      ('aliased', None, {'anti_aliasing': False})),
    'remat': (('kept', None, {'remat': False}),
              ('recomputed', None, {'remat': True})),
    'remat_light': (('kept', None, {'remat': False}),
                    ('light', None, {'remat': 'light'})),
    'vgg_pool': (('keras_max_pool', None, {}, _keras_max_pools),
                 ('reshape_max_pool', None, {})),
    'view_priors': (('method', None, {}),
                    ('view_priors', None, {'lam_view_cycle': 1.0,
                                           'min_yaw_std': 15.0,
                                           'min_light_tilt_std': 0.3,
                                           'lam_protrusion': 1.0})),
}


def _step(config: str, batch: int, xla: bool, overrides, lam_perc: float,
          patch=None):
  cfg = config_lib.from_dict(
      overrides, base=model_bench.build_config(config, lam_perc))
  model = model_bench.build_model(cfg)
  if patch is not None:
    patch(model)
  fn, _ = model_bench.train_fn(model, cfg, xla)
  images = tf.constant(np.random.default_rng(0).uniform(
      0, 1, (batch, cfg.image_size, cfg.image_size, 3)).astype(np.float32))
  return lambda: common._fetch(fn(images))  # pylint: disable=protected-access


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.levers', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--lever', required=True, choices=tuple(LEVERS))
  parser.add_argument('--config', default='full',
                      choices=('full', 'quickstart'))
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--xla', default='on', choices=('on', 'off'),
                      help='XLA of both variants of every lever but xla')
  parser.add_argument('--lam_perc', type=float, default=1.0)
  parser.add_argument('--repeats', type=int, default=4)
  parser.add_argument('--out', default='',
                      help='folder for <name>.json and <name>.md')
  parser.add_argument('--name', default='',
                      help='results name (default: levers_<lever>)')
  parser.add_argument('--b_first', action='store_true',
                      help='build and first-call variant B before A (the '
                      'first first-call also pays one-time TF set-up)')
  args = parser.parse_args(argv)
  common.emit(common.environment())
  steps, first = {}, {}
  variants = LEVERS[args.lever][::-1 if args.b_first else 1]
  for name, xla, overrides, *patch in variants:
    xla = args.xla == 'on' if xla is None else xla
    steps[name] = _step(args.config, args.batch, xla, overrides,
                        args.lam_perc, *patch)
    first[name] = round(authors.time_call(steps[name]), 2)
    common.emit({'bench': 'levers', 'lever': args.lever, 'variant': name,
                 'first_s': first[name]})
  (name_a, *_), (name_b, *_) = LEVERS[args.lever]
  for fn in steps.values():  # warm-up
    fn()
  stats = authors.alternate(steps[name_b], steps[name_a], args.repeats)
  summary = {
      'event': 'summary', 'bench': 'levers', 'lever': args.lever,
      'config': args.config, 'batch': args.batch, 'a': name_a, 'b': name_b,
      'a_median_s': stats['theirs_median_s'],
      'a_spread_s': stats['theirs_spread_s'],
      'b_median_s': stats['ours_median_s'],
      'b_spread_s': stats['ours_spread_s'],
      'ratio_b_over_a': stats['ratio'], 'pair_ratio_min': stats['ratio_min'],
      'pair_ratio_max': stats['ratio_max'], 'first_s': first,
      'first_order': list(first), 'n': stats['n'], 'xla': args.xla}
  common.emit(summary)
  if args.out:
    common.write_results(args.out, args.name or f'levers_{args.lever}',
                         dict(summary, environment=common.environment()),
                         markdown(summary))


def markdown(summary) -> str:
  """One lever's result (the summary `main` prints) as a table."""
  a, b = summary['a'], summary['b']
  rows = [f"| {v} | {summary[k + '_median_s']} | "
          f"{summary[k + '_spread_s'][0]}-{summary[k + '_spread_s'][1]} | "
          f"{summary['first_s'][v]} |" for v, k in ((a, 'a'), (b, 'b'))]
  return '\n'.join([
      f"# Lever `{summary['lever']}`: {a} against {b}", '',
      'Written by `python -m bench.levers` (see its docstring): the '
      f"{summary['config']} networks' training step at batch "
      f"{summary['batch']}, whole-step XLA {summary['xla']} for both variants "
      f"(but the xla lever's), {summary['n']} alternated pairs.", '',
      '| variant | median step (s) | spread (s) | first call (s) |',
      '|---|---|---|---|', *rows, '',
      f"{b} / {a}: **{summary['ratio_b_over_a']}** (pairs "
      f"{summary['pair_ratio_min']}-{summary['pair_ratio_max']}).", ''])


if __name__ == '__main__':
  main()
