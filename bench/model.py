"""Benchmark of the Unsup3D model: decompose() latency and one training step.
Prints JSON lines (one per measurement) and a final summary line.

  python -m bench.model                                  # everything
  python -m bench.model --what=decompose --configs=full --batches=1,64
  python -m bench.model --what=train --configs=full --xla=on

Everything at once takes far more than 5 minutes on 2 cores (a full-size
training step at batch 64 with the perceptual loss takes tens of seconds and
its XLA compilation minutes): run one (what, config, xla) at a time.

Configs: `full` = the reference's network sizes (netD/netA nf 64 zdim 256,
netL/netV nf 32, netC nf 64 zdim 128; the config defaults), `quickstart` =
configs/quickstart.yml (nf 16 zdim 64, encoders nf 8, conf nf 16 zdim 32).
Weights are random (seeded); inputs are uniform noise images in [0, 1].

decompose: `model.decompose(images)` in a tf.function (XLA on/off), full
  forward including the renderer, no losses.
train: forward + losses + backward + one PyTorch-style Adam step for each of
  the five networks (lr 1e-4, L2 weight decay 5e-4), with the perceptual loss
  on (lam_perc 1) using a VGG16 with RANDOM weights (built, never loaded: no
  weights file is needed; the cost is the same as ImageNet weights').
"""

import argparse
import functools
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf

from bench import authors
from bench import common
from tfunsup3d import Unsup3D
from tfunsup3d import config as config_lib
from tfunsup3d.networks import VGG16Features
from tfunsup3d.networks import precision

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO_ROOT, 'configs', 'quickstart.yml')
WHAT = ('decompose', 'train')


def build_config(name: str, lam_perc: float, mixed_precision: str = 'none',
                 remat='auto') -> config_lib.Config:
  if name == 'full':
    cfg = config_lib.Config()
  elif name == 'quickstart':
    cfg = config_lib.load(QUICKSTART)
  else:
    raise ValueError(f'--configs takes full,quickstart. Received: {name!r}')
  cfg = config_lib.from_dict({'lam_perc': lam_perc, 'vgg16_weights': None,
                              'mixed_precision': mixed_precision,
                              'remat': remat}, base=cfg)
  return cfg


def build_model(cfg: config_lib.Config, seed: int = 0) -> Unsup3D:
  keras.utils.set_random_seed(seed)
  model = Unsup3D(cfg)
  if cfg.lam_perc > 0:
    # A random VGG16 (not loaded): same cost as ImageNet weights.
    with precision.policy_scope(cfg.mixed_precision):
      vgg = VGG16Features(name='vgg16').build_for(cfg.image_size)
    for layer in [vgg] + list(vgg.layers):  # as Unsup3D.load_perceptual
      layer.trainable = False
    model.vgg = vgg
  return model


def _optimizers(model: Unsup3D, cfg: config_lib.Config):
  """One PyTorch-style Adam per network (the project's, when present)."""
  try:
    # pylint: disable-next=g-import-not-at-top
    from tfunsup3d.train import optimizers as optimizers_lib
    opts = optimizers_lib.build_optimizers(model.networks, cfg)
    return opts, optimizers_lib.apply_gradients, 'tfunsup3d.train.TorchAdam'
  except (ImportError, AttributeError, TypeError):
    opts = {}
    for name, net in model.networks.items():
      opts[name] = keras.optimizers.Adam(cfg.lr)
      opts[name].build(net.trainable_variables)

    def apply(opt, grads, variables):
      opt.apply_gradients([(g, v) for g, v in zip(grads, variables)
                           if g is not None])
    return opts, apply, 'keras.optimizers.Adam'


def decompose_fn(model: Unsup3D, xla: bool):
  def run(images):
    out = model.decompose(images)
    return out['recon_im'], out['recon_depth'], out['canon_depth']
  return tf.function(run, jit_compile=xla)


