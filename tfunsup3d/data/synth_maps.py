"""Map-making pieces shared by the synthetic categories (face, car).

Each category (`tfunsup3d.data.synth` for the face, `synth_car` for the car)
turns its per-instance parameters into canonical maps on the same layout grid
(`layout`, `grid`), paints its albedo with anti-aliased shapes (`coverage`,
`disc`, `over`), makes it exactly symmetric (`mirror`), expresses its depth
as the model does (`scene_depth`, `representable`), adds the same asymmetric
details (`asymmetric_albedo`) and returns the same factor dict
(`factor_dict`), which `synth.render_instances` renders whatever the
category.
"""

from typing import Dict, Mapping, Optional

import numpy as np


def coverage(r, sx, sy, pixel):
  """Anti-aliased inside {r < 1} of a shape with half-axes sx, sy (a linear
  ramp about one pixel wide across its rim), broadcast from the arguments."""
  return np.clip((1.0 - r) * np.minimum(sx, sy) / pixel + 0.5, 0.0, 1.0)


def disc(dx, dy, sx, sy, pixel):
  """Anti-aliased filled ellipse (`coverage`).

  Args:
    dx, dy: offsets from the centre, broadcastable to [n,S,S].
    sx, sy: half-axes.
    pixel: the size of one pixel in the same units.
  Returns:
    Coverage in [0, 1], broadcast from the arguments.
  """
  return coverage(np.sqrt((dx / sx) ** 2 + (dy / sy) ** 2), sx, sy, pixel)


def over(base, alpha, colour):
  """Paints `colour` [n,(S,S,)3] over `base` [n,S,S,3] with alpha [n,S,S]."""
  colour = colour if colour.ndim == 4 else colour[:, None, None, :]
  return base + alpha[..., None] * (colour - base)


def mirror(x):
  """Exactly symmetric part of [n,S,S(,C)] maps ((a + b) / 2 is exact)."""
  return 0.5 * (x + x[:, :, ::-1])


def representable(scene, min_depth, max_depth, border_depth):
  """The scene's depth [n,S,S] as the model can express it (docs/method.md §2).

  The model's canonical depth is tanh(raw - mean(raw)) rescaled to
  [min_depth, max_depth], with the two left and right border columns set to
  border_depth: its tanh-space mean is 0. A face on a backdrop at
  border_depth has a positive mean (about +0.2 here), so the model could only
  fit it with a relief about twice as deep (and, through the relief/rotation
  ambiguity, a yaw about half as large). The scene is therefore shifted in
  tanh space to mean 0, exactly as the model's own post-processing would:
  the backdrop moves a little nearer than the border columns (a little
  farther when the face fills most of the frame, `SynthOptions.zoom`).
  """
  mid, half = (max_depth + min_depth) / 2.0, (max_depth - min_depth) / 2.0
  raw = np.arctanh((scene - mid) / half)
  raw[:, :, :2] = raw[:, :, -2:] = np.arctanh((border_depth - mid) / half)
  # Shift the inner columns so that the mean over all columns is 0: the raw
  # map then passes through the model's post-processing unchanged.
  inner = raw[:, :, 2:-2]
  inner -= raw.sum(axis=(1, 2), keepdims=True) / inner[0].size
  return mid + half * np.tanh(raw)


def scene_depth(h, min_depth, max_depth, border_depth):
  """A relief h [n,S,S] (towards the camera, in units of the depth range,
  0 on the backdrop) as the model's canonical depth: the backdrop at
  border_depth, the object nearer, kept 2% of the range off min_depth, then
  `representable`."""
  span = max_depth - min_depth
  scene = np.clip(border_depth - span * h, min_depth + 0.02 * span,
                  border_depth)
  return representable(scene, min_depth, max_depth, border_depth)


