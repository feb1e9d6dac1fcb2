"""Listing and up-front validation of image files (no TensorFlow here).

A split directory is scanned once per pipeline build, in Python: files are
listed in the reference's order (`sorted(os.walk(dir))`, then sorted file
names), every file is opened with PIL (`verify()`, then a real `load()` so
truncated files are caught) in a thread pool, and files that cannot be used
are skipped and reported in a `SkippedFiles` summary instead of failing in
the middle of training. Probe results are cached per (path, size, mtime), so
building the same pipeline again (or calling `count`) only re-stats files.

Layouts (docs/method.md §5, reference `dataloaders.py`):
  image collection: SPLIT_DIR/**/*.{jpg,jpeg,png,ppm,bmp,pgm,tif,tiff,webp}
    (extensions case-insensitive, recursive);
  ground-truth pairs: SPLIT_DIR/<dir_a>/**/X and SPLIT_DIR/<dir_b>/**/Y where
    <dir_a>, <dir_b> = paired_data_dir_names (default image, depth) and Y is X
    with paired_data_filename_diff[0] replaced by [1] (default
    '0001_image.png' -> '0001_depth.png').

Differences from the reference, on purpose: an EXIF orientation tag (phone
photos) is applied, so that training, testing and the demo all see a photo
upright, as image viewers show it (the reference reads the stored pixels;
its data sets carry no such tag); a crop that does not fit inside
an image (the reference zero-pads it) skips that image with a counted
warning; unreadable files and missing pairs are skipped and counted rather
than crashing a worker (the reference silently drops images without a pair).

Data that cannot be right is skipped and counted too, never silently resized
(rules of `size_problem`, given the crop window (y0, x0, h, w) an image or
depth map yields and `image_size` S):
  * far smaller than S: min(h, w) < S / 2 (it would be upsampled more than
    2x);
  * not square: max(h, w) > 1.25 min(h, w) (resizing to S x S would squash
    it; use `crop`);
  * a depth map whose size (width x height) differs from its image's, or
    whose EXIF orientation tag does (each file is turned by its own tag, so
    a square pair would no longer line up); both are skipped;
  * a path that is not valid UTF-8 (TensorFlow paths are UTF-8 strings).
"""

import concurrent.futures
import dataclasses
import os
import stat
import threading
import warnings
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from PIL import ImageOps

# The reference's IMG_EXTENSIONS ('webp' there lacks its dot; fixed here).
IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif',
                  '.tiff', '.webp')
# PIL formats/modes that tf.io.decode_image decodes exactly like PIL's
# convert('RGB') (checked in tests); everything else (BMP, WebP, TIFF,
# PPM/PGM, CMYK JPEG, ...) goes through the PIL fallback decoder.
_NATIVE_FORMATS = {'PNG': None, 'GIF': None, 'JPEG': ('L', 'RGB')}
# Kinds of skip, as stored in `SkippedFile.reason`.
UNREADABLE = 'unreadable'
TOO_SMALL = 'smaller than crop'
MISSING_DEPTH = 'missing depth pair'
DEPTH_WITHOUT_IMAGE = 'depth without image'
FAR_SMALLER = 'far smaller than image_size'
NOT_SQUARE = 'not square'
DEPTH_SIZE = 'depth size differs from image'
ORIENTATION = 'EXIF orientation differs from image'
BAD_NAME = 'path not UTF-8'
# See the module docstring: the least side, in units of image_size, and the
# largest aspect ratio of a crop window.
MIN_SIDE_FRACTION = 0.5
MAX_ASPECT = 1.25

Box = Tuple[int, int, int, int]  # (y0, x0, h, w) in pixels.
Crop = Union[None, int, Tuple[int, int, int, int]]


class SkippedFile(NamedTuple):
  """A file left out, with why: the training splits' kinds above, or the
  demo's (`tfunsup3d.demo.inputs`)."""
  path: str
  reason: str
  detail: str = ''

  def __str__(self):  # One line, whatever the file name holds.
    return f'{printable(self.path)}: {self.reason}' + (
        f' ({self.detail})' if self.detail else '')


