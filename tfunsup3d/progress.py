"""Progress of long work on stderr: a bar on a terminal, plain lines in logs.

  bar = progress.Progress(total=n, label='synth train', unit='img')
  for chunk in chunks:
    ...
    bar.update(len(chunk))
  bar.close()

  for item in progress.track(images, 'demo', unit='img'):  # the same, as a loop
    ...

Each report reads `<label>: <done>/<total> <unit>, <rate>, ETA <m:ss>[, k v]`,
e.g. `epoch 0 (of 30): 120/375 step, 61.3 img/s, ETA 0:42, loss_total 0.3123`.
The rate and ETA are measured from the first update on, so a first step that
compiles (XLA) does not distort them.

Modes (`set_mode`; the console scripts' `--progress` flag):
  auto   a bar on a terminal, plain lines elsewhere (CI logs: no carriage
         returns); nothing when absl logging is quieter than INFO
         (`--verbosity=-1` or lower; also a library used without absl.app,
         whose verbosity is WARNING). The default.
  bar    a bar that redraws in place (tqdm, which tensorflow-graphics brings).
  lines  a plain line at each tenth of the work or every 30 s, and at the end.
  none   nothing.
The mode is a process-wide display setting, not part of `Config`: a model's
saved config never carries it.
"""

import math
import shutil
import sys
import time
import weakref
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, TextIO

from absl import logging

MODES = ('auto', 'bar', 'lines', 'none')
LINE_SECONDS = 30.0  # lines mode: at most this long without a line.
LINE_FRACTION = 0.1  # lines mode: a line at each tenth of the work.

_mode = 'auto'
_open = weakref.WeakSet()  # Progress objects not closed yet.


def set_mode(mode: str) -> None:
  """Sets the process-wide mode (one of MODES)."""
  global _mode
  if mode not in MODES:
    raise ValueError(f'progress must be one of {", ".join(MODES)}. '
                     f'Received: progress={mode!r}')
  _mode = mode


def get_mode() -> str:
  return _mode


def resolve_mode(mode: Optional[str], stream: TextIO) -> str:
  """'bar', 'lines' or 'none': what `mode` (None: the process-wide one)
  means for `stream` now."""
  mode = mode or _mode
  if mode not in MODES:
    raise ValueError(f'progress must be one of {", ".join(MODES)}. '
                     f'Received: progress={mode!r}')
  if mode != 'auto':
    return mode
  if logging.get_verbosity() < logging.INFO:
    return 'none'
  isatty = getattr(stream, 'isatty', None)
  return 'bar' if isatty is not None and isatty() else 'lines'


def format_seconds(seconds: float) -> str:
  """'m:ss', or 'h:mm:ss' from an hour on."""
  seconds = int(round(max(seconds, 0.0)))
  hours, rest = divmod(seconds, 3600)
  text = f'{rest // 60:d}:{rest % 60:02d}'
  return f'{hours:d}:{rest // 60:02d}:{rest % 60:02d}' if hours else text


def _format_value(value: Any) -> str:
  if isinstance(value, float):
    return f'{value:.4g}'
  return str(value)


