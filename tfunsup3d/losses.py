"""Reconstruction losses of Unsup3D (docs/method.md §4), NHWC.

The masked losses come in two forms: `*_sum` returns (the sum over the kept
entries, their count), `*_loss` the mean, their ratio. `global_means`
divides sums by their counts summed over the replicas of a `tf.distribute`
strategy (one all-reduce for all terms), so the replicas' values (and
gradients) add up to those of the means over the global batch; with one
replica they are sum / count.
"""

import math
from typing import Optional

import tensorflow as tf

EPS = 1e-7


def replica_sum(x):
  """`x` summed over the replicas of the current `tf.distribute` replica
  context; `x` itself with one replica or outside `strategy.run`."""
  ctx = tf.distribute.get_replica_context()
  if ctx is None or ctx.num_replicas_in_sync == 1:
    return x
  return ctx.all_reduce(tf.distribute.ReduceOp.SUM, x)


def global_means(sums=None, means=None):
  """This replica's parts of means over the global batch, with one
  all-reduce of the counts.

  With one replica these are the plain means. With several, the parts (and,
  the counts carrying no gradient, their gradients) SUM over the replicas to
  the means and gradients of the whole batch, sum_r S_r / sum_r C_r, which a
  mean of the replicas' means is not when their counts differ.

  Args:
    sums: dict name -> (sum S_r, count C_r) of this replica, scalar tensors
      (e.g. of `masked_sum`).
    means: dict name -> (mean M_r, count C_r): a mean over C_r equally
      weighted items of this replica (e.g. images). Names not in `sums`.

  Returns:
    dict name -> scalar tensor: S_r / sum_r C_r, resp. M_r * C_r / sum_r C_r
    (exactly M_r with one replica).
  """
  sums, means = sums or {}, means or {}
  counts = {k: tf.cast(tf.stop_gradient(c), v.dtype)
            for k, (v, c) in {**sums, **means}.items()}
  totals = replica_sum(counts) if counts else {}
  result = {k: v / totals[k] for k, (v, _) in sums.items()}
  result.update({k: v * (counts[k] / totals[k])
                 for k, (v, _) in means.items()})
  return result


def masked_sum(values, mask):
  """(sum(values * mask), sum(mask)), the mask broadcast to `values` first
  (so an `[B, H, W, 1]` mask counts once per channel, as the reference's
  `mask.expand_as(loss)`)."""
  mask = tf.broadcast_to(tf.cast(mask, values.dtype), tf.shape(values))
  return tf.reduce_sum(values * mask), tf.reduce_sum(mask)


def masked_mean(values, mask):
  """sum(values * mask) / sum(mask) (see `masked_sum`)."""
  total, count = masked_sum(values, mask)
  return total / count


def _sum_and_count(loss, mask):
  """`masked_sum(loss, mask)`, or every entry with weight 1 without mask."""
  if mask is None:
    return tf.reduce_sum(loss), tf.cast(tf.size(loss), loss.dtype)
  return masked_sum(loss, mask)


def photometric_map(im1, im2, conf_sigma=None):
  """The L1 reconstruction loss per pixel and channel, `[B, H, W, C]`:
  e = |im1 - im2|; with confidence, the Laplacian NLL e * sqrt(2) / sigma +
  log sigma (`conf_sigma` `[B, H, W, 1]`, > 0)."""
  loss = tf.abs(im1 - im2)
  if conf_sigma is not None:
    loss = (loss * 2.0 ** 0.5 / (conf_sigma + EPS) +
            tf.math.log(conf_sigma + EPS))
  return loss


def photometric_sum(im1, im2, mask=None, conf_sigma=None):
  """`photometric_map` as (sum over the kept entries, their count).

  Args:
    im1: a tensor of shape `[B, H, W, C]`.
    im2: a tensor of shape `[B, H, W, C]`.
    mask: optional tensor of shape `[B, H, W, 1]`.
    conf_sigma: optional tensor of shape `[B, H, W, 1]`, > 0.

  Returns:
    (sum, count): scalar tensors; the loss is sum / count.
  """
  return _sum_and_count(photometric_map(im1, im2, conf_sigma), mask)


