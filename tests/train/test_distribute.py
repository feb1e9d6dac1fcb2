"""tf.distribute training: strategies, exact losses, multi-worker runs.

Logical CPU devices must be configured before TensorFlow initialises its
devices, and MultiWorkerMirroredStrategy before TF runs any op, so the
multi-replica checks run in subprocesses (`python -c`), which print one JSON
line that the test reads.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from tests import tiny
from tfunsup3d import config
from tfunsup3d.train import distribute

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
MIRRORED_TIMEOUT_S = 420  # TF import + tracing two tasks on two busy cores.
MULTI_WORKER_TIMEOUT_S = 360  # two processes tracing on two busy cores
MARK = 'RESULT_JSON '
RTOL = 1e-6  # losses and metrics, multi vs one device
W, LR = 0.7, 0.1  # the scalar weight and SGD step of _PARTS_SCRIPT
EPS = 1e-7


def parts_data():
  """4 images, 4x4, whose masks keep 14 pixels of image 0 and 2 + 4 + 1 of
  images 1..3: 14 vs 7 on the replicas of _PARTS_SCRIPT (1 vs 3 images)."""
  rng = np.random.default_rng(0)
  mask = np.zeros([4, 4, 4, 1], np.float32)
  mask[0] = 1.0
  mask[1, 0, :2] = 1.0
  mask[2, 1:3, 1:3] = 1.0
  mask[3, 3, 3] = 1.0
  mask[0, :2, :1] = 0.0
  uniform = lambda lo, hi, *shape: rng.uniform(lo, hi, shape).astype(
      np.float32)
  return dict(im=uniform(-1, 1, 4, 4, 4, 3),
              target=uniform(-1, 1, 4, 4, 4, 3),
              sigma=uniform(0.5, 2, 4, 4, 4, 1), mask=mask,
              feat=uniform(-1, 1, 4, 2, 2, 5),
              ftarget=uniform(-1, 1, 4, 2, 2, 5),
              fsigma=uniform(0.5, 2, 4, 2, 2, 1))


def parts_expected(d, w=W):
  """The whole batch's losses of _PARTS_SCRIPT and their d/dw, in numpy."""
  m3 = np.broadcast_to(d['mask'], d['im'].shape)
  r = w * d['im'] - d['target']
  photometric = np.abs(r) * 2 ** 0.5 / (d['sigma'] + EPS) + np.log(
      d['sigma'] + EPS)
  photometric_grad = np.sign(r) * d['im'] * 2 ** 0.5 / (d['sigma'] + EPS)
  pooled = d['mask'].reshape(4, 2, 2, 2, 2, 1).mean(axis=(2, 4))
  m5 = np.broadcast_to(pooled, d['feat'].shape)
  q = w * d['feat'] - d['ftarget']
  var = 2 * d['fsigma'] ** 2 + EPS
  feature = q ** 2 / var + np.log(d['fsigma'] + EPS)
  mean = lambda e, m: float((e * m).sum() / m.sum())
  return {'photometric': mean(photometric, m3),
          'photometric_grad': mean(photometric_grad, m3),
          'feature': mean(feature, m5),
          'feature_grad': mean(2 * q * d['feat'] / var, m5),
          'per_image': float(np.abs(r).mean()),
          'per_image_grad': float((np.sign(r) * d['im']).mean())}

