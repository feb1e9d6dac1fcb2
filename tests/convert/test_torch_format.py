"""Tests for tfunsup3d.convert.torch_format (torch checkpoints without torch).

Fixture tests read the authors' real files (docs/reference_fixture.md)
(skipped when absent). The writer was cross-checked once, out of band, against
real `torch.load(weights_only=True)`; torch is never imported here.
"""

import collections
import os
import pickle
import pickletools
import struct
import subprocess
import sys
import types
import zipfile

import ml_dtypes
import numpy as np
import pytest

from tests import fixtures
from tfunsup3d.convert import torch_format

LEGACY = 'ckpt_legacy_trainer.pth'
ZIP = 'ckpt_zip.pth'
VGG = 'vgg16_features.pth'
NETS = ('netD', 'netA', 'netL', 'netV', 'netC')


def _reference(test, name):
  fixtures.require_reference(test, name)
  return fixtures.reference_path(name)


def _assert_same(got, want, where='obj'):
  """Asserts equal structure, types, dtypes and bits."""
  if isinstance(want, np.ndarray):
    assert isinstance(got, np.ndarray), where
    assert got.dtype == want.dtype.newbyteorder('='), where
    assert got.shape == want.shape, where
    assert got.flags.c_contiguous, where
    want = np.ascontiguousarray(want, got.dtype)
    assert got.tobytes() == want.tobytes(), where
  elif isinstance(want, dict):
    assert type(got) is type(want), where
    assert list(got) == list(want), where
    for key in want:
      _assert_same(got[key], want[key], f'{where}[{key!r}]')
  elif isinstance(want, (list, tuple)):
    assert type(got) is type(want) and len(got) == len(want), where
    for i, (g, w) in enumerate(zip(got, want)):
      _assert_same(g, w, f'{where}[{i}]')
  else:
    assert type(got) is type(want) and got == want, where


# --- hand-made containers -----------------------------------------------------


def _atom(value):
  """Pickle opcodes of one value (PROTO and STOP stripped)."""
  return pickle.dumps(value, protocol=2)[2:-1]


def _tensor_pickle(numel, size, stride, offset=0, storage='FloatStorage',
                   view=None):
  """data.pkl of one tensor: _rebuild_tensor_v2 on storage '0'."""
  pid = (b'(' + _atom('storage') + f'ctorch\n{storage}\n'.encode() +
         _atom('0') + _atom('cpu') + _atom(numel) +
         (_atom(view) if view else b'') + b'tQ')
  return (b'\x80\x02ctorch._utils\n_rebuild_tensor_v2\n(' + pid +
          _atom(offset) + _atom(tuple(size)) + _atom(tuple(stride)) +
          _atom(False) + b'ccollections\nOrderedDict\n)R' + b'tR.')


def _write_zip(path, data_pkl, records=None):
  with zipfile.ZipFile(path, 'w') as archive:
    archive.writestr('archive/data.pkl', data_pkl)
    for key, raw in (records or {}).items():
      archive.writestr(f'archive/data/{key}', raw)
    archive.writestr('archive/version', b'3\n')
  return str(path)


def _write_legacy(path, object_pkl, storages=(), magic=None, keys_pkl=None):
  """Legacy container; `storages` is a list of (key, element count, bytes)."""
  head = [pickle.dumps(torch_format.LEGACY_MAGIC if magic is None else magic,
                       protocol=2),
          pickle.dumps(torch_format.LEGACY_PROTOCOL, protocol=2),
          pickle.dumps({'protocol_version': 1001, 'little_endian': True,
                        'type_sizes': {'short': 2, 'int': 4, 'long': 4}},
                       protocol=2),
          object_pkl,
          keys_pkl or pickle.dumps([k for k, _, _ in storages], protocol=2)]
  body = [struct.pack('<q', count) + raw for _, count, raw in storages]
  with open(path, 'wb') as f:
    f.write(b''.join(head + body))
  return str(path)


# --- the reference's real files -----------------------------------------------


