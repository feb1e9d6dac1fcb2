"""tfunsup3d-app: 3D from one photo in the browser (a local Gradio page).

Usage:
  tfunsup3d-app --checkpoint=results/quickstart
  tfunsup3d-app --checkpoint=pretrained_celeba.pth --port=8080
  tfunsup3d-app --config=configs/quickstart.yml   # its checkpoint_dir

Serves http://127.0.0.1:7860 (--host, --port): upload a photo or pick an
example, optionally crop around the face (mtcnn, from the `demo` extra), and
see the decomposition (albedo, depth, normals, shading, confidence), the
textured mesh in an interactive 3D view, and the yaw turntable; every file of
tfunsup3d-demo can be downloaded. Runs on CPU. Needs the `app` extra:
pip install -e ".[app]" (or TFUNSUP3D_EXTRAS=app ./quickstart.sh). Ctrl-C
stops the server.

Takes --config=FILE.yml and --KEY=VALUE for any config key; the checkpoint
is --checkpoint, else the config's checkpoint_dir[/checkpoint_name].
"""

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.demo import cli
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """This script's flags (idempotent; defined when it runs)."""
  cli.define_checkpoint_flag()
  cli.define('string', 'host', '127.0.0.1',
             'Address to serve on: 127.0.0.1 (this machine only) or 0.0.0.0 '
             '(every network interface).')
  cli.define('integer', 'port', 7860, 'Port to serve on (1-65535).',
             lower_bound=1, upper_bound=65535)
  cli.define('integer', 'output_size', 128,
             'Side in pixels of the images and the turntable shown.')
  cli.define('integer', 'num_frames', 36, 'Frames of the turntable.')
  cli.define('integer', 'max_upload_mb', 50, 'Largest photo file the page '
             'takes, in MB (larger uploads are refused before they are '
             'stored).', lower_bound=1, upper_bound=1024)


def main(cfg: config_lib.Config) -> None:
  cli.require_modules('tfunsup3d-app', 'gradio', 'trimesh', extra='app')
  # pylint: disable=g-import-not-at-top
  from tfunsup3d.app import page
  from tfunsup3d.app import process
  from tfunsup3d.demo import runner
  # pylint: enable=g-import-not-at-top
  options = runner.DemoOptions(output_size=FLAGS.output_size,
                               num_frames=FLAGS.num_frames).validate()
  model, checkpoint = tool_flags.load_model(FLAGS.checkpoint, cfg)
  blocks = page.build(process.Processor(model, options), checkpoint)
  url = page.launch(blocks, FLAGS.host, FLAGS.port, FLAGS.max_upload_mb)
  print(f'tfunsup3d-app: serving {checkpoint} on {url} (Ctrl-C stops)',
        flush=True)
  page.wait(blocks)


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'app')


if __name__ == '__main__':
  run()
