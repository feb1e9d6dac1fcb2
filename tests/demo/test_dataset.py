"""Tests for tfunsup3d.demo.dataset: photos -> a cropped, split training set."""

import errno
import json
import os
import tempfile
import unittest
from unittest import mock

import numpy as np
from PIL import Image

from tests import tiny
from tfunsup3d.data import image_files
from tfunsup3d.demo import dataset
from tfunsup3d.demo import inputs
from tfunsup3d.errors import UserError


class _FakeDetector:
  """`FaceDetector.detect` by file size: a box per (height, width), or None."""

  def __init__(self, boxes):
    self.boxes = boxes

  def detect(self, image):
    box = self.boxes.get(image.shape[:2])
    return None if box is None else {'box': box, 'confidence': 0.99}


def _photos(root):
  """Four photos and a broken file; returns the `InputImage`s."""
  os.makedirs(os.path.join(root, 'sub dir'))
  tiny.write_image(os.path.join(root, 'face one.png'),
                   tiny.face_like_image(90, 120))
  tiny.write_image(os.path.join(root, 'sub dir', 'face_two.jpg'),
                   tiny.face_like_image(160, 120, seed=1), quality=95)
  tiny.write_image(os.path.join(root, 'no_face.png'),
                   tiny.face_like_image(50, 70, seed=2))
  tiny.write_image(os.path.join(root, 'small_face.png'),
                   tiny.face_like_image(80, 80, seed=3))
  with open(os.path.join(root, 'broken.jpg'), 'wb') as f:
    f.write(b'not a jpeg')
  return inputs.list_inputs(root)


DETECTOR = _FakeDetector({(90, 120): [30, 20, 50, 56],
                          (160, 120): [20, 40, 80, 90],
                          (80, 80): [35, 35, 10, 12]})  # crop 2*6 = 12 px


class SplitTest(unittest.TestCase):

  def test_shares_follow_the_fractions_and_names_keep_their_split(self):
    names = [f'img_{i}' for i in range(4000)]
    splits = [dataset.split_of(n, 0.1, 0.2) for n in names]
    for split, share in (('val', 0.1), ('test', 0.2), ('train', 0.7)):
      got = splits.count(split) / len(names)
      sigma = (share * (1 - share) / len(names)) ** 0.5
      self.assertLess(abs(got - share), 4 * sigma, split)
    self.assertEqual(splits, [dataset.split_of(n, 0.1, 0.2) for n in names])
    reseeded = [dataset.split_of(n, 0.1, 0.2, seed=1) for n in names]
    self.assertNotEqual(splits, reseeded)
    self.assertEqual({dataset.split_of(n, 0.0, 0.0) for n in names},
                     {'train'})

  def test_bad_fractions(self):
    for val, test in ((-0.1, 0.1), (0.1, 1.0), (0.6, 0.4)):
      with self.assertRaises(UserError):
        dataset.check_fractions(val, test)
    dataset.check_fractions(0.0, 0.99)


