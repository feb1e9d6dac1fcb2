"""The demo: one image -> every output file; many images -> progress, skips.

Per input image, `<output_dir>/<name>/` receives (`OUTPUT_FILES`):

| file | content |
|---|---|
| input.png | the crop the network saw (detected face or centre square) |
| canonical_albedo.png | canonical albedo a, (a + 1) / 2 |
| canonical_image.png | shaded canonical image (albedo x shading) |
| canonical_depth.png | 8-bit depth p = (d - min_depth) / (max_depth - min_depth), near = dark |
| canonical_depth_16bit.png | the same p, 16-bit, at image_size |
| canonical_depth.npy | float32 depth d `[S, S]` |
| canonical_normal.png | normals (n + 1) / 2 (x right, y down, z away from the camera) |
| canonical_diffuse_shading.png | max(0, n.l) |
| reconstruction.png | the re-rendered input (0.5 grey where invalid) |
| confidence_*.png | 1 / (1 + sigma) of the four confidence maps (if the model has them) |
| animation_textured.gif/.mp4 | yaw turntable of the shaded canonical image on the shape |
| animation_normal.gif/.mp4 | the same with the normal map as colour |
| mesh.obj, mesh.mtl, mesh_texture.png | textured mesh (see `tfunsup3d.demo.mesh`) |
| mesh.glb | the same as binary glTF |
| factors.json | light, view (degrees), crop box, detection, file list |
| summary.png | input, albedo, canonical image, depth, normal, shading, reconstruction |

Viewing PNGs are upsampled (bilinear) to `output_size`; data files (.npy,
16-bit PNG, mesh, texture) keep the network's image_size S. MP4 files are
written only when imageio-ffmpeg is installed.
"""

import dataclasses
import json
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from absl import logging
import numpy as np
from PIL import Image
from PIL import ImageDraw

from tfunsup3d import errors
from tfunsup3d import progress
from tfunsup3d.data import image_files
from tfunsup3d.data.image_files import SkippedFile
from tfunsup3d.demo import animation
from tfunsup3d.demo import inputs as inputs_lib
from tfunsup3d.demo import mesh as mesh_lib
from tfunsup3d.errors import UserError

EPS = 1e-7
OUTPUT_FILES = {
    'input': 'input.png',
    'albedo': 'canonical_albedo.png',
    'canonical_image': 'canonical_image.png',
    'depth': 'canonical_depth.png',
    'depth_16bit': 'canonical_depth_16bit.png',
    'depth_npy': 'canonical_depth.npy',
    'normal': 'canonical_normal.png',
    'shading': 'canonical_diffuse_shading.png',
    'reconstruction': 'reconstruction.png',
    'factors': 'factors.json',
    'summary': 'summary.png',
}
CONFIDENCE_FILES = {
    'conf_sigma_l1': 'confidence_l1.png',
    'conf_sigma_l1_flip': 'confidence_l1_flip.png',
    'conf_sigma_percl': 'confidence_perc.png',
    'conf_sigma_percl_flip': 'confidence_perc_flip.png',
}
ANIMATION_FILES = {
    'textured': 'animation_textured',
    'normal': 'animation_normal',
}
MESH_FILES = {
    'obj': 'mesh.obj',
    'mtl': 'mesh.mtl',
    'texture': 'mesh_texture.png',
    'glb': 'mesh.glb',
}
SUMMARY_FILE = 'summary.json'
_SUMMARY_PANELS = ('input', 'albedo', 'canonical_image', 'depth', 'normal',
                   'shading', 'reconstruction')


# Bounds of DemoOptions: viewing pictures are upsampled from image_size (16
# times a 64-pixel model at most; a 1024-pixel frame renders in about 1 GB), and
# each turntable is held in memory as uint8 frames (at most 384 MiB).
MAX_OUTPUT_SIZE = 1024
MAX_FRAMES = 3600
MAX_TURNTABLE_PIXELS = 1 << 27


