"""The Unsup3D training task: model, optimisers, train and eval steps.

Model-Garden style: the task owns what is specific to Unsup3D (the model,
one `TorchAdam` per network, the losses and depth metrics of one step); the
loop in `loop.py` is generic and only sees dicts of scalars.

Distribution: a step is the plain one, `strategy.run(replica_step)` under an
outer `tf.function`, then a SUM over the replicas. A replica's losses and
metrics are its parts of the global batch's means (`Unsup3D.compute_losses`
divides each replica's sums by the counts summed over all replicas, see
`losses.global_means`), so their SUM, and the SUM of gradients the Keras
optimisers all-reduce, equal the one-device values. With the default
strategy (one replica) every part is the plain mean. Pass `strategy=` (see
`distribute.make_strategy`) and feed `task.distribute_dataset(ds)` batches.
"""

from typing import Dict, Optional

import tensorflow as tf

from tfunsup3d import config as config_lib
from tfunsup3d import losses as losses_lib
from tfunsup3d.model import Unsup3D
from tfunsup3d.networks import precision
from tfunsup3d.train import curriculum
from tfunsup3d.train import distribute as distribute_lib
from tfunsup3d.train import optimizers as optimizers_lib

# Keys of the per-image depth metrics (model.compute_metrics) -> our names.
METRIC_KEYS = {'side': 'SIDE', 'mad': 'MAD', 'mae': 'MAE', 'mse': 'MSE'}
_STEP_INPUTS = ('image', 'depth_gt')


