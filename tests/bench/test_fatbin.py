"""Tests for bench/fatbin.py on a handmade ELF64 file with a fat binary."""

import os
import struct
import subprocess
import sys
import tempfile
import unittest

from bench import fatbin

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _entry(kind, arch, payload):
  header = struct.pack('<HHIQ', kind, 0x101, 64, len(payload))
  header += bytes(28 - len(header)) + struct.pack('<I', arch)
  return header + bytes(64 - len(header)) + payload


def _container(*entries):
  body = b''.join(entries)
  return struct.pack('<IHHQ', fatbin.MAGIC, 1, 16, len(body)) + body


def _elf(fatbin_bytes, junk=b'JUNK' * 4):
  """ELF64 header, `.junk` and `.nv_fatbin` sections, names, headers."""
  names = b'\0.junk\0.nv_fatbin\0.shstrtab\0'
  junk_at = 64
  fat_at = junk_at + len(junk)
  names_at = fat_at + len(fatbin_bytes)
  shoff = names_at + len(names)
  shoff += -shoff % 8
  head = bytearray(64)
  head[:6] = b'\x7fELF\x02\x01'
  struct.pack_into('<Q', head, 0x28, shoff)
  struct.pack_into('<HHH', head, 0x3A, 64, 4, 3)

  def sh(name, offset, size):
    return (struct.pack('<II', name, 1) + bytes(16)
            + struct.pack('<QQ', offset, size) + bytes(24))

  body = bytes(head) + junk + fatbin_bytes + names
  body += bytes(shoff - len(body))
  return body + (bytes(64) + sh(1, junk_at, len(junk))
                 + sh(7, fat_at, len(fatbin_bytes))
                 + sh(18, names_at, len(names)))


PAYLOADS = {(fatbin.CUBIN, 80): b'\x11' * 24, (fatbin.CUBIN, 90): b'\x22' * 40,
            (fatbin.PTX, 90): b'.version 8.0' * 2}


def _library():
  first = _container(*(_entry(k, a, p) for (k, a), p in PAYLOADS.items()))
  second = _container(_entry(fatbin.CUBIN, 90, b'\x33' * 16))
  pad = bytes(-len(first) % 8 + 8)  # containers 8-byte aligned, a gap
  return _elf(first + pad + second)


class FatbinTest(unittest.TestCase):

  def test_finds_every_entry_of_every_container(self):
    buf = _library()
    found = [(e.kind, e.arch, bytes(buf[e.payload_offset:e.payload_offset +
                                        e.payload_size]))
             for e in fatbin.fatbin_entries(buf)]
    want = [(k, a, p) for (k, a), p in PAYLOADS.items()]
    self.assertEqual(found, want + [(fatbin.CUBIN, 90, b'\x33' * 16)])
    self.assertEqual(fatbin.table(buf), {('cubin', 80): [1, 24],
                                         ('cubin', 90): [2, 56],
                                         ('ptx', 90): [1, 24]})

  def test_keep_only_zeros_other_payloads_and_nothing_else(self):
    buf = bytearray(_library())
    before = bytes(buf)
    self.assertEqual(fatbin.keep_only(buf, 90), 24 + 24)
    self.assertEqual(len(buf), len(before))
    kept = {(e.kind, e.arch): bytes(buf[e.payload_offset:e.payload_offset
                                        + e.payload_size])
            for e in fatbin.fatbin_entries(buf)}
    self.assertEqual(kept[(fatbin.CUBIN, 80)], bytes(24))
    self.assertEqual(kept[(fatbin.PTX, 90)], bytes(24))
    self.assertEqual(kept[(fatbin.CUBIN, 90)], b'\x33' * 16)  # the last
    changed = [i for i, (a, b) in enumerate(zip(before, buf)) if a != b]
    zeroed = [e for e in fatbin.fatbin_entries(buf)
              if (e.kind, e.arch) != (fatbin.CUBIN, 90)]
    allowed = set()
    for e in zeroed:
      allowed.update(range(e.payload_offset, e.payload_offset
                           + e.payload_size))
    self.assertTrue(changed)
    self.assertLessEqual(set(changed), allowed)  # headers, junk untouched

  def test_refuses_an_architecture_it_does_not_hold(self):
    buf = bytearray(_library())
    with self.assertRaisesRegex(ValueError, 'no sm_70 cubin'):
      fatbin.keep_only(buf, 70)

  def test_command_line_table_write_and_errors(self):
    with tempfile.TemporaryDirectory() as tmp:
      lib, out = os.path.join(tmp, 'lib.so'), os.path.join(tmp, 'out.so')
      with open(lib, 'wb') as f:
        f.write(_library())
      run = lambda *a: subprocess.run(  # pylint: disable=g-long-lambda
          [sys.executable, '-m', 'bench.fatbin', *a], cwd=REPO_ROOT,
          capture_output=True, text=True, check=False)
      listed = run(lib)
      self.assertEqual(listed.returncode, 0, listed.stderr)
      self.assertIn('cubin\tsm_90\t2\t0.0 MB', listed.stdout)
      wrote = run(lib, '--keep=90', f'--out={out}')
      self.assertEqual(wrote.returncode, 0, wrote.stderr)
      with open(out, 'rb') as f:
        self.assertEqual(fatbin.table(f.read())[('cubin', 80)], [1, 24])
      with open(os.path.join(tmp, 'text'), 'w') as f:
        f.write('not a library')
      bad = run(os.path.join(tmp, 'text'))
      self.assertEqual(bad.returncode, 2)
      self.assertEqual(bad.stderr.strip().count('\n'), 0)
      self.assertIn('not a little-endian 64-bit ELF file', bad.stderr)
      missing = run(lib, '--keep=70', f'--out={out}')
      self.assertEqual(missing.returncode, 2)
      self.assertIn('no sm_70 cubin to keep', missing.stderr)


if __name__ == '__main__':
  unittest.main()
