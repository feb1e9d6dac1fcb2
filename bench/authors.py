"""Side by side on one CPU: the authors' PyTorch networks and tfunsup3d.

Runs the authors' `Unsup3D` (from a checkout of github elliottwu/unsup3d
named with `--reference_dir`; nothing is downloaded) and ours back to back
in one process and prints JSON lines, then one summary line with the
ratios ours / theirs (below 1: ours is faster).

  python -m bench.authors --reference_dir PATH [--out=bench/results]

Measured, at the reference's full network sizes (the config defaults):
  train: one training step at `--train_batch` (64) with the perceptual loss
    (lam_perc 1, VGG16 with random weights on both sides: same cost as
    ImageNet's, no weights file). Theirs: `Unsup3D.forward` + `backward`
    (their five networks, losses, grid_sample, Adam with weight decay); their
    renderer is CUDA-only, so its z-buffer (`neural_renderer.render_depth`)
    is replaced by the warped grid's own depth (no rasterisation, ~free).
    Ours: the `bench.model` step, renderer included, XLA per `--xla`
    (auto: as training decides, `config.jit_compile`: at these widths on a
    CPU, the rasteriser alone), networks recomputed in the backward pass
    with `--remat` (config `remat`), networks in half precision with
    `--mixed_precision` (config `mixed_precision`; decompose too).
  infer at each of `--batches` (1, 64): theirs = the five networks in eval
    mode under no_grad; ours = `model.decompose` (renderer included).
  infer_tflite_<variant> at batch 1, for each of `--tflite` (float32,
    float16, int8; none by default): theirs as above; ours = the exported
    `canonical` TFLite model (`tfunsup3d.export.tflite`: all five networks,
    netC too, and the shading, no renderer) run by the LiteRT interpreter
    with XNNPACK on as many threads as torch uses.

Order: ours alone first (first call = tracing + XLA compilation, and a peak
RSS with no torch in the process), then torch is imported and theirs is
warmed up, then each measurement alternates ours / theirs `--repeats` times
so that load on a shared machine hits both alike. Reported: medians, the
spread (min, max), the ratio of medians and the min and max of the per-pair
ratios. Peak RSS is the process's VmHWM since a reset before each phase
(`bench.common`); in the alternating phase it holds both frameworks, so the
clean figure for ours is `ours_alone`.

Needs PyTorch (the CPU build is enough: `pip install torch==2.13.0`);
torch is imported only here, inside `_reference`.
"""

import argparse
import math
import os
import statistics
import sys
import time
import types
from typing import Any, Callable, Dict, List, Sequence

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# tfunsup3d.export.tflite.VARIANTS (not imported: this module loads no TF).
TFLITE_VARIANTS = ('float32', 'float16', 'int8')

# VGG16's feature layers as torchvision numbers them: conv widths, 'M' = pool.
_VGG16_LAYERS = (64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M',
                 512, 512, 512, 'M', 512, 512, 512, 'M')


def pair_stats(ours: Sequence[float], theirs: Sequence[float]
               ) -> Dict[str, Any]:
  """Summary of alternating timings of one measurement.

  Args:
    ours: seconds of our calls, in order (same length as `theirs`).
    theirs: seconds of the authors' calls, interleaved with `ours`.

  Returns:
    dict: ours_median_s, theirs_median_s, their (min, max) spreads, ratio
    (median ours / median theirs), ratio_min and ratio_max over the pairs.
  """
  if not ours or len(ours) != len(theirs):
    raise ValueError(f'pair_stats needs as many timings of ours as of '
                     f'theirs, at least one. Received: {len(ours)}, '
                     f'{len(theirs)}')
  pairs = [a / b for a, b in zip(ours, theirs)]
  med_ours, med_theirs = statistics.median(ours), statistics.median(theirs)
  return {
      'ours_median_s': round(med_ours, 4),
      'ours_spread_s': [round(min(ours), 4), round(max(ours), 4)],
      'theirs_median_s': round(med_theirs, 4),
      'theirs_spread_s': [round(min(theirs), 4), round(max(theirs), 4)],
      'ratio': round(med_ours / med_theirs, 3),
      'ratio_min': round(min(pairs), 3),
      'ratio_max': round(max(pairs), 3),
      'n': len(pairs),
  }


