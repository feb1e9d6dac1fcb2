"""XLA's persistent compilation cache: compiled steps reused by later runs.

Most of a training run's first step is XLA compiling it (about 28 s of the
40 s first call of the full-size step on 2 CPU cores, docs/performance.md),
and every start pays it again. TF's XLA JIT can keep what it compiles in a
directory (the `--tf_xla_persistent_cache_directory` entry of `TF_XLA_FLAGS`)
and load it in a later process instead of compiling: same graph, same shapes,
same TF version and device. `enable` points it at a per-machine subdirectory
of the `xla_cache_dir` config key, so that a cache shared between machines
(a network home) or kept across TF upgrades is never loaded by the wrong
one: XLA compiles for the host CPU's instruction set and the GPU's
architecture.

TF reads `TF_XLA_FLAGS` once, at the process's first XLA compilation: call
`enable` before it (the console scripts do, before their command runs). The
cache only grows (a few MB per compiled step); delete the directory to clear
it.
"""

import glob
import hashlib
import os
import platform
from typing import List, Optional

from absl import logging
import tensorflow as tf

FLAG = '--tf_xla_persistent_cache_directory'
ENV = 'TF_XLA_FLAGS'


def default_dir() -> str:
  """`$XDG_CACHE_HOME/tfunsup3d/xla` (XDG_CACHE_HOME default: ~/.cache)."""
  base = (os.environ.get('XDG_CACHE_HOME') or
          os.path.join(os.path.expanduser('~'), '.cache'))
  return os.path.join(base, 'tfunsup3d', 'xla')


def _cpu_description() -> str:
  """The CPU's model and instruction-set flags (Linux), else the platform's
  processor string."""
  try:
    with open('/proc/cpuinfo', encoding='utf-8', errors='replace') as f:
      lines = f.read().splitlines()
  except OSError:
    return platform.processor()
  keep = {}
  for line in lines:
    key, _, value = line.partition(':')
    key = key.strip()
    if key in ('model name', 'flags', 'Features', 'CPU part') and (
        key not in keep):
      keep[key] = value.strip()
  return '|'.join(f'{k}={v}' for k, v in sorted(keep.items()))


def _gpu_descriptions() -> List[str]:
  """The NVIDIA GPUs' models (Linux driver files) and the CUDA build TF
  uses. Read without initialising TF's devices: that would make TF read
  `TF_XLA_FLAGS` before `enable` sets it."""
  models = []
  for info in sorted(glob.glob('/proc/driver/nvidia/gpus/*/information')):
    try:
      with open(info, encoding='utf-8', errors='replace') as f:
        models += [line.strip() for line in f if line.startswith('Model:')]
    except OSError:
      continue
  build = tf.sysconfig.get_build_info()
  return models + [f'cuda={build.get("cuda_version")}',
                   f'visible={os.environ.get("CUDA_VISIBLE_DEVICES")}']


def machine_key(deterministic: bool = False) -> str:
  """A directory name for what a compiled step depends on besides its
  graph: TF's version, the CPU, the GPUs and op determinism.

  Returns:
    `tf<version>-<12 hex digits>`.
  """
  parts = [tf.__version__, platform.machine(), _cpu_description(),
           *_gpu_descriptions(), f'deterministic={bool(deterministic)}']
  digest = hashlib.sha256('\n'.join(parts).encode('utf-8')).hexdigest()
  return f'tf{tf.__version__}-{digest[:12]}'


def _writable_dir(path: str) -> bool:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return False
  return os.access(path, os.W_OK | os.X_OK)


def enable(cache_dir: Optional[str], deterministic: bool = False
           ) -> Optional[str]:
  """Turns XLA's persistent compilation cache on for this process.

  Args:
    cache_dir: the config's `xla_cache_dir`: 'auto' (`default_dir()`), a
      directory, or None / '' (off).
    deterministic: the config's `deterministic` (kept apart in the cache).

  Returns:
    The directory TF will use, or None: off, a directory that cannot be
    written (one warning, and the run goes on without the cache), or a
    `TF_XLA_FLAGS` that already names one (the user's choice is kept and
    returned).
  """
  flags = os.environ.get(ENV, '')
  for token in flags.split():
    if token.startswith(FLAG + '='):
      return token.split('=', 1)[1]
  if not cache_dir:
    return None
  base = default_dir() if cache_dir == 'auto' else os.path.expanduser(
      cache_dir)
  path = os.path.join(base, machine_key(deterministic))
  if not _writable_dir(path):
    logging.warning('xla_cache_dir %s cannot be written: compiling without '
                    'the persistent cache', path)
    return None
  os.environ[ENV] = f'{flags} {FLAG}={path}'.strip()
  return path
