"""scripts/venv.sh (sourced by ./quickstart.sh and ./test.sh): an
environment shared by two checkouts runs the one that sourced it last, and
says so when it re-points."""

import os
import shutil
import subprocess
import tempfile
import unittest

from tests import tiny

_FAKE_PYTHON = '#!/bin/sh\necho "$@" >> "$(dirname "$0")/../calls"\n'


class VenvScriptTest(unittest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()
    self.addCleanup(shutil.rmtree, self.tmp)
    self.venv = os.path.join(self.tmp, 'venv')
    os.makedirs(os.path.join(self.venv, 'bin'))
    python = os.path.join(self.venv, 'bin', 'python')
    with open(python, 'w') as f:  # records what pip would install
      f.write(_FAKE_PYTHON)
    os.chmod(python, 0o755)
    self.checkouts = []
    for name in ('a', 'b'):
      root = os.path.join(self.tmp, name)
      os.makedirs(os.path.join(root, 'scripts'))
      shutil.copy(os.path.join(tiny.REPO_ROOT, 'scripts', 'venv.sh'),
                  os.path.join(root, 'scripts'))
      open(os.path.join(root, 'pyproject.toml'), 'w').close()
      self.checkouts.append(root)

  def _source(self, root):
    """Sources venv.sh in `root`; returns (stderr, pip installs so far)."""
    proc = subprocess.run(['bash', '-c', 'source scripts/venv.sh'], cwd=root,
                          env=dict(os.environ, TFUNSUP3D_VENV=self.venv),
                          capture_output=True, text=True, timeout=60)
    self.assertEqual(proc.returncode, 0, proc.stderr)
    with open(os.path.join(self.venv, 'calls')) as f:
      return proc.stderr, f.read().count('pip install -e')

  def test_a_shared_environment_follows_the_checkout(self):
    a, b = self.checkouts
    _, installs = self._source(a)
    self.assertEqual(installs, 1)
    _, installs = self._source(a)
    self.assertEqual(installs, 1)  # up to date: nothing installed
    err, installs = self._source(b)
    self.assertEqual(installs, 2)
    self.assertIn(f'ran the checkout {os.path.realpath(a)}; re-pointing it '
                  f'at {os.path.realpath(b)}', err)
    _, installs = self._source(a)  # back: re-pointed again, not left on b
    self.assertEqual(installs, 3)


if __name__ == '__main__':
  unittest.main()
