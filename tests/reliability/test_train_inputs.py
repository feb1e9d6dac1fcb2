"""What a user can hand tfunsup3d-train, refused in one line before anything
is built or written (issue 25 items 5 and 7, and beyond).

Each case runs the real console script; none may leave the checkpoint
directory (or anything else) behind.
"""

import os

import pytest

from tests.reliability import common
from tests import tiny


def _empty_dir(root):
  os.makedirs(os.path.join(root, 'train'))
  return root


def _only_bad_files(root):
  split = os.path.join(root, 'train')
  os.makedirs(split)
  for name in ('a.png', 'b.jpg'):
    with open(os.path.join(split, name), 'wb') as f:
      f.write(b'not an image')
  return root


CASES = [  # (data maker or None, extra flags, needles of the error line)
    ('good', ['--batch_size=-4'], ['batch_size must be >= 1', '-4']),
    ('good', ['--lr=nan'], ['lr must be a finite number']),
    ('good', ['--min_depth=inf'], ['min_depth must be']),
    ('good', ['--image_size=70'], ['image_size=70', 'multiples of 16']),
    ('missing', [], ['train data directory does not exist']),
    (_empty_dir, [], ['No usable images for the train split']),
    (_only_bad_files, [], ['No usable images for the train split',
                           '2 unreadable']),
    ('good', ['--batch_size=64'], ['fewer than batch_size=64']),
]


def _case_id(case):
  data, extra, _ = case
  return extra[0] if extra else getattr(data, '__name__', data)


@pytest.mark.parametrize('data, extra, needles', CASES,
                         ids=[_case_id(c) for c in CASES])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, data, extra,
                                                  needles):
  root = tmp_path / 'data'
  if data == 'good':
    tiny.write_dataset(str(root), n_train=8, n_val=0, with_depth=False)
  elif callable(data):
    data(str(root))
  before = common.listing(tmp_path)
  result = common.run('train', *common.tiny_flags(
      train_val_data_dir=root, checkpoint_dir=tmp_path / 'run',
      load_gt_depth=False), *extra, cwd=tmp_path)
  tiny.assert_one_line_error(result, 'train', *needles)
  assert common.listing(tmp_path) == before


def test_checkpoint_dir_that_is_a_file(tmp_path):
  root = tiny.write_dataset(str(tmp_path / 'data'), n_train=8, n_val=0)
  (tmp_path / 'run').write_text('a file')
  before = common.listing(tmp_path)
  result = common.run('train', *common.tiny_flags(
      train_val_data_dir=root, checkpoint_dir=tmp_path / 'run'), cwd=tmp_path)
  tiny.assert_one_line_error(result, 'train', f'{tmp_path}/run is a file')
  assert common.listing(tmp_path) == before



@pytest.mark.parametrize('script, flag', [
    ('train', 'checkpoint_dir'), ('train', 'train_val_data_dir'),
    ('demo', 'output_dir')])
def test_remote_paths_are_refused_not_made_locally(tmp_path, script, flag):
  # os.makedirs('gs://b/run') would make ./gs:/b/run and report success.
  root = tiny.write_dataset(str(tmp_path / 'data'), n_train=8, n_val=0)
  if script == 'train':
    args = common.tiny_flags(**{'train_val_data_dir': root,
                                'checkpoint_dir': tmp_path / 'run',
                                flag: 'gs://b/run'})
  else:
    args = ['--checkpoint=ckpt', f'--input={root}', '--output_dir=gs://b/run']
  before = common.listing(tmp_path)
  result = common.run(script, *args, cwd=tmp_path)
  tiny.assert_one_line_error(result, script, f'{flag} must be a local path',
                             f'{flag}=gs://b/run')
  assert common.listing(tmp_path) == before
