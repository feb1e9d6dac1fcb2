"""Reads and writes PyTorch `.pth` checkpoints without PyTorch.

Reads the zip container of torch >= 1.6 and the legacy container of
torch <= 1.5 that the authors released Unsup3D in; writes the zip container.
Pickles are read by an unpickler that admits only tensor rebuilds, storage
types and `OrderedDict`: other globals raise `UnsafeCheckpointError` before
they are imported or called, except that objects of the reference code's
classes (`unsup3d.*`, e.g. `MetricsTrace`) load as inert `SkippedObject`s.
Tensors load as C-contiguous numpy arrays in torch's layout.

Memory is bounded by the file's size: before anything is allocated, every
tensor's shape, strides and offset are checked against its storage's
element count, every storage against the bytes its record (zip) or the rest
of the file (legacy) really holds, and in all the arrays made may take at
most `MAX_EXPANSION` times the file's size (plus 1 MiB): torch writes every
storage uncompressed, and tensors rarely share one. Zip records are read by
streaming at most the bytes declared, never inflated whole.

```python
from tfunsup3d.convert import torch_format

nets = torch_format.load_state_dicts('checkpoint030.pth')
nets['netD']['network.0.weight'].shape  # (64, 3, 4, 4): OIHW
torch_format.save({'netD': nets['netD']}, 'netD.pth')
```
"""

import collections
import io
import math
import os
import pickle
import struct
import sys
import zipfile
from typing import Any, Dict, Mapping, Union

import ml_dtypes  # A TensorFlow dependency: numpy's bfloat16.
import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001
_ZIP_ALIGNMENT = 64  # torch's writer starts records' data at multiples of 64.
MAX_EXPANSION = 4  # Bytes of arrays made per byte of file, at most.
_SLACK = 1 << 20  # Allowance for tiny files (1 MiB).
_SKIPPABLE_PREFIX = 'unsup3d.'
_STORAGE_DTYPES = {k: np.dtype(v) for k, v in dict(  # torch's storage types.
    DoubleStorage='float64', FloatStorage='float32', HalfStorage='float16',
    BFloat16Storage=ml_dtypes.bfloat16, LongStorage='int64', IntStorage='int32',
    ShortStorage='int16', CharStorage='int8', ByteStorage='uint8',
    BoolStorage='bool').items()}
_STORAGE_NAMES = {v.name: k for k, v in _STORAGE_DTYPES.items()}

PathLike = Union[str, os.PathLike]


class CheckpointFormatError(ValueError):
  """The file is not a complete, readable torch checkpoint."""


class UnsafeCheckpointError(ValueError):
  """The checkpoint's pickle names a global that this reader refuses."""


class SkippedObject:
  """Inert stand-in for an object of a skipped class (e.g. `MetricsTrace`).

  `qualname` names that class; arguments, state and items are ignored.
  """
  qualname = '?'

  def _ignore(self, *args, **kwargs):
    del args, kwargs

  __init__ = __setstate__ = __setitem__ = append = extend = _ignore

  def __repr__(self):
    return f'<SkippedObject {self.qualname}>'


# Namedtuples have no __dict__, so a hostile BUILD opcode cannot alter them.
_StorageType = collections.namedtuple('_StorageType', ['dtype'])
# A flat storage of `numel` elements; `array` is None while unread.
_Storage = collections.namedtuple('_Storage', ['key', 'numel', 'array'])


def _is_count(value) -> bool:
  return type(value) is int and value >= 0  # pylint: disable=unidiomatic-typecheck


def _from_bytes(raw, dtype, numel, byteorder) -> np.ndarray:
  if not numel:
    return np.empty(0, dtype)
  array = np.frombuffer(raw, dtype, count=numel)
  return array.byteswap() if byteorder != sys.byteorder else array