def photometric_loss(im1, im2, mask=None, conf_sigma=None):
  """The mean of `photometric_sum` (same arguments): a scalar tensor."""
  total, count = photometric_sum(im1, im2, mask, conf_sigma)
  return total / count


def feature_sum(feat1, feat2, mask=None, conf_sigma=None):
  """Perceptual loss on given features (the reference's relu3_3 term), as
  (sum over the kept entries, their count).

  e = (f1 - f2)^2; with sigma: e / (2 sigma^2) + log sigma. The mask is
  average-pooled to the feature resolution. The same sum as over every
  entry, taken over the channels of each pixel first, so that sigma, the
  log and the mask are not broadcast to (and, for the gradient, kept at)
  the features' size.

  Args:
    feat1: a tensor of shape `[B, h, w, C]`.
    feat2: a tensor of shape `[B, h, w, C]`.
    mask: optional tensor of shape `[B, H, W, 1]` with H = k h.
    conf_sigma: optional tensor of shape `[B, h, w, 1]`.

  Returns:
    (sum, count): scalar tensors; the loss is sum / count.
  """
  loss = tf.reduce_sum(tf.square(feat1 - feat2), axis=-1, keepdims=True)
  channels = tf.cast(tf.shape(feat1)[-1], loss.dtype)
  if conf_sigma is not None:
    loss = loss / (2.0 * conf_sigma ** 2 + EPS) + channels * tf.math.log(
        conf_sigma + EPS)
  if mask is not None:
    k = mask.shape[1] // feat1.shape[1]
    if k > 1:
      mask = tf.nn.avg_pool2d(tf.cast(mask, loss.dtype), k, k, 'VALID')
  total, count = _sum_and_count(loss, mask)
  return total, count * channels


def feature_loss(feat1, feat2, mask=None, conf_sigma=None):
  """The mean of `feature_sum` (same arguments): a scalar tensor."""
  total, count = feature_sum(feat1, feat2, mask, conf_sigma)
  return total / count


def flip_weight(epoch, lam_flip: float, lam_flip_start_epoch: int):
  """lambda_flip: 1 before `lam_flip_start_epoch`, then `lam_flip`.

  `epoch` may be a Python number or a tensor of any real dtype (e.g. an
  int64 epoch counter variable)."""
  epoch = tf.cast(epoch, tf.float32)
  return tf.where(epoch < lam_flip_start_epoch, 1.0, lam_flip)


def scheduled_weight(step, start: float, end: float, hold_steps: float,
                     ramp_steps: float) -> tf.Tensor:
  """A weight that changes with the training step.

  `start` for the first `hold_steps` steps, then linear to `end` over
  `ramp_steps` steps, then `end` (at once when `ramp_steps` is 0).

  Args:
    step: a scalar (number or tensor) of steps taken.
    start, end: the values before and after the change.
    hold_steps, ramp_steps: >= 0.
  Returns:
    A float32 scalar tensor between `start` and `end`.
  """
  step = tf.cast(step, tf.float32)
  if ramp_steps <= 0:
    progress = tf.cast(step >= float(hold_steps), tf.float32)
  else:
    progress = tf.clip_by_value(
        (step - float(hold_steps)) / float(ramp_steps), 0.0, 1.0)
  return start + (end - start) * progress


def spread_prior(values, min_std: float):
  """A spread prior: per column, (1 - std / min_std)^2 while the batch's
  values spread less than `min_std`, else 0; the mean over the columns.

  Args:
    values: a tensor of shape `[B, K]`.
    min_std: the smallest standard deviation wanted per column (> 0).

  Returns:
    A scalar in [0, 1].
  """
  std = tf.sqrt(tf.math.reduce_variance(values, axis=0) + 1e-12)
  return tf.reduce_mean(tf.square(tf.nn.relu(1.0 - std / min_std)))


def yaw_spread(yaw, min_std_deg: float):
  """The yaw-spread prior: `spread_prior` of the batch's yaw.

  Args:
    yaw: a tensor of shape `[B]`, radians.
    min_std_deg: the smallest standard deviation wanted, degrees (> 0).

  Returns:
    A scalar in [0, 1].
  """
  return spread_prior(yaw[:, tf.newaxis], math.radians(min_std_deg))


