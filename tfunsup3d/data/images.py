"""tf.data pipelines for image collections and ground-truth depth pairs.

Behaviour follows the reference `unsup3d/dataloaders.py` (docs/method.md §5):
  * `train`/`val` come from `cfg.train_val_data_dir/{train,val}`; `test` from
    `cfg.test_data_dir`, which is the test split directory itself (the
    reference's default, `./data/test`, is `train_val_data_dir/test` here).
  * with `cfg.load_gt_depth`, `<split>/<image dir>/X_image.png` is paired with
    `<split>/<depth dir>/X_depth.png` (`paired_data_dir_names`,
    `paired_data_filename_diff`); otherwise every image file under the split
    directory (recursive) is a sample.
  * pre-processing: optional crop (int c: centre c x c, rounded like
    torchvision's CenterCrop; [y0, x0, h, w]: that window), then resize to
    `image_size` x `image_size`, then a random horizontal flip (p = 0.5) for
    training only, the same flip for the image and its depth.

Resizing uses `tf.image.resize(..., 'bilinear', antialias=True)`, the same
triangle filter as PIL's BILINEAR resize that torchvision applies to PIL
images; it matches the reference to within PIL's uint8 rounding (<= 1/255).

Decoding: every file is validated once up front (see `image_files`), so the
pipeline only sees readable files whose crop fits. PNG (8/16-bit, grayscale,
palette, RGBA), GIF and RGB/grayscale JPEG are decoded in-graph with
`tf.io.decode_image` (JPEG with `decode_jpeg(dct_method='INTEGER_ACCURATE')`,
bit-exact with PIL); other formats PIL reads (BMP, WebP, TIFF, PPM/PGM, CMYK
JPEG) and files with an EXIF orientation tag (turned upright) go through a
`tf.numpy_function` PIL fallback, built into the graph only if some file
needs it. Alpha is dropped, as PIL's convert('RGB') does; 16-bit
values are scaled by 1/65535 (the reference's 8-bit convert clips them).

Depth: the depth PNG value p in [0, 1] is returned as `depth_gt` (channel 0
of the RGB decode, as the reference uses `depth_gt[:, 0]`); the model turns
it into depth with `decode_depth`: d = (1 - p) * max_depth + p * min_depth.
"""

import os
from typing import List, Optional, Tuple

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d.data import image_files
from tfunsup3d.data.image_files import ImageRecord, SkippedFile, SkippedFiles
# The depth PNG's decoding lives with the depth factor; exported here too.
from tfunsup3d.factors.depth import decode_depth_png as decode_depth

SPLITS = image_files.SPLITS
split_dir = image_files.split_dir
_MAX_LOGGED_NAMES = 10
_WARNED = set()  # (split, root, skipped names) already warned about.

__all__ = ['SPLITS', 'ImageRecord', 'SkippedFile', 'SkippedFiles',
           'split_dir', 'list_split', 'count', 'build_dataset',
           'load_image_file', 'decode_depth']


def list_split(cfg, split: str) -> Tuple[List[ImageRecord], SkippedFiles]:
  """Lists and validates the files of a split.

  Every file is opened with PIL once (results cached by path, size and mtime).
  Unreadable files, images smaller than the crop, far smaller than
  image_size or not square, depth maps of another size than their image,
  paths that are not UTF-8, and unpaired images/depths are skipped (rules:
  `image_files`): a WARNING gives their count and the first names (once per
  process for the same split and files), DEBUG logs the full list.

  Args:
    cfg: `Config`.
    split: 'train', 'val' or 'test'.
  Returns:
    (records, skipped): usable samples in the reference's (sorted) order, and
    the `SkippedFiles` summary.
  Raises:
    FileNotFoundError: the split directory (or a paired sub-directory) is
      missing.
    ValueError: no usable image in the split, or a bad `crop`.
  """
  root = image_files.check_split_dir(cfg, split)
  crop = image_files.normalize_crop(cfg.crop)
  if cfg.load_gt_depth:
    records, skipped = image_files.scan_pairs(
        root, crop, cfg.paired_data_dir_names, cfg.paired_data_filename_diff,
        cfg.num_workers, cfg.image_size)
  else:
    records, skipped = image_files.scan_collection(
        root, crop, cfg.num_workers, cfg.image_size)
  warned = (split, root, tuple(skipped.names))
  if skipped.count and warned not in _WARNED:
    _WARNED.add(warned)
    logging.warning('%s split (%s): %s', split, root,
                    skipped.summary(_MAX_LOGGED_NAMES))
    if skipped.count > _MAX_LOGGED_NAMES:
      logging.debug('%s split (%s), all skipped files:\n%s', split, root,
                    skipped.summary(None))
  if not records:
    detail = f' {skipped.summary(_MAX_LOGGED_NAMES)}.' if skipped.count else ''
    raise ValueError(f'No usable images for the {split} split in {root}.'
                     f'{detail} Expected layout: '
                     f'{image_files.expected_layout(cfg, root)}')
  logging.info('%s split: %d images from %s (%d skipped).', split,
               len(records), root, skipped.count)
  return records, skipped


