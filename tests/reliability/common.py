"""Runs a console script as a user would and checks how it fails.

`run` starts `python -m tfunsup3d.tools.<script>` in a scratch working
directory with PYTHONPATH set to this repository, and returns its exit
status, output and peak resident memory (the child's own VmHWM, read by the
child at exit); `tests.tiny.assert_one_line_error` checks its failure as
README promises it.
"""

import contextlib
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import threading

import pytest
from typing import Dict, List, NamedTuple, Optional

from tests import tiny

ROOT = pathlib.Path(__file__).resolve().parents[2]


class Result(NamedTuple):
  returncode: int
  stdout: str
  stderr: str
  peak_mb: float  # the child's peak resident memory (VmHWM), MiB.


def tiny_flags(**overrides) -> List[str]:
  """--KEY=VALUE flags of tests/tiny.py's tiny model and run."""
  values = dict(tiny.TINY, load_gt_depth=True, num_epochs=1)
  values.update(overrides)
  return [f'--{k}={str(v).lower() if isinstance(v, bool) else v}'
          for k, v in values.items()]


_PEAK_ENV = 'TFUNSUP3D_TEST_PEAK_FILE'
# Runs the module named by argv[1] as `python -m` would and, at exit, writes
# its VmHWM (kB) to $TFUNSUP3D_TEST_PEAK_FILE. wait4's ru_maxrss is no
# measure of the child: exec folds the forking parent's (the pytest
# worker's, often GBs) high-water mark into it.
_REPORT_PEAK = '''
import atexit, os, runpy, sys
def _report():
  with open('/proc/self/status') as f:
    kb = [l.split()[1] for l in f if l.startswith('VmHWM:')]
  with open(os.environ['%s'], 'w') as f:
    f.write(kb[0] if kb else '')
atexit.register(_report)
module = sys.argv.pop(1)
runpy.run_module(module, run_name='__main__', alter_sys=True)
''' % _PEAK_ENV


def run(script: str, *args: str, cwd: os.PathLike,
        env: Optional[Dict[str, str]] = None, timeout: float = 300) -> Result:
  """Runs `python -m tfunsup3d.tools.<script> ARGS` in `cwd`; waits."""
  full_env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=str(ROOT),
                  CUDA_VISIBLE_DEVICES='')
  full_env.pop('TFUNSUP3D_DEBUG', None)
  full_env.update(env or {})
  with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
      tempfile.NamedTemporaryFile() as peak:
    full_env[_PEAK_ENV] = peak.name
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, '-c', _REPORT_PEAK, f'tfunsup3d.tools.{script}',
         *args], cwd=cwd, env=full_env, stdout=out, stderr=err)
    timer = threading.Timer(timeout, os.kill, (proc.pid, signal.SIGKILL))
    timer.start()
    try:
      _, status, usage = os.wait4(proc.pid, 0)  # The child's own rusage.
    finally:
      timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    peak_kb = peak.read().decode().strip() or usage.ru_maxrss
    return Result(proc.returncode, out.read().decode('utf-8', 'replace'),
                  err.read().decode('utf-8', 'replace'), int(peak_kb) / 1024.0)


def listing(path: os.PathLike) -> List[str]:
  """Every path under `path`, relative, sorted (to assert nothing changed)."""
  found = []
  for dirpath, dirnames, filenames in os.walk(path):
    for name in dirnames + filenames:
      found.append(os.path.relpath(os.path.join(dirpath, name), path))
  return sorted(found)


@contextlib.contextmanager
def tmpfs(path: pathlib.Path, options: str):
  """Mounts a tmpfs with `options` (e.g. 'size=1m', 'ro') at new dir `path`
  for the block; skips the test where mounting is not allowed."""
  os.makedirs(path)
  try:
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', options, 'tmpfs',
                              str(path)], capture_output=True, check=False)
  except OSError as e:  # No mount(8).
    pytest.skip(f'cannot mount a tmpfs here: {e}')
  if mounted.returncode:
    pytest.skip(f'cannot mount a tmpfs here: {mounted.stderr!r}')
  try:
    yield path
  finally:
    subprocess.run(['umount', str(path)], check=False)
