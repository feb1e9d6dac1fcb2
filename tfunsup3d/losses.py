"""Reconstruction losses of Unsup3D (SPEC §4), NHWC."""

from typing import Optional

import tensorflow as tf

EPS = 1e-7


def masked_mean(values, mask):
  """sum(values * mask) / sum(mask), the mask broadcast to `values` first
  (so an `[B, H, W, 1]` mask counts once per channel, as the reference's
  `mask.expand_as(loss)`)."""
  mask = tf.broadcast_to(tf.cast(mask, values.dtype), tf.shape(values))
  return tf.reduce_sum(values * mask) / tf.reduce_sum(mask)


def photometric_loss(im1, im2, mask=None, conf_sigma=None):
  """L1 reconstruction loss, optionally a Laplacian NLL under confidence.

  e = |im1 - im2| per pixel and channel; with sigma: e * sqrt(2) / sigma +
  log sigma.

  Args:
    im1: a tensor of shape `[B, H, W, C]`.
    im2: a tensor of shape `[B, H, W, C]`.
    mask: optional tensor of shape `[B, H, W, 1]`.
    conf_sigma: optional tensor of shape `[B, H, W, 1]`, > 0.

  Returns:
    A scalar tensor.
  """
  loss = tf.abs(im1 - im2)
  if conf_sigma is not None:
    loss = loss * 2.0 ** 0.5 / (conf_sigma + EPS) + tf.math.log(conf_sigma + EPS)
  if mask is None:
    return tf.reduce_mean(loss)
  return masked_mean(loss, mask)


def feature_loss(feat1, feat2, mask=None, conf_sigma=None):
  """Perceptual loss on given features (the reference's relu3_3 term).

  e = (f1 - f2)^2; with sigma: e / (2 sigma^2) + log sigma. The mask is
  average-pooled to the feature resolution.

  Args:
    feat1: a tensor of shape `[B, h, w, C]`.
    feat2: a tensor of shape `[B, h, w, C]`.
    mask: optional tensor of shape `[B, H, W, 1]` with H = k h.
    conf_sigma: optional tensor of shape `[B, h, w, 1]`.

  Returns:
    A scalar tensor.
  """
  loss = tf.square(feat1 - feat2)
  if conf_sigma is not None:
    loss = loss / (2.0 * conf_sigma ** 2 + EPS) + tf.math.log(conf_sigma + EPS)
  if mask is None:
    return tf.reduce_mean(loss)
  k = mask.shape[1] // feat1.shape[1]
  if k > 1:
    mask = tf.nn.avg_pool2d(tf.cast(mask, loss.dtype), k, k, 'VALID')
  return masked_mean(loss, mask)


def flip_weight(epoch, lam_flip: float, lam_flip_start_epoch: int):
  """lambda_flip: 1 before `lam_flip_start_epoch`, then `lam_flip`.

  `epoch` may be a Python number or a tensor of any real dtype (e.g. an
  int64 epoch counter variable)."""
  epoch = tf.cast(epoch, tf.float32)
  return tf.where(epoch < lam_flip_start_epoch, 1.0, lam_flip)


def total_loss(l1, l1_flip, perc: Optional[tf.Tensor],
               perc_flip: Optional[tf.Tensor], depth_sm, lam_flip,
               lam_perc: float, lam_depth_sm: float):
  """L1 + lf L1' + lp (P + lf P') + ls smoothness."""
  total = l1 + lam_flip * l1_flip + lam_depth_sm * depth_sm
  if perc is not None:
    total = total + lam_perc * (perc + lam_flip * perc_flip)
  return total
