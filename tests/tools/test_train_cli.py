"""Tests of the tfunsup3d-train console script (errors and exit codes).

Training itself is tested in tests/train/ (in-process, and killed with
SIGKILL as a subprocess in tests/train/test_sigkill.py).
"""

import os
import pathlib
import subprocess
import sys

import pytest

from tfunsup3d import config
from tfunsup3d.tools import flags as tool_flags
from tfunsup3d.tools import train as train_tool

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(*args):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop(tool_flags.DEBUG_ENV, None)
  return subprocess.run(
      [sys.executable, '-m', 'tfunsup3d.tools.train', *args], cwd=ROOT,
      env=env, capture_output=True, text=True, timeout=300, check=False)


def _error_lines(stderr):
  return [line for line in stderr.splitlines()
          if line.startswith('tfunsup3d-')]


def test_missing_train_split_exits_2_before_anything(tmp_path):
  ckpt_dir = tmp_path / 'run'
  proc = _run(f'--train_val_data_dir={tmp_path / "no_data"}',
              f'--checkpoint_dir={ckpt_dir}', '--lam_perc=0')
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  lines = _error_lines(proc.stderr)
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('tfunsup3d-train: error: train data directory '
                             'does not exist')
  assert 'Traceback' not in proc.stderr
  assert not ckpt_dir.exists()


def test_helpfull_lists_the_training_keys():
  proc = _run('--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for key in ('--save_checkpoint_steps', '--max_steps_per_epoch',
              '--val_max_batches', '--deterministic', '--resume'):
    assert key in proc.stdout, key


def _with_train_split(tmp_path):
  """A Config whose train split directory exists (main checks it before
  `loop.train`, which these tests replace)."""
  (tmp_path / 'train').mkdir()
  return config.Config(train_val_data_dir=str(tmp_path))


def test_non_finite_loss_exits_3_with_one_line(monkeypatch, capsys, tmp_path):
  from tfunsup3d.train import loop  # pylint: disable=g-import-not-at-top

  def diverge(cfg, stop):
    del cfg, stop
    raise loop.NonFiniteLossError('Non-finite loss at epoch 2, step 5 of the '
                                  'epoch (global step 45, 0-based): '
                                  'loss_total=nan. last good checkpoint: x.')

  monkeypatch.setattr(loop, 'train', diverge)
  assert train_tool.main(_with_train_split(tmp_path)) == (
      train_tool.EXIT_NON_FINITE)
  err = capsys.readouterr().err
  assert _error_lines(err) == [
      'tfunsup3d-train: error: Non-finite loss at epoch 2, step 5 of the '
      'epoch (global step 45, 0-based): loss_total=nan. last good '
      'checkpoint: x.']


def test_unloadable_checkpoints_are_a_user_error(monkeypatch, tmp_path):
  from tfunsup3d.train import checkpoints, loop  # pylint: disable=g-import-not-at-top

  def broken(cfg, stop):
    del cfg, stop
    raise checkpoints.CheckpointError('No checkpoint in d can be loaded')

  monkeypatch.setattr(loop, 'train', broken)
  with pytest.raises(tool_flags.UserError, match='can be loaded'):
    train_tool.main(_with_train_split(tmp_path))


def test_success_reports_epochs_and_checkpoint(monkeypatch, capsys, tmp_path):
  from tfunsup3d.train import loop  # pylint: disable=g-import-not-at-top
  monkeypatch.setattr(loop, 'train', lambda cfg, stop: {
      'epoch': 2, 'step': 8, 'checkpoint': 'run/ckpt-8', 'metrics': {},
      'resumed_from': None})
  assert train_tool.main(_with_train_split(tmp_path)) == 0
  assert 'Trained 2 epochs (8 steps); checkpoint: run/ckpt-8' in (
      capsys.readouterr().out)
