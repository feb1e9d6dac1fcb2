"""Testing: per-image decompositions and the reference's eval_scores.txt.

Files follow the reference's `save_results` (utils.save_images/save_txt with
sep_folder=True): `<test_result_dir>/<suffix>/<index>_<suffix>.png`, index
`%05d` from 1 in test-set (sorted) order, so that re-running overwrites
instead of appending as the reference's glob-count offset would. Depth maps
(`canonical_depth`, `recon_depth`, `depth_gt`) are 16-bit PNGs of (d -
min_depth) / (max_depth - min_depth); other images 8-bit (truncated x255,
as the reference). `canonical_light` (a, b, dx, dy, dz) and `viewpoint`
(rx, ry, rz in radians, tx, ty, tz) are text files with one value per line
(`%.6f`). `image_names.txt` maps indices to the data set's names. The
reference's mp4 videos are not written, and `input_image_symline` holds the
B input-view images of a batch (the reference also writes the B flipped
ones, numbered after them). With ground truth, `eval_scores.txt`
has one row per image `MAE_masked, MSE_masked, SIE_masked, NorErr_masked`
(`%.8f`, delimiter ',\t') under a header with their Mean and Std (unbiased,
as torch).
"""

import os
from typing import Dict, Optional, Tuple

from absl import logging
import numpy as np
from PIL import Image
import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import metrics
from tfunsup3d import progress
from tfunsup3d import render
from tfunsup3d import saving
from tfunsup3d.data import image_files
from tfunsup3d.data import images as images_lib
from tfunsup3d.factors import confidence
from tfunsup3d.model import Unsup3D

IMAGE_SUFFIXES = (
    'input_image', 'input_image_symline', 'canonical_albedo',
    'canonical_image', 'recon_image', 'recon_image_flip', 'canonical_depth',
    'recon_depth', 'canonical_diffuse_shading', 'canonical_normal',
    'recon_normal')
CONF_SUFFIXES = ('conf_map_l1', 'conf_map_l1_flip', 'conf_map_percl',
                 'conf_map_percl_flip')
GT_SUFFIXES = ('depth_gt', 'normal_gt')
TEXT_SUFFIXES = ('canonical_light', 'viewpoint')
SCORES_FILE = 'eval_scores.txt'
SCORE_NAMES = ('MAE_masked', 'MSE_masked', 'SIE_masked', 'NorErr_masked')


def load_model(cfg: config_lib.Config,
               overrides: Optional[Dict[str, object]] = None
               ) -> Tuple[Unsup3D, str]:
  """The model to test and the checkpoint it came from.

  `saving.load` of the checkpoint `cfg` names (`saving.path_from_config`):
  the test config under the checkpoint's own config (for a reference `.pth`
  it gives every key but the network sizes), its run keys
  (`saving.RUN_KEYS`) and `overrides` (e.g. the flags set explicitly) over
  it. No perceptual loss at test time (no VGG16 needed).
  """
  path = saving.path_from_config(cfg)
  values = {k: getattr(cfg, k) for k in saving.RUN_KEYS}
  values.update(overrides or {})
  values['lam_perc'] = 0.0
  logging.info('Loading checkpoint %s', path)
  return saving.load(path, cfg, **values), path


def _to_uint8(x):
  return np.uint8(np.clip(x, 0.0, 1.0) * 255.0)


def _save_png(path, image, sixteen_bit: bool):
  if sixteen_bit:
    Image.fromarray(np.uint16(np.clip(image[..., 0], 0.0, 1.0) * 65535.0)
                    ).save(path)  # mode I;16
  elif image.shape[-1] == 1:
    Image.fromarray(_to_uint8(image[..., 0])).save(path)  # mode L
  else:
    Image.fromarray(_to_uint8(image)).save(path)  # mode RGB


