"""Tests of tfunsup3d.config: typed overrides, errors, derived values."""

import dataclasses

import pytest
import yaml

from tfunsup3d import config


def test_defaults_match_reference_code_defaults():
  cfg = config.Config()
  assert cfg.num_epochs == 30 and cfg.batch_size == 64
  assert cfg.image_size == 64 and cfg.lr == 1e-4
  assert cfg.z_translation_range == 0.1  # The code's default; configs set 0.
  assert cfg.crop is None and cfg.test_data_dir is None


@pytest.mark.parametrize('override, key, expected, expected_type', [
    ('num_epochs=3', 'num_epochs', 3, int),
    ('num_epochs= 3 ', 'num_epochs', 3, int),
    ('num_epochs=3.0', 'num_epochs', 3, int),
    ('batch_size=1e2', 'batch_size', 100, int),
    ('crop=[8,14,100,100]', 'crop', [8, 14, 100, 100], list),
    ('crop=[8, 14, 100, 100]', 'crop', [8, 14, 100, 100], list),
    ('crop=8,14,100,100', 'crop', [8, 14, 100, 100], list),
    ('crop=170', 'crop', 170, int),
    ('crop=none', 'crop', None, type(None)),
    ('use_conf_map=false', 'use_conf_map', False, bool),
    ('use_conf_map=False', 'use_conf_map', False, bool),
    ('use_conf_map=0', 'use_conf_map', False, bool),
    ('load_gt_depth=true', 'load_gt_depth', True, bool),
    ('load_gt_depth=yes', 'load_gt_depth', True, bool),
    ('test_data_dir=none', 'test_data_dir', None, type(None)),
    ('test_data_dir=null', 'test_data_dir', None, type(None)),
    ('test_data_dir=data/x/test', 'test_data_dir', 'data/x/test', str),
    ('lr=1e-4', 'lr', 1e-4, float),
    ('lr=0.001', 'lr', 0.001, float),
    ('fov=10', 'fov', 10.0, float),
    ('border_depth=1.08', 'border_depth', 1.08, float),
    ('border_depth=none', 'border_depth', None, type(None)),
    ('max_steps_per_epoch=5', 'max_steps_per_epoch', 5, int),
    ('max_steps_per_epoch=None', 'max_steps_per_epoch', None, type(None)),
    ('paired_data_dir_names=[img, dep]', 'paired_data_dir_names',
     ['img', 'dep'], list),
    ('checkpoint_name=030', 'checkpoint_name', '030', str),
    ('model_name=none', 'model_name', 'none', str),  # Not Optional: literal.
])
def test_string_overrides_are_typed(override, key, expected, expected_type):
  cfg = config.load(overrides=[override])
  value = getattr(cfg, key)
  assert value == expected
  assert type(value) is expected_type  # pylint: disable=unidiomatic-typecheck


def test_dict_overrides_and_dash_prefixed_pairs():
  cfg = config.load(overrides={'num_epochs': 2, 'crop': [1, 2, 3, 4]})
  assert cfg.num_epochs == 2 and cfg.crop == [1, 2, 3, 4]
  cfg = config.load(overrides=['--num_epochs=4'])
  assert cfg.num_epochs == 4


def test_yaml_values_are_typed(tmp_path):
  path = tmp_path / 'c.yml'
  path.write_text('fov: 10\nmin_amb_light: 0.\nnum_epochs: 2\n'
                  'crop: [8, 14, 100, 100]\nuse_conf_map: false\n'
                  'checkpoint_name: checkpoint030.pth\n')
  cfg = config.load(str(path))
  assert cfg.fov == 10.0 and isinstance(cfg.fov, float)
  assert cfg.min_amb_light == 0.0 and isinstance(cfg.min_amb_light, float)
  assert cfg.num_epochs == 2 and cfg.crop == [8, 14, 100, 100]
  assert cfg.use_conf_map is False
  assert cfg.checkpoint_name == 'checkpoint030.pth'


def test_overrides_apply_on_top_of_yaml(tmp_path):
  path = tmp_path / 'c.yml'
  path.write_text('num_epochs: 7\nbatch_size: 8\n')
  cfg = config.load(str(path), ['num_epochs=2'])
  assert cfg.num_epochs == 2 and cfg.batch_size == 8


