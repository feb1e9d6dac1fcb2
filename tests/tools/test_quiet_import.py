"""Tests for tfunsup3d.tools.quiet_import, and the console scripts' stderr:
one line on an error, with no TensorFlow start-up notices, and no
TensorFlow loaded at all when a path is plainly missing."""

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from tfunsup3d.tools import quiet_import

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

# Lines TensorFlow 2.21 wrote on this project's CPU machines at import.
NOTICES = [
    'WARNING: All log messages before absl::InitializeLog() is called are '
    'written to STDERR',
    'I0000 00:00:1796528745.497682   30981 port.cc:153] oneDNN custom '
    'operations are on.',
    'I0000 00:00:1796528745.498032   30981 cudart_stub.cc:31] Could not find '
    'cuda drivers on your machine, GPU will not be used.',
    'To enable the following instructions: AVX2 AVX512F FMA, in other '
    'operations, rebuild TensorFlow with the appropriate compiler flags.',
    'E0000 00:00:1796528748.818310   30981 cuda_platform.cc:52] failed call '
    'to cuInit: INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR '
    '(303)',
    'W0000 00:00:1796528748.818310   30981 some.cc:1] a warning',
    # A step loaded from the persistent compile cache (tfunsup3d/compile_cache.py).
    'E0000 00:00:1796676959.248500    9040 text_format.cc:378] Error parsing '
    'text-format tensorflow.XlaSerializedCacheEntry: 2:1: Expected '
    'identifier, got: 5',
    'E0000 00:00:1796676959.270046    9040 cpu_aot_loader.cc:220] Loading '
    'XLA:CPU AOT result. Target machine feature +prefer-no-scatter is not  '
    'supported on the host machine. ... could lead to execution errors such '
    'as SIGILL.',
]


def test_notices_are_recognised_and_other_lines_are_not():
  assert all(quiet_import.is_notice(line) for line in NOTICES)
  for line in ('E0000 00:00:1.0   1 op_kernel.cc:1] OOM when allocating',
               'E0000 00:00:1.0   1 cpu_aot_loader.cc:220] Loading XLA:CPU AOT '
               'result. Target machine feature +avx512f is not supported',
               'F0000 00:00:1.0   1 x.cc:1] Check failed',
               'UserWarning: something', 'tfunsup3d-train: error: x',
               'Traceback (most recent call last):', '  I0000 indented', ''):
    assert not quiet_import.is_notice(line), line


def _python(code, cwd):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, cwd]))
  return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                        cwd=cwd, env=env, capture_output=True, text=True,
                        timeout=120, check=False)


def _noisy_module(directory, body=''):
  """A module `noisy` that writes notices and two kept lines to fd 2 (one
  from C-level writes, one a Python warning) when imported; its NOTICES are
  all of NOTICES, one per line."""
  lines = '\n'.join(NOTICES[:3] + ['kept: an error TensorFlow reports'])
  with open(os.path.join(directory, 'noisy.py'), 'w', encoding='utf-8') as f:
    f.write(textwrap.dedent(f'''\
        import os, warnings
        NOTICES = {''.join(line + chr(10) for line in NOTICES)!r}
        os.write(2, {lines + chr(10)!r}.encode())
        warnings.warn('kept: a Python warning')
        {body}
        '''))


def test_held_back_keeps_all_but_the_notices_and_restores_stderr():
  with tempfile.TemporaryDirectory() as tmp:
    _noisy_module(tmp)
    proc = _python('''
        import importlib.machinery, os, sys
        from tfunsup3d.tools import quiet_import
        calls = []
        stderr = sys.stderr
        with quiet_import.held_back('noisy', after=calls.append):
          os.write(2, b'before the import\\n')  # not held: no import yet
          import noisy
          import noisy  # the second import is plain
          # The runtime's lines after the import are filtered too.
          os.write(2, noisy.NOTICES.encode() + b'kept: a later error\\n')
          assert sys.stderr is not stderr
        print('after the block', file=sys.stderr)
        assert sys.stderr is stderr
        assert [m.__name__ for m in calls] == ['noisy'], calls
        assert isinstance(noisy.__loader__,
                          importlib.machinery.SourceFileLoader)
        assert noisy.__spec__.loader is noisy.__loader__
        assert not any(isinstance(f, quiet_import._Finder)
                       for f in sys.meta_path)
        ''', tmp)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == 'before the import', lines
    assert lines[-1] == 'after the block', lines  # the filter wrote all first
    assert 'kept: an error TensorFlow reports' in lines
    assert 'kept: a later error' in lines
    assert any('kept: a Python warning' in line for line in lines)
    assert not any(quiet_import.is_notice(line) for line in lines), lines
    assert len(lines) == 6, lines  # the warning is two lines (source line)


def test_python_writes_to_a_terminal_still_see_a_terminal():
  # Progress bars ask sys.stderr.isatty(): the filter must not hide the tty.
  import pty  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as tmp:
    _noisy_module(tmp)
    leader, follower = pty.openpty()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT, tmp]))
    code = textwrap.dedent('''
        import sys
        from tfunsup3d.tools import quiet_import
        with quiet_import.held_back('noisy', after=lambda m: None):
          import noisy
          print('tty:', sys.stderr.isatty(), file=sys.stderr, flush=True)
        ''')
    proc = subprocess.run([sys.executable, '-c', code], cwd=tmp, env=env,
                          stderr=follower, stdout=subprocess.PIPE, text=True,
                          timeout=120, check=False)
    os.close(follower)
    written = b''
    while True:
      try:
        chunk = os.read(leader, 65536)
      except OSError:  # EIO: nothing more on this pty
        break
      if not chunk:
        break
      written += chunk
    os.close(leader)
  assert proc.returncode == 0, written
  assert b'tty: True' in written, written
  assert b'I0000' not in written, written


