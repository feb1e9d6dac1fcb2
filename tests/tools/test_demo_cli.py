"""tfunsup3d-demo as a subprocess: bad inputs give one-line errors, exit 2;
a run on a synthetic image writes the outputs (slow)."""

import json
import os

import pytest

from tests import tiny


def _assert_one_line_error(proc, *fragments):
  tiny.assert_one_line_error(proc, 'demo', *fragments)


def test_helpfull_lists_demo_flags():
  proc = tiny.run_script('demo', '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  for flag in ('--input', '--checkpoint', '--output_dir', '--detect',
               '--output_size', '--num_frames', '--image_size'):
    assert flag in proc.stdout, flag


def test_missing_input_flag():
  _assert_one_line_error(tiny.run_script('demo', '--checkpoint=x'),
                         'No input')


def test_input_not_found(workdir):
  _assert_one_line_error(
      tiny.run_script('demo', f'--input={workdir}/nope.png'), 'not found')


def test_empty_folder(workdir):
  empty = os.path.join(workdir, 'empty')
  os.makedirs(empty, exist_ok=True)
  _assert_one_line_error(tiny.run_script('demo', f'--input={empty}'),
                         'No image files in folder')


def test_not_an_image(workdir):
  path = os.path.join(workdir, 'text.png')
  with open(path, 'w') as f:
    f.write('not an image')
  _assert_one_line_error(tiny.run_script('demo', f'--input={path}'),
                         'Not an image', 'text.png')


def test_bad_detect_value(workdir):
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(
      tiny.run_script('demo', f'--input={path}', '--detect=sometimes'),
      '--detect')


@pytest.mark.parametrize('flag, needle', [
    ('--fps=0', 'fps must be in (0, 100]'),  # was an OverflowError traceback
    ('--output_size=100000', 'output_size must be in [8, 1024]'),  # was OOM
    ('--num_frames=100000', 'num_frames must be in [1, 3600]'),  # was killed
])
def test_turntable_options_out_of_bounds(workdir, flag, needle):
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(tiny.run_script('demo', f'--input={path}', flag),
                         needle)


@pytest.mark.parametrize('flags, needle', [
    (('--noanimations', '--fps=24', '--num_frames=8'),
     '--num_frames, --fps without --animations: add --animations'),
    (('--noanimations', '--mp4'), '--mp4 without --animations'),
    (('--nomesh', '--texture=shaded'), '--texture without --mesh'),
])
def test_flags_of_a_mode_that_is_off(workdir, flags, needle):
  # They were ignored without a word.
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(tiny.run_script('demo', f'--input={path}', *flags),
                         needle)


def test_turning_off_what_is_off_is_no_error(workdir):
  # --nomp4 asks for nothing: the run goes on to the next check.
  _assert_one_line_error(
      tiny.run_script('demo', f'--input={workdir}/nope.png',
                      '--noanimations', '--nomp4'), 'not found')


def test_missing_checkpoint(workdir):
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(
      tiny.run_script('demo', f'--input={path}',
                      f'--checkpoint={workdir}/no_ckpt'),
      'Checkpoint not found')


def test_checkpoint_of_another_image_size(workdir, checkpoint):
  path = tiny.write_image(os.path.join(workdir, 'ok.png'))
  _assert_one_line_error(
      tiny.run_script('demo', f'--input={path}', f'--checkpoint={checkpoint}',
                      '--image_size=128'),
      'image_size=64', 'image_size=128')


@pytest.mark.slow
def test_demo_writes_outputs(workdir, checkpoint):
  folder = os.path.join(workdir, 'photos')
  tiny.write_image(os.path.join(folder, 'a.jpg'), tiny.face_like_image(90, 120))
  with open(os.path.join(folder, 'broken.jpg'), 'w') as f:
    f.write('x')
  out = os.path.join(workdir, 'out')
  proc = tiny.run_script('demo', f'--input={folder}',
                         f'--checkpoint={checkpoint}', f'--output_dir={out}',
                         '--detect=off', '--output_size=64', '--num_frames=3')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert '1 image(s) written' in proc.stdout and '1 skipped' in proc.stdout
  files = os.listdir(os.path.join(out, 'a'))
  for name in ('mesh.glb', 'mesh.obj', 'animation_normal.gif',
               'canonical_depth_16bit.png', 'factors.json'):
    assert name in files, name
  with open(os.path.join(out, 'summary.json')) as f:
    assert json.load(f)['num_skipped'] == 1
