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


def test_bad_variant():
  _assert_one_line_error(
      tiny.run_script('export', '--tflite', '--tflite_variants=int4'),
      'int4')


def test_missing_checkpoint(workdir):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint={workdir}/none'),
      'Checkpoint not found')


def test_no_checkpoint_anywhere(workdir):
  _assert_one_line_error(
      tiny.run_script('export', f'--checkpoint_dir={workdir}/empty_results'),
      'No checkpoint')


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