def test_what_is_written_before_a_crash_is_kept():
  # TF's fatal checks write a line, then abort: the filter still writes it.
  with tempfile.TemporaryDirectory() as tmp:
    _noisy_module(tmp)
    proc = _python('''
        import os
        from tfunsup3d.tools import quiet_import
        with quiet_import.held_back('noisy', after=lambda m: None):
          import noisy
          os.write(2, b'F0000 00:00:1.0   1 x.cc:1] Check failed: x\\n')
          os.abort()
        ''', tmp)
  assert proc.returncode != 0
  assert 'F0000 00:00:1.0   1 x.cc:1] Check failed: x' in proc.stderr
  assert 'I0000' not in proc.stderr, proc.stderr


def test_an_import_that_fails_still_reports_what_it_wrote():
  with tempfile.TemporaryDirectory() as tmp:
    _noisy_module(tmp, body="raise RuntimeError('broken install')")
    proc = _python('''
        import sys
        from tfunsup3d.tools import quiet_import
        try:
          with quiet_import.held_back('noisy', after=lambda m: None):
            import noisy
        except RuntimeError as e:
          print('caught', e, file=sys.stderr)
        ''', tmp)
    assert proc.returncode == 0, proc.stderr
    assert 'kept: an error TensorFlow reports' in proc.stderr
    assert proc.stderr.splitlines()[-1] == 'caught broken install'
    assert 'I0000' not in proc.stderr


def test_without_a_filter_process_nothing_is_held():
  # No process to start: the import goes on and its lines go through.
  with tempfile.TemporaryDirectory() as tmp:
    _noisy_module(tmp)
    proc = _python('''
        import subprocess, sys
        from tfunsup3d.tools import quiet_import
        def refused(*args, **kwargs):
          raise OSError(11, 'Resource temporarily unavailable')
        subprocess.Popen = refused
        stderr = sys.stderr
        with quiet_import.held_back('noisy', after=lambda m: None):
          import noisy
          assert sys.stderr is stderr
        print('imported')
        ''', tmp)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'imported'
    assert 'I0000' in proc.stderr and 'kept: an error' in proc.stderr


def test_an_imported_module_is_left_alone():
  proc = _python('''
      import sys
      from tfunsup3d.tools import quiet_import
      with quiet_import.held_back('os'):
        import os
      assert not any(isinstance(f, quiet_import._Finder) for f in sys.meta_path)
      ''', ROOT)
  assert proc.returncode == 0, proc.stderr


# --- the console scripts ------------------------------------------------------


def _script(name, *args, env_extra=None):
  """Runs `tfunsup3d-<name>` as its entry point does, printing after exit
  whether TensorFlow was loaded; TF's own log settings left at defaults."""
  code = ('import atexit, sys\n'
          'atexit.register(lambda: print("tensorflow loaded:", '
          '"tensorflow" in sys.modules))\n'
          f'from tfunsup3d.tools.{name} import run\n'
          f'sys.argv[0] = "tfunsup3d-{name}"\nrun()\n')
  env = dict(os.environ, PYTHONPATH=ROOT, **(env_extra or {}))
  for key in ('TFUNSUP3D_DEBUG', 'TF_CPP_MIN_LOG_LEVEL'):
    if key not in (env_extra or {}):
      env.pop(key, None)
  return subprocess.run([sys.executable, '-c', code, *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300,
                        check=False)


@pytest.mark.parametrize('name,args,names', [
    ('export', ['--checkpoint=/no/such/ckpt'], '/no/such/ckpt'),
    ('convert', ['--input=/no/such.pth', '--output=/tmp/x.pth'],
     '/no/such.pth'),
    ('test', ['--checkpoint_dir=/no/such/run'], '/no/such/run'),
    ('test', ['--checkpoint_dir=/tmp', '--checkpoint_name=no-ckpt-7'],
     '/tmp/no-ckpt-7'),
    ('train', ['--train_val_data_dir=/no/such/data'], '/no/such/data/train'),
    ('test', ['--checkpoint_dir=/tmp', '--test_data_dir=/no/such/test'],
     '/no/such/test'),
])
def test_a_missing_path_fails_in_one_line_before_tensorflow_loads(
    name, args, names):
  proc = _script(name, *args)
  assert proc.returncode == 2, proc.stderr
  assert proc.stderr.count('\n') == 1, proc.stderr
  assert proc.stderr.startswith(f'tfunsup3d-{name}: error: ')
  assert names in proc.stderr
  assert 'tensorflow loaded: False' in proc.stdout, proc.stdout


def test_an_error_after_tensorflow_loads_is_still_one_line():
  with tempfile.TemporaryDirectory() as tmp:
    bad = os.path.join(tmp, 'bad.pth')
    with open(bad, 'wb') as f:
      f.write(b'not a checkpoint')
    proc = _script('export', f'--checkpoint={bad}')
    assert proc.returncode == 2, proc.stderr
    assert 'tensorflow loaded: True' in proc.stdout, proc.stdout
    assert proc.stderr.count('\n') == 1, proc.stderr
    assert proc.stderr.startswith('tfunsup3d-export: error: ')
    # TFUNSUP3D_DEBUG shows everything: the traceback (and the notices).
    proc = _script('export', f'--checkpoint={bad}',
                   env_extra={'TFUNSUP3D_DEBUG': '1'})
    assert 'Traceback' in proc.stderr
