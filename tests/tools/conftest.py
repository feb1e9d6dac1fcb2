"""Fixtures of the console-script tests: a scratch directory per test module
and a tiny model's checkpoint in it."""

import os
import shutil
import tempfile

import pytest

from tests import tiny


@pytest.fixture(scope='module')
def workdir(request):
  name = request.module.__name__.rsplit('.', 1)[-1]
  path = tempfile.mkdtemp(prefix=f'tfunsup3d-{name}-')
  yield path
  shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope='module')
def checkpoint(workdir):  # pylint: disable=redefined-outer-name
  return tiny.write_checkpoint(tiny.tiny_model(),
                               os.path.join(workdir, 'ckpt'))
