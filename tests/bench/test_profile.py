"""Tests for bench/profile.py: reading HLO metadata and summing a trace."""

import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

from bench import profile

_HLO = '''HloModule step

%fused_computation.7 (param_0: f32[4,8]) -> f32[8,4] {
  %param_0 = f32[4,8]{1,0} parameter(0)
  %negate.1 = f32[4,8]{1,0} negate(%param_0), metadata={op_type="Neg" op_name="netD_1/neg"}
  ROOT %transpose.2 = f32[8,4]{1,0} transpose(%negate.1), dimensions={1,0}, metadata={op_type="Transpose" op_name="gradient_tape/netD_1/transpose"}
}

ENTRY %main.9 (x: f32[4,8]) -> f32[8,8] {
  %x = f32[4,8]{1,0} parameter(0), metadata={op_type="_Arg" op_name="images"}
  %transpose_fusion.3 = f32[8,4]{1,0} fusion(%x), kind=kLoop, calls=%fused_computation.7
  ROOT %convolution.5 = f32[8,8]{1,0} convolution(%transpose_fusion.3, %x), dim_labels=bf_io->bf
}
'''


def _space():
  """One host plane: TF ops on a tf_Compute line, XLA kernels on another,
  plus a device plane that must be ignored."""
  space = xplane_pb2.XSpace()
  host = space.planes.add(name='/host:CPU')
  names = ['gradient_tape/netD_1/conv/Conv2DBackpropFilter:Conv2DBackpropFilter',
           'render_depth/rasterize_depth/Mul:Mul', 'ExecutorState::Process',
           'fusion.3', 'while.1', 'convolution.5', 'xla: fusion.3']
  for i, name in enumerate(names, start=1):
    host.event_metadata[i].id = i
    host.event_metadata[i].name = name
  ops = host.lines.add(name='tf_Compute/1')
  for metadata_id, ms in ((1, 4), (1, 2), (2, 1), (3, 50), (7, 9)):
    ops.events.add(metadata_id=metadata_id, duration_ps=ms * 10**9)
  xla = host.lines.add(name='tf_numa_-1_Eigen/2')
  for metadata_id, ms in ((4, 3), (4, 3), (5, 20), (6, 10)):
    xla.events.add(metadata_id=metadata_id, duration_ps=ms * 10**9)
  device = space.planes.add(name='/device:GPU:0')
  device.event_metadata[1].id = 1
  device.event_metadata[1].name = 'fusion.3'
  device.lines.add(name='stream').events.add(metadata_id=1,
                                             duration_ps=10**12)
  return space


class HloOpNamesTest(tf.test.TestCase):

  def test_own_root_and_operand_metadata(self):
    names = profile.hlo_op_names(_HLO)
    self.assertEqual(names['negate.1']['op_name'], 'netD_1/neg')
    # A fusion without metadata takes its computation's ROOT's (not the
    # first instruction's).
    self.assertEqual(names['transpose_fusion.3'],
                     {'op_type': 'Transpose', 'shape': 'f32[8,4]{1,0}',
                      'op_name': 'gradient_tape/netD_1/transpose'})
    # No metadata of its own, no computation: its first operand's, marked.
    self.assertEqual(names['convolution.5']['op_name'],
                     'gradient_tape/netD_1/transpose (via operand)')
    self.assertEqual(names['convolution.5']['shape'], 'f32[8,8]{1,0}')

  def test_no_metadata_anywhere(self):
    names = profile.hlo_op_names(
        'ENTRY %m (a: f32[2]) -> f32[2] {\n'
        '  ROOT %copy.1 = f32[2]{0} copy(%a)\n}\n')
    self.assertEqual(names['copy.1'], {'op_type': '', 'op_name': '',
                                       'shape': 'f32[2]{0}'})


class AggregateTest(tf.test.TestCase):

  def test_sums_per_step_and_keeps_loops_apart(self):
    totals = profile.aggregate(_space(), steps=2)
    # TF ops: 6 ms + 1 ms over 2 steps; the executor wrapper and the event
    # with a space in its name are not ops.
    self.assertAllClose(totals['tf_ops'], {
        'gradient_tape/netD_1/conv/Conv2DBackpropFilter:'
        'Conv2DBackpropFilter': 0.003,
        'render_depth/rasterize_depth/Mul:Mul': 0.0005})
    # Kernels of the host plane only (the device plane's 1 s is ignored);
    # the loop is listed apart, not summed with the kernels.
    self.assertAllClose(totals['kernels'], {'fusion.3': 0.003,
                                            'convolution.5': 0.005})
    self.assertEqual(list(totals['kernels']), ['convolution.5', 'fusion.3'])
    self.assertAllClose(totals['loops'], {'while.1': 0.01})

  def test_summary_groups_and_names(self):
    totals = profile.aggregate(_space(), steps=2)
    hlo = {'fusion.3': {'op_type': 'Mul', 'op_name': 'render_depth/Mul',
                        'shape': 'f32[2]'},
           'convolution.5': {'op_type': 'Conv2D', 'shape': 'f32[2]',
                             'op_name': 'netD_1/conv (via operand)'}}
    summary = profile.summarise(totals, hlo, top=5)
    self.assertAllClose(summary['kernel_total_s'], 0.008)
    top = summary['top_kernels']
    self.assertEqual([k['kernel'] for k in top], ['convolution.5', 'fusion.3'])
    self.assertAllClose(top[0]['share'], 0.625)
    self.assertEqual(top[0]['op_type'], 'Conv2D')
    self.assertEqual(top[1]['op_name'], 'render_depth/Mul')
    self.assertEqual(summary['kernel_kinds'][0]['kind'], 'convolution')
    kernel_scopes = {s['scope']: s['s_per_step']
                     for s in summary['kernel_scopes']}
    self.assertAllClose(kernel_scopes, {'fwd/netD (via operand)': 0.005,
                                        'fwd/render_depth': 0.003})
    scopes = {s['scope']: s['s_per_step'] for s in summary['op_scopes']}
    self.assertAllClose(scopes, {'bwd/netD': 0.003,
                                 'fwd/render_depth': 0.0005})
    types = {s['op_type']: s['share'] for s in summary['op_types']}
    self.assertAllClose(types, {'Conv2DBackpropFilter': 6 / 7, 'Mul': 1 / 7})
    md = profile.markdown({
        'settings': {'batch': 16, 'xla': True, 'config': 'q.yml',
                     'cpu_count': 2, 'tensorflow': '2.x', 'steps': 2},
        'median_s': 0.5, 'first_s': 40.0, 'summary': summary})
    self.assertIn('| fusion.3 | 0.0030 | 37.5% | render_depth/Mul (Mul) | '
                  'f32[2] |', md)
    self.assertIn('| bwd/netD | 0.0030 | 85.7% |', md)


if __name__ == '__main__':
  tf.test.main()
