"""tf.distribute for training: strategies, exact loss reduction, chief I/O.

`make_strategy(name)` builds the strategy of the config key `strategy`:
  default       `tf.distribute.get_strategy()` (one device, as before);
  mirrored      `MirroredStrategy` over all local GPUs, or over all logical
                CPU devices when there is no GPU;
  multi_worker  `MultiWorkerMirroredStrategy` over the hosts of `TF_CONFIG`
                (validated first: a missing or malformed TF_CONFIG is a
                `StrategyError` naming the problem);
  tpu           `TPUStrategy` (`TPU_NAME`, else the environment's TPU, else a
                TPU VM's local one); `StrategyError` when there is none.

Batch size: the config's `batch_size` is the GLOBAL batch; each of the N
replicas gets batch_size / N images (`per_replica_batch_size` raises if N
does not divide it).

Exact reduction (`ReplicaResults`). The reference's losses are masked means
over the batch, L = sum(e * m) / sum(m); with N replicas the global value is
sum_r N_r / sum_r D_r, which is NOT the mean of the replicas' L_r = N_r / D_r
unless their masks happen to have equal sums. Each replica therefore returns
its *share* L_r * D_r / D (D = the all-reduced SUM of the D_r): the shares
sum to the global L exactly, and so do their gradients (the Keras 3
optimisers SUM the replicas' gradients; verified in
tests/train/test_distribute.py). Denominators per term:
  loss_l1_im, loss_perc_im            sum of the mask of the originals
  loss_l1_im_flip, loss_perc_im_flip  sum of the mask of the flipped views
                                      (the perceptual mask is the same mask
                                      average-pooled by 4, whose sum is the
                                      mask's / 16, so the ratios are equal)
  loss_depth_sm, SIDE, MAD, MAE, MSE  the replica's number of images (plain
                                      means over images / pixels)
  loss_depth_gt                       the replica's valid-depth pixel count
`loss_total` is recomposed from the shares with the same lambdas as
`losses.total_loss`. With one replica none of this runs: the step is exactly
the single-device one. The all-reduce needs `merge_call`/collectives that an
XLA cluster cannot hold, so with several replicas (except on TPU, where the
whole replica step is XLA) only the forward pass is jit-compiled; the
all-reduces and the optimiser updates run outside XLA.

Multi-worker checkpoints follow the usual TF pattern: every worker saves
(saving may involve collectives), the chief into `checkpoint_dir`, the others
into a temporary directory that is deleted at once; only the chief writes
config.yml, metrics.json and TensorBoard logs. A checkpoint holds one copy of
each mirrored variable, so it restores under any replica count.
"""

import json
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Optional, Tuple

from absl import logging
import tensorflow as tf

from tfunsup3d import losses as losses_lib
from tfunsup3d.train import checkpoints as checkpoints_lib

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
_SUM = tf.distribute.ReduceOp.SUM

# Loss/metric key -> name of its denominator (see the module docstring).
_DENOMINATOR_OF = {
    'loss_l1_im': 'mask', 'loss_perc_im': 'mask',
    'loss_l1_im_flip': 'mask_flip', 'loss_perc_im_flip': 'mask_flip',
    'loss_depth_sm': 'images', 'SIDE': 'images', 'MAD': 'images',
    'MAE': 'images', 'MSE': 'images', 'loss_depth_gt': 'depth_valid',
}
_TOTAL = 'loss_total'


class StrategyError(ValueError):
  """The requested strategy cannot be built here (bad name, TF_CONFIG, no
  TPU, batch size not divisible by the replicas)."""


# --- strategies ---


