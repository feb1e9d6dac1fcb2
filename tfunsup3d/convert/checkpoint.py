"""Conversion between reference `.pth` checkpoints and tfunsup3d ones.

A tfunsup3d checkpoint directory holds `config.yml` and a TF checkpoint whose
root object has the model under the key `model` (what `tfunsup3d-train`
writes and `Unsup3D.from_checkpoint` reads).
"""

import os
from typing import Optional

import tensorflow as tf

from tfunsup3d.convert import reference, torch_format


def write_tf_checkpoint(model, out_dir: str, overwrite: bool = False) -> str:
  """Saves `model` (an Unsup3D) as a tfunsup3d checkpoint directory.

  Returns:
    The checkpoint prefix written.

  Raises:
    FileExistsError: `out_dir` already holds a checkpoint and not overwrite.
  """
  if tf.train.latest_checkpoint(out_dir) is not None and not overwrite:
    raise FileExistsError(f'{out_dir} already holds a checkpoint; pass '
                          '--overwrite to replace it.')
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, 'config.yml'), 'w', encoding='utf-8') as f:
    f.write(model.cfg.to_yaml())
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                       out_dir, max_to_keep=1)
  return manager.save()


def write_reference_pth(model, path: str, epoch: Optional[int] = None):
  """Writes the model's networks as a reference-format `.pth` (zip container,
  keys netD netA netL netV [netC], readable by `torch.load` and by the
  authors' `Trainer.load_checkpoint` with `optim=False`)."""
  state = {name: reference.state_dict_from_model(net, name)
           for name, net in model.networks.items()}
  if epoch is not None:
    state['epoch'] = int(epoch)
  tmp = path + '.tmp'
  torch_format.save(state, tmp)
  os.replace(tmp, path)  # never leave a half-written file under `path`
  return path
