"""Photos -> a training folder: each cropped as the demo crops it, split.

The method learns when the object fills the frame, as in the authors' crops
of CelebA (docs/experiments.md: on loosely framed faces it locks into a
too-deep relief). `write_crops` makes such a folder from photos of any size
and framing: each image is cropped around its largest face (the reference
demo's square, `inputs.face_box`) or, without a detector, to its largest
centred square, resized to `image_size` and written as PNG to
OUT_DIR/{train,val,test}/NAME.png, the layout `tfunsup3d-train` reads.
The split of an image follows from a hash of its output name and the seed,
so rerunning on a grown folder keeps every earlier image in its split.
Images that cannot be read, have no face (or make the detector fail), or
whose crop is under half of `image_size` (upsampled more than 2x, which the
data pipeline refuses too) are skipped and counted in
OUT_DIR/crop_summary.json.
"""

import hashlib
import json
import os
import shutil
from typing import Any, Dict, List, Sequence, Union

import numpy as np
from PIL import Image

from tfunsup3d import progress
from tfunsup3d import saving
from tfunsup3d.data import image_files
from tfunsup3d.demo import inputs
from tfunsup3d.errors import UserError

SPLITS = ('train', 'val', 'test')
SUMMARY_FILE = 'crop_summary.json'


def split_of(name: str, val_fraction: float, test_fraction: float,
             seed: int = 0) -> str:
  """'train', 'val' or 'test' for an image, from a hash of `name`.

  The hash of (seed, name) is read as a uniform number u in [0, 1): test
  if u < test_fraction, val if u < test_fraction + val_fraction, else
  train. The same name always lands in the same split.
  """
  digest = hashlib.sha256(f'{seed}:{name}'.encode('utf-8')).digest()
  u = int.from_bytes(digest[:8], 'big') / 2.0 ** 64
  if u < test_fraction:
    return 'test'
  return 'val' if u < test_fraction + val_fraction else 'train'


def check_fractions(val_fraction: float, test_fraction: float) -> None:
  """UserError unless both are in [0, 1) and leave some training images."""
  for name, value in (('val_fraction', val_fraction),
                      ('test_fraction', test_fraction)):
    if not 0.0 <= value < 1.0:
      raise UserError(f'--{name} must be in [0, 1). Received: {value}')
  if val_fraction + test_fraction >= 1.0:
    raise UserError('--val_fraction + --test_fraction must be under 1 '
                    f'(some images must train). Received: {val_fraction} + '
                    f'{test_fraction}')


def _existing_images(out_dir: str) -> List[str]:
  return [s for s in SPLITS
          if os.path.isdir(os.path.join(out_dir, s))
          and inputs.image_paths(os.path.join(out_dir, s))]


def _prepare_out_dir(out_dir: str, overwrite: bool) -> None:
  if os.path.exists(out_dir) and not os.path.isdir(out_dir):
    raise UserError(f'--output_dir is a file, not a folder: {out_dir}')
  taken = _existing_images(out_dir)
  if taken and not overwrite:
    raise UserError(f'{out_dir} already holds images in '
                    f'{", ".join(taken)}: choose another --output_dir or '
                    'pass --overwrite to replace those splits.')
  try:
    for split in taken:
      shutil.rmtree(os.path.join(out_dir, split))
    for split in SPLITS:
      os.makedirs(os.path.join(out_dir, split), exist_ok=True)
  except OSError as e:
    raise UserError(f'Cannot prepare {out_dir}: {e.strerror or e}') from None


def _write_png(image: np.ndarray, path: str, done: int) -> None:
  """`[S, S, 3]` in [0, 1] -> 8-bit PNG, via a temporary name (no torn file
  is ever left under the final name); `done`: crops written before it.

  Raises:
    UserError: the write failed (a full disk, a read-only folder).
  """
  pixels = np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)
  try:
    saving.write_atomic(
        path, lambda tmp: Image.fromarray(pixels).save(tmp, format='PNG'))
  except OSError as e:
    raise UserError(f'Cannot write {path}: {e.strerror or e}; the {done} '
                    'crop(s) written before it are complete (rerun with '
                    '--overwrite once there is room)') from None


