"""Tests for tfunsup3d.data.images (small PIL-made data, no network)."""

import os
import shutil
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d.data import image_files
from tfunsup3d.data import images

_GOOD = ['a_rgb', 'b_rgb', 'c_gray', 'd_rgba', 'e_palette', 'f_16bit',
         'nested/deeper/g']
_BAD = {'h_corrupt.jpg': image_files.UNREADABLE,
        'i_truncated.png': image_files.UNREADABLE,
        'j_tiny.png': image_files.TOO_SMALL,
        'k_truncated.jpg': image_files.UNREADABLE}


def _tempdir(test):
  path = tempfile.mkdtemp(prefix='test_images_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _cfg(root, **kw):
  values = dict(train_val_data_dir=root, num_workers=2, batch_size=2,
                image_size=16, seed=3)
  values.update(kw)
  return config_lib.Config(**values)


def _save(path, image, fmt=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if isinstance(image, np.ndarray):
    image = Image.fromarray(image)
  image.save(path, fmt)
  return path


def _noise(h, w, seed=0):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), np.uint8)


def _coords(h, w):
  """R = x, G = y (uint8), so a crop's offset can be read from a pixel."""
  y, x = np.mgrid[0:h, 0:w]
  return np.stack([x, y, np.zeros_like(x)], -1).astype(np.uint8)


def _reference(path, crop, size):
  """The reference pipeline: PIL convert, torchvision crop, PIL bilinear."""
  im = Image.open(path).convert('RGB')
  if isinstance(crop, int):
    top = int(round((im.height - crop) / 2.0))
    left = int(round((im.width - crop) / 2.0))
    im = im.crop((left, top, left + crop, top + crop))
  elif crop is not None:
    y0, x0, h, w = crop
    im = im.crop((x0, y0, x0 + w, y0 + h))
  im = im.resize((size, size), Image.BILINEAR)
  return np.asarray(im, np.float32) / 255.0


