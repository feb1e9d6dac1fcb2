"""Benchmark of the reprojection Π (render_depth + inverse_warp_grid +
grid_sample) and of the rasteriser alone, forward and forward+backward, with
XLA on and off, on smooth and rough depth maps. Prints JSON lines.

  python -m bench.render                       # B=64 and 2B=128, 64x64
  python -m bench.render --xla=on              # ~2.5 min on 2 idle cores
  python -m bench.render --xla=off             # ~3 min (graph mode is slow)
  python -m bench.render --batch=64 --rows=1 --xla=on --depth=smooth
  python -m bench.render --repeats=3 --what=reproject_fwd_bwd
  python -m bench.render --what=zbuffer,zbuffer_one_tier --xla=on --rows=2 \
      --batch=16 --depth=smooth,steps,rough --repeats=9

Cases:
  smooth: the canonical depth of a smooth bump (a face-like ellipsoid
    cap in [0.9, 1.1], border columns at 1.07 as the model sets them), seen
    from yaw angles spread over [-30, 30] degrees (a few degrees of pitch
    and roll, small translations): the typical case in training.
  rough: uniform noise depth 1 +- 0.05 per pixel, same views: many large
    and sliver triangles after reprojection, the rasteriser's worst case
    (its loop runs over the largest triangle's bounding box).
  steps: a box-shaped relief (0.95 on a 1.08 backdrop, a one-pixel step),
    like a car's body: long stretched triangles at its sides when turned.
Measurements (`what`):
  reproject_fwd: recon_depth -> grid -> recon_im (the model's forward Π).
  reproject_fwd_bwd: the same plus gradients w.r.t. canonical depth, view
    and canonical image (the training case).
  raster_fwd / raster_fwd_bwd: rasterize_depth only (after the cheap lift
    and view transform of the vertices; gradients w.r.t. the vertices).
  zbuffer / zbuffer_one_tier: the z-buffer alone (the visible triangle per
    sample, no gradient) in two tiers (large triangles in small chunks,
    as the rasteriser runs on a CPU) and in one (every triangle in the same
    large chunks, as it runs on a GPU or TPU:
    `rasterizer.default_large_area`); the summary prints their ratio per
    depth case.
"""

import argparse
import functools
import os
import time

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

from bench import common
from tfunsup3d import render
from tfunsup3d.render import rasterizer

MIN_DEPTH, MAX_DEPTH, BORDER_DEPTH, ROT_CENTER = 0.9, 1.1, 1.07, 1.0
WHAT = ('reproject_fwd', 'reproject_fwd_bwd', 'raster_fwd', 'raster_fwd_bwd',
        'zbuffer', 'zbuffer_one_tier')
DEFAULT_WHAT = WHAT[:4]


def smooth_depth(batch: int, size: int) -> np.ndarray:
  """A face-like cap: 1.05 at the rim, down to ~0.93 at the centre."""
  v, u = np.meshgrid(np.linspace(-1, 1, size), np.linspace(-1, 1, size),
                     indexing='ij')
  cap = np.clip(1.0 - (u / 0.75) ** 2 - (v / 0.9) ** 2, 0.0, None)
  depth = 1.05 - 0.12 * np.sqrt(cap)
  depth[:, :2] = depth[:, -2:] = BORDER_DEPTH
  return np.repeat(depth[None], batch, 0).astype(np.float32)


def steps_depth(batch: int, size: int) -> np.ndarray:
  """A box: 0.95 over the central 60% x 50%, 1.08 around it."""
  depth = np.full([size, size], 1.08, np.float32)
  r0, c0 = int(size * 0.25), int(size * 0.2)
  depth[r0:size - r0, c0:size - c0] = 0.95
  return np.repeat(depth[None], batch, 0)


def rough_depth(batch: int, size: int, seed: int = 0) -> np.ndarray:
  rng = np.random.default_rng(seed)
  return (1.0 + rng.uniform(-0.05, 0.05, (batch, size, size))).astype(
      np.float32)


