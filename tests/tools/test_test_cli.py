"""Tests of tfunsup3d-test: result files, scores file, summary line."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
from PIL import Image
import pytest

from tests import fixtures
from tests import tiny
from tfunsup3d import config
from tfunsup3d.errors import CheckpointError
from tfunsup3d.model import Unsup3D
from tfunsup3d.tools import flags as tool_flags
from tfunsup3d.train import checkpoints, evaluate, optimizers

ROOT = pathlib.Path(__file__).resolve().parents[2]
PNG_SUFFIXES = (
    'input_image', 'canonical_albedo', 'canonical_image', 'recon_image',
    'recon_image_flip', 'canonical_depth', 'recon_depth',
    'canonical_diffuse_shading', 'canonical_normal', 'recon_normal',
    'conf_map_l1', 'conf_map_l1_flip', 'conf_map_percl',
    'conf_map_percl_flip',
    # Also written by the reference:
    'input_image_symline', 'depth_gt', 'normal_gt')
TXT_SUFFIXES = ('canonical_light', 'viewpoint')
SUMMARY = re.compile(r'^SIDE \(x1e-2\): \d+\.\d+ ± \d+\.\d+, '
                     r'MAD \(deg\): \d+\.\d+ ± \d+\.\d+$', re.M)


@pytest.fixture(scope='module')
def run_dir(tmp_path_factory):
  """A tfunsup3d run directory (untrained tiny model) and a GT test set."""
  tmp = tmp_path_factory.mktemp('test_cli')
  data = tiny.write_dataset(str(tmp / 'data'), n_train=0, n_val=0, n_test=5)
  keras.utils.set_random_seed(0)
  cfg = tiny.tiny_config(data, str(tmp / 'run'))
  model = Unsup3D(cfg)
  ckpts = checkpoints.Checkpoints(
      cfg.checkpoint_dir, model, optimizers.build_optimizers(
          model.networks, cfg.resolved()))
  ckpts.write_config(cfg)
  ckpts.save(1, 2, 0, {})
  return cfg


def _read_scores(path):
  with open(path, encoding='utf-8') as f:
    header = [next(f) for _ in range(3)]
  return header, np.loadtxt(path, delimiter=',', ndmin=2)


def test_cli_writes_every_result_file_and_scores(run_dir, tmp_path):
  cfg = run_dir
  out = tmp_path / 'results'
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
  env.pop(tool_flags.DEBUG_ENV, None)
  proc = subprocess.run(
      [sys.executable, '-m', 'tfunsup3d.tools.test',
       f'--checkpoint_dir={cfg.checkpoint_dir}',
       f'--test_data_dir={cfg.test_data_dir}', '--load_gt_depth=true',
       '--batch_size=4', '--jit_compile=false', f'--test_result_dir={out}'],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert SUMMARY.search(proc.stdout), proc.stdout
  for suffix in PNG_SUFFIXES + TXT_SUFFIXES:
    ext = '.txt' if suffix in TXT_SUFFIXES else '.png'
    names = sorted(os.listdir(out / suffix))
    assert names == [f'{i:05d}_{suffix}{ext}' for i in range(1, 6)], suffix
  depth = Image.open(out / 'recon_depth' / '00001_recon_depth.png')
  assert depth.mode.startswith('I') and depth.size == (64, 64)  # 16-bit.
  assert Image.open(out / 'canonical_image' / '00005_canonical_image.png'
                    ).mode == 'RGB'
  assert Image.open(out / 'conf_map_l1' / '00002_conf_map_l1.png').mode == 'L'
  light = np.loadtxt(out / 'canonical_light' / '00003_canonical_light.txt')
  view = np.loadtxt(out / 'viewpoint' / '00003_viewpoint.txt')
  assert light.shape == (5,) and view.shape == (6,)
  header, scores = _read_scores(out / 'eval_scores.txt')
  assert header[0] == '# MAE_masked, MSE_masked, SIE_masked, NorErr_masked\n'
  mean = [float(x) for x in header[1][len('# Mean: '):].split(',\t')]
  std = [float(x) for x in header[2][len('# Std: '):].split(',\t')]
  assert scores.shape == (5, 4)
  np.testing.assert_allclose(mean, scores.mean(0), rtol=1e-6, atol=1e-8)
  np.testing.assert_allclose(std, scores.std(0, ddof=1), rtol=1e-5,
                             atol=1e-8)
  assert np.all(np.isfinite(scores))
  with open(out / 'image_names.txt', encoding='utf-8') as f:
    assert f.readline() == '00001 000_image\n'


def test_write_images_false_writes_scores_only(run_dir, tmp_path):
  cfg = config.from_dict(dict(run_dir.to_dict(),
                              test_result_dir=str(tmp_path / 'r'),
                              checkpoint_name='ckpt-2'))
  result = evaluate.test(cfg, write_images=False)
  assert sorted(os.listdir(tmp_path / 'r')) == ['eval_scores.txt',
                                               'image_names.txt']
  assert result['scores'].shape == (5, 4)
  assert result['checkpoint'].endswith('ckpt-2')
  assert SUMMARY.match(result['summary']) and result['note'] is None


def test_unread_depth_maps_are_pointed_out(run_dir, tmp_path):
  cfg = config.from_dict(dict(run_dir.to_dict(), load_gt_depth=False,
                              test_result_dir=str(tmp_path / 'r')))
  result = evaluate.test(cfg, write_images=False)
  assert result['scores'] is None and result['summary'] is None
  assert result['note'] == (
      f'No depth scores: {cfg.test_data_dir}/depth holds depth maps, but '
      'load_gt_depth is false (add --load_gt_depth=true to score them).')
  flat = tiny.write_dataset(str(tmp_path / 'flat'), n_train=0, n_val=0,
                            n_test=2, with_depth=False)
  cfg = config.from_dict(dict(cfg.to_dict(), test_data_dir=flat + '/test'))
  assert evaluate.test(cfg, write_images=False)['note'] is None


def test_a_missing_test_folder_points_to_the_trained_one(run_dir, tmp_path):
  cfg = config.from_dict(dict(run_dir.to_dict(), load_gt_depth=False,
                              test_data_dir=str(tmp_path / 'none')))
  with pytest.raises(FileNotFoundError) as info:
    evaluate.test(cfg, write_images=False)
  assert str(info.value).endswith(
      f'. The checkpoint was trained with its test split in '
      f'{run_dir.test_data_dir}: pass --test_data_dir={run_dir.test_data_dir}'
      ' --load_gt_depth=true.'), info.value
  assert str(tmp_path / 'none') in str(info.value)


def test_missing_checkpoint_is_a_clear_error(tmp_path):
  cfg = config.from_dict({'checkpoint_dir': str(tmp_path / 'none')})
  with pytest.raises(CheckpointError, match='No checkpoint in') as info:
    evaluate.test(cfg)
  assert '--checkpoint' not in str(info.value)  # tfunsup3d-test has none.


def test_reference_checkpoint_reproduces_reference_scores(tmp_path):
  """The authors' code's scores for the fixture's two 8-bit face images."""
  fixtures.require_reference(None, 'ckpt_legacy_trainer.pth', 'inputs.npz')
  inputs = fixtures.reference_inputs()
  ref = fixtures.reference_outputs()
  for sub in ('image', 'depth'):
    os.makedirs(tmp_path / 'test' / sub)
  for i in range(2):  # The third (noise) image is not 8-bit exact.
    Image.fromarray(np.uint8(np.round(inputs['images_nhwc'][i] * 255))).save(
        tmp_path / 'test' / 'image' / f'{i}_image.png')
    p = np.uint16(np.round(inputs['depth_gt_p'][i, 0] * 65535))
    Image.fromarray(p).save(tmp_path / 'test' / 'depth' / f'{i}_depth.png')
  cfg = config.from_dict({
      'checkpoint_dir': fixtures.REFERENCE_DIR,
      'checkpoint_name': 'ckpt_legacy_trainer.pth',
      'test_data_dir': str(tmp_path / 'test'),
      'test_result_dir': str(tmp_path / 'results'), 'load_gt_depth': True,
      'border_depth': 1.04, 'z_translation_range': 0.1,
      'rot_center_depth': 1.0, 'jit_compile': False, 'batch_size': 2})
  scores = evaluate.test(cfg, write_images=False)['scores']
  want = np.stack([ref[k][:2] for k in ('acc_mae_masked', 'acc_mse_masked',
                                        'acc_sie_masked',
                                        'acc_normal_masked')], 1)
  np.testing.assert_allclose(scores, want, rtol=2e-3)
