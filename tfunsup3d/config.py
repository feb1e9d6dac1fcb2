"""The one place for configuration.

`Config` holds every key of the reference's YAML files (so a reference
`experiments/*.yml` loads unchanged) plus the keys this project adds. Values
come, in increasing priority, from the defaults below, a YAML file, and
`KEY=VALUE` overrides (the console scripts turn `--KEY=VALUE` flags into
those).
"""

import dataclasses
import functools
import os
import typing
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml


@dataclasses.dataclass
class Config:
  """Unsup3D configuration; field names are the reference's YAML keys.

  Derived values (`border_depth`, `rot_center_depth`) default to `None` and are
  resolved by `resolved()`, exactly as the reference derives them.
  """
  # --- trainer (reference keys) ---
  model_name: str = 'unsup3d'
  device: str = 'cpu'  # accepted for compatibility; TF places ops itself.
  run_train: bool = False
  run_test: bool = False
  num_epochs: int = 30
  batch_size: int = 64
  checkpoint_dir: str = 'results'
  save_checkpoint_freq: int = 1
  keep_num_checkpoint: int = 2
  resume: bool = True
  use_logger: bool = True
  log_freq: int = 1000
  archive_code: bool = False
  checkpoint_name: Optional[str] = None
  test_result_dir: Optional[str] = None
  seed: int = 0
  # --- data (reference keys) ---
  num_workers: int = 4
  image_size: int = 64
  crop: Optional[Union[int, List[int]]] = None
  load_gt_depth: bool = False
  paired_data_dir_names: List[str] = dataclasses.field(
      default_factory=lambda: ['image', 'depth'])
  paired_data_filename_diff: List[str] = dataclasses.field(
      default_factory=lambda: ['image', 'depth'])
  train_val_data_dir: str = './data'
  test_data_dir: Optional[str] = None
  # --- model (reference keys) ---
  min_depth: float = 0.9
  max_depth: float = 1.1
  border_depth: Optional[float] = None
  min_amb_light: float = 0.0
  max_amb_light: float = 1.0
  min_diff_light: float = 0.0
  max_diff_light: float = 1.0
  xyz_rotation_range: float = 60.0
  xy_translation_range: float = 0.1
  z_translation_range: float = 0.1
  use_conf_map: bool = True
  lam_perc: float = 1.0
  lam_flip: float = 0.5
  lam_flip_start_epoch: int = 0
  lam_depth_sm: float = 0.0
  lr: float = 1e-4
  # --- renderer (reference keys) ---
  rot_center_depth: Optional[float] = None
  fov: float = 10.0
  tex_cube_size: int = 2
  renderer_min_depth: float = 0.1
  renderer_max_depth: float = 10.0
  # --- tfunsup3d additions ---
  nf_depth: int = 64  # nf of netD and netA (EDDeconv).
  zdim_depth: int = 256  # zdim of netD and netA.
  nf_encoder: int = 32  # nf of netL and netV (Encoder).
  nf_conf: int = 64  # nf of netC (ConfNet).
  zdim_conf: int = 128  # zdim of netC.
  gn_channels: Optional[int] = None  # channels per GroupNorm group (None: the reference's 16 groups per nf)
  vgg16_weights: Optional[str] = None  # local VGG16 weights file.
  anti_aliasing: bool = True  # reference rasteriser convention (2x, +0.5px).
  weight_decay: float = 5e-4  # PyTorch-style L2 added to the gradient.
  jit_compile: bool = True  # XLA for the train/eval steps.
  deterministic: bool = False  # tf.config.experimental.enable_op_determinism.
  max_steps_per_epoch: Optional[int] = None  # cap on steps (quick runs).
  save_checkpoint_steps: int = 0  # also checkpoint every N steps (0: off).
  val_max_batches: Optional[int] = None  # cap on validation batches.
  strategy: str = 'default'  # tf.distribute: default|mirrored|multi_worker|tpu
  supervised_depth: bool = False  # upper-bound baseline: L1 on GT depth.
  flip_albedo: bool = True  # False: paper Table 2 ablation "no albedo flip".
  flip_depth: bool = True  # False: paper Table 2 ablation "no depth flip".
  log_dir: Optional[str] = None  # TensorBoard dir (default checkpoint_dir/logs)
  export_dir: str = 'saved_models'
  mixed_precision: str = 'none'  # none|bfloat16|float16 (networks.precision)

  def resolved(self) -> 'Config':
    """Returns a copy with derived defaults filled in."""
    cfg = dataclasses.replace(self)
    if cfg.border_depth is None:
      cfg.border_depth = 0.7 * cfg.max_depth + 0.3 * cfg.min_depth
    if cfg.rot_center_depth is None:
      cfg.rot_center_depth = (cfg.min_depth + cfg.max_depth) / 2.0
    if cfg.min_depth >= cfg.max_depth:
      raise ValueError(f'min_depth must be < max_depth. Received: '
                       f'min_depth={cfg.min_depth}, max_depth={cfg.max_depth}')
    if cfg.image_size < 8:
      raise ValueError(f'image_size must be >= 8. Received: '
                       f'image_size={cfg.image_size}')
    return cfg

  def to_dict(self) -> Dict[str, Any]:
    return dataclasses.asdict(self)

  def to_yaml(self) -> str:
    return yaml.safe_dump(self.to_dict(), sort_keys=False)


def field_names() -> List[str]:
  return [f.name for f in dataclasses.fields(Config)]


_NONE_WORDS = ('none', 'null', '~', '')
_TRUE_WORDS = ('1', 'true', 'yes', 'on')
_FALSE_WORDS = ('0', 'false', 'no', 'off')


