"""Tests for tfunsup3d.render.view."""

import importlib
import json
import subprocess
import sys

import numpy as np
import tensorflow as tf

from tests import fixtures
from tfunsup3d.render import view


def _euler_numpy(rx, ry, rz):
  cx, sx, cy, sy, cz, sz = (np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry),
                            np.cos(rz), np.sin(rz))
  mx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
  my = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
  mz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
  return mz @ my @ mx


class ViewTest(tf.test.TestCase):

  def test_rotation_matches_rz_ry_rx(self):
    angles = np.array([[0.3, -0.5, 0.7], [1.0, 0.2, -0.4]], np.float32)
    rot = view.rotation_matrix(angles).numpy()
    for a, r in zip(angles, rot):
      self.assertAllClose(r, _euler_numpy(*a), atol=1e-6)

  def test_rotation_matches_reference(self):
    fixtures.require_reference(self)
    ref = fixtures.reference_outputs_nhwc()
    rot, trans = view.view_to_transform(ref['view'])
    self.assertAllClose(rot, ref['rot_mat'], atol=1e-6)
    self.assertAllClose(trans, ref['trans_xyz'][:, 0], atol=1e-7)

  def test_yaw_quarter_turn_about_centre(self):
    # 90 deg yaw about (0,0,1): (1,0,1) -> (0,0,0) since R(1,0,0)=(0,0,-1).
    v = np.array([[0.0, np.pi / 2, 0.0, 0.0, 0.0, 0.0]], np.float32)
    p = view.transform_points(np.array([[[1.0, 0.0, 1.0]]], np.float32), v,
                              1.0).numpy()
    self.assertAllClose(p[0, 0], [0.0, 0.0, 0.0], atol=1e-6)

  def test_centre_fixed_and_translation(self):
    v = np.array([[0.3, 0.2, 0.1, 0.05, -0.02, 0.01]], np.float32)
    p = view.transform_points(np.array([[[0.0, 0.0, 1.0]]], np.float32), v,
                              1.0).numpy()
    self.assertAllClose(p[0, 0], [0.05, -0.02, 1.01], atol=1e-6)

  def test_inverse_round_trip(self):
    pts = tf.random.uniform([2, 10, 3], -1, 1, seed=3)
    v = tf.random.uniform([2, 6], -0.5, 0.5, seed=4)
    there = view.transform_points(pts, v, 1.0)
    back = view.transform_points(there, v, 1.0, inverse=True)
    self.assertAllClose(back, pts, atol=1e-5)

  def test_short_views(self):
    rot, trans = view.view_to_transform(np.zeros([2, 5], np.float32))
    self.assertEqual(trans.shape, (2, 3))
    with self.assertRaisesRegex(ValueError, '3, 5 or 6'):
      view.view_to_transform(np.zeros([2, 4], np.float32))


_TFG = 'tensorflow_graphics.geometry.transformation'
_TFG_MODULES = ('', '.rotation_matrix_3d', '.quaternion', '.axis_angle',
                '.euler', '.rotation_matrix_common')
_ALL_OF_TFG = ('import importlib, json; print(json.dumps({m: importlib.'
               'import_module(%r + m).__all__ for m in %r}))' %
               (_TFG, _TFG_MODULES))


class TfgImportTest(tf.test.TestCase):

  def test_fast_export_api_gives_tfg_its_own_all(self):
    # This process imported tf-graphics through view.py (the fast
    # export_api); a fresh one without tfunsup3d runs tf-graphics' own.
    from tensorflow_graphics.util import export_api  # pylint: disable=g-import-not-at-top
    self.assertIs(export_api.get_functions_and_classes,
                  view._public_functions_and_classes)  # pylint: disable=protected-access
    self.assertIs(export_api.get_modules, view._public_modules)  # pylint: disable=protected-access
    proc = subprocess.run([sys.executable, '-c', _ALL_OF_TFG],
                          capture_output=True, text=True, check=True)
    original = json.loads(proc.stdout.strip().splitlines()[-1])
    ours = {m: importlib.import_module(_TFG + m).__all__
            for m in _TFG_MODULES}
    self.assertEqual(ours, original)
    self.assertIn('from_euler', ours['.rotation_matrix_3d'])
    self.assertIn('rotation_matrix_3d', ours[''])


if __name__ == '__main__':
  tf.test.main()
