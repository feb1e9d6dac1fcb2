"""The authors' code on our synthetic data: does their Unsup3D lock too?

Trains the authors' PyTorch Unsup3D, from a checkout of github
elliottwu/unsup3d named with `--reference_dir` (nothing is downloaded), on
`experiments.data_variants`' default set with this package's data loader, and
scores it with `experiments.learning.Scorer`'s diagnostics, for a side-by-side
with the `default` row of `experiments/results/data_variants.md` (same config,
steps and data). Their modules run unchanged; three imports are stubbed:
`cv2` and `torchvision` (unused here: the perceptual loss is off, as in the
quickstart, and replaced by zero) and `neural_renderer` (CUDA only), whose
`render_depth` takes the visible triangle per sample from this package's
z-buffer (no gradient there) and recomputes its perspective-correct depth in
torch, so autograd gives the exact barycentric gradient, as
neural_renderer's depth backward does; and torch's `grid_sample` gets back
the aligned corners of torch <= 1.2, which the code was written for (see
docs/method.md §2). The networks take the config's sizes
(`nf_depth`, `zdim_depth`, `nf_encoder`, `nf_conf`, `zdim_conf`,
`gn_channels`); `--reference_sizes` keeps the authors' own.

Needs PyTorch (the CPU build is enough: `pip install torch==2.13.0`).

  python -m experiments.reference_code --reference_dir PATH   # results/reference_code.*

Writes the table (`.md`, `.json`) and `<name>_depth.png`: the first test
images, the trained model's canonical depth and the generator's.
"""

import argparse
import os
import types
from typing import Dict

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np
import tensorflow as tf

from bench import authors
from bench import common
from experiments import data_variants
from experiments import learning
from experiments import trainers
from tfunsup3d import config as config_lib
from tfunsup3d import render
from tfunsup3d.factors import depth as depth_lib
from tfunsup3d.render import rasterizer

STRIP_IMAGES = 8  # test images in the canonical depth picture