def summarize(records: Dict[str, Dict[str, Any]],
              targets: Dict[str, float]) -> Dict[str, Any]:
  """The summary line: each measurement's ratio against its target.

  Args:
    records: name -> `pair_stats` result (e.g. 'train/batch=64').
    targets: name -> the largest ratio that meets the target; names without
      one get `meets: None`.

  Returns:
    dict: event 'summary', ratios (name -> ratio), meets (name -> bool or
    None: ratio <= target).
  """
  ratios = {name: rec['ratio'] for name, rec in records.items()}
  meets = {name: (ratios[name] <= targets[name]) if name in targets else None
           for name in ratios}
  return {'event': 'summary', 'bench': 'authors', 'ratios': ratios,
          'targets': dict(targets), 'meets': meets}


def markdown(summary: Dict[str, Any], records: Dict[str, Dict[str, Any]],
             extra: Dict[str, Any]) -> str:
  """A table of the summary for bench/results/authors.md."""
  lines = ['# The authors\' networks (PyTorch, CPU) vs tfunsup3d',
           '', 'Written by `python -m bench.authors`; see its docstring for '
           'what each side runs.', '',
           '| measurement | theirs (s) | ours (s) | ratio ours/theirs '
           '[pair min, max] | target |', '|---|---|---|---|---|']
  for name, rec in records.items():
    target = summary['targets'].get(name)
    lines.append(
        f"| {name} | {rec['theirs_median_s']} "
        f"({rec['theirs_spread_s'][0]}-{rec['theirs_spread_s'][1]}) | "
        f"{rec['ours_median_s']} "
        f"({rec['ours_spread_s'][0]}-{rec['ours_spread_s'][1]}) | "
        f"{rec['ratio']} [{rec['ratio_min']}, {rec['ratio_max']}] | "
        f"{'-' if target is None else f'<= {target}'} |")
  lines += ['', '```', *(f'{k}: {v}' for k, v in extra.items()), '```', '']
  return '\n'.join(lines)


def _vgg16_features(torch):
  """torchvision's `vgg16().features` layer list, random weights."""
  layers, cin = [], 3
  for width in _VGG16_LAYERS:
    if width == 'M':
      layers.append(torch.nn.MaxPool2d(2, 2))
    else:
      layers += [torch.nn.Conv2d(cin, width, 3, padding=1),
                 torch.nn.ReLU(inplace=True)]
      cin = width
  return torch.nn.Sequential(*layers)


REMAT_VALUES = {'true': True, 'false': False, 'light': 'light',
                'auto': 'auto'}


def add_remat_flag(parser, what: str) -> None:
  """`--remat[=VALUE]`: config `remat` of `what` (bare: true, the image
  networks recomputed whole; default: auto, as training decides)."""
  parser.add_argument(
      '--remat', nargs='?', const=True, default='auto',
      type=lambda s: REMAT_VALUES[s.lower()], metavar='{false,light,true,auto}',
      help=f'config remat of {what}: false, light (the layers between '
      'convolutions recomputed), true (the image networks recomputed '
      'whole; also a bare --remat) or auto (the default: light unless the '
      'whole step is XLA-compiled)')


