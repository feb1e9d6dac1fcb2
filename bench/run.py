"""Performance table in one command: `python -m bench.run`.

Measures, for each XLA setting (`--xla=on,off`):
  decompose     `model.decompose` latency at batch 1 and `--batch` (64),
  train split   one training step at `--batch`, built up in stages, each its
                own compiled function, so that the differences give the
                cost of: networks forward | renderer (+ shading, reprojection)
                | losses | backward | optimiser (one PyTorch-style Adam per
                network),
  rasteriser    the z-buffer alone (`render.rasterize_depth`, forward and
                forward + backward) on 2 x `--batch` depth maps (the
                training step renders the input and its flip),
with the peak host memory (VmHWM) of each measurement. Mixed precision is
measured only where a GPU is present (`--mixed=auto`); on CPU the row says
why it was skipped.

Prints JSON lines and a Markdown table; writes `<out_dir>/perf.json`,
`perf.md` and `perf.png` (a bar chart of the table).

  python -m bench.run                       # quickstart networks, ~10 min
  python -m bench.run --config=full --xla=on --repeats=2
"""

import argparse
import json
import os
import time
from typing import Dict, List

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from bench import common
from bench import model as model_bench
from bench import render as render_bench

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAGES = ('nets_fwd', 'forward', 'losses', 'backward', 'step')
STAGE_PARTS = {'nets_fwd': 'networks forward', 'forward': 'renderer',
               'losses': 'losses', 'backward': 'backward',
               'step': 'optimiser'}


def stage_functions(model, cfg, xla: bool) -> Dict[str, tf.function]:
  """Cumulative stages of one training step (see module docstring); the
  last is `bench.model.train_fn`'s whole step."""
  nets = model.networks
  flat = [v for net in nets.values() for v in net.trainable_variables]

  def nets_fwd(images):
    x = images * 2.0 - 1.0
    return [tf.reduce_sum(t) for net in nets.values()
            for t in tf.nest.flatten(net(x, training=True))]

  def forward(images):
    out = model.decompose(images, training=True)
    # Every output, so that XLA cannot drop work the losses would need.
    return [tf.reduce_sum(v) for v in out.values()
            if isinstance(v, tf.Tensor) and v.dtype.is_floating]

  def losses(images):
    out = model.decompose(images, training=True)
    return model.compute_losses(out, images, 0)['loss_total']

  def backward(images):
    with tf.GradientTape() as tape:
      loss = losses(images)
    return [g for g in tape.gradient(loss, flat) if g is not None]

  fns = {k: tf.function(f, jit_compile=xla) for k, f in
         (('nets_fwd', nets_fwd), ('forward', forward), ('losses', losses),
          ('backward', backward))}
  fns['step'] = model_bench.train_fn(model, cfg, xla)[0]
  return fns


def measure_all(args) -> List[Dict[str, object]]:
  records = []
  rng = np.random.default_rng(0)

  def emit(record, result):
    record = dict(record, **result)
    common.emit(record)
    records.append(record)

  cfg = model_bench.build_config(args.config, 0.0)
  s = cfg.image_size
  for xla in common.parse_xla(args.xla):
    tag = {'config': args.config, 'xla': xla, 'precision': 'float32'}
    model = model_bench.build_model(cfg)
    dec = model_bench.decompose_fn(model, xla)
    for batch in (1, args.batch):
      images = tf.constant(rng.uniform(0, 1, (batch, s, s, 3)), tf.float32)
      emit(dict(tag, what='decompose', batch=batch),
           common.measure(lambda im=images: dec(im), repeats=args.repeats))
    images = tf.constant(rng.uniform(0, 1, (args.batch, s, s, 3)),
                         tf.float32)
    fns = stage_functions(model, cfg, xla)
    for stage in STAGES:
      emit(dict(tag, what=f'train_stage/{stage}', batch=args.batch),
           common.measure(lambda f=fns[stage]: f(images),
                          repeats=args.repeats, warmup=1))
    raster = render_bench.make_functions(s, xla, anti_aliasing=True)
    depth = tf.constant(render_bench.smooth_depth(2 * args.batch, s))
    view = tf.constant(render_bench.views(2 * args.batch))
    im = tf.zeros([2 * args.batch, s, s, 3])
    for what in ('raster_fwd', 'raster_fwd_bwd'):
      emit(dict(tag, what=what, batch=2 * args.batch),
           common.measure(lambda f=raster[what]: f(depth, view, im),
                          repeats=args.repeats))
  gpus = tf.config.list_physical_devices('GPU')
  if args.mixed == 'on' or (args.mixed == 'auto' and gpus):
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy('mixed_float16')
    try:
      model = model_bench.build_model(cfg)
      images = tf.constant(rng.uniform(0, 1, (args.batch, s, s, 3)),
                           tf.float32)
      fn = stage_functions(model, cfg, True)['step']
      emit(dict(config=args.config, xla=True, precision='mixed_float16',
                what='train_stage/step', batch=args.batch),
           common.measure(lambda: fn(images), repeats=args.repeats))
    except Exception as e:  # pylint: disable=broad-except
      emit(dict(config=args.config, precision='mixed_float16',
                what='train_stage/step', skipped=f'failed: {e}'[:300]), {})
    finally:
      keras.mixed_precision.set_global_policy(policy)
  else:
    emit(dict(config=args.config, precision='mixed_float16',
              what='train_stage/step',
              skipped='no GPU: float16 has no fast path on this CPU'), {})
  return records


