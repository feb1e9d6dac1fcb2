"""A checkpoint directory that cannot be written, or a disk that fills up
during a save: one line naming the directory and the cause, exit 2, no
`ckpt-*_temp/` debris, the previous checkpoints intact (issue 25 item 5).

As root, chmod cannot stop writes: the subprocess tests mount a small or a
read-only tmpfs (skipped where mounting is not allowed); the unit tests
inject the OSError / ResourceExhaustedError into the save.
"""

import errno
import os

import pytest
import tensorflow as tf

from tests.reliability import common
from tests import tiny
from tfunsup3d import errors
from tfunsup3d.train import checkpoints


def test_full_disk_during_a_save(tmp_path):
  data = tiny.write_dataset(str(tmp_path / 'data'), n_train=8, n_val=0)
  # One checkpoint of the tiny model takes ~20 MB: the second does not fit.
  with common.tmpfs(tmp_path / 'disk', 'size=32m') as disk:
    run_dir = disk / 'run'
    result = common.run('train', *common.tiny_flags(
        train_val_data_dir=data, checkpoint_dir=run_dir,
        save_checkpoint_steps=1), cwd=tmp_path)
    tiny.assert_one_line_error(
        result, 'train', f'Cannot save checkpoint ckpt-2 in {run_dir}',
        'the disk is full', f'previous checkpoint ({run_dir}/ckpt-1) is intact')
    assert sorted(os.listdir(run_dir)) == [
        'checkpoint', 'ckpt-1.data-00000-of-00001', 'ckpt-1.index',
        'config.yml']
    assert tf.train.latest_checkpoint(str(run_dir)) == f'{run_dir}/ckpt-1'


def test_read_only_checkpoint_dir(tmp_path):
  data = tiny.write_dataset(str(tmp_path / 'data'), n_train=8, n_val=0)
  with common.tmpfs(tmp_path / 'ro', 'ro,size=1m') as disk:
    result = common.run('train', *common.tiny_flags(
        train_val_data_dir=data, checkpoint_dir=disk / 'run'), cwd=tmp_path)
    tiny.assert_one_line_error(result, 'train', f'checkpoint_dir {disk}/run',
                               'Read-only file system', 'not writable')


class _Module(tf.Module):

  def __init__(self):
    super().__init__()
    self.w = tf.Variable(tf.ones([4]))


@pytest.mark.parametrize('error, hint', [
    (OSError(errno.EROFS, 'Read-only file system'), 'not writable'),
    (OSError(errno.EACCES, 'Permission denied'), 'not writable'),
    (tf.errors.ResourceExhaustedError(None, None, 'No space left on device'),
     'the disk is full')])
def test_failed_save_leaves_no_debris(tmp_path, monkeypatch, error, hint):
  ckpts = checkpoints.Checkpoints(str(tmp_path), _Module(), {})
  first = ckpts.save(0, 1, 1, {})
  before = sorted(os.listdir(tmp_path))
  manager = ckpts.manager

  def failing_save(checkpoint_number):
    prefix = os.path.join(str(tmp_path), f'ckpt-{checkpoint_number}')
    os.makedirs(prefix + '_temp')  # What TF leaves when a write fails.
    with open(prefix + '_temp/part-00000-of-00001.data-00000-of-00001',
              'wb') as f:
      f.write(b'partial')
    raise error

  monkeypatch.setattr(manager, 'save', failing_save)
  with pytest.raises(errors.UserError) as raised:
    ckpts.save(0, 2, 2, {})
  message = str(raised.value)
  assert message.startswith(f'Cannot save checkpoint ckpt-2 in {tmp_path}: ')
  assert hint in message and f'({first}) is intact' in message, message
  assert '\n' not in message
  assert sorted(os.listdir(tmp_path)) == before
  assert ckpts.latest == first


def _outputs_case(script, disk, root, ckpt):
  """The command line of `script` writing into `disk`, and what the disk may
  hold after the failure."""
  return {
      'demo': ([f'--checkpoint={ckpt}', f'--input={root}/train',
                f'--output_dir={disk}/demo', '--detect=off', '--nomesh'],
               # Only the summary of the images before the failing one.
               ['demo', 'demo/summary.json']),
      'explain': ([f'--checkpoint={ckpt}', f'--input={root}/train',
                   f'--output_dir={disk}/ex'], None),
      'export': ([f'--checkpoint={ckpt}', f'--export_dir={disk}/exp'],
                 []),  # Neither exp/ nor exp/tiny/ of a failed first export.
      'test': ([f'--checkpoint_dir={ckpt}', f'--test_data_dir={root}/train',
                f'--test_result_dir={disk}/res'], None),
      'convert_pth': ([f'--input={ckpt}', f'--output={disk}/m.pth'], []),
      'convert_dir': ([f'--input={ckpt}', f'--output={disk}/m'], []),
  }[script]


@pytest.mark.parametrize('script', ['demo', 'explain', 'export', 'test',
                                    'convert_pth', 'convert_dir'])
def test_a_full_disk_is_one_line_for_every_writer(tmp_path, script):
  # Before: a traceback (exit 1) from each, a half-written .pth temp file,
  # ckpt-1_temp/ or image folder left behind.
  root = tiny.write_dataset(str(tmp_path / 'data'), n_train=3, n_val=0)
  ckpt = tiny.write_checkpoint(tiny.tiny_model(), str(tmp_path / 'ckpt'))
  with common.tmpfs(tmp_path / 'disk', 'size=64k') as disk:
    args, left = _outputs_case(script, disk, root, ckpt)
    result = common.run(script.split('_')[0], *args, cwd=tmp_path)
    tiny.assert_one_line_error(result, script.split('_')[0], 'Cannot write',
                               'No space left on device', 'the disk is full')
    if left is not None:
      found = sorted(str(p.relative_to(disk)) for p in disk.rglob('*'))
      assert found == left, found