def grid(q: Mapping[str, np.ndarray], image_size: int):
  """Sample coordinates in layout units (y down, x right, 0 at the centre).

  Args:
    q: parameters of n instances, per-instance scalars shaped [n,1,1];
      optional 'zoom' (layout units per pixel scale, default 1).
    image_size: S.
  Returns:
    (x, y, pixel): x [n or 1,1,S], y [n or 1,S,1], with x_j = -x_-j exactly;
    pixel, the size of one pixel in layout units ([n,1,1] or a float).
  """
  zoom = q['zoom'] if 'zoom' in q else 1.0  # [n,1,1]: layout units / pixel
  c = (int(image_size) - 1) / 2.0
  pixel = 1.0 / (c * zoom)
  coords = (np.arange(int(image_size)) - c) / c  # exact mirror: x_j = -x_-j
  y, x = coords[None, :, None] / zoom, coords[None, None, :] / zoom
  return x, y, pixel


def layout(params: Mapping[str, np.ndarray], image_size: int):
  """A category's parameters on the grid.

  Returns:
    (p, q, x, y, pixel): p, the parameters as float64 arrays [n] or [n,k];
    q, the same with per-instance scalars shaped [n,1,1]; x, y, pixel from
    `grid`.
  """
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  q = {k: (v[:, None, None] if v.ndim == 1 else v) for k, v in p.items()}
  return (p, q) + grid(q, image_size)


def default_border(min_depth: float, max_depth: float,
                   border_depth: Optional[float]) -> float:
  """border_depth, or the model's default (`config.resolved`) when None."""
  if border_depth is None:
    return 0.7 * max_depth + 0.3 * min_depth
  return border_depth


def asymmetric_albedo(p, q, x, y, cover, centre_y, alb, bg, pixel):
  """Adds the asymmetric instances' mark and sideways backdrop gradient.

  Args:
    p, q: parameters as from `layout`, with 'asymmetry', 'mark' (< 0.5: a
      mark), 'mark_x', 'mark_y' (from centre_y), 'mark_r', 'mark_strength'
      and 'bg_grad_x'; instances with asymmetry 0 keep their albedo.
    x, y, pixel: from `grid`.
    cover: [n,S,S] the object's coverage (the mark stays on it).
    centre_y: [n,1,1] the height the mark's 'mark_y' counts from.
    alb, bg: [n,S,S,3] the albedo and the backdrop.
  Returns:
    (alb, bg), both [n,S,S,3].
  """
  a = q['asymmetry']
  if np.any(p['asymmetry'] > 0):
    mark_x = q['mark_x'] + 0.15 * np.sign(q['mark_x'])  # off the centre line
    mark = a * (q['mark'] < 0.5) * q['mark_strength'] * cover * disc(
        x - mark_x, y - centre_y - q['mark_y'], q['mark_r'], q['mark_r'],
        pixel)
    alb = over(alb, mark, np.tile(np.array([[0.25, 0.15, 0.1]]), (len(a), 1)))
    bg_x = (1.0 + a * q['bg_grad_x'] * x)[..., None]
    alb, bg = alb * (bg_x + cover[..., None] * (1.0 - bg_x)), bg * bg_x
  return alb, bg


def factor_dict(p, depth, mask, alb, bg) -> Dict[str, np.ndarray]:
  """The factors `synth.render_instances` renders, float32.

  Args:
    p: parameters with 'light_a', 'light_b' [n], 'light_dxy' [n,2] and
      'view' [n,6].
    depth: [n,S,S] canonical depth (made exactly symmetric here).
    mask: [n,S,S] 1 on the object.
    alb, bg: [n,S,S,3] albedo and backdrop in [0, 1] (clipped here).
  Returns:
    dict: canon_depth, face_mask (the object), canon_albedo and
    backdrop_albedo in [-1, 1], light_a, light_b [n,1], light_d [n,3] (unit),
    view [n,6].
  """
  d = np.concatenate([p['light_dxy'], np.ones_like(p['light_dxy'][:, :1])], 1)
  out = {'canon_depth': mirror(depth), 'face_mask': mask,
         'canon_albedo': np.clip(alb, 0.0, 1.0) * 2.0 - 1.0,
         'backdrop_albedo': np.clip(bg, 0.0, 1.0) * 2.0 - 1.0,
         'light_a': p['light_a'][:, None], 'light_b': p['light_b'][:, None],
         'light_d': d / np.linalg.norm(d, axis=1, keepdims=True),
         'view': p['view']}
  return {k: v.astype(np.float32) for k, v in out.items()}
