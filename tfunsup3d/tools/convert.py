"""tfunsup3d-convert: reference PyTorch checkpoints <-> tfunsup3d checkpoints.

Usage:
  # Authors' .pth (legacy or zip container) -> tfunsup3d checkpoint directory:
  tfunsup3d-convert --input=pretrained_celeba/checkpoint030.pth \
      --output=results/celeba_converted
  # tfunsup3d checkpoint directory -> reference-format .pth:
  tfunsup3d-convert --input=results/quickstart --output=quickstart.pth

--input: anything `tfunsup3d.saving.load` reads (a checkpoint directory, a TF
checkpoint prefix, a .pth, a SavedModel version directory). --output: a .pth
file when it ends in .pth, else a checkpoint directory. The config follows the
one rule: the --config file < the input's own config (a .pth of the authors'
has only its network sizes) < the --KEY=VALUE flags set explicitly. A .pth
written here carries that config (under the key `tfunsup3d_config`, which
torch and the authors' loader ignore), so that converting back gives the
same model; the written config's checkpoint_dir names the output. torch is
never needed or imported.
"""

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags

flags.DEFINE_string('input', None, 'A .pth file, a tfunsup3d checkpoint '
                    'directory or prefix, or a SavedModel version directory.')
flags.DEFINE_string('output', None, 'A .pth file (name ending in .pth), else '
                    'a tfunsup3d checkpoint directory.')
flags.DEFINE_bool('overwrite', False, 'Replace an existing output.')

FLAGS = flags.FLAGS


def main(cfg: config_lib.Config) -> None:
  if not FLAGS.input or not FLAGS.output:
    raise tool_flags.UserError('--input and --output are required.')
  model, _ = tool_flags.load_model(FLAGS.input, cfg, flag='input')
  from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
  written = saving.save(model, FLAGS.output, overwrite=FLAGS.overwrite)
  print(f'wrote {written}')


def run() -> None:
  tool_flags.run_main(main, 'convert')


if __name__ == '__main__':
  run()
