"""tfunsup3d-export: exports a trained model as a SavedModel (TF Serving layout) or TFLite.

Usage:
  tfunsup3d-export --checkpoint=results/celeba                # SavedModel
  tfunsup3d-export --checkpoint=pretrained_celeba.pth --name=celeba \
      --export_dir=saved_models --version=3 --tflite
  tfunsup3d-export --checkpoint=results/quickstart --nosaved_model --tflite \
      --tflite_variants=float32,int8 --tflite_images=data/quickstart/test/image

SavedModel: `<export_dir>/<name>/<version>/` (name: --name or the config's
model_name; version: --version or the next integer), signatures
`serving_default` (input `images`, float32 [None, S, S, 3] in [0, 1]) and
`predict_encoded` (input `image_bytes`, string [None] of JPEG/PNG files;
decoded, cropped (--encoded_crop) and resized in the graph); metadata in
`assets/tfunsup3d.json`. See tfunsup3d/export/saved_model.py.

TFLite (--tflite): `<export_dir>/<name>_tflite/<version>/` holds each network
(netD, netA, netL, netV, netC) and the canonical decomposition (no
rasteriser) as float32, float16 and dynamic-range int8 `.tflite` files, and
`tflite_report.json` with their sizes, errors against Keras and time per
image, measured on smooth random images or on yours (--tflite_images). See
tfunsup3d/export/tflite.py.

Config: the --config=FILE.yml keys lie under the checkpoint's own config and
--KEY=VALUE flags over it (those fixing network sizes must agree with it);
the config key export_dir sets the base directory; --helpfull lists them all.
"""

import os

from absl import flags

from tfunsup3d import config as config_lib
from tfunsup3d import progress
from tfunsup3d.demo import cli
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS
TFLITE_VARIANTS = ('float32', 'float16', 'int8')  # tfunsup3d.export.tflite


def define_flags() -> None:
  """This script's flags (idempotent; defined when it runs)."""
  cli.define_checkpoint_flag()
  cli.define('string', 'name', None, 'Model name, the folder under '
             'export_dir (default: the config\'s model_name).')
  cli.define('integer', 'version', None, 'Integer version folder (default: '
             'the next one after the existing versions).')
  cli.define('boolean', 'saved_model', True, 'Write the SavedModel.')
  cli.define('boolean', 'overwrite', False, 'Replace an existing version.')
  cli.define('enum', 'encoded_crop', 'config',
             'Crop of predict_encoded before resizing: the config\'s `crop`, '
             'the largest centred square, or none.',
             enum_values=['config', 'square', 'none'])
  cli.define('boolean', 'serving_jit_compile', False,
             'XLA-compile the SavedModel\'s model function (TF Serving then '
             'needs an XLA-enabled build; see docs/deploy.md).')
  cli.define('boolean', 'tflite', False, 'Also convert to TFLite (float32, '
             'float16, int8) and write tflite_report.json.')
  cli.define('list', 'tflite_variants', list(TFLITE_VARIANTS),
             'TFLite variants: float32, float16, int8 (dynamic range).')
  cli.define('list', 'tflite_models', None, 'TFLite models to convert '
             '(default: netD, netA, netL, netV, netC and canonical).')
  cli.define('string', 'tflite_images', None, 'A folder of images (searched '
             'recursively, in sorted order) to measure the TFLite models\' '
             'errors and speed on, pre-processed as in evaluation (the '
             'config\'s crop and image_size); default: smooth random images.')
  cli.define('integer', 'tflite_num_images', 8, 'How many --tflite_images '
             'to use (unreadable ones are skipped and counted).',
             lower_bound=1)


