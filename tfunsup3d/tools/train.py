"""tfunsup3d-train: trains Unsup3D on an image collection.

Usage:
  tfunsup3d-train --config=configs/train_celeba.yml --num_epochs=2 [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: training (tfunsup3d.train)')


def run() -> None:
  tool_flags.run_main(main, 'train')


if __name__ == '__main__':
  run()