def parse_tf_config(text: Optional[str] = None) -> Dict[str, Any]:
  """Parses and checks TF_CONFIG (`text`, default: the environment's).

  Returns:
    The parsed dict, with 'cluster' ({'worker': [...], optional 'chief'})
    and 'task' ({'type', 'index'}).

  Raises:
    StrategyError: missing, not JSON, or inconsistent.
  """
  example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", '
             '"host2:12345"]}, "task": {"type": "worker", "index": 0}}\'')
  if text is None:
    text = os.environ.get('TF_CONFIG')
  if not text or not text.strip():
    raise StrategyError('strategy=multi_worker needs the TF_CONFIG '
                        f'environment variable (cluster and task); {example}')
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise StrategyError(f'TF_CONFIG is not valid JSON ({e}); {example}') from e
  cluster = value.get('cluster') if isinstance(value, dict) else None
  task = value.get('task') if isinstance(value, dict) else None
  if not isinstance(cluster, dict) or not isinstance(task, dict):
    raise StrategyError('TF_CONFIG must hold "cluster" and "task" mappings. '
                        f'Received: {text!r}; {example}')
  for job, hosts in cluster.items():
    if job not in ('chief', 'worker', 'evaluator', 'ps') or not isinstance(
        hosts, list) or not hosts or not all(
            isinstance(h, str) and ':' in h for h in hosts):
      raise StrategyError(
          f'TF_CONFIG cluster job {job!r} must be "chief" or "worker" with a '
          f'non-empty list of "host:port". Received: {hosts!r}; {example}')
  if 'ps' in cluster:
    raise StrategyError('TF_CONFIG has "ps" jobs: parameter-server training '
                        'is not supported; use "chief"/"worker" only.')
  if not cluster.get('worker') and not cluster.get('chief'):
    raise StrategyError(f'TF_CONFIG cluster has no "worker". {example}')
  kind, index = task.get('type'), task.get('index')
  if kind not in cluster or not isinstance(index, int) or not (
      0 <= index < len(cluster[kind])):
    raise StrategyError(
        f'TF_CONFIG task {task!r} does not name a member of the cluster '
        f'{cluster!r}.')
  if kind == 'evaluator':
    raise StrategyError('TF_CONFIG task type "evaluator" is not supported.')
  return value


def _mirrored_devices():
  gpus = tf.config.list_logical_devices('GPU')
  if gpus:
    return [d.name for d in gpus]
  return [d.name for d in tf.config.list_logical_devices('CPU')]


