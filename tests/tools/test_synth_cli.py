"""tfunsup3d-synth run as a subprocess: success, refusals, bad flags."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
import pytest

from tfunsup3d import config as config_lib
from tfunsup3d.data import images
from tfunsup3d.tools import flags as tool_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _run(*args):
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(ROOT)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
  env.pop(tool_flags.DEBUG_ENV, None)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return subprocess.run(
      [sys.executable, '-m', 'tfunsup3d.tools.synth', *args], cwd=ROOT,
      env=env, capture_output=True, text=True, timeout=300, check=False)


def _error_lines(proc):
  return [line for line in proc.stderr.splitlines()
          if line.startswith('tfunsup3d-synth: error:')]


def _listing(root):
  return sorted(str(p.relative_to(root)) for p in pathlib.Path(root).rglob('*'))


@pytest.fixture(scope='module')
def written(tmp_path_factory):
  out = tmp_path_factory.mktemp('synth') / 'data'
  proc = _run(f'--out_dir={out}', '--num_train=8', '--num_val=4',
              '--num_test=4')
  return out, proc


def test_writes_the_layout_the_loader_reads(written):
  out, proc = written
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'wrote' in proc.stdout
  cfg = config_lib.Config(train_val_data_dir=str(out), load_gt_depth=True,
                          num_workers=1)
  for split, n in (('train', 8), ('val', 4), ('test', 4)):
    records, skipped = images.list_split(cfg, split)
    assert len(records) == n and skipped.count == 0
    assert (out / split / 'factors.npz').is_file()
  assert (out / 'train' / 'depth' / '000007_depth.png').is_file()


def test_refuses_a_non_empty_dir_without_overwrite(written):
  out, _ = written
  before = _listing(out)
  proc = _run(f'--out_dir={out}', '--num_train=2', '--num_val=0',
              '--num_test=0', '--image_size=16')
  assert proc.returncode == 2, (proc.stdout, proc.stderr[-3000:])
  lines = _error_lines(proc)
  assert len(lines) == 1 and 'overwrite' in lines[0], proc.stderr[-3000:]
  assert _listing(out) == before


# Small sets: 3 training and 1 test image of 16 px. `base` is written once
# with these flags (the face's default zoom, 1.45); each test below writes
# its variant beside it.
_SMALL = ('--num_train=3', '--num_val=0', '--num_test=1', '--image_size=16')


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  out = tmp_path_factory.mktemp('synth_small') / 'base'
  proc = _run(f'--out_dir={out}', *_SMALL)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out


def test_overwrite_replaces_only_the_splits_asked_for(base, tmp_path):
  out = tmp_path / 'data'
  shutil.copytree(base, out)
  proc = _run(f'--out_dir={out}', *_SMALL, '--num_train=2', '--overwrite',
              '--seed=3')  # the last --num_train counts
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert len(os.listdir(out / 'train' / 'image')) == 2
  assert len(os.listdir(out / 'test' / 'image')) == 1
  assert not (out / 'val').exists()


def test_param_range_changes_only_that_parameter(base, tmp_path):
  varied = tmp_path / 'varied'
  proc = _run(f'--out_dir={varied}', *_SMALL, '--param_range=head_amp:0.9:1',
              '--param_range=light_a:0.3:0.3')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with np.load(base / 'train' / 'factors.npz') as a, \
      np.load(varied / 'train' / 'factors.npz') as b:
    np.testing.assert_array_equal(a['view'], b['view'])  # same stream
    np.testing.assert_allclose(b['light_a'], 0.3)
    assert not np.allclose(a['light_a'], 0.3)
    # A head twice as high or more: a deeper relief, nearer the camera.
    spread = lambda d: np.ptp(d, axis=(1, 2)).mean()
    assert spread(b['canon_depth']) > spread(a['canon_depth']) + 0.02
    assert b['canon_depth'].min() < a['canon_depth'].min()


def test_zoom_fills_more_of_the_frame(base, tmp_path):
  loose = tmp_path / 'loose'
  proc = _run(f'--out_dir={loose}', *_SMALL, '--zoom=1')
  assert proc.returncode == 0, proc.stderr[-3000:]
  with np.load(base / 'train' / 'factors.npz') as a, \
      np.load(loose / 'train' / 'factors.npz') as b:
    np.testing.assert_array_equal(a['param_zoom'], [1.45] * 3)
    np.testing.assert_array_equal(b['param_zoom'], [1.0] * 3)
    np.testing.assert_array_equal(a['view'], b['view'])  # same stream
    assert a['face_mask'].mean() > b['face_mask'].mean() * 1.5


def test_car_category_with_its_defaults(tmp_path):
  out = tmp_path / 'cars'
  proc = _run(f'--out_dir={out}', '--category=car', '--num_train=3',
              '--num_val=0', '--num_test=2', '--image_size=16',
              '--param_range=body_w:0.7:0.7', '--max_roll=1', '--canvas=1.5')
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert 'wrote car set' in proc.stdout
  with np.load(out / 'test' / 'factors.npz') as z:
    meta = json.loads(str(z['meta']))
    np.testing.assert_array_equal(z['param_body_w'], [0.7, 0.7])
    assert z['canon_depth'].shape == (2, 24, 24)  # the canvas: 1.5 x 16
  # The car's view defaults, with the flags given replacing its own.
  assert meta['options'] == dict(
      category='car', max_yaw=60.0, max_pitch=5.0, max_roll=1.0,
      max_translation=0.02, asymmetry=0.3, zoom=1.2, canvas=1.5,
      param_ranges=[['body_w', 0.7, 0.7]])
  with Image.open(out / 'test' / 'image' / '000000_image.png') as image:
    assert image.size == (16, 16)
  assert len(os.listdir(out / 'train' / 'depth')) == 3


@pytest.mark.parametrize('args, reason', [
    (['--category=boat'], 'category'),
    (['--category=car', '--param_range=head_pow:1:2'], 'param_ranges'),
    (['--num_train=-1'], 'num_train'),
    (['--num_train=0', '--num_val=0', '--num_test=0'], 'Nothing to write'),
    (['--asymmetry=2'], 'asymmetry'),
    (['--zoom=0'], 'zoom'),
    (['--seed=-1'], 'seed'),
    (['--param_range=head_pow:2'], 'NAME:LO:HI'),
    (['--param_range=nose:0:1'], 'param_ranges'),
    (['--num_train=100000000000'], 'GiB of memory'),  # was a MemoryError
])
def test_bad_args_exit_2_with_one_line(tmp_path, args, reason):
  out = tmp_path / 'data'
  proc = _run(f'--out_dir={out}', *args)
  assert proc.returncode == 2, (proc.stdout, proc.stderr[-3000:])
  lines = _error_lines(proc)
  assert len(lines) == 1 and reason in lines[0], proc.stderr[-3000:]
  assert not out.exists()