class Progress:
  """Reports the progress of `total` units of work (see the module doc).

  Args:
    total: int, units of work (images, steps, batches, stages); 0 or less:
      unknown (no percentage or ETA).
    label: str, what is being done, e.g. 'test'.
    unit: str, the unit's name, e.g. 'img', 'step', 'batch', 'stage'.
    mode: one of MODES; None: the process-wide mode (`set_mode`).
    stream: where to write (default sys.stderr).
    initial: units already done (a resumed epoch).
    clock: seconds, monotonic (tests pass a fake one).
  """

  def __init__(self, total: int, label: str, unit: str = 'img',
               mode: Optional[str] = None, stream: Optional[TextIO] = None,
               initial: int = 0,
               clock: Callable[[], float] = time.monotonic):
    self.total, self.label, self.unit = max(int(total), 0), label, unit
    self.stream = stream if stream is not None else sys.stderr
    self.mode = resolve_mode(mode, self.stream)
    self.done, self.images, self.values = int(initial), 0, {}
    self._clock = clock
    self._first = None  # (time, done, images) at the first update.
    self._line_at = (clock(), int(initial))  # time, done of the last line.
    self._bar = self._make_bar() if self.mode == 'bar' else None
    if self.mode != 'none':
      _open.add(self)

  def _make_bar(self):
    try:
      import tqdm  # pylint: disable=g-import-not-at-top
    except ImportError:
      self.mode = 'lines'
      return None
    bar = '{percentage:3.0f}%|{bar}| ' if self.total else ''
    return tqdm.tqdm(total=self.total or None, initial=self.done,
                     desc=self.label, file=self.stream, leave=True,
                     dynamic_ncols=True, mininterval=0.2,
                     bar_format='{desc}: ' + bar + '{postfix}')

  def rates(self):
    """(images per second or None, units per second or None) so far."""
    if self._first is None:
      return None, None
    t0, done0, images0 = self._first
    seconds = self._clock() - t0
    if seconds <= 0 or self.done <= done0:
      return None, None
    image_rate = (self.images - images0) / seconds if self.images else None
    return image_rate, (self.done - done0) / seconds

  def status(self) -> str:
    """'<done>/<total> <unit>, <rate>, ETA <m:ss>[, k v ...]'."""
    parts = [f'{self.done}/{self.total} {self.unit}' if self.total else
             f'{self.done} {self.unit}']
    image_rate, unit_rate = self.rates()
    if image_rate is not None:
      parts.append(f'{image_rate:.1f} img/s')
    elif unit_rate is not None:
      parts.append(f'{unit_rate:.2f} {self.unit}/s' if unit_rate >= 1 else
                   f'{1.0 / unit_rate:.1f} s/{self.unit}')
    if unit_rate and self.done < self.total:
      parts.append(
          f'ETA {format_seconds((self.total - self.done) / unit_rate)}')
    parts += [f'{k} {_format_value(v)}' for k, v in self.values.items()]
    return ', '.join(parts)

  def update(self, n: int = 1, images: Optional[int] = None,
             values: Optional[Dict[str, Any]] = None) -> None:
    """Counts `n` more units done (`images` more images: default `n` when
    the unit is 'img'); `values` (e.g. the last losses) are shown after.
    Reaching `total` closes the report."""
    if self.mode == 'none':
      return
    if images is None:
      images = n if self.unit == 'img' else 0
    if self._first is None:
      self._first = (self._clock(), self.done + n, self.images + images)
    self.done += n
    self.images += images
    if values is not None:
      self.values = dict(values)
    if self._bar is not None:
      self._bar.set_postfix_str(self._bar_status(), refresh=False)
      self._bar.update(n)
    elif self._line_due():
      self._line()
    if self.total and self.done >= self.total:
      self.close()

  def _bar_status(self) -> str:
    """The status cut to fit one terminal line beside the label and bar (a
    wrapped line would not redraw in place)."""
    columns = shutil.get_terminal_size().columns
    return self.status()[:max(columns - len(self.label) - 20, 10)]

  def _line_due(self) -> bool:
    last_time, last_done = self._line_at
    step = max(1, math.ceil(self.total * LINE_FRACTION))
    return ((self.total and self.done >= self.total) or
            (self.total and self.done // step > last_done // step) or
            self._clock() - last_time >= LINE_SECONDS)

  def _line(self) -> None:
    self._line_at = (self._clock(), self.done)
    self.stream.write(f'{self.label}: {self.status()}\n')
    self.stream.flush()

  def close(self, final: bool = True) -> None:
    """Ends the report (lines mode: a last line unless one is current);
    `final=False` (a failure) only ends the bar's line."""
    _open.discard(self)
    if self._bar is not None:
      if final:
        self._bar.set_postfix_str(self._bar_status(), refresh=False)
      self._bar.close()
      self._bar = None
    elif final and self.mode == 'lines' and self._line_at[1] != self.done:
      self._line()
    self.mode = 'none'

  def __enter__(self) -> 'Progress':
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    self.close(final=exc_type is None)


def close_open() -> None:
  """Ends every open report's line without a summary (before an error
  message, so that it starts on a line of its own)."""
  for report in list(_open):
    report.close(final=False)


def track(items: Iterable[Any], label: str, unit: str = 'img',
          total: Optional[int] = None, **kwargs) -> Iterator[Any]:
  """Yields `items`, counting one unit done each time the next is asked for
  (so an item skipped with `continue` counts too); closes at the end."""
  if total is None:
    total = len(items)  # type: ignore[arg-type]
  report = Progress(total, label, unit, **kwargs)
  with report:
    for item in items:
      yield item
      report.update(1)


class TrainProgress:
  """The training loop's progress hook: one `Progress` per epoch, in steps,
  showing images/s, the ETA of the epoch and the last step's losses.

  Args:
    num_epochs: int, epochs of the run (for the label).
    mode, stream, clock: as `Progress`.
  """

  def __init__(self, num_epochs: int, **kwargs):
    self.num_epochs, self.kwargs, self.report = num_epochs, kwargs, None

  def start_epoch(self, epoch: int, steps: int, done: int = 0) -> None:
    """Epoch `epoch` (0-based) of `steps` steps, `done` already done."""
    self.end_epoch()
    self.report = Progress(steps, f'epoch {epoch} (of {self.num_epochs})',
                           'step', initial=done, **self.kwargs)

  def step(self, images: int, scalars: Dict[str, Any]) -> None:
    """One step of `images` images done; shows its losses (loss_total
    first; not the flipped views' terms)."""
    names = ['loss_total'] + [k for k in scalars if k.startswith('loss_') and
                              k != 'loss_total' and not k.endswith('_flip')]
    self.report.update(1, images, {k: float(scalars[k]) for k in names
                                   if k in scalars})

  def end_epoch(self) -> None:
    if self.report is not None:
      self.report.close()
      self.report = None
