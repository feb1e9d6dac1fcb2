"""TensorBoard summaries of training, with the reference's tag names.

Scalars (`write_scalars`): `Loss/<loss name>` and, with ground-truth depth,
`Acc_masked/{SIE,NorErr,MAE,MSE}_masked`. Visualisations (`Visualizer`),
every `log_freq` steps on a fixed batch, as the reference's `visualize`:
histograms of the canonical depth, view, light and confidence, and image
grids of the input (with its symmetry line), albedo, canonical image,
reconstructions, depths, normals, shading, confidence maps 1/(1+sigma), a
yaw-rotation strip (rows: samples, columns: yaw angles) and, with ground
truth, its depth, normals and error maps.

Events are written with core `tf.summary.write` and the TensorBoard plugin
metadata of scalars, images and histograms, so that the `tensorboard` package
is needed to view them but not to train.
"""

import functools
import io
import math
from typing import Dict, Optional
import weakref

import numpy as np
from PIL import Image
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from tfunsup3d import config as config_lib
from tfunsup3d import render
from tfunsup3d.factors import confidence

# Step scalar name -> TensorBoard tag (losses are 'Loss/<name>').
METRIC_TAGS = {'SIDE': 'Acc_masked/SIE_masked',
               'MAD': 'Acc_masked/NorErr_masked',
               'MAE': 'Acc_masked/MAE_masked',
               'MSE': 'Acc_masked/MSE_masked'}
_VIEW_NAMES = ('view_rx', 'view_ry', 'view_rz', 'view_tx', 'view_ty',
               'view_tz')
_LIGHT_D_NAMES = ('canon_light_dx', 'canon_light_dy', 'canon_light_dz')
_MAX_YAW_ROWS = 8


def _metadata(plugin: str, data_class: int) -> summary_pb2.SummaryMetadata:
  return summary_pb2.SummaryMetadata(
      plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
      data_class=data_class)


_SCALAR = _metadata('scalars', summary_pb2.DATA_CLASS_SCALAR)
_IMAGE = _metadata('images', summary_pb2.DATA_CLASS_BLOB_SEQUENCE)
_HISTOGRAM = _metadata('histograms', summary_pb2.DATA_CLASS_TENSOR)


def image(name: str, images: np.ndarray, step: Optional[int] = None):
  """Writes images `[N, H, W, C]` (C 1 or 3, values in [0, 1]) as PNGs."""
  images = np.asarray(images, np.float32)
  blobs = []
  for im in images:
    im = np.uint8(np.round(np.clip(im, 0.0, 1.0) * 255.0))
    buf = io.BytesIO()
    Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im).save(buf, 'PNG')
    blobs.append(buf.getvalue())
  h, w = images.shape[1:3]
  tf.summary.write(name, tf.constant([str(w), str(h)] + blobs, tf.string),
                   step=step, metadata=_IMAGE)


def histogram(name: str, values, step: Optional[int] = None,
              buckets: int = 30):
  """Writes a histogram: a `[buckets, 3]` (left, right, count) tensor."""
  values = np.asarray(values, np.float64).ravel()
  values = values[np.isfinite(values)]
  if values.size == 0:
    data = np.zeros((0, 3))
  else:
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
      hi = lo + 1e-6
    counts, edges = np.histogram(values, bins=buckets, range=(lo, hi))
    data = np.stack([edges[:-1], edges[1:], counts], axis=1)
  tf.summary.write(name, tf.constant(data, tf.float64), step=step,
                   metadata=_HISTOGRAM)


def tag(name: str) -> str:
  """The TensorBoard tag of a step scalar."""
  return METRIC_TAGS.get(name, f'Loss/{name}' if name.startswith('loss')
                         else name)


def write_scalars(writer, scalars: Dict[str, float], step: int,
                  prefix: str = ''):
  """Writes `{name: value}` as scalars under their reference tags.

  One call of a compiled function per `writer` and set of names (2.7 ms a
  training step for its dozen scalars when each was written eagerly).
  """
  if writer is None or not scalars:
    return
  fn = _SCALAR_WRITERS.get(writer)
  if fn is None:
    fn = _SCALAR_WRITERS[writer] = tf.function(
        functools.partial(_write_scalar_vector, weakref.ref(writer)),
        autograph=False)
  fn(tuple(prefix + tag(name) for name in scalars),
     tf.constant([float(v) for v in scalars.values()], tf.float32),
     tf.constant(step, tf.int64))


