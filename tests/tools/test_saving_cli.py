"""The one loading door as a user meets it: console scripts in subprocesses.

A converted model decomposes exactly as its source (both directions, settings
the weights cannot reveal included); a network size that contradicts the
checkpoint is one line and exit 2; a run directory whose newest checkpoint is
truncated loads the previous one with a warning in tfunsup3d-test, -demo and
-export, and is one line and exit 2 when no checkpoint is readable.
"""

import os

import numpy as np
import pytest

from tests import tiny
from tests import tiny as train_tiny
from tfunsup3d import config as config_lib
from tfunsup3d import saving

HIDDEN = dict(gn_channels=4, z_translation_range=0.3, lam_depth_sm=0.05,
              min_depth=0.8, max_depth=1.25)
WARNING = 'Skipped unloadable checkpoint'


def _images():
  return np.stack([tiny.face_like_image(64, 64, seed=s) for s in (0, 1)]
                  ).astype(np.float32) / 255.0


def _assert_same_outputs(model, source, images):
  got, want = model.decompose(images), source.decompose(images)
  for key in ('canon_depth', 'canon_albedo', 'view', 'recon_im',
              'conf_sigma_l1'):
    np.testing.assert_allclose(got[key], want[key], atol=1e-5, rtol=0,
                               err_msg=key)


def _no_traceback(proc):
  assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]


@pytest.fixture(scope='module')
def source(workdir):
  model = tiny.tiny_model(seed=4, **HIDDEN)
  directory = os.path.join(workdir, 'source')
  saving.save(model, directory)
  return model, directory


@pytest.fixture(scope='module')
def two_checkpoints(workdir, source):
  """A run directory: ckpt-1 (the source's weights) and a truncated ckpt-2
  (other weights), plus a test split and an image."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model, _ = source
  run = os.path.join(workdir, 'run')
  os.makedirs(run)
  saving.write_text_atomic(os.path.join(run, saving.CONFIG_FILE),
                           model.cfg.to_yaml())
  other = tiny.tiny_model(seed=5, **HIDDEN)
  for number, weights in ((1, model), (2, other)):
    newest = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=weights), run, max_to_keep=2,
        checkpoint_name=saving.PREFIX).save(checkpoint_number=number)
  data = newest + '.data-00000-of-00001'
  with open(data, 'r+b') as f:
    f.truncate(os.path.getsize(data) // 2)
  train_tiny.write_split(workdir, 'test', 2)
  tiny.write_image(os.path.join(workdir, 'face.png'),
                   tiny.face_like_image(64, 64))
  return run


def test_convert_round_trip_keeps_the_model(workdir, source):
  model, directory = source
  pth = os.path.join(workdir, 'q.pth')
  back = os.path.join(workdir, 'back')
  for args in ([f'--input={directory}', f'--output={pth}'],
               [f'--input={pth}', f'--output={back}']):
    proc = tiny.run_script('convert', *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
  images = _images()
  _assert_same_outputs(saving.load(pth), model, images)
  loaded = saving.load(back)
  _assert_same_outputs(loaded, model, images)
  for key, value in HIDDEN.items():
    assert getattr(loaded.cfg, key) == value, key
  assert config_lib.load(os.path.join(back, saving.CONFIG_FILE)
                         ).checkpoint_dir == back


def test_convert_shape_mismatch_is_one_line(workdir, source):
  _, directory = source
  out = os.path.join(workdir, 'never.pth')
  proc = tiny.run_script('convert', f'--input={directory}', f'--output={out}',
                         '--nf_depth=32')
  tiny.assert_one_line_error(proc, 'convert', 'nf_depth=16', 'nf_depth=32',
                             'drop that override')
  _no_traceback(proc)
  assert not os.path.exists(out)


def _script_args(script, workdir, run):
  if script == 'test':
    return [f'--checkpoint_dir={run}',
            f'--test_data_dir={os.path.join(workdir, "test")}',
            f'--test_result_dir={os.path.join(workdir, "test_out")}',
            '--batch_size=2', '--jit_compile=false']
  if script == 'demo':
    return [f'--checkpoint={run}', f'--input={workdir}/face.png',
            f'--output_dir={workdir}/demo_out', '--detect=off',
            '--noanimations', '--nomesh', '--output_size=64']
  return [f'--checkpoint={run}', f'--export_dir={workdir}/exported',
          '--name=fallback']


@pytest.mark.parametrize('script', [
    'test', pytest.param('demo', marks=pytest.mark.slow),
    pytest.param('export', marks=pytest.mark.slow)])
def test_truncated_newest_loads_the_previous(workdir, source, two_checkpoints,
                                             script):
  run = two_checkpoints
  proc = tiny.run_script(script, *_script_args(script, workdir, run))
  assert proc.returncode == 0, proc.stderr[-3000:]
  _no_traceback(proc)
  warnings = [line for line in proc.stderr.splitlines() if WARNING in line]
  assert len(warnings) == 1, proc.stderr[-3000:]
  assert os.path.join(run, 'ckpt-2') in warnings[0]
  assert f'loaded {os.path.join(run, "ckpt-1")}' in warnings[0]
  if script == 'export':  # The exported weights are ckpt-1's.
    model, _ = source
    exported = saving.load(os.path.join(workdir, 'exported', 'fallback', '1'))
    for a, b in zip(model.weights, exported.weights):
      np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_truncated_newest_from_checkpoint(source, two_checkpoints):
  from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
  model, _ = source
  loaded = Unsup3D.from_checkpoint(two_checkpoints)
  for a, b in zip(model.weights, loaded.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize('script', ['test', 'demo', 'export'])
def test_no_readable_checkpoint_is_one_line(workdir, two_checkpoints, script):
  broken = os.path.join(workdir, 'broken')
  if not os.path.isdir(broken):
    import shutil  # pylint: disable=g-import-not-at-top
    shutil.copytree(two_checkpoints, broken)
    os.remove(os.path.join(broken, 'ckpt-1.index'))
  proc = tiny.run_script(script, *_script_args(script, workdir, broken))
  tiny.assert_one_line_error(proc, script,
                             f'No checkpoint in {broken} can be loaded',
                             'ckpt-1.index is missing', 'ckpt-2')
  _no_traceback(proc)