@dataclasses.dataclass
class DemoOptions:
  """What the demo writes.

  Attributes:
    output_size: side of the viewing PNGs and animations, pixels.
    animations: render the yaw turntables.
    num_frames: frames per turntable.
    max_yaw: turntable amplitude, degrees.
    fps: frames per second of GIF and MP4.
    mp4: also write MP4 when imageio-ffmpeg is installed.
    mesh: write OBJ/MTL/PNG and GLB.
    texture: mesh texture, 'albedo' or 'shaded' (the canonical image).
  """
  output_size: int = 128
  animations: bool = True
  num_frames: int = 36
  max_yaw: float = 60.0
  fps: float = 12.0
  mp4: bool = True
  mesh: bool = True
  texture: str = 'albedo'

  def validate(self):
    if not 8 <= self.output_size <= MAX_OUTPUT_SIZE:
      raise ValueError(f'output_size must be in [8, {MAX_OUTPUT_SIZE}]. '
                       f'Received: {self.output_size}')
    if not 1 <= self.num_frames <= MAX_FRAMES:
      raise ValueError(f'num_frames must be in [1, {MAX_FRAMES}]. Received: '
                       f'{self.num_frames}')
    if not 0.0 < self.fps <= 100.0:  # NaN fails too.
      raise ValueError(f'fps must be in (0, 100]. Received: {self.fps}')
    pixels = self.num_frames * self.output_size ** 2
    if self.animations and pixels > MAX_TURNTABLE_PIXELS:
      raise ValueError(
          f'num_frames x output_size^2 must be at most '
          f'{MAX_TURNTABLE_PIXELS:,} (a turntable is held in memory, 3 bytes '
          f'a pixel; e.g. {MAX_TURNTABLE_PIXELS // 1024 ** 2} frames at '
          f'1024). Received: {self.num_frames} x {self.output_size}^2 = '
          f'{pixels:,}')
    if not 0.0 <= self.max_yaw <= 180.0:
      raise ValueError(f'max_yaw must be in [0, 180] degrees. Received: '
                       f'{self.max_yaw}')
    if self.texture not in ('albedo', 'shaded'):
      raise ValueError(f'texture must be albedo or shaded. Received: '
                       f'{self.texture!r}')
    return self


def expected_files(options: DemoOptions, with_confidence: bool,
                   mp4: Optional[bool] = None) -> List[str]:
  """File names one image's folder receives with these options."""
  names = list(OUTPUT_FILES.values())
  if with_confidence:
    names += list(CONFIDENCE_FILES.values())
  if options.animations:
    if mp4 is None:
      mp4 = options.mp4 and animation.mp4_available()
    for stem in ANIMATION_FILES.values():
      names.append(stem + '.gif')
      if mp4:
        names.append(stem + '.mp4')
  if options.mesh:
    names += list(MESH_FILES.values())
  return sorted(names)


