"""Tests of the tfunsup3d-convert script and of the formats it converts
(tfunsup3d.saving.save/load of directories and reference .pth files)."""

import os
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf

from tests import fixtures
from tests import testcase
from tests import tiny
from tfunsup3d import Unsup3D, saving
from tfunsup3d.convert import torch_format


class CheckpointConversionTest(testcase.TestCase):

  def tmp(self):
    d = tempfile.TemporaryDirectory()
    self.addCleanup(d.cleanup)
    return d.name

  def test_tf_checkpoint_round_trip(self):
    model = tiny.tiny_model()
    out_dir = self.tmp()
    self.run_saving_test(model, tf.random.uniform([2, 64, 64, 3], seed=1),
                         out_dir)
    with self.assertRaises(FileExistsError):
      saving.save(model, out_dir)

  def test_reference_pth_round_trip(self):
    model = tiny.tiny_model(use_conf_map=False)
    path = os.path.join(self.tmp(), 'ckpt.pth')
    saving.save(model, path, epoch=3)
    state = torch_format.load(path)
    self.assertEqual(sorted(state), ['epoch', 'netA', 'netD', 'netL', 'netV',
                                    saving.PTH_CONFIG_KEY])
    self.assertEqual(state['netL']['network.0.weight'].shape, (4, 3, 4, 4))
    self.assertEqual(state['epoch'], 3)
    back = Unsup3D.from_checkpoint(path)
    self.assertFalse(back.cfg.use_conf_map)
    for name, net in model.networks.items():
      for a, b in zip(net.get_weights(), back.networks[name].get_weights()):
        self.assertAllEqual(a, b)

  def test_cli_reference_to_tf_and_back(self):
    fixtures.require_reference(self)
    tmp = self.tmp()
    src = fixtures.reference_path('ckpt_legacy_trainer.pth')
    cmd = [sys.executable, '-m', 'tfunsup3d.tools.convert', f'--input={src}',
           f'--output={tmp}/dir', '--border_depth=1.04']
    subprocess.run(cmd, check=True, capture_output=True)
    subprocess.run([sys.executable, '-m', 'tfunsup3d.tools.convert',
                    f'--input={tmp}/dir', f'--output={tmp}/back.pth'],
                   check=True, capture_output=True)
    ref = torch_format.load_state_dicts(src)
    back = torch_format.load_state_dicts(f'{tmp}/back.pth')
    for net in ('netD', 'netA', 'netL', 'netV', 'netC'):
      self.assertEqual(list(ref[net]), list(back[net]))
      for key in ref[net]:
        np.testing.assert_array_equal(ref[net][key], back[net][key])
    model = Unsup3D.from_checkpoint(f'{tmp}/dir')
    self.assertEqual(model.cfg.border_depth, 1.04)
    self.assertEqual(model.cfg.nf_depth, 16)

  def test_cli_errors_are_one_line(self):
    tmp = self.tmp()
    bad = os.path.join(tmp, 'evil.pth')
    with open(bad, 'wb') as f:
      f.write(b'not a checkpoint at all')
    for args, needle in (([f'--input={tmp}/none', f'--output={tmp}/o'],
                          'not found'),
                         ([f'--input={bad}', f'--output={tmp}/o'], 'evil.pth'),
                         ([], 'required')):
      proc = subprocess.run(
          [sys.executable, '-m', 'tfunsup3d.tools.convert', *args],
          capture_output=True, text=True)
      self.assertEqual(proc.returncode, 2, proc.stderr)
      last = proc.stderr.strip().splitlines()[-1]
      self.assertIn('tfunsup3d-convert: error:', last)
      self.assertIn(needle, last)


if __name__ == '__main__':
  tf.test.main()
