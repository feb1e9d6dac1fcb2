"""GPU checks (marker `gpu`): the renderer and one model step on the GPU
agree with the CPU. Skipped when TensorFlow sees no GPU (CI, laptops);
`bench/gpu.sh` runs them on a machine with one."""

import numpy as np
import pytest
import tensorflow as tf

from tfunsup3d import render
from tfunsup3d.train import task as task_lib
from tests import tiny

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not tf.config.list_physical_devices('GPU'),
                       reason='no GPU visible to TensorFlow'),
]


def _scene(size: int, batch: int = 2, seed: int = 0):
  """A smooth canonical depth [B,S,S] in (0.9, 1.1) and views [B,6]."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
  bump = np.clip(1.0 - x ** 2 / 0.5 - y ** 2 / 0.7, 0.0, 1.0)
  depth = 1.05 - 0.12 * bump[None] * rng.uniform(0.5, 1.0, (batch, 1, 1))
  view = np.concatenate([rng.uniform(-0.4, 0.4, (batch, 3)),
                         rng.uniform(-0.02, 0.02, (batch, 3))], axis=1)
  return depth.astype(np.float32), view.astype(np.float32)


def _on(device: str, fn, *args):
  with tf.device(device):
    return [np.asarray(t) for t in fn(*args)]


@pytest.mark.parametrize('size', [64, 128])
def test_zbuffer_and_its_gradient_match_the_cpu(size):
  depth, view = _scene(size)
  K = render.intrinsics(size, 10.0)
  weights = tf.constant(np.random.default_rng(1).uniform(
      size=(2, size, size)).astype(np.float32))

  @tf.function(jit_compile=True)
  def fn(d, v):
    with tf.GradientTape() as tape:
      tape.watch(d)
      recon = render.render_depth(d, v, K, 1.0, 0.9, 1.1)
      loss = tf.reduce_sum(recon * weights)
    return recon, tape.gradient(loss, d)

  gpu = _on('/GPU:0', fn, tf.constant(depth), tf.constant(view))
  cpu = _on('/CPU:0', fn, tf.constant(depth), tf.constant(view))
  np.testing.assert_allclose(gpu[0], cpu[0], atol=1e-4)
  np.testing.assert_allclose(gpu[1], cpu[1], atol=1e-3, rtol=1e-3)


def test_decompose_and_a_train_step_match_the_cpu():
  images = tf.constant(np.random.default_rng(2).uniform(
      size=(2, 64, 64, 3)).astype(np.float32))
  results = {}
  for device, jit in (('/CPU:0', False), ('/GPU:0', True)):  # GPU: XLA
    cfg = tiny.tiny_config(jit_compile=jit, batch_size=2)
    with tf.device(device):
      tf.keras.utils.set_random_seed(0)
      task = task_lib.Unsup3DTask(cfg)
      out = task.model.decompose(images)
      scalars = task.train_step({'image': images}, 0)
      results[device] = (out, scalars)
  (cpu_out, cpu_s), (gpu_out, gpu_s) = results['/CPU:0'], results['/GPU:0']
  for key in ('canon_depth', 'canon_albedo', 'view', 'recon_im'):
    np.testing.assert_allclose(gpu_out[key], cpu_out[key], atol=2e-3,
                               err_msg=key)
  assert np.isfinite(float(gpu_s['loss_total']))
  np.testing.assert_allclose(float(gpu_s['loss_total']),
                             float(cpu_s['loss_total']), rtol=1e-3)
