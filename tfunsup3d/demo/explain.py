"""Visual explanations of the light and view encoders (tf-keras-vis).

What in the image drives the predicted light direction (netL outputs dx, dy:
components 2 and 3 of its tanh output) and viewpoint (netV: pitch = rotation
about x, yaw = about y, roll = about z: components 0, 1, 2)?

* Saliency (SmoothGrad when `smooth_samples` > 0): |d score / d pixel|, the
  maximum over colour channels, normalised per image.
* Grad-CAM++: class-activation map of a convolutional feature map (default:
  the last one with more than 1x1 pixels, `network_7_relu`, S/16 x S/16),
  upsampled to the input.

tf-keras-vis needs a functional Keras model (it builds
`keras.Model(model.inputs, [outputs, layer.output])`); our encoders are
subclassed models whose layers were already called on other tensors, so
`functional_encoder` rebuilds the encoder's layer sequence on a
`keras.Input` from fresh layers holding copies of the weights (same outputs
to float rounding), with the `2 x - 1` input scaling inside: explanations
are with respect to the [0, 1] image.

The scores are the raw tanh outputs (signed): a saliency map shows what
changes the value most either way; Grad-CAM++ keeps the positive evidence
for a larger value (its ReLU), as usual.
"""

import dataclasses
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfunsup3d.data import image_files
from tfunsup3d.demo import mesh as mesh_lib

# target name -> (network, output component, column label)
TARGETS = {
    'light_dx': ('netL', 2, 'light_dx'),
    'light_dy': ('netL', 3, 'light_dy'),
    'view_pitch': ('netV', 0, 'view_pitch'),
    'view_yaw': ('netV', 1, 'view_yaw'),
    'view_roll': ('netV', 2, 'view_roll'),
}
METHODS = ('saliency', 'gradcam++')
METHOD_LABELS = {'saliency': 'Saliency', 'gradcam++': 'Grad-CAM++'}
LABEL_HEIGHT = 14


def functional_encoder(net, image_size: int, name: Optional[str] = None):
  """A functional copy of an `Encoder` (netL / netV) for tf-keras-vis.

  Args:
    net: a built `tfunsup3d.networks.Encoder`.
    image_size: S.
    name: model name (default `<net name>_functional`).

  Returns:
    `keras.Model` mapping images `[B, S, S, 3]` in [0, 1] to the encoder's
    `[B, cout]` output; layer names are the encoder's.
  """
  import keras  # pylint: disable=g-import-not-at-top
  inputs = keras.Input((image_size, image_size, 3), name='images')
  x = keras.layers.Rescaling(2.0, offset=-1.0, name='to_pm1')(inputs)
  for layer in net.network_layers:
    fresh = layer.__class__.from_config(layer.get_config())
    x = fresh(x)
    if layer.weights:
      fresh.set_weights(layer.get_weights())
  outputs = keras.layers.Reshape((net.cout,), name='output')(x)
  return keras.Model([inputs], outputs, name=name or f'{net.name}_functional')


def default_gradcam_layer(functional_model) -> str:
  """Name of the last ReLU / conv layer whose output is more than 1x1."""
  best = None
  for layer in functional_model.layers:
    shape = getattr(layer, 'output', None)
    shape = getattr(shape, 'shape', None)
    if shape is None or len(shape) != 4:
      continue
    if (shape[1] or 0) > 1 and (shape[2] or 0) > 1 and (
        'relu' in layer.name or 'conv' in layer.name):
      best = layer.name
  if best is None:
    raise ValueError(f'{functional_model.name} has no spatial feature map '
                     'for Grad-CAM++.')
  return best


# SmoothGrad's noisy copies go through the encoder in one batch.
MAX_SMOOTH_SAMPLES = 256