def _crop_one(item: inputs.InputImage, image_size: int, detector
              ) -> Union[np.ndarray, image_files.SkippedFile]:
  """The `[S, S, 3]` crop of one input, or why it is skipped (unreadable, no
  face, the detector failed, or too small)."""
  prepared = inputs.read_and_prepare(item.path, image_size, detector)
  if isinstance(prepared, image_files.SkippedFile):
    return prepared
  return prepared.image


def write_crops(images: Sequence[inputs.InputImage], out_dir: str,
                image_size: int, detector=None, val_fraction: float = 0.05,
                test_fraction: float = 0.05, seed: int = 0,
                overwrite: bool = False) -> Dict[str, Any]:
  """Crops, resizes and writes `images` into OUT_DIR/{train,val,test}.

  Args:
    images: from `inputs.list_inputs`.
    out_dir: the data set root to write.
    image_size: side in pixels of the PNGs written.
    detector: an `inputs.FaceDetector` (or anything with its `detect`), or
      None for the largest centred square.
    val_fraction, test_fraction: expected shares of the splits.
    seed: salts the split hash.
    overwrite: replace splits that already hold images.

  Returns:
    The summary also written to OUT_DIR/crop_summary.json: counts per
    split, skipped files with reasons, the settings.

  Raises:
    UserError: bad fractions or size, an output folder that holds images
      (without `overwrite`), a crop that cannot be written (a full disk, a
      read-only folder), or no image written.
  """
  check_fractions(val_fraction, test_fraction)
  if image_size < 16:
    raise UserError(f'--image_size must be at least 16. Received: '
                    f'{image_size}')
  _prepare_out_dir(out_dir, overwrite)
  written = {s: 0 for s in SPLITS}
  skipped = image_files.SkippedFiles()
  for item in progress.track(images, 'crop'):
    crop = _crop_one(item, image_size, detector)
    if isinstance(crop, image_files.SkippedFile):
      skipped.entries.append(crop)
      continue
    split = split_of(item.name, val_fraction, test_fraction, seed)
    _write_png(crop, os.path.join(out_dir, split, item.name + '.png'),
               sum(written.values()))
    written[split] += 1
  summary = {
      'written': written, 'num_skipped': skipped.count,
      'skipped_by_reason': skipped.by_reason(),
      'skipped': [e._asdict() for e in skipped.entries],
      'image_size': image_size, 'face_detection': detector is not None,
      'val_fraction': val_fraction, 'test_fraction': test_fraction,
      'seed': seed}
  summary_path = _write_summary(summary, out_dir)
  if not any(written.values()):
    raise UserError(f'No image written: all {len(images)} skipped '
                    f'({_reasons_text(summary)}; see {summary_path})')
  return summary


def _write_summary(summary: Dict[str, Any], out_dir: str) -> str:
  path = os.path.join(out_dir, SUMMARY_FILE)
  try:
    with open(path, 'w', encoding='utf-8') as f:
      json.dump(summary, f, indent=1)
  except OSError as e:
    raise UserError(f'Cannot write {path}: {e.strerror or e}; the crops '
                    'are written') from None
  return path


def _reasons_text(summary: Dict[str, Any]) -> str:
  return ', '.join(f'{reason} {n}'
                   for reason, n in summary['skipped_by_reason'].items())


def report(summary: Dict[str, Any], out_dir: str,
           train_configs: Sequence[str] = ()) -> str:
  """The closing lines a user reads: counts, skips, the training command
  (with the `--config` files `train_configs`)."""
  w = summary['written']
  text = (f'{sum(w.values())} crop(s) written to {out_dir} (train '
          f'{w["train"]}, val {w["val"]}, test {w["test"]})')
  if summary['num_skipped']:
    text += (f'; {summary["num_skipped"]} skipped ({_reasons_text(summary)}; '
             f'see {os.path.join(out_dir, SUMMARY_FILE)})')
  config = ''.join(f' --config={path}' for path in train_configs)
  test_dir = os.path.join(out_dir, 'test') if w['test'] else 'none'
  return (text + '.\nTrain on them with: tfunsup3d-train' + config +
          f' --train_val_data_dir={out_dir} --test_data_dir={test_dir}')
