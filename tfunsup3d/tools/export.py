"""tfunsup3d-export: exports a trained model as a SavedModel (TF Serving layout) or TFLite.

Usage:
  tfunsup3d-export --config=configs/test_celeba.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: SavedModel / TFLite export (tfunsup3d.export)')


def run() -> None:
  tool_flags.run_main(main, 'export')


if __name__ == '__main__':
  run()