def _resize(array: np.ndarray, size: int) -> np.ndarray:
  """`[h, w, C]` float -> `[size, size, C]` bilinear (no clipping)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if array.shape[0] == size and array.shape[1] == size:
    return array.astype(np.float32)
  return tf.image.resize(array.astype(np.float32), [size, size],
                         method='bilinear').numpy()


def _unit(x: np.ndarray) -> np.ndarray:
  return np.clip(x, 0.0, 1.0)


def _save_png(path: str, image: np.ndarray) -> str:
  """Saves `[H, W]` or `[H, W, 3]` in [0, 1] as 8-bit PNG."""
  image = np.asarray(image)
  if image.ndim == 3 and image.shape[-1] == 1:
    image = image[..., 0]
  Image.fromarray(mesh_lib.to_uint8(_unit(image))).save(path)
  return path


def _panel_label_strip(labels: Sequence[str], tile: int, height: int = 14
                       ) -> Image.Image:
  strip = Image.new('RGB', (tile * len(labels), height), (255, 255, 255))
  draw = ImageDraw.Draw(strip)
  for k, label in enumerate(labels):
    draw.text((k * tile + 3, 1), label[: max(tile // 6, 4)], fill=(0, 0, 0))
  return strip


def label_grid(rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str],
               tile: int, label_height: int = 14) -> Image.Image:
  """A grid of `[tile, tile, 3]` uint8 tiles under a strip of column labels.

  The result is `len(labels) * tile` wide and `label_height + len(rows) *
  tile` high.
  """
  strip = _panel_label_strip(labels, tile, label_height)
  grid = Image.new('RGB', (tile * len(labels),
                           label_height + tile * len(rows)), (255, 255, 255))
  grid.paste(strip, (0, 0))
  for r, row in enumerate(rows):
    for c, cell in enumerate(row):
      grid.paste(Image.fromarray(cell), (c * tile, label_height + r * tile))
  return grid


def _depth_16bit(depth: np.ndarray, min_depth: float,
                 max_depth: float) -> np.ndarray:
  """[S,S] depth -> [S,S] uint16, min_depth..max_depth as 0..65535 (clipped)."""
  p = np.clip((depth - min_depth) / (max_depth - min_depth), 0.0, 1.0)
  return np.round(p * 65535.0).astype(np.uint16)


def _summary_sheet(views: Dict[str, np.ndarray], tile: int) -> Image.Image:
  """One labelled row of the `_SUMMARY_PANELS` views, each [tile,tile,3].

  Args:
    views: `Demo.view_images` output; single-channel views ([tile,tile,1] or
      their first channel) are shown grey.
    tile: the panels' side in pixels (`DemoOptions.output_size`).
  """
  panels = [mesh_lib.to_uint8(np.broadcast_to(
      views[k] if views[k].shape[-1] == 3 else views[k][..., :1],
      (tile, tile, 3))) for k in _SUMMARY_PANELS]
  return label_grid([panels], list(_SUMMARY_PANELS), tile)


class Demo:
  """Runs one model on prepared images and writes the outputs.

  Args:
    model: an `Unsup3D`.
    options: `DemoOptions`.
  """

  def __init__(self, model, options: Optional[DemoOptions] = None):
    self.model = model
    self.cfg = model.cfg
    self.options = (options or DemoOptions()).validate()

  def decompose(self, image: np.ndarray) -> Dict[str, np.ndarray]:
    """`[S, S, 3]` in [0, 1] -> the model's outputs for it (first row)."""
    out = self.model.decompose(image[None].astype(np.float32))
    result = {}
    for key, value in out.items():
      if value is None or not hasattr(value, 'shape') or value.shape.rank == 0:
        continue
      result[key] = value[0].numpy()
    return result

  def view_images(self, prepared: inputs_lib.Prepared,
                  res: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """The viewing images, `[size, size, 3 or 1]` in [0, 1]."""
    cfg, size = self.cfg, self.options.output_size
    depth = _resize(res['canon_depth'][..., None], size)
    normal = _resize(res['canon_normal'], size)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + EPS
    views = {
        'input': inputs_lib.resize(prepared.crop, size),
        'albedo': _unit(_resize((res['canon_albedo'] + 1.0) / 2.0, size)),
        'canonical_image': _unit(_resize((res['canon_im'] + 1.0) / 2.0, size)),
        'depth': _unit((depth - cfg.min_depth) / (cfg.max_depth -
                                                  cfg.min_depth)),
        'normal': _unit((normal + 1.0) / 2.0),
        'shading': _unit(_resize(res['canon_diffuse_shading'], size)),
        'reconstruction': _unit(_resize((res['recon_im'] + 1.0) / 2.0, size)),
    }
    for key in CONFIDENCE_FILES:
      if key in res:
        views[key] = _unit(_resize(1.0 / (1.0 + res[key] + EPS), size))
    return views

  def render_animations(self, res: Dict[str, np.ndarray]
                        ) -> Dict[str, np.ndarray]:
    """uint8 turntable frames `[T, size, size, 3]`: textured and normal."""
    from tfunsup3d import render  # pylint: disable=g-import-not-at-top
    cfg, opts = self.cfg, self.options
    size = opts.output_size
    depth = _resize(res['canon_depth'][..., None], size)[None, ..., 0]
    canon_im = np.clip(_resize(res['canon_im'], size), -1.0, 1.0)[None]
    normal = _resize(res['canon_normal'], size)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True) + EPS
    K = render.intrinsics(size, cfg.fov)
    angles = animation.yaw_angles(opts.num_frames, opts.max_yaw)
    kwargs = dict(anti_aliasing=cfg.anti_aliasing)
    return {
        'textured': animation.render_turntable(
            canon_im, depth, K, cfg.rot_center_depth, angles, **kwargs),
        'normal': animation.render_turntable(
            normal[None], depth, K, cfg.rot_center_depth, angles, **kwargs),
    }

  def factors(self, res: Dict[str, np.ndarray]) -> Dict[str, Any]:
    cfg = self.cfg
    view = res['view']
    return {
        'light': {
            'ambient': float(res['canon_light_a'][0]),
            'diffuse': float(res['canon_light_b'][0]),
            'direction': [float(v) for v in res['canon_light_d']],
        },
        'view': {
            'rotation_degrees': {
                'pitch_x': float(np.degrees(view[0])),
                'yaw_y': float(np.degrees(view[1])),
                'roll_z': float(np.degrees(view[2]))},
            'translation': [float(v) for v in view[3:6]],
        },
        'depth_png': {
            'encoding': 'p = (d - min_depth) / (max_depth - min_depth); '
                        '8-bit: p * 255, 16-bit: p * 65535',
            'min_depth': cfg.min_depth, 'max_depth': cfg.max_depth},
        'mesh_axes': 'x right, y up, z towards the viewer; origin at '
                     f'(0, 0, rot_center_depth={cfg.rot_center_depth}) of '
                     'the camera space (x right, y down, z forward)',
        'image_size': cfg.image_size,
        'fov': cfg.fov,
    }

  def _save_animations(self, res: Dict[str, np.ndarray], path) -> None:
    """Writes the turntable GIFs (and MP4s when asked and possible).

    Args:
      res: one image's `decompose` result.
      path: `path(name)` records a file name and returns its full path.
    """
    opts = self.options
    for key, frames in self.render_animations(res).items():
      stem = ANIMATION_FILES[key]
      animation.write_gif(path(stem + '.gif'), frames, opts.fps)
      if opts.mp4 and animation.mp4_available():
        animation.write_mp4(path(stem + '.mp4'), frames, opts.fps)

  def _save_mesh(self, depth: np.ndarray, res: Dict[str, np.ndarray],
                 path) -> List[str]:
    """Writes the textured mesh as .obj (with .mtl and texture) and .glb.

    Args:
      depth: [S,S] float32 canonical depth.
      res: one image's `decompose` result (canon_normal, canon_albedo or
        canon_im for the texture).
      path: `path(name)` records a file name and returns its full path.

    Returns:
      The names written beside the .obj that `path` did not record.
    """
    from tfunsup3d import render  # pylint: disable=g-import-not-at-top
    cfg = self.cfg
    arrays = mesh_lib.mesh_arrays(
        depth, render.intrinsics(cfg.image_size, cfg.fov),
        cfg.rot_center_depth, res['canon_normal'])
    texture = (res['canon_albedo'] if self.options.texture == 'albedo' else
               np.clip(res['canon_im'], -1.0, 1.0))
    texture = _unit((texture + 1.0) / 2.0)
    mesh_lib.write_obj(path(MESH_FILES['obj']), arrays, texture)
    mesh_lib.write_glb(path(MESH_FILES['glb']), arrays, texture)
    return [MESH_FILES['mtl'], MESH_FILES['texture']]

  def save(self, prepared: inputs_lib.Prepared, res: Dict[str, np.ndarray],
           out_dir: str, source: Optional[str] = None) -> List[str]:
    """Writes every output file of one image; returns their names. When the
    disk refuses a write (`errors.is_disk_failure`), a folder this call made
    is removed before the error goes on: no half-written image is left."""
    made = not os.path.exists(out_dir)
    try:
      return self._save_files(prepared, res, out_dir, source)
    except Exception as e:  # pylint: disable=broad-except
      if made and errors.is_disk_failure(e):
        shutil.rmtree(out_dir, ignore_errors=True)
      raise

  def _save_files(self, prepared: inputs_lib.Prepared,
                  res: Dict[str, np.ndarray], out_dir: str,
                  source: Optional[str]) -> List[str]:
    os.makedirs(out_dir, exist_ok=True)
    opts, cfg = self.options, self.cfg
    written = []

    def path(name):
      written.append(name)
      return os.path.join(out_dir, name)

    views = self.view_images(prepared, res)
    for key in ('input', 'albedo', 'canonical_image', 'depth', 'normal',
                'shading', 'reconstruction'):
      _save_png(path(OUTPUT_FILES[key]), views[key])
    for key, name in CONFIDENCE_FILES.items():
      if key in views:
        _save_png(path(name), views[key])
    depth = res['canon_depth'].astype(np.float32)
    np.save(path(OUTPUT_FILES['depth_npy']), depth)
    Image.fromarray(_depth_16bit(depth, cfg.min_depth, cfg.max_depth)).save(
        path(OUTPUT_FILES['depth_16bit']))
    if opts.animations:
      self._save_animations(res, path)
    if opts.mesh:
      written += self._save_mesh(depth, res, path)
    _summary_sheet(views, opts.output_size).save(
        path(OUTPUT_FILES['summary']))

    info = self.factors(res)
    info.update({
        'source': os.path.abspath(source) if source else None,
        'source_size_hw': list(prepared.source_size),
        'crop_box_yxhw': list(prepared.box),
        'face_detection': prepared.detection,
        'files': sorted(written + [OUTPUT_FILES['factors']]),
    })
    with open(path(OUTPUT_FILES['factors']), 'w', encoding='utf-8') as f:
      json.dump(info, f, indent=1)
    return sorted(written)


