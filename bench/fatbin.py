"""Lists, and blanks all but one architecture of, CUDA kernels in a library.

TensorFlow's Linux wheel carries its GPU kernels as CUDA fat binaries in the
`.nv_fatbin` section of `libtensorflow_cc.so.2` and
`libtensorflow_framework.so.2`: one machine-code image (cubin) per GPU
architecture (sm_60 ... sm_90) and one PTX text per kernel, about 250 MB. A
GPU runs only the image of its own architecture, so to carry the wheel to a
machine with no package registry (bench/gpu_pack.sh) the other images can be
overwritten with zeros in place: headers and sizes are kept, the library
loads as before, and the zeros compress to nothing (the packed wheel goes
from 318 to 191 MB). Run on an H100 on 2026-12-05 with only sm_90 kept
(bench/results/gpu_h100.md).

  python -m bench.fatbin LIB                      # kind, arch, count, MB
  python -m bench.fatbin LIB --keep=90 --out=OUT   # zeros but sm_90 cubins

Fat binary layout (little-endian), as this reads it: a container header
(u32 magic 0xBA55ED50, u16 version, u16 header size, u64 size of the
entries), then entries, each a header (u16 kind: 1 PTX, 2 cubin; u16
version; u32 header size; u64 payload size; ...; u32 architecture at byte
28) and its payload. Containers follow each other, 8-byte aligned.
"""

import argparse
import collections
import struct
import sys
from typing import Iterator, NamedTuple, Tuple

MAGIC = 0xBA55ED50
PTX, CUBIN = 1, 2
KIND_NAMES = {PTX: 'ptx', CUBIN: 'cubin'}


class Entry(NamedTuple):
  payload_offset: int  # in the buffer
  payload_size: int
  kind: int  # PTX or CUBIN
  arch: int  # e.g. 90 for sm_90


def section(buf: bytes, name: str) -> Tuple[int, int]:
  """(file offset, size) of the ELF64 section `name` in `buf`.

  Raises:
    ValueError: not a little-endian ELF64 file, or no such section.
  """
  if buf[:4] != b'\x7fELF' or buf[4] != 2 or buf[5] != 1:
    raise ValueError('not a little-endian 64-bit ELF file')
  shoff, = struct.unpack_from('<Q', buf, 0x28)
  shentsize, shnum, shstrndx = struct.unpack_from('<HHH', buf, 0x3A)

  def header(i):  # (name offset, file offset, size)
    base = shoff + i * shentsize
    return (struct.unpack_from('<I', buf, base)[0],
            *struct.unpack_from('<QQ', buf, base + 0x18))

  _, names_at, _ = header(shstrndx)
  want = name.encode() + b'\0'
  for i in range(shnum):
    name_at, offset, size = header(i)
    if buf[names_at + name_at:names_at + name_at + len(want)] == want:
      return offset, size
  raise ValueError(f'no section {name}')


def entries(buf: bytes, start: int, end: int) -> Iterator[Entry]:
  """The entries of the fat-binary containers in `buf[start:end]`."""
  at = start
  while at + 16 <= end:
    magic, _, header_size, size = struct.unpack_from('<IHHQ', buf, at)
    if magic != MAGIC:  # padding between containers
      at += 8
      continue
    p, stop = at + header_size, at + header_size + size
    while p < stop:
      kind, _, entry_header, payload = struct.unpack_from('<HHIQ', buf, p)
      arch, = struct.unpack_from('<I', buf, p + 28)
      yield Entry(p + entry_header, payload, kind, arch)
      p += entry_header + payload
    at = stop


def fatbin_entries(buf: bytes) -> Iterator[Entry]:
  """The entries of `buf`'s `.nv_fatbin` section."""
  offset, size = section(buf, '.nv_fatbin')
  return entries(buf, offset, offset + size)


def keep_only(buf: bytearray, arch: int) -> int:
  """Zeros every payload but the cubins of `arch`, in place; bytes zeroed.

  Raises:
    ValueError: no cubin of `arch` (the result would run on no GPU).
  """
  found, zeroed = False, 0
  for e in list(fatbin_entries(buf)):
    if e.kind == CUBIN and e.arch == arch:
      found = True
    else:
      buf[e.payload_offset:e.payload_offset + e.payload_size] = bytes(
          e.payload_size)
      zeroed += e.payload_size
  if not found:
    raise ValueError(f'no sm_{arch} cubin to keep')
  return zeroed


def table(buf: bytes):
  """{(kind name, arch): [count, bytes]}."""
  rows = collections.defaultdict(lambda: [0, 0])
  for e in fatbin_entries(buf):
    row = rows[(KIND_NAMES.get(e.kind, str(e.kind)), e.arch)]
    row[0] += 1
    row[1] += e.payload_size
  return dict(rows)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog='python -m bench.fatbin', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('library')
  parser.add_argument('--keep', type=int, help='architecture to keep, e.g. 90')
  parser.add_argument('--out', help='with --keep: where to write the result')
  args = parser.parse_args(argv)
  if (args.keep is None) != (args.out is None):
    parser.error('--keep and --out go together')
  try:
    with open(args.library, 'rb') as f:
      buf = bytearray(f.read())
    if args.keep is None:
      for (kind, arch), (count, size) in sorted(table(buf).items()):
        print(f'{kind}\tsm_{arch}\t{count}\t{size / 1e6:.1f} MB')
      return 0
    zeroed = keep_only(buf, args.keep)
    with open(args.out, 'wb') as f:
      f.write(buf)
  except (OSError, ValueError, struct.error) as e:
    print(f'bench.fatbin: {args.library}: {e}', file=sys.stderr)
    return 2
  print(f'{args.out}: {zeroed / 1e6:.1f} MB zeroed, sm_{args.keep} cubins kept')
  return 0


if __name__ == '__main__':
  sys.exit(main())
