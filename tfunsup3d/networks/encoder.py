"""Encoder: the light (netL) and viewpoint (netV) network of Unsup3D.

Also holds what the other nets of this package share (argument validation,
the reference's padded 4x4 stride-2 convolution, input-shape checks, the
`ImageNetwork` base class), so each of them stays one class per file.
"""

import functools
from typing import List, Optional, Sequence

import keras
from keras import ops
import tensorflow as tf

from tfunsup3d.networks import precision

# Activations the reference lets a net end with (`activation=nn.Tanh` or None).
FINAL_ACTIVATIONS = ('tanh', None)


def check_int(name: str, value, minimum: int = 1, multiple_of: int = 1):
  """Raises ValueError unless `value` is an int >= minimum, a multiple."""
  if (isinstance(value, bool) or not isinstance(value, int) or
      value < minimum or value % multiple_of):
    need = f'an int >= {minimum}'
    if multiple_of > 1:
      need += f' and a multiple of {multiple_of}'
    raise ValueError(f'`{name}` must be {need}. Received: {name}={value!r}')


def check_activation(activation: Optional[str]):
  if activation not in FINAL_ACTIVATIONS:
    raise ValueError(f'`activation` must be one of {FINAL_ACTIVATIONS}. '
                     f'Received: activation={activation!r}')


SIZE_RULE = 'multiples of 16 and at least 64'


def size_fits(size: int) -> bool:
  """Whether the networks take images `size` pixels high or wide.

  The reference nets end their down path with a 4x4 'valid' convolution on
  the size/16 map, so size must be a multiple of 16 and size/16 at least 4.
  """
  return size >= 64 and size % 16 == 0


def check_image_shape(class_name: str, input_shape: Sequence[Optional[int]],
                      channels: Optional[int] = None):
  """Checks `[B, H, W, C]`: H and W `size_fits` when known."""
  shape = tuple(input_shape)
  if len(shape) != 4:
    raise ValueError(f'{class_name} expects images of shape [B, H, W, C]. '
                     f'Received: input_shape={shape}')
  for size in shape[1:3]:
    if size is not None and not size_fits(size):
      raise ValueError(
          f'{class_name} needs image height and width that are {SIZE_RULE}. '
          f'Received: input_shape={shape}')
  if channels is not None and shape[3] is not None and shape[3] != channels:
    raise ValueError(f'{class_name} expects {channels} input channels. '
                     f'Received: input_shape={shape}')


def torch_init() -> keras.initializers.Initializer:
  """PyTorch's default Conv/ConvTranspose weight init (kaiming_uniform with
  a=sqrt(5)), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), so that a freshly
  built net starts where the reference's does (Keras' glorot_uniform is
  about 2.4x wider on the depth head, which makes the initial depth rough)."""
  return keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode='fan_in',
                                            distribution='uniform')


def conv4x4_s2(filters: int, prefix: str, use_bias: bool = False) -> List:
  """PyTorch `Conv2d(k=4, s=2, p=1)`: explicit zero padding + 'valid' conv."""
  return [
      keras.layers.ZeroPadding2D(1, name=f'{prefix}_pad'),
      keras.layers.Conv2D(filters, 4, strides=2, padding='valid',
                          use_bias=use_bias, kernel_initializer=torch_init(),
                          name=f'{prefix}_conv'),
  ]


def build_sequence(layers: Sequence[keras.layers.Layer], input_shape):
  """Builds `layers` in order from `input_shape`; returns the output shape.

  Layers are called on symbolic tensors, so each is built under its own name
  scope and records its output shape (for `summary()`).
  """
  x = keras.KerasTensor(tuple(input_shape))
  for layer in layers:
    x = layer(x)
  return tuple(x.shape)


_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv2DTranspose)


def run_sequence(layers: Sequence[keras.layers.Layer], x,
                 recompute: bool = False):
  """Runs `layers` in order on `x`.

  Args:
    layers: the layers.
    x: their input.
    recompute: bool. For a gradient taken through the result, keep only the
      outputs of the convolutions from the forward pass and recompute the
      cheap layers after each (normalisation, activation, padding,
      upsampling) in the backward pass: each run of layers that ends in a
      convolution goes under `tf.recompute_grad`. A convolution's gradient
      needs its input, not its output, so the recomputed convolution itself
      is pruned from the graph; what is recomputed is elementwise work and
      GroupNorm's statistics. The same values and gradients; defaults to
      False (keep everything).

  Returns:
    the last layer's output.
  """
  if recompute:
    for group in _convolution_runs(layers):
      run = functools.partial(run_sequence, group)
      x = tf.recompute_grad(run)(x) if len(group) > 1 else run(x)
    return x
  for layer in layers:
    x = layer(x)
  return x


def _convolution_runs(layers: Sequence[keras.layers.Layer]):
  """`layers` cut after each convolution; what follows the last convolution
  (a final activation) is its own run, as is each run of one layer."""
  runs, run = [], []
  for layer in layers:
    run.append(layer)
    if isinstance(layer, _CONVOLUTIONS):
      runs.append(run)
      run = []
  if run:
    runs.extend([layer] for layer in run)
  return runs