def _make_messy(split_root):
  """Good files of every kind plus bad ones (images are 180x180)."""
  s = 180
  _save(f'{split_root}/a_rgb.jpg', _noise(s, s, 1))
  _save(f'{split_root}/b_rgb.png', _noise(s, s, 2))
  _save(f'{split_root}/c_gray.png',
        Image.fromarray(_noise(s, s, 3)).convert('L'))
  rgba = np.concatenate([_noise(s, s, 4), np.zeros((s, s, 1), np.uint8)], -1)
  _save(f'{split_root}/d_rgba.png', Image.fromarray(rgba, 'RGBA'))
  _save(f'{split_root}/e_palette.png',
        Image.fromarray(_noise(s, s, 5)).convert('P'))
  _save(f'{split_root}/f_16bit.png', np.full((s, s), 32768, np.uint16))
  _save(f'{split_root}/nested/deeper/g.PNG', _noise(s, s, 6))
  with open(f'{split_root}/h_corrupt.jpg', 'wb') as f:
    f.write(np.random.default_rng(7).bytes(2000))
  data = open(_save(f'{split_root}/i_truncated.png', _noise(s, s, 8)),
              'rb').read()
  with open(f'{split_root}/i_truncated.png', 'wb') as f:
    f.write(data[:len(data) // 2])
  _save(f'{split_root}/j_tiny.png', _noise(4, 4, 9))
  data = open(_save(f'{split_root}/k_truncated.jpg', _noise(s, s, 10)),
              'rb').read()
  with open(f'{split_root}/k_truncated.jpg', 'wb') as f:
    f.write(data[:len(data) // 2])
  with open(f'{split_root}/notes.txt', 'w') as f:
    f.write('not an image')


def _collect(ds):
  return [{k: v.numpy() for k, v in batch.items()} for batch in ds]


def test_a_skipped_file_is_one_line_whatever_its_name():
  odd = os.fsdecode(b'dir/bad\nname\xff.png')  # A line break, a non-UTF-8 byte.
  text = str(image_files.SkippedFile(odd, image_files.UNREADABLE, 'why'))
  assert text == 'dir/bad\\nname\\xff.png: unreadable (why)', text
  assert '\n' not in text


class FloatImageTest(tf.test.TestCase):

  def test_nan_or_inf_pixels_are_a_counted_skip_not_a_nan_batch(self):
    root = _tempdir(self)
    ramp = np.linspace(0, 1, 32 * 32, dtype=np.float32).reshape(32, 32)
    for name, value in (('nan', np.nan), ('inf', np.inf)):
      bad = ramp.copy()
      bad[3:5, 3:5] = value
      _save(f'{root}/train/{name}.tif', Image.fromarray(bad, 'F'))
    _save(f'{root}/train/finite.tif', Image.fromarray(ramp * 2, 'F'))
    cfg = _cfg(root, batch_size=1)
    records, skipped = images.list_split(cfg, 'train')
    self.assertEqual([r.name for r in records], ['finite'])
    self.assertEqual(skipped.by_reason(), {image_files.UNREADABLE: 2})
    self.assertEqual(skipped.summary().count(image_files.NON_FINITE), 2)
    batch = _collect(images.build_dataset(cfg, 'train', training=False))[0]
    self.assertAllClose(batch['image'][0, :, :, 0],
                        np.clip(ramp * 2, 0, 1)[::2, ::2], atol=0.05)


class MessyCollectionTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = _tempdir(self)
    _make_messy(os.path.join(self.root, 'train'))
    self.cfg = _cfg(self.root, crop=170, batch_size=3)

  def test_good_and_skipped_files_are_counted_and_named(self):
    records, skipped = images.list_split(self.cfg, 'train')
    self.assertEqual([r.name for r in records], _GOOD)
    self.assertEqual(skipped.count, 4)
    self.assertEqual(
        {os.path.basename(p): r for p, r in skipped.reasons.items()}, _BAD)
    self.assertEqual(skipped.by_reason(), {image_files.UNREADABLE: 3,
                                           image_files.TOO_SMALL: 1})
    self.assertIn('j_tiny.png', skipped.summary())
    self.assertEqual(images.count(self.cfg, 'train'), 7)

  def test_skipped_files_are_logged_as_a_warning(self):
    with self.assertLogs(logger='absl', level='WARNING') as logs:
      images.list_split(self.cfg, 'train')
    text = '\n'.join(logs.output)
    self.assertIn('4 file(s) skipped', text)
    for name in _BAD:
      self.assertIn(name, text)

  def test_every_format_matches_the_reference_pipeline(self):
    ds = images.build_dataset(self.cfg, 'train', training=False)
    batches = _collect(ds)
    self.assertEqual([len(b['name']) for b in batches], [3, 3, 1])
    image = np.concatenate([b['image'] for b in batches])
    names = [n.decode() for b in batches for n in b['name']]
    self.assertEqual(names, _GOOD)
    self.assertEqual(image.dtype, np.float32)
    self.assertEqual(image.shape, (7, 16, 16, 3))
    self.assertBetween(image.min(), 0.0, 1.0)
    self.assertBetween(image.max(), 0.0, 1.0)
    paths = [r.image_path for r in images.list_split(self.cfg, 'train')[0]]
    for name, path, got in zip(names, paths, image):
      if name == 'f_16bit':  # 16-bit is scaled by 1/65535 (reference clips).
        self.assertAllClose(got, np.full_like(got, 32768 / 65535), atol=1e-6)
      else:
        self.assertAllClose(got, _reference(path, 170, 16), atol=1.5 / 255,
                            msg=name)

  def test_rewritten_file_is_validated_again(self):
    self.assertEqual(images.count(self.cfg, 'train'), 7)
    with open(os.path.join(self.root, 'train', 'b_rgb.png'), 'wb') as f:
      f.write(b'garbage')
    records, skipped = images.list_split(self.cfg, 'train')
    self.assertLen(records, 6)
    self.assertIn(os.path.join(self.root, 'train', 'b_rgb.png'), skipped.names)


class PreprocessingTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = _tempdir(self)

  def _one(self, array, **kw):
    _save(os.path.join(self.root, 'val', 'x.png'), array)
    cfg = _cfg(self.root, batch_size=1, **kw)
    return next(iter(images.build_dataset(cfg, 'val')))['image'][0].numpy()

  def test_centre_crop_offsets_round_like_torchvision(self):
    # (31 - 10) / 2 = 10.5 -> 10; (33 - 10) / 2 = 11.5 -> 12 (half to even).
    for h, w, top, left in ((31, 33, 10, 12), (33, 31, 12, 10)):
      got = np.round(self._one(_coords(h, w), crop=10, image_size=10) * 255)
      self.assertAllEqual(got[0, :, 0], np.arange(left, left + 10))
      self.assertAllEqual(got[:, 0, 1], np.arange(top, top + 10))

  def test_box_crop_is_y0_x0_h_w(self):
    got = np.round(self._one(_coords(20, 30), crop=[3, 5, 8, 8],
                             image_size=8) * 255)
    self.assertAllEqual(got[0, :, 0], np.arange(5, 13))
    self.assertAllEqual(got[:, 0, 1], np.arange(3, 11))

  def test_crop_region_of_known_colour(self):
    array = np.zeros((40, 40, 3), np.uint8)
    array[..., 0] = 255
    array[10:30, 10:30] = (0, 255, 0)
    green = self._one(array, crop=20, image_size=8)
    self.assertAllClose(green, np.broadcast_to([0., 1., 0.], green.shape))
    red = self._one(array, crop=[0, 0, 10, 10], image_size=8)
    self.assertAllClose(red, np.broadcast_to([1., 0., 0.], red.shape))

  def test_resize_of_constant_image_stays_constant(self):
    got = self._one(np.full((45, 53, 3), (200, 100, 50), np.uint8),
                    image_size=16)
    self.assertEqual(got.shape, (16, 16, 3))
    self.assertAllClose(got, np.broadcast_to(np.array([200, 100, 50]) / 255,
                                             got.shape), atol=1e-6)

  def test_resize_matches_pil_bilinear(self):
    for shape, crop in [((218, 178), None), ((40, 40), [2, 3, 30, 30]),
                        ((14, 12), None)]:
      array = _noise(*shape, seed=shape[0])
      got = self._one(array, crop=crop, image_size=24)
      want = _reference(os.path.join(self.root, 'val', 'x.png'), crop, 24)
      self.assertAllClose(got, want, atol=1.5 / 255, msg=str(shape))

  def test_fallback_formats_decode_like_pil(self):
    split = os.path.join(self.root, 'val')
    rgb = Image.fromarray(_noise(20, 24, 11))
    _save(f'{split}/a.bmp', rgb.convert('P'), 'BMP')
    _save(f'{split}/b.webp', rgb, 'WEBP')
    _save(f'{split}/c.tif', rgb, 'TIFF')
    _save(f'{split}/d.jpg', rgb.convert('CMYK'), 'JPEG')
    _save(f'{split}/e.ppm', rgb, 'PPM')
    _save(f'{split}/f.jpg', rgb, 'JPEG')
    _save(f'{split}/g16.tif', np.full((20, 24), 32768, np.uint16), 'TIFF')
    cfg = _cfg(self.root, batch_size=8, image_size=12)
    records, _ = images.list_split(cfg, 'val')
    self.assertEqual([r.image_pil for r in records], [True] * 5 + [False, True])
    batch = next(iter(images.build_dataset(cfg, 'val')))
    got16 = batch['image'].numpy()[6]  # 16-bit: scaled by 1/65535.
    self.assertAllClose(got16, np.full_like(got16, 32768 / 65535), atol=1e-6)
    for record, got in zip(records[:6], batch['image'].numpy()):
      self.assertAllClose(got, _reference(record.image_path, None, 12),
                          atol=1.5 / 255, msg=record.name)

  def test_exif_orientation_is_applied_as_viewers_show_the_photo(self):
    # A phone photo stores its pixels sideways and says how to turn them.
    # Tagged: a 20x30 (w x h) pattern with orientation 6 (turn 90 degrees
    # clockwise to view) is a 30x20 upright image, identical to the same
    # pattern stored turned and untagged.
    split = os.path.join(self.root, 'val')
    stored = Image.fromarray(_coords(30, 20))
    upright = stored.transpose(Image.Transpose.ROTATE_270)  # 90 clockwise
    exif = Image.Exif()
    exif[0x0112] = 6
    os.makedirs(split)
    stored.save(os.path.join(split, 'a_tagged.png'), exif=exif)
    stored.save(os.path.join(split, 'b_tagged.jpg'), exif=exif)
    _save(f'{split}/c_upright.png', upright)
    _save(f'{split}/d_upright.jpg', upright, 'JPEG')
    cfg = _cfg(self.root, batch_size=4, image_size=20, crop=[0, 5, 20, 20])
    records, _ = images.list_split(cfg, 'val')
    probes = [image_files.probe(r.image_path) for r in records]
    self.assertEqual([(p.width, p.height) for p in probes], [(30, 20)] * 4)
    self.assertEqual([r.image_pil for r in records],
                     [True, True, False, False])
    got = next(iter(images.build_dataset(cfg, 'val')))['image'].numpy()
    self.assertAllClose(got[0], got[2], atol=1e-6)  # PNG: up to float ulps
    self.assertAllClose(got[1], got[3], atol=0.02)  # JPEG: its own rounding
    self.assertAllEqual(images.load_image_file(records[0].image_path, 20,
                                               [0, 5, 20, 20]), got[0])

  def test_bad_crop_config_is_an_error(self):
    _save(os.path.join(self.root, 'val', 'x.png'), _noise(8, 8))
    for crop in ('abc', [1, 2, 3], 0, [0, 0, -1, 5], True):
      with self.assertRaisesRegex(ValueError, 'crop'):
        images.list_split(_cfg(self.root, crop=crop), 'val')

  def test_crop_larger_than_every_image_is_a_clear_error(self):
    _save(os.path.join(self.root, 'val', 'x.png'), _noise(8, 8))
    with self.assertRaisesRegex(ValueError, 'No usable images.*smaller than'):
      images.build_dataset(_cfg(self.root, crop=170), 'val')


class PairedDepthTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = _tempdir(self)
    split = os.path.join(self.root, 'train')
    # Left half dark, right half bright: a flip is visible at pixel (0, 0).
    lr = np.zeros((16, 16), np.uint16)
    lr[:, 8:] = 65535
    for i in range(2):
      _save(f'{split}/image/{i:04d}_image.png',
            np.stack([(lr >> 8).astype(np.uint8)] * 3, -1))
      _save(f'{split}/depth/{i:04d}_depth.png', lr)
    _save(f'{split}/image/0002_image.png', _noise(16, 16))
    _save(f'{split}/depth/0002_depth.png', np.full((16, 16), 32768, np.uint16))
    _save(f'{split}/image/0003_image.png',
          np.full((16, 16), 128, np.uint8))  # 8-bit depth pair below.
    _save(f'{split}/depth/0003_depth.png', np.full((16, 16), 128, np.uint8))
    _save(f'{split}/image/0004_image.png', _noise(16, 16))  # no depth.
    _save(f'{split}/depth/0005_depth.png', lr)  # no image.
    self.cfg = _cfg(self.root, load_gt_depth=True, batch_size=1)

  def test_pairs_and_unpaired_files(self):
    records, skipped = images.list_split(self.cfg, 'train')
    self.assertEqual([r.name for r in records],
                     ['0000_image', '0001_image', '0002_image', '0003_image'])
    self.assertTrue(records[0].depth_path.endswith('depth/0000_depth.png'))
    reasons = {os.path.basename(p): r for p, r in skipped.reasons.items()}
    self.assertEqual(reasons, {
        '0004_image.png': image_files.MISSING_DEPTH,
        '0005_depth.png': image_files.DEPTH_WITHOUT_IMAGE})

  def test_depth_values_8_and_16_bit(self):
    batches = _collect(images.build_dataset(self.cfg, 'train', training=False))
    depth = np.concatenate([b['depth_gt'] for b in batches])
    self.assertEqual(depth.shape, (4, 16, 16, 1))
    self.assertEqual(depth.dtype, np.float32)
    self.assertAllClose(depth[2], np.full((16, 16, 1), 32768 / 65535),
                        atol=1e-6)
    self.assertAllClose(depth[3], np.full((16, 16, 1), 128 / 255), atol=1e-6)
    self.assertAllClose(depth[0, 0, :, 0], [0.] * 8 + [1.] * 8)  # unflipped.
    self.assertAllClose(images.decode_depth(depth[2], 0.9, 1.1),
                        np.full((16, 16, 1), 1.1 - 0.2 * 32768 / 65535))
    self.assertAllClose(images.decode_depth(np.float32(0.0), 0.9, 1.1), 1.1)

  def _flip_sequence(self):
    cfg = _cfg(self.root, load_gt_depth=True, batch_size=1, crop=[0, 0, 16, 16])
    ds = images.build_dataset(cfg, 'train')
    seq = []
    for _ in range(8):  # epochs
      epoch = []
      for b in ds:
        image_flipped = b['image'][0, 0, 0, 0].numpy() > 0.5
        depth_flipped = b['depth_gt'][0, 0, 0, 0].numpy() > 0.5
        name = b['name'][0].numpy().decode()
        if name in ('0000_image', '0001_image'):
          self.assertEqual(image_flipped, depth_flipped, msg=name)
        epoch.append((name, bool(depth_flipped)))
      seq.append(epoch)
    return seq

  def test_training_flips_image_and_depth_together(self):
    seq = self._flip_sequence()
    draws = [f for epoch in seq for name, f in epoch
             if name in ('0000_image', '0001_image')]
    self.assertLen(draws, 16)
    self.assertIn(True, draws)
    self.assertIn(False, draws)
    self.assertGreater(len({tuple(e) for e in seq}), 1)  # reshuffled.
    self.assertEqual(seq, self._flip_sequence())  # seeded.

  def test_pair_with_different_exif_orientations_is_skipped(self):
    # A square photo stored sideways with orientation 6, its depth map saved
    # untagged from the same stored pixels: each would be read its own way,
    # so the two no longer line up (the size check cannot see it). Tagged
    # alike, both turn the same way and stay aligned.
    split = os.path.join(self.root, 'train')
    exif = Image.Exif()
    exif[0x0112] = 6
    for name in ('0006', '0007'):
      Image.fromarray(np.stack([_coords(16, 16)[..., 0]] * 3, -1)).save(
          f'{split}/image/{name}_image.png', exif=exif)
    Image.fromarray(_coords(16, 16)[..., 0]).save(
        f'{split}/depth/0006_depth.png')
    Image.fromarray(_coords(16, 16)[..., 0]).save(
        f'{split}/depth/0007_depth.png', exif=exif)
    records, skipped = images.list_split(self.cfg, 'train')
    self.assertEqual([r.name for r in records][-2:],
                     ['0003_image', '0007_image'])
    reasons = {os.path.basename(p): r for p, r in skipped.reasons.items()}
    self.assertEqual(reasons['0006_depth.png'], image_files.ORIENTATION)
    self.assertIn('0006_depth.png: EXIF orientation differs from image '
                  '(EXIF orientation 1, image 6; save both upright)',
                  skipped.summary())
    batch = [b for b in images.build_dataset(self.cfg, 'train', training=False)
             if b['name'][0].numpy() == b'0007_image'][0]
    self.assertAllClose(batch['image'][0, ..., 0], batch['depth_gt'][0, ..., 0],
                        atol=1e-6)  # turned alike
    self.assertNotAllClose(batch['depth_gt'][0, ..., 0],
                           _coords(16, 16)[..., 0] / 255.0)  # and turned

  def test_missing_depth_dir_is_an_error(self):
    cfg = _cfg(self.root, load_gt_depth=True,
               paired_data_dir_names=['image', 'nodepth'])
    with self.assertRaisesRegex(FileNotFoundError, 'train/nodepth'):
      images.list_split(cfg, 'train')


class SplitsTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = _tempdir(self)
    for split, n in (('train', 5), ('val', 5), ('test', 3)):
      for i in reversed(range(n)):
        _save(os.path.join(self.root, split, f's{i % 2}', f'{i}.png'),
              _noise(8, 8, i))

  def test_eval_keeps_remainder_and_order(self):
    cfg = _cfg(self.root, image_size=8)
    batches = _collect(images.build_dataset(cfg, 'val'))
    self.assertEqual([len(b['name']) for b in batches], [2, 2, 1])
    names = [n.decode() for b in batches for n in b['name']]
    self.assertEqual(names, ['s0/0', 's0/2', 's0/4', 's1/1', 's1/3'])
    got = np.concatenate([b['image'] for b in batches])
    for name, image in zip(names, got):  # no flip, no resize (8 -> 8).
      want = _noise(8, 8, int(name[-1])) / 255.0
      self.assertAllClose(image, want, atol=1e-6)

  def test_training_drops_remainder_with_static_shapes(self):
    ds = images.build_dataset(_cfg(self.root, image_size=8), 'train')
    self.assertEqual(ds.element_spec['image'].shape, (2, 8, 8, 3))
    self.assertEqual(ds.element_spec['name'].shape, (2,))
    self.assertNotIn('depth_gt', ds.element_spec)
    batches = _collect(ds)
    self.assertLen(batches, 2)
    names = [n.decode() for b in batches for n in b['name']]
    self.assertLen(set(names), 4)  # 5 images, batch 2: one dropped.
    self.assertContainsSubset(names, ['s0/0', 's0/2', 's0/4', 's1/1', 's1/3'])

  def test_pipelines_run_without_the_autotuner(self):
    # Destroying an iterator waits for tf.data's autotuner thread to wake
    # (up to its optimisation period, 20 s and more into a run): every
    # pipeline runs with fixed parallelism instead (docs/performance.md).
    for split in ('train', 'val', 'test'):
      ds = images.build_dataset(_cfg(self.root, image_size=8), split)
      options = ds.options()
      self.assertFalse(options.autotune.enabled, split)
      self.assertEqual(options.deterministic, split != 'train', split)
    with_one_worker = _collect(images.build_dataset(
        _cfg(self.root, image_size=8, num_workers=0), 'val'))
    self.assertEqual(sum(len(b['name']) for b in with_one_worker), 5)

  def test_training_with_fewer_images_than_batch_is_an_error(self):
    with self.assertRaisesRegex(ValueError, 'batch_size=8'):
      images.build_dataset(_cfg(self.root, batch_size=8), 'train')

  def test_test_split_dirs_and_names(self):
    cfg = _cfg(self.root, batch_size=10)
    self.assertEqual(images.split_dir(cfg, 'test'),
                     os.path.join(self.root, 'test'))
    names = [n.decode() for b in _collect(images.build_dataset(cfg, 'test'))
             for n in b['name']]
    self.assertEqual(names, ['s0/0', 's0/2', 's1/1'])
    other = os.path.join(self.root, 'elsewhere')
    _save(os.path.join(other, 'b.png'), _noise(8, 8))
    _save(os.path.join(other, 'a.jpg'), _noise(8, 8))
    cfg = _cfg(self.root, batch_size=10, test_data_dir=other)
    names = [n.decode() for b in _collect(images.build_dataset(cfg, 'test'))
             for n in b['name']]
    self.assertEqual(names, ['a', 'b'])

  def test_empty_split_names_the_directory(self):
    empty = os.path.join(self.root, 'empty')
    os.makedirs(os.path.join(empty, 'train'))
    with open(os.path.join(empty, 'train', 'readme.txt'), 'w') as f:
      f.write('x')
    with self.assertRaisesRegex(ValueError, f'{empty}/train'):
      images.build_dataset(_cfg(empty), 'train')

  def test_missing_split_dir_names_the_directory(self):
    missing = os.path.join(self.root, 'missing')
    with self.assertRaisesRegex(FileNotFoundError, f'{missing}/val'):
      images.build_dataset(_cfg(missing), 'val')
    with self.assertRaisesRegex(ValueError, 'split'):
      images.split_dir(_cfg(missing), 'bogus')


class LoadImageFileTest(tf.test.TestCase):

  def setUp(self):
    super().setUp()
    self.root = _tempdir(self)

  def test_load_image_file(self):
    path = _save(os.path.join(self.root, 'x.png'), _noise(40, 50))
    got = images.load_image_file(path, 16, crop=30)
    self.assertEqual(got.shape, (16, 16, 3))
    self.assertEqual(got.dtype, np.float32)
    self.assertAllClose(got, _reference(path, 30, 16), atol=1.5 / 255)
    bmp = _save(os.path.join(self.root, 'y.bmp'),
                Image.fromarray(_noise(20, 20)).convert('P'), 'BMP')
    self.assertAllClose(images.load_image_file(bmp, 8),
                        _reference(bmp, None, 8), atol=1.5 / 255)

  def test_bad_input_names_the_file(self):
    bad = os.path.join(self.root, 'bad.jpg')
    with open(bad, 'wb') as f:
      f.write(b'\xff\xd8 definitely not a jpeg')
    with self.assertRaisesRegex(ValueError, 'bad.jpg'):
      images.load_image_file(bad, 16)
    small = _save(os.path.join(self.root, 'small.png'), _noise(4, 4))
    with self.assertRaisesRegex(ValueError, 'small.png.*smaller than crop'):
      images.load_image_file(small, 16, crop=170)
    with self.assertRaisesRegex(FileNotFoundError, 'nope.png'):
      images.load_image_file(os.path.join(self.root, 'nope.png'), 16)


if __name__ == '__main__':
  tf.test.main()