def _read_and_prepare(item: inputs_lib.InputImage, counter: str,
                      image_size: int,
                      detector: Optional[inputs_lib.FaceDetector],
                      crop_mode: str, config_crop
                      ) -> Union[inputs_lib.Prepared, SkippedFile]:
  """`inputs.read_and_prepare`; a skip is logged with `counter` ('[3/10]').
  `detector`, `crop_mode`, `config_crop`: as in `run_demo`."""
  prepared = inputs_lib.read_and_prepare(item.path, image_size, detector,
                                         crop_mode, config_crop)
  if isinstance(prepared, SkippedFile):
    hint = (' (use --detect=off for pre-cropped images)'
            if prepared.reason == inputs_lib.NO_FACE else '')
    logging.warning('%s skipped %s%s', counter, prepared, hint)
  return prepared


def _write_summary(output_dir: str, total: int, processed: List[Dict[str, str]],
                   skipped: List[SkippedFile]) -> Dict[str, Any]:
  """Writes `<output_dir>/summary.json` and returns its content.

  Args:
    output_dir: the demo's output folder.
    total: number of inputs.
    processed: {'source', 'output'} per processed image.
    skipped: the inputs skipped.
  """
  summary = {
      'num_inputs': total,
      'num_processed': len(processed),
      'num_skipped': len(skipped),
      'processed': processed,
      'skipped': [s._asdict() for s in skipped],
  }
  with open(os.path.join(output_dir, SUMMARY_FILE), 'w', encoding='utf-8') as f:
    json.dump(summary, f, indent=1)
  return summary


