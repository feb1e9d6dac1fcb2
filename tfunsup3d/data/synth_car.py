"""A synthetic, symmetric, car-like category with ground-truth depth.

The canonical view sees the car from the front, a little from above,
mirror-symmetric about the vertical centre line, standing on the ground in
front of a backdrop wall; the views turn it by a wide yaw (`OPTION_DEFAULTS`:
up to 60 degrees, all that the model's `xyz_rotation_range` of 60 expresses).
`synth.render_instances` renders it exactly as it renders the face.

Depth, towards the camera from the backdrop in units of the depth range: a
lower body and a narrower cabin, each a superellipsoid block (its per-instance
`boxiness` bevels the edges, which meet the backdrop without a step): the
lower body's front face with the hood receding above it, the cabin's
windshield receding up to the roof, the cabin narrowing upwards (bevelled
pillars); two tyres (rounded blocks set back from the front face) below the
body and in wheel arches recessed into its lower corners. The backdrop is a
plane at `border_depth`, expressed as the model expresses depth
(`synth_maps.scene_depth`). Albedo: a body colour per instance, a darker
bumper band, a dark grille, light headlamps, a licence plate, blue-grey glass
between the pillars, dark tyres and arches; the backdrop is a wall above a
grey ground, its horizon above the wheels, with the car's soft shadow; the
face's asymmetric details (a dark mark on one side, here of the body, and a
sideways backdrop gradient) scaled by `asymmetry`. Ground truth is the car's
depth in the input view (`face_mask` is the car's silhouette).

Limits of a single depth map: the car's front stands about half the depth
range before the backdrop, so at zoom 1.2 it is about as deep as it is wide;
a turned car's sides are the depth map's steep edges, textured by the
colours at the silhouette.
"""

from typing import Dict, Mapping, Optional

import numpy as np

from tfunsup3d.data import synth_maps as maps

# `SynthOptions` fields of the category (the rest are the class defaults).
# At zoom 1.2 the body spans 70-89% of the width (about 28% of the image
# area), with backdrop around and above it.
OPTION_DEFAULTS = {'max_yaw': 60.0, 'max_pitch': 5.0, 'max_roll': 3.0,
                   'zoom': 1.2}
# light_b is rescaled to [0.5, 1.1 - light_a]: within min_diff_light 0.5 of
# configs/synthcar.yml (the reference's syncar setting).
DIFFUSE_LIGHT = (0.5, 0.6)

# Per-instance parameters, each uniform in [lo, hi) (optional trailing size).
# Positions are in units of the half image (x right, y down, centre 0), from
# the ground up: heights of the tyres, the clearance under the body, the
# front face, the hood band and the cabin; widths as fractions of the body's
# half-width where named so. Depth amplitudes in units of the depth range.
# 'mark' < 0.5: has a mark.
PARAM_RANGES = (
    ('ground_y', 0.36, 0.48), ('wheel_r', 0.09, 0.13),
    ('clearance', 0.1, 0.15), ('body_h', 0.18, 0.28), ('hood_h', 0.05, 0.12),
    ('cabin_h', 0.28, 0.4), ('roof_h', 0.03, 0.06), ('body_w', 0.58, 0.74),
    ('cabin_w', 0.78, 0.92), ('taper', 0.12, 0.3), ('pillar_w', 0.04, 0.08),
    ('boxiness', 2.5, 4.0), ('body_amp', 0.45, 0.62), ('hood_len', 0.06, 0.14),
    ('screen_len', 0.12, 0.22), ('wheel_w', 0.07, 0.11),
    ('wheel_inset', 0.02, 0.06), ('wheel_set', 0.05, 0.12),
    ('body_rgb', 0.08, 0.9, 3), ('bumper_h', 0.04, 0.08),
    ('bumper_tone', 0.3, 1.0), ('grille_w', 0.25, 0.45),
    ('grille_h', 0.03, 0.07), ('grille_y', 0.3, 0.55), ('lamp_x', 0.62, 0.8),
    ('lamp_y', 0.15, 0.35), ('lamp_rx', 0.06, 0.1), ('lamp_ry', 0.025, 0.045),
    ('glass_tone', 0.7, 1.3), ('tyre_tone', 0.05, 0.12),
    ('bg_rgb', 0.25, 0.85, 3), ('bg_grad', -0.3, 0.3),
    ('horizon', 0.15, 0.45), ('ground_tone', 0.2, 0.5),
    ('ground_jitter', -0.04, 0.04, 3), ('bg_grad_x', -0.3, 0.3),
    ('mark', 0.0, 1.0), ('mark_x', -0.27, 0.27), ('mark_y', -0.1, 0.1),
    ('mark_r', 0.04, 0.08), ('mark_strength', 0.5, 1.0),
    ('light_a', 0.25, 0.5), ('light_b', 0.0, 1.0),
    ('light_dxy', -0.75, 0.75, 2))


