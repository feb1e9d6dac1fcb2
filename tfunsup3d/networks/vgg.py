"""VGG16 features up to relu3_3, for the perceptual loss of Unsup3D.

The weights come from `vgg16_weights` (see `weights_file`): the word
`imagenet` fetches Keras' `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`
once through `keras.utils.get_file` (cached in Keras' cache folder, its MD5
checked, as `keras.applications.VGG16(weights='imagenet', include_top=False)`
does); any other value is a local file, either torchvision's
`vgg16-397923af.pth` (or any `.pth` holding `features.N.weight` /
`features.N.bias`) or Keras' `.h5` (or a `.weights.h5` of
`keras.applications.VGG16`). `tfunsup3d.convert.reference.load_vgg16_weights`
reads both into a `VGG16Features`; this module reads `.h5` files itself and
imports nothing from `tfunsup3d.convert`.
"""

import os
from typing import Dict, Optional

import keras
import numpy as np
from keras import ops
import tensorflow as tf

from tfunsup3d.networks.encoder import TracksLayerLists
from tfunsup3d.networks.encoder import build_sequence
from tfunsup3d.networks.encoder import run_sequence

# torchvision's ImageNet statistics, for inputs in [0, 1] (RGB).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# The Caffe VGG16 that keras.applications' weights come from: BGR in [0, 255]
# minus this per-channel mean (B, G, R), no scaling.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
INPUT_CONVENTIONS = ('torch', 'caffe')

# torchvision `vgg16.features` index of each conv up to relu3_3, its width and
# its keras.applications name.
CONV_LAYERS = (
    (0, 64, 'block1_conv1'),
    (2, 64, 'block1_conv2'),
    (5, 128, 'block2_conv1'),
    (7, 128, 'block2_conv2'),
    (10, 256, 'block3_conv1'),
    (12, 256, 'block3_conv2'),
    (14, 256, 'block3_conv3'),
)
POOL_INDICES = (4, 9)
_LAST_INDEX = 15  # relu3_3

MISSING_WEIGHTS_HELP = (
    "set `vgg16_weights: imagenet` (Keras' ImageNet weights, downloaded "
    "once), or get torchvision's vgg16-397923af.pth or Keras' "
    'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 and set '
    '`vgg16_weights: PATH`, or set `lam_perc: 0`')

# `vgg16_weights: imagenet`: keras.applications.vgg16's no-top weights, the
# same file name, URL and MD5 that `keras.applications.VGG16` uses.
IMAGENET = 'imagenet'
KERAS_NOTOP_FILE = 'vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5'
KERAS_NOTOP_URL = ('https://storage.googleapis.com/tensorflow/'
                   'keras-applications/vgg16/' + KERAS_NOTOP_FILE)
KERAS_NOTOP_MD5 = '6d6bbae143d832006294945121d1f1fc'
CACHE_SUBDIR = 'models'


@keras.saving.register_keras_serializable(package='tfunsup3d')
class MaxPool2x2(keras.layers.Layer):
  """2x2 max pool, stride 2, 'valid' (`keras.layers.MaxPooling2D(2)`'s
  output), written as a reshape and a max over the two window axes.

  Same forward values; the gradient is `reduce_max`'s (`_window_max`: tied
  maxima share it) instead of a max-pool gradient (all to one of them),
  which XLA:CPU expands into a scatter with an iota index per input
  dimension: on the full-size step at batch 64 that was 0.8 GB of index
  buffers and a serial scatter of 33M elements.
  `[B, H, W, C]` -> `[B, H // 2, W // 2, C]`.
  """

  def call(self, x):
    _, h, w, c = ops.shape(x)  # static where known, else tensors
    h2, w2 = h // 2, w // 2
    return _window_max(ops.reshape(x[:, :2 * h2, :2 * w2, :],
                                   (-1, h2, 2, w2, 2, c)))

  def compute_output_shape(self, input_shape):
    b, h, w, c = input_shape
    return (b, None if h is None else h // 2, None if w is None else w // 2,
            c)


@tf.custom_gradient
def _window_max(windows):
  """`[B, h, 2, w, 2, C]` -> its max over axes 2 and 4, `[B, h, w, C]`.

  The gradient is `reduce_max`'s (each window's gradient shared by its
  maxima; divided by 3 rather than multiplied by 1/3, which can differ in
  the last bit), built from a boolean mask: TF's own keeps a float copy of the
  windows' indicator, as large as the input, and a transposed copy of it
  alive at the full-size step's peak; here the mask is boolean and the ties
  are counted on quarters.
  """
  peak = tf.reduce_max(windows, axis=(2, 4), keepdims=True)

  def grad(upstream):
    is_max = tf.equal(windows, peak)
    # The ties counted a window position at a time, each a quarter of the
    # input (a sum over both window axes at once transposes it first).
    count = 0.0
    for i in range(2):
      for j in range(2):
        count += tf.cast(is_max[:, :, i, :, j], upstream.dtype)
    share = (upstream / count)[:, :, tf.newaxis, :, tf.newaxis]
    return tf.where(is_max, share, tf.zeros([], upstream.dtype))
  return tf.squeeze(peak, (2, 4)), grad