# Default vs MirroredStrategy over two logical CPUs on one global batch.
_MIRRORED_SCRIPT = r'''
import json, sys, tempfile
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tests import tiny
from tfunsup3d import config
from tfunsup3d.train import checkpoints, distribute
from tfunsup3d.train.task import Unsup3DTask

cfg = config.from_dict(dict(tiny.TINY, load_gt_depth=True, lam_depth_sm=0.3,
                            supervised_depth=True, xyz_rotation_range=60.0))
keras.utils.set_random_seed(0)
single = Unsup3DTask(cfg)
# Image-dependent views, hence masks of different sums on the two replicas.
kernel = single.model.netV.weights[-1]
kernel.assign(kernel * 50.0)
mirrored_strategy = distribute.make_strategy('mirrored')
multi = Unsup3DTask(cfg, strategy=mirrored_strategy)
for name, net in single.model.networks.items():
  multi.model.networks[name].set_weights(net.get_weights())

rng = np.random.default_rng(3)
images = np.stack([tiny.smooth_image(rng) for _ in range(4)]) / 255.0
depth = np.stack([tiny.smooth_depth(rng) for _ in range(4)])[..., None] / 255.
batch = {'image': tf.constant(images, tf.float32),
         'depth_gt': tf.constant(depth, tf.float32)}

def first(ds):
  return next(iter(ds))

def to_py(d):
  return {k: float(v) for k, v in d.items()}

# Naive mean of the two halves' means, to show the masks differ. (The even
# batch's eval scalars are the train step's: both are `_scalars` before the
# update, so the even batch is run once, as a train step.)
halves = [to_py(single.eval_step({k: v[i:i + 2] for k, v in batch.items()}))
          for i in (0, 2)]
# An uneven batch of 3 (2 + 1 images per replica).
three = {k: v[:3] for k, v in batch.items()}
eval3_single = to_py(single.eval_step(three))
dist3 = mirrored_strategy.experimental_distribute_dataset(
    tf.data.Dataset.from_tensors(three))
eval3_multi = to_py(multi.eval_step(first(dist3)))
sizes3 = distribute.global_batch_size(first(dist3), mirrored_strategy)

train_single = to_py(single.train_step(batch, 0))
train_multi = to_py(multi.train_step(first(multi.distribute_dataset(
    tf.data.Dataset.from_tensors(batch))), 0))

def compare(task_a, task_b):
  """(max |m_a - m_b| / max |m_a| over variables (Adam's first moment is
  0.1 * (summed gradient + L2 term)), max weight difference where the
  gradient is not rounding noise, elements off by > 1e-5 elsewhere,
  elements). The first Adam step moves w by lr * g / (|g| + eps), so a
  gradient element that is noise (< 1e-3 of the variable's largest) may
  flip and differ by up to 2 lr."""
  rel, weight, noisy, count = 0.0, 0.0, 0, 0
  for name in sorted(task_a.model.networks):
    opt_a, opt_b = task_a.optimizers[name], task_b.optimizers[name]
    for var_a, var_b in zip(task_a.model.networks[name].trainable_variables,
                            task_b.model.networks[name].trainable_variables):
      m_a = opt_a._momentums[opt_a._get_variable_index(var_a)].numpy()
      m_b = opt_b._momentums[opt_b._get_variable_index(var_b)].numpy()
      scale = max(float(np.max(np.abs(m_a))), 1e-30)
      rel = max(rel, float(np.max(np.abs(m_a - m_b))) / scale)
      noise = np.abs(m_a) < 1e-3 * scale
      diff = np.abs(var_a.numpy() - var_b.numpy())
      weight = max(weight, float(np.max(np.where(noise, 0.0, diff))))
      noisy += int(np.sum(noise & (diff > 1e-5)))
      count += int(diff.size)
    for a, b in zip(opt_a.variables, opt_b.variables):
      if 'int' in str(a.dtype):  # iterations
        rel = max(rel, float(abs(a.numpy() - b.numpy())))
  other = max([float(np.max(np.abs(a.numpy() - b.numpy())))
               for a, b in zip(task_a.model.weights, task_b.model.weights)
               if not a.trainable] + [0.0])
  return dict(grad_rel_diff=rel, weight_diff=weight, noise_elements=noisy,
              elements=count, other_diff=other)

vs_single = compare(single, multi)

# Checkpoint written with 2 replicas, restored with 1.
ckpt_dir = tempfile.mkdtemp(dir=sys.argv[1])
saver = distribute.make_checkpoints(mirrored_strategy, ckpt_dir, multi.model,
                                    multi.optimizers)
prefix = saver.save(0, 1, 1, {})
keras.utils.set_random_seed(1)
fresh = Unsup3DTask(cfg)
restorer = checkpoints.Checkpoints(ckpt_dir, fresh.model, fresh.optimizers)
restored = restorer.restore()
restore_diff = 0.0
for name in sorted(fresh.model.networks):
  for a, b in zip(fresh.model.networks[name].weights + list(
      fresh.optimizers[name].variables), multi.model.networks[name].weights
      + list(multi.optimizers[name].variables)):
    restore_diff = max(restore_diff, float(np.max(np.abs(
        np.asarray(a.numpy(), np.float64) - np.asarray(b.numpy())))))
print('RESULT_JSON ' + json.dumps(dict(
    replicas=multi.strategy.num_replicas_in_sync, halves=halves,
    eval3_single=eval3_single, eval3_multi=eval3_multi, sizes3=sizes3,
    train_single=train_single, train_multi=train_multi,
    vs_single=vs_single, prefix=prefix, restored=restored,
    restore_diff=restore_diff)))
'''