class _RestrictedUnpickler(pickle.Unpickler):
  """Unpickler that admits tensors, storages and OrderedDict only.

  `storage_fn(key, dtype, numel)` gives the flat array of a storage, or None
  (then tensors load as None). The callables are made per instance, so BUILD
  cannot alter shared objects through them.
  """

  def __init__(self, file, path, skip_unknown, storage_fn=None, budget=None):
    super().__init__(file)
    self._path, self._skip_unknown = path, skip_unknown
    self._storage_fn = storage_fn
    self._budget = budget  # Bytes the tensors may still take (None: any).
    self._allowed = {
        'collections.OrderedDict': collections.OrderedDict,
        'torch._utils._rebuild_tensor': self._rebuild_tensor,
        'torch._utils._rebuild_tensor_v2': self._rebuild_tensor,
        'torch._utils._rebuild_parameter': lambda data, *unused: data,
        'torch._utils._rebuild_parameter_with_state': lambda data, *_: data,
        'torch.storage.UntypedStorage': _StorageType(np.dtype('uint8')),
        'torch.UntypedStorage': _StorageType(np.dtype('uint8'))}  # Raw bytes.

  def find_class(self, module, name):
    full = f'{module}.{name}'
    if full in self._allowed:
      return self._allowed[full]
    if module == 'torch' and name in _STORAGE_DTYPES:
      return _StorageType(_STORAGE_DTYPES[name])
    reference_class = (module + '.').startswith(_SKIPPABLE_PREFIX)
    if reference_class and self._skip_unknown:
      return type(name, (SkippedObject,), {'qualname': full})
    hint = (' (skip_unknown=True would load it as an inert SkippedObject)'
            if reference_class else '')
    raise UnsafeCheckpointError(
        f"refusing to load global '{full}' from checkpoint {self._path!r}: "
        f'only tensors, storages and OrderedDict are allowed{hint}')

  def persistent_load(self, pid):
    """Resolves ('storage', type, key, location, numel[, view]) to a storage."""
    if not (isinstance(pid, tuple) and len(pid) in (5, 6)
            and pid[0] == 'storage' and isinstance(pid[1], _StorageType)
            and isinstance(pid[2], str) and _is_count(pid[4])
            and self._storage_fn is not None):
      raise CheckpointFormatError(f'unexpected persistent id {pid!r:.200}')
    key, numel, view = pid[2], pid[4], (pid[5] if len(pid) == 6 else None)
    array = self._storage_fn(key, pid[1].dtype, numel)
    if array is not None and (array.dtype, array.size) != (pid[1].dtype, numel):
      raise CheckpointFormatError(f'storage {key!r} has two types or sizes')
    if view is None:
      return _Storage(key, numel, array)
    if not (isinstance(view, tuple) and len(view) == 3 and _is_count(view[1])
            and _is_count(view[2]) and view[1] + view[2] <= numel):
      raise CheckpointFormatError(f'bad view {view!r:.200} of storage {key!r}')
    start, numel = view[1], view[2]  # A legacy (torch <= 1.5) storage view.
    return _Storage(key, numel,
                    None if array is None else array[start:start + numel])

  def _rebuild_tensor(self, storage, offset, size, stride, *unused):
    """Returns a C-contiguous copy of the strided view `storage[offset:]`."""
    size, stride = tuple(size), tuple(stride)
    if not (isinstance(storage, _Storage) and len(size) == len(stride)
            and all(_is_count(v) for v in size + stride + (offset,))):
      raise CheckpointFormatError(f'bad tensor: offset={offset!r:.20}, '
                                  f'size={size!r:.60}, stride={stride!r:.60}')
    end = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if math.prod(size) and end > storage.numel:
      raise CheckpointFormatError(
          f'tensor of size {size} reaches element {end} of storage '
          f'{storage.key!r}, which has only {storage.numel}')
    if storage.array is None:  # The legacy reader's first pass.
      return None
    nbytes = math.prod(size) * storage.array.itemsize
    if self._budget is not None:
      if nbytes > self._budget:
        raise CheckpointFormatError(
            f'tensor of size {size} (stride {stride}) would take {nbytes} '
            f'bytes, more than {MAX_EXPANSION} x the file size allows')
      self._budget -= nbytes
    view = np.lib.stride_tricks.as_strided(
        storage.array[offset:], size,
        [s * storage.array.itemsize for s in stride], writeable=False)
    return np.array(view, order='C')  # Always a copy.


def _read_record(archive, name, nbytes, limit):
  """The first `nbytes` of zip record `name`, streamed: at most `limit`."""
  info = archive.getinfo(name)
  if nbytes > info.file_size:
    raise CheckpointFormatError(
        f'record {name!r} holds {info.file_size} bytes, fewer than the '
        f'{nbytes} declared')
  if nbytes > limit:
    raise CheckpointFormatError(
        f'record {name!r} would inflate to {nbytes} bytes, more than '
        f'{MAX_EXPANSION} x the file size allows')
  with archive.open(info) as record:
    data = record.read(nbytes)
  if len(data) != nbytes:
    raise CheckpointFormatError(f'record {name!r} is truncated')
  return data