class TestReferenceFiles:

  def test_legacy_trainer_checkpoint(self):
    ckpt = torch_format.load(_reference(self, LEGACY))
    assert set(ckpt) == set(NETS) | {f'optimizer{n[3]}' for n in NETS} | {
        'epoch', 'metrics_trace'}
    assert ckpt['epoch'] == 1
    trace = ckpt['metrics_trace']
    assert isinstance(trace, torch_format.SkippedObject)
    assert trace.qualname == 'unsup3d.meters.MetricsTrace'
    assert isinstance(ckpt['netD'], collections.OrderedDict)
    for name, shape in (('netL', (8, 3, 4, 4)), ('netV', (8, 3, 4, 4)),
                        ('netD', (16, 3, 4, 4)), ('netA', (16, 3, 4, 4)),
                        ('netC', (16, 3, 4, 4))):
      weight = ckpt[name]['network.0.weight']
      assert weight.shape == shape and weight.dtype == np.float32, name
    assert ckpt['netL']['network.10.weight'].shape == (4, 64, 1, 1)
    assert ckpt['netV']['network.10.weight'].shape == (6, 64, 1, 1)
    assert ckpt['netD']['network.11.weight'].shape == (64, 128, 4, 4)  # zdim
    assert ckpt['netD']['network.42.weight'].shape == (1, 16, 5, 5)
    assert ckpt['netA']['network.42.weight'].shape == (3, 16, 5, 5)
    assert ckpt['netC']['network.11.weight'].shape == (32, 128, 4, 4)
    assert ckpt['netC']['out_net1.6.weight'].shape == (2, 16, 5, 5)
    assert ckpt['netC']['out_net2.0.weight'].shape == (2, 32, 3, 3)
    assert all(np.all(np.isfinite(v)) for v in ckpt['netD'].values())
    # The optimizer states load too: Adam moments shaped like the weights.
    adam = ckpt['optimizerD']
    assert adam['param_groups'][0]['lr'] == pytest.approx(1e-4)
    assert adam['param_groups'][0]['betas'] == (0.9, 0.999)
    assert adam['state'][0]['exp_avg'].shape == (16, 3, 4, 4)

  def test_zip_checkpoint_equals_legacy_bitwise(self):
    legacy = torch_format.load(_reference(self, LEGACY))
    clean = torch_format.load(_reference(self, ZIP))
    assert set(clean) == set(NETS)
    for name in NETS:
      _assert_same(clean[name], legacy[name], name)

  @pytest.mark.parametrize('name', [LEGACY, ZIP])
  def test_load_state_dicts_of_reference_checkpoints(self, name):
    states = torch_format.load_state_dicts(_reference(self, name))
    assert list(states) == list(NETS)
    for state in states.values():  # Plain dicts.
      assert not isinstance(state, collections.OrderedDict)
    assert states['netL']['network.0.weight'].shape == (8, 3, 4, 4)

  def test_vgg16_features(self):
    states = torch_format.load_state_dicts(_reference(self, VGG))
    assert list(states) == ['']
    vgg = states['']
    layers = (0, 2, 5, 7, 10, 12, 14)
    assert list(vgg) == [f'features.{i}.{p}' for i in layers
                         for p in ('weight', 'bias')]
    cins, couts = (3, 64, 64, 128, 128, 256, 256), (64, 64, 128, 128, 256,
                                                    256, 256)
    for i, cin, cout in zip(layers, cins, couts):
      assert vgg[f'features.{i}.weight'].shape == (cout, cin, 3, 3)
      assert vgg[f'features.{i}.bias'].shape == (cout,)
      assert vgg[f'features.{i}.weight'].dtype == np.float32

  def test_reference_class_refused_without_skip_unknown(self):
    with pytest.raises(torch_format.UnsafeCheckpointError,
                       match=r"'unsup3d\.meters\.MetricsTrace'.*skip_unknown"):
      torch_format.load(_reference(self, LEGACY), skip_unknown=False)

  def test_loads_with_torch_and_unsup3d_unimportable(self):
    path = _reference(self, LEGACY)
    script = (
        'import sys\n'
        'class Block:\n'
        '  def find_spec(self, name, path=None, target=None):\n'
        '    if name.split(".")[0] in ("torch", "unsup3d"):\n'
        '      raise ImportError("blocked: " + name)\n'
        'sys.meta_path.insert(0, Block())\n'
        'from tfunsup3d.convert import torch_format\n'
        f'ckpt = torch_format.load({path!r})\n'
        'assert ckpt["netL"]["network.0.weight"].shape == (8, 3, 4, 4)\n'
        'assert not [m for m in sys.modules if m.split(".")[0] in '
        '("torch", "unsup3d")]\n'
        'print("ok")\n')
    result = subprocess.run([sys.executable, '-c', script], capture_output=True,
                            text=True, check=False, timeout=120,
                            cwd=fixtures.REPO_ROOT)
    assert result.returncode == 0 and 'ok' in result.stdout, result.stderr