# The (sum, count) losses, their gradients and one SGD step on 2 replicas with
# unequal image and mask counts, against one device on the same batch.
_PARTS_SCRIPT = r'''
import json
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from tests.train import test_distribute as t
from tfunsup3d import losses

data = t.parts_data()
split = 1  # replica 0 gets image 0, replica 1 images 1..3

def values(w, d):
  pred, feat = w * d['im'], w * d['feat']
  return losses.global_means(
      {'photometric': losses.photometric_sum(pred, d['target'], d['mask'],
                                             d['sigma']),
       'feature': losses.feature_sum(feat, d['ftarget'], d['mask'],
                                     d['fsigma'])},
      {'per_image': (tf.reduce_mean(tf.abs(pred - d['target'])),
                     tf.cast(tf.shape(pred)[0], tf.float32))})

def run(strategy, inputs):
  with strategy.scope():
    w = tf.Variable(t.W)
    opt = keras.optimizers.SGD(learning_rate=t.LR)

  def step(d):
    with tf.GradientTape(persistent=True) as tape:
      v = values(w, d)
      total = v['photometric'] + v['feature'] + v['per_image']
    out = dict(v)
    out.update({k + '_grad': tape.gradient(x, w) for k, x in v.items()})
    opt.apply_gradients([(tape.gradient(total, w), w)])
    return out

  fn = tf.function(lambda d: {k: strategy.reduce('SUM', x, axis=None)
                              for k, x in strategy.run(
                                  step, args=(d,)).items()})
  got = {k: float(x) for k, x in fn(inputs).items()}
  got['w_after'] = float(w.numpy())
  return got

mirrored = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
halves = [{k: v[:split] for k, v in data.items()},
          {k: v[split:] for k, v in data.items()}]
multi = run(mirrored, mirrored.experimental_distribute_values_from_function(
    lambda ctx: halves[ctx.replica_id_in_sync_group]))
single = run(tf.distribute.get_strategy(), data)
# What a mean of the replicas' means would give (one device per half).
w = tf.Variable(t.W)
means = [{k: float(x) for k, x in values(w, h).items()} for h in halves]
naive = {k: (means[0][k] + means[1][k]) / 2 for k in means[0]}
print('RESULT_JSON ' + json.dumps(dict(multi=multi, single=single,
                                       naive=naive)))
'''


# One worker of a two-worker MultiWorkerMirroredStrategy run.
_WORKER_SCRIPT = r'''
import json, sys
from tfunsup3d import config, progress
from tfunsup3d.train import loop
progress.set_mode('lines')
cfg = config.from_dict(json.loads(sys.argv[1]))
result = loop.train(cfg)
print('RESULT_JSON ' + json.dumps(dict(
    step=result['step'], epoch=result['epoch'],
    checkpoint=result['checkpoint'],
    loss=result['metrics']['0']['train']['loss_total'])))
'''


def _result(stdout: str):
  lines = [l for l in stdout.splitlines() if l.startswith(MARK)]
  return json.loads(lines[-1][len(MARK):]) if lines else None


def _env(**extra):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', CUDA_VISIBLE_DEVICES='')
  env['PYTHONPATH'] = ROOT + os.pathsep + env.get('PYTHONPATH', '')
  env.update(extra)
  return env


