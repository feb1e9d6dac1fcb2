"""tfunsup3d-synth: writes a synthetic symmetric face-like data set with ground-truth depth.

Usage:
  tfunsup3d-synth --config=configs/quickstart.yml --train_val_data_dir=data/quickstart [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: synthetic data set generation (tfunsup3d.data.synth)')


def run() -> None:
  tool_flags.run_main(main, 'synth')


if __name__ == '__main__':
  run()
