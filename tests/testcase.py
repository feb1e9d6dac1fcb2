"""The checks every network and every saved model gets, written once.

In the manner of keras-hub's `TestCase.run_layer_test` and
`run_model_saving_test`: a test states what is particular to its network
(constructor arguments, input, output shape, reference layer graph) and
calls `run_network_test` for what all of them must do; saving tests call
`run_saving_test` / `assert_same_model`.

```python
from tests import testcase

class EncoderTest(testcase.TestCase):

  def test_network(self):
    self.run_network_test(Encoder, dict(cout=6, nf=8), testcase.images(3),
                          expected_output_shape=(3, 6))
```

The module is keras-hub's `test_case.py`; here that name would make it a
test file (pytest's and BUILD's `test_*.py`). Import the module, not the
class: pytest collects a TestCase class in every module that names it.
"""

import os
import shutil
import tempfile
from typing import Any, Dict, Optional

from absl.testing import parameterized
import keras
import numpy as np
import tensorflow as tf

# decompose() outputs a saved model must reproduce (canonical() gives the
# first rows of the first five).
DECOMPOSE_KEYS = ('canon_depth', 'canon_albedo', 'canon_light_d', 'view',
                  'conf_sigma_l1', 'canon_normal', 'canon_im', 'recon_depth',
                  'recon_im', 'conf_sigma_percl')
# Config keys that name where a model was saved (the rest must round-trip).
LOCATION_KEYS = ('checkpoint_dir', 'checkpoint_name')


def images(batch: int = 2, size: int = 64, seed: int = 0) -> np.ndarray:
  """Uniform random network inputs in [-1, 1], `[B, S, S, 3]` float32."""
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def model_keys(cfg) -> Dict[str, Any]:
  """The config's keys but those naming where it was saved."""
  return {k: v for k, v in cfg.to_dict().items() if k not in LOCATION_KEYS}


def model_outputs(model, input_images) -> Dict[str, Dict[str, np.ndarray]]:
  """{'decompose': {key: array}, 'canonical': {key: array}} of `model`."""
  return {half: {k: v.numpy() for k, v in
                 getattr(model, half)(input_images).items() if v is not None}
          for half in ('decompose', 'canonical')}


