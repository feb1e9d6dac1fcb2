"""The demo package: inputs, cropping, meshes, the per-image outputs, loading."""

import errno
import json
import os
import shutil
import tempfile
import unittest
from unittest import mock

import numpy as np
from PIL import Image
from PIL import ImageSequence
import pytest

from tests import tiny
from tfunsup3d import saving
from tfunsup3d.demo import animation
from tfunsup3d.demo import cli
from tfunsup3d.demo import inputs
from tfunsup3d.demo import mesh
from tfunsup3d.tools.flags import UserError


class ListInputsTest(unittest.TestCase):

  def setUp(self):
    self.tmp = tempfile.mkdtemp(prefix='tfunsup3d-demo-in-')
    self.addCleanup(shutil.rmtree, self.tmp, True)

  def _touch(self, rel, content=b'x'):
    path = os.path.join(self.tmp, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
      f.write(content)
    return path

  def test_files_folders_and_lists(self):
    a = self._touch('one/a.png')
    self._touch('one/sub/a.JPG')
    self._touch('one/notes.txt')
    self._touch('one/.hidden/c.png')
    b = self._touch('b.png')
    got = inputs.list_inputs(f'{os.path.join(self.tmp, "one")} , {b},{a}')
    self.assertEqual([g.name for g in got], ['a', 'sub_a', 'b', 'a_2'])
    self.assertEqual(got[0].path, a)
    self.assertEqual(got[2].path, b)
    comma = self._touch('x,y.png')  # Taken whole, as it exists.
    self.assertEqual([(g.path, g.name) for g in inputs.list_inputs(comma)],
                     [(comma, 'x_y')])

  def test_output_names_keep_any_script_and_stay_short_and_distinct(self):
    names = ['é space.png', '张三.png', 'new\nline.png', '-dash.png',
             'A.png', 'a.png', '..hidden-ish.png', '😀.png',
             'e\u0301t\u00e9.png',  # NFD then NFC: both 'été'
             '脸' * 80 + '.png']
    for name in names:
      self._touch('odd/' + name)
    got = {os.path.basename(g.path): g.name
           for g in inputs.list_inputs(os.path.join(self.tmp, 'odd'))}
    self.assertEqual(got['é space.png'], 'é_space')
    self.assertEqual(got['张三.png'], '张三')
    self.assertEqual(got['new\nline.png'], 'new_line')
    self.assertEqual(got['-dash.png'], 'dash')
    self.assertEqual(got['..hidden-ish.png'], 'hidden-ish')
    self.assertEqual(got['😀.png'], 'image')  # No letter or digit left.
    self.assertEqual(got['e\u0301t\u00e9.png'], 'été')
    self.assertEqual(sorted([got['A.png'], got['a.png']]), ['A', 'a_2'])
    long_name = got['脸' * 80 + '.png']
    self.assertEqual(long_name, '脸' * 40)  # 120 bytes of UTF-8.
    self.assertEqual(len(set(n.casefold() for n in got.values())), len(names))
    for name in got.values():  # Each is a usable folder name.
      os.makedirs(os.path.join(self.tmp, 'made', name))

  def test_fifos_are_left_out_and_broken_links_kept_to_be_reported(self):
    a = self._touch('one/a.png')
    os.mkfifo(os.path.join(self.tmp, 'one', 'b.png'))  # Reading it would hang.
    os.symlink(os.path.join(self.tmp, 'gone.png'),
               os.path.join(self.tmp, 'one', 'c.png'))
    got = inputs.list_inputs(os.path.join(self.tmp, 'one'))
    self.assertEqual([(g.path, g.name) for g in got],
                     [(a, 'a'), (os.path.join(self.tmp, 'one', 'c.png'), 'c')])
    with self.assertRaisesRegex(UserError, 'neither a file nor a folder'):
      inputs.list_inputs(os.path.join(self.tmp, 'one', 'b.png'))

  def test_errors(self):
    with self.assertRaisesRegex(UserError, 'No input'):
      inputs.list_inputs(' , ')
    with self.assertRaisesRegex(UserError, 'not found'):
      inputs.list_inputs(os.path.join(self.tmp, 'missing.png'))
    missing = os.path.join(self.tmp, 'p,q.png')
    with self.assertRaisesRegex(UserError, f'Input not found: '
                                f'{os.path.join(self.tmp, "p")} '
                                r'\(--input is split at commas'):
      inputs.list_inputs(missing)
    os.makedirs(os.path.join(self.tmp, 'empty'))
    self._touch('texts/readme.txt')
    for folder in ('empty', 'texts'):
      with self.assertRaisesRegex(UserError, 'No image files in folder'):
        inputs.list_inputs(os.path.join(self.tmp, folder))

  def test_readability_check(self):
    bad = self._touch('bad.png', b'not an image')
    good = tiny.write_image(os.path.join(self.tmp, 'good.png'))
    self.assertFalse(inputs.is_readable(bad))
    self.assertTrue(inputs.is_readable(good))
    with self.assertRaisesRegex(UserError, 'bad.png'):
      inputs.check_some_readable(inputs.list_inputs(bad))
    inputs.check_some_readable(inputs.list_inputs(f'{bad},{good}'))


class ReadAndCropTest(unittest.TestCase):

  def setUp(self):
    self.tmp = tempfile.mkdtemp(prefix='tfunsup3d-demo-read-')
    self.addCleanup(shutil.rmtree, self.tmp, True)

  def test_read_modes(self):
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[..., 3] = 10
    Image.fromarray(rgba).save(os.path.join(self.tmp, 'rgba.png'))
    image = inputs.read_image(os.path.join(self.tmp, 'rgba.png'))
    self.assertEqual(image.shape, (5, 7, 3))
    np.testing.assert_allclose(image[0, 0], [1.0, 0.0, 0.0])
    Image.fromarray(np.full((4, 4), 32768, np.uint16)).save(
        os.path.join(self.tmp, 'g16.png'))
    image = inputs.read_image(os.path.join(self.tmp, 'g16.png'))
    np.testing.assert_allclose(image, 32768 / 65535.0, atol=1e-6)
    with open(os.path.join(self.tmp, 'bad.jpg'), 'w') as f:
      f.write('text')
    with self.assertRaisesRegex(ValueError, 'UnidentifiedImageError'):
      inputs.read_image(os.path.join(self.tmp, 'bad.jpg'))

  def test_exif_orientation_turns_the_photo_upright(self):
    # As the training pipeline reads it (tests/data/test_images.py).
    stored = np.random.default_rng(0).integers(0, 256, (6, 4, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 8  # stored turned: view it turned 90 degrees anticlockwise
    path = os.path.join(self.tmp, 'tagged.png')
    Image.fromarray(stored).save(path, exif=exif)
    np.testing.assert_allclose(inputs.read_image(path),
                               np.rot90(stored) / 255.0, atol=1e-6)

  def test_square_box_and_edge_padding_crop(self):
    self.assertEqual(inputs.square_box(90, 120), (0, 15, 90, 90))
    self.assertEqual(inputs.square_box(121, 80), (20, 0, 80, 80))
    image = np.arange(4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)
    out = inputs.crop(image, (-1, 3, 3, 4))
    self.assertEqual(out.shape, (3, 4, 3))
    np.testing.assert_array_equal(out[0], out[1])  # top row repeated.
    np.testing.assert_array_equal(out[1, :2], image[0, 3:5])
    np.testing.assert_array_equal(out[1, 2], image[0, 4])  # right edge.

  def test_face_box_follows_the_reference_demo(self):
    # Box x=40, y=30, w=60, h=80: centre (70, 70), half = int(70 / 2 * 1.1)
    # = 38; top = floor(70 + 0.15 * 38) - 38 = 37, left = 70 - 38 = 32.
    box = inputs.face_box(np.zeros((200, 200, 3)),
                          {'box': [40, 30, 60, 80], 'confidence': 0.99})
    self.assertEqual(box, (37, 32, 76, 76))

  def test_prepare_square_and_config(self):
    image = tiny.face_like_image(90, 120).astype(np.float32) / 255.0
    prepared = inputs.prepare(image, 64)
    self.assertEqual(prepared.image.shape, (64, 64, 3))
    self.assertEqual(prepared.box, (0, 15, 90, 90))
    self.assertEqual(prepared.crop.shape, (90, 90, 3))
    self.assertGreaterEqual(prepared.image.min(), 0.0)
    self.assertLessEqual(prepared.image.max(), 1.0)
    prepared = inputs.prepare(image, 64, crop_mode='config', config_crop=80)
    self.assertEqual(prepared.box, (5, 20, 80, 80))
    prepared = inputs.prepare(image, 64, crop_mode='config', config_crop=None)
    self.assertEqual(prepared.box, (0, 0, 90, 120))
    with self.assertRaisesRegex(ValueError, 'smaller than the crop'):
      inputs.prepare(image, 64, crop_mode='config', config_crop=100)

  def test_detect_modes(self):
    self.assertEqual(cli.parse_detect('auto'), 'auto')
    self.assertEqual(cli.parse_detect('True'), 'on')
    self.assertEqual(cli.parse_detect('no'), 'off')
    with self.assertRaisesRegex(ValueError, 'detect'):
      cli.parse_detect('maybe')
    self.assertTrue(inputs.resolve_detect('on'))
    self.assertFalse(inputs.resolve_detect('off', 'celeba'))
    self.assertFalse(inputs.resolve_detect('auto', 'cars', 'results/cars'))
    self.assertEqual(inputs.resolve_detect('auto', 'unsup3d',
                                           'pretrained_celeba/ckpt.pth'),
                     inputs.mtcnn_available())
    self.assertTrue(inputs.is_face_model('synface'))
    self.assertFalse(inputs.is_face_model('cat', None))

  def test_missing_packages_are_named(self):
    cli.require_modules('x', 'numpy')
    with self.assertRaisesRegex(UserError, r'needs no_such_pkg_123: pip '
                                r'install "tfunsup3d\[demo\]"'):
      cli.require_modules('x', 'numpy', 'no_such_pkg_123')


class MeshTest(unittest.TestCase):

  def test_flat_depth_mesh_faces_the_viewer(self):
    from tfunsup3d import render  # pylint: disable=g-import-not-at-top
    h, w = 6, 8
    depth = np.full((h, w), 1.0, np.float32)
    normals = np.zeros((h, w, 3), np.float32)
    normals[..., 2] = 1.0  # renderer convention: away from the camera.
    arrays = mesh.mesh_arrays(depth, render.intrinsics(8, 10.0), 1.0, normals)
    self.assertEqual(arrays['vertices'].shape, (h * w, 3))
    self.assertEqual(arrays['faces'].shape, (2 * (h - 1) * (w - 1), 3))
    v = arrays['vertices']
    np.testing.assert_allclose(v[:, 2], 0.0, atol=1e-6)  # origin at centre.
    self.assertGreater(v[0, 1], v[-1, 1])  # first row on top: y up.
    self.assertLess(v[0, 0], v[w - 1, 0])  # x right.
    tri = v[arrays['faces']]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    self.assertTrue(np.all(face_normals[:, 2] > 0))  # counter-clockwise.
    np.testing.assert_allclose(arrays['normals'],
                               np.tile([0.0, 0.0, 1.0], (h * w, 1)), atol=1e-6)
    uv = arrays['uvs']
    np.testing.assert_allclose(uv[0], [0.5 / w, 1 - 0.5 / h])
    np.testing.assert_allclose(uv[-1], [1 - 0.5 / w, 0.5 / h])

  def test_obj_and_glb_load_back(self):
    import trimesh  # pylint: disable=g-import-not-at-top
    from tfunsup3d import render  # pylint: disable=g-import-not-at-top
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-mesh-')
    self.addCleanup(shutil.rmtree, tmp, True)
    h, w = 5, 7
    rng = np.random.RandomState(0)
    depth = (1.0 + 0.02 * rng.randn(h, w)).astype(np.float32)
    arrays = mesh.mesh_arrays(depth, render.intrinsics(7, 10.0), 1.0)
    texture = rng.rand(h, w, 3)
    obj, mtl, png = mesh.write_obj(os.path.join(tmp, 'm.obj'), arrays,
                                   texture)
    glb = mesh.write_glb(os.path.join(tmp, 'm.glb'), arrays, texture)
    for path in (obj, glb):
      loaded = trimesh.load(path, process=False, force='mesh')
      self.assertEqual(loaded.vertices.shape, (h * w, 3), path)
      self.assertEqual(loaded.faces.shape, (2 * (h - 1) * (w - 1), 3), path)
      np.testing.assert_allclose(loaded.vertices, arrays['vertices'],
                                 atol=1e-5)
      np.testing.assert_allclose(loaded.visual.uv, arrays['uvs'], atol=1e-5)
    with open(mtl) as f:
      self.assertIn('map_Kd m_texture.png', f.read())
    self.assertEqual(Image.open(png).size, (w, h))


class AnimationTest(unittest.TestCase):

  def test_yaw_angles_loop(self):
    angles = animation.yaw_angles(8, 90.0)
    self.assertEqual(angles.shape, (8,))
    self.assertAlmostEqual(float(angles[0]), 0.0)
    self.assertAlmostEqual(float(angles[2]), np.pi / 2, places=5)
    with self.assertRaises(ValueError):
      animation.yaw_angles(0, 10.0)

  def test_gif_frames(self):
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-gif-')
    self.addCleanup(shutil.rmtree, tmp, True)
    frames = np.random.RandomState(0).randint(0, 255, (3, 8, 10, 3), np.uint8)
    path = animation.write_gif(os.path.join(tmp, 'a.gif'), frames)
    with Image.open(path) as im:
      self.assertEqual(im.size, (10, 8))
      self.assertEqual(sum(1 for _ in ImageSequence.Iterator(im)), 3)


  def test_turntable_in_chunks_equals_one_call(self):
    rng = np.random.RandomState(0)
    yy, xx = np.mgrid[-1:1:12j, -1:1:12j]
    depth = (1.0 - 0.05 * np.exp(-2 * (xx ** 2 + yy ** 2)))[None]
    image = rng.uniform(-1, 1, (1, 12, 12, 3)).astype(np.float32)
    k = np.array([[60., 0., 5.5], [0., 60., 5.5], [0., 0., 1.]], np.float32)
    angles = animation.yaw_angles(7, 40.0)
    whole = animation.render_turntable(image, depth.astype(np.float32), k,
                                       1.0, angles)
    calls = []
    from tfunsup3d import render  # pylint: disable=g-import-not-at-top
    real_yaw = render.render_yaw

    def counted(*args, **kwargs):
      calls.append(len(kwargs['rotations']))
      return real_yaw(*args, **kwargs)

    # 3 frames of 144 pixels a call: 3 calls of 3 frames, 2 of them padding.
    with mock.patch.object(animation, 'CHUNK_PIXELS', 3 * 144), \
        mock.patch.object(render, 'render_yaw', counted):
      chunked = animation.render_turntable(image, depth.astype(np.float32),
                                           k, 1.0, angles)
    self.assertEqual(calls, [3, 3, 3])
    self.assertEqual(chunked.shape, (7, 12, 12, 3))
    self.assertEqual(chunked.dtype, np.uint8)
    np.testing.assert_array_equal(chunked, whole)
    self.assertGreater(len(np.unique(whole.reshape(7, -1), axis=0)), 1)


class DemoOptionsTest(unittest.TestCase):

  def test_each_bound_is_refused_naming_it(self):
    from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
    for kwargs, needle in (
        (dict(output_size=7), 'output_size must be in [8, 1024]'),
        (dict(output_size=1025), 'output_size must be in [8, 1024]'),
        (dict(num_frames=0), 'num_frames must be in [1, 3600]'),
        (dict(num_frames=3601), 'num_frames must be in [1, 3600]'),
        (dict(fps=0.0), 'fps must be in (0, 100]'),
        (dict(fps=float('nan')), 'fps must be in (0, 100]'),
        (dict(max_yaw=float('nan')), 'max_yaw must be in [0, 180]'),
        (dict(output_size=1024, num_frames=129),
         'num_frames x output_size^2 must be at most 134,217,728'),
    ):
      with self.assertRaises(ValueError) as info:
        runner.DemoOptions(**kwargs).validate()
      self.assertIn(needle, str(info.exception))
    runner.DemoOptions(output_size=1024, num_frames=128).validate()
    runner.DemoOptions(output_size=1024, num_frames=3600,
                       animations=False).validate()


class DemoRunTest(unittest.TestCase):
  """The tiny model on a folder: two images and one broken file."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
    cls.runner = runner
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-demo-run-')
    folder = os.path.join(cls.tmp, 'photos')
    tiny.write_image(os.path.join(folder, 'wide.jpg'),
                     tiny.face_like_image(90, 120), quality=92)
    tiny.write_image(os.path.join(folder, 'sub', 'tall.png'),
                     tiny.face_like_image(100, 70, seed=1))
    with open(os.path.join(folder, 'broken.png'), 'w') as f:
      f.write('not an image')
    cls.model = tiny.tiny_model()
    cls.options = runner.DemoOptions(output_size=64, num_frames=3)
    cls.out = os.path.join(cls.tmp, 'out')
    cls.summary = runner.run_demo(cls.model, inputs.list_inputs(folder),
                                  cls.out, cls.options)

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_counts_and_summary(self):
    self.assertEqual(self.summary['num_inputs'], 3)
    self.assertEqual(self.summary['num_processed'], 2)
    self.assertEqual(self.summary['num_skipped'], 1)
    self.assertEqual(self.summary['skipped'][0]['reason'], inputs.UNREADABLE)
    with open(os.path.join(self.out, self.runner.SUMMARY_FILE)) as f:
      self.assertEqual(json.load(f)['num_skipped'], 1)

  def test_every_listed_file_is_written(self):
    want = self.runner.expected_files(self.options, with_confidence=True)
    for name in ('wide', 'sub_tall'):
      got = sorted(os.listdir(os.path.join(self.out, name)))
      self.assertEqual(got, want, name)
    for required in ('input.png', 'canonical_albedo.png',
                     'canonical_depth.png', 'canonical_depth_16bit.png',
                     'canonical_depth.npy', 'canonical_normal.png',
                     'canonical_diffuse_shading.png', 'reconstruction.png',
                     'confidence_l1.png', 'animation_textured.gif',
                     'animation_normal.gif', 'mesh.obj', 'mesh.mtl',
                     'mesh_texture.png', 'mesh.glb'):
      self.assertIn(required, want)
    self.assertEqual('animation_textured.mp4' in want,
                     animation.mp4_available())

  def test_image_sizes_and_depth_files(self):
    folder = os.path.join(self.out, 'wide')
    for name in ('input.png', 'canonical_albedo.png', 'canonical_depth.png',
                 'canonical_normal.png', 'reconstruction.png',
                 'confidence_perc.png'):
      with Image.open(os.path.join(folder, name)) as im:
        self.assertEqual(im.size, (64, 64), name)
    depth = np.load(os.path.join(folder, 'canonical_depth.npy'))
    self.assertEqual(depth.shape, (64, 64))
    cfg = self.model.cfg
    self.assertTrue(np.all((depth >= cfg.min_depth - 1e-6) &
                           (depth <= cfg.max_depth + 1e-6)))
    with Image.open(os.path.join(folder, 'canonical_depth_16bit.png')) as im:
      p = np.asarray(im).astype(np.float64) / 65535.0
    np.testing.assert_allclose(
        cfg.min_depth + p * (cfg.max_depth - cfg.min_depth), depth, atol=1e-5)
    with Image.open(os.path.join(folder, 'animation_textured.gif')) as im:
      self.assertEqual(im.size, (64, 64))
      self.assertEqual(sum(1 for _ in ImageSequence.Iterator(im)), 3)
    with Image.open(os.path.join(folder, 'summary.png')) as im:
      self.assertEqual(im.size, (64 * 7, 64 + 14))

  def test_mesh_loads_with_expected_counts(self):
    import trimesh  # pylint: disable=g-import-not-at-top
    folder = os.path.join(self.out, 'sub_tall')
    for name in ('mesh.obj', 'mesh.glb'):
      loaded = trimesh.load(os.path.join(folder, name), process=False,
                            force='mesh')
      self.assertEqual(len(loaded.vertices), 64 * 64, name)
      self.assertEqual(len(loaded.faces), 2 * 63 * 63, name)
      self.assertEqual(loaded.visual.uv.shape, (64 * 64, 2), name)

  def test_factors_json(self):
    with open(os.path.join(self.out, 'wide', 'factors.json')) as f:
      info = json.load(f)
    self.assertEqual(info['crop_box_yxhw'], [0, 15, 90, 90])
    self.assertEqual(info['source_size_hw'], [90, 120])
    self.assertEqual(len(info['light']['direction']), 3)
    self.assertEqual(set(info['view']['rotation_degrees']),
                     {'pitch_x', 'yaw_y', 'roll_z'})
    self.assertIn('mesh.glb', info['files'])

  def test_only_bad_inputs_is_a_user_error(self):
    bad = os.path.join(self.tmp, 'photos', 'broken.png')
    with self.assertRaisesRegex(UserError, 'No image could be processed.*'
                                'broken.png'):
      self.runner.run_demo(self.model, inputs.list_inputs(bad),
                           os.path.join(self.tmp, 'out_bad'), self.options)

  def test_a_full_disk_keeps_the_images_before_it(self):
    folder = os.path.join(self.tmp, 'photos')
    out = os.path.join(self.tmp, 'out_full')
    real_save, calls = self.runner.Demo._save_files, []

    def save_files(demo, prepared, res, out_dir, source):
      calls.append(out_dir)
      if len(calls) == 1:
        return real_save(demo, prepared, res, out_dir, source)
      os.makedirs(out_dir)
      with open(os.path.join(out_dir, 'input.png'), 'wb') as f:  # half-done
        f.write(b'x')
      raise OSError(errno.ENOSPC, 'No space left on device')

    with mock.patch.object(self.runner.Demo, '_save_files', save_files):
      with self.assertRaisesRegex(
          UserError, r'Cannot write .*/out_full/.*: No space left on device '
          r'\(the disk is full.*--output_dir.*\); 1 image\(s\) before it '
          r'complete \(summary.json lists them\)'):
        self.runner.run_demo(self.model, inputs.list_inputs(folder), out,
                             self.options)
    with open(os.path.join(out, self.runner.SUMMARY_FILE)) as f:
      summary = json.load(f)
    self.assertEqual([p['output'] for p in summary['processed']], calls[:1])
    self.assertEqual(sorted(os.listdir(out)),
                     sorted([os.path.basename(calls[0]),
                             self.runner.SUMMARY_FILE]))


@pytest.mark.slow
class ReferenceCheckpointDemoTest(unittest.TestCase):
  """The demo on the converted reference checkpoint (the fixture's)."""

  def test_demo_from_reference_pth(self):
    from tests import fixtures  # pylint: disable=g-import-not-at-top
    from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
    fixtures.require_reference(self, 'ckpt_zip.pth', 'inputs.npz')
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-demo-ref-')
    self.addCleanup(shutil.rmtree, tmp, True)
    face = (fixtures.reference_inputs()['images_nhwc'][0] * 255).round()
    path = tiny.write_image(os.path.join(tmp, 'face.png'),
                            face.astype(np.uint8))
    model = saving.load(fixtures.reference_path('ckpt_zip.pth'))
    options = runner.DemoOptions(output_size=64, num_frames=2)
    summary = runner.run_demo(model, inputs.list_inputs(path),
                              os.path.join(tmp, 'out'), options)
    self.assertEqual(summary['num_processed'], 1)
    # The 64x64 input is its own square crop: the network sees it unchanged.
    with open(os.path.join(tmp, 'out', 'face', 'factors.json')) as f:
      info = json.load(f)
    ref = fixtures.reference_outputs()
    np.testing.assert_allclose(
        info['light']['direction'], ref['canon_light_d'][0], atol=1e-4)
    np.testing.assert_allclose(
        info['view']['rotation_degrees']['yaw_y'],
        np.degrees(ref['view'][0, 1]), atol=1e-2)


class FaceDetectionTest(unittest.TestCase):

  def test_no_face_is_a_counted_skip(self):
    if not inputs.mtcnn_available():
      with self.assertRaisesRegex(UserError, 'mtcnn'):
        inputs.FaceDetector()
      return
    from tfunsup3d.demo import runner  # pylint: disable=g-import-not-at-top
    tmp = tempfile.mkdtemp(prefix='tfunsup3d-noface-')
    self.addCleanup(shutil.rmtree, tmp, True)
    noise = np.random.RandomState(0).randint(0, 255, (80, 100, 3), np.uint8)
    path = tiny.write_image(os.path.join(tmp, 'noise.png'), noise)
    with self.assertRaisesRegex(UserError, 'no face found'):
      runner.run_demo(tiny.tiny_model(), inputs.list_inputs(path),
                      os.path.join(tmp, 'out'),
                      runner.DemoOptions(animations=False, mesh=False),
                      detector=inputs.FaceDetector())
    with open(os.path.join(tmp, 'out', runner.SUMMARY_FILE)) as f:
      summary = json.load(f)
    self.assertEqual(summary['skipped'][0]['reason'], inputs.NO_FACE)


class LoadModelTest(unittest.TestCase):
  """`saving.load` as the demo, explain and export scripts use it."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.tmp = tempfile.mkdtemp(prefix='tfunsup3d-load-')
    cls.ckpt = tiny.write_checkpoint(tiny.tiny_model(),
                                     os.path.join(cls.tmp, 'ckpt'))

  @classmethod
  def tearDownClass(cls):
    shutil.rmtree(cls.tmp, ignore_errors=True)
    super().tearDownClass()

  def test_loads_and_rejects_mismatches(self):
    model = saving.load(self.ckpt, lam_perc=0.0)
    self.assertEqual(model.cfg.nf_encoder, 4)
    with self.assertRaisesRegex(UserError, 'trained with image_size=64 but '
                                'image_size=128 was asked for'):
      saving.load(self.ckpt, image_size=128)
    with self.assertRaisesRegex(UserError, 'nf_depth'):
      saving.load(self.ckpt, nf_depth=32)
    with self.assertRaisesRegex(UserError, 'not found'):
      saving.load(os.path.join(self.tmp, 'nope'))
    with self.assertRaisesRegex(UserError, 'not a tfunsup3d checkpoint'):
      saving.load(self.tmp)
    text = os.path.join(self.tmp, 'x.pth')
    with open(text, 'w') as f:
      f.write('hello')
    with self.assertRaises(UserError) as caught:
      saving.load(text)
    self.assertNotIn('\n', str(caught.exception))

  @pytest.mark.slow
  def test_reference_checkpoint_with_wrong_sizes(self):
    from tests import fixtures  # pylint: disable=g-import-not-at-top
    fixtures.require_reference(self, 'ckpt_zip.pth')
    path = fixtures.reference_path('ckpt_zip.pth')
    self.assertEqual(saving.load(path).cfg.nf_depth, 16)
    with self.assertRaises(UserError) as caught:
      saving.load(path, nf_depth=64)
    self.assertIn('nf_depth=16', str(caught.exception))
    self.assertLess(len(str(caught.exception)), 500)


if __name__ == '__main__':
  unittest.main()