def _block(dx, y, half_w, top, bottom, power, pixel):
  """A superellipsoid block between heights top < bottom.

  Args:
    dx: x offset from the block's centre line, [n or 1,1,S].
    y: `maps.grid`'s y; top, bottom: [n,1,1].
    half_w: half-width, [n,1,1] or [n,S,1] (varying with height).
    power: [n,1,1] >= 2, its boxiness (2: an ellipsoid).
    pixel: from `maps.grid`.
  Returns:
    (height, cover), [n,S,S] each: height 1 on the centre, falling to 0 at
    the rim; cover, the anti-aliased inside.
  """
  half_h = (bottom - top) / 2.0
  s = (np.abs(dx / half_w) ** power +
       np.abs((y - top - half_h) / half_h) ** power)
  height = np.clip(1.0 - s, 0.0, 1.0) ** (1.0 / power)
  return height, maps.coverage(s ** (1.0 / power), half_w, half_h, pixel)


def _heights(q):
  """Layout heights (y down) from the ground up, each [n,1,1]."""
  g = q['ground_y']
  sill = g - q['clearance']
  hood = sill - q['body_h']  # top of the front face
  belt = hood - q['hood_h']  # the hood's back edge, the cabin's base
  roof = belt - q['cabin_h']
  return {'ground': g, 'sill': sill, 'hood': hood, 'belt': belt,
          'roof': roof}


def _shape(q, x, y, y_of, pixel):
  """The car's relief and coverage.

  Args:
    q: parameters, per-instance scalars shaped [n,1,1].
    x, y, pixel: from `maps.grid`.
    y_of: `_heights`.
  Returns:
    dict of [n,S,S] arrays: h, the relief (0 on the backdrop); body, lower,
    tyre, arch, glass, the coverage of the body (lower body and cabin), the
    lower body, the tyres, the wheel arches and the windshield; shade, the
    ground's shadow factor.
  """
  ax, k = np.abs(x), q['boxiness']
  t_hood = np.clip((y_of['hood'] - y) / q['hood_h'], 0.0, 1.0)
  lower, lower_cov = _block(x, y, q['body_w'], y_of['belt'], y_of['sill'], k,
                            pixel)
  t_cab = np.clip((y_of['belt'] - y) / q['cabin_h'], 0.0, 1.0)  # [n,S,1]
  cab_w = q['body_w'] * q['cabin_w'] * (1.0 - q['taper'] * t_cab)
  cabin, cabin_cov = _block(x, y, cab_w, y_of['roof'], y_of['hood'], k,
                            pixel)
  wheel_x = q['body_w'] - q['wheel_inset'] - q['wheel_w']
  r = q['wheel_r']
  tyre, tyre_cov = _block(ax - wheel_x, y, q['wheel_w'],
                          y_of['ground'] - 2 * r, y_of['ground'], 4.0, pixel)
  arch, arch_cov = _block(ax - wheel_x, y, 1.3 * q['wheel_w'],
                          y_of['ground'] - 2.4 * r, y_of['ground'], 4.0,
                          pixel)
  h_lower = np.maximum(
      (q['body_amp'] - q['hood_len'] * t_hood) * lower
      - (q['wheel_set'] + 0.1) * arch, 0.0)  # the arch: behind the tyre
  h = np.maximum.reduce([
      h_lower, (q['body_amp'] - q['hood_len'] - q['screen_len'] * t_cab)
      * cabin, (q['body_amp'] - q['wheel_set']) * tyre])
  glass = (np.clip((cab_w - q['pillar_w'] - ax) / pixel + 0.5, 0.0, 1.0)
           * np.clip((y - y_of['roof'] - q['roof_h']) / pixel + 0.5, 0, 1)
           * np.clip((y_of['belt'] - y) / pixel + 0.5, 0.0, 1.0))
  body = np.maximum(lower_cov, cabin_cov)
  shade = 1.0 - 0.6 * maps.disc(x, y - y_of['ground'], 1.1 * q['body_w'],
                                0.07, pixel)
  return {'h': h, 'body': body, 'lower': lower_cov, 'tyre': tyre_cov, 'arch': arch_cov * lower_cov,
          'glass': glass * cabin_cov, 'shade': shade}


