"""Depth metrics against ground truth (docs/method.md §6): SIDE, MAD, MAE,
MSE, and their summaries over a test set."""

import math
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from tfunsup3d.render import normals as normals_lib


def erode(mask):
  """The reference's 1-pixel erosion: 3x3 mean (zero padded, padding
  counted) > 0.99.

  Args:
    mask: a tensor of shape `[B, H, W]` of 0/1.

  Returns:
    A float tensor of shape `[B, H, W]`.
  """
  m = tf.pad(tf.cast(mask, tf.float32)[..., tf.newaxis],
             [[0, 0], [1, 1], [1, 1], [0, 0]])
  m = tf.nn.avg_pool2d(m, 3, 1, 'VALID')[..., 0]
  return tf.cast(m > 0.99, tf.float32)


def depth_metrics(recon_depth, recon_valid, depth_gt, K):
  """Per-image scores in the input view.

  Args:
    recon_depth: predicted depth, a tensor of shape `[B, H, W]` (any real
      dtype; the metrics are computed in float32).
    recon_valid: the prediction's validity mask `[B, H, W]` (recon_depth <
      max_depth + margin).
    depth_gt: ground-truth depth `[B, H, W]`; background is its maximum
      (over the whole batch, as the reference).
    K: the camera matrix `[3, 3]`.

  Returns:
    dict of `[B]` tensors `mae`, `mse`, `side` (scale-invariant depth error,
    not scaled), `mad` (degrees), and maps `mask`, `sie_map`, `normal_gt`,
    `normal_err_map` `[B, H, W]`.
  """
  recon_depth = tf.cast(recon_depth, tf.float32)
  depth_gt = tf.cast(depth_gt, tf.float32)
  b = tf.shape(depth_gt)[0]
  mask_gt = erode(depth_gt < tf.reduce_max(depth_gt))
  mask = mask_gt * erode(recon_valid)
  count = tf.reduce_sum(mask, axis=[1, 2])

  def mean_over_mask(x):
    return tf.reduce_sum(x * mask, axis=[1, 2]) / count

  diff = recon_depth - depth_gt
  mae = mean_over_mask(tf.abs(diff))
  mse = mean_over_mask(tf.square(diff))
  log_diff = (tf.math.log(recon_depth) - tf.math.log(depth_gt)) * mask
  avg = tf.reshape(tf.reduce_sum(log_diff, axis=[1, 2]) / count, [b, 1, 1])
  sie_map = tf.square(log_diff - avg) * mask
  side = tf.sqrt(tf.reduce_sum(sie_map, axis=[1, 2]) / count)
  normal_gt = normals_lib.depth_to_normals(depth_gt, K)
  normal_pred = normals_lib.depth_to_normals(recon_depth, K)
  cos = tf.clip_by_value(tf.reduce_sum(normal_pred * normal_gt, -1), -1.0, 1.0)
  err_map = tf.acos(cos) / math.pi * 180.0 * mask
  mad = tf.reduce_sum(err_map, axis=[1, 2]) / count
  return {'mae': mae, 'mse': mse, 'side': side, 'mad': mad, 'mask': mask,
          'sie_map': sie_map, 'normal_gt': normal_gt,
          'normal_err_map': err_map}


def mean_std(scores: np.ndarray) -> Tuple[np.ndarray, np.ndarray, int]:
  """Column means and unbiased stds over the images whose scores are all
  finite (NaN std for fewer than two, as torch), and how many were left
  out. An image has NaN scores, as in the reference, when no pixel is valid
  in both the prediction and the ground truth.

  Args:
    scores: per-image scores `[N, C]`.

  Returns:
    (mean `[C]`, std `[C]`, number of images left out).
  """
  scores = np.asarray(scores, np.float64)
  finite = scores[np.all(np.isfinite(scores), axis=1)]
  left_out = scores.shape[0] - finite.shape[0]
  nan = np.full(scores.shape[1:], np.nan)
  if finite.shape[0] < 2:
    return (finite[0] if finite.shape[0] else nan), nan, left_out
  return finite.mean(0), finite.std(0, ddof=1), left_out


def paper_summary(side: np.ndarray, mad: np.ndarray) -> Dict[str, float]:
  """Per-image SIDE (unscaled) and MAD (degrees) `[N]` -> the paper's
  numbers by `mean_std`: `side_mean`, `side_std` (x1e-2), `mad_mean`,
  `mad_std`, and `num_left_out` (images with NaN scores)."""
  mean, std, left_out = mean_std(np.stack(
      [np.ravel(side), np.ravel(mad)], axis=1))
  return {'side_mean': float(mean[0] * 100.0),
          'side_std': float(std[0] * 100.0),
          'mad_mean': float(mean[1]), 'mad_std': float(std[1]),
          'num_left_out': int(left_out)}
