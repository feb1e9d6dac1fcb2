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

TF reads a cache file as it is and fails the step on a damaged one, and
fails the step when it cannot write one. So TF never writes into the shared
directory: each process gets a run directory inside it, with links to the
shared entries, and `publish` moves what the process compiled into the shared
directory by renames (atomic) only after its command succeeded; `discard`
(also at exit) drops it. A cache on a disk with less than `MIN_FREE_BYTES`
free is not used.

TF reads `TF_XLA_FLAGS` once, at the process's first XLA compilation: call
`enable` before it (the console scripts do, after parsing their flags). The
cache only grows (a few MB per compiled step); delete the directory to clear
it.
"""

import atexit
import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import socket
import sys
import tempfile
from typing import Any, Dict, List, Optional, Tuple

from absl import logging

FLAG = '--tf_xla_persistent_cache_directory'
ENV = 'TF_XLA_FLAGS'
MIN_FREE_BYTES = 256 * 2**20
_RUN_PREFIX = '.run-'
_runs: List[Tuple[str, str]] = []  # (shared directory, run directory)


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


def _tf_version_installed() -> str:
  """The version of the distribution that installed the `tensorflow`
  module, from its metadata: the `tensorflow` distribution's (3 ms), else
  the one that provides the module (`tensorflow-cpu`, `tf-nightly`; mapping
  modules to distributions reads every installed one, ~0.14 s)."""
  try:
    return importlib.metadata.version('tensorflow')
  except importlib.metadata.PackageNotFoundError:
    dist = importlib.metadata.packages_distributions()['tensorflow'][0]
    return importlib.metadata.version(dist)


def _tf_build() -> Tuple[str, Dict[str, Any]]:
  """TF's version and build information (`tf.sysconfig.get_build_info()`).

  Read from the installed files when TF is not imported yet: importing it
  takes seconds, and `enable` runs as a console script parses its flags,
  before it has checked them (a bad flag should not wait for TF). Falls
  back to importing TF for an installation without package metadata.
  """
  tf = sys.modules.get('tensorflow')
  if tf is None:
    try:
      version = _tf_version_installed()
      spec = importlib.util.find_spec('tensorflow')
      path = os.path.join(spec.submodule_search_locations[0], 'python',
                          'platform', 'build_info.py')
      info_spec = importlib.util.spec_from_file_location('_tf_build_info',
                                                         path)
      module = importlib.util.module_from_spec(info_spec)
      info_spec.loader.exec_module(module)
      return version, dict(module.build_info)
    except (KeyError, IndexError, TypeError, AttributeError, OSError,
            importlib.metadata.PackageNotFoundError):
      import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.__version__, dict(tf.sysconfig.get_build_info())


def _gpu_descriptions(build: Dict[str, Any]) -> List[str]:
  """The NVIDIA GPUs' models (Linux driver files) and the CUDA build TF
  uses (`build`: `_tf_build()`'s). Read without initialising TF's devices:
  that would make TF read `TF_XLA_FLAGS` before `enable` sets it."""
  models = []
  for info in sorted(glob.glob('/proc/driver/nvidia/gpus/*/information')):
    try:
      with open(info, encoding='utf-8', errors='replace') as f:
        models += [line.strip() for line in f if line.startswith('Model:')]
    except OSError:
      continue
  return models + [f'cuda={build.get("cuda_version")}',
                   f'visible={os.environ.get("CUDA_VISIBLE_DEVICES")}']


def machine_key(deterministic: bool = False) -> str:
  """A directory name for what a compiled step depends on besides its
  graph: TF's version, the CPU, the GPUs and op determinism.

  Returns:
    `tf<version>-<12 hex digits>`.
  """
  version, build = _tf_build()
  parts = [version, platform.machine(), _cpu_description(),
           *_gpu_descriptions(build), f'deterministic={bool(deterministic)}']
  digest = hashlib.sha256('\n'.join(parts).encode('utf-8')).hexdigest()
  return f'tf{version}-{digest[:12]}'


def _writable_dir(path: str) -> bool:
  try:
    os.makedirs(path, exist_ok=True)
  except OSError:
    return False
  return os.access(path, os.W_OK | os.X_OK)


def _run_prefix() -> str:
  return f'{_RUN_PREFIX}{socket.gethostname()}-'


def _remove_stale_runs(shared: str) -> None:
  """Removes run directories this host's dead processes left behind."""
  for path in glob.glob(os.path.join(shared, _run_prefix() + '*')):
    try:
      pid = int(os.path.basename(path)[len(_run_prefix()):].split('-')[0])
      os.kill(pid, 0)
    except ProcessLookupError:
      shutil.rmtree(path, ignore_errors=True)
    except (ValueError, OSError):
      continue


def _link_entries(shared: str, run: str) -> None:
  for src in glob.glob(os.path.join(shared, '*.pb')):
    dst = os.path.join(run, os.path.basename(src))
    try:
      os.link(src, dst)
    except OSError:
      try:
        os.symlink(src, dst)
      except OSError:
        continue


def enable(cache_dir: Optional[str], deterministic: bool = False
           ) -> Optional[str]:
  """Turns XLA's persistent compilation cache on for this process.

  Args:
    cache_dir: the config's `xla_cache_dir`: 'auto' (`default_dir()`), a
      directory, or None / '' (off).
    deterministic: the config's `deterministic` (kept apart in the cache).

  Returns:
    This process's run directory (TF's cache directory), or None: off, a
    directory that cannot be written or a disk nearly full (one warning,
    and the run goes on without the cache), or a `TF_XLA_FLAGS` that
    already names a cache directory (the user's own: that one is returned
    and used as it is).
  """
  flags = os.environ.get(ENV, '')
  for token in flags.split():
    if token.startswith(FLAG + '='):
      return token.split('=', 1)[1]
  if not cache_dir:
    return None
  base = default_dir() if cache_dir == 'auto' else os.path.expanduser(
      cache_dir)
  shared = os.path.join(base, machine_key(deterministic))
  if not _writable_dir(shared):
    logging.warning('xla_cache_dir %s cannot be written: compiling without '
                    'the persistent cache', shared)
    return None
  if shutil.disk_usage(shared).free < MIN_FREE_BYTES:
    logging.warning('xla_cache_dir %s: less than %d MiB free, compiling '
                    'without the persistent cache', shared,
                    MIN_FREE_BYTES // 2**20)
    return None
  _remove_stale_runs(shared)
  run = tempfile.mkdtemp(prefix=f'{_run_prefix()}{os.getpid()}-', dir=shared)
  _link_entries(shared, run)
  if not _runs:
    atexit.register(discard)
  _runs.append((shared, run))
  os.environ[ENV] = f'{flags} {FLAG}={run}'.strip()
  return run


def publish() -> int:
  """Moves the entries this process compiled into the shared directory
  (renames: another process sees a whole entry or none) and removes the run
  directory. Call once the command succeeded.

  Returns:
    The number of new entries.
  """
  count = 0
  for shared, run in _runs:
    for src in glob.glob(os.path.join(run, '*.pb')):
      dst = os.path.join(shared, os.path.basename(src))
      if os.path.islink(src) or os.path.exists(dst):
        continue  # linked from the shared directory, or published meanwhile
      try:
        os.replace(src, dst)
        count += 1
      except OSError:
        continue
  discard()
  return count


def discard() -> None:
  """Removes this process's run directories without publishing them."""
  while _runs:
    _, run = _runs.pop()
    shutil.rmtree(run, ignore_errors=True)
