"""A training process killed with SIGKILL resumes from its last checkpoint;
one sent Ctrl-C (SIGINT) or SIGTERM saves first and says so.

`tfunsup3d-train` runs in a subprocess, checkpointing every step; as soon
as the first checkpoint appears it is killed (-9), most likely in the middle
of a step or of a save. The newest checkpoint the state file names must then
load, and training must go on from exactly there. The subprocess runs with
--deterministic, so every op of the step is also checked to have a
deterministic implementation.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

from tests import tiny
from tfunsup3d.model import Unsup3D
from tfunsup3d.train import loop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
START_TIMEOUT_S = 300  # TF import + tracing on two busy cores.


class _Probe:
  """Records the model weights when the first resumed step starts."""

  def __init__(self, task):
    self.task = task
    self.first_weights = None

  def __getattr__(self, name):
    return getattr(self.task, name)

  def train_step(self, batch, epoch):
    if self.first_weights is None:
      self.first_weights = [v.numpy() for v in self.task.model.weights]
    return self.task.train_step(batch, epoch)


def _flags(values):
  return [f'--{k}={v}' for k, v in values.items()]


class SigkillTest(tf.test.TestCase):

  def test_killed_run_resumes_from_its_last_checkpoint(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    data = tiny.write_dataset(os.path.join(tmp, 'data'), n_train=8, n_val=0)
    ckpt_dir = os.path.join(tmp, 'run')
    values = dict(tiny.TINY, train_val_data_dir=data, checkpoint_dir=ckpt_dir,
                  load_gt_depth=True, num_epochs=100, save_checkpoint_steps=1,
                  keep_num_checkpoint=2, deterministic=True)
    log_path = os.path.join(tmp, 'train.log')
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    with open(log_path, 'w') as log:
      proc = subprocess.Popen(
          [sys.executable, '-m', 'tfunsup3d.tools.train'] + _flags(values),
          cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
          start_new_session=True)
    state_file = os.path.join(ckpt_dir, 'checkpoint')
    try:
      deadline = time.time() + START_TIMEOUT_S
      while not os.path.exists(state_file):
        if proc.poll() is not None:
          with open(log_path) as f:
            self.fail(f'training exited ({proc.returncode}):\n{f.read()}')
        if time.time() > deadline:
          self.fail(f'no checkpoint after {START_TIMEOUT_S} s')
        time.sleep(0.02)
      os.killpg(proc.pid, signal.SIGKILL)  # Its own session: it + children.
      proc.wait(timeout=60)
    finally:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    self.assertEqual(proc.returncode, -signal.SIGKILL)

    latest = tf.train.latest_checkpoint(ckpt_dir)
    self.assertIsNotNone(latest)
    reader = tf.train.load_checkpoint(latest)
    epoch = int(reader.get_tensor('train_state/epoch/.ATTRIBUTES/'
                                  'VARIABLE_VALUE'))
    step = int(reader.get_tensor('train_state/step/.ATTRIBUTES/'
                                 'VARIABLE_VALUE'))
    self.assertEqual(os.path.basename(latest), f'ckpt-{step}')
    saved = [v.numpy() for v in Unsup3D.from_checkpoint(latest).weights]

    probe = _Probe(tiny.shared_task())
    cfg = tiny.tiny_config(data, ckpt_dir, num_epochs=epoch + 1,
                           save_checkpoint_steps=1, keep_num_checkpoint=2)
    result = loop.train(cfg, task=probe)
    self.assertEqual(result['resumed_from'], latest)  # No fallback needed.
    self.assertFalse(os.path.exists(os.path.join(ckpt_dir, 'corrupt')))
    self.assertEqual(result['step'], 2 * (epoch + 1))  # 2 steps per epoch.
    # A checkpoint is saved mid-epoch or at an epoch's end (then `epoch` is
    # the next one): either way steps are left, and the first starts from
    # exactly the checkpoint's weights.
    self.assertLess(step, 2 * (epoch + 1))
    self.assertIsNotNone(probe.first_weights)
    for a, b in zip(saved, probe.first_weights):
      self.assertAllEqual(a, b)
    self.assertTrue(np.isfinite(
        result['metrics'][str(epoch)]['train']['loss_total']))

  def test_a_signal_saves_the_state_and_exits_128_plus_its_number(self):
    for sig, name in ((signal.SIGINT, 'SIGINT'), (signal.SIGTERM, 'SIGTERM')):
      with self.subTest(name):
        tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
        data = tiny.write_dataset(os.path.join(tmp, 'data'), n_train=8,
                                  n_val=0)
        ckpt_dir = os.path.join(tmp, 'run')
        values = dict(tiny.TINY, train_val_data_dir=data,
                      checkpoint_dir=ckpt_dir, load_gt_depth=True,
                      num_epochs=1000)
        log_path = os.path.join(tmp, 'train.log')
        with open(log_path, 'w') as log:
          proc = subprocess.Popen(
              [sys.executable, '-m', 'tfunsup3d.tools.train'] +
              _flags(values), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2'))
        try:
          deadline = time.time() + START_TIMEOUT_S
          while 'Starting training epoch' not in _read(log_path):
            if proc.poll() is not None or time.time() > deadline:
              self.fail(f'training did not start ({proc.returncode}):\n'
                        + _read(log_path))
            time.sleep(0.05)
          proc.send_signal(sig)
          proc.wait(timeout=START_TIMEOUT_S)
        finally:
          if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=60)
        log = _read(log_path)
        self.assertEqual(proc.returncode, 128 + sig, log)
        self.assertIn(f'tfunsup3d-train: {name}: saving a checkpoint after '
                      'this step, then stopping', log)
        latest = tf.train.latest_checkpoint(ckpt_dir)
        self.assertIsNotNone(latest, log)
        self.assertRegex(
            log, f'tfunsup3d-train: stopped by {name} at epoch \\d+, step '
            f'\\d of 2 \\(global step \\d+\\); saved {re.escape(latest)}; '
            'run the same command to resume.\n')
        self.assertNotIn('Traceback', log)


def _read(path):
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.read()


if __name__ == '__main__':
  tf.test.main()
