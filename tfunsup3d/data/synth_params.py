"""Per-instance parameters of the synthetic categories (face, car).

`PARAM_RANGES` is the face category, `synth_car.PARAM_RANGES` the car: each
parameter uniform in [lo, hi) (with an optional trailing size), drawn in
table order from one random stream, so a variant that replaces a range
(`SynthOptions.param_ranges`) keeps every other draw. `SynthOptions.category`
picks the table; `SynthOptions.for_category` gives a category's default
options. `tfunsup3d.data.synth` turns the parameters into maps.
"""

import dataclasses
import math
from typing import Any, Dict, NamedTuple, Tuple

import numpy as np

from tfunsup3d.data import synth_car


@dataclasses.dataclass(frozen=True)
class SynthOptions:
  """The category, view ranges (uniform in (-max, max); degrees, and scene
  units, in which the image spans about 0.175 at depth 1), the asymmetry and
  the framing (`zoom`).

  The field defaults are the face's. Each category has its own defaults
  (`CATEGORIES[name].defaults`: the car turns by up to 60 degrees of yaw and
  stands in a wider ring of backdrop); `SynthOptions.for_category('car')`
  gives them, with any field overridden by keyword.
  """
  max_yaw: float = 30.0
  max_pitch: float = 10.0
  max_roll: float = 5.0
  max_translation: float = 0.02
  asymmetry: float = 0.3  # in [0, 1]; 0 gives exactly mirrored albedo.
  # The layout's magnification about the image centre. At 1 the head spans
  # 56-70% of the width inside a wide ring of backdrop; 1.45 fills the frame
  # as the reference's synface crop (170 of 256 pixels) does. Positions and
  # sizes scale, depth amplitudes do not.
  zoom: float = 1.45
  # The side of the canvas the scene is rendered on, in image sides; the
  # image is its centre crop (same camera, same pixel scale). At 1 a turned
  # view shows where the canonical map ends: a straight cut through whatever
  # lies at the frame's edge, which real photographs never show. At 1.5 the
  # canonical map reaches past the image for turns up to about 45 degrees.
  canvas: float = 1.0
  # (name, lo, hi) entries replacing ranges of the category's table
  # (`PARAM_RANGES` for the face), e.g. (('head_pow', 1.0, 1.5),): a variant
  # of the category.
  param_ranges: Tuple[Tuple[str, float, float], ...] = ()
  category: str = 'face'  # a key of CATEGORIES

  @classmethod
  def for_category(cls, category: str = 'face',
                   **overrides: Any) -> 'SynthOptions':
    """The category's default options with `overrides` (field=value) on top,
    checked; e.g. `SynthOptions.for_category('car', zoom=1.2)`."""
    defaults = CATEGORIES[category].defaults if category in CATEGORIES else {}
    return cls(**dict(defaults, **overrides, category=category)).check()

  def check(self) -> 'SynthOptions':
    if self.category not in CATEGORIES:
      raise ValueError(f'category must be one of {tuple(CATEGORIES)}. '
                       f'Received: {self.category!r}')
    for name, hi in (('max_yaw', 90), ('max_pitch', 90), ('max_roll', 90),
                     ('max_translation', 0.2), ('asymmetry', 1)):
      if not 0.0 <= getattr(self, name) <= hi:
        raise ValueError(f'{name} must be in [0, {hi}]. Received: '
                         f'{getattr(self, name)}')
    if not 0.0 < self.zoom <= 4.0:
      raise ValueError(f'zoom must be in (0, 4]. Received: {self.zoom}')
    if not 1.0 <= self.canvas <= 3.0:
      raise ValueError(f'canvas must be in [1, 3]. Received: {self.canvas}')
    known = [r[0] for r in CATEGORIES[self.category].param_ranges]
    for entry in self.param_ranges:
      if (len(entry) != 3 or entry[0] not in known
          or not math.isfinite(float(entry[1]))
          or not math.isfinite(float(entry[2]))
          or not float(entry[1]) <= float(entry[2])):
        raise ValueError(f'param_ranges entries must be (name, lo, hi) with '
                         f'finite lo <= hi and name one of {known}. Received: '
                         f'{entry!r}')
    return self


