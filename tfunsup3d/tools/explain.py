"""tfunsup3d-explain: explains what the networks attend to (saliency maps of the predicted factors).

Usage:
  tfunsup3d-explain --checkpoint=results/celeba --input=photos/ \
      --output_dir=explain_out
  tfunsup3d-explain --checkpoint=model.pth --input=a.png --detect=off \
      --methods=gradcam++ --targets=view_yaw,view_pitch

For every input image, writes `<output_dir>/<name>_explain.png`: a grid with
one row per method (Saliency with SmoothGrad, Grad-CAM++; tf-keras-vis) and
one column per target -- the light encoder's direction components (light dx,
dy) and the view encoder's rotations (pitch, yaw, roll) -- each overlaid on
the input (jet colour map). Inputs are read and cropped, and the config is
merged, as in tfunsup3d-demo (--input, --detect, --crop_mode, --config,
--KEY=VALUE). See tfunsup3d/demo/explain.py.
"""

from absl import flags
from absl import logging

from tfunsup3d import config as config_lib
from tfunsup3d.demo import cli
from tfunsup3d.tools import flags as tool_flags

FLAGS = flags.FLAGS


def define_flags() -> None:
  """This script's flags (idempotent; defined when it runs)."""
  cli.define_input_flags('explain_output')
  cli.define('list', 'methods', ['saliency', 'gradcam++'],
             'Explanation methods: saliency, gradcam++.')
  cli.define('list', 'targets', ['light_dx', 'light_dy', 'view_pitch',
                                 'view_yaw', 'view_roll'],
             'Outputs to explain: light_dx, light_dy (netL), view_pitch, '
             'view_yaw, view_roll (netV).')
  cli.define('integer', 'smooth_samples', 20,
             'SmoothGrad samples for saliency (0: plain gradients; at most '
             '256).')
  cli.define('float', 'smooth_noise', 0.1,
             'SmoothGrad noise level, a fraction of the input range in '
             '[0, 1].')
  cli.define('string', 'gradcam_layer', None,
             'Feature map layer for Grad-CAM++ (default: the last encoder '
             'layer larger than 1x1, network_7_relu).')


def main(cfg: config_lib.Config) -> None:
  from tfunsup3d.demo import explain  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  for name, given, known in (('targets', FLAGS.targets, explain.TARGETS),
                             ('methods', FLAGS.methods, explain.METHODS)):
    unknown = [v for v in given if v not in known]
    if unknown or not given:
      raise tool_flags.UserError(f'--{name}: unknown {unknown or "(empty)"}; '
                                 f'choose from {", ".join(known)}.')
  from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
  if not 16 <= FLAGS.output_size <= runner.MAX_OUTPUT_SIZE:
    raise ValueError(f'--output_size must be in [16, '
                     f'{runner.MAX_OUTPUT_SIZE}]. Received: '
                     f'{FLAGS.output_size}')
  detect_mode = cli.parse_detect(FLAGS.detect)
  cli.require_modules('tfunsup3d-explain', 'tf_keras_vis', 'matplotlib')
  images = inputs_lib.list_inputs(FLAGS.input)
  inputs_lib.check_some_readable(images)
  model, checkpoint = tool_flags.load_model(FLAGS.checkpoint, cfg)
  explainer = explain.Explainer(
      model, targets=FLAGS.targets, methods=FLAGS.methods,
      smooth_samples=FLAGS.smooth_samples, smooth_noise=FLAGS.smooth_noise,
      gradcam_layer=FLAGS.gradcam_layer, seed=cfg.seed)
  detect = inputs_lib.resolve_detect(detect_mode, model.cfg.model_name,
                                     checkpoint)
  detector = inputs_lib.FaceDetector() if detect else None
  logging.info('Explain: %d input image(s), model %s, methods %s, targets %s',
               len(images), checkpoint, FLAGS.methods, FLAGS.targets)
  result = explain.run_explain(model, images, FLAGS.output_dir, explainer,
                               FLAGS.output_size, detector, FLAGS.crop_mode,
                               model.cfg.crop)
  skipped = result['num_skipped']
  print(f'tfunsup3d-explain: {result["num_processed"]} grid(s) written to '
        f'{FLAGS.output_dir}' + (f'; {skipped} skipped' if skipped else ''))


def run() -> None:
  define_flags()
  tool_flags.run_main(main, 'explain')


if __name__ == '__main__':
  run()