@functools.lru_cache(maxsize=None)
def _type_hints() -> Dict[str, Any]:
  return typing.get_type_hints(Config)  # Resolves string annotations too.


def field_type(name: str) -> Tuple[Tuple[Any, ...], bool]:
  """Returns (accepted types, optional) of field `name`.

  `accepted types` lists the non-None alternatives of the annotation, e.g.
  `(int, List[int])` for `crop`; `optional` says whether None is allowed.
  """
  tp = _type_hints()[name]
  if typing.get_origin(tp) is Union:
    args = typing.get_args(tp)
    return tuple(a for a in args if a is not type(None)), type(None) in args
  return (tp,), False


def _type_name(tp: Any) -> str:
  if typing.get_origin(tp) is None and hasattr(tp, '__name__'):
    return tp.__name__
  return str(tp).replace('typing.', '')


def _is_none_word(value: Any) -> bool:
  return isinstance(value, str) and value.strip().lower() in _NONE_WORDS


def _to_scalar(tp: Any, value: Any) -> Any:
  """Converts `value` to the scalar type `tp`; raises ValueError if it can't."""
  if tp is bool:
    if isinstance(value, bool):
      return value
    if isinstance(value, int) and value in (0, 1):
      return bool(value)
    if isinstance(value, str):
      if value.strip().lower() in _TRUE_WORDS:
        return True
      if value.strip().lower() in _FALSE_WORDS:
        return False
    raise ValueError
  if tp is int:
    if isinstance(value, bool):
      raise ValueError
    if isinstance(value, int):
      return value
    if isinstance(value, float) and value.is_integer():
      return int(value)
    if isinstance(value, str):
      text = value.strip()
      try:
        return int(text)
      except ValueError:
        return _to_scalar(int, float(text))  # '3.0', '1e3'; not '3.5'.
    raise ValueError
  if tp is float:
    if isinstance(value, bool):
      raise ValueError
    if isinstance(value, (int, float)):
      return float(value)
    if isinstance(value, str):
      return float(value.strip())  # also takes '1e-4', which YAML 1.1 doesn't.
    raise ValueError
  if tp is str:
    if isinstance(value, str):
      return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
      return str(value)  # e.g. an unquoted YAML `checkpoint_name: 030`.
    raise ValueError
  raise ValueError


def _to_type(tp: Any, value: Any) -> Any:
  if typing.get_origin(tp) in (list, List):
    (item_tp,) = typing.get_args(tp) or (Any,)
    if isinstance(value, str):
      text = value.strip()
      parsed = yaml.safe_load(text)
      # Also accept the flag-friendly 'a,b,c' form.
      value = parsed if isinstance(parsed, list) else (
          [v.strip() for v in text.split(',')] if ',' in text else parsed)
    if isinstance(value, tuple):
      value = list(value)
    if not isinstance(value, list):
      raise ValueError
    return [v if item_tp is Any else _to_scalar(item_tp, v) for v in value]
  return _to_scalar(tp, value)


def _coerce(name: str, value: Any) -> Any:
  """Coerces a YAML value or a flag's string to the type of field `name`.

  Strings are parsed: 'none'/'null'/'' give None (Optional fields only),
  'true'/'false' give bools, '[8, 14, 100, 100]' gives a list (YAML syntax).
  """
  types, optional = field_type(name)
  expected = ' or '.join(_type_name(t) for t in types) + (
      ' or None' if optional else '')
  if value is None or (_is_none_word(value) and str not in types):
    if optional:
      return None
    raise ValueError(f'Config key {name!r} cannot be None.')
  if _is_none_word(value) and optional:
    return None  # Optional[str]: 'none' means None, not the string 'none'.
  for tp in types:
    try:
      return _to_type(tp, value)
    except (TypeError, ValueError, yaml.YAMLError):
      continue
  raise ValueError(
      f'Config key {name!r} expects {expected}. Received: {value!r}')


def from_dict(values: Dict[str, Any], base: Optional[Config] = None,
              strict: bool = True) -> Config:
  """Builds a Config from `values` on top of `base` (defaults if None)."""
  known = set(field_names())
  unknown = sorted(k for k in values if k not in known)
  if unknown and strict:
    raise ValueError(f'Unknown config key(s): {", ".join(unknown)}. '
                     f'Known keys: {", ".join(sorted(known))}')
  cfg = dataclasses.replace(base) if base is not None else Config()
  for k, v in values.items():
    if k in known:
      setattr(cfg, k, _coerce(k, v))
  return cfg


def load_yaml(path: str) -> Dict[str, Any]:
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Config file not found: {path}')
  with open(path, 'r', encoding='utf-8') as f:
    try:
      data = yaml.safe_load(f) or {}
    except yaml.YAMLError as e:
      raise ValueError(f'Config file {path} is not valid YAML: {e}') from e
  if not isinstance(data, dict):
    raise ValueError(f'Config file {path} must hold a mapping of keys.')
  return data


def load(path: Optional[str] = None,
         overrides: Optional[Union[Dict[str, Any], Sequence[str]]] = None
         ) -> Config:
  """Loads a config: defaults <- YAML file `path` <- `overrides`.

  Args:
    path: optional YAML file with reference keys.
    overrides: a dict, or a list of 'KEY=VALUE' strings.
  """
  cfg = from_dict(load_yaml(path)) if path else Config()
  if overrides:
    if not isinstance(overrides, dict):
      pairs = {}
      for item in overrides:
        if '=' not in item:
          raise ValueError(f'Override must be KEY=VALUE. Received: {item!r}')
        k, v = item.split('=', 1)
        pairs[k.strip().lstrip('-')] = v
      overrides = pairs
    cfg = from_dict(overrides, base=cfg)
  return cfg