@dataclasses.dataclass
class Explainer:
  """Saliency / Grad-CAM++ maps of the light and view encoders.

  Args:
    model: an `Unsup3D`.
    targets: names from `TARGETS`.
    methods: names from `METHODS`.
    smooth_samples: SmoothGrad samples for saliency (0: plain gradients).
    smooth_noise: SmoothGrad noise (fraction of the input range).
    gradcam_layer: feature map for Grad-CAM++ (default
      `default_gradcam_layer`).
    seed: seeds SmoothGrad's noise for each call of `explain` (tf-keras-vis
      draws it from numpy's global generator, whose state is put back after),
      so that the same image gives the same maps.
  """
  model: object
  targets: Sequence[str] = tuple(TARGETS)
  methods: Sequence[str] = METHODS
  smooth_samples: int = 20
  smooth_noise: float = 0.1
  gradcam_layer: Optional[str] = None
  seed: int = 0

  def __post_init__(self):
    unknown = [t for t in self.targets if t not in TARGETS]
    if unknown:
      raise ValueError(f'Unknown target(s) {unknown}; choose from '
                       f'{list(TARGETS)}.')
    unknown = [m for m in self.methods if m not in METHODS]
    if unknown:
      raise ValueError(f'Unknown method(s) {unknown}; choose from '
                       f'{list(METHODS)}.')
    if not 0 <= self.smooth_samples <= MAX_SMOOTH_SAMPLES:
      raise ValueError(f'smooth_samples must be in [0, {MAX_SMOOTH_SAMPLES}] '
                       f'(all are held at once). Received: '
                       f'{self.smooth_samples}')
    if not 0.0 <= self.smooth_noise <= 1.0:  # NaN fails too.
      raise ValueError(f'smooth_noise must be in [0, 1]. Received: '
                       f'{self.smooth_noise}')
    size = int(self.model.cfg.image_size)
    self.functional = {}
    for net_name in sorted({TARGETS[t][0] for t in self.targets}):
      net = getattr(self.model, net_name)
      self.functional[net_name] = functional_encoder(net, size)
    layer = self.gradcam_layer
    for fm in self.functional.values():
      if layer is None:
        continue
      names = [l.name for l in fm.layers]
      if layer not in names:
        raise ValueError(f'gradcam_layer {layer!r} is not a layer of '
                         f'{fm.name}; choose from {names}.')

  def explain(self, images: np.ndarray) -> Dict[Tuple[str, str], np.ndarray]:
    """Maps `[N, S, S]` in [0, 1] for every (method, target)."""
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus  # pylint: disable=g-import-not-at-top
    from tf_keras_vis.saliency import Saliency  # pylint: disable=g-import-not-at-top
    images = np.asarray(images, np.float32)
    maps = {}
    for net_name, fm in self.functional.items():
      targets = [t for t in self.targets if TARGETS[t][0] == net_name]
      for method in self.methods:
        if method == 'saliency':
          tool = Saliency(fm, clone=False)
        else:
          tool = GradcamPlusPlus(fm, clone=False)
          layer = self.gradcam_layer or default_gradcam_layer(fm)
        for target in targets:
          index = TARGETS[target][1]
          score = lambda out, i=index: out[:, i]  # pylint: disable=cell-var-from-loop
          if method == 'saliency':
            state = np.random.get_state()
            np.random.seed(self.seed)
            try:
              result = tool(score, images, smooth_samples=self.smooth_samples,
                            smooth_noise=self.smooth_noise)
            finally:
              np.random.set_state(state)
          else:
            result = tool(score, images, penultimate_layer=layer)
          maps[(method, target)] = np.nan_to_num(
              np.asarray(result, np.float32)).reshape(images.shape[:3])
    return maps


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.5,
            cmap: str = 'jet') -> np.ndarray:
  """`[H, W, 3]` image and `[H, W]` map, both in [0, 1] -> uint8 overlay."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  colours = matplotlib.colormaps[cmap](np.clip(heat, 0.0, 1.0))[..., :3]
  mixed = (1.0 - alpha) * np.asarray(image)[..., :3] + alpha * colours
  return mesh_lib.to_uint8(mixed)


def grid_size(num_targets: int, num_methods: int, tile: int
              ) -> Tuple[int, int]:
  """(width, height) of an explanation grid image."""
  return (tile * (1 + num_targets), LABEL_HEIGHT + tile * num_methods)


def explanation_grid(image: np.ndarray,
                     maps: Dict[Tuple[str, str], np.ndarray], index: int,
                     targets: Sequence[str], methods: Sequence[str],
                     tile: int = 128):
  """One image's grid: a row per method (input, then one overlay per target).

  Returns:
    A PIL image of `grid_size(len(targets), len(methods), tile)`.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
  big = inputs_lib.resize(image, tile)
  rows = []
  for method in methods:
    first = Image.fromarray(mesh_lib.to_uint8(big))
    from PIL import ImageDraw  # pylint: disable=g-import-not-at-top
    ImageDraw.Draw(first).text((3, tile - 13), METHOD_LABELS[method],
                               fill=(255, 255, 0))
    row = [np.asarray(first)]
    for target in targets:
      heat = maps[(method, target)][index]
      heat = np.asarray(Image.fromarray(heat.astype(np.float32)).resize(
          (tile, tile), Image.BILINEAR))
      row.append(overlay(big, heat))
    rows.append(row)
  labels = ['input'] + [TARGETS[t][2] for t in targets]
  return runner.label_grid(rows, labels, tile, LABEL_HEIGHT)


