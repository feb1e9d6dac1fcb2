"""TFLite export: the five networks and the canonical decomposition.

`export_tflite(model, out_dir)` converts, each in three variants:

* the networks netD, netA, netL, netV (and netC), input `images` float32
  `[1, S, S, 3]` in **[-1, 1]** (the networks' own input, `2 x - 1`), outputs
  `output` (netD `[1, S, S, 1]` raw depth, netA `[1, S, S, 3]`, netL `[1, 4]`,
  netV `[1, 6]`, tanh) or netC's `sigma_l1` `[1, S, S, 2]` and `sigma_percl`
  `[1, S/4, S/4, 2]`;
* `canonical`: the whole decomposition up to, not including, the
  rasteriser (`Unsup3D.canonical` and `Unsup3D.shade`): input `images`
  `[1, S, S, 3]` in **[0, 1]**, outputs `CANONICAL_OUTPUTS` under the
  model's (the reference's) names: `canon_depth`, `canon_albedo`,
  `canon_normal`, `canon_diffuse_shading`, `canon_im`, `canon_light_a`,
  `canon_light_b`, `canon_light_d`, `view` (and the four `conf_sigma_*`); no
  `recon_*` (the z-buffer's scatter-min `tf.while_loop` has no TFLite
  builtin).

Variants: `float32` (no optimisation), `float16` (weights stored as
float16, computed in float32), `int8` (dynamic-range quantisation: int8
weights, activations quantised on the fly; no calibration data needed).

Each converted model is run with `ai_edge_litert.interpreter.Interpreter`
(`tf.lite.Interpreter` only if that is missing) on sample images and
compared with the Keras model; `tflite_report.json` records, per model and
variant, the file size, the max / mean absolute error of every output, the
median seconds per image at batch 1 (`num_threads` = the cores this process
may use) and, for `canonical`, how far its depth and normals are from
Keras's in the depth metrics' units (`canonical_agreement`).

Normals: `tf.linalg.cross` has no TFLite builtin ("'tf.Cross' op is
neither a custom op nor a flex op"), so `tfunsup3d.render.depth_to_normals`
writes the cross product with multiplications and converts as it is.
"""

import json
import os
import shutil
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

VARIANTS = ('float32', 'float16', 'int8')
REPORT_FILE = 'tflite_report.json'
CANONICAL = 'canonical'
INPUT_NAME = 'images'


# The outputs of the `canonical` model: `Unsup3D.canonical`'s factors and
# `Unsup3D.shade` of them, under the model's (the reference's) names.
CANONICAL_OUTPUTS = ('canon_depth', 'canon_albedo', 'canon_normal',
                     'canon_diffuse_shading', 'canon_im', 'canon_light_a',
                     'canon_light_b', 'canon_light_d', 'view',
                     'conf_sigma_l1', 'conf_sigma_l1_flip',
                     'conf_sigma_percl', 'conf_sigma_percl_flip')


def canonical_outputs(model, images) -> Dict[str, tf.Tensor]:
  """The `canonical` model's outputs: `model.canonical` and `model.shade`.

  Args:
    model: an `Unsup3D`.
    images: float32 `[B, S, S, 3]` in [0, 1].

  Returns:
    dict keyed by `CANONICAL_OUTPUTS` (without the conf_sigma_* maps when
    the model has no confidence net), B rows each: the first B rows of
    `model.decompose(images)`'s tensors of the same names.
  """
  factors = model.canonical(images)
  factors.update(model.shade(factors))
  return {key: factors[key] for key in CANONICAL_OUTPUTS
          if factors[key] is not None}


def model_functions(model, include_canonical: bool = True
                    ) -> Dict[str, Tuple[Callable, List[tf.Variable]]]:
  """name -> (fn(images) -> dict of outputs, the variables it reads)."""

  def net_fn(net, name):
    if name == 'netC':
      return lambda im: dict(zip(('sigma_l1', 'sigma_percl'), net(im)))
    return lambda im: {'output': net(im)}

  fns = {}
  for name, net in model.networks.items():
    fns[name] = (net_fn(net, name), [getattr(v, 'value', v)
                                     for v in net.weights])
  if include_canonical:
    fns[CANONICAL] = (
        lambda im: canonical_outputs(model, im),
        [getattr(v, 'value', v) for v in model.weights])
  return fns


def select_models(model, names: Optional[Sequence[str]] = None,
                  include_canonical: bool = True
                  ) -> Dict[str, Tuple[Callable, List[tf.Variable]]]:
  """`model_functions` narrowed to `names` (None: all of them).

  Raises:
    ValueError: `names` is empty or names a model `model` does not have
      (netC without confidence maps, canonical when not included).
  """
  fns = model_functions(model, include_canonical)
  if names is None:
    return fns
  unknown = sorted(set(names) - set(fns))
  if unknown or not names:
    what = (f'Unknown TFLite model(s) {unknown}' if unknown else
            'No TFLite model named')
    raise ValueError(f'{what}; choose from {sorted(fns)}.')
  return {k: v for k, v in fns.items() if k in names}


