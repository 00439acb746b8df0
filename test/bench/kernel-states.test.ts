/**
 * Which kernels a benchmark row ran: the child that ran them reports its Hopper kernels' states,
 * the result's device.hopper_kernels is the children's common value (or says they differ), and
 * each table prints a row's states without the reasons.
 */
import t from 'tap';
import { hopperKernelsNow, kernelsCell, kernelsOfChildren } from '../../bench/common/report';

t.test('children decide device.hopper_kernels; cells drop the reasons', async (t) => {
  const on = { gemm: 'on', attentionForward: 'on', attentionBackward: 'on' };
  const off = { gemm: 'on', attentionForward: 'off: problem 2 (token 7): 0.5', attentionBackward: 'on' };
  t.same(kernelsOfChildren([on, { ...on }]), on, 'rows that agree');
  t.equal(kernelsOfChildren([on, off]), 'differs per row');
  t.same(kernelsOfChildren([undefined, off]), off, 'a failed child does not count');
  t.equal(kernelsOfChildren([undefined]), 'no child reported');
  t.equal(kernelsOfChildren([null, null]), null, 'children on a GPU without Hopper kernels (or the CPU)');
  t.equal(kernelsCell(off), 'gemm on, attentionForward off, attentionBackward on');
  t.equal(kernelsCell(null), '-');
  t.equal(hopperKernelsNow('cpu'), null, 'the CPU has none');
});
