"""tfunsup3d-demo: decomposes images into depth, albedo, light and view, and renders them.

Usage:
  tfunsup3d-demo --checkpoint=results/celeba --input=photo.jpg
  tfunsup3d-demo --checkpoint=pretrained_celeba.pth --input=photos/ \
      --output_dir=demo_out --detect=on
  tfunsup3d-demo --config=configs/quickstart.yml --input=a.png,b.png \
      --detect=off --output_size=256 --num_frames=48

Inputs: one image, several (comma-separated), or folders (recursive), of any
size and aspect. Each is cropped around the largest face (`--detect`, needs
the mtcnn package) or to its centred square (`--detect=off`, for pre-cropped
images) and resized to the model's image_size. Per image, a sub-folder of
--output_dir gets the canonical albedo, depth (8-bit and 16-bit PNG, .npy),
normals, shading, reconstruction, confidence maps, yaw turntables (GIF, and
MP4 with imageio-ffmpeg), a textured mesh (.obj + .mtl + .png, and .glb) and
factors.json; see tfunsup3d/demo/runner.py. Images that cannot be read or
have no face are skipped and counted; runs on CPU.

Config: the --config=FILE.yml keys lie under the checkpoint's own config and
--KEY=VALUE flags over it (those fixing network sizes must agree with it);
--helpfull lists them all.
"""

from absl import flags
from absl import logging

from tfunsup3d import config as config_lib
from tfunsup3d.demo import cli
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """This script's flags (idempotent; defined when it runs)."""
  cli.define_input_flags('demo_output')
  cli.define('integer', 'num_frames', 36,
             'Frames per yaw turntable animation.')
  cli.define('float', 'max_yaw', 60.0, 'Turntable amplitude in degrees.')
  cli.define('float', 'fps', 12.0, 'Frames per second of the animations.')
  cli.define('boolean', 'animations', True, 'Render the yaw turntables.')
  cli.define('boolean', 'mp4', True, 'Also write MP4 animations (when '
             'imageio-ffmpeg is installed).')
  cli.define('boolean', 'mesh', True,
             'Write the textured mesh (OBJ and GLB).')
  cli.define('enum', 'texture', 'albedo',
             'Mesh texture: canonical albedo or shaded canonical image.',
             enum_values=['albedo', 'shaded'])


def main(cfg: config_lib.Config) -> None:
  from tfunsup3d.demo import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
  detect_mode = cli.parse_detect(FLAGS.detect)
  tool_flags.refuse_unused(('num_frames', 'max_yaw', 'fps', 'mp4'),
                           FLAGS.animations, '--animations',
                           'to render the turntables')
  tool_flags.refuse_unused(('texture',), FLAGS.mesh, '--mesh',
                           'to write the textured mesh')
  if FLAGS.mesh:
    cli.require_modules('The mesh (--mesh; --nomesh skips it)', 'trimesh')
  images = inputs_lib.list_inputs(FLAGS.input)
  inputs_lib.check_some_readable(images)
  options = runner.DemoOptions(
      output_size=FLAGS.output_size, animations=FLAGS.animations,
      num_frames=FLAGS.num_frames, max_yaw=FLAGS.max_yaw, fps=FLAGS.fps,
      mp4=FLAGS.mp4, mesh=FLAGS.mesh, texture=FLAGS.texture).validate()
  model, checkpoint = tool_flags.load_model(FLAGS.checkpoint, cfg)
  detect = inputs_lib.resolve_detect(detect_mode, model.cfg.model_name,
                                     checkpoint)
  detector = inputs_lib.FaceDetector() if detect else None
  logging.info('Demo: %d input image(s), model %s (image_size %d), face '
               'detection %s, output %s', len(images), checkpoint,
               model.cfg.image_size, 'on' if detect else 'off',
               FLAGS.output_dir)
  summary = runner.run_demo(model, images, FLAGS.output_dir, options,
                            detector, FLAGS.crop_mode, model.cfg.crop)
  skipped = summary['num_skipped']
  print(f'tfunsup3d-demo: {summary["num_processed"]} image(s) written to '
        f'{FLAGS.output_dir}' + (
            f'; {skipped} skipped (see {FLAGS.output_dir}/'
            f'{runner.SUMMARY_FILE})' if skipped else ''))


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'demo')


if __name__ == '__main__':
  run()
