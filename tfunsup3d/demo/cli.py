"""absl flags shared by tfunsup3d-demo, tfunsup3d-explain and tfunsup3d-export.

Definitions are idempotent (a flag that exists is left alone) and the scripts
define their flags only when they run (`define_flags()` in `run()`), so that
importing every tool into one process (tests) never clashes with another
tool's flag of the same name (e.g. tfunsup3d-convert's --input).
"""

from absl import flags

FLAGS = flags.FLAGS

DETECT_CHOICES = ('auto', 'on', 'off')
_TRUE = ('on', 'true', 'yes', '1')
_FALSE = ('off', 'false', 'no', '0', 'none')


def define(kind: str, name: str, default, help_text: str, enum_values=None,
           **bounds):
  """`flags.DEFINE_<kind>(name, ...)` unless a flag `name` exists; `bounds`:
  `lower_bound`/`upper_bound` of a number flag."""
  if name in FLAGS:
    return
  if kind == 'enum':
    flags.DEFINE_enum(name, default, enum_values, help_text)
  else:
    getattr(flags, f'DEFINE_{kind}')(name, default, help_text, **bounds)


_define = define


def define_checkpoint_flag():
  _define('string', 'checkpoint', None,
          'Model to load: a tfunsup3d checkpoint directory (config.yml + TF '
          'checkpoints, as tfunsup3d-train writes; its newest loadable one), '
          'a TF checkpoint prefix, a .pth file (the authors\' released '
          'checkpoints, or tfunsup3d-convert\'s) or a SavedModel version '
          'directory. Default: the config\'s checkpoint_dir[/checkpoint_name] '
          '(see tfunsup3d.saving.path_from_config).')


def define_input_flags(default_output_dir: str):
  """--input, --output_dir, --detect, --crop_mode, --checkpoint."""
  define_checkpoint_flag()
  _define('string', 'input', None,
          'Input image(s): a file, a folder (searched recursively for '
          'images) or a comma-separated list of both.')
  _define('string', 'output_dir', default_output_dir,
          'Where to write the results (one sub-folder or file per image).')
  _define('string', 'detect', 'auto',
          'Face detection and crop with mtcnn: auto (on when mtcnn is '
          'installed and the model is a human-face model: its model_name or '
          'checkpoint path mentions face/celeba/human), on, or off '
          '(pre-cropped input: centre square crop instead).')
  _define('enum', 'crop_mode', 'square',
          'Crop when no face detection is used: square (the largest centred '
          'square) or config (the config\'s `crop`, as the data pipeline).',
          enum_values=['square', 'config'])
  _define('integer', 'output_size', 128,
          'Side in pixels of the images written for viewing (upsampled from '
          'image_size); data files (.npy, 16-bit PNG, mesh) keep image_size.')


def require_modules(purpose: str, *modules: str, extra: str = 'demo'
                    ) -> None:
  """UserError naming the missing packages (the `extra` extra has them)."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  from tfunsup3d.errors import UserError  # pylint: disable=g-import-not-at-top
  missing = [m for m in modules if importlib.util.find_spec(m) is None]
  if missing:
    raise UserError(f'{purpose} needs {", ".join(missing)}: pip install '
                    f'"tfunsup3d[{extra}]" (or those packages).')


def parse_detect(value: str) -> str:
  """'auto' | 'on' | 'off' from the --detect flag's text."""
  text = (value or 'auto').strip().lower()
  if text == 'auto':
    return 'auto'
  if text in _TRUE:
    return 'on'
  if text in _FALSE:
    return 'off'
  raise ValueError(f'--detect must be auto, on or off. Received: {value!r}')
