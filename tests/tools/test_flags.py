"""Tests of tfunsup3d.tools.flags and the console scripts' flag handling."""

import os
import pathlib
import re
import signal
import subprocess
import sys

from absl import flags
import pytest
import yaml

from tfunsup3d import config
from tfunsup3d import progress
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


def test_help_comes_from_field_metadata():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  for name in config.field_names():
    assert flag_values[name].help.startswith(config.field_help(name)), name
  assert flag_values['nf_depth'].help == (
      'nf of netD and netA (EDDeconv). [networks]')
  assert 'No effect' in flag_values['renderer_min_depth'].help


def test_help_config_paths():
  paths = tool_flags.help_config_paths
  assert paths(['p', '--config=a.yml', '--help']) == ['a.yml']
  assert paths(['p', '--helpfull', '--config', 'b.yml']) == ['b.yml']
  assert paths(['p', '-?', '-config=c.yml', '--config=d.yml']) == [
      'c.yml', 'd.yml']
  assert paths(['p', '--config=a.yml']) == []  # No help asked for.
  assert paths(['p', '--help']) == []
  assert paths(['p', '--', '--config=a.yml', '--help']) == []


def test_show_file_values_sets_the_defaults_help_shows(tmp_path):
  yml = tmp_path / 'c.yml'
  yml.write_text('image_size: 96\ncrop: [1, 2, 3, 4]\nuse_conf_map: false\n')
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  tool_flags.show_file_values([str(yml)], flag_values)
  assert flag_values['image_size'].default == 96
  assert flag_values['crop'].default == '[1, 2, 3, 4]'
  assert flag_values['use_conf_map'].default is False
  assert flag_values['image_size'].help.endswith(f'(value from {yml})')
  assert 'value from' not in flag_values['batch_size'].help
  with pytest.raises(ValueError, match='image_sise'):
    yml.write_text('image_sise: 96\n')
    tool_flags.show_file_values([str(yml)], flag_values)


def test_show_file_values_of_an_overlay_names_the_last_file(tmp_path):
  base, overlay = tmp_path / 'base.yml', tmp_path / 'overlay.yml'
  base.write_text('image_size: 96\nbatch_size: 8\n')
  overlay.write_text('image_size: 128\nlam_protrusion: 1\n')
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  tool_flags.show_file_values([str(base), str(overlay)], flag_values)
  assert flag_values['image_size'].default == 128
  assert flag_values['image_size'].help.endswith(f' (value from {overlay})')
  assert str(base) not in flag_values['image_size'].help
  assert flag_values['batch_size'].default == 8
  assert flag_values['batch_size'].help.endswith(f'(value from {base})')
  assert flag_values['lam_protrusion'].default == 1.0


def test_register_key_flags_takes_the_scripts_own_and_the_config_flags():
  flag_values = flags.FlagValues()
  tool_flags.define_config_flags(flag_values)
  flags.DEFINE_integer('own_flag', 1, 'A flag of this module.',
                       flag_values=flag_values)
  names = tool_flags.register_key_flags(__name__, flag_values)
  assert 'own_flag' in names and 'num_epochs' in names
  assert {'config', 'print_config', 'progress'} <= set(names)
  key = flag_values.key_flags_by_module_dict()[sys.argv[0]]
  assert {f.name for f in key} == set(names)


def test_main_wrapper_sets_the_progress_mode(monkeypatch):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values(['--progress=none']))
  monkeypatch.setattr(progress, '_mode', 'auto')
  assert tool_flags.main_wrapper(lambda cfg: None, 'train')(['prog']) == 0
  assert progress.get_mode() == 'none'


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


def test_first_signal_asks_to_stop_a_second_interrupts(capsys):
  before = signal.getsignal(signal.SIGINT)
  with tool_flags.stop_on_signal('tfunsup3d-train') as stop:
    assert stop() is None
    os.kill(os.getpid(), signal.SIGTERM)
    assert stop() == 'SIGTERM'
    assert capsys.readouterr().err == (
        '\ntfunsup3d-train: SIGTERM: saving a checkpoint after this step, '
        'then stopping (Ctrl-C again: stop now, without saving)\n')
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
    assert stop() == 'SIGTERM'  # The first signal's name.
  assert signal.getsignal(signal.SIGINT) is before


