"""Tests of tfunsup3d.tools.flags and the console scripts' flag handling."""

import os
import pathlib
import subprocess
import sys

from absl import flags
import pytest
import yaml

from tfunsup3d import config
from tfunsup3d.tools import flags as tool_flags

ROOT = pathlib.Path(__file__).resolve().parents[2]
QUICKSTART = 'configs/quickstart.yml'
SCRIPTS = ('synth', 'train', 'test', 'convert', 'export', 'demo', 'explain',
           'quickstart')

_QUICKSTART = config.load_yaml(
    os.path.join(os.path.dirname(__file__), '..', '..', 'configs',
                 'quickstart.yml'))


def _flag_values(argv):
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  flag_values(['prog'] + list(argv))
  return flag_values


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch):
  monkeypatch.chdir(ROOT)


def test_every_config_field_has_a_flag():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  for name in config.field_names():
    assert name in flag_values, name
    assert flag_values[name].help, name
  assert tool_flags.CONFIG_FLAG in flag_values
  assert tool_flags.PRINT_CONFIG_FLAG in flag_values


def test_define_is_idempotent():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  tool_flags.define_config_flags(flag_values)  # No DuplicateFlagError.


def test_flag_types_follow_the_dataclass():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  assert isinstance(flag_values['use_conf_map'], flags.BooleanFlag)
  assert flag_values['num_epochs'].default == 30
  assert flag_values['lr'].default == pytest.approx(1e-4)
  assert flag_values['checkpoint_dir'].default == 'results'
  assert flag_values['paired_data_dir_names'].default == '[image, depth]'


def test_help_comes_from_field_comments():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  assert 'EDDeconv' in flag_values['nf_depth'].help
  assert 'epochs' in flag_values['num_epochs'].help.lower()


def test_yaml_then_explicit_flags():
  cfg = tool_flags.config_from_flags(
      _flag_values([f'--config={QUICKSTART}', '--num_epochs=2']))
  assert cfg.num_epochs == 2  # Flag.
  assert cfg.image_size == _QUICKSTART['image_size'] and cfg.batch_size == _QUICKSTART['batch_size']  # YAML.
  assert cfg.lam_perc == 0.0  # YAML; the flag's default (1.0) is not applied.
  assert cfg.fov == 10.0  # Default.


def test_flags_absent_from_command_line_do_not_override_yaml():
  cfg = tool_flags.config_from_flags(_flag_values([f'--config={QUICKSTART}']))
  assert cfg == config.load(QUICKSTART)


def test_no_config_gives_defaults():
  assert tool_flags.config_from_flags(_flag_values([])) == config.Config()


@pytest.mark.parametrize('argv, key, expected', [
    (['--num_epochs=3'], 'num_epochs', 3),
    (['--use_conf_map=false'], 'use_conf_map', False),
    (['--nouse_conf_map'], 'use_conf_map', False),
    (['--load_gt_depth'], 'load_gt_depth', True),
    (['--crop=[8,14,100,100]'], 'crop', [8, 14, 100, 100]),
    (['--crop=170'], 'crop', 170),
    (['--test_data_dir=none'], 'test_data_dir', None),
    (['--test_data_dir=data/x'], 'test_data_dir', 'data/x'),
    (['--lr=1e-3'], 'lr', 1e-3),
    (['--max_steps_per_epoch=5'], 'max_steps_per_epoch', 5),
    (['--border_depth=1.08'], 'border_depth', 1.08),
    (['--paired_data_dir_names=[a, b]'], 'paired_data_dir_names', ['a', 'b']),
    (['--checkpoint_name=checkpoint030.pth'], 'checkpoint_name',
     'checkpoint030.pth'),
    (['--num_epochs=3', '--num_epochs=4'], 'num_epochs', 4),
])
def test_flags_are_typed(argv, key, expected):
  cfg = tool_flags.config_from_flags(_flag_values(argv))
  assert getattr(cfg, key) == expected
  assert type(getattr(cfg, key)) is type(expected)  # pylint: disable=unidiomatic-typecheck


def test_explicit_default_value_still_overrides_yaml():
  # quickstart.yml sets lam_perc 0; --lam_perc=1.0 equals the flag default.
  cfg = tool_flags.config_from_flags(
      _flag_values([f'--config={QUICKSTART}', '--lam_perc=1.0']))
  assert cfg.lam_perc == 1.0