@dataclasses.dataclass
class SkippedFiles:
  """Files left out of a split, with why."""
  entries: List[SkippedFile] = dataclasses.field(default_factory=list)

  @property
  def count(self) -> int:
    return len(self.entries)

  @property
  def names(self) -> List[str]:
    return [e.path for e in self.entries]

  @property
  def reasons(self) -> Dict[str, str]:
    """path -> reason kind."""
    return {e.path: e.reason for e in self.entries}

  def by_reason(self) -> Dict[str, int]:
    counts = {}
    for e in self.entries:
      counts[e.reason] = counts.get(e.reason, 0) + 1
    return counts

  def __len__(self) -> int:
    return len(self.entries)

  def summary(self, max_names: Optional[int] = 10) -> str:
    kinds = ', '.join(f'{n} {k}' for k, n in sorted(self.by_reason().items()))
    shown = self.entries if max_names is None else self.entries[:max_names]
    lines = [f'{self.count} file(s) skipped ({kinds})']
    lines += [f'  {printable(e.path)}: {e.reason}' +
              (f' ({printable(e.detail)})' if e.detail else '')
              for e in shown]
    if len(shown) < self.count:
      lines.append(f'  ... and {self.count - len(shown)} more')
    return '\n'.join(lines)


@dataclasses.dataclass(frozen=True)
class ImageRecord:
  """One usable sample. Boxes are the crop windows (y0, x0, h, w)."""
  image_path: str
  name: str  # path relative to the split's image dir, without extension.
  image_box: Box
  image_pil: bool  # decode with the PIL fallback instead of tf.io.
  depth_path: Optional[str] = None
  depth_box: Optional[Box] = None
  depth_pil: bool = False


class _Probe(NamedTuple):
  width: int = 0
  height: int = 0
  native: bool = True
  error: Optional[str] = None
  orientation: int = 1  # EXIF tag: 1 stored upright (`orientation`)


_PROBE_CACHE: Dict[Tuple[str, int, int], _Probe] = {}
_PROBE_LOCK = threading.Lock()


def printable(path: str) -> str:
  """`path` as UTF-8 text on one line: undecodable bytes as \\xNN, line
  breaks as \\n."""
  text = os.fsencode(path).decode('utf-8', 'backslashreplace')
  return text.replace('\n', '\\n').replace('\r', '\\r')


def _utf8(path: str) -> bool:
  try:
    path.encode('utf-8')
  except UnicodeEncodeError:
    return False
  return True


def size_problem(width: int, height: int, box: Box,
                 image_size: Optional[int]) -> Optional[Tuple[str, str]]:
  """(reason, detail) if crop window `box` of a width x height image cannot
  make a faithful image_size x image_size input (module docstring), else
  None."""
  if not image_size:
    return None
  h, w = box[2], box[3]
  window = f'{w}x{h}' + ('' if (h, w) == (height, width) else
                         f' window of {width}x{height}')
  if min(h, w) < MIN_SIDE_FRACTION * image_size:
    return FAR_SMALLER, (f'{window} < {MIN_SIDE_FRACTION:g} x image_size '
                         f'{image_size}')
  if max(h, w) > MAX_ASPECT * min(h, w):
    return NOT_SQUARE, (f'{window}: aspect ratio over {MAX_ASPECT:g}; set '
                        'crop')
  return None


def is_image_file(filename: str) -> bool:
  return filename.lower().endswith(IMG_EXTENSIONS)


SPLITS = ('train', 'val', 'test')


def split_dir(cfg, split: str) -> str:
  """The directory of `split` ('train', 'val' or 'test') for config `cfg`:
  `test_data_dir` for the test split when set, else
  `train_val_data_dir/<split>`."""
  if split not in SPLITS:
    raise ValueError(f'split must be one of {SPLITS}. Received: {split!r}')
  if split == 'test' and cfg.test_data_dir:
    return cfg.test_data_dir
  return os.path.join(cfg.train_val_data_dir, split)


