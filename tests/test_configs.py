"""Tests of configs/*.yml: they load, and the train/test ones match the
reference's experiments/*.yml key for key."""

import glob
import os
import pathlib
import shutil
import subprocess

import pytest
import yaml

from tfunsup3d import config

ROOT = pathlib.Path(__file__).resolve().parents[1]
CONFIG_DIR = ROOT / 'configs'
REFERENCE_REPO = os.environ.get(
    'TFUNSUP3D_REFERENCE_REPO', '/work/.mirror/elliottwu+unsup3d/repo')
EXPERIMENTS = [f'{split}_{name}' for name in ('celeba', 'synface', 'cat',
                                              'syncar')
               for split in ('train', 'test')]


def _load(name):
  return config.load(str(CONFIG_DIR / f'{name}.yml'))


def test_all_expected_configs_exist():
  names = sorted(p.stem for p in CONFIG_DIR.glob('*.yml'))
  for name in EXPERIMENTS + ['quickstart']:
    assert name in names


@pytest.mark.parametrize(
    'path', sorted(glob.glob(str(CONFIG_DIR / '*.yml'))),
    ids=lambda p: os.path.basename(p))
def test_config_loads_without_unknown_keys(path):
  cfg = config.load(path)  # Strict: raises on unknown keys.
  resolved = cfg.resolved()
  assert resolved.border_depth is not None


def test_loose_framing_overlay_sets_only_the_loose_framing_keys():
  overlay = str(CONFIG_DIR / 'loose_framing.yml')
  assert sorted(config.load_yaml(overlay)) == sorted([
      'lam_view_cycle', 'view_cycle_max_yaw', 'min_yaw_std',
      'min_light_tilt_std', 'prior_start_step', 'lam_protrusion',
      'lam_depth_curv', 'depth_curv_curriculum'])
  for base in ('quickstart', 'synthcar'):
    plain, loose = _load(base), config.load(
        [str(CONFIG_DIR / f'{base}.yml'), overlay])
    assert loose.lam_view_cycle == 1.0 and loose.lam_protrusion == 1.0
    assert loose.depth_curv_curriculum == [5.0, 100.0, 100.0]
    assert (loose.image_size, loose.lr, loose.model_name) == (
        plain.image_size, plain.lr, plain.model_name)


def test_reference_values():
  celeba = _load('train_celeba')
  assert celeba.num_epochs == 30 and celeba.z_translation_range == 0
  assert celeba.batch_size == 64 and celeba.lr == 1e-4
  assert celeba.run_train and celeba.train_val_data_dir == 'data/celeba_cropped'
  synface = _load('train_synface')
  assert synface.crop == 170 and synface.load_gt_depth
  assert synface.paired_data_dir_names == ['image', 'depth']
  cat = _load('train_cat')
  assert cat.num_epochs == 200 and cat.lam_flip_start_epoch == 10
  assert cat.z_translation_range == 0.1 and cat.save_checkpoint_freq == 10
  syncar = _load('train_syncar')
  assert syncar.use_conf_map is False
  assert syncar.lam_perc == 0.01 and syncar.lam_flip == 1.0
  assert syncar.lam_depth_sm == 0.1
  assert syncar.crop == [8, 14, 100, 100]
  assert syncar.border_depth == 1.08 and syncar.resolved().border_depth == 1.08
  assert syncar.min_diff_light == 0.5
  assert syncar.train_val_data_dir == 'data/syncar'
  test_synface = _load('test_synface')
  assert test_synface.run_test and test_synface.test_data_dir == (
      'data/synface/test')
  assert test_synface.checkpoint_name == 'checkpoint030.pth'
  for name in EXPERIMENTS:
    cfg = _load(name)
    assert cfg.image_size == 64 and cfg.rot_center_depth == 1.0, name
    assert cfg.fov == 10.0 and cfg.min_depth == 0.9 and cfg.max_depth == 1.1


def test_quickstart_values():
  cfg = _load('quickstart')
  # A reduced model: the networks accept sizes >= 64 in steps of 16.
  assert cfg.image_size >= 64 and cfg.image_size % 16 == 0
  assert cfg.nf_depth < 64 and cfg.zdim_depth < 256
  # The encoders (netL, netV) keep the reference's width: they are cheap and
  # a narrower netV learnt the viewpoint slowly.
  assert cfg.nf_encoder <= 32 and cfg.nf_conf < 64 and cfg.zdim_conf < 128
  assert cfg.gn_channels == 4  # narrow nets: no per-channel GroupNorm
  assert cfg.lam_perc == 0  # No VGG16 weights needed.
  assert cfg.vgg16_weights is None
  assert cfg.train_val_data_dir == 'data/quickstart'
  assert cfg.test_data_dir == 'data/quickstart/test'
  assert cfg.load_gt_depth
  assert cfg.checkpoint_dir == 'results/quickstart'
  assert cfg.z_translation_range == 0 and cfg.xyz_rotation_range == 60
  assert cfg.num_epochs >= 1


def test_synthcar_is_the_quickstart_with_the_syncar_keys():
  car, quick, syncar = _load('synthcar'), _load('quickstart'), _load(
      'train_syncar')
  for key in ('nf_depth', 'zdim_depth', 'nf_encoder', 'nf_conf', 'zdim_conf',
              'gn_channels', 'batch_size', 'num_epochs', 'lr', 'lam_perc',
              'image_size', 'use_conf_map'):
    assert getattr(car, key) == getattr(quick, key), key
  for key in ('border_depth', 'min_diff_light', 'lam_flip', 'lam_depth_sm',
              'xyz_rotation_range', 'min_depth', 'max_depth', 'fov'):
    assert getattr(car, key) == getattr(syncar, key), key
  assert car.train_val_data_dir == 'data/synthcar' and car.load_gt_depth
  assert car.test_data_dir == 'data/synthcar/test'


def _reference_yaml(name):
  """Parsed experiments/<name>.yml of the reference, or None if unavailable."""
  if not os.path.isdir(REFERENCE_REPO) or shutil.which('git') is None:
    return None
  proc = subprocess.run(
      ['git', '-C', REFERENCE_REPO, 'show', f'HEAD:experiments/{name}.yml'],
      capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    return None
  return yaml.safe_load(proc.stdout)


@pytest.mark.parametrize('name', EXPERIMENTS)
def test_config_contains_every_reference_key_and_value(name):
  reference = _reference_yaml(name)
  if reference is None:
    pytest.skip(f'reference repository not available at {REFERENCE_REPO} '
                '(set TFUNSUP3D_REFERENCE_REPO)')
  ours = yaml.safe_load((CONFIG_DIR / f'{name}.yml').read_text())
  missing = sorted(k for k in reference if k not in ours)
  different = sorted(f'{k}: ours {ours[k]!r} != reference {v!r}'
                     for k, v in reference.items()
                     if k in ours and ours[k] != v)
  assert not missing and not different, (
      f'configs/{name}.yml vs reference experiments/{name}.yml: '
      f'missing {missing}; different {different}')