def _save_for_conversion(fn, variables, spec, directory: str):
  module = tf.Module()
  module.model_variables = list(variables)
  module.fn = tf.function(fn, input_signature=[spec], autograph=False)
  tf.saved_model.save(module, directory, signatures={
      'serving_default': module.fn.get_concrete_function()})


def convert_model(model, name: str = CANONICAL, variant: str = 'float32'
                  ) -> bytes:
  """One model of `model_functions(model)` (`name`) converted to `variant`,
  in memory: the `.tflite` bytes, with input `images` `[1, S, S, 3]`."""
  fn, variables = model_functions(model, name == CANONICAL)[name]
  size = int(model.cfg.image_size)
  staging = tempfile.mkdtemp(prefix='tfunsup3d-tflite-')
  try:
    _save_for_conversion(fn, variables, tf.TensorSpec(
        [1, size, size, 3], tf.float32, name=INPUT_NAME), staging)
    return convert(staging, variant)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def convert(saved_model_dir: str, variant: str) -> bytes:
  """Converts a SavedModel's serving_default to TFLite (builtin ops only)."""
  if variant not in VARIANTS:
    raise ValueError(f'variant must be one of {VARIANTS}. '
                     f'Received: variant={variant!r}')
  converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
  converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
  if variant != 'float32':
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
  if variant == 'float16':
    converter.target_spec.supported_types = [tf.float16]
  return converter.convert()


def interpreter_class():
  """`(Interpreter class, description)`: ai_edge_litert, else tf.lite."""
  try:
    from ai_edge_litert import interpreter as litert  # pylint: disable=g-import-not-at-top
    import importlib.metadata  # pylint: disable=g-import-not-at-top
    try:
      version = importlib.metadata.version('ai-edge-litert')
    except importlib.metadata.PackageNotFoundError:
      version = '?'
    return litert.Interpreter, f'ai_edge_litert {version}'
  except ImportError:
    return tf.lite.Interpreter, f'tf.lite.Interpreter (TF {tf.__version__})'


