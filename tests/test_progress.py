"""Tests of tfunsup3d.progress: modes, rates and ETA, the non-TTY lines."""

import io
import os
import pathlib
import subprocess
import sys

from absl import logging
import pytest

from tfunsup3d import progress

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Clock:
  """A clock the test moves by hand."""

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class _Terminal(io.StringIO):

  def isatty(self):
    return True


@pytest.fixture
def verbosity():
  """Sets absl's verbosity for a test (pytest runs without absl.app, so it
  is WARNING) and restores it."""
  before = logging.get_verbosity()
  yield logging.set_verbosity
  logging.set_verbosity(before)


@pytest.fixture(autouse=True)
def _process_mode(monkeypatch):
  monkeypatch.setattr(progress, '_mode', 'auto')


def _train_epoch(stream, steps=20, clock=None, **kwargs):
  """20 steps of 16 images, 0.5 s each after the first; returns the text."""
  clock = clock or _Clock()
  hook = progress.TrainProgress(3, stream=stream, clock=clock, **kwargs)
  hook.start_epoch(0, steps)
  for i in range(steps):
    hook.step(16, {'loss_total': 0.5 - i / 100, 'loss_l1_im': 0.25,
                   'loss_l1_im_flip': 0.3, 'side': 1.0})
    clock.now += 0.5
  hook.end_epoch()
  return stream.getvalue()


def test_lines_show_step_images_per_second_eta_and_losses():
  text = _train_epoch(io.StringIO(), mode='lines')
  lines = text.splitlines()
  # One line per tenth of the epoch (2 steps), not one per step.
  assert len(lines) == 10, text
  # After step 4: 3 steps of 16 images in 1.5 s since the first -> 32 img/s;
  # 16 steps left at 2 steps/s -> 8 s.
  assert lines[1] == ('epoch 0 (of 3): 4/20 step, 32.0 img/s, ETA 0:08, '
                      'loss_total 0.47, loss_l1_im 0.25')
  assert lines[-1] == ('epoch 0 (of 3): 20/20 step, 32.0 img/s, '
                       'loss_total 0.31, loss_l1_im 0.25')
  assert 'flip' not in text and 'side' not in text


def test_non_tty_output_is_plain_lines(verbosity):
  verbosity(logging.INFO)  # As the console scripts run.
  stream = io.StringIO()
  report = progress.Progress(5, 'demo', stream=stream)
  assert report.mode == 'lines'
  for _ in range(5):
    report.update(1)
  text = stream.getvalue()
  assert '\r' not in text and '\x1b' not in text
  assert text.splitlines()[-1].startswith('demo: 5/5 img, ')
  assert text.count('\n') == 5


def test_terminal_gets_a_bar(verbosity):
  verbosity(logging.INFO)
  stream = _Terminal()
  text = _train_epoch(stream)
  assert '\r' in text  # Redrawn in place.
  assert '20/20 step' in text and 'img/s' in text


@pytest.mark.parametrize('mode, level', [
    ('none', logging.INFO),  # Turned off.
    ('auto', logging.WARNING),  # --verbosity=-1, or a library without absl.
    ('auto', logging.ERROR),
])
def test_quiet(verbosity, mode, level):
  verbosity(level)
  for stream in (io.StringIO(), _Terminal()):
    assert _train_epoch(stream, mode=mode) == ''
  stream = io.StringIO()
  for _ in progress.track(range(3), 'demo', mode=mode, stream=stream):
    pass
  assert stream.getvalue() == ''


def test_process_wide_mode(verbosity):
  verbosity(logging.INFO)
  progress.set_mode('none')
  assert _train_epoch(io.StringIO()) == ''
  progress.set_mode('lines')
  assert 'img/s' in _train_epoch(io.StringIO())
  with pytest.raises(ValueError, match="progress='loud'"):
    progress.set_mode('loud')


def test_lines_at_least_every_30_seconds():
  clock, stream = _Clock(), io.StringIO()
  report = progress.Progress(1000, 'synth train', mode='lines', stream=stream,
                             clock=clock)
  for _ in range(4):  # Far below a tenth each, but 31 s apart.
    clock.now += 31.0
    report.update(1)
  assert len(stream.getvalue().splitlines()) == 4
  report.update(1)  # At once: no line.
  assert len(stream.getvalue().splitlines()) == 4
  report.close()  # The last count gets its line.
  assert stream.getvalue().splitlines()[-1].startswith('synth train: 5/1000')


def test_slow_units_show_seconds_per_unit_and_values():
  clock, stream = _Clock(), io.StringIO()
  report = progress.Progress(3, 'export', 'stage', mode='lines',
                             stream=stream, clock=clock)
  for stage in ('load', 'SavedModel', 'TFLite'):
    clock.now += 4.0
    report.update(values={'done': stage})
  assert stream.getvalue().splitlines() == [
      'export: 1/3 stage, done load',
      'export: 2/3 stage, 4.0 s/stage, ETA 0:04, done SavedModel',
      'export: 3/3 stage, 4.0 s/stage, done TFLite']


def test_track_counts_skipped_items_and_closes():
  stream = io.StringIO()
  seen = []
  for item in progress.track(range(4), 'demo', mode='lines', stream=stream):
    if item % 2:
      continue
    seen.append(item)
  assert seen == [0, 2]
  assert stream.getvalue().splitlines()[-1].startswith('demo: 4/4 img')
  assert not progress._open  # pylint: disable=protected-access


def test_unknown_total_counts_without_eta():
  clock, stream = _Clock(), io.StringIO()
  report = progress.Progress(-2, 'test', 'batch', mode='lines', stream=stream,
                             clock=clock)
  report.update(1, images=8)
  clock.now += 2.0
  report.update(1, images=8)
  report.close()
  assert stream.getvalue().splitlines() == ['test: 2 batch, 4.0 img/s']


def test_close_open_ends_a_bar_before_an_error_line():
  stream = _Terminal()
  report = progress.Progress(10, 'train', 'step', mode='bar', stream=stream)
  report.update(3)
  progress.close_open()
  assert stream.getvalue().endswith('\n')
  assert report.mode == 'none' and not progress._open  # pylint: disable=protected-access


@pytest.mark.parametrize('seconds, text', [
    (0, '0:00'), (59.6, '1:00'), (61, '1:01'), (3599, '59:59'),
    (3600, '1:00:00'), (7322, '2:02:02')])
def test_format_seconds(seconds, text):
  assert progress.format_seconds(seconds) == text


def test_synth_script_prints_lines_on_a_non_tty(tmp_path):
  """tfunsup3d-synth as CI runs it (stderr not a terminal); --progress=none
  is tested through tools.flags.main_wrapper (tests/tools/test_flags.py)."""
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2')
  proc = subprocess.run(
      [sys.executable, '-m', 'tfunsup3d.tools.synth', '--num_train=3',
       '--num_val=0', '--num_test=0', '--image_size=16', '--seed=1',
       f'--out_dir={tmp_path}'], cwd=ROOT, env=env, capture_output=True,
      text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '\r' not in proc.stderr
  lines = [line for line in proc.stderr.splitlines()
           if line.startswith('synth train: ')]
  assert lines and lines[-1].startswith('synth train: 3/3 img'), proc.stderr
