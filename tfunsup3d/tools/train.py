"""tfunsup3d-train: trains Unsup3D on an image collection.

Usage:
  tfunsup3d-train --config=configs/train_celeba.yml --num_epochs=2 [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config. Resumes from the newest
checkpoint in --checkpoint_dir unless --resume=false; --deterministic enables
TF op determinism (and seeds everything with --seed, as always).

Exit status: 0 on success, 2 on bad input (one line on stderr), 3 when a
loss became NaN/Inf (the last good checkpoint is kept).
"""

import sys

from tfunsup3d import config as config_lib
from tfunsup3d.errors import EXIT_NON_FINITE
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> int:
  from tfunsup3d.train import checkpoints, loop  # pylint: disable=g-import-not-at-top
  try:
    result = loop.train(cfg)
  except checkpoints.CheckpointError as e:
    raise tool_flags.UserError(str(e)) from e
  except loop.NonFiniteLossError as e:
    sys.stdout.flush()
    sys.stderr.write(f'{tool_flags.program_name("train")}: error: {e}\n')
    sys.stderr.flush()
    return EXIT_NON_FINITE
  print(f'Trained {result["epoch"]} epochs ({result["step"]} steps); '
        f'checkpoint: {result["checkpoint"]}')
  return 0


def run() -> None:
  tool_flags.run_main(main, 'train')


if __name__ == '__main__':
  run()