def expected_layout(cfg, root: str) -> str:
  """The file layout `cfg` reads under a split directory `root`, in words."""
  if cfg.load_gt_depth:
    a, b = (list(cfg.paired_data_dir_names or []) + ['A', 'B'])[:2]
    return (f'{root}/{a}/**/<name>.png paired with {root}/{b}/**/<name with '
            f'{cfg.paired_data_filename_diff!r} replaced>.png')
  exts = ','.join(e.lstrip('.') for e in IMG_EXTENSIONS)
  return f'{root}/**/*.{{{exts}}}'


def check_split_dir(cfg, split: str) -> str:
  """`split_dir(cfg, split)`, which must be a directory.

  Raises:
    FileNotFoundError: it is not, naming it and the layout expected.
  """
  root = split_dir(cfg, split)
  if not os.path.isdir(root):
    raise FileNotFoundError(f'{split} data directory does not exist: {root}. '
                            f'Expected layout: {expected_layout(cfg, root)}')
  return root


def normalize_crop(crop) -> Crop:
  """Checks a config `crop`: None, int c (centre c x c) or [y0, x0, h, w]."""
  if crop is None:
    return None
  if isinstance(crop, bool):
    raise ValueError(
        f'crop must be an int or [y0, x0, h, w]. Received: {crop!r}')
  if isinstance(crop, int):
    if crop <= 0:
      raise ValueError(f'crop size must be positive. Received: {crop}')
    return crop
  if (isinstance(crop, (list, tuple)) and len(crop) == 4 and
      all(isinstance(v, int) and not isinstance(v, bool) for v in crop)):
    y0, x0, h, w = crop
    if y0 < 0 or x0 < 0 or h <= 0 or w <= 0:
      raise ValueError(f'crop [y0, x0, h, w] needs y0, x0 >= 0 and h, w > 0. '
                       f'Received: {list(crop)}')
    return tuple(crop)
  raise ValueError('crop must be an integer for a centre crop, or a list of 4 '
                   f'integers [y0, x0, h, w]. Received: {crop!r}')


def crop_box(width: int, height: int, crop: Crop) -> Optional[Box]:
  """Crop window (y0, x0, h, w) for an image, or None if it does not fit.

  Centre crops round like torchvision's CenterCrop: int(round((H - c) / 2)).
  """
  if crop is None:
    return (0, 0, height, width)
  if isinstance(crop, int):
    if crop > height or crop > width:
      return None
    return (int(round((height - crop) / 2.0)), int(round((width - crop) / 2.0)),
            crop, crop)
  y0, x0, h, w = crop
  if y0 + h > height or x0 + w > width:
    return None
  return (y0, x0, h, w)


def _probe_uncached(path: str) -> _Probe:
  try:
    with warnings.catch_warnings():
      warnings.simplefilter('ignore')  # e.g. DecompressionBombWarning.
      with Image.open(path) as im:
        im.verify()
      with Image.open(path) as im:  # verify() leaves the image unusable.
        fmt, mode, (width, height) = im.format, im.mode, im.size
        im.load()  # raises OSError for truncated data.
        turn = orientation(im)
        finite = im.mode != 'F' or bool(np.isfinite(np.asarray(im)).all())
  except Exception as e:  # pylint: disable=broad-except
    return _Probe(error=f'{type(e).__name__}: {e}')
  if not finite:
    return _Probe(error=NON_FINITE)
  if width <= 0 or height <= 0:
    return _Probe(error=f'empty image ({width}x{height})')
  if turn in _SWAPS_SIDES:
    width, height = height, width
  modes = _NATIVE_FORMATS.get(fmt, ())
  # TensorFlow's decoders ignore EXIF: a tagged file goes through PIL.
  native = (fmt in _NATIVE_FORMATS and (modes is None or mode in modes)
            and turn == 1)
  return _Probe(width, height, native, orientation=turn)


NON_FINITE = 'pixel values that are not finite (NaN or Inf)'
_EXIF_ORIENTATION = 0x0112
_SWAPS_SIDES = (5, 6, 7, 8)  # the transposing orientations


