"""Errors the library raises for problems a user can fix, and their exit codes.

Library modules raise these; the console scripts (`tfunsup3d.tools`) map them to
one line on stderr and an exit status. Nothing here imports the CLI layer.

Exit statuses of every console script:
  0  success.
  2  a problem with the user's input (flag, file, data, checkpoint, disk):
     one line `tfunsup3d-<script>: error: <reason>` names it.
  3  training stopped on a non-finite loss; the line names the last
     checkpoint that trains on.
"""

import errno
import re
from typing import Optional

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3


class UserError(Exception):
  """An error caused by the user's input (flags, files, data, checkpoints).

  Console scripts report it as one line and exit with status 2. Raise it (or a
  subclass) for problems the user can fix; let bugs raise anything else.
  """


class CheckpointError(UserError):
  """A checkpoint that is missing, unreadable, malformed or does not fit."""


class DataError(UserError):
  """Training or test data that cannot be used as given."""


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
_NOT_WRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)


def is_disk_failure(error: BaseException) -> bool:
  """Whether `error` is a write refused by the disk (full, over quota,
  read-only, no permission): an OSError with such an errno, or a
  tf.errors.OpError saying so (recognised by name and text, so that this
  module needs no TensorFlow; an out-of-memory ResourceExhaustedError is
  not one)."""
  code = getattr(error, 'errno', None)
  if isinstance(error, OSError) and code in _DISK_FULL + _NOT_WRITABLE:
    return True
  text = str(getattr(error, 'message', None) or error)
  return type(error).__name__ in ('ResourceExhaustedError',
                                  'PermissionDeniedError') and any(
                                      t in text for t in (
                                          'No space left', 'Read-only',
                                          'Permission denied'))


def _without_op_names(text: str) -> str:
  """A TF error message without its `{{function_node ...}}` prefixes."""
  return re.sub(r'\{\{[^}]*\}\}\s*', '', text)


def out_of_memory(error: BaseException) -> Optional[str]:
  """One line for an out-of-memory error (Python's MemoryError, or a
  tf.errors.ResourceExhaustedError that is not a full disk), else None."""
  if not isinstance(error, MemoryError) and (
      type(error).__name__ != 'ResourceExhaustedError' or
      is_disk_failure(error)):
    return None
  text = _without_op_names(str(getattr(error, 'message', None) or error))
  first = ' '.join(text.strip().splitlines()[0].split())[:200] if (
      text.strip()) else type(error).__name__
  return (f'out of memory: {first} (lower --batch_size, or for training '
          'set --remat=true; training resumes from its last checkpoint)')


def write_failure(error: BaseException, setting: str) -> str:
  """One line: why a write failed and what to do, for a `UserError`.

  Args:
    error: the OSError, or tf.errors.OpError (recognised by name, so that
      this module needs no TensorFlow), of the write.
    setting: the flag or config key that chose where to write, e.g.
      'checkpoint_dir'.
  """
  code = getattr(error, 'errno', None)
  kind = type(error).__name__
  text = (getattr(error, 'strerror', None) or getattr(error, 'message', None)
          or str(error))
  text = _without_op_names(str(text))
  where, sep, cause = text.rpartition('; ')  # TF's '<file>; <cause>'
  if sep:
    text = f'{cause}: {where}'  # The cause first: long paths get cut.
  text = ' '.join(text.split())[:200]
  if (code in _DISK_FULL or kind == 'ResourceExhaustedError'
      or 'No space left' in text):
    hint = f'the disk is full: free space, or set {setting} to another disk'
  elif (code in _NOT_WRITABLE or kind == 'PermissionDeniedError'
        or 'Read-only' in text):
    hint = f'the directory is not writable: set {setting} to a writable one'
  else:
    hint = f'check that {setting} is writable and has free space'
  return f'{text} ({hint})'
