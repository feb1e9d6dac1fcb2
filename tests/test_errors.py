"""Tests of tfunsup3d.errors: which failures are the disk's, and their line."""

import errno

import pytest
import tensorflow as tf

from tfunsup3d import errors


@pytest.mark.parametrize('error, expected', [
    (OSError(errno.ENOSPC, 'No space left on device'), True),
    (OSError(errno.EDQUOT, 'Disk quota exceeded'), True),
    (OSError(errno.EROFS, 'Read-only file system'), True),
    (PermissionError(errno.EACCES, 'Permission denied'), True),
    (OSError(errno.ENOENT, 'No such file or directory'), False),
    (OSError('no errno'), False),
    (tf.errors.ResourceExhaustedError(None, None, 'x; No space left on '
                                      'device'), True),
    (tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating '
                                      'tensor with shape[64,64]'), False),
    (tf.errors.PermissionDeniedError(None, None, 'x; Read-only file system'),
     True),
    (tf.errors.InvalidArgumentError(None, None, 'No space left'), False),
    (ValueError('No space left'), False),
])
def test_is_disk_failure(error, expected):
  assert errors.is_disk_failure(error) is expected


def test_write_failure_puts_tensorflows_cause_before_its_long_path():
  error = tf.errors.ResourceExhaustedError(
      None, None, '{{function_node __wrapped__SaveV2_dtypes_115_device_/job:'
      'localhost/replica:0/task:0/device:CPU:0}} /d/' + 'x' * 300 +
      '; No space left on device [Op:SaveV2]')
  line = errors.write_failure(error, 'export_dir')
  assert line.startswith('No space left on device [Op:SaveV2]: /d/xxx')
  assert line.endswith(' (the disk is full: free space, or set export_dir '
                       'to another disk)')
  assert 'function_node' not in line and len(line) < 300


@pytest.mark.parametrize('error, hint', [
    (OSError(errno.ENOSPC, 'No space left on device'),
     'No space left on device (the disk is full: free space, or set k to '
     'another disk)'),
    (OSError(errno.EROFS, 'Read-only file system'),
     'Read-only file system (the directory is not writable: set k to a '
     'writable one)'),
    (OSError(errno.EIO, 'Input/output error'),
     'Input/output error (check that k is writable and has free space)'),
])
def test_write_failure_names_the_cause_and_the_setting(error, hint):
  assert errors.write_failure(error, 'k') == hint


@pytest.mark.parametrize('error,expected', [
    (tf.errors.ResourceExhaustedError(None, None, 'OOM when allocating x'),
     'out of memory: OOM when allocating x (lower --batch_size, or for '
     'training set --remat=true; training resumes from its last '
     'checkpoint)'),
    # A full disk is a write failure, not memory.
    (tf.errors.ResourceExhaustedError(None, None, 'a; No space left on '
                                      'device'), None),
    (MemoryError(), 'out of memory: MemoryError (lower --batch_size, or for '
     'training set --remat=true; training resumes from its last '
     'checkpoint)'),
    (ValueError('OOM'), None)])
def test_out_of_memory(error, expected):
  assert errors.out_of_memory(error) == expected
