"""Canonical depth: raw net output -> depth in [min_depth, max_depth]."""

import math
from typing import Optional

import tensorflow as tf


def rescale(x, min_value: float, max_value: float):
  """Maps [-1, 1] linearly onto [min_value, max_value]."""
  return (1.0 + x) / 2.0 * max_value + (1.0 - x) / 2.0 * min_value


def canonical_depth(raw, min_depth: float, max_depth: float,
                    centering: str = 'mean',
                    border_depth: Optional[float] = None):
  """The reference's depth post-processing, before the border is set.

  Centre the raw map (`centering`), tanh, rescale to [min_depth, max_depth].

  Args:
    raw: a tensor of shape `[B, H, W]` (netD output, no activation).
    min_depth: near end of the depth range.
    max_depth: far end of the depth range.
    centering: 'mean' (the reference): subtract each image's mean, so the
      map's tanh-space mean is 0 (the middle of the range); 'none': raw
      as it is; 'border': shift each image so that the mean of its two
      left and right border columns maps to `border_depth`, the depth
      `set_border` gives those columns (clipped to 0.99 of the way to
      either end of the range).
    border_depth: needed by 'border'.

  Returns:
    A tensor of shape `[B, H, W]`.
  """
  if centering == 'mean':
    raw = raw - tf.reduce_mean(raw, axis=[1, 2], keepdims=True)
  elif centering == 'border':
    mid, half = (max_depth + min_depth) / 2.0, (max_depth - min_depth) / 2.0
    level = math.atanh(min(max((border_depth - mid) / half, -0.99), 0.99))
    border = _border_columns(raw)
    raw = raw - tf.reduce_sum(raw * border, axis=[1, 2], keepdims=True) / (
        tf.reduce_sum(border) * raw.shape[1]) + level
  elif centering != 'none':
    raise ValueError(f'centering must be mean, none or border. Received: '
                     f'{centering!r}')
  return rescale(tf.tanh(raw), min_depth, max_depth)


def _border_columns(depth, border_width: int = 2):
  """`[W]`: 1 on the left and right `border_width` columns of `[B, H, W]`
  `depth` (not rows: the reference pads the width only), else 0."""
  w = depth.shape[2]
  cols = tf.range(w)
  return tf.cast((cols < border_width) | (cols >= w - border_width),
                 depth.dtype)


def set_border(depth, border_depth: float, border_width: int = 2):
  """Sets the left and right `border_width` columns (`_border_columns`) of
  `[B, H, W]` depth to `border_depth`."""
  border = _border_columns(depth, border_width)
  return depth * (1.0 - border) + border * border_depth


def smoothness(depth, min_depth: float, max_depth: float):
  """Mean absolute depth gradient in units of the depth range (the
  reference's `loss_depth_sm`, on the depth before its border is set)."""
  scale = max_depth - min_depth
  dy = tf.reduce_mean(tf.abs(depth[:, :-1, :] - depth[:, 1:, :]) / scale)
  dx = tf.reduce_mean(tf.abs(depth[:, :, :-1] - depth[:, :, 1:]) / scale)
  return dy + dx


def curvature(depth, min_depth: float, max_depth: float,
              min_radius: float = 0.0):
  """Mean absolute second difference of the depth along columns and rows,
  in units of the depth range (config `lam_depth_curv`).

  A smooth relief pays little (a plane nothing, a parabola z = a x^2 its
  2a per pixel step), a ripple of the pixel grid's scale much more: a
  checkerboard of amplitude e pays 4e along each axis, where the first-order
  `smoothness` charges it 2e, no more than a slope of 2e per pixel.

  Args:
    depth: `[B, H, W]`, H, W >= 3.
    min_depth: near end of the depth range.
    max_depth: far end (> min_depth).
    min_radius: >= 0; the means are over the second differences at least
      this far from the map's centre (in half-sides: the corners are at
      sqrt(2); config `depth_curv_min_radius`); 0: all of them.

  Returns:
    A scalar tensor.
  """
  dyy, dxx = _second_differences(depth)
  if min_radius <= 0:
    return (tf.reduce_mean(tf.abs(dyy)) + tf.reduce_mean(tf.abs(dxx))) / (
        max_depth - min_depth)
  h, w = depth.shape[1], depth.shape[2]
  ys = tf.linspace(-1.0, 1.0, h)[:, None]
  xs = tf.linspace(-1.0, 1.0, w)[None, :]
  far = tf.cast(tf.sqrt(ys ** 2 + xs ** 2) >= min_radius, depth.dtype)

  def band_mean(a, band):  # a: [B, h', w'], band: [h', w'] of 0/1.
    count = tf.maximum(tf.reduce_sum(band), 1.0)
    return tf.reduce_mean(tf.reduce_sum(tf.abs(a) * band, [1, 2])) / count
  return (band_mean(dyy, far[1:-1, :]) + band_mean(dxx, far[:, 1:-1])) / (
      max_depth - min_depth)


