"""Tests of tfunsup3d.train.optimizers: torch.optim.Adam semantics."""

import warnings

import keras
import numpy as np
import tensorflow as tf

from tfunsup3d import config
from tfunsup3d.train import optimizers


def torch_adam(w, grads, lr, wd, betas=(0.9, 0.999), eps=1e-8):
  """torch.optim.Adam(weight_decay=wd).step(), transcribed in float64; `lr`
  a number or one per step."""
  w = np.asarray(w, np.float64)
  m, v = np.zeros_like(w), np.zeros_like(w)
  b1, b2 = betas
  for t, (g, step_lr) in enumerate(
      zip(grads, np.broadcast_to(lr, [len(grads)])), 1):
    g = g + wd * w  # L2 added to the gradient (not decoupled).
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    denom = np.sqrt(v) / np.sqrt(1 - b2 ** t) + eps
    w = w - step_lr / (1 - b1 ** t) * m / denom
  return w


class TorchAdamTest(tf.test.TestCase):

  def test_one_step_by_hand(self):
    # w = 2, g = 0.5, wd = 0.1: g' = 0.7; m = 0.07, v = 0.00049; after bias
    # correction m^ = 0.7, sqrt(v^) = 0.7; w' = 2 - lr * 0.7 / (0.7 + 1e-8).
    var = keras.Variable(np.array([2.0], np.float32))
    opt = optimizers.TorchAdam(1e-2, l2_weight_decay=0.1)
    opt.build([var])
    optimizers.apply_gradients(opt, [tf.constant([0.5])], [var])
    self.assertAllClose(var.numpy(), [2.0 - 1e-2 * 0.7 / (0.7 + 1e-8)],
                        atol=1e-7)
    self.assertAllClose(opt._momentums[0].numpy(), [0.07], rtol=1e-5)
    self.assertAllClose(opt._velocities[0].numpy(), [0.00049], rtol=1e-4)

  def test_weight_decay_waits_for_the_gradient(self):
    # wd * w depends on nothing else: without a control edge from the
    # gradient, TF's executor may compute it for every variable at the start
    # of a step and hold the copies through the whole backward pass.
    var = keras.Variable(np.ones([4], np.float32))
    opt = optimizers.TorchAdam(1e-2, l2_weight_decay=0.1)
    opt.build([var])

    @tf.function
    def step(g):
      optimizers.apply_gradients(opt, [tf.identity(g, name='the_gradient')],
                                 [var])
    graph = step.get_concrete_function(tf.TensorSpec([4])).graph
    decays = [op for op in graph.get_operations()
              if op.type == 'Mul' and any(
                  i.op.type == 'ReadVariableOp' for i in op.inputs)]
    self.assertLen(decays, 1)
    read = [i.op for i in decays[0].inputs if i.op.type == 'ReadVariableOp']
    self.assertTrue(read[0].control_inputs,
                    'the decay reads the variable before the gradient exists')

  def test_matches_torch_rule_over_steps(self):
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((3, 5)).astype(np.float32)
    # Small gradients make eps and the decay term matter.
    grads = [1e-4 * rng.standard_normal((3, 5)).astype(np.float32)
             for _ in range(4)]
    var = keras.Variable(w0)
    opt = optimizers.TorchAdam(1e-3, l2_weight_decay=5e-4)
    opt.build([var])

    @tf.function(jit_compile=True, autograph=False)
    def step(g):
      optimizers.apply_gradients(opt, [g], [var])

    for g in grads:
      step(tf.constant(g))
    expected = torch_adam(w0, grads, 1e-3, 5e-4)
    self.assertAllClose(var.numpy(), expected, rtol=1e-5, atol=1e-7)
    self.assertEqual(int(opt.iterations.numpy()), 4)
    # Keras' Adam differs (epsilon hat, decoupled decay): the test can fail.
    keras_var = keras.Variable(w0)
    keras_opt = keras.optimizers.Adam(1e-3, epsilon=1e-8, weight_decay=5e-4)
    for g in grads:
      keras_opt.apply([tf.constant(g)], [keras_var])
    self.assertGreater(np.abs(keras_var.numpy() - expected).max(), 1e-6)

  def test_step_scalars_are_made_once_for_all_variables(self):
    # Three variables, one traced step: the beta powers (two Pow ops) are
    # made once, and each variable still follows torch's rule; update_step
    # alone (Keras' per-variable entry) makes the same update.
    rng = np.random.default_rng(1)
    w0 = [rng.standard_normal(s).astype(np.float32) for s in ([3], [2, 2], [])]
    grads = [1e-3 * rng.standard_normal(w.shape).astype(np.float32)
             for w in w0]
    variables = [keras.Variable(w) for w in w0]
    opt = optimizers.TorchAdam(1e-3, l2_weight_decay=5e-4)
    opt.build(variables)

    @tf.function(autograph=False)
    def step(*g):
      optimizers.apply_gradients(opt, list(g), variables)
    graph = step.get_concrete_function(
        *[tf.TensorSpec(w.shape) for w in w0]).graph
    self.assertLen([op for op in graph.get_operations()
                    if op.type == 'Pow'], 2)
    step(*[tf.constant(g) for g in grads])
    alone = keras.Variable(w0[1])
    alone_opt = optimizers.TorchAdam(1e-3, l2_weight_decay=5e-4)
    alone_opt.build([alone])
    alone_opt.update_step(tf.constant(grads[1]), alone, 1e-3)
    for var, w, g in zip(variables, w0, grads):
      self.assertAllClose(var.numpy(), torch_adam(w, [g], 1e-3, 5e-4),
                          rtol=1e-5, atol=1e-7)
    self.assertAllClose(alone.numpy(), variables[1].numpy(), rtol=1e-6)

  def test_none_gradients_are_skipped_without_warnings(self):
    a = keras.Variable(np.ones([2], np.float32))
    b = keras.Variable(np.ones([2], np.float32))
    opt = optimizers.TorchAdam(1e-2)
    opt.build([a, b])
    with warnings.catch_warnings():
      warnings.simplefilter('error')
      n = optimizers.apply_gradients(opt, [tf.ones([2]), None], [a, b])
    self.assertEqual(n, 1)
    self.assertAllClose(b.numpy(), [1.0, 1.0])
    self.assertNotAllClose(a.numpy(), [1.0, 1.0])
    self.assertAllClose(opt._momentums[1].numpy(), [0.0, 0.0])

  def test_rejects_decoupled_weight_decay(self):
    with self.assertRaisesRegex(ValueError, 'l2_weight_decay'):
      optimizers.TorchAdam(1e-3, weight_decay=0.1)
    with self.assertRaisesRegex(ValueError, 'l2_weight_decay'):
      optimizers.TorchAdam(1e-3, l2_weight_decay=-1.0)

  def test_config_round_trip(self):
    opt = optimizers.TorchAdam(3e-4, l2_weight_decay=5e-4)
    again = optimizers.TorchAdam.from_config(opt.get_config())
    self.assertAllClose(again.l2_weight_decay, 5e-4)
    self.assertAllClose(again.epsilon, 1e-8)
    self.assertAllClose(float(again.learning_rate), 3e-4)

  def test_lr_decay_follows_its_schedule_by_hand(self):
    # hold 2, ramp 2, to 0.25: steps 0-2 at lr, step 3 at 0.625 lr (half
    # way), steps 4 and 5 at 0.25 lr; the update is torch's with that lr.
    rng = np.random.default_rng(2)
    w0 = rng.standard_normal([4]).astype(np.float32)
    grads = [1e-3 * rng.standard_normal([4]).astype(np.float32)
             for _ in range(6)]
    var = keras.Variable(w0)
    opt = optimizers.TorchAdam(1e-2, l2_weight_decay=5e-4,
                               lr_decay=[2, 2, 0.25])
    opt.build([var])
    step = tf.function(lambda g: optimizers.apply_gradients(opt, [g], [var]))
    for g in grads:
      step(tf.constant(g))
    lrs = 1e-2 * np.array([1, 1, 1, 0.625, 0.25, 0.25])
    self.assertAllClose(var.numpy(), torch_adam(w0, grads, lrs, 5e-4),
                        rtol=1e-5, atol=1e-7)
    # Can fail: a constant rate ends elsewhere.
    self.assertNotAllClose(var.numpy(), torch_adam(w0, grads, 1e-2, 5e-4),
                           rtol=1e-4, atol=1e-6)
    self.assertAllClose(float(opt.learning_rate), 1e-2)  # What is saved.
    again = optimizers.TorchAdam.from_config(opt.get_config())
    self.assertEqual(again.lr_decay, [2.0, 2.0, 0.25])