def test_command_line_form():
  cfg = tool_flags.config_from_flags(
      ['prog', f'--config={QUICKSTART}', '--num_epochs=2'])
  assert cfg.num_epochs == 2 and cfg.image_size == _QUICKSTART['image_size']
  cfg = tool_flags.config_from_flags(['--num_epochs=5'])  # No program name.
  assert cfg.num_epochs == 5


def test_unknown_flag_is_an_absl_error():
  with pytest.raises(flags.UnrecognizedFlagError):
    tool_flags.config_from_flags(['prog', '--num_epoch=2'])


def test_bad_flag_value_is_an_absl_error():
  with pytest.raises(flags.IllegalFlagValueError):
    tool_flags.config_from_flags(['prog', '--num_epochs=abc'])


def test_bad_string_flag_value_is_a_value_error():
  with pytest.raises(ValueError, match='crop'):
    tool_flags.config_from_flags(['prog', '--crop=abc'])


def test_missing_config_file():
  with pytest.raises(FileNotFoundError, match='missing.yml'):
    tool_flags.config_from_flags(['prog', '--config=missing.yml'])


def test_unknown_key_in_config_file(tmp_path):
  path = tmp_path / 'c.yml'
  path.write_text('num_epochs: 2\nnot_a_key: 1\n')
  with pytest.raises(ValueError, match='not_a_key'):
    tool_flags.config_from_flags(['prog', f'--config={path}'])


def test_unparsed_flag_values_are_refused():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  with pytest.raises(RuntimeError):
    tool_flags.config_from_flags(flag_values)


def test_existing_flag_of_the_same_name_is_adopted():
  flag_values = flags.FlagValues()
  flags.DEFINE_string('log_dir', '', 'directory to write logfiles into',
                      flag_values=flag_values)
  tool_flags.define_config_flags(flag_values)
  flag_values(['prog', '--log_dir=/tmp/tb'])
  assert tool_flags.config_from_flags(flag_values).log_dir == '/tmp/tb'
  assert 'TensorBoard' in flag_values['log_dir'].help


def test_global_flags_define_log_dir_once():
  # absl.logging's --log_dir and the config key share one flag.
  assert 'log_dir' in tool_flags.FLAGS
  assert 'TensorBoard' in tool_flags.FLAGS['log_dir'].help


def test_one_line_messages():
  one_line = tool_flags._one_line  # pylint: disable=protected-access
  assert one_line(ValueError('a\n  b\n')) == 'a b'
  assert one_line(FileNotFoundError(2, 'No such file or directory', 'x.yml')
                  ) == 'No such file or directory: x.yml'
  assert one_line(tool_flags.UserError()) == 'UserError'


def test_program_name():
  assert tool_flags.program_name('train') == 'tfunsup3d-train'
  assert tool_flags.program_name('tfunsup3d-train') == 'tfunsup3d-train'


def test_main_wrapper_runs_fn_with_the_config(monkeypatch):
  seen = []
  flag_values = _flag_values([f'--config={QUICKSTART}', '--num_epochs=2'])
  monkeypatch.setattr(tool_flags, 'FLAGS', flag_values)
  main = tool_flags.main_wrapper(seen.append, 'train')
  assert main(['prog']) == 0
  assert seen[0].num_epochs == 2 and seen[0].image_size == _QUICKSTART['image_size']


@pytest.mark.parametrize('error', [
    ValueError('bad value\nsecond line'), FileNotFoundError('no such file'),
    tool_flags.UserError('user error')])
def test_main_wrapper_reports_user_errors_in_one_line(monkeypatch, capsys,
                                                      error):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  monkeypatch.delenv(tool_flags.DEBUG_ENV, raising=False)

  def fn(cfg):
    del cfg
    raise error

  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(fn, 'train')(['prog'])
  assert exit_info.value.code == 2
  err = capsys.readouterr().err
  assert err.startswith('tfunsup3d-train: error: ')
  assert err.count('\n') == 1


