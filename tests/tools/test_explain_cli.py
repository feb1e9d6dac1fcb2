"""tfunsup3d-explain as a subprocess."""

import os

from PIL import Image
import pytest

from tests import tiny


def _assert_one_line_error(proc, *fragments):
  tiny.assert_one_line_error(proc, 'explain', *fragments)


def test_helpfull_lists_explain_flags():
  proc = tiny.run_script('explain', '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for flag in ('--input', '--methods', '--targets', '--smooth_samples',
               '--gradcam_layer'):
    assert flag in proc.stdout, flag


def test_bad_target(workdir):
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(
      tiny.run_script('explain', f'--input={path}', '--targets=light_z'),
      'light_z')


def test_output_size_out_of_bounds(workdir):  # 100000 was an OOM traceback
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(
      tiny.run_script('explain', f'--input={path}', '--output_size=100000'),
      '--output_size must be in [16, 1024]')


def test_input_not_found(workdir):
  _assert_one_line_error(
      tiny.run_script('explain', f'--input={workdir}/missing.jpg'),
      'not found')


@pytest.mark.slow
def test_explain_writes_grid(workdir):
  checkpoint = tiny.write_checkpoint(tiny.tiny_model(),
                                     os.path.join(workdir, 'ckpt'))
  path = tiny.write_image(os.path.join(workdir, 'face.png'),
                          tiny.face_like_image(80, 100))
  out = os.path.join(workdir, 'out')
  proc = tiny.run_script('explain', f'--input={path}',
                         f'--checkpoint={checkpoint}', f'--output_dir={out}',
                         '--detect=off', '--output_size=32',
                         '--smooth_samples=2')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with Image.open(os.path.join(out, 'face_explain.png')) as im:
    assert im.size == (32 * 6, 14 + 32 * 2)
