"""Synthetic, symmetric categories with ground-truth depth: face-like, car-like.

Instances follow Unsup3D's own image formation (docs/method.md §2): a canonical
depth and albedo, mirror-symmetric about the vertical centre line, shaded by an
ambient + diffuse (Lambertian) light and reprojected into a random view (yaw,
pitch, roll, x/y translation) by `tfunsup3d.render`. `SynthOptions.category`
picks the scene: 'face' (this module) or 'car' (`synth_car`: a car seen from
the front, turned by a wider yaw); both make the same factors
(`FACTORS_FROM_PARAMS`), rendered and written alike. The face's canonical
scene is a face-like relief on a backdrop plane, expressed as the model
expresses depth (mean-centred in tanh space, border columns at
`border_depth`; see `synth_maps.representable`): depth: head (a rounded
ellipsoid cap) + nose ridge + brow ridge + cheeks + chin + lips - eye sockets:
smooth symmetric bumps of random per-instance amplitude, position and width (a
low-dimensional family); albedo: skin tone with a smooth gradient and blush;
symmetric eyes, brows, lips, mostly hair; a smooth coloured backdrop gradient;
asymmetric details (a dark mark on one side, a horizontal backdrop gradient)
scaled by `asymmetry` (0: an exact mirror). Ground truth (layout of
docs/method.md §5) is the object's depth in the input view; elsewhere
(backdrop, uncovered pixels) p = 0 (d = max_depth, which object depths stay
well below, so the metric mask d < max d is the object). """

import dataclasses
import functools
import io
import json
import math
import os
import shutil
import tempfile
import time
import zipfile
from typing import Dict, Mapping, Optional, Tuple

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d import errors
from tfunsup3d import progress
from tfunsup3d import render
from tfunsup3d.data import synth_car
from tfunsup3d.data import synth_maps as maps
from tfunsup3d.data import synth_params

# The category's parameters live in synth_params; these stay importable here.
SynthOptions = synth_params.SynthOptions
sample_params = synth_params.sample_params

SPLITS = ('train', 'val', 'test')
BATCH_SIZE = 64  # render batch up to 128 pixels; fixed (`render_batch`).
# factors.npz holds every instance's canonical maps (depth float32, albedo
# 3 x uint8, mask bool: 8 bytes a pixel), gathered in memory first.
MAX_FACTOR_BYTES = 4 << 30