def _load_zip(file, path, skip_unknown, budget):
  """Reads the zip container (torch >= 1.6)."""
  with zipfile.ZipFile(file) as archive:
    names = set(archive.namelist())
    pickles = [n for n in names if n == 'data.pkl' or n.endswith('/data.pkl')]
    if not pickles:
      raise CheckpointFormatError('a zip file without data.pkl')
    folder = min(pickles, key=len)[:-len('data.pkl')]
    left = [budget]  # Bytes the records read may still take.

    def read(name, nbytes=None):
      if nbytes is None:
        nbytes = archive.getinfo(name).file_size
      data = _read_record(archive, name, nbytes, left[0])
      left[0] -= nbytes
      return data

    byteorder = (read(folder + 'byteorder').decode('ascii', 'replace')
                 if folder + 'byteorder' in names else 'little')
    if byteorder not in ('little', 'big'):
      raise CheckpointFormatError(f'unknown byte order {byteorder!r:.20}')
    records = {}

    def storage(key, dtype, numel):
      name = f'{folder}data/{key}'
      if name not in names:
        raise CheckpointFormatError(f'storage record {name!r} is missing')
      if key not in records:
        records[key] = read(name, numel * dtype.itemsize)
      if len(records[key]) < numel * dtype.itemsize:
        raise CheckpointFormatError(
            f'storage record {name!r} holds {len(records[key])} bytes, '
            f'fewer than the {numel} x {dtype.itemsize} declared')
      return _from_bytes(records[key], dtype, numel, byteorder)

    data = read(folder + 'data.pkl')
    return _RestrictedUnpickler(io.BytesIO(data), path, skip_unknown,
                                storage, budget).load()


def _load_legacy(file, path, skip_unknown, budget):
  """Reads the legacy container (torch <= 1.5).

  The storage bytes follow the object's pickle, which names their types, so
  the object is unpickled twice: to learn the storages, then with the data.
  """
  def unpickle(storage_fn=None):
    return _RestrictedUnpickler(file, path, skip_unknown, storage_fn).load()

  if unpickle() != LEGACY_MAGIC or unpickle() != LEGACY_PROTOCOL:
    raise CheckpointFormatError('bad magic number or protocol version')
  sys_info = unpickle()  # A dict; AttributeError (corrupt) otherwise.
  byteorder = 'little' if sys_info.get('little_endian', True) else 'big'
  start, declared = file.tell(), {}
  def declare(key, dtype, numel):  # First pass: learns storages, reads none.
    declared.setdefault(key, (dtype, numel))
  unpickle(declare)
  keys = unpickle()
  if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)
          and len(keys) == len(declared) and set(keys) == set(declared)):
    raise CheckpointFormatError('storage key list does not match the object')
  file_size, arrays = os.fstat(file.fileno()).st_size, {}
  for key in keys:
    dtype, numel = declared[key]
    nbytes, left = 8 + numel * dtype.itemsize, file_size - file.tell()
    if nbytes > left:  # An int64 element count, then the elements.
      raise CheckpointFormatError(f'file is truncated: storage {key!r} needs '
                                  f'{nbytes} bytes, {left} are left')
    count = int.from_bytes(file.read(8), byteorder, signed=True)
    if count != numel:
      raise CheckpointFormatError(
          f'storage {key!r} declares {numel} elements but holds {count}')
    arrays[key] = _from_bytes(file.read(nbytes - 8), dtype, numel, byteorder)
  file.seek(start)
  return _RestrictedUnpickler(  # Storages checked on use.
      file, path, skip_unknown, lambda key, dtype, numel: arrays[key],
      budget).load()


