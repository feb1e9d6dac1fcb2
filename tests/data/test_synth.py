"""Tests for tfunsup3d.data.synth (small, 32x32)."""

import filecmp
import json
import os
import shutil
import tempfile

import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import render
from tfunsup3d.data import images
from tfunsup3d.data import synth
from tfunsup3d.data import synth_params

S = 32
QUANTUM = 0.2 / 65535  # one 16-bit depth level, (max - min) / 65535.


def _cfg(root='.', **kw):
  values = dict(image_size=S, train_val_data_dir=root, load_gt_depth=True,
                batch_size=4, num_workers=1)
  values.update(kw)
  return config_lib.Config(**values)


def _tempdir(test):
  path = tempfile.mkdtemp(prefix='test_synth_')
  test.addCleanup(shutil.rmtree, path, ignore_errors=True)
  return path


def _factors(seed=0, n=8, **options):
  return synth.sample_factors(np.random.default_rng(seed), n, S,
                              options=synth.SynthOptions(**options))


class SampleFactorsTest(tf.test.TestCase):

  def test_shapes_and_ranges(self):
    f = _factors(n=6)
    self.assertEqual(f['canon_depth'].shape, (6, S, S))
    self.assertEqual(f['canon_albedo'].shape, (6, S, S, 3))
    self.assertEqual(f['view'].shape, (6, 6))
    self.assertEqual(f['light_d'].shape, (6, 3))
    self.assertEqual(f['light_a'].shape, (6, 1))
    self.assertAllInRange(f['canon_albedo'], -1.0, 1.0)
    self.assertAllInRange(f['canon_depth'], 0.9, 1.1)
    # The backdrop stays near the border columns' 1.04 (re-centred, below).
    self.assertAllClose(f['canon_depth'][:, :, :2], np.full((6, S, 2), 1.04))
    self.assertLess(np.abs(f['canon_depth'].max() - 1.04), 0.01)
    self.assertAllClose(np.linalg.norm(f['light_d'], axis=1), np.ones(6))
    # Not constant: a face relief in front of the backdrop, varying per face.
    self.assertLess(f['canon_depth'].min(), 1.0)
    self.assertGreater(np.std(f['canon_depth'][:, S // 2, S // 2]), 1e-3)
    self.assertAllEqual(f['view'][:, 5], np.zeros(6))

  def test_depth_is_what_the_models_depth_head_can_output(self):
    # The model's depth: tanh(raw - mean raw) in [0.9, 1.1], border columns
    # then set to 1.04. Feeding the generated depth's own tanh-space values
    # (its border columns included) back through it must give it back: a
    # backdrop left at 1.04 has a tanh-space mean of about +0.2 and comes
    # back about 0.02 nearer everywhere.
    from tfunsup3d.factors import depth as depth_lib  # pylint: disable=g-import-not-at-top
    d = _factors(n=8)['canon_depth']
    raw = np.arctanh((d.astype(np.float64) - 1.0) / 0.1)
    again = depth_lib.set_border(
        depth_lib.canonical_depth(tf.constant(raw, tf.float32), 0.9, 1.1),
        1.04)
    self.assertAllClose(again, d, atol=1e-5)
    self.assertLess(np.abs(raw.mean(axis=(1, 2))).max(), 1e-4)

  def test_same_seed_same_factors_other_seed_differs(self):
    a, b, c = _factors(3), _factors(3), _factors(4)
    for key in a:
      self.assertAllEqual(a[key], b[key])
    self.assertNotAllClose(a['canon_depth'], c['canon_depth'])
    self.assertNotAllClose(a['view'], c['view'])

  def test_exact_mirror_symmetry_without_asymmetry(self):
    f = _factors(n=16, asymmetry=0.0)
    self.assertAllEqual(f['canon_depth'], f['canon_depth'][:, :, ::-1])
    self.assertAllEqual(f['canon_albedo'], f['canon_albedo'][:, :, ::-1])
    self.assertAllEqual(f['face_mask'], f['face_mask'][:, :, ::-1])

  def test_asymmetry_changes_albedo_only(self):
    f = _factors(n=16, asymmetry=1.0)
    self.assertAllEqual(f['canon_depth'], f['canon_depth'][:, :, ::-1])
    diff = np.abs(f['canon_albedo'] - f['canon_albedo'][:, :, ::-1])
    self.assertGreater(diff.max(), 0.1)
    small = _factors(n=16, asymmetry=0.3)['canon_albedo']
    self.assertLess(np.abs(small - small[:, :, ::-1]).mean(), diff.mean())

  def test_face_maps_are_unchanged(self):
    # Sums of the face's maps as they were before the car category (the
    # full data set's files were compared byte for byte when it came).
    f = synth.factors_from_params(
        synth.sample_params(np.random.default_rng(0), 4), S)
    sums = {k: float(np.float64(v).sum()) for k, v in f.items()}
    self.assertAllClose(sums, {
        'canon_depth': 4095.6526188850403, 'face_mask': 3284.0,
        'canon_albedo': -1397.491158318382,
        'backdrop_albedo': -31.008853391318553,
        'light_a': 1.6497125327587128, 'light_b': 2.2453210055828094,
        'light_d': 2.95046379417181, 'view': -0.6399766803924649},
                        rtol=1e-9, atol=1e-9)
    self.assertEqual(sorted(synth.FACTORS_FROM_PARAMS),
                     sorted(synth_params.CATEGORIES))

  def test_zoom_magnifies_the_layout_about_the_centre(self):
    # On a 33-pixel grid (centre pixel 16), zoom 2 puts at pixel 2i - 16 the
    # layout point that zoom 1 puts at pixel i: the face mask (a plain
    # ellipse test) must agree there exactly.
    params = synth.sample_params(np.random.default_rng(5), 6,
                                 synth.SynthOptions(zoom=1.0))
    one = synth.factors_from_params(params, 33)
    two = synth.factors_from_params(dict(params, zoom=np.full(6, 2.0)), 33)
    i = np.arange(8, 25)
    self.assertAllEqual(two['face_mask'][:, 2 * i - 16][:, :, 2 * i - 16],
                        one['face_mask'][:, i][:, :, i])
    self.assertGreater(two['face_mask'].mean(), one['face_mask'].mean())
    # zoom 1 is the layout without the parameter (files written before it).
    del params['zoom']
    legacy = synth.factors_from_params(params, 33)
    for key in one:
      self.assertAllEqual(one[key], legacy[key])


class RenderTest(tf.test.TestCase):

  def test_depth_range_background_and_image(self):
    f = _factors(n=8)
    image, depth, mask = synth.render_instances(f, _cfg())
    self.assertEqual(image.shape, (8, S, S, 3))
    self.assertAllInRange(image, 0.0, 1.0)
    self.assertAllEqual(depth[~mask], np.full((~mask).sum(), 1.1, np.float32))
    self.assertLess(depth[mask].max(), 1.08)  # well below max_depth
    self.assertGreater(depth[mask].min(), 0.9)
    coverage = mask.mean(axis=(1, 2))
    self.assertAllInRange(coverage, 0.15, 0.8)
    self.assertGreater(image[~mask].mean(), 0.1)  # a backdrop, not black

  def test_depth_is_render_depth_recomputed(self):
    f = _factors(n=4, zoom=1.0)  # a wide ring of backdrop (checked last)
    cfg = _cfg().resolved()
    _, depth, mask = synth.render_instances(f, cfg)
    K = render.intrinsics(S, cfg.fov)
    expected = render.render_depth(
        f['canon_depth'], f['view'], K, cfg.rot_center_depth, cfg.min_depth,
        cfg.max_depth, anti_aliasing=cfg.anti_aliasing).numpy()
    self.assertAllClose(depth[mask], expected[mask], atol=1e-6)
    self.assertTrue(np.all(expected[mask] < cfg.max_depth + 0.1))  # valid
    self.assertGreater(np.mean(expected[~mask] < cfg.max_depth), 0.5)

  def test_identity_view_of_a_plane_gives_the_plane(self):
    f = _factors(n=2)
    f['canon_depth'] = np.full((2, S, S), 1.0, np.float32)
    f['face_mask'] = np.ones((2, S, S), np.float32)
    f['view'] = np.zeros((2, 6), np.float32)
    image, depth, mask = synth.render_instances(f, _cfg())
    # The reference's anti-aliased samples sit half a pixel off: the last
    # row and column are only partly covered, hence background.
    self.assertAllClose(depth[:, :-1, :-1], np.ones((2, S - 1, S - 1)),
                        atol=1e-6)
    self.assertAllEqual(mask[:, -1], np.zeros((2, S), bool))
    normal = render.depth_to_normals(f['canon_depth'], render.intrinsics(S))
    shaded, _ = render.shade(f['canon_albedo'], normal, f['light_a'],
                             f['light_b'], f['light_d'])
    shaded = np.clip(shaded.numpy() / 2 + 0.5, 0, 1)
    self.assertAllClose(image[:, :-1, :-1], shaded[:, :-1, :-1], atol=1e-5)

  def test_depth_png_encoding(self):
    depth = np.array([[0.9, 1.0, 1.1 - 1e-7, 1.1]], np.float32)
    mask = np.array([[True, True, True, False]])
    png = synth.depth_to_png(depth, mask, 0.9, 1.1)
    self.assertEqual(png.dtype, np.uint16)
    self.assertAllEqual(png, [[65535, 32768, 1, 0]])  # face never p = 0


class WriteDatasetTest(tf.test.TestCase):

  COUNTS = {'train': 6, 'val': 2, 'test': 3}

  def _write(self, root=None, seed=0, **kw):
    root = root or _tempdir(self)
    synth.write_dataset(root, self.COUNTS, _cfg(), seed=seed, **kw)
    return root

  def test_changed_options_names_what_differs(self):
    root = self._write(options=synth.SynthOptions(zoom=1.0, max_yaw=20.0))
    train = os.path.join(root, 'train')
    self.assertEqual(synth.changed_options(train),
                     {'zoom': (1.0, 1.45), 'max_yaw': (20.0, 30.0)})
    self.assertEqual(synth.changed_options(
        train, synth.SynthOptions(zoom=1.0, max_yaw=20.0)), {})
    self.assertEqual(synth.changed_options(os.path.join(root, 'image')), {})

  def test_layout_is_what_the_loader_reads(self):
    root = self._write()
    for split, n in self.COUNTS.items():
      records, skipped = images.list_split(_cfg(root), split)
      self.assertLen(records, n)
      self.assertEqual(skipped.count, 0)
      self.assertEqual(records[0].name, '000000_image')
      self.assertTrue(os.path.isfile(os.path.join(root, split,
                                                  'factors.npz')))
    self.assertEqual(sorted(os.listdir(root)), ['test', 'train', 'val'])

  def test_loader_round_trip_within_quantisation(self):
    root = self._write(seed=5)
    cfg = _cfg(root, test_data_dir=os.path.join(root, 'test'))
    batch = next(iter(images.build_dataset(cfg, 'test', training=False)))
    got = images.decode_depth(batch['depth_gt'].numpy()[..., 0], 0.9, 1.1)
    # Re-render the test split from its own random stream.
    params = synth.sample_params(np.random.default_rng([5, 2]), 3)
    f = synth.factors_from_params(params, S)
    image, depth, mask = synth.render_instances(f, cfg)
    self.assertAllClose(got, depth, atol=QUANTUM / 2 + 1e-6)
    self.assertAllEqual(got < 1.1, mask)  # background exactly max_depth
    self.assertAllClose(batch['image'].numpy(), image, atol=0.5 / 255 + 1e-6)
    with np.load(os.path.join(root, 'test', 'factors.npz')) as z:
      self.assertAllEqual(z['param_head_ax'], params['head_ax'])
      self.assertAllEqual(z['view'], f['view'])
      self.assertAllEqual(z['canon_depth'], f['canon_depth'])
      self.assertEqual(z['canon_albedo'].dtype, np.uint8)
      self.assertIn('"seed": 5', str(z['meta']))

  def test_same_seed_same_bytes(self):
    for category in synth.FACTORS_FROM_PARAMS:
      with self.subTest(category=category):
        self._check_same_seed_same_bytes(
            synth.SynthOptions.for_category(category))

  def _check_same_seed_same_bytes(self, options):
    a, b, c = (self._write(seed=seed, options=options) for seed in (1, 1, 2))
    for split in self.COUNTS:
      for sub in ('image', 'depth'):
        names = sorted(os.listdir(os.path.join(a, split, sub)))
        _, mismatch, errors = filecmp.cmpfiles(
            os.path.join(a, split, sub), os.path.join(b, split, sub), names,
            shallow=False)
        self.assertEqual((mismatch, errors), ([], []))
      self.assertTrue(filecmp.cmp(os.path.join(a, split, 'factors.npz'),
                                  os.path.join(b, split, 'factors.npz'),
                                  shallow=False))
    self.assertFalse(filecmp.cmp(
        os.path.join(a, 'train', 'image', '000000_image.png'),
        os.path.join(c, 'train', 'image', '000000_image.png'), shallow=False))

  def test_splits_do_not_overlap(self):
    root = self._write()
    views = {}
    for split in self.COUNTS:
      with np.load(os.path.join(root, split, 'factors.npz')) as z:
        views[split] = z['view']
    all_views = np.concatenate(list(views.values()))
    self.assertLen(np.unique(all_views, axis=0), len(all_views))

  def test_refuses_to_overwrite_without_permission(self):
    root = self._write()
    user_file = os.path.join(root, 'val', 'mine.txt')
    with open(user_file, 'w') as f:
      f.write('keep me')
    before = sorted(os.listdir(os.path.join(root, 'train', 'image')))
    with self.assertRaisesRegex(FileExistsError, 'overwrite'):
      self._write(root)
    self.assertTrue(os.path.isfile(user_file))
    self.assertEqual(sorted(os.listdir(os.path.join(root, 'train', 'image'))),
                     before)
    self.assertEqual([n for n in os.listdir(root) if n.startswith('.')], [])
    self._write(root, overwrite=True)
    self.assertFalse(os.path.exists(user_file))
    self.assertLen(os.listdir(os.path.join(root, 'val', 'image')), 2)

  def test_empty_existing_dir_and_zero_counts(self):
    root = _tempdir(self)
    os.makedirs(os.path.join(root, 'train'))
    synth.write_dataset(root, {'train': 2, 'val': 0}, _cfg())
    self.assertLen(os.listdir(os.path.join(root, 'train', 'depth')), 2)
    self.assertFalse(os.path.exists(os.path.join(root, 'val')))

  def test_bad_counts(self):
    root = _tempdir(self)
    with self.assertRaisesRegex(ValueError, 'counts'):
      synth.write_dataset(root, {'train': -1}, _cfg())
    with self.assertRaisesRegex(ValueError, 'counts'):
      synth.write_dataset(root, {'training': 1}, _cfg())
    # 10^11 instances: numpy's MemoryError while drawing their parameters.
    with self.assertRaisesRegex(ValueError, r'train: 100000000000 instances '
                                r'of \d+x\d+ canonical maps would need'):
      synth.write_dataset(root, {'train': 10 ** 11}, _cfg())
    self.assertEqual(os.listdir(root), [])

  def test_ranges_beyond_the_generator_are_refused_writing_nothing(self):
    root = _tempdir(self)
    cases = {'non-finite maps': synth.SynthOptions(
                 param_ranges=(('head_ax', 0.0, 0.0),)),  # a zero-width head
             'no object in the image': synth.SynthOptions(zoom=0.01),
             'no object in the image ': synth.SynthOptions.for_category(
                 'car', zoom=0.01)}
    for what, options in cases.items():
      with self.subTest(what):
        with self.assertRaisesRegex(ValueError, f'Instance 0 of the '
                                    f'{options.category} generator has '
                                    f'{what.strip()}'):
          synth.write_dataset(root, {'train': 2}, _cfg(), options=options)
        self.assertEqual(os.listdir(root), [])
    # The edges of the default ranges draw.
    synth.write_dataset(root, {'train': 2}, _cfg(), options=synth.SynthOptions(
        param_ranges=(('head_ax', 0.56, 0.56), ('head_pow', 0.8, 0.8))))

  def test_render_batch_bounds_the_pixels_of_a_call(self):
    # Up to 128 pixels the batch (and so every output byte) is as it was.
    self.assertEqual([synth.render_batch(s) for s in (16, 64, 128)],
                     [64, 64, 64])
    self.assertEqual([synth.render_batch(s) for s in (256, 512, 1024)],
                     [16, 4, 1])


class CanvasTest(tf.test.TestCase):
  """`SynthOptions.canvas`: the scene on a larger canvas, centre-cropped."""

  def _write(self, canvas, max_yaw):
    root = _tempdir(self)
    options = synth.SynthOptions(max_yaw=max_yaw, max_pitch=0.0,
                                 max_roll=0.0, max_translation=0.0,
                                 canvas=canvas)
    synth.write_dataset(root, {'test': 8}, _cfg(), seed=3, options=options)
    split = os.path.join(root, 'test')
    ims = np.stack([
        np.asarray(Image.open(os.path.join(split, 'image', f'{i:06d}_image.png')),
                   np.float32) / 255.0 for i in range(8)])
    with np.load(os.path.join(split, 'factors.npz')) as z:
      return ims, z['canon_depth'], z['view']

  def _uncovered(self, canvas, depth, view):
    """Share of image pixels the canonical map does not reach."""
    cfg = _cfg().resolved()
    side, margin, fov = synth.canvas_camera(S, cfg.fov, canvas)
    self.assertEqual(depth.shape[1], side)
    rendered = render.render_depth(
        depth, view, render.intrinsics(side, fov), cfg.rot_center_depth,
        cfg.min_depth, cfg.max_depth).numpy()[:, margin:margin + S,
                                               margin:margin + S]
    return float(np.mean(rendered >= cfg.max_depth + 0.1 - 1e-6))

  def test_camera_keeps_the_focal_length(self):
    side, margin, fov = synth.canvas_camera(64, 10.0, 1.5)
    self.assertEqual((side, margin), (96, 16))
    self.assertAllClose(render.intrinsics(side, fov)[0, 0],
                        render.intrinsics(64, 10.0)[0, 0])
    self.assertEqual(synth.canvas_camera(64, 10.0, 1.0), (64, 0, 10.0))

  def test_frontal_views_match_the_plain_canvas(self):
    plain, _, _ = self._write(1.0, 0.0)
    wide, depth, _ = self._write(1.5, 0.0)
    self.assertEqual(wide.shape, (8, S, S, 3))
    self.assertEqual(depth.shape, (8, 48, 48))
    # Measured 0.009: the same layout, camera and pixel scale; the depth's
    # offset (its tanh-space centring) differs a little with more backdrop.
    self.assertLess(np.abs(wide - plain)[:, 4:-4, 4:-4].mean(), 0.02)

  def test_turned_views_do_not_reach_the_canonical_edge(self):
    _, depth, view = self._write(1.0, 30.0)
    self.assertGreater(np.abs(view[:, 1]).max(), np.radians(15.0))
    self.assertGreater(self._uncovered(1.0, depth, view), 0.08)  # 0.12
    _, depth, view = self._write(1.5, 30.0)
    self.assertEqual(self._uncovered(1.5, depth, view), 0.0)

  def test_files_written_before_the_option_read_as_canvas_1(self):
    root = _tempdir(self)
    synth.write_dataset(root, {'test': 2}, _cfg(), seed=0,
                        options=synth.SynthOptions(canvas=1.5))
    split = os.path.join(root, 'test')
    self.assertEqual(synth.changed_options(split),
                     {'canvas': (1.5, 1.0)})
    with np.load(os.path.join(split, 'factors.npz')) as z:
      arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays['meta']))
    del meta['options']['canvas']
    arrays['meta'] = np.array(json.dumps(meta))
    np.savez(os.path.join(split, 'factors.npz'), **arrays)
    self.assertEqual(synth.changed_options(split), {})


if __name__ == '__main__':
  tf.test.main()
