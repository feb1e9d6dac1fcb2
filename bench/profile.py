"""Profile of the training step: where does its time go?

  python -m bench.profile                  # quickstart config, batch 16, XLA
  python -m bench.profile --xla=off --batch=64

Traces `--steps` real training steps (`Unsup3DTask.train_step` on random
images, after `--warmup` untraced ones) with the TF profiler; the trace lands
in `--logdir` (TensorBoard's profile plugin opens it). The trace itself is
then summed up here:

  XLA on   the time of each compiled kernel (an XLA thunk: a fusion, a
           convolution, a scatter...) per step, named by the TF op it was
           lowered from (the `op_name` metadata of the step's optimised HLO,
           `experimental_get_compiler_ir`), and the time per kernel kind
           and per scope (as below, from that TF op name).
           Loops (`while.N`) contain their bodies' kernels and are listed
           apart, not summed.
  XLA off  the time of each TF op per step, by op type and by scope (the
           network or renderer function it runs in, forward or backward).

Times are summed over the threads that ran them, so on 2 cores the sum can
exceed the wall time of a step. Prints JSON and a Markdown table; writes
`<out_dir>/<name>.json` and `<out_dir>/<name>.md`.
"""

import argparse
import collections
import glob
import os
import re
import tempfile
from typing import Dict, Optional

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before TF loads

# pylint: disable=g-import-not-at-top,wrong-import-position
import keras
import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from bench import common
from tfunsup3d import config as config_lib
from tfunsup3d.train import task as task_lib

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HLO_NAME = re.compile(r'^[a-z][a-z0-9_-]*(\.\d+)?$')
_LOOPS = ('while', 'call', 'conditional')
_HLO_COMPUTATION = re.compile(r'^(?:ENTRY )?%([\w.-]+) .*\{$')
_HLO_INSTRUCTION = re.compile(r'^\s*(ROOT )?%([\w.-]+) = (\S+) ([\w-]+)\((.*)$')
_HLO_METADATA = re.compile(r'metadata=\{op_type="([^"]*)" op_name="([^"]*)"')
_SCOPE = re.compile(r'^(net[A-Z]|render_\w*|rasterize_\w*|grid_sample|vgg\w*|'
                    r'depth_to_normals|inverse_warp_grid|optimizer[A-Z])')


def hlo_op_names(hlo_text: str) -> Dict[str, Dict[str, str]]:
  """HLO instruction name -> {'shape', 'op_type', 'op_name'} from HLO text.

  An instruction without TF metadata (XLA puts none on many fusions and
  layout copies) takes that of its fused computation (the root first), else
  that of its first operand that has some, marked 'via operand'.
  """
  own, shape, calls, operands, roots = {}, {}, {}, {}, {}
  computation = None
  for line in hlo_text.splitlines():
    m = _HLO_COMPUTATION.match(line)
    if m:
      computation = m.group(1)
      continue
    m = _HLO_INSTRUCTION.match(line)
    if not m:
      continue
    is_root, name, shape[name], _, rest = m.groups()
    meta = _HLO_METADATA.search(rest)
    if meta:
      own[name] = {'op_type': meta.group(1), 'op_name': meta.group(2)}
      if computation and (is_root or computation not in roots):
        roots[computation] = own[name]
    args = rest.split(')', 1)[0]
    operands[name] = re.findall(r'%([\w.-]+)', args)
    called = re.search(r'calls=%([\w.-]+)', rest)
    if called:
      calls[name] = called.group(1)
  names = {}
  for name in shape:
    meta = own.get(name) or roots.get(calls.get(name))
    if meta is None:
      for operand in operands[name]:
        found = own.get(operand) or roots.get(calls.get(operand))
        if found:
          meta = dict(found, op_name=found['op_name'] + ' (via operand)')
          break
    names[name] = dict(meta or {'op_type': '', 'op_name': ''},
                       shape=shape[name])
  return names


def _kind(name: str) -> str:
  return re.sub(r'\.\d+$', '', name)


def _scope(op_name: str) -> str:
  """'fwd/netD' or 'bwd/render_depth' style group of a TF op name."""
  parts = op_name.split('/')
  where = next((re.sub(r'_\d+$', '', p) for p in parts if _SCOPE.match(p)),
               'other')
  return ('bwd/' if 'gradient_tape' in parts else 'fwd/') + where