def load(path: PathLike, skip_unknown: bool = True) -> Any:
  """Loads a torch checkpoint (zip or legacy container) without torch.

  Args:
    path: a `.pth` file written by `torch.save` (any version) or by `save`.
    skip_unknown: whether objects of classes of the reference code (module
      `unsup3d` and below, e.g. `unsup3d.meters.MetricsTrace`) load as inert
      `SkippedObject`s; if False they raise `UnsafeCheckpointError`. Globals of
      any other module are always refused.

  Returns:
    The unpickled object (dicts, OrderedDicts, lists, tuples, numbers, str),
    each tensor a C-contiguous `np.ndarray` (bfloat16: `ml_dtypes.bfloat16`).

  Raises:
    FileNotFoundError: `path` does not exist.
    UnsafeCheckpointError: the pickle names a refused global.
    CheckpointFormatError: the file is empty, truncated, corrupt or foreign,
      or it declares more data than it holds (see the module docstring).
  """
  path = os.fspath(path)
  with open(path, 'rb') as file:
    head = file.read(4)
    file.seek(0)
    budget = MAX_EXPANSION * os.fstat(file.fileno()).st_size + _SLACK
    try:
      if not head:
        raise CheckpointFormatError('the file is empty')
      if head == b'PK\x03\x04':
        return _load_zip(file, path, skip_unknown, budget)
      if head[:1] == b'\x80':  # A pickle's PROTO opcode.
        return _load_legacy(file, path, skip_unknown, budget)
      raise CheckpointFormatError('neither a zip nor a legacy container')
    except UnsafeCheckpointError:
      raise
    except Exception as e:  # pylint: disable=broad-except  (corrupt data)
      reason = (e if isinstance(e, CheckpointFormatError) else
                f'corrupt or truncated ({type(e).__name__}: {e})')
      raise CheckpointFormatError(
          f'cannot read torch checkpoint {path!r}: {reason}') from e


def _is_state_dict(value) -> bool:
  return (isinstance(value, Mapping) and bool(value)
          and all(isinstance(k, str) and isinstance(v, np.ndarray)
                  for k, v in value.items()))


def load_state_dicts(path: PathLike) -> Dict[str, Dict[str, np.ndarray]]:
  """Loads the state dicts (maps from names to tensors) of a checkpoint.

  Args:
    path: a `.pth` file, see `load`.

  Returns:
    A dict from top-level key to state dict (a plain dict in file order), e.g.
    `netD netA netL netV netC` of a reference checkpoint, whose optimizer
    states, `epoch` etc. are no name -> tensor maps; `{'': state_dict}` for a
    file of one bare state dict (e.g. torchvision's VGG16 weights).

  Raises:
    CheckpointFormatError: the file holds no state dict; see also `load`.
  """
  obj = load(path)
  if _is_state_dict(obj):
    return {'': dict(obj)}
  items = obj.items() if isinstance(obj, Mapping) else ()
  found = {k: dict(v) for k, v in items
           if isinstance(k, str) and _is_state_dict(v)}
  if not found:
    raise CheckpointFormatError(f'torch checkpoint {os.fspath(path)!r} holds '
                                'no state dict (a map from names to tensors)')
  return found