def test_stop_on_signal_disabled_keeps_the_handlers_it_found():
  # (Not sending a signal: a pytest-xdist worker ignores SIGINT.)
  before = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
  with tool_flags.stop_on_signal('tfunsup3d-train', enabled=False) as stop:
    assert [signal.getsignal(s) for s in (signal.SIGINT,
                                          signal.SIGTERM)] == before
    assert stop() is None


@pytest.mark.parametrize('reason,resume,status,hint', [
    ('SIGINT', True, 130, 'run the same command to resume.'),
    ('SIGTERM', False, 143, 'add --resume=true to resume.')])
def test_stopped_reports_one_line_and_the_signals_status(capsys, reason,
                                                         resume, status, hint):
  from tfunsup3d.train import loop  # pylint: disable=g-import-not-at-top
  error = loop.TrainingStopped(reason, 'run/ckpt-7', 1, 3, 10, 13)
  assert tool_flags.stopped('tfunsup3d-train', error, resume) == status
  assert capsys.readouterr().err == (
      f'tfunsup3d-train: stopped by {reason} at epoch 1, step 3 of 10 '
      f'(global step 13); saved run/ckpt-7; {hint}\n')


@pytest.mark.parametrize('status,published', [(None, 1), (0, 1), (130, 1),
                                               (143, 1), (3, 0)])
def test_main_wrapper_keeps_compiled_steps_unless_a_run_failed(
    monkeypatch, status, published):
  # A run stopped by a signal saved its state and compiled correctly.
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  calls = []
  monkeypatch.setattr(tool_flags.compile_cache, 'publish',
                      lambda: calls.append(1))
  assert tool_flags.main_wrapper(lambda cfg: status, 'train')(['prog']) == (
      status or 0)
  assert len(calls) == published


@pytest.mark.parametrize('error,status', [
    (ValueError('bad value\nsecond line'), 2),
    (FileNotFoundError('no such file'), 2),
    (tool_flags.UserError('user error'), 2),
    (KeyboardInterrupt(), 130)])  # 'interrupted', as a shell reports SIGINT
def test_main_wrapper_reports_user_errors_in_one_line(monkeypatch, capsys,
                                                      error, status):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  monkeypatch.delenv(tool_flags.DEBUG_ENV, raising=False)

  def fn(cfg):
    del cfg
    raise error

  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(fn, 'train')(['prog'])
  assert exit_info.value.code == status
  err = capsys.readouterr().err
  assert err.startswith('tfunsup3d-train: error: ')
  assert err.count('\n') == 1


def test_main_wrapper_refuses_urls_in_the_scripts_own_flags(monkeypatch,
                                                          capsys):
  flag_values = _flag_values([])
  flags.DEFINE_string('output_dir', None, 'out', flag_values=flag_values)
  flags.DEFINE_multi_string('input', [], 'in', flag_values=flag_values)
  flag_values(['prog', '--output_dir=out', '--input=a.png',
               '--input=s3://b/c.png'])
  monkeypatch.setattr(tool_flags, 'FLAGS', flag_values)
  monkeypatch.delenv(tool_flags.DEBUG_ENV, raising=False)
  ran = []
  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(ran.append, 'demo')(['prog'])
  assert exit_info.value.code == 2 and not ran
  assert capsys.readouterr().err == (
      'tfunsup3d-demo: error: --input must be a local path (URLs such as '
      'gs://... are not read or written: copy the files to a local disk '
      'first). Received: --input=s3://b/c.png\n')
  flag_values['input'].value = ['a.png']  # All local: fn runs.
  assert tool_flags.main_wrapper(ran.append, 'demo')(['prog']) == 0
  assert len(ran) == 1


def _out_of_memory():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.errors.ResourceExhaustedError(
      None, None, '{{function_node __inference_step_1}} OOM when allocating '
      'tensor with shape[64,512,64,64] and type float on GPU:0\n'
      ' [[{{node conv}}]]\nHint: ...')


@pytest.mark.parametrize('script,make_error,message', [
    ('demo', lambda: OSError(28, 'No space left on device', 'out/a.png'),
     'Cannot write out/a.png: No space left on device (the disk is full: '
     'free space, or set the output folder to another disk)'),
    ('train', _out_of_memory,
     'out of memory: OOM when allocating tensor with shape[64,512,64,64] and '
     'type float on GPU:0 (lower --batch_size, or for training set '
     '--remat=true; training resumes from its last checkpoint)')])
