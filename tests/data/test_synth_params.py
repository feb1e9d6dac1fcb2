"""Tests for tfunsup3d.data.synth_params: the categories' parameters."""

import hashlib

import numpy as np
import tensorflow as tf

from tfunsup3d.data import synth_params


class SynthParamsTest(tf.test.TestCase):

  def test_views_are_varied_and_in_range(self):
    view = synth_params.sample_params(np.random.default_rng(0), 500)['view']
    deg = np.abs(view[:, :3]) * 180.0 / np.pi
    self.assertGreater(np.mean(deg[:, 1] > 10.0), 0.3)  # yaw
    self.assertLessEqual(deg[:, 1].max(), 30.0)
    self.assertLessEqual(deg[:, 0].max(), 10.0)  # pitch
    self.assertLessEqual(deg[:, 2].max(), 5.0)  # roll
    self.assertLessEqual(np.abs(view[:, 3:5]).max(), 0.02)

  def test_bad_options(self):
    with self.assertRaisesRegex(ValueError, 'asymmetry'):
      synth_params.SynthOptions(asymmetry=1.5).check()
    with self.assertRaisesRegex(ValueError, 'max_yaw'):
      synth_params.SynthOptions(max_yaw=-1.0).check()
    for zoom in (0.0, -1.0, 4.5):
      with self.assertRaisesRegex(ValueError, 'zoom'):
        synth_params.SynthOptions(zoom=zoom).check()
    for canvas in (0.5, 0.99, 3.5):
      with self.assertRaisesRegex(ValueError, 'canvas'):
        synth_params.SynthOptions(canvas=canvas).check()
    for entry in (('nose', 0.0, 1.0), ('head_pow', 2.0, 1.0),
                  ('head_pow', 1.0)):
      with self.assertRaisesRegex(ValueError, 'param_ranges'):
        synth_params.SynthOptions(param_ranges=(entry,)).check()

  def test_param_ranges_replace_one_range_and_keep_the_stream(self):
    rng = lambda: np.random.default_rng(7)
    base = synth_params.sample_params(rng(), 200)
    varied = synth_params.sample_params(rng(), 200, synth_params.SynthOptions(
        param_ranges=(('head_pow', 1.0, 1.5), ('light_dxy', -0.3, 0.3))))
    self.assertAllInRange(varied['head_pow'], 1.0, 1.5)
    self.assertGreater(varied['head_pow'].min(), base['head_pow'].max())
    self.assertEqual(varied['light_dxy'].shape, (200, 2))  # size kept
    self.assertLessEqual(np.abs(varied['light_dxy']).max(), 0.3)
    self.assertGreater(np.abs(base['light_dxy']).max(), 0.6)
    for key in base:  # the same uniform draws, rescaled: others unchanged
      if key not in ('head_pow', 'light_dxy'):
        self.assertAllEqual(varied[key], base[key])
    # One draw rescaled: (x - lo) / (hi - lo) is the same for both.
    self.assertAllClose((varied['head_pow'] - 1.0) / 0.5,
                        (base['head_pow'] - 0.5) / 0.3)

  def test_every_range_is_well_formed(self):
    self.assertIs(synth_params.CATEGORIES['face'].param_ranges,
                  synth_params.PARAM_RANGES)
    for category in synth_params.CATEGORIES.values():
      names = [r[0] for r in category.param_ranges]
      self.assertEqual(len(names), len(set(names)))
      # What sample_params and the shared asymmetric details read.
      for name in ('light_a', 'light_b', 'light_dxy', 'bg_grad_x', 'mark',
                   'mark_x', 'mark_y', 'mark_r', 'mark_strength'):
        self.assertIn(name, names)
      for entry in category.param_ranges:
        self.assertIn(len(entry), (3, 4), entry)
        self.assertLess(entry[1], entry[2], entry)

  def test_the_face_stream_is_unchanged(self):
    # sha256 of the face's parameters as drawn before categories existed
    # (the same uniform draws and rescaling: the same bytes).
    def digest(options):
      p = synth_params.sample_params(np.random.default_rng(0), 8, options)
      h = hashlib.sha256()
      for key in sorted(p):
        h.update(key.encode())
        h.update(np.ascontiguousarray(p[key], '<f8').tobytes())
      return h.hexdigest()
    self.assertEqual(digest(synth_params.SynthOptions()),
                     '4b069200b9d4247160f4f3a5910d9c652e8dbf0346e947fb7cc840'
                     '4baea0e82d')
    self.assertEqual(
        digest(synth_params.SynthOptions(zoom=1.0, max_yaw=45, param_ranges=(
            ('head_pow', 1, 1.5),))),
        'b82ed44537411b67f7903f54e26dbcd130ab6ddd8459511dfedf414f3ed94e04')

  def test_category_defaults(self):
    face = synth_params.SynthOptions.for_category('face')
    self.assertEqual(face, synth_params.SynthOptions())
    car = synth_params.SynthOptions.for_category('car')
    self.assertEqual((car.category, car.max_yaw, car.max_pitch, car.max_roll,
                      car.zoom), ('car', 60.0, 5.0, 3.0, 1.2))
    self.assertEqual(car.max_translation, face.max_translation)
    self.assertEqual(synth_params.SynthOptions.for_category(
        'car', max_yaw=20.0, zoom=1.0).max_yaw, 20.0)
    for make in (lambda: synth_params.SynthOptions.for_category('boat'),
                 synth_params.SynthOptions(category='boat').check):
      with self.assertRaisesRegex(ValueError, "category must be one of "
                                  r"\('face', 'car'\). Received: 'boat'"):
        make()
    with self.assertRaisesRegex(ValueError, 'max_yaw'):
      synth_params.SynthOptions.for_category('car', max_yaw=120.0)

  def test_car_parameters(self):
    car = synth_params.SynthOptions.for_category('car')
    p = synth_params.sample_params(np.random.default_rng(1), 300, car)
    self.assertIn('body_w', p)
    self.assertNotIn('head_pow', p)
    # light_b in [0.5, 1.1 - light_a]: the car's diffuse range.
    self.assertAllInRange(p['light_b'] - 0.5, 0.0, 0.6 - p['light_a'].min())
    self.assertLessEqual((p['light_a'] + p['light_b']).max(), 1.1)
    self.assertAllEqual(p['zoom'], np.full(300, 1.2))
    self.assertEqual(synth_params.parse_param_range('body_w:0.6:0.7', 'car'),
                     ('body_w', 0.6, 0.7))
    with self.assertRaisesRegex(ValueError, 'param_ranges'):
      synth_params.parse_param_range('head_pow:1:1.5', 'car')
    with self.assertRaisesRegex(ValueError, 'param_ranges'):
      synth_params.parse_param_range('body_w:0.6:0.7')

  def test_parse_param_range(self):
    self.assertEqual(synth_params.parse_param_range('head_pow:1:1.5'),
                     ('head_pow', 1.0, 1.5))
    self.assertEqual(synth_params.parse_param_range(' nose_amp :0.1:0.1'),
                     ('nose_amp', 0.1, 0.1))
    for text, reason in (('head_pow:1', 'NAME:LO:HI'),
                         ('head_pow:a:2', 'NAME:LO:HI'),
                         ('head_pow:1:2:3', 'NAME:LO:HI'),
                         ('nose:0:1', 'param_ranges'),
                         ('head_pow:2:1', 'param_ranges'),
                         ('head_pow:nan:1', 'param_ranges'),
                         ('head_pow:0:inf', 'param_ranges')):
      with self.assertRaisesRegex(ValueError, reason, msg=text):
        synth_params.parse_param_range(text)


if __name__ == '__main__':
  tf.test.main()
