"""Tests for tfunsup3d.networks.precision: mixed and float32 steps agree.

Stated tolerances, from one measurement on the small nets below (batch 2,
same weights; measured values in brackets): the loss of a mixed step is
within 0.1% of the float32 step's [bfloat16 1.6e-4 with the perceptual loss,
float16 9e-6]; each network's gradient has cosine similarity >= 0.98 with
the float32 gradient [netA 0.988, netL/netV/netC >= 0.998 in bfloat16],
except netD's, whose gradient reaches it through the renderer (depth ->
rasteriser -> sampling grid) and moves most: >= 0.8 in bfloat16 [0.863],
>= 0.95 in float16 [0.975]. bfloat16 keeps 8 mantissa bits, float16 11.
"""

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

from tests import tiny
from tfunsup3d import config as config_lib
from tfunsup3d.model import Unsup3D
from tfunsup3d.networks import VGG16Features
from tfunsup3d.networks import precision
from tfunsup3d.train.task import Unsup3DTask

LOSS_RTOL = 1e-3
GRAD_COSINE = 0.98
NETD_COSINE = {'bfloat16': 0.8, 'float16': 0.95}
# The tolerances above were measured with these sizes and the default views.
_SMALL = dict(zdim_depth=32, nf_encoder=8, xyz_rotation_range=60.0,
              vgg16_weights=None)


def _images(batch=2):
  return np.random.default_rng(0).uniform(
      0, 1, (batch, 64, 64, 3)).astype(np.float32)


def _model(mode, lam_perc):
  cfg = tiny.tiny_config(mixed_precision=mode, lam_perc=lam_perc, **_SMALL)
  keras.utils.set_random_seed(0)
  model = Unsup3D(cfg)
  if lam_perc:
    with precision.policy_scope(mode):  # random weights, as bench.model
      model.vgg = VGG16Features(name='vgg16').build_for(64)
  return model


def _loss_and_grads(model, images):
  """The step's loss and each network's gradient, flattened to a vector."""
  nets = model.networks
  with tf.GradientTape() as tape:
    out = model.decompose(images, training=True)
    loss = model.compute_losses(out, images, 0)['loss_total']
  grads = tape.gradient(loss, {k: n.trainable_variables
                               for k, n in nets.items()})
  return loss, {k: tf.concat([tf.reshape(g, [-1]) for g in gs
                             if g is not None], 0)  # None: unused head
                for k, gs in grads.items()}


def _cosine(a, b):
  return float(tf.reduce_sum(a * b) / (tf.norm(a) * tf.norm(b) + 1e-30))


class PolicyTest(tf.test.TestCase):

  def test_loss_scale_round_trip(self):
    self.assertEqual(precision.loss_scale('none'), 1.0)
    self.assertEqual(precision.loss_scale('bfloat16'), 1.0)
    self.assertEqual(precision.loss_scale('float16'), 4096.0)
    loss = tf.constant(3.0)
    self.assertIs(precision.scale_loss(loss, 1.0), loss)
    self.assertEqual(float(precision.scale_loss(loss, 4096.0)), 12288.0)
    grads = precision.unscale([tf.constant([8192.0, -4096.0]), None], 4096.0)
    self.assertAllEqual(grads[0], [2.0, -1.0])
    self.assertIsNone(grads[1])

  def test_unknown_mode_raises_and_scope_restores(self):
    with self.assertRaisesRegex(ValueError, "Received: mixed_precision='fp8'"):
      precision.policy_name('fp8')
    before = keras.mixed_precision.global_policy().name
    with precision.policy_scope('bfloat16'):
      self.assertEqual(keras.mixed_precision.global_policy().name,
                       'mixed_bfloat16')
    self.assertEqual(keras.mixed_precision.global_policy().name, before)
    self.assertEqual(config_lib.Config().mixed_precision, 'none')


class MixedAgreesWithFloat32Test(tf.test.TestCase, parameterized.TestCase):

  @parameterized.parameters(('bfloat16', 1.0), ('float16', 0.0))
  def test_loss_and_gradients(self, mode, lam_perc):
    images = _images()
    ref, mixed = _model('none', lam_perc), _model(mode, lam_perc)
    self.assertEqual(mixed.netD.compute_dtype, mode)
    self.assertEqual(mixed.netD.variable_dtype, 'float32')
    for a, b in zip(ref.trainable_variables, mixed.trainable_variables):
      self.assertAllEqual(a, b)  # same start: differences are precision's
    loss_ref, grads_ref = _loss_and_grads(ref, images)
    loss, grads = _loss_and_grads(mixed, images)
    self.assertEqual(loss.dtype, tf.float32)
    self.assertAllClose(loss, loss_ref, rtol=LOSS_RTOL, atol=0)
    for name, grad in grads.items():
      least = NETD_COSINE[mode] if name == 'netD' else GRAD_COSINE
      self.assertGreaterEqual(_cosine(grad, grads_ref[name]), least,
                              msg=name)

  def test_float16_task_step_scales_the_loss(self):
    images = {'image': tf.constant(_images())}
    losses = {}
    for mode in ('none', 'float16'):
      cfg = tiny.tiny_config(mixed_precision=mode, lam_perc=0.0, **_SMALL)
      keras.utils.set_random_seed(0)
      task = Unsup3DTask(cfg)
      first = float(task.train_step(images, 0)['loss_total'])
      losses[mode] = (first, float(task.train_step(images, 0)['loss_total']))
    self.assertTrue(np.all(np.isfinite(losses['float16'])))
    # The second loss is after one step: the float16 update (scaled loss,
    # unscaled gradients) moves the loss as the float32 one does (1%, a
    # looser bound after an update).
    self.assertAllClose(losses['float16'], losses['none'], rtol=1e-2)


if __name__ == '__main__':
  tf.test.main()