def aggregate(space: xplane_pb2.XSpace, steps: int) -> Dict[str, object]:
  """Sums the host events of a trace per step.

  Returns:
    dict with 'kernels' (XLA kernel name -> s/step), 'loops' (while/call
    thunks -> s/step, overlapping their bodies), 'tf_ops' (TF op
    'name:Type' -> s/step), every dict sorted by time, largest first.
  """
  kernels, loops, ops = (collections.Counter() for _ in range(3))
  for plane in space.planes:
    if not plane.name.startswith('/host:'):
      continue
    meta = plane.event_metadata
    for line in plane.lines:
      for event in line.events:
        name = meta[event.metadata_id].name
        seconds = event.duration_ps / 1e12 / steps
        if (line.name.startswith('tf_Compute') and ':' in name and
            '::' not in name and ' ' not in name):
          ops[name] += seconds
        elif _HLO_NAME.match(name):
          (loops if _kind(name) in _LOOPS else kernels)[name] += seconds
  return {key: dict(c.most_common()) for key, c in
          (('kernels', kernels), ('loops', loops), ('tf_ops', ops))}


def summarise(totals: Dict[str, Dict[str, float]],
              hlo: Optional[Dict[str, Dict[str, str]]],
              top: int) -> Dict[str, object]:
  """Groups `aggregate`'s totals into the tables of the report."""
  out = {}
  if totals['kernels']:
    total = sum(totals['kernels'].values())
    kinds, scopes = collections.Counter(), collections.Counter()
    for name, s in totals['kernels'].items():
      kinds[_kind(name)] += s
      op_name = (hlo or {}).get(name, {}).get('op_name')
      # A kernel named after its operand (e.g. a filter gradient named by
      # the forward activations) is kept apart from its operand's scope.
      scopes[(_scope(op_name) + (' (via operand)' if op_name.endswith(
          '(via operand)') else '')) if op_name else 'unnamed'] += s
    out['kernel_total_s'] = total
    out['top_kernels'] = [dict({'kernel': k, 's_per_step': s,
                                'share': s / total}, **(hlo or {}).get(k, {}))
                          for k, s in list(totals['kernels'].items())[:top]]
    out['kernel_kinds'] = [{'kind': k, 's_per_step': s, 'share': s / total}
                           for k, s in kinds.most_common(top)]
    out['kernel_scopes'] = [{'scope': k, 's_per_step': s, 'share': s / total}
                            for k, s in scopes.most_common(top)]
    out['loops'] = [{'kernel': k, 's_per_step': s}
                    for k, s in list(totals['loops'].items())[:5]]
  if totals['tf_ops']:
    total = sum(totals['tf_ops'].values())
    types, scopes = collections.Counter(), collections.Counter()
    for name, s in totals['tf_ops'].items():
      op_name, op_type = name.rsplit(':', 1)
      types[op_type] += s
      scopes[_scope(op_name)] += s
    out['op_total_s'] = total
    out['op_types'] = [{'op_type': k, 's_per_step': s, 'share': s / total}
                       for k, s in types.most_common(top)]
    out['op_scopes'] = [{'scope': k, 's_per_step': s, 'share': s / total}
                        for k, s in scopes.most_common(top)]
  return out


def profile_training(cfg: config_lib.Config, steps: int, warmup: int,
                     logdir: str) -> Dict[str, object]:
  """Traces `steps` training steps of `cfg` (see module docstring)."""
  keras.utils.set_random_seed(cfg.seed)
  task = task_lib.Unsup3DTask(cfg)
  size = cfg.image_size
  batch = {'image': tf.constant(np.random.default_rng(0).uniform(
      0, 1, (cfg.batch_size, size, size, 3)), tf.float32)}
  step = lambda: task.train_step(batch, 0)['loss_total']
  # Untraced timing first: the profiler's own cost stays out of it.
  timing = common.measure(step, repeats=steps, warmup=warmup)
  tf.profiler.experimental.start(logdir)
  try:
    for _ in range(steps):
      step().numpy()
  finally:
    tf.profiler.experimental.stop()
  paths = sorted(glob.glob(os.path.join(logdir, 'plugins', 'profile', '*',
                                        '*.xplane.pb')), key=os.path.getmtime)
  if not paths:
    raise RuntimeError(f'the profiler wrote no trace under {logdir}')
  space = xplane_pb2.XSpace()
  with open(paths[-1], 'rb') as f:
    space.ParseFromString(f.read())
  hlo = None
  if cfg.jit_compile:
    step_fn = task.step_functions['train']
    hlo = hlo_op_names(step_fn.experimental_get_compiler_ir(
        batch, tf.constant(0.0))(stage='optimized_hlo'))
  return {'first_s': timing['first_s'], 'median_s': timing['median_s'],
          'trace': paths[-1], 'totals': aggregate(space, steps), 'hlo': hlo}


