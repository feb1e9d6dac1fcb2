"""tfunsup3d-convert: converts reference PyTorch checkpoints (.pth) to and from tfunsup3d checkpoints.

Usage:
  tfunsup3d-convert --config=configs/test_celeba.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: checkpoint conversion (tfunsup3d.convert)')


def run() -> None:
  tool_flags.run_main(main, 'convert')


if __name__ == '__main__':
  run()