def count(cfg, split: str) -> int:
  """Number of usable images in a split (for progress bars)."""
  return len(list_split(cfg, split)[0])


def _pil_decode(path) -> np.ndarray:
  """PIL fallback: file -> float32 [H,W,3] in [0, 1]."""
  if isinstance(path, np.ndarray):
    path = path.item()
  if isinstance(path, bytes):
    path = path.decode('utf-8')
  with Image.open(path) as im:
    return image_files.rgb01(image_files.upright(im))


def _decode(path: tf.Tensor, use_pil: tf.Tensor, any_pil: bool) -> tf.Tensor:
  """File path -> float32 [H,W,3] in [0, 1]."""

  def native():
    contents = tf.io.read_file(path)
    # JPEG: the accurate integer IDCT (libjpeg's default, which PIL uses) is
    # bit-exact with PIL; decode_image's default fast IDCT is off by up to 4.
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.image.convert_image_dtype(tf.io.decode_jpeg(
            contents, channels=3, dct_method='INTEGER_ACCURATE'), tf.float32),
        lambda: tf.io.decode_image(contents, channels=3, dtype=tf.float32,
                                   expand_animations=False))

  def fallback():
    return tf.numpy_function(_pil_decode, [path], tf.float32, stateful=False)

  image = tf.cond(use_pil, fallback, native) if any_pil else native()
  image.set_shape([None, None, 3])
  return image


def _crop_resize(image: tf.Tensor, box: tf.Tensor, size: int) -> tf.Tensor:
  """[H,W,C] -> crop box (y0, x0, h, w) -> [size,size,C] (bilinear, AA).

  A crop that is already size x size skips the resize (an exact identity).
  """
  channels = image.shape[-1]
  image = tf.slice(image, tf.stack([box[0], box[1], 0]),
                   tf.stack([box[2], box[3], channels]))
  image = tf.cond(
      tf.logical_and(tf.equal(box[2], size), tf.equal(box[3], size)),
      lambda: image,  # already S x S: resizing would be the identity.
      lambda: tf.image.resize(image, [size, size], method='bilinear',
                              antialias=True))
  image = tf.clip_by_value(image, 0.0, 1.0)
  image.set_shape([size, size, channels])
  return image


def _columns(records: List[ImageRecord], with_depth: bool) -> dict:
  cols = {
      'image_path': [r.image_path for r in records],
      'image_box': np.array([r.image_box for r in records], np.int32),
      'image_pil': np.array([r.image_pil for r in records], bool),
      'name': [r.name for r in records],
  }
  if with_depth:
    cols['depth_path'] = [r.depth_path for r in records]
    cols['depth_box'] = np.array([r.depth_box for r in records], np.int32)
    cols['depth_pil'] = np.array([r.depth_pil for r in records], bool)
  return cols


def _checked_batch_size(cfg, split: str, num_records: int,
                        training: bool) -> int:
  """cfg.batch_size as an int, checked against the split's size.

  Args:
    cfg: `Config` (batch_size, and the data dirs named in errors).
    split: 'train', 'val' or 'test'.
    num_records: usable images in the split.
    training: whether the incomplete last batch is dropped.
  Returns:
    The batch size.
  Raises:
    ValueError: batch_size is not positive, or training with fewer than
      batch_size images (no batch would be complete).
  """
  batch_size = int(cfg.batch_size)
  if batch_size <= 0:
    raise ValueError(f'batch_size must be positive. Received: {batch_size}')
  if training and num_records < batch_size:
    raise ValueError(
        f'The {split} split ({split_dir(cfg, split)}) has {num_records} '
        f'usable images, fewer than batch_size={batch_size}: training drops '
        'the incomplete batch and would see no data. Lower batch_size.')
  return batch_size


def _sample_loader(records, size: int, with_depth: bool, training: bool):
  """The per-sample map function of `build_dataset`.

  Args:
    records: the split's records (`list_split`); only used to know whether
      any file needs the PIL decoder.
    size: output side S.
    with_depth: also load 'depth_gt'.
    training: flip image and depth together when the draw `rnd` is odd.
  Returns:
    `load(rec, rnd=None)` mapping one row of `_columns` (and, when training,
    one int64 random draw) to {'image': [S,S,3], 'name': [],
    'depth_gt': [S,S,1] when with_depth}.
  """
  any_image_pil = any(r.image_pil for r in records)
  any_depth_pil = with_depth and any(r.depth_pil for r in records)

  def load(rec, rnd=None):
    image = _crop_resize(
        _decode(rec['image_path'], rec['image_pil'], any_image_pil),
        rec['image_box'], size)
    out = {'image': image, 'name': rec['name']}
    if with_depth:
      depth = _decode(rec['depth_path'], rec['depth_pil'], any_depth_pil)
      out['depth_gt'] = _crop_resize(depth[..., :1], rec['depth_box'], size)
    if training:  # one draw per sample: image and depth flip together.
      flip = tf.equal(tf.math.floormod(rnd, 2), 1)
      for key in ('image', 'depth_gt'):
        if key in out:
          out[key] = tf.where(flip, tf.reverse(out[key], axis=[1]), out[key])
    return out

  return load