# --- writer -------------------------------------------------------------------


def _nested(rng):
  grid = rng.normal(size=(4, 5, 6)).astype(np.float32)
  return {
      'netD': collections.OrderedDict([
          ('network.0.weight', rng.normal(size=(16, 3, 4, 4)).astype(
              np.float32)),
          ('transposed', grid.transpose(2, 0, 1)),
          ('strided', grid[1:, ::2, ::-3]),
          ('fortran', np.asfortranarray(rng.normal(size=(3, 7)))),
      ]),
      'dtypes': {d: (rng.normal(size=(3, 2)) * 50).astype(d) for d in (
          'float64', 'float32', 'float16', 'int64', 'int32', 'int16', 'int8',
          'uint8', 'bool')},
      'bfloat16': rng.normal(size=(2, 3)).astype(ml_dtypes.bfloat16),
      'big_endian': np.arange(12, dtype='>i4').reshape(3, 4).T,
      'scalar': np.array(2.5, np.float64),
      'empty': np.zeros((0, 3, 2), np.float32),
      'deep': {'list': [np.arange(3), {'x': np.ones(1, bool)}],
               'tuple': (1, -2, 2**40, -2**70, 1.5, 'ü', None, True, False)},
      'epoch': 30, 'lr': 1e-4, 'name': 'netD', 'none': None, 7: 'int key',
      'empty_dict': {}, 'empty_list': [], 'empty_tuple': (),
  }


class TestSave:

  def test_round_trip_is_bitwise(self, tmp_path):
    obj = _nested(np.random.default_rng(0))
    torch_format.save(obj, tmp_path / 'a.pth')
    _assert_same(torch_format.load(tmp_path / 'a.pth'), obj)

  def test_numpy_scalars_saved_as_python_numbers(self, tmp_path):
    torch_format.save({'e': np.int64(3), 'f': np.float32(0.5)},
                      tmp_path / 'a.pth')
    _assert_same(torch_format.load(tmp_path / 'a.pth'), {'e': 3, 'f': 0.5})

  def test_round_trip_of_reference_nets(self, tmp_path):
    states = torch_format.load_state_dicts(_reference(self, ZIP))
    torch_format.save(states, tmp_path / 'nets.pth')
    _assert_same(torch_format.load_state_dicts(tmp_path / 'nets.pth'), states)

  def test_container_layout_is_torchs(self, tmp_path):
    torch_format.save({'a': np.ones((2, 3), np.float32), 'b': np.arange(5)},
                      tmp_path / 'a.pth')
    raw = (tmp_path / 'a.pth').read_bytes()
    with zipfile.ZipFile(tmp_path / 'a.pth') as archive:
      infos = archive.infolist()
      assert [i.filename for i in infos] == [
          'archive/data.pkl', 'archive/byteorder', 'archive/data/0',
          'archive/data/1', 'archive/version']
      assert archive.read('archive/version') == b'3\n'
      assert archive.read('archive/byteorder') == b'little'
      assert archive.read('archive/data/1') == np.arange(5).astype(
          '<i8').tobytes()
      data_pkl = archive.read('archive/data.pkl')
    for info in infos:  # Stored, data 64-byte aligned (as torch writes).
      assert info.compress_type == zipfile.ZIP_STORED
      name_len, extra_len = struct.unpack(
          '<HH', raw[info.header_offset + 26:info.header_offset + 30])
      assert (info.header_offset + 30 + name_len + extra_len) % 64 == 0
    assert data_pkl[:2] == b'\x80\x02'
    globals_ = {arg for op, arg, _ in pickletools.genops(data_pkl)
                if op.name == 'GLOBAL'}
    assert globals_ == {'torch._utils _rebuild_tensor_v2',
                        'torch FloatStorage', 'torch LongStorage',
                        'collections OrderedDict'}

  @pytest.mark.parametrize('bad', [
      {'s': {1, 2}}, {'b': b'bytes'}, {'o': object()},
      {'c': np.ones(2, np.complex64)}, {'u': np.ones(2, np.uint16)},
      {(1, 2): np.ones(1)}, {'i': 2**3000}])
  def test_unsupported_values_raise_and_write_nothing(self, tmp_path, bad):
    with pytest.raises(TypeError, match='cannot save'):
      torch_format.save(bad, tmp_path / 'x.pth')
    assert not (tmp_path / 'x.pth').exists()


