"""Reference (PyTorch) state dicts <-> tfunsup3d Keras networks.

A reference state dict maps names to arrays in PyTorch layout:
`network.N.weight` of a `Conv2d` is OIHW `[out, in, kh, kw]`, of a
`ConvTranspose2d` `[in, out, kh, kw]`, of a `GroupNorm` its scale `[C]`
(`.bias` its offset); ConfNet adds `out_net1.N.*` and `out_net2.N.*`,
torchvision's VGG16 `features.N.weight/bias`. Our layers are named
`{sequential}_{N}_{kind}` after those keys (see `tfunsup3d/networks`).

Layouts: Keras' Conv2D kernel is HWIO `[kh, kw, in, out]` = OIHW transposed
by (2, 3, 1, 0). Keras' Conv2DTranspose kernel is `[kh, kw, out, in]`, and it
computes the gradient of a convolution exactly as PyTorch's ConvTranspose2d
does (output pixel `i*s + k - p` gets `x[i] * w[k]`), so no spatial flip is
needed: the same transpose (2, 3, 1, 0) maps `[in, out, kh, kw]` onto it.
tests/convert/test_reference.py proves both against a hand computation and
the reference fixture.

`load_vgg16_weights` fills the perceptual loss' `VGG16Features` from a
torchvision `.pth`, a Keras `.h5`, or `imagenet` (downloaded once); it lives
here, not in `tfunsup3d.networks`, so that the networks import nothing from
this package.
"""

import collections
from typing import Dict, List, Mapping, Optional, Tuple

import keras
import numpy as np

from tfunsup3d.convert import torch_format
from tfunsup3d.networks import vgg as vgg_lib
from tfunsup3d.networks.conf_net import ConfNet
from tfunsup3d.networks.ed_deconv import EDDeconv
from tfunsup3d.networks.encoder import Encoder
from tfunsup3d.networks.vgg import VGG16Features

# Net names of a reference checkpoint (plus 'vgg') -> our class.
NET_CLASSES = {
    'netD': EDDeconv,
    'netA': EDDeconv,
    'netL': Encoder,
    'netV': Encoder,
    'netC': ConfNet,
    'vgg': VGG16Features,
}
# Final activations of the reference model's nets (not visible in weights).
NET_ACTIVATIONS = {'netD': None, 'netA': 'tanh', 'netL': 'tanh',
                   'netV': 'tanh'}
_SEQUENTIALS = ('network', 'out_net1', 'out_net2', 'features')
_TO_KERAS = (2, 3, 1, 0)  # OIHW -> HWIO; ConvT [in,out,h,w] -> [h,w,out,in].
_TO_TORCH = (3, 2, 0, 1)  # the inverse.


def _check_net_name(net_name: str):
  if net_name not in NET_CLASSES:
    raise ValueError(f'`net_name` must be one of {sorted(NET_CLASSES)}. '
                     f'Received: net_name={net_name!r}')


def _reference_layers(
    model: keras.Model) -> List[Tuple[str, keras.layers.Layer]]:
  """`(reference prefix, layer)` for each layer with weights, reference order.

  Layer `out_net1_3_convt` -> prefix `out_net1.3`.
  """
  entries = []
  for layer in model.layers:
    if not layer.weights:
      continue
    sequential, index, _ = layer.name.rsplit('_', 2)
    if sequential not in _SEQUENTIALS or not index.isdigit():
      raise ValueError(f'Layer {layer.name!r} of {model.name!r} has no '
                       'reference name.')
    entries.append(((_SEQUENTIALS.index(sequential), int(index)),
                    f'{sequential}.{index}', layer))
  entries.sort(key=lambda e: e[0])
  return [(prefix, layer) for _, prefix, layer in entries]


def _parameters(model: keras.Model):
  """Yields `(key, variable, permutation or None)` in reference order."""
  for prefix, layer in _reference_layers(model):
    if isinstance(layer, keras.layers.GroupNormalization):
      yield f'{prefix}.weight', layer.gamma, None
      yield f'{prefix}.bias', layer.beta, None
    elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
      yield f'{prefix}.weight', layer.kernel, _TO_KERAS
      if layer.use_bias:
        yield f'{prefix}.bias', layer.bias, None
    else:
      raise ValueError(f'No reference mapping for layer {layer.name!r} '
                       f'({type(layer).__name__}).')


def _torch_shape(variable, permutation) -> Tuple[int, ...]:
  shape = tuple(variable.shape)
  if permutation is None:
    return shape
  return tuple(shape[i] for i in _TO_TORCH)


