"""The README's main command path, shortened: tfunsup3d-quickstart runs
generate -> train -> test -> export end to end."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))


class QuickstartTest(unittest.TestCase):

  def test_short_quickstart_end_to_end(self):
    with tempfile.TemporaryDirectory() as tmp:
      cmd = [sys.executable, '-m', 'tfunsup3d.tools.quickstart',
             f'--config={ROOT}/configs/quickstart.yml',
             f'--train_val_data_dir={tmp}/data', '--test_data_dir=none',
             f'--checkpoint_dir={tmp}/results',
             f'--export_dir={tmp}/saved_models', '--num_train=16',
             '--num_val=4', '--num_test=4', '--num_epochs=1',
             '--max_steps_per_epoch=1', '--batch_size=4']
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            cwd=tmp)
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


if __name__ == "__main__":
  unittest.main()