# Per-instance parameters, each uniform in [lo, hi) (optional trailing size).
# Positions are in units of the half image (x right, y down, centre 0);
# depth amplitudes in units of (max_depth - min_depth).
# 'hair' < 0.75: has hair; 'mark' < 0.5: has a mark; light_b is rescaled to
# [0.4, 1.1 - light_a] (no over-exposure).
PARAM_RANGES = (
    ('head_y', -0.06, 0.04), ('head_ax', 0.56, 0.7), ('head_ay', 0.76, 0.9),
    ('head_amp', 0.3, 0.45), ('head_pow', 0.5, 0.8), ('nose_amp', 0.08, 0.2),
    ('nose_top', -0.2, -0.1), ('nose_tip', 0.12, 0.24),
    ('nose_width', 0.07, 0.11), ('eye_x', 0.22, 0.3), ('eye_y', -0.22, -0.12),
    ('socket_amp', 0.04, 0.1), ('socket_sigma', 0.08, 0.12),
    ('brow_amp', 0.02, 0.06), ('brow_dy', 0.1, 0.14), ('brow_tilt', -0.3, 0.3),
    ('cheek_x', 0.28, 0.36), ('cheek_y', 0.12, 0.22), ('cheek_amp', 0.02, 0.07),
    ('chin_amp', 0.02, 0.06), ('lip_dy', 0.15, 0.22), ('lip_amp', 0.01, 0.03),
    ('skin_tone', 0.0, 1.0), ('skin_jitter', -0.05, 0.05, 3),
    ('skin_grad', -0.12, 0.12), ('blush', 0.0, 1.0), ('hair', 0.0, 1.0),
    ('hair_tone', 0.0, 1.0), ('hair_jitter', -0.05, 0.05, 3),
    ('hairline', 0.45, 0.62), ('iris_rgb', 0.05, 0.45, 3),
    ('lip_rgb', 0.4, 0.65), ('bg_rgb', 0.15, 0.85, 3), ('bg_grad', -0.3, 0.3),
    ('bg_grad_x', -0.3, 0.3), ('mark', 0.0, 1.0), ('mark_x', -0.27, 0.27),
    ('mark_y', -0.1, 0.45), ('mark_r', 0.04, 0.09), ('mark_strength', 0.5, 1),
    ('light_a', 0.25, 0.55), ('light_b', 0.0, 1.0),
    ('light_dxy', -0.75, 0.75, 2))


class Category(NamedTuple):
  """A synthetic category's parameters.

  param_ranges: (name, lo, hi[, size]) entries, drawn in order; every
    category has light_a, light_b, light_dxy.
  defaults: `SynthOptions` fields that differ from the class defaults.
  diffuse: (lo, top): light_b is rescaled to [lo, lo + top - light_a].
  """
  param_ranges: Tuple[Tuple[Any, ...], ...]
  defaults: Dict[str, Any]
  diffuse: Tuple[float, float]


CATEGORIES = {
    'face': Category(PARAM_RANGES, {}, (0.4, 0.7)),
    'car': Category(synth_car.PARAM_RANGES, synth_car.OPTION_DEFAULTS,
                    synth_car.DIFFUSE_LIGHT),
}


def sample_params(rng: np.random.Generator, n: int,
                  options: SynthOptions = SynthOptions()
                  ) -> Dict[str, np.ndarray]:
  """Draws per-instance parameters: float64 `[n, ...]` arrays, a few numbers
  each (`synth.factors_from_params` makes the maps); 'view' is `[n, 6]`."""
  o = options.check()
  category = CATEGORIES[o.category]
  spans = {r[0]: r[1:] for r in category.param_ranges}  # in order: 1 stream
  for name, lo, hi in o.param_ranges:
    spans[name] = (float(lo), float(hi)) + spans[name][2:]
  p = {k: rng.uniform(v[0], v[1], (n,) + tuple(v[2:]))
       for k, v in spans.items()}
  lo, top = category.diffuse
  p['light_b'] = lo + p['light_b'] * (top - p['light_a'])
  deg, t = math.pi / 180.0, o.max_translation
  lim = np.array([o.max_pitch * deg, o.max_yaw * deg, o.max_roll * deg, t, t,
                  0.0])
  p['view'] = rng.uniform(-1.0, 1.0, (n, 6)) * lim
  p['asymmetry'] = np.full((n,), o.asymmetry)
  p['zoom'] = np.full((n,), o.zoom)
  return p


def parse_param_range(text: str,
                      category: str = 'face') -> Tuple[str, float, float]:
  """'NAME:LO:HI' -> (name, lo, hi), checked against the category's
  parameters (`CATEGORIES[category].param_ranges`)."""
  parts = text.split(':')
  try:
    if len(parts) != 3:
      raise ValueError
    entry = (parts[0].strip(), float(parts[1]), float(parts[2]))
  except ValueError:
    raise ValueError(f'param_range must be NAME:LO:HI (e.g. head_pow:1:1.5). '
                     f'Received: {text!r}') from None
  SynthOptions(param_ranges=(entry,), category=category).check()
  return entry