def markdown(result: Dict[str, object]) -> str:
  s = result['settings']
  lines = [f'# Profile of the training step: `python -m bench.profile '
           f'--batch={s["batch"]} --xla={"on" if s["xla"] else "off"}`', '',
           f'Config `{s["config"]}`, batch {s["batch"]}, {s["cpu_count"]} CPU '
           f'cores, TF {s["tensorflow"]}; untraced median '
           f'{result["median_s"]:.3f} s/step (first call '
           f'{result["first_s"]:.1f} s); times summed over threads, per '
           f'step, over {s["steps"]} traced steps.', '']
  summary = result['summary']
  if 'top_kernels' in summary:
    lines += [f'Compiled kernels: {summary["kernel_total_s"]:.3f} s/step in '
              'all.', '', '| kernel | s/step | share | TF op | shape |',
              '|---|---|---|---|---|']
    lines += [f'| {k["kernel"]} | {k["s_per_step"]:.4f} | '
              f'{100 * k["share"]:.1f}% | {k.get("op_name", "–")} '
              f'({k.get("op_type", "–")}) | {k.get("shape", "–")} |'
              for k in summary['top_kernels']]
    lines += ['', '| kernel kind | s/step | share |', '|---|---|---|']
    lines += [f'| {k["kind"]} | {k["s_per_step"]:.4f} | '
              f'{100 * k["share"]:.1f}% |' for k in summary['kernel_kinds']]
    lines += ['', '| kernel scope (from its TF op) | s/step | share |',
              '|---|---|---|']
    lines += [f'| {k["scope"]} | {k["s_per_step"]:.4f} | '
              f'{100 * k["share"]:.1f}% |' for k in summary['kernel_scopes']]
  if 'op_types' in summary:
    lines += ['', f'TF ops: {summary["op_total_s"]:.3f} s/step in all.', '',
              '| op type | s/step | share |', '|---|---|---|']
    lines += [f'| {k["op_type"]} | {k["s_per_step"]:.4f} | '
              f'{100 * k["share"]:.1f}% |' for k in summary['op_types']]
    lines += ['', '| scope | s/step | share |', '|---|---|---|']
    lines += [f'| {k["scope"]} | {k["s_per_step"]:.4f} | '
              f'{100 * k["share"]:.1f}% |' for k in summary['op_scopes']]
  return '\n'.join(lines) + '\n'


def main(argv=None):
  p = argparse.ArgumentParser(prog='python -m bench.profile',
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument('--config', default=os.path.join(REPO_ROOT, 'configs',
                                                  'quickstart.yml'))
  p.add_argument('--batch', type=int, default=16)
  p.add_argument('--xla', default='on', choices=('on', 'off'))
  p.add_argument('--steps', type=int, default=5)
  p.add_argument('--warmup', type=int, default=2)
  p.add_argument('--top', type=int, default=15)
  p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                 help='config override (repeatable)')
  p.add_argument('--logdir', default=None,
                 help='trace directory (default: a new temporary one)')
  p.add_argument('--out_dir', default=os.path.join(REPO_ROOT, 'bench',
                                                  'results'))
  p.add_argument('--name', default='profile')
  args = p.parse_args(argv)
  if args.steps < 1 or args.batch < 1:
    p.error('--steps and --batch must be >= 1')
  cfg = config_lib.load(args.config, args.set + [
      f'batch_size={args.batch}', f'jit_compile={args.xla == "on"}'
  ]).resolved()
  logdir = args.logdir or tempfile.mkdtemp(prefix='tfunsup3d_profile_')
  env = common.environment()
  common.emit(env)
  run = profile_training(cfg, args.steps, args.warmup, logdir)
  result = {
      'settings': {'config': os.path.relpath(args.config, REPO_ROOT),
                   'batch': args.batch, 'xla': args.xla == 'on',
                   'steps': args.steps, 'overrides': args.set,
                   'cpu_count': env['cpu_count'],
                   'tensorflow': env['tensorflow']},
      'first_s': run['first_s'], 'median_s': run['median_s'],
      'trace': run['trace'],
      'summary': summarise(run['totals'], run['hlo'], args.top)}
  md = markdown(result)
  common.write_results(args.out_dir, args.name, result, md)
  print(md)
  return result


if __name__ == '__main__':
  main()
