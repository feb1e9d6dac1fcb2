"""tf.distribute for training: strategies, data sharding, chief I/O.

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

The losses need nothing from here to be exact: `Unsup3D.compute_losses`
returns each replica's part of the global batch's means (its sums divided
by the counts summed over all replicas, `losses.global_means`) and the task
SUMs the parts, so N replicas compute the one-device losses and gradients
on the same global batch (the Keras optimisers SUM the replicas'
gradients). With several
replicas (except on TPU, where the whole replica step is XLA) only the
forward pass is jit-compiled: the all-reduces and the optimiser updates run
outside XLA, which cannot hold them.

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
from typing import Any, Dict, Optional

from absl import logging
import tensorflow as tf

from tfunsup3d.train import checkpoints as checkpoints_lib

STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
_SUM = tf.distribute.ReduceOp.SUM


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


def devices_in_use(strategy: tf.distribute.Strategy) -> str:
  """The devices `strategy` trains on, in words: 'CPU (2 cores)', 'GPU:0
  (NVIDIA H100 80GB HBM3)' (one replica: TF's default placement), or the
  replicas' device names."""
  replicas = strategy.num_replicas_in_sync
  if replicas > 1:
    devices = ', '.join(strategy.extended.worker_devices)
    return f'{replicas} replicas ({devices})'
  gpus = tf.config.list_physical_devices('GPU')
  if not gpus:
    return f'CPU ({os.cpu_count()} cores)'
  detail = tf.config.experimental.get_device_details(gpus[0])
  return f'GPU:0 ({detail.get("device_name", "unnamed")})'


def missing_gpu_note() -> Optional[str]:
  """A warning when this machine has an NVIDIA driver but TensorFlow sees no
  GPU (TensorFlow's own 'Cannot dlopen some GPU libraries' is one of the
  start-up notices the scripts hold back), else None. GPUs hidden on purpose
  (CUDA_VISIBLE_DEVICES empty or -1) give no warning."""
  if tf.config.list_physical_devices('GPU'):
    return None
  if os.environ.get('CUDA_VISIBLE_DEVICES', 'unset').strip() in ('', '-1'):
    return None
  if not (os.path.exists('/proc/driver/nvidia/version') or
          shutil.which('nvidia-smi')):
    return None
  return ('This machine has an NVIDIA driver, but TensorFlow found no usable '
          'GPU, so training runs on the CPU: install the CUDA libraries '
          "(pip install 'tensorflow[and-cuda]~=2.21.0'); TFUNSUP3D_DEBUG=1 "
          "shows TensorFlow's own messages.")


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
