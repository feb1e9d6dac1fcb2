"""tfunsup3d-train: trains Unsup3D on an image collection.

Usage:
  tfunsup3d-train --config=configs/train_celeba.yml --num_epochs=2 [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config. Resumes from the newest
checkpoint in --checkpoint_dir unless --resume=false; --deterministic enables
TF op determinism (and seeds everything with --seed, as always).

Exit status: 0 on success; 2 on bad input, checked before anything is
built or written (flag or config value, missing or unusable data, a
checkpoint_dir that is a file or cannot be written), or on a write that
fails later (full disk: the previous checkpoints stay intact, no partial
files are left), or when memory runs out (lower --batch_size or set
--remat=true, then resume); 3 when a loss became NaN/Inf or the weights diverged (the
one line names the last checkpoint that trains on: resume from it with a
lower --lr). Always one line `tfunsup3d-train: error: ...` on stderr.

Ctrl-C (or SIGTERM, as schedulers and `docker stop` send) saves a checkpoint
after the step in progress and exits with 130 (143 for SIGTERM); the same
command resumes from it exactly. A second Ctrl-C stops at once, without
saving (the last checkpoint saved before stays). Multi-worker runs keep the
default handling: a signal stops that worker only.
"""

import sys

from tfunsup3d import config as config_lib
from tfunsup3d.data import image_files
from tfunsup3d.errors import EXIT_NON_FINITE
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> int:
  image_files.check_split_dir(cfg, 'train')  # before TensorFlow loads
  from tfunsup3d.train import checkpoints, loop  # pylint: disable=g-import-not-at-top
  try:
    result, status = tool_flags.train_stoppable(cfg, 'train')
    if status:
      return status
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