def test_unknown_key_raises_naming_it(tmp_path):
  with pytest.raises(ValueError, match='num_epoch_typo'):
    config.load(overrides=['num_epoch_typo=3'])
  path = tmp_path / 'c.yml'
  path.write_text('num_epochs: 2\nbogus_key: 1\n')
  with pytest.raises(ValueError, match='bogus_key'):
    config.load(str(path))


def test_from_dict_non_strict_ignores_unknown_keys():
  cfg = config.from_dict({'num_epochs': 2, 'bogus': 1}, strict=False)
  assert cfg.num_epochs == 2


@pytest.mark.parametrize('override', [
    'num_epochs=abc', 'num_epochs=3.5', 'num_epochs=true', 'num_epochs=none',
    'use_conf_map=maybe', 'use_conf_map=2', 'lr=fast', 'lr=none',
    'crop=abc', 'crop=[a, b]', 'image_size=[64]', 'min_depth=',
])
def test_bad_type_raises_value_error(override):
  key = override.split('=')[0]
  with pytest.raises(ValueError, match=key):
    config.load(overrides=[override])


def test_bad_types_in_yaml_raise_value_error(tmp_path):
  path = tmp_path / 'c.yml'
  path.write_text('use_conf_map: sometimes\n')
  with pytest.raises(ValueError, match='use_conf_map'):
    config.load(str(path))


def test_override_without_equals_raises():
  with pytest.raises(ValueError, match='KEY=VALUE'):
    config.load(overrides=['num_epochs'])


def test_missing_yaml_file_raises_file_not_found(tmp_path):
  with pytest.raises(FileNotFoundError, match='nope.yml'):
    config.load(str(tmp_path / 'nope.yml'))


def test_invalid_yaml_and_non_mapping_raise_value_error(tmp_path):
  bad = tmp_path / 'bad.yml'
  bad.write_text('num_epochs: [1, 2\n')
  with pytest.raises(ValueError, match='not valid YAML'):
    config.load(str(bad))
  lst = tmp_path / 'list.yml'
  lst.write_text('- 1\n- 2\n')
  with pytest.raises(ValueError, match='mapping'):
    config.load(str(lst))


def test_empty_yaml_gives_defaults(tmp_path):
  path = tmp_path / 'empty.yml'
  path.write_text('# nothing\n')
  assert config.load(str(path)) == config.Config()


def test_resolved_derives_border_and_rotation_centre_depth():
  cfg = config.Config(min_depth=0.9, max_depth=1.1).resolved()
  assert cfg.border_depth == pytest.approx(0.7 * 1.1 + 0.3 * 0.9)
  assert cfg.rot_center_depth == pytest.approx(1.0)
  cfg = config.Config(min_depth=0.5, max_depth=1.5).resolved()
  assert cfg.border_depth == pytest.approx(0.7 * 1.5 + 0.3 * 0.5)
  assert cfg.rot_center_depth == pytest.approx(1.0)
  cfg = config.Config(min_depth=1.0, max_depth=2.0).resolved()
  assert cfg.rot_center_depth == pytest.approx(1.5)


def test_resolved_keeps_explicit_values_and_does_not_mutate():
  base = config.Config(border_depth=1.08, rot_center_depth=1.2)
  cfg = base.resolved()
  assert cfg.border_depth == 1.08 and cfg.rot_center_depth == 1.2
  plain = config.Config()
  plain.resolved()
  assert plain.border_depth is None and plain.rot_center_depth is None


def test_resolved_validates():
  with pytest.raises(ValueError, match='min_depth'):
    config.Config(min_depth=1.1, max_depth=0.9).resolved()
  with pytest.raises(ValueError, match='image_size'):
    config.Config(image_size=4).resolved()


def test_yaml_round_trip():
  cfg = config.load(overrides=['crop=[8,14,100,100]', 'num_epochs=3',
                               'use_conf_map=false'])
  again = config.from_dict(yaml.safe_load(cfg.to_yaml()))
  assert again == cfg


def test_every_field_type_is_understood():
  for field in dataclasses.fields(config.Config):
    types, _ = config.field_type(field.name)
    assert types, field.name
    default = getattr(config.Config(), field.name)
    # Every default coerces to itself.
    assert config.from_dict({field.name: default}) == config.Config()
