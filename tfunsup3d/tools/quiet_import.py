"""TensorFlow's start-up log lines, held back from the console scripts' stderr.

Importing TensorFlow 2.21 writes some ten lines to stderr from C++ before any
logging is configured (`TF_CPP_MIN_LOG_LEVEL` does not reach them): "All log
messages before absl::InitializeLog() ...", oneDNN and CPU-instruction
notices, "Could not find cuda drivers", and on a machine without a GPU
driver "failed call to cuInit". Before a one-line error, or a progress bar,
they are noise. `held_back(module)` makes the first import of `module`
(TensorFlow) and its device listing write stderr into a temporary file, then
writes back every line that is not such a notice (`is_notice`): Python
warnings, TensorFlow's errors and anything else stay. The console scripts
run inside it (`flags.main_wrapper`) unless TFUNSUP3D_DEBUG is set.
"""

import contextlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile
from typing import Iterator

_NOTICE = re.compile(
    r'^(WARNING: All log messages before absl::InitializeLog\(\) is called'
    r'|[IW]\d{4} '  # INFO and WARNING lines of the C++ log
    r'|To enable the following instructions:'  # an INFO line's second line
    r'|E\d{4} .*failed call to cuInit)')  # no GPU driver on this machine


def is_notice(line: str) -> bool:
  """Whether `line` is one of TensorFlow's start-up notices."""
  return bool(_NOTICE.match(line))


@contextlib.contextmanager
def _stderr_filtered() -> Iterator[None]:
  """Sends file descriptor 2 to a temporary file for the block, then writes
  its lines but the notices back to stderr (also when the block raises).
  Without a writable temporary directory (a full disk) nothing is held."""
  try:
    held_file = tempfile.TemporaryFile()
  except OSError:
    yield
    return
  sys.stderr.flush()
  saved = os.dup(2)
  with held_file as held:
    os.dup2(held.fileno(), 2)
    try:
      yield
    finally:
      sys.stderr.flush()
      os.dup2(saved, 2)
      os.close(saved)
      held.seek(0)
      text = held.read().decode('utf-8', 'replace')
      kept = [line for line in text.splitlines() if not is_notice(line)]
      if kept:
        sys.stderr.write('\n'.join(kept) + '\n')
        sys.stderr.flush()


class _Loader(importlib.abc.Loader):
  """Runs another loader's `exec_module` with stderr filtered."""

  def __init__(self, loader, after):
    self._loader = loader
    self._after = after

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    module.__loader__ = module.__spec__.loader = self._loader
    with _stderr_filtered():
      self._loader.exec_module(module)
      self._after(module)


class _Finder(importlib.abc.MetaPathFinder):
  """Finds `name` once, as the path finder does, with a filtering loader."""

  def __init__(self, name: str, after):
    self.name = name
    self._after = after

  def find_spec(self, fullname, path=None, target=None):
    if fullname != self.name:
      return None
    self.remove()
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is not None and spec.loader is not None:
      spec.loader = _Loader(spec.loader, self._after)
    return spec

  def remove(self) -> None:
    if self in sys.meta_path:
      sys.meta_path.remove(self)


def _list_devices(tf) -> None:
  tf.config.list_physical_devices()  # loads the device plugins: their notices


@contextlib.contextmanager
def held_back(module: str = 'tensorflow', after=_list_devices
              ) -> Iterator[None]:
  """Within the block, the first import of top-level `module` (and
  `after(module)`, default: TensorFlow's device listing) writes no
  start-up notices to stderr. A no-op when `module` is already imported."""
  if module in sys.modules:
    yield
    return
  finder = _Finder(module, after)
  sys.meta_path.insert(0, finder)
  try:
    yield
  finally:
    finder.remove()