def views(batch: int, seed: int = 1) -> np.ndarray:
  """Yaw spread over [-30, 30] degrees, small pitch/roll/translation."""
  rng = np.random.default_rng(seed)
  yaw = np.linspace(-30.0, 30.0, batch) if batch > 1 else np.array([30.0])
  view = np.zeros([batch, 6], np.float32)
  view[:, 0] = np.radians(rng.uniform(-5, 5, batch))
  view[:, 1] = np.radians(yaw)
  view[:, 2] = np.radians(rng.uniform(-3, 3, batch))
  view[:, 3:5] = rng.uniform(-0.03, 0.03, (batch, 2))
  return view


def make_functions(size: int, xla: bool, anti_aliasing: bool):
  K = render.intrinsics(size, 10.0)

  def reproject(canon_depth, view, canon_im):
    recon_depth = render.render_depth(canon_depth, view, K, ROT_CENTER,
                                      MIN_DEPTH, MAX_DEPTH,
                                      anti_aliasing=anti_aliasing)
    grid = render.inverse_warp_grid(recon_depth, view, K, ROT_CENTER)
    return recon_depth, render.grid_sample(canon_im, grid)

  def reproject_fwd(canon_depth, view, canon_im):
    return reproject(canon_depth, view, canon_im)

  def reproject_fwd_bwd(canon_depth, view, canon_im):
    with tf.GradientTape() as tape:
      tape.watch([canon_depth, view, canon_im])
      recon_depth, recon_im = reproject(canon_depth, view, canon_im)
      # A loss that depends on both outputs, like the L1 + mask of training.
      loss = tf.reduce_mean(tf.abs(recon_im)) + tf.reduce_mean(
          tf.where(recon_depth < MAX_DEPTH + 0.1, recon_depth, 0.0))
    return tape.gradient(loss, [canon_depth, view, canon_im])

  def transformed(canon_depth, view):
    b = tf.shape(canon_depth)[0]
    points = tf.reshape(render.depth_to_points(canon_depth, K), [b, -1, 3])
    return render.transform_points(points, view, ROT_CENTER)

  def raster_fwd(canon_depth, view, canon_im):
    del canon_im
    # Faces built inside the function, as render_depth does: a captured
    # eager tensor would be an XLA parameter instead of a constant.
    return render.rasterize_depth(transformed(canon_depth, view),
                                  render.grid_faces(size, size), K, size,
                                  size, anti_aliasing=anti_aliasing)

  def raster_fwd_bwd(canon_depth, view, canon_im):
    del canon_im
    points = transformed(canon_depth, view)
    with tf.GradientTape() as tape:
      tape.watch(points)
      depth = render.rasterize_depth(points, render.grid_faces(size, size),
                                     K, size, size,
                                     anti_aliasing=anti_aliasing)
      loss = tf.reduce_mean(tf.where(depth < 50.0, depth, 0.0))
    return tape.gradient(loss, points)

  def zbuffer(canon_depth, view, canon_im, **split):
    del canon_im
    ss, offset = rasterizer._sample_grid_params(anti_aliasing)  # pylint: disable=protected-access
    corners = rasterizer._triangles(  # pylint: disable=protected-access
        transformed(canon_depth, view), render.grid_faces(size, size), K,
        ss, offset)
    return rasterizer._visible_faces(  # pylint: disable=protected-access
        corners, size * ss, size * ss, **split)

  fns = {'reproject_fwd': reproject_fwd,
         'reproject_fwd_bwd': reproject_fwd_bwd,
         'raster_fwd': raster_fwd, 'raster_fwd_bwd': raster_fwd_bwd,
         'zbuffer': functools.partial(
             zbuffer, large_area=rasterizer.LARGE_AREA_CPU),
         'zbuffer_one_tier': functools.partial(
             zbuffer, large_area=rasterizer.NO_LARGE_AREA)}
  return {k: tf.function(f, jit_compile=xla) for k, f in fns.items()}


