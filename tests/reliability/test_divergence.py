"""A run that diverges stops with exit 3 naming a checkpoint that trains on.

Issue 25 item 2: with a huge lr the named "last good" checkpoint used to hold
the exploded weights (|w| ~ 1e9), so every resume failed again. Now no state
with a non-finite or > WEIGHT_LIMIT weight is saved, and on resume the
config's lr replaces the one saved in the optimisers.
"""

import json
import math
import os

from tests.reliability import common
from tests import tiny


def test_huge_lr_stops_naming_a_checkpoint_that_trains_on(tmp_path):
  data = tiny.write_dataset(str(tmp_path / 'data'), n_train=8, n_val=0)
  run_dir = tmp_path / 'run'
  flags = common.tiny_flags(train_val_data_dir=data, checkpoint_dir=run_dir)
  first = common.run('train', *flags, cwd=tmp_path)  # 2 steps at lr 1e-4.
  assert first.returncode == 0, first.stderr[-3000:]
  assert sorted(p for p in os.listdir(run_dir) if p.startswith('ckpt-')) == [
      'ckpt-2.data-00000-of-00001', 'ckpt-2.index']

  # One step at lr 1e9 moves every weight by ~1e9 (Adam): diverged.
  huge = common.run('train', *flags, '--lr=1e9', '--num_epochs=3',
                    '--save_checkpoint_steps=1', cwd=tmp_path)
  line = tiny.assert_one_line_error(
      huge, 'train', 'diverged', 'max |w|',
      f'last good checkpoint: {run_dir}/ckpt-2 ', status=3)
  assert 'global step 3' in line, line
  assert not list(run_dir.glob('ckpt-3*')), os.listdir(run_dir)

  # Resuming from the named checkpoint at the normal lr trains on.
  again = common.run('train', *flags, '--num_epochs=2', cwd=tmp_path)
  assert again.returncode == 0, again.stderr[-3000:]
  assert f'Resumed from {run_dir}/ckpt-2' in again.stderr
  metrics = json.loads((run_dir / 'metrics.json').read_text())
  assert sorted(metrics) == ['0', '1']
  assert metrics['1']['step'] == 4
  losses = metrics['1']['train']
  assert all(math.isfinite(v) for v in losses.values()), losses
  assert losses['loss_total'] < 10 * metrics['0']['train']['loss_total']
