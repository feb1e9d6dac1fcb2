"""Tests of experiments.reference_code (the authors' code on the synthetic data)."""

import importlib.util
import os
import tempfile

import numpy as np
import tensorflow as tf

from experiments import reference_code
from tfunsup3d import config as config_lib
from tfunsup3d import render
from tfunsup3d.render import rasterizer

HAS_TORCH = importlib.util.find_spec('torch') is not None


class ArgumentsTest(tf.test.TestCase):

  def test_bad_arguments_are_errors(self):
    for argv in ([], ['--reference_dir=x', '--steps=0'],
                 ['--reference_dir=x', '--eval_every=0']):
      with self.assertRaises(SystemExit, msg=argv):
        reference_code.parse_args(argv)

  def test_a_directory_without_the_reference_is_named(self):
    tmp = tempfile.mkdtemp()
    cfg = config_lib.load(os.path.join('configs', 'quickstart.yml'), [])
    expected = tmp if HAS_TORCH else 'torch==2.13.0'
    with self.assertRaisesRegex(SystemExit, expected):
      reference_code._import_reference(tmp, cfg, False)  # pylint: disable=protected-access

  def test_perceptual_loss_is_refused(self):
    cfg = config_lib.load(os.path.join('configs', 'quickstart.yml'),
                          ['lam_perc=1'])
    with self.assertRaisesRegex(SystemExit, 'lam_perc=0'):
      reference_code.build_reference_model(
          reference_code.parse_args(['--reference_dir=x']), cfg)


class MarkdownTest(tf.test.TestCase):

  def test_one_row_per_eval(self):
    test = dict(side_mean=4.2, mad_mean=101.6, relief_spread=0.11,
                diag_best_relief_scale=0.25, diag_light_tilt_slope=-0.37,
                diag_yaw_std_deg=4.3, diag_gt_yaw_std_deg=17.2,
                diag_yaw_corr=-0.02, diag_yaw_tx_corr=-0.84)
    result = {
        'settings': dict(torch='2.13.0', config='c.yml', overrides=[],
                         reference_sizes=False, seed=0, steps=300,
                         batch_size=16),
        'data_relief_spread': 0.074,
        'curve': [{'step': 50, 'test': test}, {'step': 300, 'test': test}]}
    md = reference_code.markdown(result)
    self.assertIn('| 300 | 4.200 | 101.6 | 0.110 | 0.25 | -0.37 | '
                  '4.3° (17.2°) | -0.02 / -0.84 |', md)
    self.assertIn('| 50 |', md)
    self.assertIn("the config's network sizes", md)
    self.assertNotIn('![', md)  # no picture named
    md = reference_code.markdown(dict(result, depth_png='r_depth.png'))
    self.assertIn('![canonical depth](r_depth.png)', md)


class DepthRendererTest(tf.test.TestCase):
  """The neural_renderer stand-in against this package's rasteriser."""

  def test_depth_and_gradient_match_the_rasteriser(self):
    if not HAS_TORCH:
      self.skipTest('PyTorch is not installed (experiments.reference_code only)')
    import torch  # pylint: disable=g-import-not-at-top
    size = 16
    K = render.intrinsics(size, 10.0)
    rng = np.random.default_rng(0)
    canon = 1.0 + 0.05 * rng.standard_normal((2, size, size))
    view = tf.constant([[0.1, 0.4, 0.05, 0.01, -0.01, 0.0],
                        [-0.05, -0.3, 0.0, 0.0, 0.01, 0.0]], tf.float32)
    points = render.depth_to_points(tf.constant(canon, tf.float32), K)
    vertices = render.transform_points(tf.reshape(points, [2, -1, 3]), view,
                                       1.0)
    faces = render.grid_faces(size, size)
    weights = rng.standard_normal((2, size, size)).astype(np.float32)

    stub = reference_code._depth_renderer(torch)(  # pylint: disable=protected-access
        K=torch.from_numpy(K.numpy())[None], image_size=size)
    verts_t = torch.from_numpy(vertices.numpy()).requires_grad_(True)
    depth_t = stub.render_depth(
        verts_t, torch.from_numpy(faces.numpy())[None].int())
    valid = (depth_t < 50).detach()
    (depth_t * torch.from_numpy(weights) * valid).sum().backward()

    verts = tf.Variable(vertices)
    with tf.GradientTape() as tape:
      depth = rasterizer.rasterize_depth(verts, faces, K, size, size)
      loss = tf.reduce_sum(depth * weights * tf.cast(depth < 50, tf.float32))
    grad = tape.gradient(loss, verts)
    self.assertAllEqual(valid.numpy(), depth.numpy() < 50)
    self.assertGreater(valid.numpy().mean(), 0.5)
    ok = valid.numpy()
    self.assertAllClose(depth_t.detach().numpy()[ok], depth.numpy()[ok],
                        atol=1e-5)
    scale = np.abs(grad.numpy()).max()
    self.assertGreater(scale, 0.0)
    self.assertAllClose(verts_t.grad.numpy(), grad.numpy(), atol=1e-4 * scale)


class DepthStripTest(tf.test.TestCase):

  def test_rows_and_near_is_bright(self):
    images = np.full([2, 4, 4, 3], 0.5)
    bowl = np.ones([2, 4, 4])
    bowl[:, 1:3, 1:3] = 1.1  # hollow: the middle is far
    dome = 2.0 - bowl  # convex: the middle is near
    strip = reference_code.depth_strip(images, bowl, dome)
    self.assertEqual(strip.shape, (12, 8, 3))
    self.assertEqual(strip.dtype, np.uint8)
    self.assertAllEqual(strip[:4], np.full([4, 8, 3], 128))
    self.assertEqual(strip[4 + 1, 1, 0], 0)  # model: far middle dark
    self.assertEqual(strip[4, 0, 0], 255)
    self.assertEqual(strip[8 + 1, 5, 0], 255)  # generator: near middle bright
    self.assertEqual(strip[8, 4, 0], 0)
