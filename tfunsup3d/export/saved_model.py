"""SavedModel export in the TF Serving layout.

`export_saved_model(model, 'saved_models', 'unsup3d')` writes
`saved_models/unsup3d/<version>/` (version: the next integer unless given),
which `tensorflow_model_server --model_base_path=.../saved_models/unsup3d`
serves. Two signatures, batch dimension free:

* `serving_default`: input `images`, float32 `[None, S, S, 3]` in [0, 1]
  (S = config image_size), already cropped and resized.
* `predict_encoded`: input `image_bytes`, string `[None]`, each a JPEG, PNG,
  GIF (first frame) or BMP file's bytes. Decoded in the graph (JPEG with the
  accurate integer IDCT, as PIL and the training pipeline), cropped as the
  config's `crop` says (or a centre square, see `encoded_crop`), resized to
  S x S (bilinear, antialiased) exactly as `tfunsup3d.data.images` does.

Both return the same outputs (`OUTPUT_KEYS`), for the B input images only:
the model also renders the B flipped (symmetric) reconstructions and its
tensors have 2B rows; the SavedModel returns the first B rows (the input
images' own factors; `recon_im` uses the joint validity mask of both
reconstructions, as the model's `recon_im` does). Without a confidence net
(`use_conf_map: false`) the four `conf_sigma_*` outputs are absent.

Metadata (config, image size, source checkpoint, versions, signatures) goes
to the asset `assets/tfunsup3d.json`; `read_metadata(path)` reads it back.
Loading the SavedModel needs TensorFlow only, not tfunsup3d:

```python
loaded = tf.saved_model.load('saved_models/unsup3d/1')
out = loaded.signatures['serving_default'](images=images)
```

The renderer's z-buffer (a `tf.while_loop` of scatter-min ops) exports as
plain TF ops. `jit_compile=True` marks the model function for XLA; it saves,
loads and runs in TensorFlow, but TF Serving builds run such functions only
with XLA enabled (e.g. `--xla_cpu_compilation_enabled`), so it is off by
default.
"""

import contextlib
import datetime
import json
import logging
import os
import re
import shutil
import tempfile
from typing import Any, Dict, List, Optional, Sequence, Union

from absl import logging as absl_logging
import keras
import tensorflow as tf

import tfunsup3d
from tfunsup3d.data import image_files

SIGNATURE_IMAGES = 'serving_default'
SIGNATURE_ENCODED = 'predict_encoded'
SIGNATURES = (SIGNATURE_IMAGES, SIGNATURE_ENCODED)
INPUT_IMAGES = 'images'
INPUT_BYTES = 'image_bytes'  # TF Serving REST: a name ending in _bytes takes
                             # {"b64": ...} values.
METADATA_FILE = 'tfunsup3d.json'
METADATA_FORMAT = 'tfunsup3d-saved-model/1'
ENCODED_CROPS = ('config', 'square', 'none')

# Signature output -> key of `Unsup3D.decompose`.
_OUTPUTS = (
    ('canon_depth', 'canon_depth'),
    ('canon_albedo', 'canon_albedo'),
    ('canon_normal', 'canon_normal'),
    ('canon_diffuse_shading', 'canon_diffuse_shading'),
    ('canon_im', 'canon_im'),
    ('light_a', 'canon_light_a'),
    ('light_b', 'canon_light_b'),
    ('light_d', 'canon_light_d'),
    ('view', 'view'),
    ('recon_depth', 'recon_depth'),
    ('recon_im', 'recon_im'),
    ('conf_sigma_l1', 'conf_sigma_l1'),
    ('conf_sigma_l1_flip', 'conf_sigma_l1_flip'),
    ('conf_sigma_percl', 'conf_sigma_percl'),
    ('conf_sigma_percl_flip', 'conf_sigma_percl_flip'),
)
OUTPUT_KEYS = tuple(name for name, _ in _OUTPUTS)
CONF_OUTPUT_KEYS = tuple(k for k in OUTPUT_KEYS if k.startswith('conf_'))
DECOMPOSE_KEYS = dict(_OUTPUTS)