class Tester:
  """Runs a model over the test split and writes the results.

  Args:
    model: the `Unsup3D`.
    cfg: the test `Config` (test_data_dir, batch_size, load_gt_depth, ...).
    result_dir: where to write.
    write_images: write the per-image files (else only scores).
  """

  def __init__(self, model: Unsup3D, cfg: config_lib.Config, result_dir: str,
               write_images: bool = True):
    self.model, self.cfg = model, cfg
    self.result_dir, self.write_images = result_dir, write_images
    self._fn = tf.function(self._outputs, autograph=False,
                           jit_compile=config_lib.jit_compile(cfg))

  def _outputs(self, images, depth_p=None) -> Dict[str, tf.Tensor]:
    model = self.model
    out = model.decompose(images)
    b = tf.shape(images)[0]
    mc = model.cfg
    unit = lambda x: tf.clip_by_value(x, -1.0, 1.0) / 2.0 + 0.5
    depth01 = lambda d: tf.clip_by_value(
        (d - mc.min_depth) / (mc.max_depth - mc.min_depth), 0.0, 1.0)[..., None]
    res = {
        'input_image': out['input_im'] / 2.0 + 0.5,
        'input_image_symline': render.symmetry_line(
            out['input_im'], out['recon_depth'][:b], out['view'][:b],
            out['recon_im_mask_both'][:b], model.K, mc.rot_center_depth
        ) / 2.0 + 0.5,
        'canonical_albedo': out['canon_albedo'][:b] / 2.0 + 0.5,
        'canonical_image': unit(out['canon_im'][:b]),
        'recon_image': unit(out['recon_im'][:b]),
        'recon_image_flip': unit(out['recon_im'][b:]),
        'canonical_depth': depth01(out['canon_depth'][:b]),
        'recon_depth': depth01(out['recon_depth'][:b]),
        'canonical_diffuse_shading': out['canon_diffuse_shading'][:b],
        'canonical_normal': out['canon_normal'][:b] / 2.0 + 0.5,
        'recon_normal': out['recon_normal'][:b] / 2.0 + 0.5,
        'canonical_light': tf.concat([out['canon_light_a'],
                                      out['canon_light_b'],
                                      out['canon_light_d']], 1)[:b],
        'viewpoint': out['view'][:b],
    }
    if out['conf_sigma_l1'] is not None:
      for suffix in CONF_SUFFIXES:
        sigma = out['conf_sigma' + suffix[len('conf_map'):]]
        res[suffix] = confidence.confidence_map(sigma)
    if depth_p is not None:
      depth_gt = model.depth_from_png(depth_p)
      m = model.compute_metrics(out, depth_gt)
      res['depth_gt'] = depth01(depth_gt)
      res['normal_gt'] = m['normal_gt'] / 2.0 + 0.5
      res['scores'] = tf.stack([m['mae'], m['mse'], m['side'], m['mad']], 1)
    return res

  def _write(self, res: Dict[str, np.ndarray], start: int):
    for suffix, values in res.items():
      if suffix == 'scores':
        continue
      folder = os.path.join(self.result_dir, suffix)
      os.makedirs(folder, exist_ok=True)
      for i, value in enumerate(values):
        stem = os.path.join(folder, f'{start + i + 1:05d}_{suffix}')
        if suffix in TEXT_SUFFIXES:
          np.savetxt(stem + '.txt', value, fmt='%.6f', delimiter=', ')
        else:
          _save_png(stem + '.png', value, 'depth' in suffix)

  def run(self) -> Optional[np.ndarray]:
    """Tests every image; returns the `[N, 4]` scores (None without GT)."""
    cfg = self.cfg
    ds = images_lib.build_dataset(cfg, 'test', training=False)
    os.makedirs(self.result_dir, exist_ok=True)
    scores, names, start = [], [], 0
    for batch in progress.track(ds, 'test', 'batch', int(ds.cardinality())):
      depth_p = batch.get('depth_gt') if cfg.load_gt_depth else None
      res = {k: v.numpy() for k, v in self._fn(batch['image'],
                                                depth_p).items()}
      if 'scores' in res:
        scores.append(res['scores'])
      if self.write_images:
        self._write(res, start)
      batch_names = [n.decode('utf-8') for n in batch['name'].numpy()]
      names += batch_names
      start += len(batch_names)
    with open(os.path.join(self.result_dir, 'image_names.txt'), 'w',
              encoding='utf-8') as f:
      f.writelines(f'{i + 1:05d} {n}\n' for i, n in enumerate(names))
    if not scores:
      return None
    all_scores = np.concatenate(scores, 0).astype(np.float64)
    bad = [n for n, ok in zip(names, np.all(np.isfinite(all_scores), 1))
           if not ok]
    if bad:
      logging.warning(
          '%d of %d images have no pixel valid in both the prediction and '
          'the ground truth (NaN scores, left out of the mean): %s%s',
          len(bad), len(names), ', '.join(bad[:10]),
          ' ...' if len(bad) > 10 else '')
    save_scores(os.path.join(self.result_dir, SCORES_FILE), all_scores)
    return all_scores