class Unsup3DTask:
  """Model + optimisers + the train/eval steps of Unsup3D.

  Args:
    cfg: `Config`.
    model: optional `Unsup3D` to use (e.g. from `Unsup3D.from_checkpoint`);
      built from `cfg` (with the global Keras seed) when None.
    strategy: optional `tf.distribute.Strategy`. Defaults to the current one
      (`tf.distribute.get_strategy()`).

  With `lam_perc > 0` the VGG16 weights are loaded here (`vgg16_weights`),
  so a missing file fails before any training.

  Example:
  ```python
  task = Unsup3DTask(cfg)
  for batch in dataset:                   # dicts of images_lib.build_dataset
    scalars = task.train_step(batch, epoch)  # {'loss_total': tf scalar, ...}
  ```
  """

  def __init__(self, cfg: config_lib.Config, model: Optional[Unsup3D] = None,
               strategy: Optional[tf.distribute.Strategy] = None):
    self.cfg = cfg.resolved()
    self.strategy = strategy or tf.distribute.get_strategy()
    with self.strategy.scope():
      self.model = model if model is not None else Unsup3D(self.cfg)
      if self.model.cfg.lam_perc > 0 and self.model.vgg is None:
        self.model.load_perceptual()
      self.optimizers = optimizers_lib.build_optimizers(self.model.networks,
                                                        self.cfg)
    jit = config_lib.jit_compile(self.cfg)
    if self.strategy.num_replicas_in_sync == 1:
      # The whole step, optimiser updates included, in one XLA cluster.
      self._decompose = self.model.decompose
      self._replica_train = tf.function(self._train_replica, jit_compile=jit,
                                        autograph=False)
      self._replica_eval = tf.function(self._eval_replica, jit_compile=jit,
                                       autograph=False)
    else:
      # The losses' all-reduces cannot live in an XLA cluster: with XLA on,
      # only the forward pass (and its gradient) is compiled.
      self._decompose = (tf.function(self.model.decompose, jit_compile=True,
                                     autograph=False)
                         if jit else self.model.decompose)
      self._replica_train = self._train_replica
      self._replica_eval = self._eval_replica
    self._train_fn = tf.function(self._distributed_train, autograph=False)
    self._eval_fn = tf.function(self._distributed_eval, autograph=False)

  # --- public steps ---------------------------------------------------------

  def train_step(self, batch: Dict[str, tf.Tensor],
                 epoch: int) -> Dict[str, tf.Tensor]:
    """One optimisation step of every network.

    Args:
      batch: dict with 'image' `[B, S, S, 3]` in [0, 1] and optionally
        'depth_gt' `[B, S, S, 1]` (depth PNG values); other keys ignored.
      epoch: the current epoch (lambda_flip schedule).

    Returns:
      dict of scalars: loss_total, loss_l1_im, loss_l1_im_flip, loss_perc_im,
      loss_perc_im_flip, loss_depth_sm (+ loss_depth_gt when supervised),
      and with 'depth_gt' the batch means SIDE, MAD, MAE, MSE (before the
      update, as the reference).
    """
    return self._train_fn(self._inputs(batch),
                          tf.constant(epoch, tf.float32))

  def eval_step(self, batch: Dict[str, tf.Tensor],
                epoch: int = 0) -> Dict[str, tf.Tensor]:
    """Losses (and metrics with 'depth_gt') without updating; see
    `train_step`."""
    return self._eval_fn(self._inputs(batch), tf.constant(epoch, tf.float32))

  def distribute_dataset(self, dataset: tf.data.Dataset):
    """The dataset to feed the steps under this task's strategy."""
    return distribute_lib.distribute_dataset(self.strategy, dataset,
                                             self.cfg.batch_size)

  @property
  def networks(self):
    return self.model.networks

  @property
  def step_functions(self):
    """The replica step tf.functions (for benchmarks: compile/trace)."""
    return {'train': self._replica_train, 'eval': self._replica_eval}

  # --- internals -------------------------------------------------------------

  @staticmethod
  def _inputs(batch) -> Dict[str, tf.Tensor]:
    if not isinstance(batch, dict):
      batch = {'image': batch}
    if 'image' not in batch:
      raise ValueError(f'batch must hold "image". Received keys: '
                       f'{sorted(batch)}')
    return {k: batch[k] for k in _STEP_INPUTS if batch.get(k) is not None}

  def _reduce(self, per_replica):
    """The SUM over the replicas of their parts: the global batch's values."""
    return {k: self.strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None)
            for k, v in per_replica.items()}

  def _distributed_train(self, inputs, epoch):
    return self._reduce(self.strategy.run(self._replica_train,
                                          args=(inputs, epoch)))

  def _distributed_eval(self, inputs, epoch):
    return self._reduce(self.strategy.run(self._replica_eval,
                                          args=(inputs, epoch)))

  def _curricula(self, inputs):
    """The training inputs centre-cropped (`crop_curriculum`, `crop_mix`),
    the relief fraction (`relief_curriculum`) at the current step
    (train/curriculum.py) and the camera to render them with (None: the
    configured one; `crop_camera`: the crops')."""
    cfg, step = self.cfg, self.optimizers['netD'].iterations
    relief, K = 1.0, None
    if cfg.relief_curriculum:
      relief = curriculum.ramp(step, *cfg.relief_curriculum)
    if cfg.crop_curriculum:
      fraction = curriculum.ramp(step, *cfg.crop_curriculum)
      inputs = {k: curriculum.centre_crop(v, fraction)
                for k, v in inputs.items()}
    if cfg.crop_mix:  # Every replica draws the same pattern for its share.
      seed = tf.stack([tf.constant(cfg.seed, tf.int32),
                       tf.cast(step, tf.int32)])
      inputs = curriculum.crop_some(inputs, *cfg.crop_mix, seed)
      if cfg.crop_camera:
        K = curriculum.crop_intrinsics(cfg.image_size, cfg.fov,
                                       cfg.crop_mix[0])
    return inputs, relief, K

  def _scalars(self, inputs, epoch, relief=1.0,
               K=None) -> Dict[str, tf.Tensor]:
    """This replica's parts of the losses and depth metrics (see
    `Unsup3D.compute_losses`); `K`: see `Unsup3D.reconstruct`."""
    model = self.model
    outputs = self._decompose(inputs['image'], training=True, relief=relief,
                              K=K)
    depth_gt = None
    if 'depth_gt' in inputs:
      depth_gt = model.depth_from_png(inputs['depth_gt'])
    result = model.compute_losses(outputs, epoch=epoch, depth_gt=depth_gt,
                                  step=self.optimizers['netD'].iterations)
    if depth_gt is not None:
      per_image = model.compute_metrics(outputs, depth_gt, K)
      images = tf.cast(tf.shape(depth_gt)[0], tf.float32)
      result.update(losses_lib.global_means(means={
          ours: (tf.reduce_mean(per_image[key]), images)
          for key, ours in METRIC_KEYS.items()}))
    return result

  def _trainables(self):
    """{name: (optimizer, variables)}: what a training step updates (one
    Adam per network)."""
    return {name: (self.optimizers[name], net.trainable_variables)
            for name, net in self.model.networks.items()}

  def _train_replica(self, inputs, epoch):
    """One replica's step: forward, backward, one Adam step per network."""
    trainables = self._trainables()
    variables = {name: vs for name, (_, vs) in trainables.items()}
    scale = precision.loss_scale(self.cfg.mixed_precision)  # float16: > 1
    with tf.GradientTape() as tape:
      inputs, relief, K = self._curricula(inputs)
      result = self._scalars(inputs, epoch, relief, K)
      loss = precision.scale_loss(result['loss_total'], scale)
    grads = {name: precision.unscale(g, scale)
             for name, g in tape.gradient(loss, variables).items()}
    for name, (optimizer, vs) in trainables.items():
      optimizers_lib.apply_gradients(optimizer, grads[name], vs)
    return result

  def _eval_replica(self, inputs, epoch):
    return self._scalars(inputs, epoch)
