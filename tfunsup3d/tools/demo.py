"""tfunsup3d-demo: decomposes images into depth, albedo, light and view, and renders them.

Usage:
  tfunsup3d-demo --config=configs/test_celeba.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: demo (decomposition and rendering of input images)')


def run() -> None:
  tool_flags.run_main(main, 'demo')


if __name__ == '__main__':
  run()