# --- tensor geometry, storages ------------------------------------------------


class TestStorages:

  def test_offset_and_strides_follow_torch(self, tmp_path):
    storage = np.arange(20, dtype=np.float32)
    path = _write_zip(tmp_path / 'a.pth',
                      _tensor_pickle(20, (3, 2), (1, 5), offset=2),
                      {'0': storage.tobytes()})
    got = torch_format.load(path)
    want = np.array([[storage[2 + i + 5 * j] for j in range(2)]
                     for i in range(3)], np.float32)
    _assert_same(got, want)

  def test_storage_types_give_dtypes(self, tmp_path):
    for storage, dtype in (('DoubleStorage', np.float64),
                           ('HalfStorage', np.float16),
                           ('LongStorage', np.int64), ('IntStorage', np.int32),
                           ('ShortStorage', np.int16), ('CharStorage', np.int8),
                           ('ByteStorage', np.uint8), ('BoolStorage', np.bool_),
                           ('BFloat16Storage', ml_dtypes.bfloat16)):
      want = np.arange(6).astype(dtype)
      path = _write_zip(tmp_path / f'{storage}.pth',
                        _tensor_pickle(6, (2, 3), (3, 1), storage=storage),
                        {'0': want.tobytes()})
      _assert_same(torch_format.load(path), want.reshape(2, 3))

  def test_legacy_storage_view(self, tmp_path):
    storage = np.arange(10, dtype=np.float32)
    path = _write_legacy(
        tmp_path / 'a.pth',
        _tensor_pickle(10, (2, 2), (2, 1), offset=1, view=('v', 4, 5)),
        [('0', 10, storage.tobytes())])
    _assert_same(torch_format.load(path), np.array([[5, 6], [7, 8]],
                                                   np.float32))

  @pytest.mark.parametrize('numel,size,stride,offset,match', [
      (4, (10,), (1,), 0, 'reaches element 10'),
      (12, (3, 4), (4, 1), 1, 'reaches element 13'),
      (12, (3,), (-1,), 2, 'bad tensor'),
      (12, (3,), (1, 1), 0, 'bad tensor'),
      (12, (-3,), (1,), 0, 'bad tensor'),
      (12, (3,), (1,), -1, 'bad tensor')])
  def test_out_of_bounds_geometry_refused(self, tmp_path, numel, size, stride,
                                          offset, match):
    raw = np.zeros(numel, np.float32).tobytes()
    path = _write_zip(tmp_path / 'a.pth',
                      _tensor_pickle(numel, size, stride, offset), {'0': raw})
    with pytest.raises(torch_format.CheckpointFormatError, match=match):
      torch_format.load(path)

  def test_out_of_bounds_storage_view_refused(self, tmp_path):
    path = _write_legacy(
        tmp_path / 'a.pth', _tensor_pickle(10, (2,), (1,), view=('v', 8, 5)),
        [('0', 10, np.zeros(10, np.float32).tobytes())])
    with pytest.raises(torch_format.CheckpointFormatError, match='bad view'):
      torch_format.load(path)

  def test_zip_storage_shorter_than_declared(self, tmp_path):
    path = _write_zip(tmp_path / 'a.pth', _tensor_pickle(12, (12,), (1,)),
                      {'0': np.zeros(11, np.float32).tobytes()})
    with pytest.raises(torch_format.CheckpointFormatError,
                       match=r'a\.pth.*holds 44 bytes'):
      torch_format.load(path)

  def test_zip_storage_record_missing(self, tmp_path):
    path = _write_zip(tmp_path / 'a.pth', _tensor_pickle(12, (12,), (1,)))
    with pytest.raises(torch_format.CheckpointFormatError,
                       match="'archive/data/0' is missing"):
      torch_format.load(path)

  def test_legacy_count_differs_from_declared(self, tmp_path):
    path = _write_legacy(tmp_path / 'a.pth', _tensor_pickle(12, (12,), (1,)),
                         [('0', 11, np.zeros(12, np.float32).tobytes())])
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='declares 12 elements but holds 11'):
      torch_format.load(path)

  def test_legacy_storage_bytes_missing(self, tmp_path):
    path = _write_legacy(tmp_path / 'a.pth', _tensor_pickle(12, (12,), (1,)),
                         [('0', 12, np.zeros(11, np.float32).tobytes())])
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='truncated: storage .0. needs 56 bytes, 52'):
      torch_format.load(path)

  def test_legacy_key_list_must_match(self, tmp_path):
    path = _write_legacy(tmp_path / 'a.pth', _tensor_pickle(3, (3,), (1,)),
                         [('0', 3, bytes(12))],
                         keys_pkl=pickle.dumps(['0', '1'], protocol=2))
    with pytest.raises(torch_format.CheckpointFormatError, match='key list'):
      torch_format.load(path)


