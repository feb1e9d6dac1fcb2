"""tfunsup3d: Unsup3D (Wu, Rupprecht, Vedaldi, CVPR 2020) in TensorFlow 2 /
Keras 3.

`from tfunsup3d import Unsup3D` builds the model; `tfunsup3d.config` holds the
one configuration. Heavy modules load lazily so that `import tfunsup3d.config`
(and the console scripts' `--helpfull`) stay fast.
"""

__version__ = '0.1.0'

__all__ = ['Unsup3D', 'Config', '__version__']


def __getattr__(name):
  if name == 'Unsup3D':
    from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
    return Unsup3D
  if name == 'Config':
    from tfunsup3d.config import Config  # pylint: disable=g-import-not-at-top
    return Config
  raise AttributeError(f'module tfunsup3d has no attribute {name!r}')