def _backdrop(p, q, y, y_of, shade, pixel):
  """The backdrop [n,S,S,3]: a wall above a grey ground and its shadow."""
  wall = p['bg_rgb'][:, None, None, :] * (1.0 + q['bg_grad'] * y)[..., None]
  ground = q['ground_tone'][..., None] * (
      1.0 + p['ground_jitter'][:, None, None, :])
  below = np.clip((y - y_of['ground'] + q['horizon']) / pixel + 0.5, 0, 1)
  return maps.over(wall, below, ground) * shade[..., None]


def _albedo(p, q, x, y, y_of, parts, pixel):
  """Symmetric albedo in [0, 1] and the backdrop, [n,S,S,3] each."""
  ax, n = np.abs(x), len(p['body_rgb'])
  bg = _backdrop(p, q, y, y_of, parts['shade'], pixel)
  body_rgb = p['body_rgb']
  alb = maps.over(bg, parts['body'], body_rgb)
  bumper = parts['lower'] * np.clip(
      (y - y_of['sill'] + q['bumper_h']) / pixel + 0.5, 0.0, 1.0)
  alb = maps.over(alb, bumper, body_rgb * p['bumper_tone'][:, None])
  grille_y = y_of['hood'] + q['grille_y'] * q['body_h']
  grille = _block(x, y, q['grille_w'] * q['body_w'], grille_y - q['grille_h'],
                  grille_y + q['grille_h'], 8.0, pixel)[1]
  alb = maps.over(alb, grille, np.full((n, 3), 0.08))
  lamp_y = y_of['hood'] + q['lamp_y'] * q['body_h']
  lamps = maps.disc(ax - q['lamp_x'] * q['body_w'], y - lamp_y, q['lamp_rx'],
                    q['lamp_ry'], pixel)
  alb = maps.over(alb, lamps, np.tile([[0.95, 0.93, 0.85]], (n, 1)))
  plate_y = y_of['sill'] - q['bumper_h'] / 2.0
  plate = _block(x, y, np.full_like(plate_y, 0.1), plate_y - 0.025,
                 plate_y + 0.025, 8.0, pixel)[1] * parts['lower']
  alb = maps.over(alb, plate, np.tile([[0.9, 0.9, 0.85]], (n, 1)))
  sky = 1.0 + 0.6 * np.clip((y_of['belt'] - y) / q['cabin_h'], 0.0, 1.0)
  glass = np.array([0.16, 0.2, 0.26]) * q['glass_tone'][..., None] * sky[
      ..., None]
  alb = maps.over(alb, parts['glass'], glass)
  alb = maps.over(alb, parts['arch'], np.full((n, 3), 0.05))
  alb = maps.over(alb, parts['tyre'],
                  np.tile(p['tyre_tone'][:, None], (1, 3)))
  return maps.mirror(alb), bg


def factors_from_params(params: Mapping[str, np.ndarray], image_size: int,
                        min_depth: float = 0.9, max_depth: float = 1.1,
                        border_depth: Optional[float] = None
                        ) -> Dict[str, np.ndarray]:
  """Evaluates the canonical maps of the car category's instances.

  Args:
    params: `synth_params.sample_params` of `SynthOptions(category='car')`.
    image_size: S.
    min_depth, max_depth: the depth range.
    border_depth: the backdrop's depth (default: the model's,
      0.7 max + 0.3 min).
  Returns:
    The face's dict (`synth.factors_from_params`), float32: canon_depth
    [n,S,S] in [min_depth, max_depth]; canon_albedo, backdrop_albedo
    [n,S,S,3] in [-1, 1]; face_mask [n,S,S] (1 on the car); light_a,
    light_b [n,1]; light_d [n,3] (unit); view [n,6].
  """
  p, q, x, y, pixel = maps.layout(params, image_size)
  border_depth = maps.default_border(min_depth, max_depth, border_depth)
  y_of = _heights(q)
  parts = _shape(q, x, y, y_of, pixel)
  depth = maps.scene_depth(parts['h'], min_depth, max_depth, border_depth)
  alb, bg = _albedo(p, q, x, y, y_of, parts, pixel)
  centre = (y_of['belt'] + y_of['sill']) / 2.0
  alb, bg = maps.asymmetric_albedo(p, q, x, y, parts['body'], centre, alb,
                                   bg, pixel)
  mask = (parts['h'] > 0.0).astype(np.float64)
  return maps.factor_dict(p, depth, mask, alb, bg)