# --- hostile pickles ----------------------------------------------------------


class _Call:
  """Pickles as a call of `function(*args)`, like a malicious checkpoint."""

  def __init__(self, function, *args):
    self.function, self.args = function, args

  def __reduce__(self):
    return self.function, self.args


def _payloads(marker):
  command = f'touch {marker}'
  return {
      'posix.system': _Call(os.system, command),
      'builtins.eval': _Call(eval, f'__import__("os").system({command!r})'),
      'builtins.exec': _Call(exec, f'open({str(marker)!r}, "w")'),
      'subprocess.Popen': _Call(subprocess.Popen, ['touch', str(marker)]),
      'builtins.getattr': _Call(getattr, collections.OrderedDict, 'fromkeys'),
  }


def _containers(tmp_path, payload_pkl):
  yield 'zip', _write_zip(tmp_path / 'evil_zip.pth', payload_pkl)
  yield 'legacy object', _write_legacy(tmp_path / 'evil_legacy.pth',
                                       payload_pkl)
  yield 'legacy magic', _write_legacy(tmp_path / 'evil_magic.pth',
                                      pickle.dumps({}, protocol=2),
                                      magic=_Call(eval, '1'))
  yield 'legacy keys', _write_legacy(tmp_path / 'evil_keys.pth',
                                     pickle.dumps({}, protocol=2),
                                     keys_pkl=payload_pkl)