def build_dataset(cfg, split: str,
                  training: Optional[bool] = None) -> tf.data.Dataset:
  """The tf.data pipeline of a split.

  Files are listed and validated in Python (`list_split`) when the pipeline
  is built, not on every epoch; iterate the returned dataset once per epoch.

  Args:
    cfg: `Config` (image_size, crop, batch_size, load_gt_depth,
      paired_data_*, train_val_data_dir, test_data_dir, num_workers, seed,
      deterministic).
    split: 'train', 'val' or 'test'.
    training: shuffle (seeded by cfg.seed, reshuffled each epoch), random
      flips and drop_remainder. Defaults to split == 'train'.
  Returns:
    A dataset of dicts, S = cfg.image_size, B = cfg.batch_size (the last eval
    batch may be smaller; training batches are static [B, ...]):
      'image': [B,S,S,3] float32 in [0, 1];
      'depth_gt': [B,S,S,1] float32 depth-map value p in [0, 1], only when
        cfg.load_gt_depth (see `decode_depth`);
      'name': [B] string, path relative to the split (image) dir without
        extension, in sorted order when not training.
  Raises:
    FileNotFoundError / ValueError: see `list_split`; ValueError if training
      with fewer usable images than batch_size.
  """
  if training is None:
    training = split == 'train'
  records, _ = list_split(cfg, split)
  size = int(cfg.image_size)
  batch_size = _checked_batch_size(cfg, split, len(records), training)
  with_depth = bool(cfg.load_gt_depth)
  deterministic = bool(cfg.deterministic) or not training

  ds = tf.data.Dataset.from_tensor_slices(_columns(records, with_depth))
  if training:
    ds = ds.shuffle(len(records), seed=cfg.seed, reshuffle_each_iteration=True)
    flips = tf.data.Dataset.random(seed=cfg.seed + 1,
                                   rerandomize_each_iteration=True)
    ds = tf.data.Dataset.zip((ds, flips))
  load = _sample_loader(records, size, with_depth, training)
  ds = ds.map(load, num_parallel_calls=max(1, int(cfg.num_workers)),
              deterministic=deterministic)
  ds = ds.batch(batch_size, drop_remainder=training)
  ds = ds.prefetch(PREFETCH_BATCHES)
  return ds.with_options(pipeline_options(deterministic))


# Batches decoded ahead of the step. One batch takes 2-3 ms to decode on one
# core (docs/performance.md), far less than any training step.
PREFETCH_BATCHES = 2


def pipeline_options(deterministic: bool) -> tf.data.Options:
  """The options of every input pipeline: tf.data's autotuner off.

  Its background thread sleeps for its optimisation period, which doubles
  from 10 ms up to a minute while a pipeline runs, and destroying an
  iterator waits for that thread to wake: measured on TF 2.21, the end of
  a 300-image validation pass took 20.5 s instead of 2.6 s, and an epoch of
  the quickstart 41 s instead of 21 s, with the CPU idle. Fixed
  parallelism (`num_workers` decoding calls) and a fixed prefetch keep the
  batches ahead of the step just as well.
  """
  options = tf.data.Options()
  options.deterministic = deterministic
  options.autotune.enabled = False
  return options


def load_image_file(path: str, image_size: int, crop=None) -> np.ndarray:
  """One image file -> float32 [S,S,3] in [0, 1], pre-processed as in eval.

  Args:
    path: image file (any format PIL reads).
    image_size: output size S.
    crop: None, int (centre crop) or [y0, x0, h, w], as `Config.crop`.
  Raises:
    FileNotFoundError: `path` does not exist.
    ValueError: the file is unreadable, or smaller than the crop.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'Image file not found: {path}')
  pr = image_files.probe(path)
  if pr.error is not None:
    raise ValueError(f'Cannot read image file {path}: {pr.error}')
  crop = image_files.normalize_crop(crop)
  box = image_files.crop_box(pr.width, pr.height, crop)
  if box is None:
    raise ValueError(f'Image file {path} ({pr.width}x{pr.height}) is smaller '
                     f'than crop {crop}.')
  image = _decode(tf.constant(path), tf.constant(not pr.native),
                  any_pil=not pr.native)
  return _crop_resize(image, tf.constant(box, tf.int32),
                      int(image_size)).numpy()