class TestCase(tf.test.TestCase, parameterized.TestCase):
  """tf.test.TestCase + parameterized, with the shared network and saving
  checks."""

  def scratch_dir(self) -> str:
    """A fresh directory removed after the test (absl's create_tempdir
    needs parsed flags, which pytest does not do)."""
    path = tempfile.mkdtemp(prefix='tfunsup3d-test-')
    self.addCleanup(shutil.rmtree, path, ignore_errors=True)
    return path

  # --- networks -------------------------------------------------------------

  def run_network_test(self, cls, init_kwargs: Dict[str, Any],
                       input_data: np.ndarray, expected_output_shape,
                       image_size: Optional[int] = None) -> keras.Model:
    """What every network must do; returns the network built and called.

    Checks: `cls(**init_kwargs).build_for(image_size)` (default: the input's
    size) maps `input_data` to `expected_output_shape` (a tuple, or a tuple
    of them for several outputs) of finite values, as
    `compute_output_shape` says; `get_config` / `from_config` and keras
    (de)serialisation give the same config, and with the weights copied the
    same outputs; a `.weights.h5` and a `.keras` file round trip give
    identical outputs; every trainable variable gets a finite, non-zero
    gradient.
    """
    size = image_size or input_data.shape[1]
    net = cls(**init_kwargs).build_for(size)
    outputs = net(input_data)
    shapes = tf.nest.map_structure(lambda t: tuple(t.shape), outputs)
    self.assertEqual(shapes, expected_output_shape)
    self.assertEqual(net.compute_output_shape(input_data.shape),
                     expected_output_shape)
    for tensor in tf.nest.flatten(outputs):
      self.assertAllEqual(tf.math.is_finite(tensor),
                          np.ones(tensor.shape, bool))
    self.run_config_round_trip(net, input_data, size)
    self.run_weights_round_trip(net, input_data, size)
    self.run_gradient_check(net, input_data)
    return net

  def assert_same_outputs(self, got, want, msg: str = ''):
    """Identical (nested) network outputs."""
    tf.nest.assert_same_structure(got, want)
    for a, b in zip(tf.nest.flatten(got), tf.nest.flatten(want)):
      self.assertAllEqual(a, b, msg=msg)

  def run_config_round_trip(self, net: keras.Model, input_data: np.ndarray,
                            size: int):
    cls, config = type(net), net.get_config()
    clone = cls.from_config(config).build_for(size)
    self.assertEqual(clone.get_config(), config)
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(net))
    self.assertIsInstance(revived, cls)
    self.assertEqual(revived.get_config(), config)
    self.assertEqual([tuple(w.shape) for w in clone.weights],
                     [tuple(w.shape) for w in net.weights])
    clone.set_weights(net.get_weights())
    self.assert_same_outputs(clone(input_data), net(input_data), 'from_config')

  def run_weights_round_trip(self, net: keras.Model, input_data: np.ndarray,
                             size: int):
    directory = self.scratch_dir()
    weights = os.path.join(directory, 'net.weights.h5')
    net.save_weights(weights)
    fresh = type(net).from_config(net.get_config()).build_for(size)
    fresh.load_weights(weights)
    self.assert_same_outputs(fresh(input_data), net(input_data), '.weights.h5')
    whole = os.path.join(directory, 'net.keras')
    net.save(whole)
    loaded = keras.saving.load_model(whole)
    self.assertIsInstance(loaded, type(net))
    self.assertEqual(loaded.get_config(), net.get_config())
    self.assert_same_outputs(loaded(input_data), net(input_data), '.keras')

  def run_gradient_check(self, net: keras.Model, input_data: np.ndarray):
    """Every trainable variable gets a finite, non-zero gradient of a random
    projection of the outputs (a plain sum would be blind behind norms)."""
    rng = np.random.default_rng(1)
    with tf.GradientTape() as tape:
      outputs = tf.nest.flatten(net(input_data))
      loss = tf.add_n([tf.reduce_sum(o * rng.normal(size=o.shape)
                                     .astype(np.float32)) for o in outputs])
    variables = net.trainable_variables
    grads = tape.gradient(loss, variables)
    for variable, grad in zip(variables, grads):
      self.assertIsNotNone(grad, variable.path)
      self.assertTrue(np.all(np.isfinite(grad.numpy())), variable.path)
      self.assertGreater(float(tf.reduce_max(tf.abs(grad))), 0.0,
                         variable.path)

  # --- saved models ---------------------------------------------------------

  def assert_same_model(self, loaded, model, input_images, what: str = '',
                        want=None, atol: float = 1e-5):
    """`loaded` has `model`'s config (but where it was saved) and the same
    `decompose` and `canonical` outputs (`DECOMPOSE_KEYS`) on
    `input_images` ([B,S,S,3] in [0, 1]); `want`: `model_outputs(model,
    input_images)` when the caller has it already."""
    self.assertEqual(model_keys(loaded.cfg), model_keys(model.cfg), what)
    got = model_outputs(loaded, input_images)
    want = want or model_outputs(model, input_images)
    for half, values in want.items():
      self.assertEqual(sorted(got[half]), sorted(values), f'{what}: {half}')
      for key in [k for k in DECOMPOSE_KEYS if k in values]:
        np.testing.assert_allclose(got[half][key], values[key], atol=atol,
                                   rtol=0, err_msg=f'{what}: {half} {key}')

  def run_saving_test(self, model, input_images, path: str, want=None,
                      **save_kwargs):
    """`saving.save(model, path)` then `saving.load(path)` gives the same
    model (`assert_same_model`); returns the loaded one."""
    from tfunsup3d import saving  # pylint: disable=g-import-not-at-top
    saving.save(model, path, **save_kwargs)
    loaded = saving.load(path)
    self.assert_same_model(loaded, model, input_images, path, want)
    return loaded
