"""tfunsup3d-export as a subprocess."""

import json
import os

import pytest

from tests import tiny


def _assert_one_line_error(proc, *fragments):
  tiny.assert_one_line_error(proc, 'export', *fragments)


def test_helpfull_lists_export_flags():
  proc = tiny.run_script('export', '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for flag in ('--checkpoint', '--name', '--version', '--export_dir',
               '--tflite', '--tflite_variants', '--encoded_crop'):
    assert flag in proc.stdout, flag


def test_nothing_to_export():
  _assert_one_line_error(
      tiny.run_script('export', '--nosaved_model', '--notflite'),
      'Nothing to export')


def test_tflite_flags_without_tflite():
  # They were ignored: a SavedModel and no TFLite file, status 0.
  _assert_one_line_error(
      tiny.run_script('export', '--tflite_models=netD',
                      '--tflite_num_images=2'),
      '--tflite_models, --tflite_num_images without --tflite')


def test_bad_variant():
  _assert_one_line_error(
      tiny.run_script('export', '--tflite', '--tflite_variants=int4'),
      'int4')


@pytest.mark.parametrize('version', ['-1', str(2 ** 63)])
def test_version_outside_int64(version):  # 2^63 was written, unservable
  _assert_one_line_error(tiny.run_script('export', f'--version={version}'),
                         '--version must be in [0, 2^63 - 1]')


def test_tflite_num_images_below_one_even_without_tflite_images():
  # Refused when parsed: it was checked only once images were to be read.
  _assert_one_line_error(
      tiny.run_script('export', '--tflite', '--tflite_num_images=0'),
      '--tflite_num_images=0')


def test_missing_checkpoint(workdir):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={workdir}/none'),
      'Checkpoint not found')


def test_no_checkpoint_anywhere(workdir):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint_dir={workdir}/empty_results'),
      'No checkpoint', 'Or pass --checkpoint=DIR_or_FILE.pth.')


def test_checkpoint_of_another_config(workdir, checkpoint):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={checkpoint}',
                      '--nf_encoder=8'),
      'nf_encoder')


@pytest.mark.slow
def test_tflite_only_netl(workdir, checkpoint):
  base = os.path.join(workdir, 'models')
  proc = tiny.run_script('export', f'--checkpoint={checkpoint}',
                         f'--export_dir={base}', '--nosaved_model', '--tflite',
                         '--tflite_models=netL', '--tflite_variants=float32')
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = os.path.join(base, 'tiny_tflite', '1')
  assert sorted(os.listdir(out)) == ['netL_float32.tflite',
                                     'tflite_report.json']
  with open(os.path.join(out, 'tflite_report.json')) as f:
    report = json.load(f)
  assert report['models']['netL']['variants']['float32']['max_abs_error'] < 1e-4
  assert '| netL | float32 |' in proc.stdout
  assert not os.path.exists(os.path.join(base, 'tiny'))


@pytest.mark.parametrize('models, fragment', [
    ('netX,netD', "Unknown TFLite model(s) ['netX']"),
    ('', 'No TFLite model named')])
def test_unknown_tflite_model_is_refused_before_the_saved_model(
    workdir, checkpoint, models, fragment):
  # The SavedModel used to be written first, then the name refused.
  base = os.path.join(workdir, f'models_{len(models)}')
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={checkpoint}',
                      f'--export_dir={base}', '--tflite',
                      f'--tflite_models={models}'),
      fragment, 'choose from')
  assert not os.path.exists(base)


def test_tflite_images_must_be_a_folder_with_images(workdir, checkpoint):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={checkpoint}', '--tflite',
                      f'--tflite_images={workdir}/no_such_folder'),
      '--tflite_images: no such folder')
  folder = os.path.join(workdir, 'broken_images')
  os.makedirs(folder, exist_ok=True)
  with open(os.path.join(folder, 'a.png'), 'wb') as f:
    f.write(b'not a png')
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={checkpoint}', '--tflite',
                      f'--tflite_images={folder}'),
      'no readable image', '1 image files, 1 unreadable')


@pytest.mark.slow
def test_tflite_measured_on_the_users_images(workdir, checkpoint):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  folder = os.path.join(workdir, 'photos')
  os.makedirs(os.path.join(folder, 'sub'), exist_ok=True)
  rng = np.random.default_rng(0)
  for name in ('b.png', 'sub/a.jpg', 'c.png'):
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), np.uint8)).save(
        os.path.join(folder, name))
  with open(os.path.join(folder, 'bad.png'), 'wb') as f:
    f.write(b'not a png')
  base = os.path.join(workdir, 'models_images')
  proc = tiny.run_script('export', f'--checkpoint={checkpoint}',
                         f'--export_dir={base}', '--nosaved_model', '--tflite',
                         '--tflite_models=netV', '--tflite_variants=float32',
                         f'--tflite_images={folder}', '--tflite_num_images=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  # Sorted: b.png, then bad.png (skipped, counted), then c.png; sub/a.jpg
  # is not reached.
  assert 'skipped' in proc.stdout and 'bad.png' in proc.stdout
  assert 'measured on 2 images' in proc.stdout
  assert '(1 unreadable, skipped)' in proc.stdout
  with open(os.path.join(base, 'tiny_tflite', '1', 'tflite_report.json')) as f:
    report = json.load(f)
  assert report['num_test_images'] == 2
  assert report['test_images'] == os.path.abspath(folder)
  result = report['models']['netV']['variants']['float32']
  assert result['max_abs_error'] < 1e-4 and result['seconds_per_image'] > 0


@pytest.mark.slow
def test_saved_model_versions(workdir, checkpoint):
  base = os.path.join(workdir, 'served')
  for version in ('1', '2'):
    proc = tiny.run_script('export', f'--checkpoint={checkpoint}',
                           f'--export_dir={base}', '--name=faces')
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isfile(os.path.join(base, 'faces', version,
                                       'saved_model.pb'))
  proc = tiny.run_script('export', f'--checkpoint={checkpoint}',
                         f'--export_dir={base}', '--name=faces', '--version=2')
  _assert_one_line_error(proc, 'exists')
  with open(os.path.join(base, 'faces', '1', 'assets', 'tfunsup3d.json')) as f:
    meta = json.load(f)
  assert meta['source_checkpoint'] == os.path.abspath(checkpoint)
  assert meta['version'] == 1