# What each output holds, for the metadata and the docs.
OUTPUT_HELP = {
    'canon_depth': 'canonical depth, [min_depth, max_depth] (border columns '
                   'at border_depth)',
    'canon_albedo': 'canonical albedo in [-1, 1]',
    'canon_normal': 'canonical normals, unit (x right, y down, z away)',
    'canon_diffuse_shading': 'max(0, n.l) in [0, 1]',
    'canon_im': 'shaded canonical image in about [-1, 1]',
    'light_a': 'ambient strength k_a',
    'light_b': 'diffuse strength k_d',
    'light_d': 'unit light direction (dx, dy, 1)/|.|',
    'view': 'rotations (rx, ry, rz) in radians, translations (tx, ty, tz)',
    'recon_depth': 'depth in the input view (clamped; max_depth + margin = '
                   'invalid)',
    'recon_im': 'reconstruction in [-1, 1], 0 where invalid',
    'conf_sigma_l1': 'sigma of the photometric loss, > 0 (low = confident)',
    'conf_sigma_l1_flip': 'sigma of the flipped reconstruction',
    'conf_sigma_percl': 'sigma of the perceptual loss at S/4',
    'conf_sigma_percl_flip': 'sigma of the flipped perceptual loss at S/4',
}


def output_shapes(cfg) -> Dict[str, List[Optional[int]]]:
  """Shapes of the signature outputs (None = batch) for a resolved config."""
  s = int(cfg.image_size)
  q = s // 4
  shapes = {
      'canon_depth': [None, s, s],
      'canon_albedo': [None, s, s, 3],
      'canon_normal': [None, s, s, 3],
      'canon_diffuse_shading': [None, s, s, 1],
      'canon_im': [None, s, s, 3],
      'light_a': [None, 1],
      'light_b': [None, 1],
      'light_d': [None, 3],
      'view': [None, 6],
      'recon_depth': [None, s, s],
      'recon_im': [None, s, s, 3],
      'conf_sigma_l1': [None, s, s, 1],
      'conf_sigma_l1_flip': [None, s, s, 1],
      'conf_sigma_percl': [None, q, q, 1],
      'conf_sigma_percl_flip': [None, q, q, 1],
  }
  if not cfg.use_conf_map:
    for key in CONF_OUTPUT_KEYS:
      del shapes[key]
  return shapes


def serving_outputs(model, images) -> Dict[str, tf.Tensor]:
  """The signature outputs: `model.decompose(images)`, first B rows.

  Args:
    model: an `Unsup3D`.
    images: float32 `[B, S, S, 3]` in [0, 1].

  Returns:
    dict keyed by `OUTPUT_KEYS` (without `conf_*` when the model has no
    confidence net), each `[B, ...]` with the static shape of
    `output_shapes`.
  """
  out = model.decompose(images)
  b = tf.shape(images)[0]
  shapes = output_shapes(model.cfg)
  result = {}
  for name, shape in shapes.items():
    value = out[DECOMPOSE_KEYS[name]][:b]
    result[name] = tf.ensure_shape(value, shape)
  return result


def _resolve_crop(cfg, encoded_crop: str):
  if encoded_crop not in ENCODED_CROPS:
    raise ValueError(f'encoded_crop must be one of {ENCODED_CROPS}. '
                     f'Received: encoded_crop={encoded_crop!r}')
  if encoded_crop == 'config':
    return image_files.normalize_crop(cfg.crop)
  return encoded_crop if encoded_crop == 'square' else None


def decode_image(contents: tf.Tensor) -> tf.Tensor:
  """One encoded image (string scalar) -> float32 `[H, W, 3]` in [0, 1].

  JPEG uses the accurate integer IDCT (bit-exact with PIL and the training
  pipeline); PNG (8/16 bit), GIF (first frame) and BMP go through
  `tf.io.decode_image`. Alpha is dropped, grayscale repeated.
  """
  image = tf.cond(
      tf.io.is_jpeg(contents),
      lambda: tf.image.convert_image_dtype(tf.io.decode_jpeg(
          contents, channels=3, dct_method='INTEGER_ACCURATE'), tf.float32),
      lambda: tf.io.decode_image(contents, channels=3, dtype=tf.float32,
                                 expand_animations=False))
  image.set_shape([None, None, 3])
  return image