def render_batch(image_size: int) -> int:
  """Instances per render call: 64 up to 128 pixels, then fewer, so that a
  call renders at most 64 x 128^2 pixels. A function of the image size only,
  so that outputs never depend on anything else (the compiled renderer's
  float rounding can differ between batch shapes by an ulp)."""
  return int(max(1, min(BATCH_SIZE, BATCH_SIZE * 128 ** 2 // image_size ** 2)))


_FACTOR_KEYS = ('canon_depth', 'canon_albedo', 'backdrop_albedo',
                'face_mask', 'light_a', 'light_b', 'light_d', 'view')


def _bump_pair(ax, y, cx, cy, sx, sy):
  """Two Gaussian bumps at (+-cx, cy), both 1 at their centres.

  Args:
    ax: |x|, broadcastable to [n,S,S]; y likewise.
    cx, cy: centre (cx = 0 puts both bumps on the centre line: value 2).
    sx, sy: standard deviations.
  Returns:
    An array broadcast from the arguments, [n,S,S].
  """
  return sum(np.exp(-0.5 * (((ax + sign * cx) / sx) ** 2 +
                            ((y - cy) / sy) ** 2)) for sign in (-1.0, 1.0))


def _relief(q, x, y, eye_y, tip, lip_y):
  """Depth relief h of the face (towards the camera), in depth-range units.

  Args:
    q: parameters, per-instance scalars shaped [n,1,1].
    x, y: `maps.grid` coordinates.
    eye_y, tip, lip_y: heights of the eyes, nose tip and lips, [n,1,1].
  Returns:
    (h, face): h [n,S,S] (0 outside the head); face [n,S,S], 1 inside the
    head ellipse, else 0.
  """
  ax = np.abs(x)
  hy = q['head_y']
  r2 = (x / q['head_ax']) ** 2 + ((y - hy) / q['head_ay']) ** 2
  face = (r2 < 1.0).astype(np.float64)
  inside = np.clip(1.0 - r2, 0.0, 1.0)
  window = np.clip(inside / 0.35, 0.0, 1.0) ** 2  # fades features at the rim
  t = np.clip((y - hy - q['nose_top']) / (q['nose_tip'] - q['nose_top']), 0, 1)
  nose = (0.35 + 0.65 * t) * np.exp(
      -0.5 * (np.maximum(y - tip, 0.0) / 0.06) ** 2
      - 0.5 * (np.maximum(hy + q['nose_top'] - y, 0.0) / 0.12) ** 2
      - 0.5 * (x / (q['nose_width'] * (0.55 + 0.6 * t))) ** 2)
  h = q['head_amp'] * inside ** q['head_pow'] + window * (
      q['nose_amp'] * nose
      - q['socket_amp'] * _bump_pair(ax, y, q['eye_x'], eye_y,
                                     q['socket_sigma'], q['socket_sigma'])
      + q['brow_amp'] * _bump_pair(ax, y, q['eye_x'], eye_y - q['brow_dy'],
                                   0.14, 0.05)
      + q['cheek_amp'] * _bump_pair(ax, y, q['cheek_x'], hy + q['cheek_y'],
                                    0.14, 0.12)
      + q['chin_amp'] / 2 * _bump_pair(ax, y, 0.0, hy + 0.75 * q['head_ay'],
                                       0.13, 0.08)
      + q['lip_amp'] / 2 * _bump_pair(ax, y, 0.0, lip_y, 0.13, 0.04))
  return h, face


def _albedo(p, q, x, y, eye_y, lip_y, pixel):
  """Symmetric albedo in [0, 1]: skin, hair, lips, eyes, brows over a backdrop.

  Args:
    p: parameters, per-instance arrays [n] or [n,k].
    q: the same, scalars shaped [n,1,1].
    x, y, pixel: from `maps.grid`.
    eye_y, lip_y: heights of the eyes and lips, [n,1,1].
  Returns:
    (alb, bg, head): alb [n,S,S,3], mirrored; bg [n,S,S,3], the backdrop;
    head [n,S,S], the anti-aliased head coverage.
  """
  ax = np.abs(x)
  hy = q['head_y']
  light, dark = np.array([0.94, 0.78, 0.66]), np.array([0.42, 0.27, 0.18])
  skin = (light + q['skin_tone'][..., None] * (dark - light)) * (
      1.0 + p['skin_jitter'][:, None, None, :])
  skin = skin * (1.0 + q['skin_grad'] * y)[..., None]
  cheeks = q['blush'] * _bump_pair(ax, y, q['cheek_x'], hy + q['cheek_y'],
                                   0.1, 0.08)
  skin = skin + cheeks[..., None] * np.array([0.08, -0.03, -0.03])
  bg = p['bg_rgb'][:, None, None, :] * (1.0 + q['bg_grad'] * y)[..., None]
  head = maps.disc(x, y - hy, q['head_ax'], q['head_ay'], pixel)
  alb = maps.over(bg, head, skin)
  hair_edge = hy - q['hairline'] * q['head_ay'] + 0.35 * x ** 2
  hair = (q['hair'] < 0.75) * head * np.clip((hair_edge - y) / pixel + 0.5,
                                             0.0, 1.0)
  hair_rgb = np.clip(0.07 + p['hair_tone'][:, None] ** 1.5 * np.array(
      [0.85, 0.65, 0.4]) + p['hair_jitter'], 0.03, 1.0)  # black to blond
  alb = maps.over(alb, hair, hair_rgb)
  alb = maps.over(alb, maps.disc(x, y - lip_y, 0.12, 0.035, pixel),
                  skin * np.array([1.0, 0.6, 0.6]) * q['lip_rgb'][..., None]
                  / 0.55)
  for sx, sy, rgb in ((0.09, 0.04, np.full_like(p['iris_rgb'], 0.92)),
                      (0.035, 0.035, p['iris_rgb'])):  # eye white, iris
    alb = maps.over(alb, maps.disc(ax - q['eye_x'], y - eye_y, sx, sy,
                                   pixel), rgb)
  brow_y = eye_y - q['brow_dy'] + q['brow_tilt'] * (ax - q['eye_x'])
  alb = maps.over(alb, maps.disc(ax - q['eye_x'], y - brow_y, 0.11, 0.022,
                                 pixel), hair_rgb * 0.45)
  return maps.mirror(alb), bg, head


def factors_from_params(params: Mapping[str, np.ndarray], image_size: int,
                        min_depth: float = 0.9, max_depth: float = 1.1,
                        border_depth: Optional[float] = None
                        ) -> Dict[str, np.ndarray]:
  """Evaluates the canonical maps of `sample_params`' instances.

  Returns:
    dict of float32 arrays: canon_depth [n,S,S] in [min_depth, max_depth];
    canon_albedo [n,S,S,3] in [-1, 1]; backdrop_albedo [n,S,S,3] (backdrop
    only: fills what the mesh leaves uncovered); face_mask [n,S,S] (1 on the
    face); light_a, light_b [n,1]; light_d [n,3] (unit); view [n,6].
  """
  p, q, x, y, pixel = maps.layout(params, image_size)
  border_depth = maps.default_border(min_depth, max_depth, border_depth)
  hy = q['head_y']
  eye_y = hy + q['eye_y']
  tip = hy + q['nose_tip']
  lip_y = tip + q['lip_dy']
  h, face = _relief(q, x, y, eye_y, tip, lip_y)
  depth = maps.scene_depth(h, min_depth, max_depth, border_depth)
  alb, bg, head = _albedo(p, q, x, y, eye_y, lip_y, pixel)
  alb, bg = maps.asymmetric_albedo(p, q, x, y, head, hy, alb, bg, pixel)
  return maps.factor_dict(p, depth, face, alb, bg)


# Each category's maps (`SynthOptions.category`): the same factor dict, which
# `render_instances` renders whatever the category.
FACTORS_FROM_PARAMS = {'face': factors_from_params,
                       'car': synth_car.factors_from_params}


def sample_factors(rng: np.random.Generator, n: int, image_size: int,
                   min_depth: float = 0.9, max_depth: float = 1.1,
                   border_depth: Optional[float] = None,
                   options: SynthOptions = SynthOptions()
                   ) -> Dict[str, np.ndarray]:
  """Draws n instances' canonical factors of `options.category` (see
  `factors_from_params`)."""
  return FACTORS_FROM_PARAMS[options.category](
      sample_params(rng, n, options), image_size, min_depth, max_depth,
      border_depth)


@functools.lru_cache(maxsize=8)
def _renderer(image_size: int, fov: float, rot_center_depth: float,
              min_depth: float, max_depth: float, anti_aliasing: bool):
  """A compiled `(factors) -> (image [-1,1], depth, mask)` for one setting."""
  K = render.intrinsics(image_size, fov)
  margin = (max_depth - min_depth) / 2.0

  @tf.function(jit_compile=True, reduce_retracing=True, autograph=False)
  def fn(depth, albedo, backdrop, face, light_a, light_b, light_d, view):
    normal = render.depth_to_normals(depth, K)
    canon_im, _ = render.shade(albedo, normal, light_a, light_b, light_d)
    flat = tf.zeros_like(normal) + tf.constant([0.0, 0.0, 1.0])
    backdrop_im, _ = render.shade(backdrop, flat, light_a, light_b, light_d)
    recon = render.render_depth(depth, view, K, rot_center_depth, min_depth,
                                max_depth, anti_aliasing=anti_aliasing)
    grid = render.inverse_warp_grid(recon, view, K, rot_center_depth)
    valid = recon < max_depth + margin
    # Edge-replicating sampling: no zero-padding seam at the canonical border.
    inside = tf.clip_by_value(grid, -1.0, 1.0)
    image = tf.where(valid[..., None], render.grid_sample(canon_im, inside),
                     render.grid_sample(backdrop_im, inside))
    on_face = render.grid_sample(face[..., None], grid)[..., 0] > 0.5
    mask = valid & on_face & (recon < max_depth)  # max_depth: background
    return image, tf.where(mask, recon, max_depth), mask
  return fn


def render_instances(factors: Mapping[str, np.ndarray], cfg,
                     batch_size: int = BATCH_SIZE
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Renders instances into their views with the model's image formation.

  Args:
    factors: dict of `sample_factors` (n instances of size S).
    cfg: `Config` (fov, min/max_depth, rot_center_depth, anti_aliasing).
    batch_size: instances per compiled call (the last call is padded).
  Returns:
    (images [n,S,S,3] float32 in [0, 1]; depth_gt [n,S,S] float32: the face
    depth in the input view, max_depth elsewhere; mask [n,S,S] bool: face).
  """
  cfg = cfg.resolved()
  n, s = factors['canon_depth'].shape[:2]
  fn = _renderer(int(s), float(cfg.fov), float(cfg.rot_center_depth),
                 float(cfg.min_depth), float(cfg.max_depth),
                 bool(cfg.anti_aliasing))
  outs = []
  for start in range(0, n, batch_size):
    keep = min(batch_size, n - start)
    args = [np.asarray(factors[k][start:start + keep], np.float32)
            for k in _FACTOR_KEYS]  # padded below: one compiled shape
    args = [np.pad(v, [(0, batch_size - keep)] + [(0, 0)] * (v.ndim - 1),
                   mode='edge') for v in args]
    outs.append([t.numpy()[:keep] for t in fn(*args)])
  images, depth, mask = (np.concatenate(z) for z in zip(*outs))
  return np.clip(images * 0.5 + 0.5, 0.0, 1.0), depth, mask


def depth_to_png(depth: np.ndarray, mask: np.ndarray, min_depth: float,
                 max_depth: float) -> np.ndarray:
  """Depth -> uint16 p * 65535 (p = (max - d) / (max - min); 0 off mask)."""
  p = (max_depth - depth) / (max_depth - min_depth)
  q = np.clip(np.round(p * 65535.0), 1, 65535).astype(np.uint16)
  return np.where(mask, q, 0).astype(np.uint16)


def canvas_camera(image_size: int, fov: float,
                  canvas: float) -> Tuple[int, int, float]:
  """The canvas `SynthOptions.canvas` renders on.

  Args:
    image_size: S, the image's side in pixels.
    fov: the image's field of view in degrees.
    canvas: the canvas side in image sides (>= 1).

  Returns:
    (side, margin, fov): the canvas side S + 2 * margin (the margin rounded
    to whole pixels) and the field of view that keeps the focal length in
    pixels, so that the canvas's centre S x S crop is the image's camera.
  """
  margin = int(round(image_size * (canvas - 1.0) / 2.0))
  side = image_size + 2 * margin
  half = math.tan(math.radians(fov) / 2.0) * (side - 1) / (image_size - 1)
  return side, margin, math.degrees(2.0 * math.atan(half))


def _render_split_chunk(make_factors, params, cfg, canvas: float):
  """Factors of one chunk of `params` (at most `render_batch` instances) on
  the canvas, and its images, depth and mask cropped to cfg.image_size
  (`render_instances`)."""
  size = cfg.image_size
  side, margin, fov = canvas_camera(size, cfg.fov, canvas)
  if margin:  # the layout keeps its size in pixels on the larger grid
    params = dict(params, zoom=params['zoom'] * (size - 1) / (side - 1))
    cfg = dataclasses.replace(cfg, fov=fov)
  with np.errstate(all='ignore'):  # `_check_chunk` names what went wrong.
    chunk = make_factors(params, side, cfg.min_depth, cfg.max_depth,
                         cfg.border_depth)
  crop = slice(margin, margin + size)
  return chunk, [a[:, crop, crop] for a in render_instances(
      chunk, cfg, batch_size=render_batch(size))]


def _check_chunk(chunk, images, mask, start: int, options: SynthOptions):
  """Raises ValueError if an instance has non-finite maps or no object
  pixel in the image: parameter ranges (`param_ranges`, `zoom`) beyond
  what the generator can draw."""
  finite = np.ones(len(images), bool)
  for maps in [images] + [chunk[k] for k in ('canon_depth', 'canon_albedo')]:
    finite &= np.isfinite(maps.reshape(len(maps), -1)).all(axis=1)
  seen = mask.reshape(len(mask), -1).any(axis=1)
  bad = np.flatnonzero(~finite | ~seen)
  if bad.size:
    i = bad[0]
    what = 'non-finite maps' if not finite[i] else 'no object in the image'
    raise ValueError(
        f'Instance {start + i} of the {options.category} generator has '
        f'{what}: its ranges (param_ranges '
        f'{list(options.param_ranges) or "as drawn by default"}, zoom '
        f'{options.zoom}) go beyond what it can draw.')


def write_split(split_dir: str, n: int, cfg, seed: int,
                options: SynthOptions, split: str) -> None:
  """Renders n instances of `split` into split_dir (docs/method.md §5 layout).

  Also writes split_dir/factors.npz: canon_depth [n,C,C] float32,
  canon_albedo [n,C,C,3] uint8 ((a + 1) * 127.5), face_mask [n,C,C] bool
  (C = S, or the canvas side with `options.canvas` > 1, `canvas_camera`),
  light_a, light_b [n,1], light_d [n,3], view [n,6] float32, the exact
  parameters param_<name> (see `factors_from_params`) and meta (JSON).
  """
  cfg = cfg.resolved()
  rng = np.random.default_rng([int(seed), SPLITS.index(split)])  # per split
  params = sample_params(rng, n, options)
  for sub in ('image', 'depth'):
    os.makedirs(os.path.join(split_dir, sub), exist_ok=True)
  store = {k: [] for k in _FACTOR_KEYS if k != 'backdrop_albedo'}
  report = progress.Progress(n, f'synth {split}')
  make_factors = FACTORS_FROM_PARAMS[options.category]
  batch = render_batch(cfg.image_size)
  for start in range(0, n, batch):
    chunk, (images, depth, mask) = _render_split_chunk(
        make_factors, {k: v[start:start + batch] for k, v in params.items()},
        cfg, options.canvas)
    _check_chunk(chunk, images, mask, start, options)
    pngs = depth_to_png(depth, mask, cfg.min_depth, cfg.max_depth)
    for i, image in enumerate(np.round(images * 255.0).astype(np.uint8)):
      for sub, array in (('image', image), ('depth', pngs[i])):
        Image.fromarray(array).save(
            os.path.join(split_dir, sub, f'{start + i:06d}_{sub}.png'))
    chunk['canon_albedo'] = np.round((chunk['canon_albedo'] + 1.0) * 127.5)
    for k, v in store.items():
      v.append(chunk[k].astype({'canon_albedo': np.uint8,
                                'face_mask': bool}.get(k, np.float32)))
    report.update(len(images))
  report.close()
  arrays = {k: np.concatenate(v) for k, v in store.items()}
  arrays.update({f'param_{k}': v for k, v in params.items()})
  arrays['meta'] = np.array(json.dumps(dict(
      seed=int(seed), split=split, count=n, image_size=cfg.image_size,
      min_depth=cfg.min_depth, max_depth=cfg.max_depth,
      border_depth=maps.default_border(cfg.min_depth, cfg.max_depth,
                                       cfg.border_depth),
      fov=cfg.fov, rot_center_depth=cfg.rot_center_depth,
      anti_aliasing=bool(cfg.anti_aliasing),
      options=dataclasses.asdict(options)), sort_keys=True))
  with zipfile.ZipFile(os.path.join(split_dir, 'factors.npz'), 'w') as zf:
    for key, value in arrays.items():  # np.savez_compressed, no timestamps
      buf = io.BytesIO()
      np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
      zf.writestr(zipfile.ZipInfo(f'{key}.npy', (1980, 1, 1, 0, 0, 0)),
                  buf.getvalue(), compress_type=zipfile.ZIP_DEFLATED)


def write_dataset(out_dir: str, counts: Mapping[str, int], cfg,
                  seed: int = 0, overwrite: bool = False,
                  options: SynthOptions = SynthOptions()) -> Dict[str, float]:
  """Writes `out_dir/{split}/{image,depth}/{i:06d}_{image,depth}.png`.

  Deterministic given the seed (the same bytes); each split has its own
  random stream, seeded by (seed, split). Each split is written to a temporary
  directory and moved into place when complete. All split directories are
  checked before anything is written: a non-empty one is replaced only with
  `overwrite=True`. Splits with count 0 are left alone.

  Args:
    out_dir: the data set root (a config's train_val_data_dir).
    counts: {'train': n, 'val': n, 'test': n} (missing splits: 0).
    cfg: `Config` (image_size, min/max/border_depth, fov, rot_center_depth,
      anti_aliasing).
    seed: the random seed.
    overwrite: replace non-empty split directories.
    options: the category, view ranges, asymmetry, framing.
  Returns:
    {split: seconds taken} for the splits written.
  Raises:
    ValueError: unknown split or negative count, or a split whose factors
      would pass `MAX_FACTOR_BYTES`.
    FileExistsError: a split directory is not empty and not `overwrite`.
    errors.UserError: a write failed (full disk, read-only or unwritable
      `out_dir`); the split being written is removed, finished ones stay.
  """
  options.check()
  cfg = cfg.resolved()
  bad = {k: n for k, n in counts.items() if k not in SPLITS or int(n) < 0}
  if bad:
    raise ValueError(f'counts must map {SPLITS} to numbers >= 0. '
                     f'Received: {bad}')
  todo = [(s, int(counts[s])) for s in SPLITS if int(counts.get(s, 0))]
  side = canvas_camera(cfg.image_size, cfg.fov, options.canvas)[0]
  for split, n in todo:
    if n * side ** 2 * 8 > MAX_FACTOR_BYTES:
      raise ValueError(
          f'{split}: {n} instances of {side}x{side} canonical maps would '
          f'need {n * side ** 2 * 8 / 2 ** 30:.1f} GiB of memory for its '
          f'factors.npz (at most {MAX_FACTOR_BYTES // 2 ** 30} GiB): write '
          'fewer images per split, or several data sets with other seeds.')
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise NotADirectoryError(f'{out_dir} is a file, not a directory.')
  busy = {}
  for split, _ in todo:  # all checked before anything is written
    path = os.path.join(out_dir, split)
    if os.path.exists(path) and not os.path.isdir(path):
      raise NotADirectoryError(f'Not a directory: {path}')
    busy[split] = os.path.isdir(path) and bool(os.listdir(path))
    if busy[split] and not overwrite:
      raise FileExistsError(f'{path} exists and is not empty; pass '
                            'overwrite (--overwrite) to replace it.')
  try:
    return _write_splits(out_dir, todo, busy, cfg, seed, options)
  except OSError as e:
    reason = errors.write_failure(e, 'the output directory')
    raise errors.UserError(
        f'Cannot write the data set to {out_dir}: {reason}.') from e


def _write_splits(out_dir, todo, busy, cfg, seed, options):
  """`write_dataset` once checked: each split via a temporary directory."""
  os.makedirs(out_dir, exist_ok=True)
  seconds = {}
  for split, n in todo:
    target, start = os.path.join(out_dir, split), time.time()
    tmp = tempfile.mkdtemp(prefix=f'.{split}.partial-', dir=out_dir)
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700.
    try:
      write_split(tmp, n, cfg, seed, options, split)
      if busy[split]:
        logging.warning('synth: replacing %s (overwrite)', target)
        shutil.rmtree(target)
      elif os.path.isdir(target):
        os.rmdir(target)
      os.replace(tmp, target)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)  # only left after a failure
    seconds[split] = time.time() - start
    logging.info('synth %s: %d instances in %s (%.1f s)', split, n, target,
                 seconds[split])
  return seconds


# SynthOptions fields that files (factors.npz metas, bench metas) written
# before the field existed lack, with the value such files were made with.
PREDATED_OPTIONS = {'zoom': 1.0, 'canvas': 1.0, 'category': 'face'}


def with_predated_options(written: Mapping[str, object]) -> Dict[str, object]:
  """A stored SynthOptions dict with `PREDATED_OPTIONS` for the fields it
  predates."""
  return dict(PREDATED_OPTIONS, **written)


def changed_options(split_dir: str,
                    options: SynthOptions = SynthOptions()) -> Dict[str,
                                                                   Tuple]:
  """Generator options a written split differs in from `options`.

  Reads the meta of split_dir/factors.npz (`write_split`). Returns
  {name: (written, now)} for each differing option (options the file
  predates count as their value then, `with_predated_options`), or {} when
  they agree or the split has no readable factors.npz (not written by this
  generator).
  """
  try:
    with np.load(os.path.join(split_dir, 'factors.npz')) as f:
      written = with_predated_options(
          json.loads(str(f['meta']))['options'])
  except (OSError, KeyError, ValueError, zipfile.BadZipFile):
    return {}
  now = json.loads(json.dumps(dataclasses.asdict(options)))
  return {k: (written.get(k), v) for k, v in now.items()
          if written.get(k) != v}
