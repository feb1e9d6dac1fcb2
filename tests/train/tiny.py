"""Tiny data sets and configs for the training tests (CPU, seconds).

The nets need image_size >= 64 (a multiple of 16) and nf_depth / nf_conf
multiples of 16; everything else is as small as it goes.
"""

import os
from typing import Optional

import numpy as np
from PIL import Image

from tfunsup3d import config

TINY = dict(image_size=64, nf_depth=16, zdim_depth=16, nf_encoder=4,
            nf_conf=16, zdim_conf=16, batch_size=4, lam_perc=0.0,
            jit_compile=False, use_logger=False, num_workers=1,
            xyz_rotation_range=30.0)


def smooth_image(rng: np.random.Generator, size: int = 64) -> np.ndarray:
  """A random smooth, left-right symmetric RGB image, uint8 [S, S, 3]."""
  low = rng.uniform(0, 255, (6, 3, 3)).astype(np.uint8)
  low = np.concatenate([low, low[:, ::-1][:, 1:]], axis=1)  # symmetric
  image = Image.fromarray(low).resize((size, size), Image.BICUBIC)
  return np.asarray(image)


def smooth_depth(rng: np.random.Generator, size: int = 64) -> np.ndarray:
  """A depth PNG value map: a bump in [0.3, 1] on a p = 0 background."""
  y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
  r2 = (x / rng.uniform(0.5, 0.8)) ** 2 + (y / rng.uniform(0.5, 0.8)) ** 2
  p = np.where(r2 < 1, 0.3 + 0.7 * np.sqrt(np.clip(1 - r2, 0, 1)), 0.0)
  return np.uint8(np.round(p * 255))


def write_split(root: str, split: str, n: int, with_depth: bool = False,
                seed: int = 0, size: int = 64) -> str:
  """Writes `n` images to root/split (GT layout image/ + depth/ if asked)."""
  rng = np.random.default_rng(seed)
  split_dir = os.path.join(root, split)
  image_dir = os.path.join(split_dir, 'image') if with_depth else split_dir
  os.makedirs(image_dir, exist_ok=True)
  if with_depth:
    os.makedirs(os.path.join(split_dir, 'depth'), exist_ok=True)
  for i in range(n):
    Image.fromarray(smooth_image(rng, size)).save(
        os.path.join(image_dir, f'{i:03d}_image.png'))
    if with_depth:
      Image.fromarray(smooth_depth(rng, size)).save(
          os.path.join(split_dir, 'depth', f'{i:03d}_depth.png'))
  return split_dir


def write_dataset(root: str, n_train: int = 8, n_val: Optional[int] = 4,
                  n_test: int = 0, with_depth: bool = True) -> str:
  write_split(root, 'train', n_train, with_depth, seed=1)
  if n_val:
    write_split(root, 'val', n_val, with_depth, seed=2)
  if n_test:
    write_split(root, 'test', n_test, with_depth, seed=3)
  return root


def tiny_config(data_dir: str, checkpoint_dir: str, **overrides
                ) -> config.Config:
  values = dict(TINY, train_val_data_dir=data_dir,
                checkpoint_dir=checkpoint_dir, load_gt_depth=True,
                test_data_dir=os.path.join(data_dir, 'test'))
  values.update(overrides)
  return config.from_dict(values)


_SHARED = {}


def shared_task():
  """One tiny `Unsup3DTask` per process (tracing costs seconds), with a
  snapshot of its initial state; call `reset(task)` before using it."""
  if 'task' not in _SHARED:
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tfunsup3d.train.task import Unsup3DTask  # pylint: disable=g-import-not-at-top
    import tempfile  # pylint: disable=g-import-not-at-top
    keras.utils.set_random_seed(0)
    cfg = config.from_dict(dict(TINY, load_gt_depth=True))
    task = Unsup3DTask(cfg)
    ckpt = tf.train.Checkpoint(model=task.model, **task.optimizers)
    tmp = tempfile.mkdtemp(prefix='tfunsup3d_tiny_')
    _SHARED.update(task=task, ckpt=ckpt,
                   initial=ckpt.write(os.path.join(tmp, 'initial')))
  reset(_SHARED['task'])
  return _SHARED['task']


def reset(task):
  """Restores the shared task's initial weights and optimiser state."""
  assert task is _SHARED['task']
  _SHARED['ckpt'].read(_SHARED['initial']).assert_consumed()


def weights(task):
  """All model and optimiser variables as numpy, by position."""
  values = [v.numpy() for v in task.model.weights]
  for name in sorted(task.optimizers):
    values += [v.numpy() for v in task.optimizers[name].variables]
  return values