def _import_reference(reference_dir: str, cfg, reference_sizes: bool):
  """The authors' `unsup3d.model` and `unsup3d.networks`, with the stubs."""
  torch = authors.import_torch('experiments.reference_code')
  # The reference was written for torch <= 1.2, whose grid_sample aligned
  # corners (its grid is normalised by W - 1); newer torch defaults to False.
  grid_sample = torch.nn.functional.grid_sample
  torch.nn.functional.grid_sample = lambda *a, **k: grid_sample(
      *a, **{'align_corners': True, **k})
  stub = types.ModuleType('neural_renderer')
  stub.Renderer = _depth_renderer(torch)
  authors.reference_package(reference_dir, {
      'cv2': types.ModuleType('cv2'),
      'torchvision': types.ModuleType('torchvision'),
      'neural_renderer': stub})
  from unsup3d import networks  # pylint: disable=import-error

  class NoPerceptualLoss(torch.nn.Module):
    def forward(self, *unused_args, **unused_kwargs):
      return torch.zeros(())
  networks.PerceptualLoss = lambda requires_grad=False: NoPerceptualLoss()
  if not reference_sizes and cfg.gn_channels:
    group_norm = torch.nn.GroupNorm
    names = {k: getattr(torch.nn, k) for k in dir(torch.nn)
             if not k.startswith('_')}
    names['GroupNorm'] = lambda unused_groups, c: group_norm(
        c // cfg.gn_channels, c)
    networks.nn = types.SimpleNamespace(**names)
  from unsup3d import model  # pylint: disable=import-error
  return torch, model, networks


def _depth_renderer(torch):
  """A `neural_renderer.Renderer` stand-in with `render_depth` only."""
  class Renderer:  # pylint: disable=too-few-public-methods
    def __init__(self, K, image_size, **unused_kwargs):  # pylint: disable=invalid-name
      self.K = K[0].detach().cpu().float()
      self.size = image_size

    def render_depth(self, vertices, faces):
      """`[B, N, 3]` camera-space vertices -> depth `[B, S, S]` (the
      reference's anti-aliased convention, `rasterizer` module doc)."""
      ss, s = 2, self.size
      x, y, z = vertices.unbind(-1)
      sx = (x / z * self.K[0, 0] + self.K[0, 2]) * ss - 0.5
      sy = (y / z * self.K[1, 1] + self.K[1, 2]) * ss - 0.5
      tris = torch.stack([sx, sy, z], -1)[:, faces[0].long()]  # [B,T,3,3]
      corners = tris.detach().cpu().numpy().transpose(2, 1, 0, 3)  # [3,T,B,3]
      ids = rasterizer._find_visible_faces(  # pylint: disable=protected-access
          tuple(tf.constant(c) for c in corners), s * ss, s * ss)
      ids = torch.from_numpy(ids.numpy().astype(np.int64)).reshape(
          len(tris), -1)
      hit = ids >= 0
      tri = torch.gather(tris, 1, ids.clamp(min=0)[..., None, None].expand(
          -1, -1, 3, 3))
      x0, y0 = tri[..., 0, 0], tri[..., 0, 1]
      ex1, ey1 = tri[..., 1, 0] - x0, tri[..., 1, 1] - y0
      ex2, ey2 = tri[..., 2, 0] - x0, tri[..., 2, 1] - y0
      area = ex1 * ey2 - ex2 * ey1
      area = torch.where(area.abs() > 1e-10, area, torch.ones_like(area))
      py, px = torch.meshgrid(torch.arange(s * ss, dtype=torch.float32),
                              torch.arange(s * ss, dtype=torch.float32),
                              indexing='ij')
      dx, dy = px.reshape(1, -1) - x0, py.reshape(1, -1) - y0
      w1 = (dx * ey2 - dy * ex2) / area
      w2 = (dy * ex1 - dx * ey1) / area
      inv_z = ((1 - w1 - w2) / tri[..., 0, 2] + w1 / tri[..., 1, 2]
               + w2 / tri[..., 2, 2])
      depth = torch.where(hit, 1.0 / torch.where(hit, inv_z, 1.0),
                          rasterizer.FAR)
      return depth.reshape(-1, s, ss, s, ss).mean((2, 4))
  return Renderer


def build_reference_model(args, cfg):
  """The authors' `Unsup3D` with the config's settings and sizes."""
  if cfg.lam_perc:
    raise SystemExit('experiments.reference_code runs without the perceptual loss '
                     '(no VGG16 weights offline): set lam_perc=0')
  torch, model_lib, networks = _import_reference(
      args.reference_dir, cfg, args.reference_sizes)
  torch.manual_seed(cfg.seed)
  keys = ('image_size', 'min_depth', 'max_depth', 'border_depth',
          'xyz_rotation_range', 'xy_translation_range', 'z_translation_range',
          'use_conf_map', 'lam_perc', 'lam_flip', 'lam_flip_start_epoch',
          'lam_depth_sm', 'lr', 'fov', 'rot_center_depth')
  model = model_lib.Unsup3D({k: getattr(cfg, k) for k in keys
                             if getattr(cfg, k) is not None})
  if not args.reference_sizes:
    torch.manual_seed(cfg.seed)
    model.netD = networks.EDDeconv(3, 1, nf=cfg.nf_depth,
                                   zdim=cfg.zdim_depth, activation=None)
    model.netA = networks.EDDeconv(3, 3, nf=cfg.nf_depth, zdim=cfg.zdim_depth)
    model.netL = networks.Encoder(3, 4, nf=cfg.nf_encoder)
    model.netV = networks.Encoder(3, 6, nf=cfg.nf_encoder)
    if cfg.use_conf_map:
      model.netC = networks.ConfNet(3, 2, nf=cfg.nf_conf, zdim=cfg.zdim_conf)
  model.trainer = types.SimpleNamespace(current_epoch=0)
  model.init_optimizers()
  model.set_train()
  return torch, model


def run(args) -> Dict[str, object]:
  cfg_args = list(args.set)
  base = trainers.base_config(args)
  data_dir = data_variants.variant_data(args, 'default', base)
  cfg = config_lib.load(trainers.config_files(args), cfg_args + [
      f'train_val_data_dir={data_dir}', 'load_gt_depth=false',
      f'test_data_dir={os.path.join(data_dir, "test")}']).resolved()
  torch, model = build_reference_model(args, cfg)
  scorer = learning.Scorer(cfg, os.path.join(data_dir, 'test',
                                             'factors.npz'))
  K = render.intrinsics(cfg.image_size, cfg.fov)

  def forward(image):
    model.forward(torch.from_numpy(np.asarray(image)).permute(0, 3, 1, 2))
    return model

  def evaluate():
    model.set_eval()
    outs = []
    with torch.no_grad():
      for image, _ in scorer.batches:
        b = int(image.shape[0])
        m = forward(image)
        outs.append([m.recon_depth[:b].numpy(), m.canon_depth[:b].numpy(),
                     m.view[:b, 1].numpy(), m.canon_light_d[:b].numpy()])
    model.set_train()
    firsts = dict(zip(np.cumsum([0] + [len(o[0]) for o in outs]), outs))
    current = [tf.Variable(x, shape=tf.TensorShape(None)) for x in outs[0]]

    def before_batch(first, unused_count):  # the torch outputs -> predict
      for var, x in zip(current, firsts[first]):
        var.assign(x)

    def predict(unused_image):
      depth, _, yaw, light_d = (v.read_value() for v in current)
      valid = depth_lib.valid_mask(depth, cfg.min_depth, cfg.max_depth)
      return depth, valid, yaw, light_d
    scores = scorer.score(predict, lambda p: depth_lib.depth_from_png(
        p, cfg.min_depth, cfg.max_depth), K, before_batch)
    canon = np.concatenate([o[1] for o in outs])
    scores['relief_spread'] = data_variants.relief_spread(
        canon[:data_variants.DEPTH_SAMPLE])
    return scores

  def train_step(batch, epoch):
    model.trainer.current_epoch = epoch
    forward(batch['image'])
    model.backward()
    return {'loss_total': float(model.loss_total)}

  out = trainers._loop(cfg, args.steps, args.eval_every,  # pylint: disable=protected-access
                       lambda m: print(f'reference{m}', flush=True),
                       evaluate, train_step)
  model.set_eval()
  image = scorer.batches[0][0][:STRIP_IMAGES]
  with torch.no_grad():
    canon = forward(image).canon_depth[:len(image)].numpy()
  os.makedirs(args.out_dir, exist_ok=True)
  tf.io.write_file(os.path.join(args.out_dir, f'{args.name}_depth.png'),
                   tf.io.encode_png(depth_strip(
                       np.asarray(image), canon,
                       scorer.factors['canon_depth'][:len(image)])))
  return {'settings': {'config': args.config,
                       **trainers.overlay_settings(args),
                       'overrides': args.set,
                       'steps': args.steps, 'eval_every': args.eval_every,
                       'batch_size': cfg.batch_size, 'seed': cfg.seed,
                       'zoom': args.zoom,
                       'reference_sizes': args.reference_sizes,
                       'torch': torch.__version__},
          'data_relief_spread': data_variants.relief_spread(
              scorer.factors['canon_depth'][:data_variants.DEPTH_SAMPLE]),
          'curve': [{'step': p['step'], 'test': p['test']}
                    for p in out['curve']],
          'final': out['final'], 'train_s_per_step': out['train_s_per_step'],
          'depth_png': f'{args.name}_depth.png'}


def depth_strip(images: np.ndarray, depth: np.ndarray,
                gt_depth: np.ndarray) -> np.ndarray:
  """Rows of a picture, uint8 `[3S, nS, 3]`: the images `[n,S,S,3]` in
  [0, 1], the model's canonical depth and the generator's `[n,S,S]`, each
  map stretched over its own range, near bright (a hollow face shows dark
  where the generator's is bright)."""
  def shade(d):
    lo = d.min(axis=(1, 2), keepdims=True)
    span = np.maximum(d.max(axis=(1, 2), keepdims=True) - lo, 1e-8)
    return np.repeat((1.0 - (d - lo) / span)[..., None], 3, axis=-1)
  rows = [np.concatenate(list(x), axis=1)
          for x in (images, shade(depth), shade(gt_depth))]
  return np.round(np.clip(np.concatenate(rows), 0, 1) * 255).astype(np.uint8)


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  sizes = "the authors'" if s['reference_sizes'] else "the config's"
  lines = [
      "# The authors' code on the synthetic data", '',
      f"The authors' Unsup3D (PyTorch {s['torch']}, CPU), config "
      f"{trainers.config_text(s)} {s['overrides']}, "
      f"{sizes} network sizes, seed {s['seed']}, synthetic data zoom "
      f"{s.get('zoom', 1.0)}, {s['steps']} steps of batch "
      f"{s['batch_size']}; diagnostics as `experiments/results/data_variants.md` "
      f"(data relief spread {result['data_relief_spread']:.3f}). A negative "
      'light tilt slope with a MAD near or above 90° marks the hollow '
      '(depth-reversed) twin of a convex answer: a bowl where the face '
      'bulges.', '',
      '| step | SIDE (×1e-2) | MAD (°) | relief spread | best relief scale '
      '| light tilt slope | yaw std (GT) | yaw corr GT / x-translation |',
      '|---|---|---|---|---|---|---|---|']
  for p in result['curve']:
    t = p['test']
    lines.append(
        f'| {p["step"]} | {t["side_mean"]:.3f} | {t["mad_mean"]:.1f} | '
        f'{t["relief_spread"]:.3f} | {t["diag_best_relief_scale"]:g} | '
        f'{t["diag_light_tilt_slope"]:.2f} | {t["diag_yaw_std_deg"]:.1f}° '
        f'({t["diag_gt_yaw_std_deg"]:.1f}°) | {t["diag_yaw_corr"]:.2f} / '
        f'{t["diag_yaw_tx_corr"]:.2f} |')
  if result.get('depth_png'):
    lines += ['', 'The first test images, the canonical depth after the last '
              "step and the generator's (near bright):", '',
              f'![canonical depth]({result["depth_png"]})']
  return '\n'.join(lines) + '\n'


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  data_variants.add_data_variant_arguments(p, 'reference_code')
  p.add_argument('--reference_dir', required=True,
                 help='a checkout of github elliottwu/unsup3d')
  p.add_argument('--reference_sizes', action='store_true',
                 help="the authors' network sizes, not the config's")
  args = p.parse_args(argv)
  trainers.check_run_arguments(p, args)
  return args


def main(argv=None) -> Dict[str, object]:
  args = parse_args(argv)
  result = run(args)
  common.write_results(args.out_dir, args.name, result, markdown(result))
  print(markdown(result))
  return result


if __name__ == '__main__':
  main()
