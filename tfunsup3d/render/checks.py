"""Shape and value checks shared by the render functions."""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf


def check_tensor(tensor, name: str, rank: Optional[int] = None,
                 last_dims: Sequence[int] = (), dtype=tf.float32) -> tf.Tensor:
  """Converts `tensor`, checks its static rank/trailing dims and finiteness.

  The finiteness check runs only in eager mode (it costs a device sync and is
  not supported inside XLA clusters); inside graphs the training loop's
  NaN guard catches non-finite values.

  Raises:
    ValueError: naming `name`, on a wrong rank, trailing dimension, or NaN/Inf.
  """
  tensor = tf.convert_to_tensor(tensor, dtype=dtype)
  shape = tensor.shape
  if rank is not None and shape.rank is not None and shape.rank != rank:
    raise ValueError(f'{name} must have rank {rank}. Received: shape={shape}')
  for i, dim in enumerate(reversed(list(last_dims))):
    got = shape[-1 - i] if shape.rank is not None else None
    if got is not None and dim is not None and got != dim:
      raise ValueError(f'{name} must have shape [..., '
                       f'{", ".join(map(str, last_dims))}]. '
                       f'Received: shape={shape}')
  if tf.executing_eagerly() and dtype.is_floating:
    if not np.all(np.isfinite(tensor.numpy())):
      raise ValueError(f'{name} contains NaN or Inf values.')
  return tensor


def safe_divide(num: tf.Tensor, den: tf.Tensor, eps: float = 1e-12):
  """num / den with the double-where pattern: 0 and a finite gradient where
  |den| <= eps."""
  ok = tf.abs(den) > eps
  safe_den = tf.where(ok, den, tf.ones_like(den))
  return tf.where(ok, num / safe_den, tf.zeros_like(num))
