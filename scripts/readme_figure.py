"""Draws README's picture: input -> depth, albedo, shading, a turned frame.

  python -m scripts.readme_figure                      # trains a tiny model
  python -m scripts.readme_figure --checkpoint=results/quickstart

Without --checkpoint it writes a small synthetic face set (`tfunsup3d.data.
synth`, the quickstart's generator) to a temporary folder and trains the
quickstart config on it for --steps steps (a couple of minutes on 2
idle CPU cores), then decomposes --num_images test faces with the demo's own
functions (`tfunsup3d.demo.runner.Demo`) and writes one row per face:
input, canonical depth, albedo, shading, and a frame of the textured shape
turned by --yaw degrees. With --checkpoint it uses that model and its
config's test images instead; --images names another folder.
"""

import argparse
import os
import tempfile

import numpy as np


def _train_tiny(config: str, work_dir: str, steps: int, num_test: int):
  """Trains the quickstart config `steps` steps on a fresh synthetic set;
  returns (checkpoint directory, test image folder)."""
  # pylint: disable=g-import-not-at-top
  from tfunsup3d import config as config_lib
  from tfunsup3d.data import synth
  from tfunsup3d.train import loop
  cfg = config_lib.load(config)
  data_dir = os.path.join(work_dir, 'data')
  cfg.train_val_data_dir = data_dir
  cfg.test_data_dir = os.path.join(data_dir, 'test')
  cfg.checkpoint_dir = os.path.join(work_dir, 'run')
  cfg.num_epochs = 1
  cfg.max_steps_per_epoch = steps
  cfg.use_logger = False
  counts = {'train': steps * cfg.batch_size, 'val': cfg.batch_size,
            'test': num_test}
  print(f'writing {sum(counts.values())} synthetic faces to {data_dir}')
  synth.write_dataset(data_dir, counts, cfg, seed=cfg.seed, overwrite=True)
  print(f'training {steps} steps of {cfg.batch_size} images')
  loop.train(cfg)
  return cfg.checkpoint_dir, os.path.join(data_dir, 'test', 'image')


def _test_images(checkpoint: str) -> str:
  """The image folder of the checkpoint's test split."""
  # pylint: disable=g-import-not-at-top
  from tfunsup3d.model import Unsup3D
  cfg = Unsup3D.from_checkpoint(checkpoint).cfg
  folder = cfg.test_data_dir or os.path.join(cfg.train_val_data_dir, 'test')
  image_dir = os.path.join(folder, 'image')
  return image_dir if os.path.isdir(image_dir) else folder


def compose(checkpoint: str, image_dir: str, num_images: int, yaw: float,
            tile: int):
  """One labelled row per image of `image_dir` (sorted; the first
  `num_images`): input, depth, albedo, shading, turned shape.

  Returns:
    A PIL image, 5 * tile wide.
  """
  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import inputs as inputs_lib
  from tfunsup3d.demo import mesh as mesh_lib
  from tfunsup3d.demo import runner
  from tfunsup3d.model import Unsup3D
  model = Unsup3D.from_checkpoint(checkpoint)
  demo = runner.Demo(model, runner.DemoOptions(
      output_size=tile, num_frames=4, max_yaw=yaw))
  names = sorted(os.listdir(image_dir))[:num_images]
  rows = []
  for name in names:
    image = inputs_lib.read_image(os.path.join(image_dir, name))
    prepared = inputs_lib.prepare(image, model.cfg.image_size)
    res = demo.decompose(prepared.image)
    views = demo.view_images(prepared, res)
    frame = demo.render_animations(res)['textured'][1]  # yaw = +yaw
    cells = [views[k] for k in ('input', 'depth', 'albedo', 'shading')]
    cells = [mesh_lib.to_uint8(np.broadcast_to(c, (tile, tile, 3)))
             for c in cells]
    rows.append(cells + [np.asarray(frame, np.uint8)])
  labels = ['input', 'depth', 'albedo', 'shading', f'turned {yaw:g} deg']
  return runner.label_grid(rows, labels, tile)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(
      prog='python -m scripts.readme_figure', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--checkpoint', default=None,
                      help='a trained model (default: train a tiny one)')
  parser.add_argument('--config', default='configs/quickstart.yml',
                      help='config of the tiny model')
  parser.add_argument('--steps', type=int, default=100,
                      help='training steps of the tiny model')
  parser.add_argument('--images', default=None,
                      help='folder of images to decompose (default: the '
                      'test split of the model\'s data)')
  parser.add_argument('--num_images', type=int, default=3,
                      help='rows: the first images of the folder, sorted')
  parser.add_argument('--yaw', type=float, default=30.0,
                      help='turn of the last column, degrees')
  parser.add_argument('--tile', type=int, default=128)
  parser.add_argument('--output', default='docs/figure.png')
  args = parser.parse_args(argv)
  with tempfile.TemporaryDirectory() as work_dir:
    if args.checkpoint:
      checkpoint, image_dir = args.checkpoint, (
          args.images or _test_images(args.checkpoint))
    else:
      checkpoint, image_dir = _train_tiny(args.config, work_dir, args.steps,
                                          args.num_images)
      image_dir = args.images or image_dir
    figure = compose(checkpoint, image_dir, args.num_images, args.yaw,
                     args.tile)
  os.makedirs(os.path.dirname(args.output) or '.', exist_ok=True)
  figure.save(args.output)
  print(f'wrote {args.output} ({figure.width}x{figure.height}, '
        f'model {args.checkpoint or f"{args.steps} steps"})')


if __name__ == '__main__':
  main()
