"""Training curricula: values that start narrow and widen with the steps.

Additions of this package, off by default. They were written against the
too-deep relief with too small a view that loosely framed objects lock into,
and measured not to fix it (docs/experiments.md); they stay so that those
runs can be repeated. Each follows `ramp`: a start value held for some
steps, then linear to 1.
- Relief (`relief_curriculum`): the canonical depth range narrowed about its
  centre (`Unsup3D.canonical(relief=...)`).
- Framing (`crop_curriculum`): the training images centre-cropped
  (`centre_crop`): a zoom about the image centre by bilinear resampling that
  keeps the image size and the mirror symmetry of the pixel grid.
Not a schedule, but of the same kind:
- Crop mix (`crop_mix`): a random share of each batch centre-cropped, at
  every step (`crop_some`); with `crop_camera`, rendered with the camera
  the crops have (`crop_intrinsics`).
"""

import math

import tensorflow as tf

from tfunsup3d import losses
from tfunsup3d.render import camera
from tfunsup3d.render import reprojection


def ramp(step, start: float, hold_steps: float,
         ramp_steps: float) -> tf.Tensor:
  """A curriculum's value at training step `step`.

  `start` for the first `hold_steps` steps, then linear to 1 over
  `ramp_steps` steps, then 1 (at once when `ramp_steps` is 0).

  Args:
    step: a scalar (number or tensor) of steps taken.
    start: the value at step 0, in (0, 1].
    hold_steps, ramp_steps: >= 0.
  Returns:
    A float32 scalar tensor in [start, 1].
  """
  return losses.scheduled_weight(step, start, 1.0, hold_steps, ramp_steps)


def centre_crop(images, fraction) -> tf.Tensor:
  """The centre `fraction` of each side, resized back to the input size.

  Args:
    images: a tensor of shape `[B, H, W, C]`.
    fraction: a scalar in (0, 1]: the crop's side over the image's (the
      pixel centres of the output span `fraction` of the input's).
  Returns:
    A tensor of shape `[B, H, W, C]` (bilinear; `images` up to rounding at
    1).
  """
  images = tf.convert_to_tensor(images)
  shape = tf.shape(images)
  h, w = images.shape[1], images.shape[2]
  ys = tf.linspace(-1.0, 1.0, h) * fraction
  xs = tf.linspace(-1.0, 1.0, w) * fraction
  grid = tf.stack(tf.meshgrid(xs, ys), axis=-1)  # [H, W, 2] of (x, y)
  grid = tf.broadcast_to(grid[None], [shape[0], h, w, 2])
  return reprojection.grid_sample(images, grid)


def crop_some(inputs, fraction: float, probability: float, seed):
  """Centre-crops (`centre_crop`) each image with probability `probability`.

  Args:
    inputs: a dict of tensors of shape `[B, H, W, C]` (image, depth): an
      image and its depth are cropped together.
    fraction: the crop's side over the image's, in (0, 1].
    probability: in [0, 1].
    seed: a stateless seed, shape `[2]` int32 (the same seed, the same
      draws).
  Returns:
    A dict like `inputs`.
  """
  first = next(iter(inputs.values()))
  pick = tf.random.stateless_uniform(tf.shape(first)[:1], seed) < probability
  return {k: tf.where(pick[:, None, None, None], centre_crop(v, fraction), v)
          for k, v in inputs.items()}


def crop_intrinsics(image_size: int, fov: float, fraction: float):
  """The camera of a `centre_crop` to `fraction`: the same pinhole with the
  field of view the crop spans, 2 atan(fraction tan(fov / 2)) (the focal
  length divided by `fraction`).

  Returns:
    A float32 tensor of shape `[3, 3]` (`render.intrinsics`).
  """
  half = math.atan(fraction * math.tan(math.radians(fov) / 2.0))
  return camera.intrinsics(image_size, math.degrees(2.0 * half))