def light_tilt_spread(light_d, min_std: float):
  """The light-tilt spread prior: `spread_prior` of the batch's light tilts
  (dx/dz, dy/dz), x and y each held to `min_std`.

  Args:
    light_d: unit light directions, a tensor of shape `[B, 3]` (dz > 0).
    min_std: the smallest standard deviation wanted per tilt (> 0).

  Returns:
    A scalar in [0, 1].
  """
  return spread_prior(light_d[:, :2] / light_d[:, 2:], min_std)


def yaw_shift_correlation(view):
  """The yaw/shift decorrelation prior: the squared correlation, over the
  batch, of the predicted yaw with the predicted sideways translation,
  with the translation's gradient stopped.

  A view network can explain where the object sits in the frame with the
  yaw instead of the translation (a turn about the rotation centre also
  moves the object sideways); the prior leaves the translation to do that
  and pushes the yaw to depend on something else. Only the yaw moves.

  Args:
    view: a tensor of shape `[B, 6]` (pitch, yaw, roll in radians, then x,
      y, z translation), B >= 2.

  Returns:
    A scalar in [0, 1]: 0 when uncorrelated (or when either is constant).
  """
  yaw = view[:, 1] - tf.reduce_mean(view[:, 1])
  shift = tf.stop_gradient(view[:, 3] - tf.reduce_mean(view[:, 3]))
  cov = tf.reduce_mean(yaw * shift)
  var = ((tf.reduce_mean(tf.square(yaw)) + 1e-12) *
         (tf.reduce_mean(tf.square(shift)) + 1e-12))
  return tf.square(cov) / var


def protrusion(depth, min_depth: float, max_depth: float,
               centre: float = 1.0 / 3.0, edge: float = 1.0 / 8.0):
  """The protrusion prior: how far the canonical depth's centre lies behind
  the edge of its frame.

  Per image, the mean depth over the central square (its side `centre` of
  the image's) minus the mean over the band along the border (`edge` of the
  side wide), as a fraction of the depth range, counted only where positive;
  the mean over the batch. An object stands out of its frame towards the
  camera (a face from its backdrop, a car from the wall behind it), so only
  the hollow (inverted) twin of a relief, which Lambertian shading with the
  light mirrored renders nearly alike, pays it; a convex relief of any depth
  pays nothing.

  Args:
    depth: a tensor of shape `[B, H, W]`.
    min_depth: the depth range's near end.
    max_depth: the depth range's far end (> min_depth).
    centre: the central square's side, a fraction of the image's (0, 1).
    edge: the border band's width, a fraction of the side, (0, 0.5).

  Returns:
    A scalar in [0, 1].
  """
  h, w = depth.shape[1], depth.shape[2]
  ys = (tf.range(h, dtype=tf.float32) + 0.5) / h - 0.5
  xs = (tf.range(w, dtype=tf.float32) + 0.5) / w - 0.5
  dist = tf.maximum(tf.abs(ys)[:, tf.newaxis], tf.abs(xs)[tf.newaxis, :])
  inner = tf.cast(dist < centre / 2.0, depth.dtype)
  outer = tf.cast(dist > 0.5 - edge, depth.dtype)

  def mean(mask):
    return tf.reduce_sum(depth * mask, [1, 2]) / tf.reduce_sum(mask)

  behind = (mean(inner) - mean(outer)) / (max_depth - min_depth)
  return tf.reduce_mean(tf.nn.relu(behind))


def total_loss(l1, l1_flip, perc: Optional[tf.Tensor],
               perc_flip: Optional[tf.Tensor], depth_sm, lam_flip,
               lam_perc: float, lam_depth_sm: float):
  """L1 + lf L1' + lp (P + lf P') + ls smoothness."""
  total = l1 + lam_flip * l1_flip + lam_depth_sm * depth_sm
  if perc is not None:
    total = total + lam_perc * (perc + lam_flip * perc_flip)
  return total
