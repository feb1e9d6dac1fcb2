"""PyTorch ops written out by their definitions in numpy, for tests that
check our NHWC layers against the reference's NCHW ones."""

import numpy as np


def conv2d(x, w, stride, pad):
  """PyTorch Conv2d by definition. x `[C, H, W]`, w OIHW -> `[O, H', W']`."""
  x = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
  out_c, _, kh, kw = w.shape
  out_h = (x.shape[1] - kh) // stride + 1
  out_w = (x.shape[2] - kw) // stride + 1
  out = np.zeros((out_c, out_h, out_w))
  for i in range(out_h):
    for j in range(out_w):
      patch = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw]
      out[:, i, j] = np.tensordot(w, patch, axes=([1, 2, 3], [0, 1, 2]))
  return out