def measurement_images(folder: str, count: int, cfg: config_lib.Config):
  """The first `count` readable images under `folder` (sorted, recursive)
  as float32 `[N, S, S, 3]` in [0, 1], pre-processed as in evaluation.

  Raises:
    UserError: no such folder, or no readable image in it.
  """
  # pylint: disable=g-import-not-at-top
  import numpy as np
  import tensorflow as tf
  from tfunsup3d.data import image_files
  from tfunsup3d.data import images as images_lib
  from tfunsup3d.demo import inputs
  if not os.path.isdir(folder):
    raise tool_flags.UserError(f'--tflite_images: no such folder: '
                               f'{image_files.printable(folder)}')
  paths = inputs.image_paths(folder)
  loaded, skipped = [], 0
  for path in paths:
    if len(loaded) == count:
      break
    try:
      loaded.append(images_lib.load_image_file(path, cfg.image_size,
                                               cfg.crop))
    except (OSError, ValueError, tf.errors.OpError) as e:
      skipped += 1
      print(f'tfunsup3d-export: skipped {image_files.printable(path)}: '
            f'{str(e).splitlines()[0]}')
  if not loaded:
    raise tool_flags.UserError(
        f'--tflite_images: no readable image in '
        f'{image_files.printable(folder)} ({len(paths)} image files, '
        f'{skipped} unreadable)')
  print(f'tfunsup3d-export: TFLite errors and speed measured on '
        f'{len(loaded)} images from {image_files.printable(folder)}'
        + (f' ({skipped} unreadable, skipped)' if skipped else ''))
  return np.stack(loaded)


def main(cfg: config_lib.Config) -> None:
  if not FLAGS.saved_model and not FLAGS.tflite:
    raise tool_flags.UserError('Nothing to export: --nosaved_model without '
                               '--tflite.')
  tool_flags.refuse_unused(('tflite_models', 'tflite_variants',
                            'tflite_images', 'tflite_num_images'),
                           FLAGS.tflite, '--tflite', 'to convert to TFLite')
  bad = sorted(set(FLAGS.tflite_variants) - set(TFLITE_VARIANTS))
  if bad:
    raise tool_flags.UserError(f'Unknown --tflite_variants {bad}; choose from '
                               f'{", ".join(TFLITE_VARIANTS)}.')
  if FLAGS.version is not None and not 0 <= FLAGS.version < 2 ** 63:
    raise tool_flags.UserError(  # TF Serving reads versions as int64.
        f'--version must be in [0, 2^63 - 1]. Received: {FLAGS.version}')
  stages = progress.Progress(1 + FLAGS.saved_model + FLAGS.tflite, 'export',
                             'stage')
  model, checkpoint = tool_flags.load_model(FLAGS.checkpoint, cfg)
  images = None
  if FLAGS.tflite:  # bad names or images: refused before writing anything
    from tfunsup3d.export import tflite  # pylint: disable=g-import-not-at-top
    tflite.select_models(model, FLAGS.tflite_models)
    if FLAGS.tflite_images:
      images = measurement_images(FLAGS.tflite_images,
                                  FLAGS.tflite_num_images, model.cfg)
  stages.update(values={'done': 'load'})
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfunsup3d.export import saved_model  # pylint: disable=g-import-not-at-top
  tf.get_logger().setLevel('WARNING')  # SavedModel/converter INFO chatter.
  name = FLAGS.name or model.cfg.model_name
  base = cfg.export_dir
  version = FLAGS.version
  if version is None:
    version = max(
        saved_model.next_version(os.path.join(base, name)),
        saved_model.next_version(os.path.join(base, f'{name}_tflite')))
  tflite_dir = os.path.join(base, f'{name}_tflite', str(version))
  if FLAGS.tflite and os.path.exists(tflite_dir) and not FLAGS.overwrite:
    raise FileExistsError(f'TFLite version exists: {tflite_dir} (choose '
                          'another --version or pass --overwrite)')
  if FLAGS.saved_model:
    path = saved_model.export_saved_model(
        model, base, name, version, source=checkpoint,
        jit_compile=FLAGS.serving_jit_compile,
        encoded_crop=FLAGS.encoded_crop, overwrite=FLAGS.overwrite)
    stages.update(values={'done': 'SavedModel'})
    print(f'tfunsup3d-export: SavedModel written to {path} (signatures '
          f'{", ".join(saved_model.SIGNATURES)})')
  if FLAGS.tflite:
    report = tflite.export_tflite(
        model, tflite_dir, FLAGS.tflite_variants, names=FLAGS.tflite_models,
        images=images, source=checkpoint,
        images_from=FLAGS.tflite_images if images is not None else None)
    print(f'tfunsup3d-export: TFLite models and {tflite.REPORT_FILE} written '
          f'to {tflite_dir}')
    stages.update(values={'done': 'TFLite'})
    print(tflite.report_table(report))


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'export')


if __name__ == '__main__':
  run()
