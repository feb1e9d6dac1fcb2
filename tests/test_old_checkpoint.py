"""A training checkpoint written before the restructure of issue 24 loads.

tests/testdata/pre_restructure/ (its README.txt says which commit and command
wrote it) holds the old `tfunsup3d-train` directory of a tiny model and the
old model's decompose outputs on a fixed image. Today's one loading door
(`saving.load`), `Unsup3D.from_checkpoint`, training's resume and the
`tfunsup3d-demo` console script must read it and give the same numbers.
"""

import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from tests import tiny
from tfunsup3d import Unsup3D
from tfunsup3d import saving
from tfunsup3d.train import checkpoints
from tfunsup3d.train import optimizers as optimizers_lib

FIXTURE = os.path.join(tiny.REPO_ROOT, 'tests', 'testdata', 'pre_restructure')
CKPT = os.path.join(FIXTURE, 'ckpt')
ATOL = 1e-5
# Settings only the checkpoint's config.yml carries (the weights cannot tell).
OWN = dict(nf_depth=2, zdim_depth=8, nf_encoder=2, nf_conf=2, zdim_conf=8,
           gn_channels=1, lam_flip=0.3, min_depth=0.8, max_depth=1.25,
           z_translation_range=0.3, xyz_rotation_range=30.0)


def _old_outputs():
  with np.load(os.path.join(FIXTURE, 'decompose.npz')) as data:
    return {k: data[k] for k in data.files}


class OldCheckpointTest(tf.test.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.old = _old_outputs()

  def assert_old_outputs(self, model, what):
    self.assertEqual({k: getattr(model.cfg, k) for k in OWN}, OWN, what)
    got = model.decompose(self.old['images'])
    for key, want in self.old.items():
      if key != 'images':
        np.testing.assert_allclose(got[key].numpy(), want, atol=ATOL, rtol=0,
                                   err_msg=f'{what}: {key}')

  def test_saving_load_directory_prefix_and_relative_path(self):
    for path in (CKPT, os.path.join(CKPT, 'ckpt-2'),
                 os.path.relpath(CKPT)):  # (A relative dir once failed.)
      model = saving.load(path)
      self.assert_old_outputs(model, path)

  def test_from_checkpoint(self):
    self.assert_old_outputs(Unsup3D.from_checkpoint(CKPT), 'from_checkpoint')

  def test_resume_reads_the_training_state(self):
    work = tempfile.mkdtemp(prefix='tfunsup3d-old-')
    self.addCleanup(shutil.rmtree, work, ignore_errors=True)
    directory = shutil.copytree(CKPT, os.path.join(work, 'ckpt'))
    model = Unsup3D(saving.load(CKPT).cfg)  # Fresh weights, the old config.
    optimizers = optimizers_lib.build_optimizers(model.networks, model.cfg)
    ckpts = checkpoints.Checkpoints(directory, model, optimizers)
    self.assertEqual(ckpts.restore(), os.path.join(directory, 'ckpt-2'))
    state = ckpts.state.get()
    self.assertEqual((state['epoch'], state['step'], state['epoch_step']),
                     (1, 2, 0))
    self.assertEqual([int(o.iterations.numpy()) for o in optimizers.values()],
                     [2] * len(optimizers))
    self.assert_old_outputs(model, 'resume')
    self.assertEqual(sorted(os.listdir(directory)), sorted(os.listdir(CKPT)))

  @pytest.mark.slow
  def test_demo_script(self):
    work = tempfile.mkdtemp(prefix='tfunsup3d-old-demo-')
    self.addCleanup(shutil.rmtree, work, ignore_errors=True)
    image = np.round(self.old['images'][0] * 255).astype(np.uint8)
    path = tiny.write_image(os.path.join(work, 'in', 'face.png'), image)
    self.assertAllEqual(np.asarray(Image.open(path)), image)
    out = os.path.join(work, 'out')
    proc = tiny.run_script('demo', f'--input={path}', f'--checkpoint={CKPT}',
                           f'--output_dir={out}', '--detect=off',
                           '--output_size=64', '--num_frames=2')
    self.assertEqual(proc.returncode, 0, proc.stderr[-3000:])
    with open(os.path.join(out, 'face', 'factors.json')) as f:
      factors = json.load(f)
    view = self.old['view'][0]
    rotation = factors['view']['rotation_degrees']
    self.assertAllClose(
        [rotation['pitch_x'], rotation['yaw_y'], rotation['roll_z']],
        np.degrees(view[:3]), atol=1e-3, rtol=0)
    self.assertAllClose(factors['view']['translation'], view[3:], atol=ATOL,
                        rtol=0)
    self.assertAllClose(factors['light']['direction'],
                        self.old['canon_light_d'][0], atol=ATOL, rtol=0)


if __name__ == '__main__':
  tf.test.main()