def crop_and_resize(image: tf.Tensor, image_size: int, crop=None
                    ) -> tf.Tensor:
  """`[H, W, 3]` -> crop -> `[S, S, 3]` (bilinear, antialiased, clipped).

  Args:
    image: float32 `[H, W, 3]` in [0, 1].
    image_size: S.
    crop: None (whole image), an int c (centre c x c, rounded like
      torchvision's CenterCrop and `tfunsup3d.data`), `[y0, x0, h, w]`, or
      'square' (the largest centred square).

  Returns:
    float32 `[S, S, 3]`. An image smaller than the crop raises
    InvalidArgumentError at run time.
  """
  shape = tf.shape(image)
  h, w = shape[0], shape[1]
  if crop is None:
    box = tf.stack([0, 0, h, w])
  elif isinstance(crop, str):  # 'square'
    c = tf.minimum(h, w)
    box = tf.stack([(h - c) // 2, (w - c) // 2, c, c])
  else:
    if isinstance(crop, int):
      # Python's round() halves to even, as tf.round does.
      c = tf.constant(crop, tf.int32)
      y0 = tf.cast(tf.round(tf.cast(h - c, tf.float32) / 2.0), tf.int32)
      x0 = tf.cast(tf.round(tf.cast(w - c, tf.float32) / 2.0), tf.int32)
      box = tf.stack([y0, x0, c, c])
    else:
      box = tf.constant(list(crop), tf.int32)
    fits = (box[0] >= 0) & (box[1] >= 0) & (box[0] + box[2] <= h) & (
        box[1] + box[3] <= w)
    with tf.control_dependencies([tf.debugging.Assert(
        fits, ['image smaller than the crop', h, w, box])]):
      box = tf.identity(box)
  image = tf.slice(image, tf.stack([box[0], box[1], 0]),
                   tf.stack([box[2], box[3], 3]))
  size = int(image_size)
  image = tf.cond(
      tf.logical_and(tf.equal(box[2], size), tf.equal(box[3], size)),
      lambda: image,
      lambda: tf.image.resize(image, [size, size], method='bilinear',
                              antialias=True))
  image = tf.clip_by_value(image, 0.0, 1.0)
  image.set_shape([size, size, 3])
  return image


def decode_images(image_bytes: tf.Tensor, image_size: int, crop=None
                  ) -> tf.Tensor:
  """string `[B]` of encoded images -> float32 `[B, S, S, 3]` in [0, 1]."""
  size = int(image_size)
  return tf.map_fn(
      lambda contents: crop_and_resize(decode_image(contents), size, crop),
      image_bytes,
      fn_output_signature=tf.TensorSpec([size, size, 3], tf.float32))


class ServingModule(tf.Module):
  """The exported object: the model's variables and the two signatures.

  Only the variables are tracked (once each); the Keras model itself stays
  outside the checkpoint graph, so the SavedModel holds each weight once and
  loads with TensorFlow alone (no tfunsup3d, no Keras objects).

  Args:
    model: an `Unsup3D`.
    jit_compile: compile the model function with XLA (see module doc).
    encoded_crop: crop of `predict_encoded`: 'config' (the config's `crop`),
      'square' (largest centred square) or 'none' (resize the whole image).
    metadata_path: optional JSON file to attach as the asset
      `tfunsup3d.json`.
  """

  def __init__(self, model, jit_compile: bool = False,
               encoded_crop: str = 'config',
               metadata_path: Optional[str] = None):
    super().__init__(name='tfunsup3d_serving')
    cfg = model.cfg
    size = int(cfg.image_size)
    crop = _resolve_crop(cfg, encoded_crop)
    # Underlying tf.Variables, tracked once (Keras 3 variables wrap them).
    self.model_variables = [getattr(v, 'value', v) for v in model.weights]
    if metadata_path is not None:
      self.metadata_asset = tf.saved_model.Asset(metadata_path)

    def run_model(images):
      return serving_outputs(model, images)

    run_model = tf.function(run_model, jit_compile=bool(jit_compile),
                            reduce_retracing=True, autograph=False)

    @tf.function(input_signature=[
        tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_IMAGES)])
    def serve_images(images):
      return run_model(images)

    @tf.function(input_signature=[
        tf.TensorSpec([None], tf.string, name=INPUT_BYTES)])
    def serve_encoded(image_bytes):
      return run_model(decode_images(image_bytes, size, crop))

    self.serve_images = serve_images
    self.serve_encoded = serve_encoded

  def signatures(self) -> Dict[str, Any]:
    return {
        SIGNATURE_IMAGES: self.serve_images.get_concrete_function(),
        SIGNATURE_ENCODED: self.serve_encoded.get_concrete_function(),
    }


class _RenamedCapturesNotice(logging.Filter):
  """Drops TF's notice that a signature's captured variables get new names.

  `tf.saved_model.save` logs, once per signature, every captured
  variable's placeholder name (numeric ids TF made up) and the `unknown_N`
  it renames them to: hundreds of numbers, about nothing a user set or can
  change. Only that message is dropped.
  """

  def filter(self, record: logging.LogRecord) -> bool:
    return 'with unsupported characters which will be renamed' not in str(
        record.msg)


@contextlib.contextmanager
def _quiet_capture_renames():
  notice = _RenamedCapturesNotice()
  logger = absl_logging.get_absl_logger()
  logger.addFilter(notice)
  try:
    yield
  finally:
    logger.removeFilter(notice)


def next_version(model_dir: str) -> int:
  """1 + the largest integer sub-directory of `model_dir` (1 if none)."""
  versions = [0]
  if os.path.isdir(model_dir):
    versions += [int(d) for d in os.listdir(model_dir)
                 if re.fullmatch(r'\d+', d)]
  return max(versions) + 1


def signature_description(cfg) -> Dict[str, Dict[str, Any]]:
  """JSON-able description of both signatures' inputs and outputs."""
  s = int(cfg.image_size)
  outputs = {name: {'dtype': 'float32', 'shape': shape,
                    'help': OUTPUT_HELP[name]}
             for name, shape in output_shapes(cfg).items()}
  return {
      SIGNATURE_IMAGES: {
          'inputs': {INPUT_IMAGES: {'dtype': 'float32',
                                    'shape': [None, s, s, 3],
                                    'help': 'RGB in [0, 1]'}},
          'outputs': outputs},
      SIGNATURE_ENCODED: {
          'inputs': {INPUT_BYTES: {'dtype': 'string', 'shape': [None],
                                   'help': 'JPEG/PNG/GIF/BMP file bytes'}},
          'outputs': outputs},
  }


def metadata(model, source: Optional[str] = None,
             encoded_crop: str = 'config', jit_compile: bool = False,
             version: Optional[int] = None) -> Dict[str, Any]:
  """The `tfunsup3d.json` asset's content."""
  cfg = model.cfg
  return {
      'format': METADATA_FORMAT,
      'tfunsup3d_version': tfunsup3d.__version__,
      'tensorflow_version': tf.__version__,
      'keras_version': keras.__version__,
      'created_utc': datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec='seconds'),
      'source_checkpoint': os.path.abspath(source) if source else None,
      'version': version,
      'image_size': int(cfg.image_size),
      'encoded_crop': encoded_crop,
      'encoded_crop_value': _resolve_crop(cfg, encoded_crop),
      'jit_compile': bool(jit_compile),
      'outputs_note': ('Outputs hold the B input images only (the first B '
                       'rows of the model tensors; the flipped '
                       'reconstructions are not returned).'),
      'signatures': signature_description(cfg),
      'config': cfg.to_dict(),
  }