class TestHostilePickles:

  @pytest.mark.parametrize('protocol', [0, 2, 4])
  @pytest.mark.parametrize('name', ['posix.system', 'builtins.eval',
                                    'builtins.exec', 'subprocess.Popen',
                                    'builtins.getattr'])
  def test_dangerous_globals_refused_and_not_run(self, tmp_path, name,
                                                 protocol):
    marker = tmp_path / 'pwned'
    payload = _payloads(marker)[name]
    for nested in (payload, {'netD': collections.OrderedDict(w=payload)}):
      payload_pkl = pickle.dumps(nested, protocol=protocol, fix_imports=False)
      for container, path in _containers(tmp_path, payload_pkl):
        with pytest.raises(torch_format.UnsafeCheckpointError) as error:
          torch_format.load(path)
        # The magic's pickle keeps Python 2 names (fix_imports=True).
        refused = '__builtin__.eval' if container == 'legacy magic' else name
        assert f"refusing to load global '{refused}'" in str(error.value), (
            container)
        assert path in str(error.value)
        assert not marker.exists(), container

  def test_reference_class_calls_are_inert(self, tmp_path, monkeypatch):
    calls = []
    module = types.ModuleType('unsup3d.evil_hook')

    def run(*args):
      calls.append(args)

    class Meter:

      def __setstate__(self, state):
        calls.append(state)

    run.__module__ = Meter.__module__ = module.__name__
    run.__qualname__, Meter.__qualname__ = 'run', 'Meter'
    module.run, module.Meter = run, Meter
    monkeypatch.setitem(sys.modules, 'unsup3d', types.ModuleType('unsup3d'))
    monkeypatch.setitem(sys.modules, 'unsup3d.evil_hook', module)
    meter = Meter()
    meter.history = [1, 2]
    payload_pkl = pickle.dumps({'a': _Call(run, 'rm -rf /'), 'm': meter,
                                }, protocol=2)
    for container, path in list(_containers(tmp_path, payload_pkl))[:2]:
      loaded = torch_format.load(path)
      assert isinstance(loaded['a'], torch_format.SkippedObject), container
      assert loaded['a'].qualname == 'unsup3d.evil_hook.run'
      assert loaded['m'].qualname == 'unsup3d.evil_hook.Meter'
      assert not hasattr(loaded['m'], 'history')
      with pytest.raises(torch_format.UnsafeCheckpointError,
                         match="'unsup3d.evil_hook.run'"):
        torch_format.load(path, skip_unknown=False)
    assert not calls

  def test_lookalike_module_prefix_not_skipped(self, tmp_path):
    payload = b'\x80\x02cunsup3dx.meters\nMetricsTrace\n)R.'
    with pytest.raises(torch_format.UnsafeCheckpointError,
                       match="'unsup3dx.meters.MetricsTrace'"):
      torch_format.load(_write_zip(tmp_path / 'a.pth', payload))

  def test_numpy_reconstruction_refused(self, tmp_path):
    payload_pkl = pickle.dumps({'w': np.ones(3)}, protocol=2)
    with pytest.raises(torch_format.UnsafeCheckpointError, match='numpy'):
      torch_format.load(_write_zip(tmp_path / 'a.pth', payload_pkl))

  @pytest.mark.parametrize('state', [
      b'}(X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00Ou',  # dict state
      b'N}(X\x05\x00\x00\x00dtypeX\x01\x00\x00\x00Ou\x86'])  # slot state
  def test_build_cannot_tamper_with_storage_types(self, tmp_path, state):
    payload = b'\x80\x02ctorch\nFloatStorage\n' + state + b'b.'
    with pytest.raises(torch_format.CheckpointFormatError):
      torch_format.load(_write_zip(tmp_path / 'evil.pth', payload))
    path = _write_zip(tmp_path / 'ok.pth', _tensor_pickle(2, (2,), (1,)),
                      {'0': np.ones(2, np.float32).tobytes()})
    _assert_same(torch_format.load(path), np.ones(2, np.float32))

  def test_bad_persistent_id_refused(self, tmp_path):
    payload = b'\x80\x02(X\x07\x00\x00\x00storageK\x01tQ.'
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='persistent id'):
      torch_format.load(_write_zip(tmp_path / 'a.pth', payload))


# --- missing, empty, truncated, foreign files ---------------------------------


def _cuts(size):
  return sorted({1, 2, 10, 16, 40, 100, 1000, size // 3, size // 2,
                 size - 100, size - 23, size - 1} & set(range(1, size)))


