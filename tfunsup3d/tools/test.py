"""tfunsup3d-test: evaluates a checkpoint: decompositions, and depth metrics where ground truth exists.

Usage:
  tfunsup3d-test --config=configs/test_synface.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: testing and metrics (tfunsup3d.train, tfunsup3d.metrics)')


def run() -> None:
  tool_flags.run_main(main, 'test')


if __name__ == '__main__':
  run()