def _free_ports(n: int):
  socks = []
  try:
    for _ in range(n):
      s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      s.bind(('127.0.0.1', 0))
      socks.append(s)
    return [s.getsockname()[1] for s in socks]
  finally:
    for s in socks:
      s.close()


class StrategyTest(tf.test.TestCase):

  def test_default_is_the_current_strategy(self):
    self.assertIs(distribute.make_strategy('default'),
                  tf.distribute.get_strategy())
    self.assertTrue(distribute.is_chief(distribute.make_strategy('default')))

  def test_unknown_name(self):
    with self.assertRaisesRegex(distribute.StrategyError, 'one of default'):
      distribute.make_strategy('horovod')

  def test_tf_config_missing_or_invalid(self):
    with self.assertRaisesRegex(distribute.StrategyError, 'needs the TF_CONF'):
      distribute.parse_tf_config('')
    with self.assertRaisesRegex(distribute.StrategyError, 'not valid JSON'):
      distribute.parse_tf_config('{cluster')
    with self.assertRaisesRegex(distribute.StrategyError, 'does not name'):
      distribute.parse_tf_config(json.dumps(
          {'cluster': {'worker': ['127.0.0.1:1']},
           'task': {'type': 'worker', 'index': 1}}))
    with self.assertRaisesRegex(distribute.StrategyError, 'host:port'):
      distribute.parse_tf_config(json.dumps(
          {'cluster': {'worker': []}, 'task': {'type': 'worker',
                                                'index': 0}}))
    ok = {'cluster': {'worker': ['127.0.0.1:1', '127.0.0.1:2']},
          'task': {'type': 'worker', 'index': 1}}
    self.assertEqual(distribute.parse_tf_config(json.dumps(ok)), ok)

  def test_multi_worker_without_tf_config(self):
    old = os.environ.pop('TF_CONFIG', None)
    try:
      with self.assertRaisesRegex(distribute.StrategyError, 'TF_CONFIG'):
        distribute.make_strategy('multi_worker')
    finally:
      if old is not None:
        os.environ['TF_CONFIG'] = old

  def test_tpu_without_tpu(self):
    with self.assertRaisesRegex(distribute.StrategyError, 'no TPU found'):
      distribute.make_strategy('tpu')

  def test_batch_size_must_divide(self):

    class _Fake:
      num_replicas_in_sync = 3

    self.assertEqual(distribute.per_replica_batch_size(12, _Fake()), 4)
    with self.assertRaisesRegex(distribute.StrategyError, 'divisible'):
      distribute.per_replica_batch_size(8, _Fake())


class ExactPartsTest(tf.test.TestCase):

  def test_two_replicas_with_unequal_counts_match_one_device(self):
    proc = subprocess.run(
        [sys.executable, '-c', _PARTS_SCRIPT], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=MIRRORED_TIMEOUT_S,
        check=False)
    res = _result(proc.stdout)
    self.assertIsNotNone(res, proc.stdout[-3000:] + proc.stderr[-5000:])
    expected = parts_expected(parts_data())
    step = W - LR * (expected['photometric_grad'] + expected['feature_grad']
                     + expected['per_image_grad'])
    for run in ('single', 'multi'):
      for key, value in expected.items():
        self.assertAllClose(res[run][key], value, rtol=1e-5, msg=run + key)
      self.assertAllClose(res[run]['w_after'], step, rtol=1e-6, msg=run)
    for key in expected:
      self.assertAllClose(res['multi'][key], res['single'][key], rtol=RTOL,
                          atol=1e-7, msg=key)
    # The replicas' counts differ, so a mean of their means is far off.
    for key in ('photometric', 'feature', 'per_image'):
      self.assertGreater(abs(res['naive'][key] - expected[key]),
                         0.01 * abs(expected[key]), key)


