"""tfunsup3d-explain: explains what the networks attend to (saliency maps of the predicted factors).

Usage:
  tfunsup3d-explain --config=configs/test_celeba.yml [--KEY=VALUE ...]

Takes --config=FILE.yml and --KEY=VALUE for any config key; --helpfull lists
them all, --print_config prints the effective config.
"""

from tfunsup3d import config as config_lib
from tfunsup3d.tools import flags as tool_flags


def main(cfg: config_lib.Config) -> None:
  del cfg  # Unused until implemented.
  print('coming: explanations (tf-keras-vis saliency)')


def run() -> None:
  tool_flags.run_main(main, 'explain')


if __name__ == '__main__':
  run()
