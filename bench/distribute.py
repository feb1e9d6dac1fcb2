"""Benchmark of the distributed train step: 1 vs 2 replicas on CPU.

  python -m bench.distribute                     # tiny config, XLA off
  python -m bench.distribute --config=quickstart --batch=8

The process splits the CPU into 2 logical devices (before TF initialises),
then times `Unsup3DTask.train_step` (forward, losses, backward, one Adam step
per network) on the same global batch under the default strategy (1 replica,
/cpu:0) and under MirroredStrategy over the 2 logical CPUs (2 replicas, each
half the batch, exact cross-replica loss reduction). Logical CPU devices
share the same cores and thread pools, so this is a sanity number for the
overhead of the distributed path, not a speed-up measurement. Prints JSON
lines (one per strategy) and a summary line with images/s.

Configs: `tiny` = the test sizes (image 64, netD/netA nf 16 zdim 16,
encoders nf 4, netC nf 16 zdim 16), `quickstart` = configs/quickstart.yml.
Perceptual loss off (lam_perc 0: no VGG16 weights needed).
"""

import argparse
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf

_CPU = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    _CPU, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np

from bench import common
from tfunsup3d import config as config_lib
from tfunsup3d.train import distribute
from tfunsup3d.train.task import Unsup3DTask

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICKSTART = os.path.join(REPO_ROOT, 'configs', 'quickstart.yml')
TINY = dict(image_size=64, nf_depth=16, zdim_depth=16, nf_encoder=4,
            nf_conf=16, zdim_conf=16)


def build_config(name: str, batch: int, xla: bool) -> config_lib.Config:
  if name == 'tiny':
    cfg = config_lib.from_dict(TINY)
  elif name == 'quickstart':
    cfg = config_lib.load(QUICKSTART)
  else:
    raise ValueError(f'--config takes tiny or quickstart. Received: {name!r}')
  return config_lib.from_dict({'lam_perc': 0.0, 'vgg16_weights': None,
                               'batch_size': batch, 'jit_compile': xla,
                               'use_logger': False}, base=cfg)


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.distribute', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--config', default='tiny')
  parser.add_argument('--batch', type=int, default=8, help='global batch')
  parser.add_argument('--xla', default='off')
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=1)
  args = parser.parse_args(argv)
  (xla,) = common.parse_xla(args.xla)

  common.emit(common.environment())
  started = time.perf_counter()
  cfg = build_config(args.config, args.batch, xla)
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 1, (args.batch, cfg.image_size, cfg.image_size,
                              3)).astype(np.float32)
  dataset = tf.data.Dataset.from_tensors({'image': images})
  summary = {}
  for name in ('default', 'mirrored'):
    strategy = distribute.make_strategy(name)
    keras.utils.set_random_seed(0)
    task = Unsup3DTask(cfg, strategy=strategy)
    batch = next(iter(task.distribute_dataset(dataset)))
    result = common.measure(lambda: task.train_step(batch, 0),  # pylint: disable=cell-var-from-loop
                            repeats=args.repeats, warmup=args.warmup)
    replicas = strategy.num_replicas_in_sync
    record = {'bench': 'distribute', 'strategy': name, 'replicas': replicas,
              'devices': ([d for d in strategy.extended.worker_devices]
                          if replicas > 1 else ['/cpu:0']),
              'config': args.config, 'global_batch': args.batch,
              'per_replica_batch': args.batch // replicas, 'xla': xla,
              'images_per_s': round(args.batch / result['median_s'], 2)}
    record.update(result)
    common.emit(record)
    summary[f'{replicas}_replica'] = record['images_per_s']
  common.emit({'event': 'summary', 'bench': 'distribute',
               'config': args.config, 'global_batch': args.batch, 'xla': xla,
               'wall_s': round(time.perf_counter() - started, 1),
               'images_per_s': summary,
               'note': '2 logical devices share the same physical cores'})


if __name__ == '__main__':
  main()