def train_fn(model: Unsup3D, cfg: config_lib.Config, xla: bool):
  opts, apply, kind = _optimizers(model, cfg)
  networks = model.networks
  variables = {name: net.trainable_variables for name, net in networks.items()}
  flat = [v for name in networks for v in variables[name]]

  scale = precision.loss_scale(cfg.mixed_precision)

  def step(images):
    with tf.GradientTape() as tape:
      out = model.decompose(images, training=True)
      loss = model.compute_losses(out, images, 0)['loss_total']
      scaled = precision.scale_loss(loss, scale)
    grads = precision.unscale(tape.gradient(scaled, flat), scale)
    start = 0
    for name in networks:
      n = len(variables[name])
      apply(opts[name], grads[start:start + n], variables[name])
      start += n
    return loss
  return tf.function(step, jit_compile=xla), kind


def _count_params(model: Unsup3D) -> int:
  return int(sum(np.prod(v.shape) for v in model.trainable_variables))


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.model', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--what', default='decompose,train')
  parser.add_argument('--configs', default='full,quickstart')
  parser.add_argument('--batches', default='1,64',
                      help='decompose batch sizes')
  parser.add_argument('--train_batch', type=int, default=64)
  parser.add_argument('--xla', default='on,off')
  parser.add_argument('--repeats', type=int, default=3,
                      help='timed decompose calls')
  parser.add_argument('--warmup', type=int, default=1,
                      help='untimed decompose calls after the first')
  parser.add_argument('--train_repeats', type=int, default=2,
                      help='timed train steps (tens of seconds each)')
  parser.add_argument('--train_warmup', type=int, default=0,
                      help='untimed train steps after the first')
  parser.add_argument('--mixed_precision', default='none',
                      choices=tuple(precision.POLICIES),
                      help='config mixed_precision of both measurements')
  authors.add_remat_flag(parser, 'the train step')
  parser.add_argument('--lam_perc', type=float, default=1.0,
                      help='perceptual loss weight of the train step '
                      '(0 skips VGG16)')
  args = parser.parse_args(argv)
  whats = common.parse_list(args.what)
  if set(whats) - set(WHAT):
    parser.error(f'--what takes {",".join(WHAT)}. Received: {args.what}')

  common.emit(common.environment())
  started = time.perf_counter()
  summary = {}
  rng = np.random.default_rng(0)
  for config_name in common.parse_list(args.configs):
    for xla in common.parse_xla(args.xla):
      tag = f"{config_name}/xla={'on' if xla else 'off'}"
      if 'decompose' in whats:
        cfg = build_config(config_name, 0.0, args.mixed_precision)
        model = build_model(cfg)
        fn = decompose_fn(model, xla)
        for batch in (int(b) for b in common.parse_list(args.batches)):
          images = tf.constant(rng.uniform(
              0, 1, (batch, cfg.image_size, cfg.image_size, 3)).astype(
                  np.float32))
          result = common.measure(functools.partial(fn, images),
                                  repeats=args.repeats, warmup=args.warmup)
          record = {'bench': 'model', 'what': 'decompose',
                    'config': config_name, 'batch': batch, 'xla': xla,
                    'params': _count_params(model)}
          record.update(result)
          common.emit(record)
          summary[f'decompose/{tag}/batch={batch}'] = result['median_s']
      if 'train' in whats:
        cfg = build_config(config_name, args.lam_perc,
                           args.mixed_precision, args.remat)
        model = build_model(cfg)
        step, optimizer_kind = train_fn(model, cfg, xla)
        images = tf.constant(rng.uniform(
            0, 1, (args.train_batch, cfg.image_size, cfg.image_size,
                   3)).astype(np.float32))
        result = common.measure(functools.partial(step, images),
                                repeats=args.train_repeats,
                                warmup=args.train_warmup)
        record = {'bench': 'model', 'what': 'train_step',
                  'config': config_name, 'batch': args.train_batch,
                  'xla': xla, 'lam_perc': args.lam_perc,
                  'mixed_precision': args.mixed_precision,
                  'remat': args.remat,
                  'vgg16': 'random' if args.lam_perc > 0 else None,
                  'optimizer': optimizer_kind,
                  'params': _count_params(model)}
        record.update(result)
        common.emit(record)
        summary[f'train/{tag}/batch={args.train_batch}'] = result['median_s']
  common.emit({'event': 'summary', 'bench': 'model',
               'wall_s': round(time.perf_counter() - started, 1),
               'median_s': summary})


if __name__ == '__main__':
  main()