def export_saved_model(model, export_dir: str, name: Optional[str] = None,
                       version: Optional[int] = None,
                       source: Optional[str] = None,
                       jit_compile: bool = False,
                       encoded_crop: str = 'config',
                       overwrite: bool = False) -> str:
  """Writes `<export_dir>/<name>/<version>/` and returns its path.

  The SavedModel is written to a hidden temporary directory beside the
  target and renamed into place, so TF Serving never sees a half-written
  version.

  Args:
    model: an `Unsup3D`.
    export_dir: base directory (e.g. `saved_models`).
    name: model name (default: the config's `model_name`).
    version: integer version (default: `next_version`).
    source: the checkpoint the weights came from (recorded in metadata).
    jit_compile: XLA-compile the model function (see module doc).
    encoded_crop: crop of `predict_encoded`, one of `ENCODED_CROPS`.
    overwrite: replace an existing version directory.

  Raises:
    FileExistsError: the version exists and `overwrite` is False.
    ValueError: a bad name, version or `encoded_crop`.
  """
  name = name or model.cfg.model_name
  if not name or not re.fullmatch(r'[A-Za-z0-9][A-Za-z0-9._-]*', name):
    raise ValueError(f'Model name must be letters, digits, ".", "_" or "-". '
                     f'Received: name={name!r}')
  model_dir = os.path.join(export_dir, name)
  if version is None:
    version = next_version(model_dir)
  if (isinstance(version, bool) or not isinstance(version, int) or
      not 0 <= version < 2 ** 63):  # TF Serving reads an int64.
    raise ValueError(f'version must be an int in [0, 2^63 - 1]. Received: '
                     f'{version!r}')
  _resolve_crop(model.cfg, encoded_crop)
  target = os.path.join(model_dir, str(version))
  if os.path.exists(target) and not overwrite:
    raise FileExistsError(f'SavedModel version exists: {target} (choose '
                          'another --version, or omit it for the next one)')
  made = [d for d in (model_dir, export_dir) if not os.path.exists(d)]
  os.makedirs(model_dir, exist_ok=True)
  try:
    _write_version(model, target, source, jit_compile, encoded_crop, version)
  finally:
    for d in made:  # A failed first export leaves no empty folder.
      if os.path.isdir(d) and not os.listdir(d):
        os.rmdir(d)
  return target


