"""`.pth` files that declare far more data than they hold are refused with
one line, and the loader's memory stays bounded by the file (issue 25 item 4).

Both files are built by hand (no torch). Before the fix the 270-byte file
made the loader copy a 1 GiB broadcast view, and the 1 MB zip was inflated
whole (1 GiB) and then copied.
"""

import pickle
import struct
import zipfile

import pytest

from tests import tiny
from tests.reliability import common
from tfunsup3d.convert import torch_format

# Peak resident memory of the child, MiB: tfunsup3d-convert refusing an empty
# file peaks at ~650 MiB (TensorFlow and Keras imported); the hostile files
# made the old loader allocate 1 GiB (broadcast) and 2 GiB (zip) more.
PEAK_LIMIT_MB = 900


def _atom(value):
  return pickle.dumps(value, protocol=2)[2:-1]


def _tensor_pickle(numel, size, stride):
  """Protocol-2 pickle of {'netD': {'w': tensor}} on FloatStorage '0'."""
  pid = (b'(' + _atom('storage') + b'ctorch\nFloatStorage\n' + _atom('0') +
         _atom('cpu') + _atom(numel) + b'tQ')
  tensor = (b'ctorch._utils\n_rebuild_tensor_v2\n(' + pid + _atom(0) +
            _atom(tuple(size)) + _atom(tuple(stride)) + _atom(False) +
            b'ccollections\nOrderedDict\n)R' + b'tR')
  return (b'\x80\x02}(' + _atom('netD') + b'}(' + _atom('w') + tensor +
          b'uu.')


def _broadcast_legacy(path):
  """Legacy container: one float, seen as a 16384 x 16384 tensor (1 GiB)."""
  head = b''.join(pickle.dumps(v, protocol=2) for v in (
      torch_format.LEGACY_MAGIC, torch_format.LEGACY_PROTOCOL,
      {'protocol_version': 1001, 'little_endian': True}))
  body = (_tensor_pickle(1, (16384, 16384), (0, 0)) +
          pickle.dumps(['0'], protocol=2) + struct.pack('<q', 1) +
          struct.pack('<f', 1.0))
  path.write_bytes(head + body)
  return path


def _zip_bomb(path):
  """Zip container whose storage record inflates to 1 GiB (~1 MB on disk)."""
  numel = 1 << 28  # float32: 1 GiB.
  with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as archive:
    archive.writestr('archive/data.pkl', _tensor_pickle(numel, (numel,), (1,)))
    zeros = bytes(1 << 20)
    with archive.open('archive/data/0', 'w', force_zip64=True) as record:
      for _ in range(1024):
        record.write(zeros)
  return path


@pytest.mark.parametrize('make, what', [
    (_broadcast_legacy, 'would take 1073741824 bytes'),
    (_zip_bomb, 'would inflate to 1073741824 bytes')])
def test_hostile_pth_refused_with_bounded_memory(tmp_path, make, what):
  hostile = make(tmp_path / 'hostile.pth')
  assert hostile.stat().st_size < 2 << 20
  work = tmp_path / 'cwd'
  work.mkdir()
  result = common.run('convert', f'--input={hostile}',
                      f'--output={tmp_path / "out"}', cwd=work)
  tiny.assert_one_line_error(result, 'convert', str(hostile), what)
  assert result.peak_mb < PEAK_LIMIT_MB, result.peak_mb
  assert not (tmp_path / 'out').exists()
  assert not common.listing(work)