def cpu_threads() -> int:
  """The CPU cores this process may run on (its affinity, else all)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def signature_runner(model_content_or_path,
                     num_threads: Optional[int] = None):
  """The serving_default signature of a converted model, ready to call.

  Args:
    model_content_or_path: the .tflite bytes or a path.
    num_threads: the interpreter's threads (XNNPACK's included); default
      `cpu_threads()`. The interpreter's own default runs one thread, about
      1.7 times slower on two cores for the authors' network sizes.

  Returns:
    `runner(images=x)` -> dict of outputs, `x` float32 `[1, S, S, 3]`.
  """
  cls, _ = interpreter_class()
  threads = cpu_threads() if num_threads is None else int(num_threads)
  if isinstance(model_content_or_path, (bytes, bytearray)):
    interpreter = cls(model_content=bytes(model_content_or_path),
                      num_threads=threads)
  else:
    interpreter = cls(model_path=str(model_content_or_path),
                      num_threads=threads)
  return interpreter.get_signature_runner('serving_default')


def run_tflite(model_content_or_path, images: np.ndarray,
               num_threads: Optional[int] = None) -> Dict[str, np.ndarray]:
  """Runs a converted model's serving_default signature on `images`.

  Args:
    model_content_or_path: the .tflite bytes or a path.
    images: float32 array matching the model input (batch 1; a larger batch
      is run one image at a time).
    num_threads: as `signature_runner`.

  Returns:
    dict of float32 outputs, batched like `images`.
  """
  runner = signature_runner(model_content_or_path, num_threads)
  outs = [runner(**{INPUT_NAME: images[i:i + 1]}) for i in range(len(images))]
  return {k: np.concatenate([o[k] for o in outs], 0) for k in outs[0]}


def seconds_per_image(model_content_or_path, image: np.ndarray,
                      repeats: int = 10,
                      num_threads: Optional[int] = None) -> float:
  """Median seconds of one call on `image` `[1, S, S, 3]`, after a warm-up
  call, with `signature_runner(..., num_threads)`."""
  runner = signature_runner(model_content_or_path, num_threads)
  runner(**{INPUT_NAME: image})
  times = []
  for _ in range(max(1, repeats)):
    start = time.perf_counter()
    runner(**{INPUT_NAME: image})
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def canonical_agreement(got: Dict[str, np.ndarray],
                        want: Dict[str, np.ndarray]) -> Dict[str, float]:
  """How far a converted `canonical` model's 3D is from the Keras model's,
  in the depth metrics' units: the mean over images of the scale-invariant
  depth error (SIDE, unscaled) between the two `canon_depth` maps, and the
  mean angle in degrees between their `canon_normal` maps (as MAD, but
  between directions: the model's normals are unit only to about 3e-3),
  over every pixel."""
  log_diff = (np.log(np.asarray(got['canon_depth'], np.float64)) -
              np.log(np.asarray(want['canon_depth'], np.float64)))
  axes = tuple(range(1, log_diff.ndim))
  side = np.sqrt(np.maximum(np.mean(log_diff ** 2, axes) -
                            np.mean(log_diff, axes) ** 2, 0.0))
  a, b = (np.asarray(x['canon_normal'], np.float64) for x in (got, want))
  cos = np.sum(a * b, -1) / np.maximum(
      np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)
  angle = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
  return {'canon_depth_side': float(side.mean()),
          'canon_normal_mad_deg': float(angle.mean())}


def _errors(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray]
            ) -> Dict[str, Dict[str, float]]:
  errors = {}
  for key, ref in want.items():
    diff = np.abs(np.asarray(got[key], np.float64) -
                  np.asarray(ref, np.float64))
    errors[key] = {'max_abs_error': float(diff.max()),
                   'mean_abs_error': float(diff.mean()),
                   'reference_abs_max': float(np.abs(ref).max())}
  return errors


def sample_images(image_size: int, count: int = 2, seed: int = 0
                  ) -> np.ndarray:
  """Smooth random test images `[count, S, S, 3]` in [0, 1]."""
  rng = np.random.RandomState(seed)
  low = rng.rand(count, 8, 8, 3).astype(np.float32)
  images = tf.image.resize(low, [image_size, image_size], 'bicubic').numpy()
  noise = 0.05 * rng.randn(count, image_size, image_size, 3)
  return np.clip(images + noise, 0.0, 1.0).astype(np.float32)


def _convert_and_compare(sm_dir: str, name: str, variant: str,
                         net_inputs: np.ndarray,
                         keras_out: Dict[str, np.ndarray],
                         out_dir: str) -> Dict[str, Any]:
  """Converts one staged model to one variant, writes it and compares it
  with `keras_out`; returns the report's result for this variant."""
  result = {}

  def attempt(step, fn, *args):
    try:
      return fn(*args)
    except Exception as e:  # pylint: disable=broad-except
      result['error'] = f'{step} failed: {_one_line(e)}'
      logging.warning('TFLite %s %s: %s', name, variant, result['error'])
      return None

  start = time.time()
  content = attempt('conversion', convert, sm_dir, variant)
  if content is None:
    return result
  result['seconds'] = round(time.time() - start, 2)
  filename = f'{name}_{variant}.tflite'
  with open(os.path.join(out_dir, filename), 'wb') as f:
    f.write(content)
  result['file'] = filename
  result['bytes'] = len(content)
  got = attempt('interpreter', run_tflite, content, net_inputs)
  if got is None:
    return result
  errors = _errors(got, keras_out)
  result['errors'] = errors
  result['max_abs_error'] = max(e['max_abs_error'] for e in errors.values())
  result['mean_abs_error'] = float(np.mean(
      [e['mean_abs_error'] for e in errors.values()]))
  if name == CANONICAL:
    result.update(canonical_agreement(got, keras_out))
  result['seconds_per_image'] = round(
      seconds_per_image(content, net_inputs[:1]), 5)
  result['num_threads'] = cpu_threads()
  logging.info('TFLite %-9s %-7s %9d bytes  max|err| %.3g  mean|err| %.3g  '
               '%.1f ms', name, variant, len(content),
               result['max_abs_error'], result['mean_abs_error'],
               1000 * result['seconds_per_image'])
  return result


def _export_model(name: str, fn, variables, spec, sm_dir: str,
                  images: np.ndarray, variants: Sequence[str],
                  out_dir: str) -> Dict[str, Any]:
  """Stages one model function as a SavedModel in `sm_dir` and converts it to
  every variant; returns its report entry."""
  net_inputs = images if name == CANONICAL else images * 2.0 - 1.0
  keras_out = {k: v.numpy() for k, v in fn(tf.constant(net_inputs)).items()}
  entry = {'outputs': {k: list(v.shape[1:]) for k, v in keras_out.items()},
           'variants': {}}
  try:
    _save_for_conversion(fn, variables, spec, sm_dir)
  except Exception as e:  # pylint: disable=broad-except
    entry['error'] = _one_line(e)
    logging.warning('TFLite %s: could not trace: %s', name, entry['error'])
    return entry
  for variant in variants:
    entry['variants'][variant] = _convert_and_compare(
        sm_dir, name, variant, net_inputs, keras_out, out_dir)
  return entry


def _new_report(size: int, num_images: int, variants: Sequence[str],
                source: Optional[str],
                images_from: Optional[str]) -> Dict[str, Any]:
  """The report's header, with no models yet."""
  return {
      'image_size': size,
      'batch_size': 1,
      'num_test_images': int(num_images),
      'test_images': (os.path.abspath(images_from) if images_from else
                      'smooth random images (sample_images)'),
      'interpreter': interpreter_class()[1],
      'tensorflow_version': tf.__version__,
      'source_checkpoint': os.path.abspath(source) if source else None,
      'variants': list(variants),
      'inputs': {'networks': 'images [1,S,S,3] float32 in [-1, 1]',
                 CANONICAL: 'images [1,S,S,3] float32 in [0, 1]'},
      'models': {},
  }


def export_tflite(model, out_dir: str, variants: Sequence[str] = VARIANTS,
                  names: Optional[Sequence[str]] = None,
                  include_canonical: bool = True,
                  images: Optional[np.ndarray] = None,
                  source: Optional[str] = None,
                  images_from: Optional[str] = None) -> Dict[str, Any]:
  """Converts, runs and compares; writes `<name>_<variant>.tflite` files and
  `tflite_report.json` to `out_dir`.

  Args:
    model: an `Unsup3D`.
    out_dir: output directory (created).
    variants: subset of `VARIANTS`.
    names: models to convert (default: every network, plus `canonical`
      when `include_canonical`).
    include_canonical: also convert the canonical decomposition.
    images: float32 `[N, S, S, 3]` in [0, 1] to measure errors on (default:
      `sample_images`).
    source: the checkpoint the weights came from (recorded).
    images_from: where `images` came from (recorded).

  Returns:
    The report (also written as JSON). `report['models'][name]['variants']
    [variant]` holds `file`, `bytes`, `seconds` (conversion), `errors` (per
    output) and `max_abs_error` / `mean_abs_error` (over outputs), or
    `error` (the one-line reason) when conversion or running failed.
  """
  for variant in variants:
    if variant not in VARIANTS:
      raise ValueError(f'Unknown TFLite variant {variant!r}; choose from '
                       f'{VARIANTS}.')
  size = int(model.cfg.image_size)
  if images is None:
    images = sample_images(size)
  images = np.asarray(images, np.float32)
  fns = select_models(model, names, include_canonical)
  os.makedirs(out_dir, exist_ok=True)
  report = _new_report(size, len(images), variants, source, images_from)
  spec = tf.TensorSpec([1, size, size, 3], tf.float32, name=INPUT_NAME)
  staging = tempfile.mkdtemp(prefix='tfunsup3d-tflite-')
  try:
    for name, (fn, variables) in fns.items():
      report['models'][name] = _export_model(
          name, fn, variables, spec, os.path.join(staging, name), images,
          variants, out_dir)
  finally:
    shutil.rmtree(staging, ignore_errors=True)
  with open(os.path.join(out_dir, REPORT_FILE), 'w', encoding='utf-8') as f:
    json.dump(report, f, indent=1)
  return report


def _one_line(error: BaseException) -> str:
  """The first informative line of an exception (converter errors are long)."""
  text = str(error).strip()
  lines = [line.strip() for line in text.splitlines() if line.strip()]
  for line in lines:
    if "' op is neither a custom op nor a flex op" in line or (
        'Custom ops:' in line):
      return f'{type(error).__name__}: {line}'[:500]
  head = lines[0] if lines else type(error).__name__
  return f'{type(error).__name__}: {head}'[:500]


def report_table(report: Dict[str, Any]) -> str:
  """A Markdown table of a report: model, variant, size, milliseconds per
  image, max/mean error; and for `canonical`, its 3D against Keras's."""
  rows = ['| model | variant | size (KiB) | ms / image | max abs err | '
          'mean abs err | depth SIDE x1e-2 / normals MAD deg vs Keras |',
          '|---|---|---:|---:|---:|---:|---|']
  for name, entry in report['models'].items():
    if 'error' in entry:
      rows.append(f'| {name} | - | - | - | {entry["error"]} | | |')
      continue
    for variant, r in entry['variants'].items():
      if 'error' in r:
        rows.append(f'| {name} | {variant} | - | - | {r["error"]} | | |')
        continue
      agreement = ('-' if 'canon_depth_side' not in r else
                   f'{100 * r["canon_depth_side"]:.3g} / '
                   f'{r["canon_normal_mad_deg"]:.3g}')
      rows.append(f'| {name} | {variant} | {r["bytes"] / 1024:.1f} | '
                  f'{1000 * r["seconds_per_image"]:.1f} | '
                  f'{r["max_abs_error"]:.2e} | {r["mean_abs_error"]:.2e} | '
                  f'{agreement} |')
  return '\n'.join(rows)