class TestCorruptFiles:

  def test_missing_file(self, tmp_path):
    path = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
      torch_format.load(path)
    with pytest.raises(FileNotFoundError):
      torch_format.load_state_dicts(path)

  def test_empty_file(self, tmp_path):
    (tmp_path / 'e.pth').write_bytes(b'')
    with pytest.raises(torch_format.CheckpointFormatError,
                       match=r'e\.pth.*empty'):
      torch_format.load(tmp_path / 'e.pth')

  @pytest.mark.parametrize('prefix', [b'', b'\x80', b'\x80\x02', b'PK\x03\x04'])
  def test_random_bytes(self, tmp_path, prefix):
    rng = np.random.default_rng(len(prefix))
    for i in range(20):
      path = tmp_path / f'r{i}.pth'
      path.write_bytes(prefix + rng.bytes(int(rng.integers(1, 3000))))
      with pytest.raises(torch_format.CheckpointFormatError, match='r%d' % i):
        torch_format.load(path)

  def test_not_a_torch_file(self, tmp_path):
    (tmp_path / 't.pth').write_text('hello world\n')
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='neither a zip nor a legacy'):
      torch_format.load(tmp_path / 't.pth')
    with zipfile.ZipFile(tmp_path / 'z.pth', 'w') as archive:
      archive.writestr('foo/bar.txt', 'x')
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='without data.pkl'):
      torch_format.load(tmp_path / 'z.pth')
    (tmp_path / 'p.pth').write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(torch_format.CheckpointFormatError,
                       match='bad magic number'):
      torch_format.load(tmp_path / 'p.pth')

  def test_no_state_dict(self, tmp_path):
    torch_format.save({'epoch': 3, 'opt': {'lr': 0.1}}, tmp_path / 'a.pth')
    with pytest.raises(torch_format.CheckpointFormatError, match='no state'):
      torch_format.load_state_dicts(tmp_path / 'a.pth')

  def test_truncated_own_files(self, tmp_path):
    obj = _nested(np.random.default_rng(1))
    torch_format.save(obj, tmp_path / 'full.pth')
    zip_raw = (tmp_path / 'full.pth').read_bytes()
    legacy_raw = (pickle.dumps(torch_format.LEGACY_MAGIC, protocol=2) +
                  pickle.dumps(1001, protocol=2) + pickle.dumps({}, protocol=2)
                  + _tensor_pickle(40, (5, 8), (8, 1)) +
                  pickle.dumps(['0'], protocol=2) + struct.pack('<q', 40) +
                  np.ones(40, np.float32).tobytes())
    (tmp_path / 'full_legacy.pth').write_bytes(legacy_raw)
    _assert_same(torch_format.load(tmp_path / 'full_legacy.pth'),
                 np.ones((5, 8), np.float32))
    for raw in (zip_raw, legacy_raw):
      for cut in _cuts(len(raw)):
        (tmp_path / 'cut.pth').write_bytes(raw[:cut])
        with pytest.raises(torch_format.CheckpointFormatError, match='cut.pth'):
          torch_format.load(tmp_path / 'cut.pth')

  @pytest.mark.parametrize('name', [LEGACY, ZIP])
  def test_truncated_reference_files(self, tmp_path, name):
    with open(_reference(self, name), 'rb') as f:
      raw = f.read()
    for cut in _cuts(len(raw)):
      path = tmp_path / f'cut_{cut}.pth'
      path.write_bytes(raw[:cut])
      with pytest.raises(torch_format.CheckpointFormatError) as error:
        torch_format.load(path)
      assert str(path) in str(error.value)
      path.unlink()

  def test_zip_crc_mismatch(self, tmp_path):
    torch_format.save({'w': np.ones(64, np.float32)}, tmp_path / 'a.pth')
    raw = bytearray((tmp_path / 'a.pth').read_bytes())
    raw[raw.index(np.ones(64, np.float32).tobytes()) + 7] ^= 0xFF
    (tmp_path / 'a.pth').write_bytes(bytes(raw))
    with pytest.raises(torch_format.CheckpointFormatError, match='CRC'):
      torch_format.load(tmp_path / 'a.pth')


def test_errors_are_value_errors():
  assert issubclass(torch_format.CheckpointFormatError, ValueError)
  assert issubclass(torch_format.UnsafeCheckpointError, ValueError)
