"""Tests of tfunsup3d.config: typed overrides, errors, derived values, field
metadata, value checks and the compatibility-key warning."""

import dataclasses
import logging
import os

import pytest
import yaml

from tfunsup3d import config
from tfunsup3d.errors import UserError

COMPAT_KEYS = ('device', 'run_train', 'run_test', 'archive_code',
               'tex_cube_size', 'renderer_min_depth', 'renderer_max_depth')


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
    ('jit_compile=false', 'jit_compile', False, bool),
    ('jit_compile=true', 'jit_compile', True, bool),
    ('jit_compile=auto', 'jit_compile', 'auto', str),
    ('remat=true', 'remat', True, bool),
    ('remat=light', 'remat', 'light', str),
    ('remat=auto', 'remat', 'auto', str),
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


def test_later_files_overlay_earlier_ones(tmp_path):
  base, overlay = tmp_path / 'base.yml', tmp_path / 'overlay.yml'
  base.write_text('num_epochs: 7\nbatch_size: 8\nlam_flip: 0.5\n')
  overlay.write_text('batch_size: 4\nlam_protrusion: 1\n')
  cfg = config.load([str(base), str(overlay)], ['num_epochs=2'])
  assert (cfg.num_epochs, cfg.batch_size) == (2, 4)  # flag, overlay
  assert (cfg.lam_flip, cfg.lam_protrusion) == (0.5, 1.0)  # base, overlay
  assert cfg.lr == config.Config().lr  # neither file: the default
  assert config.load([str(overlay), str(base)]).batch_size == 8
  assert config.load([]) == config.load() == config.Config()
  overlay.write_text('batch_size: 4\nbogus_key: 1\n')
  with pytest.raises(ValueError, match=f'^Config file {overlay}: .*bogus_key'):
    config.load([str(base), str(overlay)])


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


@pytest.mark.parametrize('content, needle', [
    (b'batch_size: 8\nlr: 1.0e-4\nbatch_size: 16\n',
     "duplicate key 'batch_size'"),
    (b'crop: {a: 1, a: 2}\n', "duplicate key 'a'"),
    (b'\xff\xfebatch_size: 8\n', 'is not UTF-8 text'),
    (b'batch_size: !!python/object/apply:os.system ["true"]\n',
     'not valid YAML'),
    # Nested aliases: ten lines of 9 expand to 9**10 strings.
    (b'paired_data_dir_names: [&a0 [x, x, x, x, x, x, x, x, x], ' + b', '.join(
        b'&a%d [' % i + b', '.join([b'*a%d' % (i - 1)] * 9) + b']'
        for i in range(1, 10)) + b']\n', 'aliases (*name) are not allowed'),
], ids=['duplicate', 'nested_duplicate', 'not_utf8', 'python_tag',
        'alias_bomb'])
def test_a_file_that_cannot_mean_one_config_is_refused(tmp_path, content,
                                                       needle):
  path = tmp_path / 'c.yml'
  path.write_bytes(content)
  with pytest.raises(ValueError) as info:
    config.load(str(path))
  assert needle in str(info.value) and str(path) in str(info.value)


def test_a_flag_value_is_parsed_as_a_file_is_and_echoed_short():
  with pytest.raises(ValueError, match='paired_data_dir_names'):
    config.load(overrides=['paired_data_dir_names=[&a x, *a]'])  # [x, x]
  huge = '[' + ','.join(['[1]'] * 2000) + ']'
  with pytest.raises(ValueError) as info:
    config.load(overrides=[f'paired_data_dir_names={huge}'])
  assert len(str(info.value)) < 400, len(str(info.value))


def test_a_folder_is_no_config_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='is a folder, not a file'):
    config.load(str(tmp_path))


def test_a_pipe_or_device_is_no_config_file(tmp_path):
  fifo = tmp_path / 'c.yml'
  os.mkfifo(fifo)  # Opening it would block.
  for path in (str(fifo), os.devnull):
    with pytest.raises(FileNotFoundError, match='is not a regular file'):
      config.load(path)


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


