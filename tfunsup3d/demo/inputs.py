"""Demo inputs: listing, reading, face detection, cropping and resizing.

`list_inputs('a.jpg,photos/')` expands files and folders (recursive, sorted)
into `InputImage`s with unique output names. `read_image(path)` reads any
size or aspect with PIL (EXIF orientation applied, alpha dropped, 16-bit
scaled) to float32 `[H, W, 3]` in [0, 1]. `prepare(image, ...)` crops (a
detected face, the largest centred square, or the config's crop) and resizes
to the network size (bilinear with antialiasing, as `tfunsup3d.data`).
`read_and_prepare(path, ...)` does both and returns, for an input it cannot
use, a `SkippedFile` naming why (the demo and the crop tool count them).

Face detection uses the `mtcnn` package (its weights ship in the wheel; it
runs offline) and the reference demo's crop: a square of 1.1 x the mean of
the face box's sides, centred on the box and moved down by 15% of its half
side, edge-padded where it leaves the image.
"""

import dataclasses
import math
import os
import re
import unicodedata
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from tfunsup3d.data import image_files
from tfunsup3d.errors import UserError

# The training data's extensions (the reference's list) and GIF.
IMAGE_EXTENSIONS = image_files.IMG_EXTENSIONS + ('.gif',)
FACE_MODEL_WORDS = ('face', 'celeba', 'human')
NO_FACE = 'no face found'
UNREADABLE = 'not a readable image'
TOO_SMALL = 'smaller than the crop'
# The data pipeline's rule (`image_files.size_problem`): upsampled over 2x.
CROP_TOO_SMALL = 'crop under half of image_size'
DETECTION_FAILED = 'face detection failed'


@dataclasses.dataclass(frozen=True)
class InputImage:
  path: str
  name: str  # output name: unique, file-system safe.


def _safe_name(text: str) -> str:
  """A folder or file name from `text`: letters and digits of any script
  (NFC), '.', '-' and '_' kept, any other run of characters one '_', no
  leading '.', '-' or '_' (hidden, or read as an option), at most 120 bytes
  of UTF-8 (file systems allow 255)."""
  text = unicodedata.normalize('NFC', text)
  name = re.sub(r'[^\w.-]+', '_', text).lstrip('._-').rstrip('._')
  name = name.encode('utf-8')[:120].decode('utf-8', 'ignore')
  return name or 'image'


def image_paths(root: str) -> List[str]:
  """Regular files with an image extension under `root`, recursively: each
  folder's files sorted, then its subfolders sorted (hidden ones skipped;
  FIFOs, sockets and devices too: reading one would wait forever)."""
  found = []
  for dirpath, dirnames, filenames in os.walk(root):
    dirnames[:] = sorted(d for d in dirnames if not d.startswith('.'))
    for filename in sorted(filenames):
      path = os.path.join(dirpath, filename)
      if filename.lower().endswith(IMAGE_EXTENSIONS) and (
          os.path.isfile(path) or not os.path.exists(path)):  # Broken links
        found.append(path)  # are read and reported as unreadable.
  return found


def list_inputs(spec: str) -> List[InputImage]:
  """Expands `--input` into images to process.

  Args:
    spec: a file, a folder, or a comma-separated list of them (a path
      that exists as given is taken whole, commas and all). Folders are
      searched recursively for files with an image extension (`.jpg`,
      `.png`, ...); other files in them are ignored.

  Returns:
    `InputImage`s in order (folders sorted), with unique output names (the
    path relative to its folder, '/' replaced by '_'; a numeric suffix on
    clashes, compared ignoring case).

  Raises:
    UserError: no input given, a path that does not exist, or no image file
      in a folder (or in the whole input).
  """
  parts = [p.strip() for p in (spec or '').split(',') if p.strip()]
  if len(parts) > 1 and os.path.exists(spec):  # A name with a comma in it.
    parts = [spec]
  if not parts:
    raise UserError('No input: pass --input=IMAGE, --input=FOLDER or '
                    '--input=A.jpg,B.png')
  entries: List[Tuple[str, str]] = []
  for part in parts:
    if os.path.isdir(part):
      found = image_paths(part)
      if not found:
        raise UserError(
            f'No image files in folder {part} (looked for '
            f'{", ".join(e.lstrip(".") for e in IMAGE_EXTENSIONS)}).')
      entries += [(p, os.path.splitext(os.path.relpath(p, part))[0])
                  for p in found]
    elif os.path.isfile(part):
      entries.append((part, os.path.splitext(os.path.basename(part))[0]))
    elif os.path.exists(part):
      raise UserError(f'Input is neither a file nor a folder (a FIFO, '
                      f'socket or device?): {part}')
    else:
      raise UserError(f'Input not found: {part}' + (
          f' (--input is split at commas: {spec!r})' if len(parts) > 1
          else ''))
  images, used = [], set()
  for path, name in entries:
    base = _safe_name(name.replace(os.sep, '_'))
    unique, k = base, 2
    while unique.casefold() in used:  # Case-insensitive file systems.
      unique, k = f'{base}_{k}', k + 1
    used.add(unique.casefold())
    images.append(InputImage(path, unique))
  return images


