"""Tests for bench/gpu.sh and bench/gpu.py: skips without a GPU, summary."""

import contextlib
import io
import json
import os
import subprocess
import sys
import unittest

from bench import gpu

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _gpu_visible() -> bool:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return bool(tf.config.list_physical_devices('GPU'))


class GpuScriptTest(unittest.TestCase):

  def test_skips_with_exit_0_without_gpu(self):
    script = os.path.join(REPO_ROOT, 'bench', 'gpu.sh')
    if not os.path.isfile(script):  # BUILD ships .py files only
      self.skipTest('bench/gpu.sh is not among the runfiles')
    env = dict(os.environ, PYTHON=sys.executable)
    if _gpu_visible():  # the skip path, as on a machine without one
      env['GPU_SH_FORCE_SKIP'] = '1'
    proc = subprocess.run(['bash', script],
                          env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    self.assertEqual(json.loads(proc.stdout),
                     {'bench': 'gpu', 'skipped': 'no GPU visible to '
                      'TensorFlow'})


class SummaryTest(unittest.TestCase):

  def test_gathers_records_by_name(self):
    lines = [
        'some log line',
        json.dumps({'what': 'tests', 'rc': 0, 'result': '3 passed'}),
        json.dumps({'what': 'step', 'precision': 'none', 'loss': 1.5,
                    'loss_finite': True}),
        json.dumps({'what': 'step', 'precision': 'bfloat16',
                    'loss': float('nan'), 'loss_finite': False}),
        json.dumps({'what': 'zbuffer', 'size': 256, 'median_s': 0.1}),
        json.dumps({'what': 'train', 'error': 'failed or over 180 s'}),
        '[1, 2]',
    ]
    result = gpu.summary(lines)
    self.assertEqual(sorted(result['records']),
                     ['step/bfloat16', 'step/none', 'tests', 'train',
                      'zbuffer/256'])
    self.assertIs(result['loss_finite'], False)
    self.assertEqual(result['failed'], ['train'])

  def test_no_loss_gives_none(self):
    self.assertIsNone(gpu.summary([json.dumps({'what': 'tests'})])[
        'loss_finite'])


class MainTest(unittest.TestCase):

  def test_one_json_line_per_size_in_one_process(self):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
      gpu.main(['zbuffer', '--size=8,16', '--batch=1', '--repeats=1'])
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    self.assertEqual([(r['what'], r['size'], r['map']) for r in records],
                     [('zbuffer', 8, 16), ('zbuffer', 16, 32)])
    self.assertTrue(all(r['median_s'] > 0 for r in records))

  def test_unknown_precision_is_a_usage_error(self):
    with contextlib.redirect_stderr(io.StringIO()) as err:
      with self.assertRaises(SystemExit) as ctx:
        gpu.main(['step', '--precision=none,fp8'])
    self.assertEqual(ctx.exception.code, 2)
    self.assertIn("'none,fp8'", err.getvalue())


if __name__ == '__main__':
  unittest.main()
