"""tfunsup3d-convert: reference PyTorch checkpoints <-> tfunsup3d checkpoints.

Usage:
  # Authors' .pth (legacy or zip container) -> tfunsup3d checkpoint directory:
  tfunsup3d-convert --input=pretrained_celeba/checkpoint030.pth \
      --output=results/celeba_converted
  # tfunsup3d checkpoint directory -> reference-format .pth:
  tfunsup3d-convert --input=results/quickstart --output=quickstart.pth

Network sizes are inferred from the weights; other config keys (depth range,
view ranges, ...) come from --config / --KEY=VALUE as usual and are stored in
the output's config.yml. torch is never needed or imported.
"""

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags

flags.DEFINE_string('input', None, 'A reference .pth file, or a tfunsup3d '
                    'checkpoint directory.')
flags.DEFINE_string('output', None, 'A directory (for a .pth input) or a '
                    '.pth file (for a directory input).')
flags.DEFINE_bool('overwrite', False, 'Replace an existing output.')

FLAGS = flags.FLAGS


def main(cfg: config_lib.Config) -> None:
  # pylint: disable=g-import-not-at-top
  import os
  from tfunsup3d import model as model_lib
  from tfunsup3d.convert import checkpoint
  if not FLAGS.input or not FLAGS.output:
    raise tool_flags.UserError('--input and --output are required.')
  overrides = tool_flags.explicit_overrides(FLAGS)
  if FLAGS.config:
    overrides = {**config_lib.load_yaml(FLAGS.config), **overrides}
  sizes = ('nf_depth', 'zdim_depth', 'nf_encoder', 'nf_conf', 'zdim_conf',
           'use_conf_map')
  if os.path.isfile(FLAGS.input):
    # Sizes come from the weights, not from the config.
    overrides = {k: v for k, v in overrides.items() if k not in sizes}
    model = model_lib.Unsup3D.from_checkpoint(FLAGS.input, **overrides)
    prefix = checkpoint.write_tf_checkpoint(model, FLAGS.output,
                                            overwrite=FLAGS.overwrite)
    print(f'wrote {prefix} (config {os.path.join(FLAGS.output, "config.yml")})')
  elif os.path.isdir(FLAGS.input):
    if os.path.exists(FLAGS.output) and not FLAGS.overwrite:
      raise FileExistsError(f'{FLAGS.output} exists; pass --overwrite.')
    model = model_lib.Unsup3D.from_checkpoint(FLAGS.input, **overrides)
    checkpoint.write_reference_pth(model, FLAGS.output)
    print(f'wrote {FLAGS.output}')
  else:
    raise FileNotFoundError(f'--input not found: {FLAGS.input}')


def run() -> None:
  tool_flags.run_main(main, 'convert')


if __name__ == '__main__':
  run()