# writer -> its compiled `_write_scalar_vector`: the writer is captured when
# the function is traced, so each writer needs its own. The function holds
# only a weak reference, so that the entry goes with the writer.
_SCALAR_WRITERS = weakref.WeakKeyDictionary()


def _write_scalar_vector(writer_ref, tags, values, step):
  with writer_ref().as_default(step=step):
    for i, name in enumerate(tags):
      tf.summary.write(name, values[i], metadata=_SCALAR)


def make_grid(images: np.ndarray, nrow: Optional[int] = None,
              padding: int = 2) -> np.ndarray:
  """Tiles images like torchvision's make_grid.

  Args:
    images: an array of shape `[B, H, W, C]`.
    nrow: images per row (default ceil(sqrt(B))).
    padding: pixels of 0 between and around the images.

  Returns:
    An array of shape `[1, H', W', C]`.
  """
  b, h, w, c = images.shape
  nrow = nrow or int(math.ceil(b ** 0.5))
  ncol = int(math.ceil(b / nrow))
  grid = np.zeros((ncol * (h + padding) + padding,
                   nrow * (w + padding) + padding, c), np.float32)
  for i in range(b):
    y = (i // nrow) * (h + padding) + padding
    x = (i % nrow) * (w + padding) + padding
    grid[y:y + h, x:x + w] = images[i]
  return grid[np.newaxis]


def _write_histograms(o: Dict[str, np.ndarray]):
  """The histograms of depth, view, light, albedo and shading of `o`, the
  model's outputs as arrays."""
  histogram('Depth/canon_depth_raw_hist', o['canon_depth_raw'])
  for i, name in enumerate(_VIEW_NAMES):
    histogram('View/' + name, o['view'][:, i])
  histogram('Light/canon_light_a', o['canon_light_a'])
  histogram('Light/canon_light_b', o['canon_light_b'])
  for i, name in enumerate(_LIGHT_D_NAMES):
    histogram('Light/' + name, o['canon_light_d'][:, i])
  histogram('Image/canonical_albedo_hist', o['canon_albedo'])
  histogram('Image/canonical_diffuse_shading_hist',
            o['canon_diffuse_shading'])


class Visualizer:
  """Writes the reference's visualisation of one batch.

  Args:
    model: the `Unsup3D`.
    max_bs: int, at most this many samples shown. Defaults to 25 (the
      yaw strips show the first 8).
    yaw_samples: int, yaw angles in [-90, 90] degrees. Defaults to 9.
    yaw_anti_aliasing: bool, render the yaw strips with 2x2 samples per
      pixel. Defaults to False: at grazing angles the canonical mesh's
      triangles have long, mostly empty bounding boxes, and the supersampled
      z-buffer made the strips the most expensive part of training's
      visualisation (8 rows x 9 angles at 64 pixels on 2 CPU cores: 2.7 s
      against 0.35 s once per pixel, about 9 training steps of the
      quickstart). Every other picture keeps `cfg.anti_aliasing`.
  """

  def __init__(self, model, max_bs: int = 25, yaw_samples: int = 9,
               yaw_anti_aliasing: bool = False):
    self.model = model
    self.max_bs = max_bs
    self.yaw_samples = yaw_samples
    self.yaw_anti_aliasing = yaw_anti_aliasing
    self._fn = tf.function(self._outputs, autograph=False,
                           jit_compile=config_lib.jit_compile(model.cfg))

  def _outputs(self, images, depth_p=None):
    model, cfg = self.model, self.model.cfg
    out = model.decompose(images)
    b = tf.shape(images)[0]
    v0 = tf.tile(tf.constant([[-0.1 * math.pi / 180 * 60, 0, 0, 0, 0, 0]]),
                 [b, 1])
    result = {k: v for k, v in out.items()
              if v is not None and not k.startswith('loss_')}
    result['input_im_symline'] = render.symmetry_line(
        out['input_im'], out['recon_depth'][:b], out['view'][:b],
        out['recon_im_mask_both'][:b], model.K, cfg.rot_center_depth)
    # One render of image and normals together, for the rows shown.
    rows = min(images.shape[0] or _MAX_YAW_ROWS, _MAX_YAW_ROWS)
    both = tf.concat([out['canon_im'][:rows], out['canon_normal'][:rows]], -1)
    rotated = render.render_yaw(
        both, out['canon_depth'][:rows], model.K, cfg.rot_center_depth,
        v_before=v0[:rows], max_rotation=90.0, num_samples=self.yaw_samples,
        anti_aliasing=self.yaw_anti_aliasing)
    result['canon_im_rotate'] = rotated[..., :3]
    result['canon_normal_rotate'] = rotated[..., 3:]
    if depth_p is not None:
      depth_gt = model.depth_from_png(depth_p)
      m = model.compute_metrics(out, depth_gt)
      result.update(depth_gt=depth_gt, normal_gt=m['normal_gt'],
                    sie_map=m['sie_map'], normal_err_map=m['normal_err_map'])
    return result

  def write(self, writer, step: int, batch: Dict[str, tf.Tensor]):
    """Runs the model on `batch` and writes the summaries at `step`."""
    if writer is None:
      return
    images = batch['image'][:self.max_bs]
    depth_p = batch.get('depth_gt')
    depth_p = None if depth_p is None else depth_p[:self.max_bs]
    o = {k: v.numpy() for k, v in self._fn(images, depth_p).items()}
    b = images.shape[0]
    cfg = self.model.cfg

    def unit(x):  # [-1, 1] -> [0, 1]
      return np.clip(x / 2.0 + 0.5, 0.0, 1.0)

    def depth01(d):
      return np.clip((d - cfg.min_depth) / (cfg.max_depth - cfg.min_depth),
                     0.0, 1.0)[..., np.newaxis]

    with writer.as_default(step=step):
      _write_histograms(o)

      def grid(label, x):
        image(label, make_grid(np.clip(x, 0.0, 1.0)))

      grid('Image/input_image_symline', unit(o['input_im_symline']))
      grid('Image/canonical_albedo', unit(o['canon_albedo'][:b]))
      grid('Image/canonical_image', unit(o['canon_im'][:b]))
      grid('Image/recon_image', unit(o['recon_im'][:b]))
      grid('Image/recon_image_flip', unit(o['recon_im'][b:2 * b]))
      grid('Image/recon_side', unit(o['canon_im_rotate'][:, 0]))  # 8 rows
      grid('Depth/canonical_depth_raw',
           unit(o['canon_depth_raw'][..., np.newaxis]))
      grid('Depth/canonical_depth', depth01(o['canon_depth'][:b]))
      grid('Depth/recon_depth', depth01(o['recon_depth'][:b]))
      grid('Depth/canonical_diffuse_shading', o['canon_diffuse_shading'][:b])
      grid('Depth/canonical_normal', unit(o['canon_normal'][:b]))
      grid('Depth/recon_normal', unit(o['recon_normal'][:b]))
      if 'conf_sigma_l1' in o:
        for name in ('l1', 'l1_flip', 'percl', 'percl_flip'):
          sigma = o[f'conf_sigma_{name}']
          grid(f'Conf/conf_map_{name}',
               np.asarray(confidence.confidence_map(sigma)))
          histogram(f'Conf/conf_sigma_{name}_hist', sigma)
      for key, label in (('canon_im_rotate', 'recon_rotate'),
                         ('canon_normal_rotate', 'canon_normal_rotate')):
        frames = unit(o[key][:_MAX_YAW_ROWS])  # [b, T, H, W, C]
        rows, t, h, w, c = frames.shape
        strip = frames.transpose(0, 2, 1, 3, 4).reshape(rows * h, t * w, c)
        image('Image_rotate/' + label, strip[np.newaxis])
      if 'depth_gt' in o:
        grid('Depth_gt/depth_gt', depth01(o['depth_gt']))
        grid('Depth_gt/normal_gt', unit(o['normal_gt']))
        grid('Depth_gt/sie_map_masked', o['sie_map'][..., np.newaxis] * 1000)
        grid('Depth_gt/norm_err_map_masked',
             o['normal_err_map'][..., np.newaxis] / 100)
    writer.flush()
