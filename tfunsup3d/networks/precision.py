"""Mixed precision of the networks: their Keras dtype policy, the loss scale.

Config key `mixed_precision`:
  'none' (default): everything float32.
  'bfloat16': the five networks and VGG16 compute in bfloat16
    (`mixed_bfloat16`: variables, GroupNorm statistics and the network
    outputs stay float32). bfloat16 has float32's exponent range: no loss
    scale. Fast where the hardware has a bfloat16 path (GPUs; CPUs with
    AMX or AVX512-BF16).
  'float16': as bfloat16 with `mixed_float16`, and the loss multiplied by
    `FLOAT16_LOSS_SCALE` before the gradient (and the gradients divided by
    it), so that small float16 gradients do not flush to zero. The scale is
    static: a step whose scaled gradients overflow gives non-finite
    gradients (watch the loss). For GPUs.
The renderer, losses and optimiser always run in float32.
"""

import contextlib
from typing import Iterator, List, Optional

import keras
import tensorflow as tf

POLICIES = {'none': 'float32', 'bfloat16': 'mixed_bfloat16',
            'float16': 'mixed_float16'}
FLOAT16_LOSS_SCALE = 2.0**12


def policy_name(mode: Optional[str]) -> str:
  """Keras policy name of a `mixed_precision` config value (None: 'none')."""
  mode = 'none' if mode is None else str(mode).lower()
  if mode not in POLICIES:
    raise ValueError(f'mixed_precision must be one of {", ".join(POLICIES)}. '
                     f'Received: mixed_precision={mode!r}')
  return POLICIES[mode]


@contextlib.contextmanager
def policy_scope(mode: Optional[str]) -> Iterator[None]:
  """Layers created inside take the policy of `mode` (`policy_name`)."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(policy_name(mode))
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def loss_scale(mode: Optional[str]) -> float:
  """The static loss scale of `mode`: FLOAT16_LOSS_SCALE for float16, else 1.
  """
  return FLOAT16_LOSS_SCALE if policy_name(mode) == 'mixed_float16' else 1.0


def scale_loss(loss: tf.Tensor, scale: float) -> tf.Tensor:
  """`loss * scale` (inside the tape); `loss` itself when scale is 1."""
  return loss if scale == 1.0 else loss * scale


def unscale(grads: List[Optional[tf.Tensor]],
            scale: float) -> List[Optional[tf.Tensor]]:
  """Gradients of a `scale_loss`-ed loss back to the loss's (None kept)."""
  if scale == 1.0:
    return grads
  return [None if g is None else g / scale for g in grads]


def to_float32(outputs):
  """Casts every tensor in the structure `outputs` (floating, symbolic or
  not) to float32."""
  return tf.nest.map_structure(lambda t: keras.ops.cast(t, 'float32'),
                               outputs)