@pytest.mark.parametrize('key, value', [
    ('batch_size', 0), ('batch_size', -1), ('image_size', 0),
    ('image_size', -64), ('image_size', 1025), ('num_epochs', -1),
    ('lr', 0.0), ('lr', -1e-4),
    ('lr', float('nan')), ('lr', float('inf')), ('fov', 0.0), ('fov', 180.0),
    ('fov', float('-inf')), ('fov', 1e-30), ('fov', 0.5),
    ('max_depth', 1e39), ('lam_flip', -1e39), ('min_depth', 0.0),
    ('log_freq', 0),
    ('seed', -1), ('max_steps_per_epoch', 0), ('val_max_batches', 0),
    ('save_checkpoint_steps', -1), ('lam_perc', -1.0),
    ('lam_flip', float('nan')), ('weight_decay', -5e-4), ('nf_depth', 0),
    ('zdim_conf', 0), ('gn_channels', 0), ('border_depth', float('nan')),
    ('xyz_rotation_range', -60.0), ('lam_flip_start_epoch', -1),
    ('jit_compile', 'maybe'), ('depth_centering', 'median'),
    ('remat', 'sometimes'),
    ('num_workers', -3), ('light_cycle_max_tilt', 1.5),
    ('light_cycle_max_tilt', -0.1), ('lam_light_cycle', -1.0),
    ('lam_depth_curv', -0.5), ('lam_depth_curv', float('nan')),
    ('lam_depth_ripple', -1.0), ('depth_curv_curriculum', [5.0, 300.0]),
    ('depth_curv_curriculum', [-1.0, 300.0, 200.0]),
    ('depth_curv_curriculum', [5.0, float('inf'), 200.0]),
    ('depth_init_scale', -0.1), ('depth_init_scale', float('nan')),
    ('lr_decay', [100.0, 50.0]), ('lr_decay', [100.0, 50.0, 0.0]),
    ('lr_decay', [100.0, 50.0, 1.5]), ('lr_decay', [-1.0, 50.0, 0.1]),
    ('lr_decay', [100.0, float('nan'), 0.1]),
])
def test_invalid_values_are_refused_naming_key_and_value(key, value):
  with pytest.raises(config.ConfigError) as info:
    config.Config(**{key: value}).resolved()
  message = str(info.value)
  assert f'{key}={value}' in message
  assert '\n' not in message
  assert isinstance(info.value, ValueError)  # What callers caught before.
  assert isinstance(info.value, UserError)  # One line, exit 2 in the CLI.


PATH_KEYS = ('checkpoint_dir', 'checkpoint_name', 'test_result_dir',
             'train_val_data_dir', 'test_data_dir', 'vgg16_weights',
             'xla_cache_dir', 'log_dir', 'export_dir')


@pytest.mark.parametrize('key', PATH_KEYS)
def test_path_keys_refuse_urls(key):
  # os.makedirs('gs://b/run') would make a local folder gs:/b/run.
  with pytest.raises(config.ConfigError) as info:
    config.Config(**{key: 'gs://b/run'}).resolved()
  assert str(info.value) == (
      f'{key} must be a local path (URLs such as gs://... are not read or '
      f'written: copy the files to a local disk first). Received: '
      f'{key}=gs://b/run')
  config.Config(**{key: 'runs/gs:b'}).resolved()  # A colon is no URL.


def test_the_path_keys_are_every_path_valued_key():
  # A new `*_dir` key must be listed in config._CHECKS (and PATH_KEYS).
  dirs = {n for n in config.field_names() if n.endswith('_dir')}
  assert dirs <= set(PATH_KEYS), dirs - set(PATH_KEYS)


def test_invalid_values_from_strings_are_refused():
  # The coercion accepts 'nan' and '0'; the check refuses them.
  with pytest.raises(config.ConfigError, match='batch_size=0'):
    config.load(overrides=['batch_size=0']).resolved()
  with pytest.raises(config.ConfigError, match='lr=nan'):
    config.load(overrides=['lr=nan']).resolved()


@pytest.mark.parametrize('low, high, a, b', [
    ('min_amb_light', 'max_amb_light', 0.6, 0.5),
    ('min_diff_light', 'max_diff_light', 1.0, 0.0),
    ('min_depth', 'max_depth', 1.0, 1.0),
])
def test_ranges_must_be_ordered(low, high, a, b):
  with pytest.raises(config.ConfigError, match=f'{low}={a}, {high}={b}'):
    config.Config(**{low: a, high: b}).resolved()


@pytest.mark.parametrize('values', [
    {'num_epochs': 0}, {'batch_size': 1}, {'image_size': 8}, {'lam_perc': 0.0},
    {'min_amb_light': 0.5, 'max_amb_light': 0.5}, {'fov': 179.0},
    {'fov': 1.0}, {'max_depth': 3e38},
    {'save_checkpoint_steps': 0}, {'max_steps_per_epoch': 1},
    {'keep_num_checkpoint': -1}, {'save_checkpoint_freq': 0},
    {'num_workers': 0},
])
def test_edge_values_that_the_code_handles_are_accepted(values):
  config.Config(**values).resolved()


