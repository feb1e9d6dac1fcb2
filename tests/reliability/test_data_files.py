"""Data files with odd names and sizes: trained on correctly, or skipped with
one counted warning naming them (issue 25 items 5, 6 and 7).

Names with a newline, '%', '*', '[', '?', a leading '-' and spaces go
through the pipeline; a non-UTF-8 name, an image far smaller than
image_size, a strongly non-square image and a depth map of another size than
its image are skipped, each named once in one warning (not once per use),
and so is a FIFO named like an image (opening it would wait forever).
"""

import os
import re

import numpy as np
from PIL import Image

from tests.reliability import common
from tests import tiny

ODD = ['a\nb', '100%', 'st*r', '[x]', 'what?', '-dash', 'two  spaces ']


def _pair(split, name, image, depth):
  Image.fromarray(image).save(os.fsencode(
      os.path.join(split, 'image', name + '_image.png')))
  Image.fromarray(depth).save(os.fsencode(
      os.path.join(split, 'depth', name + '_depth.png')))


def _write(root):
  rng = np.random.default_rng(0)
  split = os.path.join(root, 'train')
  os.makedirs(os.path.join(split, 'image'))
  os.makedirs(os.path.join(split, 'depth'))
  for name in ODD + ['plain']:  # 8 usable pairs: 2 steps of 4.
    _pair(split, name, tiny.smooth_image(rng), tiny.smooth_depth(rng))
  _pair(split, 'bad\udcffname', tiny.smooth_image(rng), tiny.smooth_depth(rng))
  _pair(split, 'small', tiny.smooth_image(rng, 16), tiny.smooth_depth(rng, 16))
  wide = np.asarray(Image.fromarray(tiny.smooth_image(rng)).resize((128, 64)))
  _pair(split, 'wide', wide, np.zeros((64, 128), np.uint8))
  _pair(split, 'mismatch', tiny.smooth_image(rng), tiny.smooth_depth(rng, 96))
  _pair(split, 'fifo', tiny.smooth_image(rng), tiny.smooth_depth(rng))
  os.remove(os.path.join(split, 'image', 'fifo_image.png'))
  os.mkfifo(os.path.join(split, 'image', 'fifo_image.png'))  # Never opened.


def test_odd_names_train_and_bad_sizes_are_skipped_once(tmp_path):
  data = tmp_path / 'data'
  _write(str(data))
  work = tmp_path / 'cwd'
  work.mkdir()
  result = common.run('train', *common.tiny_flags(
      train_val_data_dir=data, checkpoint_dir=tmp_path / 'run'), cwd=work)
  assert result.returncode == 0, result.stderr[-4000:]
  assert 'Traceback' not in result.stderr
  assert 'Trained 1 epochs (2 steps)' in result.stdout, result.stdout
  warnings = re.findall(r'train split \(.*\): (\d+) file\(s\) skipped \((.*)\)',
                        result.stderr)
  assert warnings == [('5', '1 depth size differs from image, 1 far smaller '
                       'than image_size, 1 not square, 1 path not UTF-8, '
                       '1 unreadable')], result.stderr[-4000:]
  for shown in ('bad\\xffname_image.png: path not UTF-8 (rename it)',
                'small_image.png: far smaller than image_size (16x16 < 0.5 x '
                'image_size 64)',
                'wide_image.png: not square (128x64: aspect ratio over 1.25',
                'mismatch_depth.png: depth size differs from image (96x96, '
                'image 64x64)',
                'fifo_image.png: unreadable (not a regular file (a FIFO, '
                'socket or device))'):
    assert shown in result.stderr, shown
  assert not common.listing(work)
