"""Explanations (tf-keras-vis) of the light and view encoders."""

import os
import shutil
import tempfile
import unittest

import numpy as np
from PIL import Image

from tests import tiny
from tfunsup3d.demo import explain
from tfunsup3d.demo import inputs


class ExplainTest(unittest.TestCase):

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.model = tiny.tiny_model()
    cls.images = np.stack([
        inputs.resize(tiny.face_like_image(64, 64, seed=s) / 255.0, 64)
        for s in range(2)]).astype(np.float32)
    cls.explainer = explain.Explainer(cls.model, smooth_samples=2)
    cls.maps = cls.explainer.explain(cls.images)

  def test_functional_encoders_equal_the_networks(self):
    for name in ('netL', 'netV'):
      net = getattr(self.model, name)
      functional = self.explainer.functional[name]
      np.testing.assert_allclose(
          functional.predict_on_batch([self.images]),
          net(self.images * 2.0 - 1.0).numpy(), atol=1e-5, err_msg=name)
      self.assertEqual(explain.default_gradcam_layer(functional),
                       'network_7_relu')
      self.assertEqual(functional.get_layer('network_7_relu').output.shape,
                       (None, 4, 4, 8 * 4))

  def test_maps_for_every_method_and_target(self):
    self.assertEqual(set(self.maps), {(m, t) for m in explain.METHODS
                                      for t in explain.TARGETS})
    for key, value in self.maps.items():
      self.assertEqual(value.shape, (2, 64, 64), key)
      self.assertTrue(np.all(np.isfinite(value)), key)
      self.assertGreaterEqual(value.min(), 0.0, key)
      self.assertLessEqual(value.max(), 1.0 + 1e-6, key)
    # Saliency is non-trivial for every target.
    for target in explain.TARGETS:
      self.assertGreater(self.maps[('saliency', target)].max(), 0.5, target)

  def test_grid_image_size(self):
    grid = explain.explanation_grid(self.images[0], self.maps, 0,
                                    list(explain.TARGETS),
                                    list(explain.METHODS), tile=48)
    self.assertEqual(grid.size, explain.grid_size(5, 2, 48))
    self.assertEqual(grid.size, (48 * 6, 14 + 48 * 2))

  def test_run_explain_writes_grids(self):
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-explain-')
    self.addCleanup(shutil.rmtree, tmp, True)
    path = tiny.write_image(os.path.join(tmp, 'in', 'face.png'),
                            tiny.face_like_image(80, 100))
    with open(os.path.join(tmp, 'in', 'bad.png'), 'w') as f:
      f.write('nope')
    explainer = explain.Explainer(self.model, targets=['view_yaw'],
                                  methods=['gradcam++'])
    result = explain.run_explain(self.model,
                                 inputs.list_inputs(os.path.dirname(path)),
                                 os.path.join(tmp, 'out'), explainer, tile=40)
    self.assertEqual(result['num_processed'], 1)
    self.assertEqual(result['num_skipped'], 1)
    self.assertEqual(result['skipped'][0].reason, inputs.UNREADABLE)
    self.assertTrue(result['skipped'][0].path.endswith('bad.png'))
    with Image.open(result['written'][0]) as im:
      self.assertEqual(im.size, explain.grid_size(1, 1, 40))
    self.assertTrue(result['written'][0].endswith('face_explain.png'))

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, 'target'):
      explain.Explainer(self.model, targets=['light_z'])
    with self.assertRaisesRegex(ValueError, 'method'):
      explain.Explainer(self.model, methods=['lime'])
    with self.assertRaisesRegex(ValueError, 'gradcam_layer'):
      explain.Explainer(self.model, gradcam_layer='nope')
    for kwargs, needle in ((dict(smooth_samples=-1), 'smooth_samples'),
                           (dict(smooth_samples=257), 'smooth_samples'),
                           (dict(smooth_noise=float('nan')), 'smooth_noise'),
                           (dict(smooth_noise=-0.1), 'smooth_noise')):
      with self.assertRaisesRegex(ValueError, needle + ' must be in'):
        explain.Explainer(self.model, **kwargs)

  def test_smoothgrad_is_seeded_and_leaves_numpy_alone(self):
    one = explain.Explainer(self.model, targets=['view_yaw'],
                            methods=['saliency'], smooth_samples=2, seed=5)
    np.random.seed(123)
    expected_draw = np.random.rand()
    np.random.seed(123)
    first = one.explain(self.images)[('saliency', 'view_yaw')]
    self.assertEqual(np.random.rand(), expected_draw)  # State put back.
    again = one.explain(self.images)[('saliency', 'view_yaw')]
    np.testing.assert_array_equal(first, again)
    other = explain.Explainer(self.model, targets=['view_yaw'],
                              methods=['saliency'], smooth_samples=2, seed=6)
    self.assertFalse(np.array_equal(
        first, other.explain(self.images)[('saliency', 'view_yaw')]))


if __name__ == '__main__':
  unittest.main()
