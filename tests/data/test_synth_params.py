"""Tests for tfunsup3d.data.synth_params: the category's parameters."""

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
    names = [r[0] for r in synth_params.PARAM_RANGES]
    self.assertEqual(len(names), len(set(names)))
    for entry in synth_params.PARAM_RANGES:
      self.assertIn(len(entry), (3, 4), entry)
      self.assertLess(entry[1], entry[2], entry)

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