def _write_version(model, target: str, source: Optional[str],
                   jit_compile: bool, encoded_crop: str, version: int):
  """Writes the SavedModel in a hidden folder beside `target`, then
  renames it to `target` (replacing one there); the folder goes either way."""
  staging = tempfile.mkdtemp(prefix=f'.tmp-{version}-',
                             dir=os.path.dirname(target))
  try:
    meta_dir = os.path.join(staging, 'meta')
    os.makedirs(meta_dir)
    meta_path = os.path.join(meta_dir, METADATA_FILE)
    with open(meta_path, 'w', encoding='utf-8') as f:
      json.dump(metadata(model, source, encoded_crop, jit_compile, version),
                f, indent=1)
    module = ServingModule(model, jit_compile=jit_compile,
                           encoded_crop=encoded_crop, metadata_path=meta_path)
    out = os.path.join(staging, 'model')
    with _quiet_capture_renames():
      tf.saved_model.save(module, out, signatures=module.signatures())
    if os.path.exists(target):
      shutil.rmtree(target)
    os.replace(out, target)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def read_metadata(path: str) -> Dict[str, Any]:
  """The `tfunsup3d.json` asset of an exported version directory."""
  with open(os.path.join(path, 'assets', METADATA_FILE), encoding='utf-8') as f:
    return json.load(f)


def rest_request(signature: str = SIGNATURE_IMAGES, images=None,
                 image_bytes: Union[None, bytes, Sequence[bytes]] = None
                 ) -> Dict[str, Any]:
  """A TF Serving REST `:predict` body (row format) for one signature.

  Args:
    signature: `serving_default` or `predict_encoded`.
    images: float `[B, S, S, 3]` array in [0, 1] (serving_default).
    image_bytes: encoded image file(s) (predict_encoded); sent base64 as
      `{"b64": ...}`, which TF Serving decodes for inputs named `*_bytes`.
  """
  import base64  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  if signature == SIGNATURE_IMAGES:
    images = np.asarray(images, np.float32)
    return {'signature_name': signature, 'instances': images.tolist()}
  if signature == SIGNATURE_ENCODED:
    if isinstance(image_bytes, bytes):
      image_bytes = [image_bytes]
    return {'signature_name': signature,
            'instances': [{'b64': base64.b64encode(b).decode('ascii')}
                          for b in image_bytes]}
  raise ValueError(f'signature must be one of {SIGNATURES}. '
                   f'Received: {signature!r}')