def _tpu_strategy():
  name = os.environ.get('TPU_NAME')
  errors = []
  for tpu in ([name] if name else [None, 'local']):
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
      if tpu != 'local':
        tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
      return tf.distribute.TPUStrategy(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as e:
      errors.append(f'{tpu or "auto"}: {" ".join(str(e).split())[:200]}')
  raise StrategyError('strategy=tpu: no TPU found (set TPU_NAME, or run on a '
                      'TPU VM). Tried ' + '; '.join(errors))


def make_strategy(name: str) -> tf.distribute.Strategy:
  """The `tf.distribute.Strategy` for config key `strategy` (see module doc).

  `multi_worker` must be built before TensorFlow runs any op in the process.

  Raises:
    StrategyError: unknown name, bad TF_CONFIG, or no TPU.
  """
  if name not in STRATEGIES:
    raise StrategyError(f'strategy must be one of {", ".join(STRATEGIES)}. '
                        f'Received: {name!r}')
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    devices = _mirrored_devices()
    strategy = tf.distribute.MirroredStrategy(devices)
  elif name == 'multi_worker':
    parse_tf_config()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
  else:
    strategy = _tpu_strategy()
  logging.info('strategy=%s: %d replicas in sync.', name,
               strategy.num_replicas_in_sync)
  return strategy


def is_chief(strategy: Optional[tf.distribute.Strategy] = None) -> bool:
  """Whether this process writes the run's files: True except on the
  non-chief workers of a `MultiWorkerMirroredStrategy`."""
  strategy = strategy or tf.distribute.get_strategy()
  if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
    return True
  resolver = strategy.cluster_resolver
  kind, index = resolver.task_type, resolver.task_id
  if kind is None:
    return True
  if kind == 'chief':
    return True
  return (kind == 'worker' and index == 0 and
          'chief' not in resolver.cluster_spec().as_dict())


def per_replica_batch_size(global_batch: int,
                           strategy: tf.distribute.Strategy) -> int:
  """global_batch / replicas; StrategyError if not divisible."""
  n = strategy.num_replicas_in_sync
  if global_batch % n:
    raise StrategyError(
        f'batch_size (the global batch) must be divisible by the number of '
        f'replicas. Received: batch_size={global_batch}, replicas={n}; use '
        f'e.g. batch_size={max(n, global_batch // n * n)}.')
  return global_batch // n


def distribute_dataset(strategy: tf.distribute.Strategy,
                       dataset: tf.data.Dataset, global_batch: int):
  """`dataset` (batched with the global batch) split over the replicas.

  Sharding is by DATA: every worker reads the same (seeded) pipeline and
  keeps its replicas' slices of each global batch, so the replicas of one
  step together see exactly the batch a single device would.
  """
  if strategy.num_replicas_in_sync == 1:
    return dataset
  per_replica_batch_size(global_batch, strategy)
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = (
      tf.data.experimental.AutoShardPolicy.DATA)
  return strategy.experimental_distribute_dataset(
      dataset.with_options(options))


def global_batch_size(batch, strategy: tf.distribute.Strategy) -> int:
  """Images in a (possibly distributed) batch, over all replicas."""
  images = batch['image'] if isinstance(batch, dict) else batch
  if not isinstance(images, tf.distribute.DistributedValues):
    return int(images.shape[0])
  local = strategy.experimental_local_results(images)
  if len(local) == strategy.num_replicas_in_sync:
    return sum(int(t.shape[0]) for t in local)
  sizes = strategy.run(lambda x: tf.shape(x)[0], args=(images,))
  return int(strategy.reduce(_SUM, sizes, axis=None))


# --- exact reduction ---


def denominators(outputs: Dict[str, Any],
                 depth_gt: Optional[tf.Tensor]) -> Dict[str, tf.Tensor]:
  """This replica's denominators of the mean terms (module docstring)."""
  mask = tf.stop_gradient(outputs['recon_im_mask_both'])
  b = tf.shape(outputs['input_im'])[0]
  result = {'mask': tf.reduce_sum(mask[:b]),
            'mask_flip': tf.reduce_sum(mask[b:]),
            'images': tf.cast(b, tf.float32)}
  if depth_gt is not None:  # as model.compute_losses' supervised term
    valid = tf.cast(depth_gt < tf.reduce_max(depth_gt), tf.float32)
    result['depth_valid'] = tf.reduce_sum(valid)
  return result


def total_from_terms(terms: Dict[str, tf.Tensor], cfg, epoch) -> tf.Tensor:
  """loss_total from its terms, as `Unsup3D.compute_losses` combines them
  (linear in the terms, so it maps shares to the share of the total)."""
  perc = terms['loss_perc_im'] if cfg.lam_perc > 0 else None
  perc_flip = terms['loss_perc_im_flip'] if cfg.lam_perc > 0 else None
  lam_flip = losses_lib.flip_weight(epoch, cfg.lam_flip,
                                    cfg.lam_flip_start_epoch)
  total = losses_lib.total_loss(terms['loss_l1_im'], terms['loss_l1_im_flip'],
                                perc, perc_flip, terms['loss_depth_sm'],
                                lam_flip, cfg.lam_perc, cfg.lam_depth_sm)
  if 'loss_depth_gt' in terms:
    total = total + terms['loss_depth_gt']
  return total


def exact_shares(values: Dict[str, tf.Tensor], dens: Dict[str, tf.Tensor],
                 cfg, epoch) -> Dict[str, tf.Tensor]:
  """This replica's shares of the global losses/metrics (replica context).

  Args:
    values: this replica's means (loss_* and metric keys, loss_total).
    dens: this replica's denominators (`denominators`).
    cfg: the config (lambdas).
    epoch: the epoch (lambda_flip schedule).

  Returns:
    dict like `values`; summing it over the replicas gives the values of
    the whole global batch, and its 'loss_total' the loss whose summed
    gradients are the single-device gradient.
  """
  unknown = sorted(k for k in values if k != _TOTAL and k not in
                   _DENOMINATOR_OF)
  if unknown:
    raise ValueError(f'No exact cross-replica reduction is known for '
                     f'{unknown}: add it to distribute._DENOMINATOR_OF.')
  ctx = tf.distribute.get_replica_context()
  names = sorted(dens)
  totals = ctx.all_reduce(_SUM, [dens[n] for n in names])
  weight = {}
  for name, total in zip(names, totals):
    local = dens[name]
    weight[name] = tf.stop_gradient(tf.math.divide_no_nan(local, total))
  shares = {}
  for key, value in values.items():
    if key == _TOTAL:
      continue
    w = weight[_DENOMINATOR_OF[key]]
    # A replica whose denominator is 0 adds nothing (its mean is 0/0).
    shares[key] = tf.where(w > 0, value * w, tf.zeros_like(value))
  shares[_TOTAL] = total_from_terms(shares, cfg, epoch)
  return shares


class ReplicaResults:
  """A replica's losses and metric means, reduced exactly across replicas.

  Args:
    forward: fn(inputs, epoch) -> (outputs, depth_gt or None, losses dict).
    metric_means: fn(outputs, depth_gt) -> dict of metric means.
    cfg: the resolved config.
    jit_compile: compile the local forward pass with XLA (used only with
      several replicas; with one the caller's step is compiled whole).

  Calling it in a replica context returns the dict a single device returns
  (with one replica: exactly those values; with several: this replica's
  shares, which `strategy.reduce(SUM)` turns into the global values).
  """

  def __init__(self, forward: Callable, metric_means: Callable, cfg,
               jit_compile: bool = False):
    self._forward, self._metric_means, self._cfg = forward, metric_means, cfg
    self._local = tf.function(self._local_terms, jit_compile=jit_compile,
                              autograph=False)

  def _results(self, inputs, epoch) -> Tuple[Dict, Any, Any]:
    outputs, depth_gt, losses = self._forward(inputs, epoch)
    result = dict(losses)
    result.update(self._metric_means(outputs, depth_gt))
    return result, outputs, depth_gt

  def _local_terms(self, inputs, epoch):
    result, outputs, depth_gt = self._results(inputs, epoch)
    return result, denominators(outputs, depth_gt)

  def __call__(self, inputs, epoch) -> Dict[str, tf.Tensor]:
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
      return self._results(inputs, epoch)[0]
    values, dens = self._local(inputs, epoch)
    return exact_shares(values, dens, self._cfg, epoch)


# --- checkpoints ---


class WorkerCheckpoints(checkpoints_lib.Checkpoints):
  """A non-chief worker's `Checkpoints`: restores from the chief's
  `checkpoint_dir` (a shared file system), saves into a temporary directory
  deleted right after (saving may take part in collectives, so every worker
  saves), and writes nothing into `checkpoint_dir`."""

  def write_config(self, cfg):
    del cfg

  def _drop(self, bad, keep):
    del bad, keep  # The chief moves unloadable checkpoints aside.
    self._manager = None

  def save(self, epoch: int, step: int, epoch_step: int,
           trace: Dict[str, Any]) -> str:
    self.state.set(epoch, step, epoch_step, trace)
    tmp = tempfile.mkdtemp(prefix='tfunsup3d_workertemp_')
    try:
      self.checkpoint.write(os.path.join(tmp, f'{checkpoints_lib.PREFIX}-'
                                         f'{step}'))
    finally:
      shutil.rmtree(tmp, ignore_errors=True)
    return os.path.join(self.directory, f'{checkpoints_lib.PREFIX}-{step}')


def make_checkpoints(strategy: tf.distribute.Strategy, checkpoint_dir: str,
                     model, optimizers, keep_num_checkpoint: int = 2
                     ) -> checkpoints_lib.Checkpoints:
  """`Checkpoints` for the chief, `WorkerCheckpoints` for other workers."""
  cls = (checkpoints_lib.Checkpoints if is_chief(strategy)
         else WorkerCheckpoints)
  return cls(checkpoint_dir, model, optimizers, keep_num_checkpoint)
