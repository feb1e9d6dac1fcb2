"""Test session set-up.

Console scripts keep XLA's persistent compilation cache under
`$XDG_CACHE_HOME` (config key `xla_cache_dir: auto`); the ones the tests run
keep it in a temporary directory of this session, not the user's ~/.cache.
"""

import os
import tempfile

os.environ['XDG_CACHE_HOME'] = tempfile.mkdtemp(prefix='tfunsup3d-tests-')