class DevicesTest(tf.test.TestCase):

  def test_default_strategy_on_this_cpu(self):
    with mock.patch.object(tf.config, 'list_physical_devices',
                           return_value=[]):
      self.assertEqual(distribute.devices_in_use(tf.distribute.get_strategy()),
                       f'CPU ({os.cpu_count()} cores)')

  def test_one_gpu_is_named(self):
    gpu = tf.config.PhysicalDevice('/physical_device:GPU:0', 'GPU')
    with mock.patch.object(tf.config, 'list_physical_devices',
                           return_value=[gpu]), \
        mock.patch.object(tf.config.experimental, 'get_device_details',
                          return_value={'device_name': 'NVIDIA H100'}):
      self.assertEqual(distribute.devices_in_use(tf.distribute.get_strategy()),
                       'GPU:0 (NVIDIA H100)')

  def test_missing_gpu_note_only_with_a_driver_and_no_gpu(self):
    gpu = tf.config.PhysicalDevice('/physical_device:GPU:0', 'GPU')

    def note(gpus, driver, visible='unset'):
      env = {} if visible == 'unset' else {'CUDA_VISIBLE_DEVICES': visible}
      with mock.patch.object(tf.config, 'list_physical_devices',
                             return_value=gpus), \
          mock.patch.object(distribute.os.path, 'exists',
                            return_value=driver), \
          mock.patch.object(distribute.shutil, 'which', return_value=None), \
          mock.patch.dict(os.environ, env):
        if visible == 'unset':
          os.environ.pop('CUDA_VISIBLE_DEVICES', None)
        return distribute.missing_gpu_note()

    self.assertIn("pip install 'tensorflow[and-cuda]~=2.21.0'",
                  note([], driver=True))
    self.assertIsNone(note([], driver=False))  # No NVIDIA driver: a CPU box.
    self.assertIsNone(note([gpu], driver=True))  # The GPU is in use.
    self.assertIsNone(note([], driver=True, visible=''))  # Hidden on purpose.
    self.assertIsNone(note([], driver=True, visible='-1'))
    self.assertIsNotNone(note([], driver=True, visible='0'))