def save_scores(path: str, scores: np.ndarray):
  """Writes the reference's eval_scores.txt (a comment line more when
  images with NaN scores are left out of Mean and Std)."""
  mean, std, left_out = metrics.mean_std(scores)
  header = ', '.join(SCORE_NAMES)
  header += '\nMean: ' + ',\t'.join('%.8f' % x for x in mean)
  header += '\nStd: ' + ',\t'.join('%.8f' % x for x in std)
  if left_out:
    header += (f'\nLeft out of Mean and Std: {left_out} of '
               f'{scores.shape[0]} images (NaN scores: no valid pixel)')
  np.savetxt(path, scores, fmt='%.8f', delimiter=',\t', header=header)
  logging.info('Saved scores to %s', path)


def summary_line(scores: np.ndarray) -> str:
  """'SIDE (x1e-2): m ± s, MAD (deg): m ± s' (SIDE reported x100), with
  the count of images left out when some have NaN scores."""
  mean, std, left_out = metrics.mean_std(scores)
  line = (f'SIDE (x1e-2): {mean[2] * 100:.3f} ± {std[2] * 100:.3f}, '
          f'MAD (deg): {mean[3]:.2f} ± {std[3]:.2f}')
  if left_out:
    line += (f' (over {scores.shape[0] - left_out} of {scores.shape[0]} '
             f'images; {left_out} without a valid pixel left out)')
  return line


def test(cfg: config_lib.Config, write_images: bool = True,
         overrides: Optional[Dict[str, object]] = None) -> Dict[str, object]:
  """Loads the checkpoint (`load_model(cfg, overrides)`) and tests it on the
  test split.

  Returns:
    dict: 'checkpoint', 'result_dir', 'scores' (`[N, 4]` or None),
    'summary' (the one-line summary or None), 'note' (without scores: why
    depth maps in the test folder were not scored, or None).
  """
  model, path = load_model(cfg, overrides)
  result_dir = cfg.test_result_dir or os.path.join(cfg.checkpoint_dir,
                                                   'test_results')
  test_cfg = model.cfg  # The checkpoint's model keys, the test's run keys.
  try:
    images_lib.list_split(test_cfg, 'test')  # Clear error before any work.
  except FileNotFoundError as e:
    hint = _trained_test_dir_hint(path, test_cfg)
    if hint is None:
      raise
    raise FileNotFoundError(f'{str(e).rstrip(".")}. {hint}') from None
  logging.info('Saving testing results to %s', result_dir)
  scores = Tester(model, test_cfg, result_dir, write_images).run()
  return {'checkpoint': path, 'result_dir': result_dir, 'scores': scores,
          'summary': summary_line(scores) if scores is not None else None,
          'note': None if scores is not None else unused_depth_note(test_cfg)}


def _trained_test_dir_hint(checkpoint: str, cfg: config_lib.Config
                           ) -> Optional[str]:
  """Where the checkpoint's own config (its run folder's config.yml) put
  the test split, when that folder exists and differs from `cfg`'s: the test
  reads its data keys from its own config and flags, never the checkpoint's
  (`saving.RUN_KEYS`)."""
  try:
    own = config_lib.load(saving.config_path(checkpoint))
  except (OSError, ValueError):  # None there, or not readable.
    return None
  test_dir = image_files.split_dir(own, 'test')
  if (not os.path.isdir(test_dir) or
      os.path.abspath(test_dir) == os.path.abspath(
          image_files.split_dir(cfg, 'test'))):
    return None
  depth = (' --load_gt_depth=true' if own.load_gt_depth and
           not cfg.load_gt_depth else '')
  return (f'The checkpoint was trained with its test split in {test_dir}: '
          f'pass --test_data_dir={test_dir}{depth}.')


def unused_depth_note(cfg: config_lib.Config) -> Optional[str]:
  """Why no depth was scored, when the test folder has depth maps that
  `load_gt_depth: false` left unread; else None."""
  names = list(cfg.paired_data_dir_names or [])
  if cfg.load_gt_depth or len(names) != 2:
    return None
  root = image_files.split_dir(cfg, 'test')
  if not (os.path.isdir(os.path.join(root, names[0])) and
          os.path.isdir(os.path.join(root, names[1]))):
    return None
  return (f'No depth scores: {root}/{names[1]} holds depth maps, but '
          'load_gt_depth is false (add --load_gt_depth=true to score them).')