def _prepare(model: keras.Model, net_name: str):
  _check_net_name(net_name)
  expected = NET_CLASSES[net_name]
  if not isinstance(model, expected):
    raise ValueError(f'{net_name} is a {expected.__name__}. Received: '
                     f'model of type {type(model).__name__}')
  if not model.built:
    model.build_for(64)


def assign_state_dict(model: keras.Model, state_dict: Mapping[str, object],
                      net_name: str) -> keras.Model:
  """Copies a reference state dict into `model`'s variables.

  Args:
    model: an `Encoder`, `EDDeconv`, `ConfNet` or `VGG16Features` of the
      sizes the state dict was saved with (built here if needed).
    state_dict: name -> array (numpy or anything `np.asarray` takes), in
      PyTorch layout, e.g. one entry of `torch_format.load_state_dicts`.
    net_name: 'netD', 'netA', 'netL', 'netV', 'netC' or 'vgg'; picks the
      expected class and names the net in errors.

  Returns:
    `model`.

  Raises:
    ValueError: wrong class, or missing, unexpected or mis-shaped keys (all
      listed with their shapes). Nothing is assigned then.
  """
  _prepare(model, net_name)
  params = list(_parameters(model))
  arrays = {k: np.asarray(v) for k, v in state_dict.items()}
  missing, mis_shaped = [], []
  for key, variable, permutation in params:
    want = _torch_shape(variable, permutation)
    if key not in arrays:
      missing.append(f'{key} (expected {want})')
    elif tuple(arrays[key].shape) != want:
      mis_shaped.append(f'{key}: state dict {tuple(arrays[key].shape)}, '
                        f'model {want}')
  known = {key for key, _, _ in params}
  unexpected = [f'{k} {tuple(arrays[k].shape)}' for k in arrays
                if k not in known]
  if missing or unexpected or mis_shaped:
    problems = []
    for title, items in (('missing keys', missing),
                         ('unexpected keys', unexpected),
                         ('mis-shaped keys', mis_shaped)):
      if items:
        problems.append(f'{title}: ' + '; '.join(items))
    config = {k: v for k, v in model.get_config().items()
              if k not in ('name', 'trainable', 'dtype')}
    raise ValueError(
        f'Cannot load the {net_name} state dict into '
        f'{type(model).__name__}({config}): ' + ' | '.join(problems) +
        '. (`infer_sizes` reads the sizes a state dict was saved with.)')
  for key, variable, permutation in params:
    value = arrays[key]
    if permutation is not None:
      value = np.transpose(value, permutation)
    variable.assign(np.ascontiguousarray(value, dtype=variable.dtype))
  return model


def state_dict_from_model(
    model: keras.Model,
    net_name: str) -> 'collections.OrderedDict[str, np.ndarray]':
  """Our weights as a reference state dict.

  Args:
    model: an `Encoder`, `EDDeconv`, `ConfNet` or `VGG16Features` (built at
      64x64 here if needed).
    net_name: 'netD', 'netA', 'netL', 'netV', 'netC' or 'vgg'.

  Returns:
    An OrderedDict of float32 numpy arrays in PyTorch layout and in the
    order `torch.nn.Module.state_dict()` lists them, ready for
    `torch_format.save` (and `torch.load` + `load_state_dict`).
  """
  _prepare(model, net_name)
  result = collections.OrderedDict()
  for key, variable, permutation in _parameters(model):
    value = keras.ops.convert_to_numpy(variable)
    if permutation is not None:
      value = np.transpose(value, _TO_TORCH)
    result[key] = np.ascontiguousarray(value, dtype=np.float32)
  return result


def _shape(state_dict: Mapping[str, object], net_name: str, key: str):
  if key not in state_dict:
    raise ValueError(f'Cannot infer the size of {net_name}: it has no '
                     f'{key!r} (keys: {sorted(state_dict)[:6]} ...).')
  return tuple(np.shape(state_dict[key]))


