"""GPU checks (marker `gpu`): the renderer and one model step on the GPU
agree with the CPU. Skipped when TensorFlow sees no GPU (CI, laptops);
`bench/gpu.sh` runs them on a machine with one.

The z-buffer's depth gradient is discontinuous where a pixel's winning
triangle changes: on the CPU, XLA against no XLA, or the view moved by one
float32 ulp, moves about 0.1% of its entries by up to ~5e-3 (of a gradient
scale ~10). Device comparisons of that gradient therefore allow a few such
entries (`assert_close_but_edges`); the CPU tests below hold the criterion
to that evidence. TensorFloat-32 (the GPU's default for float32 matmuls and
convolutions) is switched off while comparing, so both sides are float32.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from tfunsup3d import render
from tfunsup3d.train import task as task_lib
from tests import tiny

requires_gpu = pytest.mark.skipif(not tf.config.list_physical_devices('GPU'),
                                  reason='no GPU visible to TensorFlow')


@pytest.fixture
def float32_matmuls():
  tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
  tf.config.experimental.enable_tensor_float_32_execution(False)
  yield
  tf.config.experimental.enable_tensor_float_32_execution(tf32)


def assert_close_but_edges(got, want, atol=1e-3, rtol=1e-3,
                           max_fraction=0.005, max_jump=0.05):
  """`got` ~ `want` within atol + rtol|want| on all but `max_fraction` of the
  entries, and within `max_jump` x max|want| on those (z-buffer edges)."""
  got, want = np.asarray(got), np.asarray(want)
  off = np.abs(got - want) > atol + rtol * np.abs(want)
  assert off.mean() <= max_fraction, (
      f'{off.mean():.4%} of entries differ (allowed {max_fraction:.2%}); '
      f'max |diff| {np.abs(got - want).max():.3g}')
  jump = np.abs(got - want).max() / np.abs(want).max()
  assert jump <= max_jump, f'max |diff| is {jump:.3g} of max |value|'


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


def _render_and_grad(size: int, jit: bool):
  """tf.function of (depth, view) -> (render_depth, d(sum(w*recon))/d depth)."""
  K = render.intrinsics(size, 10.0)
  weights = tf.constant(np.random.default_rng(1).uniform(
      size=(2, size, size)).astype(np.float32))

  def fn(d, v):
    with tf.GradientTape() as tape:
      tape.watch(d)
      recon = render.render_depth(d, v, K, 1.0, 0.9, 1.1)
      loss = tf.reduce_sum(recon * weights)
    return recon, tape.gradient(loss, d)
  return tf.function(fn, jit_compile=jit)


@functools.lru_cache(maxsize=None)
def _cpu_pairs(size: int):
  """(XLA, no XLA, XLA with the view nudged by one ulp) on the CPU."""
  depth, view = (tf.constant(a) for a in _scene(size))
  nudged = tf.constant(np.nextafter(view.numpy(), np.float32(1)))
  return (_on('/CPU:0', _render_and_grad(size, True), depth, view),
          _on('/CPU:0', _render_and_grad(size, False), depth, view),
          _on('/CPU:0', _render_and_grad(size, True), depth, nudged))


@pytest.mark.parametrize('size', [64, 128])
def test_the_edge_criterion_holds_on_the_cpu(size):
  xla, plain, moved = _cpu_pairs(size)
  np.testing.assert_allclose(xla[0], plain[0], atol=1e-4)
  np.testing.assert_allclose(moved[0], xla[0], atol=1e-4)
  assert_close_but_edges(xla[1], plain[1])
  assert_close_but_edges(moved[1], xla[1])
  with pytest.raises(AssertionError):  # and it still bites
    assert_close_but_edges(moved[1] + 0.01 * np.abs(xla[1]).max(), xla[1])


def test_a_plain_tolerance_would_fail_at_the_edges():
  xla, plain, _ = _cpu_pairs(128)
  with pytest.raises(AssertionError):
    np.testing.assert_allclose(xla[1], plain[1], atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize('size', [64, 128])
@pytest.mark.usefixtures('float32_matmuls')
@pytest.mark.gpu
@requires_gpu
def test_zbuffer_and_its_gradient_match_the_cpu(size):
  depth, view = (tf.constant(a) for a in _scene(size))
  gpu = _on('/GPU:0', _render_and_grad(size, True), depth, view)
  cpu = _on('/CPU:0', _render_and_grad(size, True), depth, view)
  np.testing.assert_allclose(gpu[0], cpu[0], atol=1e-4)
  assert_close_but_edges(gpu[1], cpu[1])


@pytest.mark.usefixtures('float32_matmuls')
@pytest.mark.gpu
@requires_gpu
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
