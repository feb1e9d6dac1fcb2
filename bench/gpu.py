"""The measurements of bench/gpu.sh, one per call, each printing JSON lines.

  python -m bench.gpu step --precision=none[,bfloat16,float16]
      for each precision (a JSON line each, in one process: TF is imported
      once), the full-size training step (batch 64, perceptual loss with a
      random VGG16, XLA): compile (first call) s, median s, images/s, peak
      GPU MiB.
  python -m bench.gpu zbuffer --size=64[,256]
      for each size, the rasteriser's forward alone (anti-aliased: 2x
      supersampled maps) on 2 x 64 rows (originals and flips of a batch of
      64), XLA.
  python -m bench.gpu train --data_dir=DIR --steps=200
      configs/train_synface.yml on DIR (written by tfunsup3d-synth) for
      `--steps` steps via `tfunsup3d.train.loop.train`: wall s, images/s
      over the whole run (compile and validation included), each epoch's
      images/s over its steps after the first, final loss.
  python -m bench.gpu summary FILE
      one JSON object from the JSON lines the calls above wrote to FILE.

Peak GPU memory: `tf.config.experimental.get_memory_info('GPU:0')['peak']`
after `reset_memory_stats`; on a machine without a GPU it is None.
"""

import argparse
import functools
import json
import math
import os
import sys
import time
from typing import Any, Dict, List, Optional

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNFACE = os.path.join(REPO_ROOT, 'configs', 'train_synface.yml')


def _gpu_peak_mib(reset: bool = False) -> Optional[float]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not tf.config.list_physical_devices('GPU'):
    return None
  if reset:
    tf.config.experimental.reset_memory_stats('GPU:0')
    return 0.0
  info = tf.config.experimental.get_memory_info('GPU:0')
  return round(info['peak'] / 2**20, 1)


def step(args) -> Dict[str, Any]:
  """The full-size training step at `args.batch` (bench.model's)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from bench import common  # pylint: disable=g-import-not-at-top
  from bench import model as model_bench  # pylint: disable=g-import-not-at-top
  cfg = model_bench.build_config('full', 1.0, args.precision)
  fn, _ = model_bench.train_fn(model_bench.build_model(cfg), cfg, True)
  images = tf.constant(np.random.default_rng(0).uniform(
      0, 1, (args.batch, 64, 64, 3)).astype(np.float32))
  _gpu_peak_mib(reset=True)
  result = common.measure(functools.partial(fn, images),
                          repeats=args.repeats, warmup=2)
  loss = float(fn(images))
  return {'what': 'step', 'precision': args.precision, 'batch': args.batch,
          'compile_s': result['first_s'], 'median_s': result['median_s'],
          'images_per_s': round(args.batch / result['median_s'], 1),
          'peak_gpu_mib': _gpu_peak_mib(), 'loss': loss,
          'loss_finite': math.isfinite(loss)}


def zbuffer(args) -> Dict[str, Any]:
  """`rasterize_depth` forward at `args.size` on 2 x 64 rows (XLA)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from bench import common  # pylint: disable=g-import-not-at-top
  from bench import render as brender  # pylint: disable=g-import-not-at-top
  rows = 2 * args.batch
  fn = brender.make_functions(args.size, True, True)['raster_fwd']
  depth = tf.constant(brender.smooth_depth(rows, args.size))
  view = tf.constant(brender.views(rows))
  _gpu_peak_mib(reset=True)
  result = common.measure(functools.partial(fn, depth, view, None),
                          repeats=args.repeats, warmup=2)
  return {'what': 'zbuffer', 'size': args.size, 'rows': rows,
          'map': 2 * args.size, 'compile_s': result['first_s'],
          'median_s': result['median_s'],
          'maps_per_s': round(rows / result['median_s'], 1),
          'peak_gpu_mib': _gpu_peak_mib()}