def _save_or_report(demo: Demo, prepared, res, out_dir: str, source: str,
                    done: int, write_summary: Callable[[], Any]) -> None:
  """`demo.save` (which removes a half-written folder); when the disk refuses
  a write, the summary of the `done` images before it is written if it can
  be, and one line says so.

  Raises:
    UserError: the disk is full or not writable.
  """
  try:
    demo.save(prepared, res, out_dir, source)
  except Exception as e:  # pylint: disable=broad-except
    if not errors.is_disk_failure(e):
      raise
    try:
      write_summary()
      kept = f'{done} image(s) before it complete (summary.json lists them)'
    except OSError:
      kept = f'{done} image(s) before it complete; no summary.json'
    raise UserError(f'Cannot write {out_dir}: '
                    f'{errors.write_failure(e, "--output_dir")}; {kept}.'
                    ) from e


def run_demo(model, images: Sequence[inputs_lib.InputImage], output_dir: str,
             options: Optional[DemoOptions] = None,
             detector: Optional[inputs_lib.FaceDetector] = None,
             crop_mode: str = 'square', config_crop=None) -> Dict[str, Any]:
  """Runs the demo on every image; unusable ones are skipped and counted.

  Args:
    model: an `Unsup3D`.
    images: from `inputs.list_inputs`.
    output_dir: one sub-folder per image is written here, plus
      `summary.json`.
    options: `DemoOptions`.
    detector: a `FaceDetector` (crop around the largest face; images without
      a face are skipped), or None.
    crop_mode: without detector: 'square' or 'config' (see `inputs.prepare`).
    config_crop: the config's `crop` (crop_mode 'config').

  Returns:
    dict with `processed` (names), `skipped` (path, reason, detail) and
    counts; also written to `<output_dir>/summary.json`.

  Raises:
    UserError: not a single image could be processed.
  """
  demo = Demo(model, options)
  os.makedirs(output_dir, exist_ok=True)
  processed, skipped = [], []
  total = len(images)
  start = time.time()
  for k, item in enumerate(progress.track(images, 'demo'), 1):
    t0 = time.time()
    prepared = _read_and_prepare(item, f'[{k}/{total}]', model.cfg.image_size,
                                 detector, crop_mode, config_crop)
    if isinstance(prepared, SkippedFile):
      skipped.append(prepared)
      continue
    res = demo.decompose(prepared.image)
    out_dir = os.path.join(output_dir, item.name)
    _save_or_report(demo, prepared, res, out_dir, item.path, len(processed),
                    lambda: _write_summary(output_dir, total, processed,
                                           skipped))
    processed.append({'source': item.path, 'output': out_dir})
    elapsed = time.time() - start
    logging.info('[%d/%d] %s -> %s (%.1fs; eta %.0fs)', k, total,
                 image_files.printable(item.path), out_dir, time.time() - t0,
                 elapsed / k * (total - k))
  summary = _write_summary(output_dir, total, processed, skipped)
  if not processed:
    reasons = '; '.join(str(s) for s in skipped[:3])
    more = f' (+{len(skipped) - 3} more)' if len(skipped) > 3 else ''
    raise UserError(f'No image could be processed: {len(skipped)} skipped: '
                    f'{reasons}{more}')
  return summary