def import_torch(caller: str):
  """`torch`, or SystemExit saying how to install it."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise SystemExit(f'{caller} needs PyTorch: pip install torch==2.13.0 '
                     '(the CPU build is enough)') from None
  return torch


def reference_package(reference_dir: str, stubs: Dict[str, Any]) -> None:
  """Makes `unsup3d.*` import from a checkout of elliottwu/unsup3d.

  Args:
    reference_dir: the checkout (holding unsup3d/model.py).
    stubs: module name -> module put in `sys.modules` first (for the
      reference's imports that are not installed: cv2, neural_renderer...).
  The package's `__init__` is skipped (it imports the trainer and cv2).
  """
  package = os.path.join(reference_dir, 'unsup3d')
  if not os.path.isfile(os.path.join(package, 'model.py')):
    raise SystemExit(f'--reference_dir must be a checkout of '
                     f'elliottwu/unsup3d (no unsup3d/model.py in '
                     f'{reference_dir!r})')
  sys.modules.update(stubs)
  pkg = types.ModuleType('unsup3d')
  pkg.__path__ = [package]
  sys.modules['unsup3d'] = pkg


def _reference(reference_dir: str, image_size: int):
  """The authors' `Unsup3D` at their sizes, ready to train; needs torch."""
  torch = import_torch('bench.authors')
  vision = types.ModuleType('torchvision')
  vision.models = types.SimpleNamespace(
      vgg16=lambda **unused: types.SimpleNamespace(
          features=_vgg16_features(torch)))
  renderer = types.ModuleType('neural_renderer')

  class ZFromVertices:  # the z-buffer's stand-in: no rasterisation
    def __init__(self, **unused_kwargs):
      pass

    def render_depth(self, vertices, unused_faces):
      return vertices[..., 2].reshape(len(vertices), image_size, image_size)
  renderer.Renderer = ZFromVertices
  reference_package(reference_dir, {'cv2': types.ModuleType('cv2'),
                                    'torchvision': vision,
                                    'neural_renderer': renderer})
  import warnings  # pylint: disable=g-import-not-at-top
  warnings.filterwarnings('ignore', category=UserWarning)  # align_corners
  # pylint: disable-next=g-import-not-at-top,import-error
  from unsup3d import model as model_lib
  torch.manual_seed(0)
  model = model_lib.Unsup3D({'image_size': image_size})
  model.trainer = types.SimpleNamespace(current_epoch=0)
  model.init_optimizers()
  return torch, model


def time_call(fn: Callable[[], Any]) -> float:
  """Seconds one call of `fn` takes."""
  start = time.perf_counter()
  fn()
  return time.perf_counter() - start


def alternate(ours: Callable[[], Any], theirs: Callable[[], Any],
              repeats: int) -> Dict[str, Any]:
  """`repeats` timed pairs of calls in ABBA order -> `pair_stats`."""
  a, b = [], []
  for i in range(repeats):  # ABBA: neither side always goes first
    if i % 2 == 0:
      a.append(time_call(ours))
      b.append(time_call(theirs))
    else:
      b.append(time_call(theirs))
      a.append(time_call(ours))
  return pair_stats(a, b)


def _ours(args, common):
  """Our train step and decompose functions with their inputs."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from bench import model as model_bench  # pylint: disable=g-import-not-at-top
  from tfunsup3d import config as config_lib  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)

  def images(batch, size):
    return tf.constant(rng.uniform(0, 1, (batch, size, size, 3)).astype(
        np.float32))
  cfg = model_bench.build_config('full', 1.0, args.mixed_precision,
                                 remat=args.remat)
  if args.xla == 'auto':
    args.xla = config_lib.jit_compile(cfg)
  step, _ = model_bench.train_fn(model_bench.build_model(cfg), cfg, args.xla)
  infer = model_bench.decompose_fn(
      model_bench.build_model(model_bench.build_config(
          'full', 0.0, args.mixed_precision)),
      args.xla)
  fns = {'train': _fetching(step, images(args.train_batch, cfg.image_size),
                            common)}
  for batch in args.batches:
    fns[f'infer/batch={batch}'] = _fetching(
        infer, images(batch, cfg.image_size), common)
  fns.update(_tflite(args.tflite, cfg, images(1, cfg.image_size).numpy()))
  return cfg, fns


def _tflite(variants, cfg, image):
  """'infer_tflite_<variant>/batch=1' -> a call of that exported model."""
  if not variants:
    return {}
  from bench import model as model_bench  # pylint: disable=g-import-not-at-top
  from tfunsup3d.export import tflite  # pylint: disable=g-import-not-at-top
  model = model_bench.build_model(cfg)
  fns = {}
  for variant in variants:
    runner = tflite.signature_runner(
        tflite.convert_model(model, tflite.CANONICAL, variant),
        num_threads=tflite.cpu_threads())
    fns[f'infer_tflite_{variant}/batch=1'] = (
        lambda runner=runner: runner(**{tflite.INPUT_NAME: image}))
  return fns


def _fetching(fn, x, common):
  # pylint: disable-next=protected-access
  return lambda: common._fetch(fn(x))


def _theirs(args, image_size):
  """The authors' train step and five-network inference."""
  torch, model = _reference(args.reference_dir, image_size)
  torch.manual_seed(0)

  def train(x):
    model.set_train()
    model.forward(x)
    model.backward()
    return float(model.loss_total.detach())

  def infer(x):
    model.set_eval()
    with torch.no_grad():
      x = x * 2 - 1
      return [getattr(model, n)(x) for n in model.network_names]
  fns = {'train': lambda x=torch.rand(args.train_batch, 3, image_size,
                                      image_size): train(x)}
  for batch in args.batches:
    fns[f'infer/batch={batch}'] = (
        lambda x=torch.rand(batch, 3, image_size, image_size): infer(x))
  for variant in args.tflite:  # the same five networks at batch 1
    fns[f'infer_tflite_{variant}/batch=1'] = (
        lambda x=torch.rand(1, 3, image_size, image_size): infer(x))
  return torch, fns


def run(args) -> Dict[str, Any]:
  from bench import common  # pylint: disable=g-import-not-at-top
  common.emit(common.environment())
  cfg, ours = _ours(args, common)
  alone = {}
  for name, fn in ours.items():  # first calls, peak RSS without torch
    common.reset_peak_rss()
    alone[name] = {'first_s': round(time_call(fn), 2),
                   'second_s': round(time_call(fn), 2),
                   'peak_rss_mib': round(common.peak_rss_mib(), 1)}
    common.emit({'bench': 'authors', 'side': 'ours_alone', 'what': name,
                 **alone[name]})
  torch, theirs = _theirs(args, cfg.image_size)
  records, peaks = {}, {}
  for name in ours:
    theirs[name]()  # warm-up
    common.reset_peak_rss()
    key = f'{name}/batch={args.train_batch}' if name == 'train' else name
    records[key] = alternate(ours[name], theirs[name], args.repeats)
    peaks[key] = round(common.peak_rss_mib(), 1)
    common.emit({'bench': 'authors', 'what': key, **records[key],
                 'peak_rss_both_mib': peaks[key]})
  targets = {f'train/batch={args.train_batch}': 0.7, 'infer/batch=1': 0.5,
             **{f'infer_tflite_{v}/batch=1': 0.5 for v in args.tflite}}
  summary = summarize(records, targets)
  summary.update({
      'ours_alone': alone, 'peak_rss_both_mib': peaks, 'xla': args.xla,
      'remat': args.remat, 'mixed_precision': args.mixed_precision,
      'tflite': args.tflite,
      'torch': torch.__version__, 'torch_threads': torch.get_num_threads(),
      'load_average': common.load_average()})
  common.emit(summary)
  if args.out:
    extra = {k: summary[k] for k in ('ours_alone', 'peak_rss_both_mib',
                                     'xla', 'remat', 'mixed_precision',
                                     'tflite', 'torch',
                                     'torch_threads')}
    extra['environment'] = common.environment()
    extra['load_average_end'] = common.load_average()
    common.write_results(args.out, args.name,
                         {'summary': summary, 'records': records},
                         markdown(summary, records, extra))
  return summary


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.authors', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--reference_dir', required=True,
                      help='a checkout of github elliottwu/unsup3d')
  parser.add_argument('--train_batch', type=int, default=64)
  parser.add_argument('--batches', default='1,64',
                      help='inference batch sizes')
  parser.add_argument('--repeats', type=int, default=3,
                      help='alternating timed pairs per measurement')
  parser.add_argument('--xla', default='auto', choices=('auto', 'on', 'off'),
                      help='XLA on our whole step and decompose (off: the '
                      'rasteriser alone); auto: config.jit_compile')
  add_remat_flag(parser, 'our train step')
  parser.add_argument('--mixed_precision', default='none',
                      choices=('none', 'bfloat16', 'float16'),
                      help='config mixed_precision of our step and decompose')
  parser.add_argument('--tflite', default='',
                      help='also time the exported canonical TFLite model at '
                      'batch 1 in these variants (comma-separated: '
                      f'{", ".join(TFLITE_VARIANTS)})')
  parser.add_argument('--out', default='',
                      help='folder for <name>.json and <name>.md')
  parser.add_argument('--name', default='authors')
  args = parser.parse_args(argv)
  args.xla = {'on': True, 'off': False}.get(args.xla, args.xla)
  args.batches = [int(b) for b in args.batches.split(',') if b.strip()]
  args.tflite = [v.strip() for v in args.tflite.split(',') if v.strip()]
  bad = sorted(set(args.tflite) - set(TFLITE_VARIANTS))
  if bad:
    parser.error(f'--tflite: unknown variants {bad}; choose from '
                 f'{", ".join(TFLITE_VARIANTS)}')
  if args.repeats < 1 or math.prod(args.batches + [args.train_batch]) < 1:
    parser.error('--repeats and the batch sizes must be >= 1')
  run(args)


if __name__ == '__main__':
  main()