def _second_differences(depth):
  """The second differences of `[B, H, W]` depth along its columns
  `[B, H-2, W]` and along its rows `[B, H, W-2]`."""
  return (depth[:, 2:, :] - 2.0 * depth[:, 1:-1, :] + depth[:, :-2, :],
          depth[:, :, 2:] - 2.0 * depth[:, :, 1:-1] + depth[:, :, :-2])


def ripple(depth, min_depth: float, max_depth: float, window: int = 4):
  """The part of `curvature` that changes sign within `window` pixels, in
  units of the depth range (config `lam_depth_ripple`).

  Along each axis, over every `window` consecutive second differences a,
  mean |a| - |mean a|: 0 where the curvature keeps its sign (any parabola,
  a dome, a single crease), all of mean |a| where it averages out (a
  checkerboard, a wave of period 2, 4 or `window` pixels). So it charges
  the pixel-scale ripple `curvature` charges, and not the smooth relief
  or the ridges `curvature` charges too; a step of height h costs h / 2 in
  each of the window - 1 windows that hold both of its second differences.

  Args:
    depth: `[B, H, W]`, H, W >= window + 2.
    min_depth: near end of the depth range.
    max_depth: far end (> min_depth).
    window: the number of consecutive second differences compared, >= 2.

  Returns:
    A scalar tensor.
  """
  def along(a, axis):
    n = a.shape[axis] - window + 1
    parts = [a[:, i:i + n] if axis == 1 else a[:, :, i:i + n]
             for i in range(window)]
    return tf.reduce_mean(tf.add_n([tf.abs(x) for x in parts])
                          - tf.abs(tf.add_n(parts))) / window
  dyy, dxx = _second_differences(depth)
  return (along(dyy, 1) + along(dxx, 2)) / (max_depth - min_depth)


def decode_depth_png(p, min_depth: float, max_depth: float):
  """Ground-truth depth PNG value p in [0, 1] -> depth (1-p) max + p min.

  Args:
    p: a tensor or array of any shape, e.g. `depth_gt` `[B, H, W, 1]`.
    min_depth: near end of the depth range (p = 1).
    max_depth: far end of the depth range (p = 0, the background).

  Returns:
    Depth of the same shape and kind as `p`.
  """
  return (1.0 - p) * max_depth + p * min_depth


def depth_from_png(depth_p, min_depth: float, max_depth: float):
  """The loader's ground-truth depth PNG values -> depth maps.

  Args:
    depth_p: PNG values p in [0, 1], `[B, S, S]` or `[B, S, S, C]` (channel
      0 is used, as the reference's `depth_gt[:, 0]`).
    min_depth: near end of the depth range (p = 1).
    max_depth: far end of the depth range (p = 0, the background).

  Returns:
    A float32 tensor of shape `[B, S, S]` (`decode_depth_png`).
  """
  depth_p = tf.convert_to_tensor(depth_p, tf.float32)
  if depth_p.shape.rank == 4:
    depth_p = depth_p[..., 0]
  return decode_depth_png(depth_p, min_depth, max_depth)


def valid_mask(depth, min_depth: float, max_depth: float):
  """Pixels a reprojected depth map covers (docs/method.md §2's validity mask).

  Args:
    depth: a tensor of shape `[B, H, W]`, reprojected into the input view
      (uncovered pixels are at `max_depth + m`, m = (max - min) / 2).
    min_depth: near end of the depth range.
    max_depth: far end of the depth range.

  Returns:
    A float32 tensor of the same shape: 1 where depth < max_depth + m.
  """
  margin = (max_depth - min_depth) / 2.0
  return tf.cast(depth < max_depth + margin, tf.float32)
