"""tfunsup3d-quickstart: runs synth -> train -> test end to end on a small synthetic set, on CPU.

Usage:
  tfunsup3d-quickstart --config=configs/quickstart.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: quickstart (synth -> train -> test on CPU)')


def run() -> None:
  tool_flags.run_main(main, 'quickstart')


if __name__ == '__main__':
  run()