def run_explain(model, images, output_dir: str, explainer: Explainer,
                tile: int = 128, detector=None, crop_mode: str = 'square',
                config_crop=None, batch_size: int = 8) -> Dict[str, object]:
  """Writes `<output_dir>/<name>_explain.png` for every input image.

  Args:
    model: an `Unsup3D`.
    images: `InputImage`s from `tfunsup3d.demo.inputs.list_inputs`.
    output_dir: destination folder.
    explainer: an `Explainer` of `model`.
    tile: side of each grid cell in pixels.
    detector, crop_mode, config_crop: as `tfunsup3d.demo.inputs.prepare`
      (an image it cannot use is skipped: `inputs.read_and_prepare`).
    batch_size: images explained together.

  Returns:
    dict with `written` (paths), `skipped` (`SkippedFile`s: path, reason,
    detail) and counts.

  Raises:
    UserError: no image could be processed.
  """
  from absl import logging  # pylint: disable=g-import-not-at-top
  from tfunsup3d.demo import inputs as inputs_lib  # pylint: disable=g-import-not-at-top
  from tfunsup3d.errors import UserError  # pylint: disable=g-import-not-at-top
  os.makedirs(output_dir, exist_ok=True)
  prepared, skipped = [], []
  for item in images:
    ready = inputs_lib.read_and_prepare(item.path, model.cfg.image_size,
                                        detector, crop_mode, config_crop)
    if isinstance(ready, inputs_lib.Prepared):
      prepared.append((item, ready))
    else:
      skipped.append(ready)
      logging.warning('skipped %s', ready)
  if not prepared:
    reasons = '; '.join(str(s) for s in skipped[:3])
    raise UserError(f'No image could be processed: {len(skipped)} skipped: '
                    f'{reasons}')
  written: List[str] = []
  for start in range(0, len(prepared), batch_size):
    chunk = prepared[start:start + batch_size]
    batch = np.stack([p.image for _, p in chunk])
    maps = explainer.explain(batch)
    for k, (item, p) in enumerate(chunk):
      path = os.path.join(output_dir, f'{item.name}_explain.png')
      explanation_grid(p.image, maps, k, explainer.targets, explainer.methods,
                       tile).save(path)
      written.append(path)
      logging.info('[%d/%d] %s -> %s', len(written), len(prepared),
                   image_files.printable(item.path), path)
  return {'written': written, 'skipped': skipped,
          'num_processed': len(written), 'num_skipped': len(skipped)}
