"""Tests for bench/gpu.sh and bench/gpu.py: skips without a GPU, summary."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
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


  def test_an_unknown_part_is_a_one_line_error(self):
    script = os.path.join(REPO_ROOT, 'bench', 'gpu.sh')
    if not os.path.isfile(script):
      self.skipTest('bench/gpu.sh is not among the runfiles')
    proc = subprocess.run(
        ['bash', script], env=dict(os.environ, PYTHON=sys.executable,
                                   GPU_SH_PARTS='tests step'),
        capture_output=True, text=True, timeout=60, check=False)
    self.assertEqual((proc.returncode, proc.stdout), (2, ''))
    self.assertEqual(proc.stderr.strip(), "gpu.sh: unknown part 'step' in "
                     'GPU_SH_PARTS (parts: tests steps zbuffer synth train)')


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


class Cuda13EnvTest(unittest.TestCase):

  def test_links_cuda13_libraries_under_tensorflows_cuda12_names(self):
    script = os.path.join(REPO_ROOT, 'bench', 'gpu_cuda13_env.sh')
    if not os.path.isfile(script):  # BUILD ships .py files only
      self.skipTest('bench/gpu_cuda13_env.sh is not among the runfiles')
    with tempfile.TemporaryDirectory() as root:
      libs = os.path.join(root, 'cuda', 'lib')
      site = os.path.join(root, 'site')
      for folder, names in (
          (libs, ['libcublas.so.13', 'libcublas.so.13.1.0.3',
                  'libcublasLt.so.13', 'libcufft.so.12', 'libcusolver.so.12',
                  'libcusparse.so.12', 'libnvJitLink.so.13', 'libnvrtc.so.13',
                  'libcupti.so.13', 'libcudnn.so.9']),
          (os.path.join(root, 'cuda', 'nvvm', 'libdevice'),
           ['libdevice.10.bc']),
          (os.path.join(site, 'nvidia', 'cuda_runtime', 'lib'),
           ['libcudart.so.12'])):
        os.makedirs(folder, exist_ok=True)
        for name in names:
          open(os.path.join(folder, name), 'w').close()
      env = dict(os.environ, TF_SITE=site, CUDA_SEARCH=root,
                 LD_LIBRARY_PATH='', XLA_FLAGS='', PYTHONPATH='')
      proc = subprocess.run(
          ['bash', '-c', f'source {script} && echo "$LD_LIBRARY_PATH" && '
           'echo "$XLA_FLAGS" && echo "$PYTHONPATH"'],
          env=env, capture_output=True, text=True, check=True, timeout=60)
      ld, xla, path = proc.stdout.splitlines()
      links = os.path.join(site, '.cu12')
      self.assertEqual(ld.split(':'), [links, libs])
      self.assertEqual(xla, '--xla_gpu_cuda_data_dir=' +
                       os.path.join(root, 'cuda'))
      self.assertEqual(path, site)
      want = {'libcublas.so.12': 'libcublas.so.13',
              'libcublasLt.so.12': 'libcublasLt.so.13',
              'libcufft.so.11': 'libcufft.so.12',
              'libcusolver.so.11': 'libcusolver.so.12',
              'libcusparse.so.12': 'libcusparse.so.12',
              'libnvJitLink.so.12': 'libnvJitLink.so.13',
              'libnvrtc.so.12': 'libnvrtc.so.13',
              'libcupti.so.12': 'libcupti.so.13'}
      got = {n: os.path.relpath(os.readlink(os.path.join(links, n)), libs)
             for n in want}
      self.assertEqual(got, want)
      self.assertEqual(os.readlink(os.path.join(links, 'libcudart.so.12')),
                       os.path.join(site, 'nvidia', 'cuda_runtime', 'lib',
                                    'libcudart.so.12'))
      self.assertEqual(proc.stderr, '')


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
