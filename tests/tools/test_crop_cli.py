"""tfunsup3d-crop run as a subprocess: a training folder, refusals, one-line
errors."""

import importlib.util
import json
import os

import numpy as np
from PIL import Image
import pytest

from tests import fixtures
from tests import tiny
from tfunsup3d import config as config_lib
from tfunsup3d.data import images as data_images


@pytest.fixture(name='photos')
def _photos(tmp_path):
  root = tmp_path / 'my photos'
  tiny.write_image(str(root / 'Ünïcode name.png'), tiny.face_like_image(90, 120))
  tiny.write_image(str(root / 'deeper' / 'b.jpg'),
                   tiny.face_like_image(200, 150, seed=1))
  tiny.write_image(str(root / 'c.webp'), tiny.face_like_image(64, 64, seed=2))
  (root / 'notes.txt').write_text('not an image')
  (root / 'truncated.png').write_bytes(b'\x89PNG\r\n\x1a\n' + b'\0' * 20)
  return root


def test_writes_a_folder_the_training_pipeline_reads(photos, tmp_path):
  out = tmp_path / 'data'
  proc = tiny.run_script('crop', f'--input={photos}', f'--output_dir={out}',
                         '--detect=off', '--image_size=64',
                         '--val_fraction=0', '--test_fraction=0')
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0] == (
      f'tfunsup3d-crop: 3 crop(s) written to {out} (train 3, val 0, test 0); '
      f'1 skipped (not a readable image 1; see {out}/crop_summary.json).')
  assert lines[1] == ('Train on them with: tfunsup3d-train '
                      f'--train_val_data_dir={out} --test_data_dir=none')
  with open(out / 'crop_summary.json', encoding='utf-8') as f:
    summary = json.load(f)
  assert summary['skipped'][0]['path'].endswith('truncated.png')
  assert not summary['face_detection']
  cfg = config_lib.load(None, {'train_val_data_dir': str(out)})
  assert data_images.count(cfg, 'train') == 3

  again = tiny.run_script('crop', f'--input={photos}', f'--output_dir={out}',
                          '--detect=off')
  tiny.assert_one_line_error(again, 'crop', f'{out} already holds images in '
                             'train', '--overwrite')


@pytest.mark.parametrize('args, fragments', [
    (('--detect=off',), ('--output_dir is required',)),
    (('--output_dir=OUT', '--input=/no/such/folder'),
     ('Input not found: /no/such/folder',)),
])
def test_bad_arguments_are_one_line(args, fragments, photos, tmp_path):
  args = [a.replace('OUT', str(tmp_path / 'o')) for a in args]
  if not any(a.startswith('--input') for a in args):
    args.append(f'--input={photos}')
  tiny.assert_one_line_error(tiny.run_script('crop', *args), 'crop',
                             *fragments)
  assert not (tmp_path / 'o').exists()


@pytest.mark.skipif(importlib.util.find_spec('mtcnn') is not None,
                    reason='mtcnn is installed: face detection would run')
def test_face_detection_without_mtcnn_names_the_extra(photos, tmp_path):
  tiny.assert_one_line_error(
      tiny.run_script('crop', f'--input={photos}',
                      f'--output_dir={tmp_path / "o"}'),
      'crop', 'needs the mtcnn package', 'tfunsup3d[demo]', '--detect=off')


@pytest.mark.skipif(importlib.util.find_spec('mtcnn') is None,
                    reason='mtcnn is not installed (the demo extra)')
def test_crops_a_real_face_out_of_a_loose_photo(tmp_path):
  # One of the reference's demo faces (a tight 64x64 crop), enlarged to
  # 160 px and placed off-centre on a 400x300 backdrop: the crop must find
  # it and frame it as tightly as the original.
  fixtures.require_reference(None, 'inputs.npz')
  with np.load(fixtures.reference_path('inputs.npz')) as z:
    face = z['images_nhwc'][0]
  big = np.asarray(Image.fromarray(np.uint8(face * 255)).resize(
      (160, 160), Image.BICUBIC))
  photo = np.full((300, 400, 3), 90, np.uint8)
  photo[50:210, 190:350] = big
  tiny.write_image(str(tmp_path / 'in' / 'loose.jpg'), photo, quality=95)
  out = tmp_path / 'data'
  proc = tiny.run_script('crop', f'--input={tmp_path / "in"}',
                         f'--output_dir={out}', '--test_fraction=0',
                         '--val_fraction=0')
  assert proc.returncode == 0, proc.stderr[-3000:]
  crop = np.asarray(Image.open(out / 'train' / 'loose.png')) / 255.0
  # As close to the tight original as a detector's box allows, and far
  # closer than the whole photo's centred square is.
  square = np.asarray(Image.fromarray(photo[:, 50:350]).resize(
      (64, 64), Image.BILINEAR)) / 255.0
  assert np.abs(crop - face).mean() < 0.5 * np.abs(square - face).mean()
