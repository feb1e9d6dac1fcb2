"""What a user can hand tfunsup3d-synth and tfunsup3d-quickstart: one line,
exit 2, nothing of theirs changed and no partial split left behind.
"""

import os

import pytest

from tests import tiny
from tests.reliability import common

SMALL = ['--num_train=8', '--num_val=0', '--num_test=0', '--image_size=64']


def _user_data(root):
  os.makedirs(root / 'train')
  (root / 'train' / 'mine.png').write_bytes(b'the user\'s file')
  return root


@pytest.mark.parametrize('make, extra, needles', [
    (lambda p: p.write_text('x') and p, [], ['is a file, not a directory']),
    (_user_data, [], ['exists and is not empty', '--overwrite']),
    (None, ['--num_train=-1'], ['num_train']),
    (None, ['--max_yaw=nan'], ['--max_yaw must be a finite number']),
], ids=['file', 'not_empty', 'negative', 'nan'])
def test_synth_bad_input(tmp_path, make, extra, needles):
  out = tmp_path / 'out'
  if make:
    make(out)
  before = common.listing(tmp_path)
  result = common.run('synth', f'--out_dir={out}', *SMALL, *extra,
                      cwd=tmp_path)
  tiny.assert_one_line_error(result, 'synth', *needles)
  assert common.listing(tmp_path) == before


def test_synth_full_disk_leaves_no_partial_split(tmp_path):
  with common.tmpfs(tmp_path / 'disk', 'size=64k') as disk:
    result = common.run('synth', f'--out_dir={disk}/data', *SMALL,
                        '--num_train=64', cwd=tmp_path)
    tiny.assert_one_line_error(result, 'synth', f'{disk}/data',
                               'the disk is full')
    assert os.listdir(disk / 'data') == []


def test_synth_read_only(tmp_path):
  with common.tmpfs(tmp_path / 'ro', 'ro,size=64k') as disk:
    result = common.run('synth', f'--out_dir={disk}/data', *SMALL,
                        cwd=tmp_path)
    tiny.assert_one_line_error(result, 'synth', 'Read-only file system',
                               'not writable')


@pytest.mark.parametrize('setup, needles, extra', [
    ('user_data', ['holds files that tfunsup3d-synth did not write'], []),
    ('ckpt_file', ['is a file, not a directory'], []),
    # Was: the data written, 0 epochs, then "No checkpoint in ...".
    (None, ['num_epochs=0 trains nothing', 'pass --num_epochs=1'],
     ['--num_epochs=0']),
], ids=['user_data', 'ckpt_file', 'zero_epochs'])
def test_quickstart_refuses_before_writing(tmp_path, setup, needles, extra):
  data, run_dir = tmp_path / 'data', tmp_path / 'run'
  if setup == 'user_data':
    _user_data(data)
  elif setup == 'ckpt_file':
    run_dir.write_text('x')
  before = common.listing(tmp_path)
  result = common.run(
      'quickstart', '--config=' + str(common.ROOT / 'configs/quickstart.yml'),
      f'--train_val_data_dir={data}', f'--checkpoint_dir={run_dir}',
      '--num_train=8', '--num_val=4', '--num_test=4', *extra, cwd=tmp_path)
  tiny.assert_one_line_error(result, 'quickstart', *needles)
  assert common.listing(tmp_path) == before