def is_readable(path: str) -> bool:
  """Whether PIL can identify and verify the file (cheap: no decode)."""
  try:
    with Image.open(path) as im:
      im.verify()
    return True
  except Exception:  # pylint: disable=broad-except
    return False


def check_some_readable(images: Sequence[InputImage], limit: int = 32):
  """Fails early (before loading a model) when few inputs are given and
  none of them is an image; larger sets are checked while processing.

  Raises:
    UserError: with the first unreadable files.
  """
  if not images or len(images) > limit:
    return
  bad = [item.path for item in images if not is_readable(item.path)]
  if len(bad) == len(images):
    names = ', '.join(bad[:3]) + (f' (+{len(bad) - 3} more)'
                                  if len(bad) > 3 else '')
    raise UserError(f'Not an image file PIL can read: {names}')


def read_image(path: str) -> np.ndarray:
  """Reads an image file to float32 `[H, W, 3]` in [0, 1].

  EXIF orientation is applied; alpha is dropped and grayscale repeated
  (PIL's convert('RGB')); 16-bit and float images are scaled, not clipped.

  Raises:
    ValueError: the file is not an image PIL can read.
  """
  try:
    with Image.open(path) as im:
      im.load()
      array = image_files.rgb01(image_files.upright(im))
  except Exception as e:  # pylint: disable=broad-except
    raise ValueError(f'{type(e).__name__}: {e}') from None
  if array.ndim != 3 or array.shape[0] < 1 or array.shape[1] < 1:
    raise ValueError(f'empty image {array.shape}')
  return array