def table(records: List[Dict[str, object]]) -> str:
  """Markdown: one row per measurement, train-step parts as differences."""
  lines = ['| measurement | XLA | precision | batch | median s | first call s '
           '| peak host MiB |', '|---|---|---|---|---|---|---|']
  by_key = {(r.get('xla'), r['what']): r for r in records
            if 'median_s' in r and r.get('precision') == 'float32'}
  for r in records:
    if 'skipped' in r:
      lines.append(f'| {r["what"]} | – | {r["precision"]} | – | skipped: '
                   f'{r["skipped"]} | – | – |')
      continue
    name = r['what']
    if name.startswith('train_stage/'):
      stage = name.split('/')[1]
      i = STAGES.index(stage)
      prev = by_key.get((r['xla'], f'train_stage/{STAGES[i - 1]}')) if i else None
      part = r['median_s'] - (prev['median_s'] if prev else 0.0)
      name = (f'train step: {STAGE_PARTS[stage]} (+{part:.3f} s)'
              if r.get('precision') == 'float32' else 'train step (total)')
      if stage == 'step':
        name += f'; whole step {r["median_s"]:.3f} s'
    lines.append(f'| {name} | {"on" if r["xla"] else "off"} | '
                 f'{r["precision"]} | {r["batch"]} | {r["median_s"]:.4f} | '
                 f'{r["first_s"]:.2f} | {r["peak_rss_mib"]:.0f} |')
  return '\n'.join(lines) + '\n'


def plot(records, path: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = [r for r in records if 'median_s' in r]
  labels = sorted({r['what'] + f' (b{r["batch"]})' for r in rows},
                  key=lambda x: [r['what'] + f' (b{r["batch"]})'
                                 for r in rows].index(x))
  fig, ax = plt.subplots(figsize=(10, 0.45 * len(labels) + 1.5))
  y = np.arange(len(labels))
  for k, (xla, colour) in enumerate(((True, 'tab:blue'),
                                     (False, 'tab:orange'))):
    vals = {r['what'] + f' (b{r["batch"]})': r['median_s'] for r in rows
            if r['xla'] == xla and r.get('precision') == 'float32'}
    if vals:
      ax.barh(y + (k - 0.5) * 0.4, [vals.get(l, 0.0) for l in labels], 0.4,
              color=colour, label=f'XLA {"on" if xla else "off"}')
  ax.set_yticks(y, labels)
  ax.invert_yaxis()
  ax.set_xscale('log')
  ax.set_xlabel('median seconds (log scale)')
  ax.legend()
  ax.set_title('tfunsup3d performance (train stages are cumulative)')
  fig.tight_layout()
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.run',
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--config', default='quickstart',
                 help='network sizes: quickstart or full')
  p.add_argument('--batch', type=int, default=64)
  p.add_argument('--xla', default='on,off')
  p.add_argument('--repeats', type=int, default=3)
  p.add_argument('--mixed', default='auto', choices=('auto', 'on', 'off'))
  p.add_argument('--out_dir', default=os.path.join(REPO_ROOT, 'bench',
                                                  'results'))
  p.add_argument('--name', default='perf')
  args = p.parse_args(argv)
  env = common.environment()
  common.emit(env)
  start = time.perf_counter()
  records = measure_all(args)
  md = (f'# Performance: `python -m bench.run --config={args.config} '
        f'--batch={args.batch}`\n\n{env["cpu_count"]} CPU cores, GPUs '
        f'{env["gpus"] or "none"}, TF {env["tensorflow"]}; median of '
        f'{args.repeats} calls after the first (compile) call; train-step '
        'stages are cumulative compiled functions, the (+s) is the '
        'difference to the previous stage.\n\n' + table(records))
  os.makedirs(args.out_dir, exist_ok=True)
  base = os.path.join(args.out_dir, args.name)
  with open(base + '.json', 'w', encoding='utf-8') as f:
    json.dump({'environment': env, 'records': records,
               'wall_s': round(time.perf_counter() - start, 1)}, f, indent=1)
  with open(base + '.md', 'w', encoding='utf-8') as f:
    f.write(md)
  plot(records, base + '.png')
  print(md)


if __name__ == '__main__':
  main()
