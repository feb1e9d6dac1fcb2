"""TensorFlow's notices, held back from the console scripts' stderr.

Importing TensorFlow 2.21 writes some ten lines to stderr from C++ before any
logging is configured (`TF_CPP_MIN_LOG_LEVEL` does not reach them): "All log
messages before absl::InitializeLog() ...", oneDNN and CPU-instruction
notices, "Could not find cuda drivers", and on a machine without a GPU
driver "failed call to cuInit". Later, its C++ runtime logs more: "XLA
service ... initialized", "Compiled cluster using XLA!", and when a step is
loaded from the persistent compile cache (`compile_cache`) two errors that
are not: "Error parsing text-format tensorflow.XlaSerializedCacheEntry" (TF
tries text before binary) and "Target machine feature +prefer-no-scatter is
not supported ... could lead to execution errors such as SIGILL" (a tuning
preference, not an instruction set; the cache is per machine). Before a
one-line error or a progress bar they are noise.

`held_back(module)` filters file descriptor 2 from the first import of
`module` (TensorFlow) to the end of the block: C++ writes go through a pipe
to a small filter process that writes every line but such notices
(`is_notice`) to the real stderr, while Python's `sys.stderr` (warnings,
logging, progress bars, the one-line errors) writes to the real stderr
directly, so a terminal is still a terminal. The filter process outlives a
crash of the script: what TF writes before an abort is not lost. The console
scripts run inside it (`flags.main_wrapper`) unless TFUNSUP3D_DEBUG is set.
"""

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import subprocess
import sys
from typing import Iterator, Optional

_NOTICE = re.compile(
    r'^(WARNING: All log messages before absl::InitializeLog\(\) is called'
    r'|[IW]\d{4} '  # INFO and WARNING lines of the C++ log
    r'|To enable the following instructions:'  # an INFO line's second line
    r'|E\d{4} .*failed call to cuInit'  # no GPU driver on this machine
    r'|E\d{4} .*\] Error parsing text-format tensorflow\.XlaSerializedCache'
    r'|E\d{4} .*\] Loading XLA:CPU AOT result\. Target machine feature '
    r'\+prefer-)')

# The filter process: stdin is the pipe, stdout the real stderr. It ignores
# the terminal's Ctrl-C (the script reports it) and ends when every writer
# has closed the pipe.
_FILTER = r"""
import os, re, signal, sys
for name in ('SIGINT', 'SIGTERM', 'SIGHUP'):
  if hasattr(signal, name):
    signal.signal(getattr(signal, name), signal.SIG_IGN)
notice = re.compile(sys.argv[1].encode())
def put(data):
  try:
    while data:
      data = data[os.write(1, data):]
  except OSError:
    pass  # stderr gone: keep draining so the script never blocks
rest = b''
while True:
  chunk = os.read(0, 65536)
  if not chunk:
    break
  lines = (rest + chunk).split(b'\n')
  rest = lines.pop()
  put(b''.join(line + b'\n' for line in lines if not notice.match(line)))
if rest and not notice.match(rest):
  put(rest)
"""


def is_notice(line: str) -> bool:
  """Whether `line` is one of TensorFlow's notices."""
  return bool(_NOTICE.match(line))


def _handlers():
  loggers = [logging.getLogger()] + [
      logger for logger in logging.Logger.manager.loggerDict.values()
      if isinstance(logger, logging.Logger)]
  return [h for logger in loggers for h in logger.handlers] + [
      h for h in (_absl_handler(),) if h is not None]


def _absl_handler():
  absl_logging = sys.modules.get('absl.logging')
  handler = absl_logging and absl_logging.get_absl_handler()
  return getattr(handler, 'python_handler', None)


def _point_streams(old, new) -> None:
  """`sys.stderr` and the logging handlers writing to `old` write to `new`."""
  if sys.stderr is old:
    sys.stderr = new
  for handler in _handlers():
    if getattr(handler, 'stream', None) is old:
      handler.stream = new


