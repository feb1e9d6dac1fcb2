"""The README's main command path, shortened: ./quickstart.sh (when this
interpreter's venv was set up by it or by .ci/run, else tfunsup3d-quickstart
directly) runs generate -> train -> test -> export end to end."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


def _read(path: str) -> str:
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.read().strip()


def _command():
  """The README's ./quickstart.sh on this interpreter's venv, if that venv
  is one the script would use as it is (installed from this checkout, up to
  date: `scripts/venv.sh`'s stamp)."""
  stamp = os.path.join(sys.prefix, '.tfunsup3d-installed-test')
  if (os.path.isfile(stamp) and os.path.getmtime(stamp) >=
      os.path.getmtime(os.path.join(ROOT, 'pyproject.toml')) and
      _read(stamp) == os.path.realpath(ROOT)):
    return ['bash', os.path.join(ROOT, 'quickstart.sh')], dict(
        os.environ, TFUNSUP3D_VENV=sys.prefix)
  return [sys.executable, '-m', 'tfunsup3d.tools.quickstart',
          f'--config={ROOT}/configs/quickstart.yml'], None


class QuickstartTest(unittest.TestCase):

  def test_short_quickstart_end_to_end(self):
    with tempfile.TemporaryDirectory() as tmp:
      cmd, env = _command()
      cmd += [f'--train_val_data_dir={tmp}/data', '--test_data_dir=none',
             f'--checkpoint_dir={tmp}/results',
             f'--export_dir={tmp}/saved_models', '--num_train=16',
             '--num_val=4', '--num_test=4', '--num_epochs=1',
             '--max_steps_per_epoch=1', '--batch_size=4']
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            cwd=tmp, env=env)
      self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
      for step in ('[1/4]', '[2/4]', '[3/4]', '[4/4]', 'done:'):
        self.assertIn(step, proc.stdout)
      with open(f'{tmp}/results/quickstart_summary.json') as f:
        summary = json.load(f)
      for key in ('model', 'null', 'average'):
        self.assertRegex(summary[key], r'SIDE \(x1e-2\): [0-9.]+ ± [0-9.]+, '
                         r'MAD \(deg\): [0-9.]+ ± [0-9.]+')
      self.assertTrue(os.path.isfile(
          os.path.join(summary['saved_model'], 'saved_model.pb')))
      self.assertTrue(os.path.isfile(
          f'{tmp}/results/test_results/eval_scores.txt'))


class DataStepTest(unittest.TestCase):

  def test_car_category_is_written_and_recorded(self):
    # pylint: disable=g-import-not-at-top
    import numpy as np
    from tfunsup3d import config
    from tfunsup3d.data import synth_params
    from tfunsup3d.tools import quickstart
    with tempfile.TemporaryDirectory() as tmp:
      cfg = config.load(os.path.join(ROOT, 'configs', 'synthcar.yml'), [
          f'train_val_data_dir={tmp}/data', f'checkpoint_dir={tmp}/ckpt'
      ]).resolved()
      counts = {'train': 2, 'val': 1, 'test': 1}
      quickstart._data_step(cfg, counts,  # pylint: disable=protected-access
                            synth_params.SynthOptions.for_category('car'))
      with np.load(f'{tmp}/data/train/factors.npz') as f:
        meta = json.loads(str(f['meta']))
      self.assertEqual(meta['options']['category'], 'car')
      self.assertEqual(meta['options']['max_yaw'], 60)
      self.assertEqual(len(os.listdir(f'{tmp}/data/test/image')), 1)


if __name__ == "__main__":
  unittest.main()