class TracksLayerLists:
  """Makes layers kept in Python lists visible to TF's object graph.

  Keras 3 wraps list attributes in its own `TrackedList`, which
  `tf.train.Checkpoint` and SavedModel do not traverse, so the weights of
  layers held only in lists would silently be left out of TF checkpoints.
  Subclasses name their list attributes in `_LAYER_LISTS`; each listed layer
  becomes a checkpoint child under its (unique) layer name.
  """
  _LAYER_LISTS = ('network_layers',)

  def _trackable_children(self, save_type='checkpoint', **kwargs):
    children = super()._trackable_children(save_type, **kwargs)
    for attr in self._LAYER_LISTS:
      for layer in getattr(self, attr, ()):
        children.setdefault(layer.name, layer)
    return children


class ImageNetwork(TracksLayerLists, keras.Model):
  """A net over `[B, H, W, C]` images whose trunk is `network_layers`.

  `build` checks the input shape (`check_image_shape`), builds the trunk
  and returns the trunk's output shape, so a net with more layer lists can
  extend it.
  """

  def build(self, input_shape):
    check_image_shape(type(self).__name__, input_shape)
    return build_sequence(self.network_layers, input_shape)

  def build_for(self, image_size: int, channels: int = 3):
    """Creates the weights for `[B, image_size, image_size, channels]`."""
    self.build((None, image_size, image_size, channels))
    return self

  def __call__(self, *args, **kwargs):
    outputs = super().__call__(*args, **kwargs)
    if self.compute_dtype == 'float32':
      return outputs
    return precision.to_float32(outputs)  # mixed policy: float32 outputs


@keras.saving.register_keras_serializable(package='tfunsup3d')
class Encoder(ImageNetwork):
  """Image to vector encoder of the reference (netL, netV).

  Four `Conv4x4 s2 p1 -> ReLU` stages (nf, 2nf, 4nf, 8nf channels; 64 -> 4),
  `Conv4x4 valid (8nf) -> ReLU` (4 -> 1), `Conv1x1 (cout)` and an optional
  `Tanh`. All convolutions are bias-free. Layers are named
  `network_{i}_{kind}` after index `i` of the reference's `nn.Sequential`.

  Other image sizes: at 64x64 the 4x4 'valid' convolution gives 1x1 and the
  net is exactly the reference. At H, W = 16k with k > 4 it gives (k-3)x(k-3);
  a global average pool (`pool`, the identity at 1x1) then reduces it to 1x1
  before the 1x1 head, so the output stays `[B, cout]` (the reference would
  return a `[B, cout*(k-3)^2]` vector there). Sizes below 64 raise.

  Args:
    cout: int. Number of outputs (4 for light, 6 for viewpoint).
    nf: int. Base width. Defaults to 32 (the reference's netL/netV).
    activation: str or None. `'tanh'` (the reference) or None for raw
      outputs. Defaults to `'tanh'`.
    **kwargs: `name`, `trainable`, `dtype` for `keras.Model`.

  Example:
  ```python
  net_v = Encoder(cout=6, nf=32, name='netV')
  net_v.build_for(64)
  view = net_v(images)  # images [B, 64, 64, 3] in [-1, 1] -> [B, 6].
  ```

  Reference:
    Wu, Rupprecht, Vedaldi. Unsupervised Learning of Probably Symmetric
    Deformable 3D Objects from Images in the Wild. CVPR 2020.
  """

  def __init__(self, cout: int, nf: int = 32,
               activation: Optional[str] = 'tanh', **kwargs):
    check_int('cout', cout)
    check_int('nf', nf)
    check_activation(activation)
    super().__init__(**kwargs)
    self.cout = cout
    self.nf = nf
    self.activation = activation

    layers = []
    for stage, mult in enumerate((1, 2, 4, 8)):
      layers += conv4x4_s2(nf * mult, f'network_{2 * stage}')
      layers.append(keras.layers.ReLU(name=f'network_{2 * stage + 1}_relu'))
    layers += [
        keras.layers.Conv2D(nf * 8, 4, padding='valid', use_bias=False,
                            kernel_initializer=torch_init(),
                            name='network_8_conv'),
        keras.layers.ReLU(name='network_9_relu'),
        keras.layers.GlobalAveragePooling2D(keepdims=True, name='pool'),
        keras.layers.Conv2D(cout, 1, use_bias=False,
                            kernel_initializer=torch_init(),
                            name='network_10_conv'),
    ]
    if activation == 'tanh':
      layers.append(keras.layers.Activation('tanh', name='network_11_tanh'))
    self.network_layers = layers

  def call(self, images):
    x = run_sequence(self.network_layers, images)
    return ops.reshape(x, (-1, self.cout))

  def compute_output_shape(self, input_shape):
    return (input_shape[0], self.cout)

  def get_config(self):
    config = super().get_config()
    config.update({
        'cout': self.cout,
        'nf': self.nf,
        'activation': self.activation,
    })
    return config
