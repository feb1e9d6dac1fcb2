"""tfunsup3d-synth: writes synthetic symmetric faces or cars with ground-truth depth.

Usage:
  tfunsup3d-synth --out_dir=data/quickstart [--num_train=6000 --num_val=300
      --num_test=300 --seed=0 --overwrite] [--category=face|car] [--zoom=Z]
      [--canvas=C] [--max_yaw=DEG ...] [--param_range=NAME:LO:HI ...]
      [--config=FILE.yml] [--KEY=VALUE]
  tfunsup3d-synth --category=car --config=configs/synthcar.yml

Writes OUT_DIR/{train,val,test}/{image,depth}/NNNNNN_{image,depth}.png (the
ground-truth layout that `load_gt_depth: true` reads) and a factors.npz per
split, rendered by the model's own image formation (tfunsup3d.data.synth).
--category picks the objects: face-like heads (the default) or car-like
bodies seen from the front on a wall and ground (tfunsup3d.data.synth_car).
The view, asymmetry and framing flags default to the category's values (the
car turns by up to 60 degrees of yaw); given, they replace them.
--out_dir defaults to the config's train_val_data_dir; image_size, min_depth,
max_depth, border_depth (the backdrop's depth: configs/synthcar.yml sets the
car's 1.08), fov, anti_aliasing and seed come from the config.
Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

import math
import time

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.data import synth_params
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def _defaults(name: str) -> str:
  """'face 30, car 60': each category's default of the option `name`."""
  return ', '.join(
      f'{c} {getattr(synth_params.SynthOptions.for_category(c), name):g}'
      for c in synth_params.CATEGORIES)


# The SynthOptions fields with a flag of the same name (default: None, the
# category's value).
_OPTIONS = ('max_yaw', 'max_pitch', 'max_roll', 'max_translation',
            'asymmetry', 'zoom', 'canvas')
# (define function, name, default, help, extra keyword arguments)
_FLAGS = (
    (flags.DEFINE_string, 'out_dir', None,
     'Data set root to write (default: the config\'s train_val_data_dir).',
     {}),
    (flags.DEFINE_integer, 'num_train', 6000, 'Training images.',
     {'lower_bound': 0}),
    (flags.DEFINE_integer, 'num_val', 300, 'Validation images.',
     {'lower_bound': 0}),
    (flags.DEFINE_integer, 'num_test', 300, 'Test images.',
     {'lower_bound': 0}),
    (flags.DEFINE_boolean, 'overwrite', False,
     'Replace split directories that are not empty (without it, the script '
     'refuses and changes nothing).', {}),
    (flags.DEFINE_string, 'category', 'face',
     'The objects: face (face-like heads) or car (car-like bodies seen from '
     'the front on a wall and ground; pass --config=configs/synthcar.yml for '
     'its backdrop depth).', {}),
    (flags.DEFINE_float, 'max_yaw', None,
     f'Yaw range (-r, r), degrees (default: {_defaults("max_yaw")}).', {}),
    (flags.DEFINE_float, 'max_pitch', None,
     f'Pitch range (-r, r), degrees (default: {_defaults("max_pitch")}).',
     {}),
    (flags.DEFINE_float, 'max_roll', None,
     f'Roll range (-r, r), degrees (default: {_defaults("max_roll")}).', {}),
    (flags.DEFINE_float, 'max_translation', None,
     'x/y translation range (-t, t), scene units (the image spans ~0.175; '
     f'default: {_defaults("max_translation")}).', {}),
    (flags.DEFINE_float, 'asymmetry', None,
     'Strength of asymmetric details in [0, 1] (a mark on one side, a '
     'sideways backdrop gradient); 0: exactly symmetric albedo (default: '
     f'{_defaults("asymmetry")}).', {}),
    (flags.DEFINE_float, 'zoom', None,
     'Magnification of the layout about the image centre (face 1: the head '
     'spans 56-70% of the width; depth amplitudes are not scaled; default: '
     f'{_defaults("zoom")}).', {'lower_bound': 0.01, 'upper_bound': 4.0}),
    (flags.DEFINE_float, 'canvas', None,
     'Render on a canvas this many image sides wide and keep its centre '
     '(same camera): at 1 a turned view shows a straight cut where the '
     'canonical map ends, at 1.5 not for turns up to about 45 degrees '
     f'(default: {_defaults("canvas")}).',
     {'lower_bound': 1.0, 'upper_bound': 3.0}),
    (flags.DEFINE_multi_string, 'param_range', [],
     'NAME:LO:HI (repeatable): draw the category parameter NAME uniformly in '
     '[LO, HI) instead of its default range (the face\'s tfunsup3d.data.'
     'synth_params.PARAM_RANGES, the car\'s synth_car.PARAM_RANGES), e.g. '
     '--param_range=head_pow:1:1.5; every other parameter keeps its draws.',
     {}),
)


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
  """Defines this script's own flags (idempotent; only when it runs, so that
  importing it beside another tool with an --overwrite flag is fine)."""
  for define, name, default, help_text, kwargs in _FLAGS:
    if name not in flag_values:
      define(name, default, help_text, flag_values=flag_values, **kwargs)


def main(cfg: config_lib.Config) -> None:
  if cfg.seed < 0:
    raise tool_flags.UserError(f'seed must be >= 0. Received: {cfg.seed}')
  for define, name, *_ in _FLAGS:
    if (define is flags.DEFINE_float and FLAGS[name].value is not None
        and not math.isfinite(FLAGS[name].value)):
      raise tool_flags.UserError(f'--{name} must be a finite number. '
                                 f'Received: {FLAGS[name].value}')
  counts = {'train': FLAGS.num_train, 'val': FLAGS.num_val,
            'test': FLAGS.num_test}
  if not any(counts.values()):
    raise tool_flags.UserError('Nothing to write: all counts are 0.')
  out_dir = FLAGS.out_dir or cfg.train_val_data_dir
  given = {name: FLAGS[name].value for name in _OPTIONS
           if FLAGS[name].value is not None}
  options = synth_params.SynthOptions.for_category(
      FLAGS.category, param_ranges=tuple(
          synth_params.parse_param_range(text, FLAGS.category)
          for text in FLAGS.param_range), **given)
  # Loads TensorFlow (seconds): after the checks above.
  from tfunsup3d.data import synth  # pylint: disable=g-import-not-at-top
  start = time.time()
  seconds = synth.write_dataset(out_dir, counts, cfg, seed=cfg.seed,
                                overwrite=FLAGS.overwrite, options=options)
  done = ', '.join(f'{s} {counts[s]} ({t:.0f} s)' for s, t in seconds.items())
  print(f'tfunsup3d-synth: wrote {options.category} set {out_dir}: {done}; '
        f'{time.time() - start:.0f} s in all.')


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'synth')


if __name__ == '__main__':
  run()