def main(argv=None):
  parser = argparse.ArgumentParser(
      prog='python -m bench.render', description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--batch', type=int, default=64,
                      help='B (images); see --rows')
  parser.add_argument('--rows', default='1,2',
                      help='multiples of B to render: 1 = B rows, 2 = 2B '
                      'rows (the model renders originals and flips)')
  parser.add_argument('--size', type=int, default=64)
  parser.add_argument('--repeats', type=int, default=5)
  parser.add_argument('--warmup', type=int, default=1)
  parser.add_argument('--xla', default='on,off')
  parser.add_argument('--depth', default='smooth,rough')
  parser.add_argument('--what', default=','.join(DEFAULT_WHAT),
                      help='measurements with XLA on')
  parser.add_argument('--what_no_xla', default='reproject_fwd,'
                      'reproject_fwd_bwd', help='measurements with XLA off '
                      '(graph mode; several seconds per call)')
  parser.add_argument('--repeats_no_xla', type=int, default=2)
  parser.add_argument('--anti_aliasing', default='on',
                      help='on (reference: 2x supersampled), off, or on,off')
  args = parser.parse_args(argv)
  whats = common.parse_list(args.what)
  whats_no_xla = common.parse_list(args.what_no_xla)
  unknown = sorted((set(whats) | set(whats_no_xla)) - set(WHAT))
  if unknown:
    parser.error(f'--what: unknown {unknown}; choose from {WHAT}')
  depth_makers = {'smooth': smooth_depth, 'steps': steps_depth,
                  'rough': rough_depth}
  depths = common.parse_list(args.depth)
  if set(depths) - set(depth_makers):
    parser.error(f'--depth takes {",".join(depth_makers)}. Received: '
                 f'{args.depth}')

  common.emit(common.environment())
  summary = []
  started = time.perf_counter()
  for aa in common.parse_xla(args.anti_aliasing):
    for xla in common.parse_xla(args.xla):
      fns = make_functions(args.size, xla, aa)
      for rows_mult in (int(r) for r in common.parse_list(args.rows)):
        rows = args.batch * rows_mult
        for depth_name in depths:
          canon_depth = tf.constant(depth_makers[depth_name](rows, args.size))
          view = tf.constant(views(rows))
          canon_im = tf.constant(np.random.default_rng(2).uniform(
              -1, 1, (rows, args.size, args.size, 3)).astype(np.float32))
          for what in (whats if xla else whats_no_xla):
            fn = fns[what]
            result = common.measure(
                functools.partial(fn, canon_depth, view, canon_im),
                repeats=args.repeats if xla else args.repeats_no_xla,
                warmup=args.warmup if xla else 0)
            record = {'bench': 'render', 'what': what, 'depth': depth_name,
                      'rows': rows, 'size': args.size, 'xla': xla,
                      'anti_aliasing': aa}
            record.update(result)
            common.emit(record)
            summary.append(record)
  fwd_bwd = [r for r in summary if r['what'] == 'reproject_fwd_bwd']
  timed = {(r['what'], r['depth'], r['rows'], r['anti_aliasing']):
           r['median_s'] for r in summary}
  split_ratio = {
      f'{depth}/rows={rows}/aa={"on" if aa else "off"}':
          round(t / timed[('zbuffer_one_tier', depth, rows, aa)], 3)
      for (what, depth, rows, aa), t in timed.items()
      if what == 'zbuffer' and ('zbuffer_one_tier', depth, rows, aa) in timed}
  common.emit({
      'event': 'summary', 'bench': 'render',
      'wall_s': round(time.perf_counter() - started, 1),
      'target': 'reproject_fwd_bwd <= 0.3 s at B=64 (2 CPU cores)',
      'reproject_fwd_bwd_median_s': {
          f"{r['depth']}/rows={r['rows']}/xla={'on' if r['xla'] else 'off'}"
          f"/aa={'on' if r['anti_aliasing'] else 'off'}": r['median_s']
          for r in fwd_bwd},
      **({'zbuffer_over_one_tier': split_ratio} if split_ratio else {}),
  })


if __name__ == '__main__':
  main()