def train(args) -> Dict[str, Any]:
  """`args.steps` steps of the synface config on `args.data_dir`."""
  from tfunsup3d import config as cfg_lib  # pylint: disable=g-import-not-at-top
  from tfunsup3d.train import loop  # pylint: disable=g-import-not-at-top
  epochs = max(1, args.steps // args.steps_per_epoch)
  cfg = cfg_lib.load(SYNFACE, {
      'train_val_data_dir': args.data_dir, 'crop': None,
      'test_data_dir': None, 'checkpoint_dir': args.checkpoint_dir,
      'num_epochs': epochs, 'max_steps_per_epoch': args.steps_per_epoch,
      'val_max_batches': 1, 'use_logger': False, 'resume': False,
      'lam_perc': 0.0, 'mixed_precision': args.precision})
  _gpu_peak_mib(reset=True)
  start = time.perf_counter()
  result = loop.train(cfg)
  wall = time.perf_counter() - start
  epochs_run = [e.get('train', {}) for e in result['metrics'].values()]
  losses = [e.get('loss_total') for e in epochs_run]
  speeds = [round(e['images_per_sec'], 1) for e in epochs_run
            if e.get('images_per_sec')]
  loss = next((x for x in reversed(losses) if x is not None), float('nan'))
  steps = int(result['step'])
  return {'what': 'train', 'config': 'train_synface', 'steps': steps,
          'precision': args.precision, 'lam_perc': 0.0, 'wall_s':
          round(wall, 1), 'images_per_s': round(steps * cfg.batch_size /
                                                 wall, 1),
          # each epoch's training steps after its first, validation and
          # checkpoints left out (the loop's `images_per_sec`)
          'epoch_images_per_s': speeds,
          'peak_gpu_mib': _gpu_peak_mib(), 'loss': loss,
          'loss_finite': math.isfinite(float(loss))}


def summary(lines: List[str]) -> Dict[str, Any]:
  """Gathers the JSON records of a gpu.sh run into one object.

  Args:
    lines: text lines; those that parse as JSON objects with a 'what' are
      records (others, e.g. logs, are ignored).

  Returns:
    dict: bench 'gpu', records by name (`step/<precision>`,
    `zbuffer/<size>`, `train`, `tests`), `loss_finite` (all records that
    report one are finite; None if none does), `failed` (names whose
    record has an 'error').
  """
  records = {}
  for line in lines:
    try:
      rec = json.loads(line)
    except ValueError:
      continue
    if not isinstance(rec, dict) or 'what' not in rec:
      continue
    key = rec['what']
    if 'precision' in rec and key == 'step':
      key += f"/{rec['precision']}"
    if 'size' in rec:
      key += f"/{rec['size']}"
    records[key] = rec
  finite = [r['loss_finite'] for r in records.values() if 'loss_finite' in r]
  return {'bench': 'gpu', 'records': records,
          'loss_finite': all(finite) if finite else None,
          'failed': sorted(k for k, r in records.items() if 'error' in r)}


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.gpu', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('what', choices=('step', 'zbuffer', 'train',
                                       'summary'))
  parser.add_argument('file', nargs='?', help='summary: the JSON lines')
  parser.add_argument('--precision', default='none',
                      help='step: comma-separated, of none, bfloat16, '
                      'float16; train: one')
  parser.add_argument('--batch', type=int, default=64)
  parser.add_argument('--size', default='64',
                      help='zbuffer: comma-separated map sizes')
  parser.add_argument('--repeats', type=int, default=10)
  parser.add_argument('--data_dir', default='data/synface_gpu')
  parser.add_argument('--checkpoint_dir', default='/tmp/tfunsup3d_gpu_ckpt')
  parser.add_argument('--steps', type=int, default=200)
  parser.add_argument('--steps_per_epoch', type=int, default=50)
  args = parser.parse_args(argv)
  if args.what == 'summary':
    with open(args.file, encoding='utf-8') as f:
      print(json.dumps(summary(f.read().splitlines()), indent=1))
    return
  precisions = args.precision.split(',')
  unknown = set(precisions) - {'none', 'bfloat16', 'float16'}
  if unknown or (args.what == 'train' and len(precisions) > 1):
    parser.error(f'--precision: {args.precision!r}')
  sizes = [int(x) for x in args.size.split(',')]
  runs = ([dict(precision=p) for p in precisions] if args.what == 'step' else
          [dict(size=n) for n in sizes] if args.what == 'zbuffer' else [{}])
  for overrides in runs:  # one JSON line each, printed as it is measured
    run_args = argparse.Namespace(**{**vars(args), **overrides})
    try:
      record = {'step': step, 'zbuffer': zbuffer, 'train': train}[
          args.what](run_args)
    except Exception as e:  # pylint: disable=broad-except
      record = {'what': args.what, 'precision': run_args.precision,
                'error': f'{type(e).__name__}: {e}'[:500]}
      if args.what == 'zbuffer':
        record['size'] = run_args.size
    print(json.dumps(record))
    sys.stdout.flush()


if __name__ == '__main__':
  main()
