"""tfunsup3d-test: evaluates a checkpoint: decompositions, and depth metrics where ground truth exists.

Usage:
  tfunsup3d-test --config=configs/test_synface.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.

Loads `checkpoint_dir`/`checkpoint_name` (a tfunsup3d run directory or one of
its `ckpt-N` checkpoints, or a reference `.pth`; without checkpoint_name the
run's latest checkpoint, else its last `*.pth`), runs the test split and
writes per-image results under `test_result_dir` (default
`checkpoint_dir/test_results`) in the reference's layout; with ground-truth
depth (`load_gt_depth`) also `eval_scores.txt` and the one-line summary
`SIDE (x1e-2): m ± s, MAD (deg): m ± s`. `--write_images=false` writes only
the scores.

Model keys: the --config file's lie under the checkpoint's own config (for a
reference .pth they give every key but the network sizes); the run and data
keys of the config (tfunsup3d.saving.RUN_KEYS) and the --KEY=VALUE flags set
explicitly lie over it. A run directory whose newest checkpoint cannot be
read tests the newest one that can, with a warning naming both.
"""

import os

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.data import image_files
from tfunsup3d.tools import flags as tool_flags

flags.DEFINE_boolean(
    'write_images', True,
    'Write the per-image results (images, light, view); false: scores only.')


def main(cfg: config_lib.Config) -> None:
  # Before TensorFlow loads: the checkpoint, and a test folder set by flag
  # (otherwise it may come from the checkpoint's own config).
  directory = cfg.checkpoint_dir or '.'
  tool_flags.check_checkpoint_exists(
      os.path.join(directory, cfg.checkpoint_name) if cfg.checkpoint_name
      else directory)
  overrides = tool_flags.explicit_overrides(flags.FLAGS)
  if overrides.get('test_data_dir'):
    image_files.check_split_dir(cfg, 'test')
  from tfunsup3d.train import evaluate  # pylint: disable=g-import-not-at-top
  write_images = flags.FLAGS['write_images'].value
  result = evaluate.test(cfg, write_images=write_images, overrides=overrides)
  print(f'Tested {result["checkpoint"]}; results in {result["result_dir"]}')
  for line in (result['summary'], result['note']):
    if line:
      print(line)


def run() -> None:
  tool_flags.run_main(main, 'test')


if __name__ == '__main__':
  run()