def orientation(im: Image.Image) -> int:
  """The EXIF orientation tag of an open image (1: stored upright; 1 when
  absent or invalid)."""
  try:
    value = int(im.getexif().get(_EXIF_ORIENTATION, 1))
  except Exception:  # pylint: disable=broad-except
    return 1  # a damaged EXIF block: the pixels as stored
  return value if 1 <= value <= 8 else 1


def upright(im: Image.Image) -> Image.Image:
  """`im` turned as its EXIF orientation says (itself when upright)."""
  return ImageOps.exif_transpose(im) if orientation(im) != 1 else im


def rgb01(im: Image.Image) -> np.ndarray:
  """A PIL image as float32 `[H, W, 3]` in [0, 1]: 16-bit and float
  grey scaled (not clipped at 255 as PIL's convert('RGB') would) and
  repeated, every other mode through convert('RGB') (alpha dropped).

  Raises:
    ValueError: a float image with NaN or infinite pixels (`NON_FINITE`).
  """
  if im.mode in ('I;16', 'I;16B', 'I;16L', 'I;16N', 'I', 'F'):
    scale = 1.0 if im.mode == 'F' else 1.0 / 65535.0
    gray = np.asarray(im, np.float32) * scale
    if not np.isfinite(gray).all():
      raise ValueError(NON_FINITE)
    gray = np.clip(gray, 0.0, 1.0)
    return np.repeat(gray[..., None], 3, axis=-1)
  return np.asarray(im.convert('RGB'), np.float32) / 255.0


def probe(path: str) -> _Probe:
  """Validates one file with PIL (cached by path, size and mtime)."""
  try:
    st = os.stat(path)
  except OSError as e:
    return _Probe(error=f'{type(e).__name__}: {e}')
  if not stat.S_ISREG(st.st_mode):  # Opening a FIFO would wait forever.
    return _Probe(error='not a regular file (a FIFO, socket or device)')
  key = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
  with _PROBE_LOCK:
    hit = _PROBE_CACHE.get(key)
  if hit is None:
    hit = _probe_uncached(path)
    with _PROBE_LOCK:
      _PROBE_CACHE[key] = hit
  return hit


def probe_all(paths: Sequence[str], num_workers: int = 4) -> List[_Probe]:
  """Probes files in a thread pool (PIL decoders release the GIL)."""
  if not paths:
    return []
  workers = max(1, min(int(num_workers or 1), 32, len(paths)))
  if workers == 1:
    return [probe(p) for p in paths]
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    return list(pool.map(probe, paths, chunksize=64))


def walk_images(root: str) -> List[str]:
  """Image files under `root`, in the reference's order."""
  found = []
  for dirpath, _, fnames in sorted(os.walk(root)):
    for fname in sorted(fnames):
      if is_image_file(fname):
        found.append(os.path.join(dirpath, fname))
  return found


def _name(path: str, root: str) -> str:
  return os.path.splitext(os.path.relpath(path, root))[0].replace(os.sep, '/')


def _window(path: str, pr: _Probe, crop: Crop, image_size: Optional[int]
            ) -> Tuple[Optional[Box], Optional[SkippedFile]]:
  """The crop window of a probed file, or why the file is skipped."""
  if not _utf8(path):
    return None, SkippedFile(path, BAD_NAME, 'rename it')
  if pr.error is not None:
    return None, SkippedFile(path, UNREADABLE, pr.error)
  box = crop_box(pr.width, pr.height, crop)
  if box is None:
    return None, SkippedFile(path, TOO_SMALL,
                             f'{pr.width}x{pr.height} vs crop {crop}')
  problem = size_problem(pr.width, pr.height, box, image_size)
  if problem:
    return None, SkippedFile(path, *problem)
  return box, None


