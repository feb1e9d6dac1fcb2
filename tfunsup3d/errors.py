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
