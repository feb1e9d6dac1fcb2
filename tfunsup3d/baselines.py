"""The paper's naive depth baselines (docs/method.md §7), scored by `metrics`.

* constant null depth: the same flat map for every test image (a constant
  depth; SIDE and MAD do not depend on its value, we use the mean
  ground-truth foreground depth of the training set);
* average ground-truth depth: the per-pixel mean of the training set's
  ground-truth depth maps, used as the prediction for every test image. The
  mean is taken over the images where the pixel is foreground (background
  depth is a code, not a surface); pixels never foreground get the constant.

Both predictions are valid everywhere (they are inside the depth range), so
the metric mask is the test image's eroded foreground.
"""

from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import metrics
from tfunsup3d import render
from tfunsup3d.data import images
from tfunsup3d.factors import depth as depth_lib


def foreground(depth: np.ndarray) -> np.ndarray:
  """The metrics' foreground: d < max d (the background code is the max)."""
  depth = np.asarray(depth)
  return depth < depth.max()


def average_depth(train_depth: np.ndarray,
                  train_mask: Optional[np.ndarray] = None
                  ) -> np.ndarray:
  """Per-pixel mean foreground depth `[H, W]` of `[M, H, W]` maps."""
  train_depth = np.asarray(train_depth, np.float64)
  if train_mask is None:
    train_mask = foreground(train_depth)
  train_mask = np.asarray(train_mask, bool)
  if not train_mask.any():
    raise ValueError('The training depth maps have no foreground pixel.')
  counts = train_mask.sum(0)
  sums = np.where(train_mask, train_depth, 0.0).sum(0)
  fill = train_depth[train_mask].mean()
  return np.where(counts > 0, sums / np.maximum(counts, 1), fill).astype(
      np.float32)


def _scores(pred: np.ndarray, depth_gt: np.ndarray, K,
            batch_size: int) -> Dict[str, np.ndarray]:
  """Per-image SIDE, MAD, MAE, MSE of one prediction `[H, W]` for all."""
  out = {'side': [], 'mad': [], 'mae': [], 'mse': []}
  for start in range(0, len(depth_gt), batch_size):
    gt = tf.constant(depth_gt[start:start + batch_size])
    recon = tf.ones_like(gt) * pred
    m = metrics.depth_metrics(recon, tf.ones_like(gt), gt, K)
    for key, values in out.items():
      values.append(m[key].numpy())
  return {k: np.concatenate(v) for k, v in out.items()}


def baseline_scores(test_depth: np.ndarray, train_depth: np.ndarray, K,
                    test_mask: Optional[np.ndarray] = None,
                    train_mask: Optional[np.ndarray] = None,
                    batch_size: int = 256) -> Dict[str, Dict[str, object]]:
  """SIDE / MAD of the null and average-depth baselines on a test set.

  Args:
    test_depth: ground-truth depth `[N, H, W]` of the test images.
    train_depth: ground-truth depth `[M, H, W]` of the training images.
    K: the camera matrix `[3, 3]` (`render.intrinsics(S, fov)`).
    test_mask: foreground `[N, H, W]` (default: d < max d over the set).
    train_mask: foreground `[M, H, W]` (default likewise).
    batch_size: images per metrics call.

  Returns:
    {'null': r, 'average': r}, r a dict with per-image arrays `side`, `mad`,
    `mae`, `mse` `[N]` and the summaries of `metrics.paper_summary`
    (`side_mean`, `side_std` x1e-2, `mad_mean`, `mad_std` in degrees).
  """
  test_depth = np.asarray(test_depth, np.float32)
  if test_depth.ndim != 3 or np.asarray(train_depth).ndim != 3:
    raise ValueError('test_depth and train_depth must be [N, H, W].')
  if train_mask is None:
    train_mask = foreground(train_depth)
  avg = average_depth(train_depth, train_mask)
  constant = float(np.asarray(train_depth)[np.asarray(train_mask, bool)]
                   .mean())
  if test_mask is not None:  # background gets one code above all depths
    test_mask = np.asarray(test_mask, bool)
    code = max(float(test_depth.max()), float(test_depth[test_mask].max()) +
               1e-3)
    test_depth = np.where(test_mask, test_depth, code).astype(np.float32)
  results = {}
  for name, pred in (('null', np.full_like(avg, constant)),
                     ('average', avg)):
    r = _scores(pred, test_depth, K, batch_size)
    r.update(metrics.paper_summary(r['side'], r['mad']))
    results[name] = r
  return results


def split_depths(cfg, split: str) -> np.ndarray:
  """Ground-truth depth `[N, S, S]` of a split of `cfg`'s data set (the
  ground-truth layout, docs/method.md §5), in file order."""
  ds = images.build_dataset(
      config_lib.from_dict({'load_gt_depth': True}, base=cfg), split,
      training=False)
  return np.concatenate([depth_lib.depth_from_png(
      b['depth_gt'], cfg.min_depth, cfg.max_depth).numpy() for b in ds], 0)


def split_baselines(cfg) -> Dict[str, Dict[str, object]]:
  """`baseline_scores` of `cfg`'s test split against its train split."""
  return baseline_scores(split_depths(cfg, 'test'),
                         split_depths(cfg, 'train'),
                         render.intrinsics(cfg.image_size, cfg.fov))