class _Filter:
  """File descriptor 2 through the filter process while started; Python's
  `sys.stderr` on a copy of the real one (`_direct`, None when not started)."""

  def __init__(self):
    self._process = None
    self._saved = self._direct = None

  def start(self) -> None:
    """Starts filtering; without a pipe or a process, leaves stderr as is."""
    sys.stderr.flush()
    try:
      direct = os.fdopen(
          os.dup(2), 'w', buffering=1, errors='backslashreplace',
          encoding=getattr(sys.stderr, 'encoding', None) or 'utf-8')
    except OSError:
      return  # no stderr at all
    read = write = None
    try:
      read, write = os.pipe()
      self._process = subprocess.Popen(  # pylint: disable=consider-using-with
          [sys.executable, '-I', '-S', '-c', _FILTER, _NOTICE.pattern],
          stdin=read, stdout=direct.fileno(), stderr=subprocess.DEVNULL,
          close_fds=True)
      os.dup2(write, 2)
    except (OSError, ValueError):
      direct.close()
      direct = None
    finally:
      for fd in (read, write):
        if fd is not None:
          os.close(fd)
    if direct is None:
      self._stop_process()  # its pipe is closed: it ends at once
    self._direct = direct

  def direct_python(self) -> None:
    """From now on Python's stderr writes skip the filter (what Python
    logged during the import, e.g. a font cache note, went through it)."""
    if self._direct is not None and self._saved is None:
      sys.stderr.flush()
      self._saved = sys.stderr
      _point_streams(self._saved, self._direct)

  def stop(self) -> None:
    """Puts fd 2 and the streams back; waits for the filter to write all."""
    if self._direct is None:
      return
    if self._saved is not None:
      _point_streams(self._direct, self._saved)
    try:
      sys.stderr.flush()  # into the pipe, before it closes
    except OSError:
      pass  # stderr gone (a closed terminal): nothing to write to
    os.dup2(self._direct.fileno(), 2)  # The pipe's last writer here: it ends.
    try:
      self._direct.close()
    except OSError:
      pass
    self._direct = None
    self._stop_process()

  def _stop_process(self) -> None:
    if self._process is not None:
      try:
        self._process.wait(timeout=10)  # a child still holding the pipe
      except subprocess.TimeoutExpired:
        pass
      self._process = None


class _Loader(importlib.abc.Loader):
  """Starts the filter, then runs another loader's `exec_module`."""

  def __init__(self, loader, after, live):
    self._loader = loader
    self._after = after
    self._live = live

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    module.__loader__ = module.__spec__.loader = self._loader
    self._live.start()
    self._loader.exec_module(module)
    self._after(module)
    self._live.direct_python()


class _Finder(importlib.abc.MetaPathFinder):
  """Finds `name` once, as the path finder does, with a filtering loader."""

  def __init__(self, name: str, after, live):
    self.name = name
    self._after = after
    self._live = live

  def find_spec(self, fullname, path=None, target=None):
    if fullname != self.name:
      return None
    self.remove()
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is not None and spec.loader is not None:
      spec.loader = _Loader(spec.loader, self._after, self._live)
    return spec

  def remove(self) -> None:
    if self in sys.meta_path:
      sys.meta_path.remove(self)


def _list_devices(tf) -> None:
  tf.config.list_physical_devices()  # loads the device plugins: their notices


@contextlib.contextmanager
def held_back(module: str = 'tensorflow', after=_list_devices
              ) -> Iterator[None]:
  """From the first import of top-level `module` in the block (followed by
  `after(module)`, default: TensorFlow's device listing) to the block's
  end, TensorFlow's notices (`is_notice`) do not reach stderr. A no-op when
  `module` is already imported."""
  if module in sys.modules:
    yield
    return
  live = _Filter()
  finder = _Finder(module, after, live)
  sys.meta_path.insert(0, finder)
  try:
    yield
  finally:
    finder.remove()
    live.stop()