def test_main_wrapper_reports_a_full_disk_or_memory_in_one_line(
    monkeypatch, capsys, script, make_error, message):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))
  monkeypatch.delenv(tool_flags.DEBUG_ENV, raising=False)

  def fn(cfg):
    del cfg
    raise make_error()

  with pytest.raises(SystemExit) as exit_info:
    tool_flags.main_wrapper(fn, script)(['prog'])
  assert exit_info.value.code == 2
  assert capsys.readouterr().err == (
      f'tfunsup3d-{script}: error: {message}\n')


def test_main_wrapper_keeps_tracebacks_of_other_os_errors(monkeypatch):
  monkeypatch.setattr(tool_flags, 'FLAGS', _flag_values([]))

  def fn(cfg):
    del cfg
    raise OSError(5, 'Input/output error')

  with pytest.raises(OSError):
    tool_flags.main_wrapper(fn, 'demo')(['prog'])


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


def _run_entry_point(name, *args, code=None):
  """Runs the script as its console-script entry point does: `run()` of the
  module, imported (not __main__), with argv[0] the script's name (or
  `code`, a program doing so)."""
  code = code or (f'import sys; from tfunsup3d.tools.{name} import run; '
                  f'sys.argv[0] = "tfunsup3d-{name}"; run()')
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [str(ROOT)] + ([os.environ['PYTHONPATH']]
                     if os.environ.get('PYTHONPATH') else [])))
  env.pop(tool_flags.DEBUG_ENV, None)
  env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  return subprocess.run([sys.executable, '-c', code, *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=300,
                        check=False)


def _listed(help_text, name):
  """Whether --help lists flag `name` (--name:, --[no]name:, -v,--name:)."""
  return re.search(rf'^\s+(-\S,)?--(\[no\])?{name}:', help_text,
                   re.M) is not None


def _flag_entry(help_text, name):
  """The text of flag `name`'s entry in --help, whitespace collapsed."""
  match = re.search(rf'^\s+(-\S,)?--(\[no\])?{name}:(.*?)(?=^\s+-|\Z)',
                    help_text, re.M | re.S)
  return ' '.join(match.group(3).split()) if match else ''


def _error_lines(stderr):
  """stderr lines that are not library log/warning noise."""
  return [line for line in stderr.splitlines()
          if line.startswith('tfunsup3d-')]


# Flags each console script defines itself (beside the config's).
OWN_FLAGS = {
    'synth': ('out_dir', 'num_train', 'zoom', 'param_range', 'overwrite'),
    'train': (),
    'test': ('write_images',),
    'convert': ('input', 'output', 'overwrite'),
    'export': ('checkpoint', 'tflite', 'version', 'encoded_crop'),
    'demo': ('input', 'checkpoint', 'num_frames', 'mesh', 'detect'),
    'explain': ('input', 'methods', 'targets'),
    'quickstart': ('num_train', 'num_val', 'export'),
}


@pytest.mark.parametrize('name', SCRIPTS)
def test_script_help_lists_its_own_flags(name):
  # As installed (`tfunsup3d-<name>`): the module is not __main__, which is
  # how synth, convert and quickstart's own flags went missing from --help.
  proc = _run_entry_point(name, '--help')
  assert proc.returncode == 0, proc.stderr[-2000:]
  module_doc = __import__(f'tfunsup3d.tools.{name}',
                          fromlist=['run']).__doc__
  assert proc.stdout.startswith(module_doc.splitlines()[0])
  missing = [f for f in OWN_FLAGS[name] + ('config', 'progress', 'num_epochs',
                                           'batch_size')
             if not _listed(proc.stdout, f)]
  assert not missing, proc.stdout[-3000:]
  if name != 'convert':  # Another script's flag is not listed.
    assert not _listed(proc.stdout, 'output')


def test_script_as_module_help_lists_its_own_flags():
  proc = _run_script('synth', '--help')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert all(_listed(proc.stdout, f) for f in OWN_FLAGS['synth'])


def test_script_helpfull_lists_every_flag():
  proc = _run_script('train', '--helpfull')
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert _listed(proc.stdout, 'num_epochs') and _listed(proc.stdout, 'config')
  assert _listed(proc.stdout, 'verbosity')


def test_help_with_config_shows_the_files_values():
  proc = _run_entry_point('train', f'--config={QUICKSTART}', '--help')
  assert proc.returncode == 0, proc.stderr[-2000:]
  image_size = _flag_entry(proc.stdout, 'image_size')
  assert f'(value from {QUICKSTART})' in image_size
  assert f"(default: '{_QUICKSTART['image_size']}')" in image_size
  batch = _flag_entry(proc.stdout, 'batch_size')
  assert f"(default: '{_QUICKSTART['batch_size']}')" in batch
  assert _QUICKSTART['batch_size'] != config.Config().batch_size
  assert 'strategy' not in _QUICKSTART  # A key the file does not set:
  strategy = _flag_entry(proc.stdout, 'strategy')
  assert "(default: 'default')" in strategy and 'value from' not in strategy


def test_help_with_a_missing_config_exits_2_with_one_line():
  proc = _run_entry_point('train', '--config=configs/nope.yml', '--help')
  assert proc.returncode == 2, (proc.stdout, proc.stderr)
  lines = _error_lines(proc.stderr)
  assert len(lines) == 1 and 'nope.yml' in lines[0], proc.stderr


def test_script_print_config_shows_the_override():
  proc = _run_script('train', f'--config={QUICKSTART}', '--num_epochs=2',
                     '--crop=[8,14,100,100]', '--print_config')
  assert proc.returncode == 0, proc.stderr[-2000:]
  printed = config.from_dict(yaml.safe_load(proc.stdout))
  assert printed.num_epochs == 2
  assert printed.image_size == _QUICKSTART['image_size']  # From the YAML.
  assert printed.crop == [8, 14, 100, 100]
  assert printed.border_depth == pytest.approx(1.04)  # Resolved.


def test_script_overlays_config_files_in_order():
  overlay = 'configs/loose_framing.yml'
  proc = _run_script('train', f'--config={QUICKSTART}', f'--config={overlay}',
                     '--min_yaw_std=30', '--print_config')
  assert proc.returncode == 0, proc.stderr[-2000:]
  printed = config.from_dict(yaml.safe_load(proc.stdout))
  assert printed == config.load([QUICKSTART, overlay],
                                ['min_yaw_std=30']).resolved()
  assert printed.image_size == _QUICKSTART['image_size']  # Base file.
  assert printed.lam_view_cycle == 1.0  # Overlay.
  assert printed.min_yaw_std == 30.0  # Flag over both.


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


@pytest.mark.parametrize('value', ['0', '-1'])
def test_batch_size_below_one_exits_2_and_writes_nothing(tmp_path, value):
  out = tmp_path / 'run'
  proc = _run_script('train', f'--config={QUICKSTART}',
                     f'--batch_size={value}', f'--checkpoint_dir={out}',
                     f'--log_dir={out}/logs')
  assert proc.returncode == 2, (proc.stdout, proc.stderr[-3000:])
  lines = _error_lines(proc.stderr)
  assert lines == [f'tfunsup3d-train: error: batch_size must be >= 1. '
                   f'Received: batch_size={value}'], proc.stderr[-3000:]
  assert 'Traceback' not in proc.stderr
  assert not out.exists() and not list(tmp_path.iterdir())


# What each script answers before TensorFlow loads (importing it takes ~4 s
# on 2 cores): help, and flags it refuses while parsing them.
_BEFORE_TF = ('import sys; from tfunsup3d.tools.{name} import run\n'
              'sys.argv[0] = "tfunsup3d-{name}"\n'
              'try:\n  run()\nexcept SystemExit as e:\n  code = e.code\n'
              'print(code, "tensorflow" in sys.modules)')


@pytest.mark.parametrize('name', SCRIPTS + ('crop', 'app'))
@pytest.mark.parametrize('args, want', [(('--help',), '0'),
                                        (('--no_such_flag=1',), '2'),
                                        (('--batch_size=0',), '2')])
def test_answers_without_loading_tensorflow(name, args, want):
  proc = _run_entry_point(name, *args, code=_BEFORE_TF.format(name=name))
  assert proc.stdout.split()[-2:] == [want, 'False'], proc.stderr[-2000:]


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
