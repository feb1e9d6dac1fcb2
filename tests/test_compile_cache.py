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
run = compile_cache.enable(sys.argv[1])
f = tf.function(lambda x: tf.reduce_sum(tf.sin(x) * 3.0), jit_compile=True)
print(float(f(tf.range(10.0))))
if sys.argv[2] == 'publish':
  print(compile_cache.publish())
'''


def _compile_in_subprocess(cache_dir, end='publish'):
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2')
  env.pop(compile_cache.ENV, None)
  proc = subprocess.run([sys.executable, '-c', _COMPILE, cache_dir, end],
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

  def test_points_tf_at_a_run_directory_of_a_per_machine_one(self):
    shared = os.path.join(self.tmp, compile_cache.machine_key())
    os.makedirs(shared)
    pathlib.Path(shared, 'old.pb').write_text('entry', encoding='utf-8')
    os.environ[compile_cache.ENV] = '--tf_xla_enable_lazy_compilation=true'
    run = compile_cache.enable(self.tmp)
    self.addCleanup(compile_cache.discard)
    self.assertEqual(os.path.dirname(run), shared)
    self.assertStartsWith(os.path.basename(shared), f'tf{tf.__version__}-')
    self.assertEqual(os.environ[compile_cache.ENV],
                     f'--tf_xla_enable_lazy_compilation=true '
                     f'{compile_cache.FLAG}={run}')
    # The shared entries are visible to TF in the run directory.
    self.assertEqual(pathlib.Path(run, 'old.pb').read_text(encoding='utf-8'),
                     'entry')
    # What TF writes there reaches the shared directory only on publish.
    pathlib.Path(run, 'new.pb').write_text('compiled', encoding='utf-8')
    self.assertFalse(os.path.exists(os.path.join(shared, 'new.pb')))
    self.assertEqual(compile_cache.publish(), 1)
    self.assertEqual(sorted(os.listdir(shared)), ['new.pb', 'old.pb'])

  def test_discard_publishes_nothing(self):
    run = compile_cache.enable(self.tmp)
    pathlib.Path(run, 'new.pb').write_text('half', encoding='utf-8')
    compile_cache.discard()
    self.assertEqual(os.listdir(os.path.dirname(run)), [])

  def test_stale_run_directories_of_this_host_are_removed(self):
    shared = os.path.join(self.tmp, compile_cache.machine_key())
    dead = subprocess.run(
        [sys.executable, '-c', 'import os; print(os.getpid())'],
        capture_output=True, text=True, check=True)
    prefix = compile_cache._run_prefix()  # pylint: disable=protected-access
    stale = os.path.join(shared, f'{prefix}{int(dead.stdout)}-x')
    other_host = os.path.join(shared, '.run-elsewhere-1-x')
    for path in (stale, other_host):
      os.makedirs(path)
    run = compile_cache.enable(self.tmp)
    self.addCleanup(compile_cache.discard)
    self.assertFalse(os.path.exists(stale))
    self.assertTrue(os.path.exists(other_host))
    self.assertTrue(os.path.isdir(run))

  def test_a_nearly_full_disk_is_not_used(self):
    with mock.patch.object(compile_cache, 'MIN_FREE_BYTES', 2**62), \
        self.assertLogs(level='WARNING') as logs:
      self.assertIsNone(compile_cache.enable(self.tmp))
    self.assertIn('free', logs.output[0])
    self.assertNotIn(compile_cache.ENV, os.environ)

  def test_auto_is_under_xdg_cache_home(self):
    os.environ['XDG_CACHE_HOME'] = self.tmp
    run = compile_cache.enable('auto')
    self.addCleanup(compile_cache.discard)
    self.assertEqual(os.path.dirname(os.path.dirname(run)),
                     os.path.join(self.tmp, 'tfunsup3d', 'xla'))

  def test_determinism_gets_its_own_directory(self):
    self.assertNotEqual(compile_cache.machine_key(False),
                        compile_cache.machine_key(True))

  def test_key_read_without_importing_tf_is_the_imported_tfs(self):
    # The console scripts compute it while parsing flags, before TF loads.
    code = ('import sys\nfrom tfunsup3d import compile_cache as c\n'
            'before = c.machine_key(), c._tf_build()\n'
            'assert "tensorflow" not in sys.modules\n'
            'import tensorflow as tf\n'
            'print(before == (c.machine_key(), c._tf_build()), before[0])')
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2')
    proc = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300,
                          check=True)
    same, key = proc.stdout.split()
    self.assertEqual(same, 'True')
    self.assertTrue(key.startswith(f'tf{tf.__version__}-'), key)

  def test_version_of_a_differently_named_distribution(self):
    # tensorflow-cpu, tf-nightly: no distribution named `tensorflow`.
    real = compile_cache.importlib.metadata.version

    def version(name):
      if name == 'tensorflow':
        raise compile_cache.importlib.metadata.PackageNotFoundError(name)
      return real(name)

    with mock.patch.object(compile_cache.importlib.metadata, 'version',
                           version), \
        mock.patch.object(compile_cache.importlib.metadata,
                          'packages_distributions',
                          return_value={'tensorflow': ['numpy']}):
      # The distribution that provides the module (here made numpy).
      self.assertEqual(compile_cache._tf_version_installed(), real('numpy'))

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
    first, published = _compile_in_subprocess(tmp)
    self.assertEqual(published, '1')  # the one compiled function
    (shared,) = glob.glob(os.path.join(tmp, '*'))
    entries = glob.glob(os.path.join(shared, '*'))  # run directory removed
    self.assertLen(entries, 1)
    stamp = os.path.getmtime(entries[0])
    second, published = _compile_in_subprocess(tmp)
    self.assertEqual((second, published), (first, '0'))  # loaded
    self.assertEqual(glob.glob(os.path.join(shared, '*')), entries)
    self.assertEqual(os.path.getmtime(entries[0]), stamp)

  def test_a_run_that_does_not_publish_leaves_the_cache_as_it_was(self):
    tmp = tempfile.mkdtemp()
    _compile_in_subprocess(tmp, end='exit')  # discarded at exit
    (shared,) = glob.glob(os.path.join(tmp, '*'))
    self.assertEqual(os.listdir(shared), [])
    # Off: nothing written.
    self.assertLen(_compile_in_subprocess('', end='exit'), 1)


class ConsoleScriptTest(tf.test.TestCase):
  """The console scripts turn the cache on from the config (a user's run)."""

  def _synth(self, xdg, *flags, env_extra=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL='2',
               XDG_CACHE_HOME=xdg)
    env.update(env_extra or {})
    env.pop(compile_cache.ENV, None)
    env.pop('TFUNSUP3D_DEBUG', None)
    self.last = subprocess.run(
        [sys.executable, '-m', 'tfunsup3d.tools.synth',
         f'--out_dir={tempfile.mkdtemp()}/d', '--num_train=2', '--num_val=0',
         '--num_test=0', '--overwrite', *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=True)
    return glob.glob(os.path.join(xdg, 'tfunsup3d', 'xla', '*', '*'))

  def test_default_auto_off_and_a_quiet_warm_start(self):
    # TF's own log level at its default (0), as a user has it.
    xdg, user = tempfile.mkdtemp(), {'TF_CPP_MIN_LOG_LEVEL': '0'}
    entries = self._synth(xdg, env_extra=user)
    self.assertLen(entries, 1)  # the renderer
    # Loading the cached step, TF logs "Error parsing text-format ..." and a
    # SIGILL warning about a tuning feature (tfunsup3d/tools/quiet_import.py):
    # the user sees neither, nor any other line of TF's C++ log.
    self.assertEqual(self._synth(xdg, env_extra=user), entries)
    self.assertNotIn('0000 00:00:', self.last.stderr)
    self.assertIn('synth train', self.last.stderr)  # the script's own lines
    self.assertEqual(self._synth(tempfile.mkdtemp(), '--xla_cache_dir=none'),
                     [])


if __name__ == '__main__':
  tf.test.main()
