"""Test helpers for the export, demo and explain tests: a tiny random model,
its checkpoint directory, and synthetic images. Nothing is downloaded."""

import os
import subprocess
import sys
from typing import Dict, Optional

import numpy as np
from PIL import Image

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
# The smallest model the networks accept (64 px; GroupNorm needs nf % 16 == 0).
TINY_CONFIG = dict(image_size=64, nf_depth=16, zdim_depth=16, nf_encoder=4,
                   nf_conf=16, zdim_conf=16, lam_perc=0.0, model_name='tiny')


def tiny_model(seed: int = 0, **overrides):
  """A tiny random `Unsup3D` with non-trivial light and view outputs."""
  import keras  # pylint: disable=g-import-not-at-top
  from tfunsup3d import config as config_lib  # pylint: disable=g-import-not-at-top
  from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(seed)
  values = dict(TINY_CONFIG)
  values.update(overrides)
  model = Unsup3D(config_lib.from_dict(values))
  # Scale the encoders' last 1x1 conv so views and lights are not ~0.
  for net in (model.netL, model.netV):
    kernel = net.get_layer('network_10_conv').kernel
    kernel.assign(kernel.numpy() * 6.0)
  return model


def write_checkpoint(model, directory: str) -> str:
  """Writes `directory/config.yml` + `ckpt-1` as tfunsup3d-train does."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  os.makedirs(directory, exist_ok=True)
  with open(os.path.join(directory, 'config.yml'), 'w') as f:
    f.write(model.cfg.to_yaml())
  tf.train.Checkpoint(model=model).save(os.path.join(directory, 'ckpt'))
  return directory


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


def assert_one_line_error(proc, script: str, *fragments: str) -> None:
  """`proc` (of `run_script(script, ...)`) exited 2 with exactly one line
  `tfunsup3d-<script>: error: ...` holding every fragment."""
  assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
  lines = error_lines(proc.stderr)
  assert len(lines) == 1, proc.stderr[-2000:]
  assert lines[0].startswith(f'tfunsup3d-{script}: error: '), lines
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