def scan_collection(root: str, crop: Crop, num_workers: int = 4,
                    image_size: Optional[int] = None
                    ) -> Tuple[List[ImageRecord], SkippedFiles]:
  """Validated records of an image collection under `root`; with
  `image_size`, images that cannot make a faithful input are skipped (see
  `size_problem`)."""
  paths = walk_images(root)
  records, skipped = [], SkippedFiles()
  for path, pr in zip(paths, probe_all(paths, num_workers)):
    box, skip = _window(path, pr, crop, image_size)
    if skip:
      skipped.entries.append(skip)
    else:
      records.append(ImageRecord(path, _name(path, root), box, not pr.native))
  return records, skipped


def paired_path(image_path: str, dir_a: str, dir_b: str,
                filename_diff: Optional[Sequence[str]]) -> str:
  """The reference's pairing: swap dir_a for dir_b, replace in the name."""
  root_a, fname_a = os.path.split(image_path)
  root_b = root_a.replace(dir_a, dir_b, 1)
  fname_b = fname_a.replace(*filename_diff) if filename_diff else fname_a
  return os.path.join(root_b, fname_b)


def scan_pairs(root: str, crop: Crop, dir_names: Sequence[str],
               filename_diff: Optional[Sequence[str]], num_workers: int = 4,
               image_size: Optional[int] = None
               ) -> Tuple[List[ImageRecord], SkippedFiles]:
  """Validated (image, depth) records under root/<dir_a>, root/<dir_b>; a
  pair whose depth map's size differs from its image's is skipped, and with
  `image_size` so are images that cannot make a faithful input (see
  `size_problem`)."""
  if not dir_names or len(dir_names) != 2:
    raise ValueError('paired_data_dir_names must name 2 directories. '
                     f'Received: {dir_names!r}')
  if filename_diff and len(filename_diff) != 2:
    raise ValueError('paired_data_filename_diff must be [old, new]. '
                     f'Received: {filename_diff!r}')
  dir_a, dir_b = (os.path.join(root, d) for d in dir_names)
  for d in (dir_a, dir_b):
    if not os.path.isdir(d):
      raise FileNotFoundError(
          f'Paired data directory does not exist: {d}. Expected layout: '
          f'{root}/{dir_names[0]}/*.png with matching {root}/{dir_names[1]}/'
          f'*.png (names differ by {filename_diff!r}).')
  images, depths = walk_images(dir_a), walk_images(dir_b)
  skipped = SkippedFiles()
  pairs = []
  for path in images:
    depth = paired_path(path, dir_a, dir_b, filename_diff)
    if os.path.isfile(depth):
      pairs.append((path, depth))
    else:
      skipped.entries.append(SkippedFile(path, MISSING_DEPTH, depth))
  expected = {os.path.normpath(d) for _, d in pairs}
  for depth in depths:
    if os.path.normpath(depth) not in expected:
      skipped.entries.append(SkippedFile(depth, DEPTH_WITHOUT_IMAGE))
  flat = [p for pair in pairs for p in pair]
  probes = dict(zip(flat, probe_all(flat, num_workers)))
  records = []
  for path, depth in pairs:
    windows = [_window(p, probes[p], crop, image_size) for p in (path, depth)]
    skips = [skip for _, skip in windows if skip]
    image, dmap = probes[path], probes[depth]
    if not skips and (image.width, image.height) != (dmap.width, dmap.height):
      skips = [SkippedFile(depth, DEPTH_SIZE, f'{dmap.width}x{dmap.height}, '
                           f'image {image.width}x{image.height}')]
    if not skips and image.orientation != dmap.orientation:
      # Each file is turned upright by its own tag: with different tags the
      # two would no longer line up (a square pair passes the size check).
      skips = [SkippedFile(depth, ORIENTATION,
                           f'EXIF orientation {dmap.orientation}, image '
                           f'{image.orientation}; save both upright')]
    if skips:  # One entry per pair: the image's problem, else the depth's.
      skipped.entries.append(skips[0])
    else:
      records.append(ImageRecord(
          path, _name(path, dir_a), windows[0][0], not image.native,
          depth, windows[1][0], not dmap.native))
  return records, skipped
