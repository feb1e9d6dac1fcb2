"""Tests for tfunsup3d/compile_cache.py: XLA's persistent compilation cache."""

import glob
import os
import pathlib
import subprocess
import sys
import tempfile
from unittest import mock

import tensorflow as tf

from tfunsup3d import compile_cache

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A process that turns the cache on for its argv[1], compiles one function
# and prints its result.
_COMPILE = '''
import sys
from tfunsup3d import compile_cache
import tensorflow as tf
print(compile_cache.enable(sys.argv[1]), flush=True)
f = tf.function(lambda x: tf.reduce_sum(tf.sin(x) * 3.0), jit_compile=True)
print(float(f(tf.range(10.0))))
'''


def _compile_in_subprocess(cache_dir):
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2')
  env.pop(compile_cache.ENV, None)
  proc = subprocess.run([sys.executable, '-c', _COMPILE, cache_dir],
                        cwd=ROOT, env=env, capture_output=True, text=True,
                        timeout=300, check=True)
  return proc.stdout.split()


class EnableTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    patch = mock.patch.dict(os.environ)
    patch.start()
    self.addCleanup(patch.stop)
    os.environ.pop(compile_cache.ENV, None)
    self.tmp = tempfile.mkdtemp()

  def test_off(self):
    for off in (None, ''):
      self.assertIsNone(compile_cache.enable(off))
    self.assertNotIn(compile_cache.ENV, os.environ)

  def test_points_tf_at_a_per_machine_subdirectory(self):
    os.environ[compile_cache.ENV] = '--tf_xla_enable_lazy_compilation=true'
    path = compile_cache.enable(self.tmp)
    self.assertEqual(os.path.dirname(path), self.tmp)
    self.assertStartsWith(os.path.basename(path), f'tf{tf.__version__}-')
    self.assertTrue(os.path.isdir(path))
    self.assertEqual(os.environ[compile_cache.ENV],
                     f'--tf_xla_enable_lazy_compilation=true '
                     f'{compile_cache.FLAG}={path}')

  def test_auto_is_under_xdg_cache_home(self):
    os.environ['XDG_CACHE_HOME'] = self.tmp
    path = compile_cache.enable('auto')
    self.assertEqual(os.path.dirname(path),
                     os.path.join(self.tmp, 'tfunsup3d', 'xla'))

  def test_determinism_gets_its_own_directory(self):
    self.assertNotEqual(compile_cache.machine_key(False),
                        compile_cache.machine_key(True))

  def test_keeps_the_users_own_cache_flag(self):
    mine = f'{compile_cache.FLAG}=/somewhere/else'
    os.environ[compile_cache.ENV] = mine
    self.assertEqual(compile_cache.enable(self.tmp), '/somewhere/else')
    self.assertEqual(os.environ[compile_cache.ENV], mine)

  def test_unwritable_directory_warns_and_goes_on(self):
    blocker = os.path.join(self.tmp, 'a_file')
    pathlib.Path(blocker).write_text('x', encoding='utf-8')
    with self.assertLogs(level='WARNING') as logs:
      self.assertIsNone(compile_cache.enable(os.path.join(blocker, 'sub')))
    self.assertIn('cannot be written', logs.output[0])
    self.assertNotIn(compile_cache.ENV, os.environ)


class PersistenceTest(tf.test.TestCase):

  def test_second_process_loads_instead_of_compiling(self):
    tmp = tempfile.mkdtemp()
    path, first = _compile_in_subprocess(tmp)
    entries = glob.glob(os.path.join(path, '*'))
    self.assertLen(entries, 1)  # the one compiled function
    stamp = os.path.getmtime(entries[0])
    path_again, second = _compile_in_subprocess(tmp)
    self.assertEqual(path_again, path)
    self.assertEqual(second, first)
    # Loaded, not compiled and written again.
    self.assertEqual(glob.glob(os.path.join(path, '*')), entries)
    self.assertEqual(os.path.getmtime(entries[0]), stamp)
    # Off: nothing written.
    off = tempfile.mkdtemp()
    self.assertEqual(_compile_in_subprocess('')[0], 'None')
    self.assertEqual(os.listdir(off), [])



class ConsoleScriptTest(tf.test.TestCase):
  """The console scripts turn the cache on from the config (a user's run)."""

  def _synth(self, xdg, *flags):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2',
               XDG_CACHE_HOME=xdg)
    env.pop(compile_cache.ENV, None)
    subprocess.run(
        [sys.executable, '-m', 'tfunsup3d.tools.synth',
         f'--out_dir={tempfile.mkdtemp()}/d', '--num_train=2', '--num_val=0',
         '--num_test=0', '--overwrite', *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=True)
    return glob.glob(os.path.join(xdg, 'tfunsup3d', 'xla', '*', '*'))

  def test_default_auto_and_off(self):
    self.assertLen(self._synth(tempfile.mkdtemp()), 1)  # the renderer
    self.assertEqual(self._synth(tempfile.mkdtemp(), '--xla_cache_dir=none'),
                     [])


if __name__ == '__main__':
  tf.test.main()