class _Pickler:
  """Writes a protocol-2 pickle with hand-written opcodes.

  The opcodes name torch's globals without importing torch. Arrays become
  `torch._utils._rebuild_tensor_v2` calls on persistent storages numbered
  0, 1, ... whose little-endian bytes collect in `storages`.
  """

  def __init__(self):
    self._out = io.BytesIO()
    self.storages = []

  def write(self, data: bytes) -> None:
    """Appends raw opcode bytes."""
    self._out.write(data)

  def getvalue(self) -> bytes:
    """Returns the bytes written so far."""
    return self._out.getvalue()

  def emit_tensor(self, array: np.ndarray, where: str) -> None:
    """Writes `_rebuild_tensor_v2(storage, 0, size, stride, ...)` for array."""
    storage_name = _STORAGE_NAMES.get(array.dtype.name)
    if storage_name is None:
      raise TypeError(f'cannot save dtype {array.dtype} at {where}; '
                      f'supported: {", ".join(sorted(_STORAGE_NAMES))}')
    little = array.dtype.newbyteorder('<')
    self.storages.append(np.ascontiguousarray(array, little).tobytes())
    stride = [math.prod(max(n, 1) for n in array.shape[i + 1:])
              for i in range(array.ndim)]  # Contiguous, as torch has them.
    write = self.write
    write(b'ctorch._utils\n_rebuild_tensor_v2\n((')  # GLOBAL MARK MARK
    self.emit('storage', where)
    write(f'ctorch\n{storage_name}\n'.encode('ascii'))  # GLOBAL
    for item in (str(len(self.storages) - 1), 'cpu', array.size):
      self.emit(item, where)
    write(b'tQ')  # TUPLE BINPERSID: the storage.
    for arg in (0, tuple(array.shape), tuple(stride), False,
                collections.OrderedDict()):  # offset ... backward_hooks
      self.emit(arg, where)
    write(b'tR')  # TUPLE REDUCE

  def emit_dict(self, obj: dict, where: str) -> None:
    """Writes a dict, or an OrderedDict as GLOBAL EMPTY_TUPLE REDUCE."""
    ordered = isinstance(obj, collections.OrderedDict)
    self.write(b'ccollections\nOrderedDict\n)R(' if ordered
                else b'}(')  # MARK
    for key, value in obj.items():
      if not isinstance(key, (str, int)):
        raise TypeError(f'cannot save key {key!r} of {where}: a key must '
                        'be a str or int')
      self.emit(key, where)
      self.emit(value, f'{where}[{key!r}]')
    self.write(b'u')  # SETITEMS

  def emit(self, obj: Any, where: str) -> None:
    """Writes `obj`; `where` names it in errors (e.g. `obj['net'][0]`)."""
    write = self.write
    if isinstance(obj, np.generic):
      obj = obj.item()
    if obj is None or isinstance(obj, bool):
      write({None: b'N', True: b'\x88', False: b'\x89'}[obj])
    elif isinstance(obj, int) and obj.bit_length() < 2040:
      data = obj.to_bytes((obj.bit_length() + 8) // 8, 'little', signed=True)
      write(b'\x8a' + bytes([len(data)]) + data)  # LONG1
    elif isinstance(obj, float):
      write(b'G' + struct.pack('>d', obj))  # BINFLOAT
    elif isinstance(obj, str):
      data = obj.encode('utf-8', 'surrogatepass')
      write(b'X' + struct.pack('<I', len(data)) + data)  # BINUNICODE
    elif isinstance(obj, (tuple, list)):
      write(b'(' if isinstance(obj, tuple) else b'](')  # [EMPTY_LIST] MARK
      for i, value in enumerate(obj):
        self.emit(value, f'{where}[{i}]')
      write(b't' if isinstance(obj, tuple) else b'e')  # TUPLE or APPENDS
    elif isinstance(obj, dict):
      self.emit_dict(obj, where)
    elif isinstance(obj, np.ndarray):
      self.emit_tensor(obj, where)
    else:
      raise TypeError(f'cannot save {type(obj).__name__} at {where}; '
                      'supported: dict, OrderedDict, list, tuple, str, int '
                      '(< 2**2039), float, bool, None, np.ndarray')


def _pickle(obj):
  """Returns (protocol-2 pickle of `obj`, little-endian bytes of storage i).

  Opcodes are hand-written so as to name torch's globals without torch.
  """
  pickler = _Pickler()
  pickler.write(b'\x80\x02')  # PROTO 2
  pickler.emit(obj, 'obj')
  pickler.write(b'.')  # STOP
  return pickler.getvalue(), pickler.storages


def save(obj: Any, path: PathLike) -> None:
  """Writes `obj` as a zip-container `.pth` file that `torch.load` reads.

  Args:
    obj: nested dicts, OrderedDicts, lists and tuples of np.ndarrays (float64,
      float32, float16, bfloat16, int64, int32, int16, int8, uint8, bool; any
      memory layout), str, int, float, bool and None. Numpy scalars are saved
      as Python numbers.
    path: the file to write.

  Raises:
    TypeError: `obj` holds something else; then nothing is written.
  """
  data, storages = _pickle(obj)
  records = [('data.pkl', data), ('byteorder', b'little')]
  records += [(f'data/{i}', raw) for i, raw in enumerate(storages)]
  records.append(('version', b'3\n'))
  with open(path, 'wb') as file, zipfile.ZipFile(file, 'w') as archive:
    for name, data in records:
      info = zipfile.ZipInfo(f'archive/{name}', date_time=(1980, 1, 1, 0, 0, 0))
      # Pad the local header's extra field (as torch does, id 'FB') so that the
      # data starts at a multiple of 64: header 30 bytes + name + 4 + pad.
      pad = -(file.tell() + 30 + len(info.filename) + 4) % _ZIP_ALIGNMENT
      info.extra = b'FB' + struct.pack('<H', pad) + b'Z' * pad
      archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)