class WriteCropsTest(unittest.TestCase):

  def setUp(self):
    super().setUp()
    self.tmp = tempfile.mkdtemp()
    self.images = _photos(os.path.join(self.tmp, 'photos'))
    self.out = os.path.join(self.tmp, 'data')

  def test_face_crops_splits_skips_and_the_training_loader(self):
    summary = dataset.write_crops(self.images, self.out, 64, DETECTOR,
                                  val_fraction=0.0, test_fraction=0.0)
    self.assertEqual(summary['written'], {'train': 2, 'val': 0, 'test': 0})
    self.assertEqual(summary['skipped_by_reason'], {
        inputs.UNREADABLE: 1, inputs.NO_FACE: 1, inputs.CROP_TOO_SMALL: 1})
    with open(os.path.join(self.out, dataset.SUMMARY_FILE),
              encoding='utf-8') as f:
      self.assertEqual(json.load(f), summary)
    train = os.path.join(self.out, 'train')
    self.assertEqual(sorted(os.listdir(train)),
                     ['face_one.png', 'sub_dir_face_two.png'])
    # The crop is the demo's face crop of that photo, 8-bit.
    photo = inputs.read_image(self.images[1].path)  # 'face one.png'
    self.assertEqual(self.images[1].name, 'face_one')
    want = inputs.prepare(photo, 64, DETECTOR).image
    got = np.asarray(Image.open(os.path.join(train, 'face_one.png')))
    self.assertEqual(got.shape, (64, 64, 3))
    np.testing.assert_allclose(got / 255.0, want, atol=0.5 / 255 + 1e-6)
    records, skipped = image_files.scan_collection(train, None,
                                                   image_size=64)
    self.assertEqual((len(records), len(skipped)), (2, 0))

  def test_a_detector_error_skips_that_photo(self):
    class Picky(_FakeDetector):
      def detect(self, image):
        if image.shape[0] == 160:
          raise RuntimeError('odd photo')
        return super().detect(image)

    summary = dataset.write_crops(self.images, self.out, 64,
                                  Picky(DETECTOR.boxes), 0.0, 0.0)
    self.assertEqual(summary['written']['train'], 1)
    self.assertIn({'path': self.images[-1].path, 'reason':
                   inputs.DETECTION_FAILED, 'detail': 'RuntimeError'},
                  summary['skipped'])

  def test_square_crops_without_a_detector(self):
    summary = dataset.write_crops(self.images, self.out, 32, None, 0.3, 0.3)
    self.assertEqual(sum(summary['written'].values()), 4)
    self.assertEqual(summary['skipped_by_reason'], {inputs.UNREADABLE: 1})
    for item in self.images:
      if item.name == 'broken':
        continue
      split = dataset.split_of(item.name, 0.3, 0.3)
      path = os.path.join(self.out, split, item.name + '.png')
      self.assertEqual(Image.open(path).size, (32, 32), item.path)

  def test_refuses_a_used_folder_unless_overwrite(self):
    dataset.write_crops(self.images, self.out, 32)
    old = os.path.join(self.out, 'train', 'old.png')
    tiny.write_image(old, tiny.face_like_image(32, 32))
    with self.assertRaisesRegex(UserError, 'already holds images in train'):
      dataset.write_crops(self.images, self.out, 32)
    self.assertTrue(os.path.exists(old))
    dataset.write_crops(self.images, self.out, 32, overwrite=True)
    self.assertFalse(os.path.exists(old))

  def test_a_full_disk_is_one_user_error_and_leaves_no_torn_file(self):
    real_save, calls = Image.Image.save, []

    def save(image, path, *args, **kwargs):
      calls.append(path)
      if len(calls) == 2:
        real_save(image, path, *args, **kwargs)  # half a file, then full
        raise OSError(errno.ENOSPC, 'No space left on device')
      return real_save(image, path, *args, **kwargs)

    with mock.patch.object(Image.Image, 'save', save):
      with self.assertRaisesRegex(
          UserError, r'Cannot write .*: No space left on device; the 1 '
          r'crop\(s\) written before it are complete'):
        dataset.write_crops(self.images, self.out, 32)
    left = [f for _, _, files in os.walk(self.out) for f in files]
    self.assertEqual(len(left), 1, left)
    self.assertTrue(left[0].endswith('.png'), left)

  def test_nothing_written_and_bad_size(self):
    broken = [inputs.InputImage(os.path.join(self.tmp, 'photos',
                                             'broken.jpg'), 'broken')]
    with self.assertRaisesRegex(UserError, 'No image written: all 1 skipped '
                                r'\(not a readable image 1'):
      dataset.write_crops(broken, self.out, 32)
    with self.assertRaisesRegex(UserError, 'at least 16'):
      dataset.write_crops(self.images, self.out, 8)

  def test_report_names_counts_skips_and_the_training_command(self):
    summary = {'written': {'train': 8, 'val': 1, 'test': 1},
               'num_skipped': 2, 'skipped_by_reason': {inputs.NO_FACE: 2}}
    text = dataset.report(summary, 'data/x', ['configs/train_celeba.yml',
                                              'configs/loose_framing.yml'])
    self.assertIn('10 crop(s) written to data/x (train 8, val 1, test 1); '
                  '2 skipped (no face found 2;', text)
    self.assertTrue(text.endswith(
        'tfunsup3d-train --config=configs/train_celeba.yml '
        '--config=configs/loose_framing.yml '
        '--train_val_data_dir=data/x --test_data_dir=data/x/test'), text)


  def test_report_without_a_test_split_trains_without_one(self):
    # It named a test folder the tool never wrote, which the checkpoint's
    # config then records for tfunsup3d-test.
    summary = {'written': {'train': 9, 'val': 1, 'test': 0},
               'num_skipped': 0, 'skipped_by_reason': {}}
    text = dataset.report(summary, 'data/x')
    self.assertTrue(text.endswith(
        'tfunsup3d-train --train_val_data_dir=data/x --test_data_dir=none'),
                    text)

if __name__ == '__main__':
  unittest.main()