# --- field metadata -------------------------------------------------------


def test_every_field_has_help_and_section_metadata():
  for field in dataclasses.fields(config.Config):
    meta = field.metadata
    assert meta.get('help', '').strip().endswith('.'), field.name
    assert meta.get('section') in config.SECTIONS, field.name
    assert config.field_help(field.name) == (
        f'{meta["help"]} [{meta["section"]}]')


def test_compat_keys_are_the_seven_ignored_ones_and_say_so():
  assert tuple(config.compat_keys()) == COMPAT_KEYS
  for name in COMPAT_KEYS:
    assert 'No effect' in config.field_metadata(name)['help'], name
  for name in set(config.field_names()) - set(COMPAT_KEYS):
    assert 'No effect' not in config.field_metadata(name)['help'], name


def test_renderer_depth_help_states_the_rasterisers_fixed_planes():
  from tfunsup3d.render import rasterizer  # pylint: disable=g-import-not-at-top
  near = config.field_metadata('renderer_min_depth')['help']
  far = config.field_metadata('renderer_max_depth')['help']
  assert f'fixed at {rasterizer.NEAR:g}' in near
  assert f'fixed at {rasterizer.FAR:g}' in far
  # The reference's defaults, which the rasteriser does not use.
  assert config.Config().renderer_max_depth != rasterizer.FAR


# --- compatibility-key warning --------------------------------------------


@pytest.fixture
def compat_warnings(monkeypatch, caplog):
  """A fresh once-per-process memory; yields a function listing the
  warnings logged so far."""
  monkeypatch.setattr(config, '_WARNED', set())
  caplog.set_level(logging.WARNING)
  return lambda: [r.getMessage() for r in caplog.records
                  if 'has no effect' in r.getMessage()]


def test_compat_key_set_warns_once_in_one_line(compat_warnings):
  cfg = config.load(overrides=['device=cuda:0', 'renderer_max_depth=20'])
  cfg.resolved()
  cfg.resolved()
  config.Config(device='cuda:1').resolved()
  messages = compat_warnings()
  assert len(messages) == 2, messages
  assert "device='cuda:0'" in messages[0] and 'TensorFlow' in messages[0]
  assert 'renderer_max_depth=20.0' in messages[1]
  assert all('\n' not in m for m in messages)


def test_compat_keys_at_their_defaults_do_not_warn(compat_warnings):
  config.Config().resolved()
  defaults = {k: getattr(config.Config(), k) for k in COMPAT_KEYS}
  config.from_dict(defaults).resolved()  # Set, but to the default values.
  assert not compat_warnings()
  assert config.warn_compat_keys(config.Config(run_test=True)) == ['run_test']
  assert len(compat_warnings()) == 1


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


def test_jit_compile_auto_is_whole_step_xla_for_narrow_networks_on_cpu(
    monkeypatch):
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  devices = {'GPU': [], 'TPU': []}
  monkeypatch.setattr(tf.config, 'list_logical_devices',
                      lambda kind=None: devices.get(kind, []))
  auto = lambda **kw: config.jit_compile(config.Config(**kw))
  assert config.Config().jit_compile == 'auto'
  assert auto(nf_depth=16) and auto(nf_depth=config.CPU_XLA_MAX_NF - 1)
  assert not auto(nf_depth=config.CPU_XLA_MAX_NF)
  assert not auto()  # the reference's nf_depth 64
  assert auto(jit_compile=True) and not auto(nf_depth=16, jit_compile=False)
  devices['GPU'] = ['a GPU']
  assert auto() and auto(nf_depth=16) and not auto(jit_compile=False)


def test_remat_auto_is_light_unless_the_whole_step_is_xla(monkeypatch):
  monkeypatch.setattr(config, 'jit_compile', lambda cfg: cfg.nf_depth < 32)
  mode = lambda **kw: config.remat_mode(config.Config(**kw))
  assert config.Config().remat == 'auto'
  assert mode() == 'light' and mode(nf_depth=16) == 'none'
  assert mode(remat=False) == 'none' and mode(remat=True) == 'networks'
  assert mode(remat='light', nf_depth=16) == 'light'
  assert mode(remat=True, nf_depth=16) == 'networks'