def test_main_wrapper_keeps_tracebacks_of_bugs(monkeypatch):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))

  def fn(cfg):
    del cfg
    raise ZeroDivisionError('bug')

  with pytest.raises(ZeroDivisionError):
    tool_flags.main_wrapper(fn, 'train')(['prog'])


def test_main_wrapper_debug_env_reraises(monkeypatch):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  monkeypatch.setenv(tool_flags.DEBUG_ENV, '1')

  def fn(cfg):
    del cfg
    raise ValueError('bad')

  with pytest.raises(ValueError):
    tool_flags.main_wrapper(fn, 'train')(['prog'])


def test_main_wrapper_rejects_positional_arguments(monkeypatch, capsys):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(lambda cfg: None, 'train')(['prog', 'extra'])
  assert exit_info.value.code == 2
  assert 'extra' in capsys.readouterr().err


def test_main_wrapper_validates_the_config(monkeypatch, capsys):
  monkeypatch.setattr(tool_flags, 'FLAGS',
                      _flag_values(['--min_depth=2', '--max_depth=1']))
  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(lambda cfg: None, 'train')(['prog'])
  assert exit_info.value.code == 2
  assert 'min_depth' in capsys.readouterr().err


# --- console scripts, run as subprocesses -------------------------------------


def _run_script(name, *args):
  env = dict(os.environ)
  env['PYTHONPATH'] = os.pathsep.join(
      [str(ROOT)] + ([env['PYTHONPATH']] if env.get('PYTHONPATH') else []))
  env.pop(tool_flags.DEBUG_ENV, None)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return subprocess.run(
      [sys.executable, '-m', f'tfunsup3d.tools.{name}', *args],
      cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
      check=False)


def _error_lines(stderr):
  """stderr lines that are not library log/warning noise."""
  return [line for line in stderr.splitlines()
          if line.startswith('tfunsup3d-')]


@pytest.mark.parametrize('name', SCRIPTS)
def test_script_helpfull_exits_zero_and_lists_config_flags(name):
  proc = _run_script(name, '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert '--num_epochs' in proc.stdout
  assert '--config' in proc.stdout


def test_script_short_help_lists_config_flags():
  proc = _run_script('train', '--help')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert '--num_epochs' in proc.stdout


def test_script_print_config_shows_the_override():
  proc = _run_script('train', f'--config={QUICKSTART}', '--num_epochs=2',
                     '--crop=[8,14,100,100]', '--print_config')
  assert proc.returncode == 0, proc.stderr[-2000:]
  printed = config.from_dict(yaml.safe_load(proc.stdout))
  assert printed.num_epochs == 2
  assert printed.image_size == _QUICKSTART['image_size']  # From the YAML.
  assert printed.crop == [8, 14, 100, 100]
  assert printed.border_depth == pytest.approx(1.04)  # Resolved.


@pytest.mark.parametrize('args, reason', [
    (['--num_epoch=2'], 'num_epoch'),
    (['--num_epochs=abc'], 'num_epochs'),
    (['--config=configs/does_not_exist.yml'], 'does_not_exist.yml'),
    (['--crop=abc'], 'crop'),
    (['--min_depth=1.2', '--max_depth=1.0'], 'min_depth'),
    (['unexpected_positional'], 'unexpected_positional'),
])
def test_script_bad_input_exits_2_with_one_line(args, reason):
  proc = _run_script('train', *args)
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  lines = _error_lines(proc.stderr)
  assert len(lines) == 1, proc.stderr
  assert lines[0].startswith('tfunsup3d-train: error: ')
  assert reason in lines[0]
  assert 'Traceback' not in proc.stderr


def test_console_script_entry_points():
  from importlib import import_module, metadata  # pylint: disable=g-import-not-at-top
  try:
    eps = {ep.name: ep.value for ep in metadata.entry_points(
        group='console_scripts') if ep.name.startswith('tfunsup3d-')}
  except metadata.PackageNotFoundError:  # pragma: no cover
    pytest.skip('tfunsup3d is not installed')
  if not eps:
    pytest.skip('tfunsup3d is not installed')
  for name in SCRIPTS:
    assert eps.get(f'tfunsup3d-{name}') == f'tfunsup3d.tools.{name}:run'
    module = import_module(f'tfunsup3d.tools.{name}')
    assert callable(module.run)
