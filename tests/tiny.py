"""The tests' one tiny model and what is built from it (CPU, seconds).

`tiny_config` is the one tiny config (the smallest networks the model
accepts: 64 px, nf_depth / nf_conf multiples of 16 for GroupNorm; perceptual
loss off, no XLA); `tiny_model` a random model of it, `write_checkpoint` its
checkpoint directory, `shared_task` one training task of it per process.
Data: `write_dataset` (smooth symmetric images + depth PNGs in the layout
tfunsup3d-train reads), `face_like_image` / `write_image` (a demo input).
Console scripts: `run_script` and `assert_one_line_error` (README's promise
of one error line). Nothing is downloaded.
"""

import os
import subprocess
import sys
import tempfile
from typing import Dict, Optional

import numpy as np
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dict(image_size=64, nf_depth=16, zdim_depth=16, nf_encoder=4,
            nf_conf=16, zdim_conf=16, lam_perc=0.0, xyz_rotation_range=30.0,
            batch_size=4, jit_compile=False, use_logger=False, num_workers=1,
            model_name='tiny')


def tiny_config(data_dir: Optional[str] = None,
                checkpoint_dir: Optional[str] = None, **overrides):
  """The tiny `Config` (+ `overrides`); with `data_dir` (a `write_dataset`
  root) a training run on it that writes `checkpoint_dir`."""
  from tfunsup3d import config  # pylint: disable=g-import-not-at-top
  values = dict(TINY)
  if data_dir is not None:
    values.update(train_val_data_dir=data_dir, load_gt_depth=True,
                  test_data_dir=os.path.join(data_dir, 'test'))
  if checkpoint_dir is not None:
    values['checkpoint_dir'] = checkpoint_dir
  values.update(overrides)
  return config.from_dict(values)


def tiny_model(seed: int = 0, **overrides):
  """A tiny random `Unsup3D` with non-trivial light and view outputs."""
  import keras  # pylint: disable=g-import-not-at-top
  from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  model = Unsup3D(tiny_config(**overrides))
  # Scale the encoders' last 1x1 conv so views and lights are not ~0.
  for net in (model.netL, model.netV):
    kernel = net.get_layer('network_10_conv').kernel
    kernel.assign(kernel.numpy() * 6.0)
  return model


def write_checkpoint(model, directory: str) -> str:
  """Writes `directory/config.yml` + `ckpt-1` (`saving.save`); returns it."""
  from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
  saving.save(model, directory)
  return directory


# --- images and data sets ---------------------------------------------------


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


def face_like_image(height: int = 90, width: int = 120,
                    seed: int = 0) -> np.ndarray:
  """A smooth, roughly symmetric synthetic image, uint8 `[H, W, 3]`."""
  rng = np.random.RandomState(seed)
  y, x = np.mgrid[0:height, 0:width].astype(np.float32)
  cy, cx = height / 2.0, width / 2.0
  r = np.sqrt(((x - cx) / (0.35 * width)) ** 2 + ((y - cy) / (0.45 * height))
              ** 2)
  skin = np.clip(1.2 - r, 0.0, 1.0)
  eyes = np.exp(-(((np.abs(x - cx) - 0.12 * width) / 4.0) ** 2 +
                  ((y - 0.4 * height) / 3.0) ** 2))
  image = np.stack([0.3 + 0.6 * skin, 0.2 + 0.5 * skin, 0.2 + 0.4 * skin], -1)
  image -= 0.4 * eyes[..., None]
  image += 0.02 * rng.randn(height, width, 3)
  return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str, image: Optional[np.ndarray] = None,
                **save_kwargs) -> str:
  os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
  Image.fromarray(face_like_image() if image is None else image).save(
      path, **save_kwargs)
  return path


# --- one training task per process ------------------------------------------

_SHARED = {}


def shared_task():
  """One tiny `Unsup3DTask` per process (tracing costs seconds), with a
  snapshot of its initial state; call `reset(task)` before using it."""
  if 'task' not in _SHARED:
    import keras  # pylint: disable=g-import-not-at-top
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    from tfunsup3d.train.task import Unsup3DTask  # pylint: disable=g-import-not-at-top
    keras.utils.set_random_seed(0)
    task = Unsup3DTask(tiny_config(load_gt_depth=True))
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


# --- console scripts --------------------------------------------------------


def run_script(name: str, *args: str, timeout: int = 600,
               env: Optional[Dict[str, str]] = None
               ) -> subprocess.CompletedProcess:
  """Runs `python -m tfunsup3d.tools.<name> ARGS` from the repository root."""
  full_env = dict(os.environ)
  full_env['PYTHONPATH'] = os.pathsep.join(
      [REPO_ROOT] + ([full_env['PYTHONPATH']] if full_env.get('PYTHONPATH')
                     else []))
  full_env.pop('TFUNSUP3D_DEBUG', None)
  full_env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  full_env['CUDA_VISIBLE_DEVICES'] = ''
  full_env.update(env or {})
  return subprocess.run(
      [sys.executable, '-m', f'tfunsup3d.tools.{name}', *args],
      cwd=REPO_ROOT, env=full_env, capture_output=True, text=True,
      timeout=timeout, check=False)


def error_lines(stderr: str):
  """The scripts' own error lines (not library log noise)."""
  return [line for line in stderr.splitlines()
          if line.startswith('tfunsup3d-')]


def assert_one_line_error(proc, script: str, *fragments: str,
                          status: int = 2) -> str:
  """`proc` (of `run_script(script, ...)` or anything with returncode,
  stdout, stderr) exited `status` with exactly one line `tfunsup3d-<script>:
  error: ...` holding every fragment and no traceback; returns the line."""
  context = (proc.returncode, proc.stdout[-2000:], proc.stderr[-4000:])
  assert proc.returncode == status, context
  assert 'Traceback' not in proc.stderr, context
  lines = error_lines(proc.stderr)
  assert len(lines) == 1, context
  assert lines[0].startswith(f'tfunsup3d-{script}: error: '), lines
  for fragment in fragments:
    assert fragment in lines[0], (fragment, lines[0])
  return lines[0]
