"""tfunsup3d-crop: turns photos into a training folder of tight face crops.

Usage:
  tfunsup3d-crop --input=photos/ --output_dir=data/my_faces
  tfunsup3d-crop --input=a.jpg,more/ --output_dir=data/my_faces \
      --image_size=128 --val_fraction=0.1 --test_fraction=0.1 --overwrite
  tfunsup3d-crop --input=cars/ --output_dir=data/my_cars --detect=off

The method learns when the object fills the frame, as in the authors' crops
of CelebA; on loosely framed photos it locks into a too-deep relief. This
crops every photo (any size or aspect; folders searched recursively) around
its largest face, found by mtcnn (the `demo` extra), to the reference demo's
square (1.1 x the face box, moved down by 15% of its half side), or with
--detect=off to its largest centred square (already framed photos, other
categories), resizes it to the config's image_size (--image_size, 64 by
default; training resizes larger crops) and writes
OUTPUT_DIR/{train,val,test}/NAME.png. The split follows from a hash of the
name, so a rerun on a grown folder keeps earlier images where they were.
Unreadable files, photos without a face and faces under half of
image_size are skipped and counted in OUTPUT_DIR/crop_summary.json. Ends
with the tfunsup3d-train command for the folder.
"""

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d.demo import cli
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """This script's flags (idempotent; defined when it runs)."""
  cli.define('string', 'input', None,
             'Photos: a file, a folder (searched recursively for images) or '
             'a comma-separated list of both.')
  cli.define('string', 'output_dir', None,
             'The data set root to write: train/, val/, test/ and '
             'crop_summary.json.')
  cli.define('string', 'detect', 'on',
             'Face detection with mtcnn (the demo extra): on (crop around '
             'the largest face), off (the largest centred square), or auto '
             '(on when mtcnn is installed).')
  cli.define('float', 'val_fraction', 0.05, 'Share of the validation split.')
  cli.define('float', 'test_fraction', 0.05, 'Share of the test split.')
  cli.define('boolean', 'overwrite', False,
             'Replace the splits of --output_dir that already hold images '
             '(without it, the script refuses and changes nothing).')


def main(cfg: config_lib.Config) -> None:
  from tfunsup3d.demo import dataset  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  if not FLAGS.output_dir:
    raise tool_flags.UserError('--output_dir is required (the data set '
                               'root to write).')
  dataset.check_fractions(FLAGS.val_fraction, FLAGS.test_fraction)
  mode = cli.parse_detect(FLAGS.detect)
  detect = mode == 'on' or (mode == 'auto' and inputs_lib.mtcnn_available())
  images = inputs_lib.list_inputs(FLAGS.input)
  inputs_lib.check_some_readable(images)
  detector = inputs_lib.FaceDetector() if detect else None
  summary = dataset.write_crops(
      images, FLAGS.output_dir, cfg.image_size, detector,
      FLAGS.val_fraction, FLAGS.test_fraction, cfg.seed, FLAGS.overwrite)
  print('tfunsup3d-crop: ' + dataset.report(summary, FLAGS.output_dir,
                                            tool_flags.config_paths()))


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'crop')


if __name__ == '__main__':
  run()