def infer_sizes(state_dicts: Mapping[str, Mapping[str, object]]
               ) -> Dict[str, Dict[str, int]]:
  """Reads each net's constructor sizes from its weight shapes.

  Args:
    state_dicts: net name -> reference state dict, e.g. the result of
      `torch_format.load_state_dicts`; nets other than netD/netA/netL/netV/
      netC (optimizers, 'vgg', ...) are ignored.

  Returns:
    net name -> constructor kwargs: netD/netA `{'cout', 'nf', 'zdim'}`,
    netL/netV `{'cout', 'nf'}`, netC `{'nf', 'zdim'}`. Combine with
    `NET_ACTIVATIONS` (or use `build_from_state_dict`) to build the nets.
  """
  sizes = {}
  for net_name, state_dict in state_dicts.items():
    if net_name in ('netD', 'netA'):
      sizes[net_name] = {
          'cout': _shape(state_dict, net_name, 'network.42.weight')[0],
          'nf': _shape(state_dict, net_name, 'network.0.weight')[0],
          'zdim': _shape(state_dict, net_name, 'network.11.weight')[0],
      }
    elif net_name in ('netL', 'netV'):
      sizes[net_name] = {
          'cout': _shape(state_dict, net_name, 'network.10.weight')[0],
          'nf': _shape(state_dict, net_name, 'network.0.weight')[0],
      }
    elif net_name == 'netC':
      sizes[net_name] = {
          'nf': _shape(state_dict, net_name, 'network.0.weight')[0],
          'zdim': _shape(state_dict, net_name, 'network.11.weight')[0],
      }
  return sizes


def config_sizes(sizes: Mapping[str, Mapping[str, int]]) -> Dict[str, int]:
  """`infer_sizes` output -> the Config keys nf_depth, zdim_depth, ...

  Raises ValueError where two nets that share a Config key (netD and netA;
  netL and netV) have different sizes.
  """
  keys = {('netD', 'nf'): 'nf_depth', ('netA', 'nf'): 'nf_depth',
          ('netD', 'zdim'): 'zdim_depth', ('netA', 'zdim'): 'zdim_depth',
          ('netL', 'nf'): 'nf_encoder', ('netV', 'nf'): 'nf_encoder',
          ('netC', 'nf'): 'nf_conf', ('netC', 'zdim'): 'zdim_conf'}
  config, source = {}, {}
  for (net_name, arg), key in keys.items():
    if net_name not in sizes:
      continue
    value = int(sizes[net_name][arg])
    if key in config and config[key] != value:
      raise ValueError(f'{source[key]} has {arg}={config[key]} but {net_name} '
                       f'has {arg}={value}; the config has one {key}.')
    config[key], source[key] = value, net_name
  return config


def build_from_state_dict(state_dict: Mapping[str, object], net_name: str,
                          image_size: int = 64) -> keras.Model:
  """Builds the net `net_name` at the state dict's sizes and loads it."""
  _check_net_name(net_name)
  if net_name == 'vgg':
    model = VGG16Features(name=net_name)
  else:
    kwargs = infer_sizes({net_name: state_dict})[net_name]
    if net_name in NET_ACTIVATIONS:
      kwargs['activation'] = NET_ACTIVATIONS[net_name]
    model = NET_CLASSES[net_name](name=net_name, **kwargs)
  model.build_for(image_size)
  return assign_state_dict(model, state_dict, net_name)


def load_vgg16_weights(model: VGG16Features, path: Optional[str],
                       **download_kwargs) -> VGG16Features:
  """Loads VGG16 weights into `model`.

  Args:
    model: a `VGG16Features` (built here if needed).
    path: `'imagenet'` (Keras' no-top ImageNet weights, downloaded once into
      Keras' cache, see `networks.vgg.weights_file`), a torchvision `.pth`
      with `features.N.weight/bias` keys (extra keys, e.g. later features
      and the classifier, are ignored), or a Keras `.h5` / `.weights.h5`
      with `block1_conv1` ... `block3_conv3` layers. Sets
      `model.input_convention` to `'torch'` (.pth) or `'caffe'` (.h5).
    **download_kwargs: `origin`, `file_hash`, `cache_dir` of
      `networks.vgg.weights_file`.

  Returns:
    `model`.

  Raises:
    FileNotFoundError: `path` is None or does not exist, or `'imagenet'`
      cannot be downloaded; the message says what to place where.
    ValueError: the file lacks a layer or a shape does not match.
  """
  path = vgg_lib.weights_file(path, **download_kwargs)
  if not model.built:
    model.build_for()
  if path.endswith('.h5'):
    assign_state_dict(model, vgg_lib.read_keras_h5(path), 'vgg')
    model.input_convention = 'caffe'
    return model
  candidates = [sd for sd in torch_format.load_state_dicts(path).values()
                if 'features.0.weight' in sd]
  if not candidates:
    raise ValueError(f'{path} holds no VGG16 state dict (no key '
                     "'features.0.weight').")
  wanted = {f'features.{index}.{kind}' for index, _, _ in vgg_lib.CONV_LAYERS
            for kind in ('weight', 'bias')}
  state = {k: np.asarray(v) for k, v in candidates[0].items() if k in wanted}
  assign_state_dict(model, state, 'vgg')
  model.input_convention = 'torch'
  return model