@keras.saving.register_keras_serializable(package='tfunsup3d')
class VGG16Features(TracksLayerLists, keras.Model):
  """VGG16 `features[0:16]` (to relu3_3) with the reference's normalisation.

  `call(images)` takes images in [-1, 1], `[B, H, W, 3]` RGB, applies
  `normalize` and returns the relu3_3 features `[B, H/4, W/4, 256]`. Layers:
  seven Conv3x3 'same' with bias, each followed by ReLU, and 2x2 max pools
  after relu1_2 and relu2_2; named `features_{i}_{kind}` after torchvision's
  `vgg16.features` indices. Not trainable by default (the reference freezes
  it); gradients still flow to the images.

  Args:
    input_convention: str. How `normalize` prepares images for the weights:
      `'torch'` (torchvision weights: x/2+0.5, then minus the ImageNet mean,
      divided by its std, as the reference) or `'caffe'` (keras.applications
      weights: RGB->BGR in [0, 255] minus the Caffe mean).
      `load_vgg16_weights` sets it to match the file it reads. Defaults to
      `'torch'`.
    **kwargs: `name`, `trainable` (default False), `dtype` for `keras.Model`.

  Example:
  ```python
  vgg = VGG16Features()
  load_vgg16_weights(vgg, 'imagenet')  # tfunsup3d.convert.reference
  features = vgg(images)  # [B, 64, 64, 3] in [-1, 1] -> [B, 16, 16, 256].
  ```

  Reference:
    Simonyan, Zisserman. Very Deep Convolutional Networks for Large-Scale
    Image Recognition. ICLR 2015.
  """

  _LAYER_LISTS = ('features_layers',)

  def __init__(self, input_convention: str = 'torch', **kwargs):
    if input_convention not in INPUT_CONVENTIONS:
      raise ValueError('`input_convention` must be one of '
                       f'{INPUT_CONVENTIONS}. Received: '
                       f'input_convention={input_convention!r}')
    kwargs.setdefault('trainable', False)
    super().__init__(**kwargs)
    self.input_convention = input_convention
    layers = []
    widths = {index: width for index, width, _ in CONV_LAYERS}
    for index in range(_LAST_INDEX + 1):
      if index in widths:
        layers.append(keras.layers.Conv2D(widths[index], 3, padding='same',
                                          name=f'features_{index}_conv'))
      elif index in POOL_INDICES:
        layers.append(MaxPool2x2(name=f'features_{index}_pool'))
      else:
        layers.append(keras.layers.ReLU(name=f'features_{index}_relu'))
    self.features_layers = layers

  def normalize(self, images):
    """Images in [-1, 1] `[..., 3]` RGB -> the weights' input convention."""
    x = ops.convert_to_tensor(images) / 2.0 + 0.5
    if self.input_convention == 'torch':
      mean = ops.convert_to_tensor(IMAGENET_MEAN, dtype=x.dtype)
      std = ops.convert_to_tensor(IMAGENET_STD, dtype=x.dtype)
      return (x - mean) / std
    mean = ops.convert_to_tensor(CAFFE_MEAN_BGR, dtype=x.dtype)
    return ops.flip(x, axis=-1) * 255.0 - mean

  def build(self, input_shape):
    shape = tuple(input_shape)
    if len(shape) != 4 or shape[-1] not in (None, 3):
      raise ValueError('VGG16Features expects RGB images [B, H, W, 3]. '
                       f'Received: input_shape={shape}')
    build_sequence(self.features_layers, shape)

  def build_for(self, image_size: Optional[int] = None):
    """Creates the weights (they do not depend on the image size)."""
    self.build((None, image_size, image_size, 3))
    return self

  def call(self, images):
    return run_sequence(self.features_layers, self.normalize(images))

  def compute_output_shape(self, input_shape):
    quarter = [None if s is None else s // 4 for s in input_shape[1:3]]
    return (input_shape[0], quarter[0], quarter[1], 256)

  def get_config(self):
    config = super().get_config()
    config.update({'input_convention': self.input_convention})
    return config


def read_keras_h5(path: str) -> Dict[str, np.ndarray]:
  """Reads block{b}_conv{c} kernels (HWIO) and biases from a Keras .h5 file.

  Works for the legacy `vgg16_weights_tf_dim_ordering_tf_kernels*.h5`
  (`block1_conv1/block1_conv1/kernel:0`) and Keras 3 `.weights.h5`
  (`layers/conv2d/vars/0`, the group `vars` having `name='block1_conv1'`)
  layouts: the datasets below a group named after the layer (by path or by
  `name` attribute) are taken, the rank-4 one as kernel, the rank-1 as bias.
  Returns torchvision's keys and layout: `features.N.weight` (OIHW), `.bias`.
  """
  try:
    import h5py  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise ImportError(
        f'Reading the Keras VGG16 weights {path} needs h5py '
        '(pip install h5py); or use torchvision\'s vgg16-397923af.pth.'
    ) from None
  found = {name: {} for _, _, name in CONV_LAYERS}
  try:
    f = h5py.File(path, 'r')
  except OSError as e:  # Not HDF5, truncated, unreadable.
    raise ValueError(f'Cannot read the VGG16 weights {path} as HDF5 (Keras '
                     f'.h5): {" ".join(str(e).split())}') from None
  with f:
    def names_of(item):
      """Path components and `name` attributes of the item's groups."""
      names = set()
      group = item.parent
      while group.name != '/':
        names.add(group.name.rsplit('/', 1)[-1])
        name = group.attrs.get('name')
        names.add(name.decode() if isinstance(name, bytes) else str(name))
        group = group.parent
      return names

    def visit(item_path, item):
      kind = {4: 'kernel', 1: 'bias'}.get(getattr(item, 'ndim', None))
      if not isinstance(item, h5py.Dataset) or kind is None:
        return
      names = names_of(item)
      for name, arrays in found.items():
        if name in names:
          if kind in arrays:
            raise ValueError(f'{path}: more than one {kind} for {name} '
                             f'({arrays[kind][0]}, {item_path}).')
          arrays[kind] = (item_path, np.asarray(item, dtype=np.float32))

    f.visititems(visit)
  state = {}
  for index, _, name in CONV_LAYERS:
    arrays = found[name]
    if set(arrays) != {'kernel', 'bias'}:
      raise ValueError(f'{path} is not a Keras VGG16 weights file: no kernel '
                       f'and bias found for layer {name}.')
    kernel = arrays['kernel'][1]  # HWIO -> OIHW.
    state[f'features.{index}.weight'] = kernel.transpose(3, 2, 0, 1)
    state[f'features.{index}.bias'] = arrays['bias'][1]
  return state


def keras_cache_dir() -> str:
  """Keras' cache folder: `$KERAS_HOME`, else `~/.keras`."""
  return os.environ.get('KERAS_HOME') or os.path.join(
      os.path.expanduser('~'), '.keras')


def weights_file(path: Optional[str], origin: str = KERAS_NOTOP_URL,
                 file_hash: str = KERAS_NOTOP_MD5,
                 cache_dir: Optional[str] = None) -> str:
  """The local VGG16 weights file that `vgg16_weights: path` names.

  Args:
    path: `'imagenet'`, or a local `.pth` / `.h5` file.
    origin: where `'imagenet'` downloads from (Keras' URL; tests pass a
      `file://` URL).
    file_hash: the expected MD5 (or SHA-256) of the downloaded file.
    cache_dir: Keras' cache folder (default `keras_cache_dir()`); the file
      is `<cache_dir>/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`,
      downloaded once and reused while its hash matches.

  Returns:
    The path of an existing file.

  Raises:
    FileNotFoundError: `path` is None or missing, or the download failed
      (offline, or a file whose hash does not match); the message names the
      file to place and where.
  """
  path = os.fspath(path) if path else path
  if path == IMAGENET:
    cache_dir = cache_dir or keras_cache_dir()
    target = os.path.join(cache_dir, CACHE_SUBDIR, KERAS_NOTOP_FILE)
    try:
      # get_file writes to /tmp/.keras when cache_dir is not (yet) writable.
      os.makedirs(os.path.dirname(target), exist_ok=True)
      return keras.utils.get_file(KERAS_NOTOP_FILE, origin,
                                  file_hash=file_hash,
                                  cache_subdir=CACHE_SUBDIR,
                                  cache_dir=cache_dir)
    except Exception as e:  # pylint: disable=broad-except
      reason = ' '.join(str(e).split())[:300]
      raise FileNotFoundError(
          f'Cannot get the VGG16 ImageNet weights for `vgg16_weights: '
          f'imagenet` ({reason}): download {origin} and place it at '
          f'{target}, or set `vgg16_weights: PATH` to a local VGG16 file, or '
          '`lam_perc: 0`.') from None
  if not path or not os.path.isfile(path):
    raise FileNotFoundError(
        f'VGG16 weights file not found: {path!r}. For the perceptual loss, '
        f'{MISSING_WEIGHTS_HELP}.')
  return path