def square_box(height: int, width: int) -> Tuple[int, int, int, int]:
  """(y0, x0, h, w) of the largest centred square."""
  side = min(height, width)
  return ((height - side) // 2, (width - side) // 2, side, side)


def face_box(image: np.ndarray, detection: Dict[str, Any]
             ) -> Tuple[int, int, int, int]:
  """The reference demo's square crop around a face box.

  Args:
    image: `[H, W, 3]`.
    detection: an mtcnn detection with `box` = [x, y, width, height].

  Returns:
    (y0, x0, h, w) in image pixels; may reach outside the image (edge
    padding fills it, see `crop`).
  """
  x, y, w, h = [float(v) for v in detection['box']]
  x0, y0, x1, y1 = x, y, x + w, y + h
  hc, wc = (y0 + y1) / 2.0, (x0 + x1) / 2.0
  half = max(int(((y1 - y0) + (x1 - x0)) / 2.0 / 2.0 * 1.1), 1)
  # The reference pads by `half` and takes int() of padded (positive)
  # coordinates: floor, then shift back.
  top = math.floor(hc + half * 0.15) - half
  left = math.floor(wc) - half
  del image
  return (top, left, 2 * half, 2 * half)


def crop(image: np.ndarray, box: Sequence[int]) -> np.ndarray:
  """Crops (y0, x0, h, w); parts outside the image repeat its edge pixels."""
  y0, x0, h, w = [int(v) for v in box]
  height, width = image.shape[:2]
  pad_top, pad_left = max(0, -y0), max(0, -x0)
  pad_bottom, pad_right = max(0, y0 + h - height), max(0, x0 + w - width)
  if pad_top or pad_left or pad_bottom or pad_right:
    image = np.pad(image, ((pad_top, pad_bottom), (pad_left, pad_right),
                           (0, 0)), mode='edge')
    y0, x0 = y0 + pad_top, x0 + pad_left
  return image[y0:y0 + h, x0:x0 + w]


def resize(image: np.ndarray, size: int) -> np.ndarray:
  """`[h, w, C]` -> `[size, size, C]`, bilinear with antialiasing, clipped
  to [0, 1] (the data pipeline's resize)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if image.shape[0] == size and image.shape[1] == size:
    return image.astype(np.float32)
  out = tf.image.resize(image.astype(np.float32), [size, size],
                        method='bilinear', antialias=True)
  return np.clip(out.numpy(), 0.0, 1.0)


class FaceDetector:
  """mtcnn's MTCNN, loaded once; picks the largest face."""

  def __init__(self, min_confidence: float = 0.9):
    try:
      from mtcnn import MTCNN  # pylint: disable=g-import-not-at-top
    except ImportError as e:
      raise UserError('--detect=on needs the mtcnn package (pip install '
                      '"tfunsup3d[demo]" or mtcnn); use --detect=off for '
                      f'pre-cropped images ({e}).') from None
    self._detector = MTCNN()
    self.min_confidence = min_confidence

  def detect(self, image: np.ndarray) -> Optional[Dict[str, Any]]:
    """The largest face (mtcnn detection dict) in float `[H, W, 3]`, or None."""
    pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
    faces = [f for f in self._detector.detect_faces(pixels)
             if float(f.get('confidence', 0.0)) >= self.min_confidence]
    if not faces:
      return None
    return max(faces, key=lambda f: float(f['box'][2]) * float(f['box'][3]))


def mtcnn_available() -> bool:
  import importlib.util  # pylint: disable=g-import-not-at-top
  return importlib.util.find_spec('mtcnn') is not None


def is_face_model(*texts: Optional[str]) -> bool:
  """Whether a model name / checkpoint path names a human-face model."""
  joined = ' '.join(t for t in texts if t).lower()
  return any(word in joined for word in FACE_MODEL_WORDS)


def resolve_detect(mode: str, model_name: str = '',
                   checkpoint: str = '') -> bool:
  """--detect auto|on|off -> whether to detect faces.

  auto: only when mtcnn is installed and the model is a human-face model
  (`is_face_model` of its model_name and checkpoint path).
  """
  if mode == 'on':
    return True
  if mode == 'off':
    return False
  if mode != 'auto':
    raise ValueError(f'detect must be auto, on or off. Received: {mode!r}')
  return mtcnn_available() and is_face_model(model_name, checkpoint)


@dataclasses.dataclass
class Prepared:
  """A network input and where it came from."""
  image: np.ndarray  # [S, S, 3] in [0, 1]: the network input.
  crop: np.ndarray  # [h, w, 3] in [0, 1]: the crop at source resolution.
  box: Tuple[int, int, int, int]  # (y0, x0, h, w) in source pixels.
  source_size: Tuple[int, int]  # (H, W).
  detection: Optional[Dict[str, Any]] = None


def prepare(image: np.ndarray, image_size: int,
            detector: Optional[FaceDetector] = None, crop_mode: str = 'square',
            config_crop=None) -> Prepared:
  """Crops and resizes one image for the network.

  Args:
    image: float32 `[H, W, 3]` in [0, 1].
    image_size: S.
    detector: a `FaceDetector` to crop around the largest face, or None.
    crop_mode: without a detector, 'square' (largest centred square) or
      'config' (`config_crop`, as the data pipeline: None = whole image).
    config_crop: the config's `crop`.

  Returns:
    `Prepared`.

  Raises:
    LookupError: no face found (with a detector).
    ValueError: the image is smaller than the config crop.
  """
  height, width = image.shape[:2]
  detection = None
  if detector is not None:
    detection = detector.detect(image)
    if detection is None:
      raise LookupError(NO_FACE)
    box = face_box(image, detection)
  elif crop_mode == 'square':
    box = square_box(height, width)
  elif crop_mode == 'config':
    normalized = image_files.normalize_crop(config_crop)
    box = image_files.crop_box(width, height, normalized)
    if box is None:
      raise ValueError(f'{TOO_SMALL}: {width}x{height} vs crop {normalized}')
  else:
    raise ValueError(f'crop_mode must be square or config. Received: '
                     f'{crop_mode!r}')
  cropped = crop(image, box)
  if detection is not None:
    detection = {'box': [int(v) for v in detection['box']],
                 'confidence': float(detection.get('confidence', 0.0))}
  return Prepared(resize(cropped, image_size), cropped,
                  tuple(int(v) for v in box), (height, width), detection)


class _SkipDetectorErrors:
  """A detector whose errors on an odd photo skip that photo (mtcnn is
  third-party code run on arbitrary files)."""

  def __init__(self, detector):
    self._detector = detector

  def detect(self, image: np.ndarray):
    try:
      return self._detector.detect(image)
    except Exception as e:  # pylint: disable=broad-except
      raise LookupError(DETECTION_FAILED, type(e).__name__) from None


def read_and_prepare(path: str, image_size: int,
                     detector: Optional[FaceDetector] = None,
                     crop_mode: str = 'square', config_crop=None
                     ) -> Union[Prepared, image_files.SkippedFile]:
  """`read_image` then `prepare`, for the demo and the crop tool alike.

  Returns:
    The `Prepared` image, or a `SkippedFile` naming why it cannot be used:
    UNREADABLE, NO_FACE, DETECTION_FAILED (the detector raised), TOO_SMALL
    (smaller than the config crop) or CROP_TOO_SMALL (a crop under half of
    `image_size` would be upsampled more than twice: a blur the model
    reads as a smooth object, as the data pipeline refuses to train on).
  """
  try:
    image = read_image(path)
  except Exception as e:  # pylint: disable=broad-except
    detail = str(e) if isinstance(e, ValueError) else type(e).__name__
    return image_files.SkippedFile(path, UNREADABLE, detail)
  checked = None if detector is None else _SkipDetectorErrors(detector)
  try:
    prepared = prepare(image, image_size, checked, crop_mode, config_crop)
  except LookupError as e:  # (reason[, detail]): no face, or the detector
    if type(e) is not LookupError:  # pylint: disable=unidiomatic-typecheck
      raise  # a KeyError or IndexError is a bug, not a skip
    return image_files.SkippedFile(path, *[str(a) for a in e.args[:2]])
  except ValueError as e:
    return image_files.SkippedFile(path, TOO_SMALL, str(e))
  side = min(prepared.box[2], prepared.box[3])
  if side < image_files.MIN_SIDE_FRACTION * image_size:
    return image_files.SkippedFile(path, CROP_TOO_SMALL,
                                   f'{side} px for {image_size}')
  return prepared
