"""Shared test helpers: the reference fixture's location, skipping without it.

The reference fixture (the authors' PyTorch run, docs/reference_fixture.md)
is read from $TFUNSUP3D_REFERENCE_DIR, by default from `REFERENCE_DIR`, a
folder beside the repository. It is never downloaded
or made at test time: tests that need it skip with a clear reason (saying
how to get it) when it is absent.

```python
from tests import fixtures

class MyTest(tf.test.TestCase):  # Or a plain pytest class.

  def test_something(self):
    fixtures.require_reference(self)
    ref = fixtures.reference_outputs()  # {name: np.ndarray}, NCHW.
```
"""

import functools
import os
from typing import Dict

import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REFERENCE_ENV = 'TFUNSUP3D_REFERENCE_DIR'
REFERENCE_DIR = os.path.normpath(os.environ.get(REFERENCE_ENV) or os.path.join(
    REPO_ROOT, '..', 'shared', 'fixtures', 'reference'))


def reference_path(name: str) -> str:
  """Returns the path of file `name` of the reference fixture."""
  return os.path.join(REFERENCE_DIR, name)


def require_reference(testcase=None, *names: str) -> None:
  """Skips the calling test unless the reference fixture is present.

  Args:
    testcase: the running `unittest.TestCase` (or `tf.test.TestCase`), whose
      `skipTest` is called; for a plain pytest test, None or its `self`
      (then `pytest.skip` is used).
    *names: files the test needs in the fixture folder (default: the folder).
  """
  missing = [n for n in names if not os.path.exists(reference_path(n))]
  if os.path.isdir(REFERENCE_DIR) and not missing:
    return
  reason = (f'reference fixture absent: {REFERENCE_DIR}' +
            (f' lacks {", ".join(missing)}' if os.path.isdir(REFERENCE_DIR)
             else ' does not exist') +
            ' (it is never downloaded at test time; copy it there or make '
            'it as docs/reference_fixture.md says)')
  if hasattr(testcase, 'skipTest'):
    testcase.skipTest(reason)
  import pytest  # pylint: disable=g-import-not-at-top
  pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _load_npz(name: str) -> Dict[str, np.ndarray]:
  with np.load(reference_path(name)) as data:
    return {key: data[key] for key in data.files}


def reference_inputs() -> Dict[str, np.ndarray]:
  """Returns a fresh copy of `inputs.npz` as a dict (images, depth_gt, ...)."""
  return {k: v.copy() for k, v in _load_npz('inputs.npz').items()}


def reference_outputs() -> Dict[str, np.ndarray]:
  """Returns a fresh copy of `ref_outputs.npz` as a dict (NCHW, see docs/reference_fixture.md)."""
  return {k: v.copy() for k, v in _load_npz('ref_outputs.npz').items()}


def _to_nhwc(array: np.ndarray) -> np.ndarray:
  """NCHW image-like arrays -> NHWC; other arrays unchanged."""
  if array.ndim == 4 and array.shape[2] == array.shape[3] and (
      array.shape[1] != array.shape[2]):
    return np.transpose(array, (0, 2, 3, 1))
  return array


def reference_outputs_nhwc() -> Dict[str, np.ndarray]:
  """`reference_outputs()` with image-like tensors moved to NHWC (the
  layout of tfunsup3d)."""
  return {k: _to_nhwc(v) for k, v in reference_outputs().items()}