class BuildOptimizersTest(tf.test.TestCase):

  def test_per_network_learning_rate_scales(self):
    nets = {name: keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
            for name in ('netD', 'netA', 'netL', 'netV')}
    cfg = config.Config(lr=2e-4, view_lr_scale=3.0, light_lr_scale=5.0,
                        depth_lr_scale=0.5).resolved()
    opts = optimizers.build_optimizers(nets, cfg)
    self.assertAllClose(float(opts['netA'].learning_rate), 2e-4)
    self.assertAllClose(float(opts['netV'].learning_rate), 6e-4)
    self.assertAllClose(float(opts['netL'].learning_rate), 1e-3)
    self.assertAllClose(float(opts['netD'].learning_rate), 1e-4)

  def test_lr_decay_from_the_config(self):
    nets = {'netD': keras.Sequential([keras.Input((2,)),
                                      keras.layers.Dense(1)])}
    cfg = config.Config(lr_decay=[10, 5, 0.1]).resolved()
    opt = optimizers.build_optimizers(nets, cfg)['netD']
    self.assertEqual(opt.lr_decay, [10.0, 5.0, 0.1])
    self.assertIsNone(optimizers.build_optimizers(
        nets, config.Config().resolved())['netD'].lr_decay)


if __name__ == '__main__':
  tf.test.main()