class MirroredTest(tf.test.TestCase):

  def test_two_replicas_match_one_device(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    proc = subprocess.run(
        [sys.executable, '-c', _MIRRORED_SCRIPT, tmp], cwd=ROOT, env=_env(),
        capture_output=True, text=True, timeout=MIRRORED_TIMEOUT_S,
        check=False)
    res = _result(proc.stdout)
    self.assertIsNotNone(res, proc.stdout[-3000:] + proc.stderr[-5000:])
    self.assertEqual(res['replicas'], 2)
    # The two halves' masks differ, so the naive mean of means is off by
    # much more than the tolerance below...
    exact = res['train_single']['loss_l1_im']
    naive = (res['halves'][0]['loss_l1_im'] +
             res['halves'][1]['loss_l1_im']) / 2
    self.assertGreater(abs(naive - exact), 10 * RTOL * abs(exact))
    # ...while the exact reduction is not.
    for single, multi in (('eval3_single', 'eval3_multi'),
                          ('train_single', 'train_multi')):
      self.assertEqual(sorted(res[single]), sorted(res[multi]))
      for key in res[single]:
        self.assertAllClose(res[multi][key], res[single][key], rtol=RTOL,
                            atol=1e-7, msg=f'{multi} {key}')
    self.assertIn('loss_depth_gt', res['train_multi'])
    self.assertIn('SIDE', res['train_multi'])
    self.assertEqual(res['sizes3'], 3)
    # Same weights and Adam state after one step. The Keras optimisers SUM
    # the replicas' gradients (a MEAN would halve Adam's moments). The
    # model's gradients depend on per-batch-shape rounding at ~3e-3 of a
    # variable's largest element (piecewise renderer and sampler; one
    # device on the two halves with exact weights differs as much), and
    # Adam's first step moves w by lr * g / (|g| + eps): elements whose
    # gradient is that noise may move by up to 2 lr either way.
    got = res['vs_single']
    self.assertLess(got['grad_rel_diff'], 1e-2)
    self.assertLess(got['weight_diff'], 1e-5)
    self.assertLess(got['noise_elements'], 1e-3 * got['elements'])
    self.assertEqual(got['other_diff'], 0.0)
    self.assertEqual(res['restored'], res['prefix'])
    self.assertEqual(res['restore_diff'], 0.0)


@pytest.mark.slow
class MultiWorkerTest(tf.test.TestCase):

  def test_two_workers_train_and_chief_checkpoint_restores(self):
    tmp = tempfile.mkdtemp(dir=self.get_temp_dir())
    data = tiny.write_dataset(os.path.join(tmp, 'data'), n_train=8, n_val=4)
    ckpt_dir = os.path.join(tmp, 'run')
    values = dict(tiny.TINY, train_val_data_dir=data, checkpoint_dir=ckpt_dir,
                  load_gt_depth=True, num_epochs=1, max_steps_per_epoch=2,
                  val_max_batches=1, strategy='multi_worker',
                  use_logger=True, log_freq=1000)
    workers = [f'127.0.0.1:{p}' for p in _free_ports(2)]
    procs, logs = [], []
    try:
      for index in range(2):
        tf_config = json.dumps({'cluster': {'worker': workers},
                                'task': {'type': 'worker', 'index': index}})
        log = open(os.path.join(tmp, f'worker{index}.log'), 'w+')
        logs.append(log)
        procs.append(subprocess.Popen(
            [sys.executable, '-c', _WORKER_SCRIPT, json.dumps(values)],
            cwd=ROOT, env=_env(TF_CONFIG=tf_config), stdout=log,
            stderr=subprocess.STDOUT, text=True))
      deadline = time.time() + MULTI_WORKER_TIMEOUT_S
      for proc in procs:
        proc.wait(timeout=max(1.0, deadline - time.time()))
      outputs = []
      for log in logs:
        log.seek(0)
        outputs.append(log.read())
    finally:
      for proc in procs:
        if proc.poll() is None:
          proc.kill()
          proc.wait()
      for log in logs:
        log.close()
    for proc, out in zip(procs, outputs):
      self.assertEqual(proc.returncode, 0, out[-5000:])
    chief, other = (_result(out) for out in outputs)
    self.assertEqual(chief['step'], 2)
    self.assertEqual(other['step'], 2)
    self.assertAllClose(chief['loss'], other['loss'], rtol=1e-6)
    # Only the chief shows the progress lines.
    self.assertIn('epoch 0 (of 1): 2/2 step', outputs[0])
    self.assertNotIn('epoch 0 (of 1)', outputs[1])
    self.assertEqual(chief['checkpoint'], os.path.join(ckpt_dir, 'ckpt-2'))
    # Only the chief wrote into checkpoint_dir.
    self.assertEqual(tf.train.latest_checkpoint(ckpt_dir),
                     chief['checkpoint'])
    self.assertEqual(sorted(os.listdir(os.path.join(ckpt_dir, 'logs'))),
                     ['train', 'val'])
    self.assertLen(os.listdir(os.path.join(ckpt_dir, 'logs', 'train')), 1)
    # The chief's checkpoint restores into a default-strategy model.
    from tfunsup3d.model import Unsup3D  # pylint: disable=g-import-not-at-top
    from tfunsup3d.train import checkpoints  # pylint: disable=g-import-not-at-top
    from tfunsup3d.train.task import Unsup3DTask  # pylint: disable=g-import-not-at-top
    model = Unsup3D.from_checkpoint(ckpt_dir)
    self.assertEqual(model.cfg.strategy, 'multi_worker')
    cfg = config.from_dict(dict(values, strategy='default'))
    task = Unsup3DTask(cfg)
    ckpts = checkpoints.Checkpoints(ckpt_dir, task.model, task.optimizers)
    self.assertEqual(ckpts.restore(), chief['checkpoint'])
    self.assertEqual(ckpts.state.get()['step'], 2)
    for name, net in task.model.networks.items():
      for a, b in zip(net.weights, model.networks[name].weights):
        self.assertAllEqual(a, b)


if __name__ == '__main__':
  tf.test.main()
