import t from 'tap';
import { devices, resolveDevice } from '../../lib/device';
import { opSupport } from '../../lib/ops';
import { zeros } from '../../lib/tensor';

t.test('devices() reports the build and the GPUs or why none is usable', async (t) => {
  const report = devices();
  t.match(report.version, /^\d+\.\d+\.\d+/);
  t.ok(report.cpuThreads >= 1);
  if (report.gpus.some((g) => g.usable)) {
    t.ok(report.cuda.compiled);
  } else {
    t.type(report.cuda.unusableReason, 'string', `reason: ${report.cuda.unusableReason}`);
    t.ok((report.cuda.unusableReason ?? '').length > 10);
  }
  if (report.cuda.compiled) t.ok(report.cuda.architectures.length > 0);
});

t.test('auto falls back to the CPU with a reason; explicit cuda fails instead', async (t) => {
  const usable = devices().gpus.find((g) => g.usable);
  const auto = resolveDevice('auto');
  if (usable) {
    t.equal(auto.device, `cuda:${usable.index}`);
  } else {
    t.equal(auto.device, 'cpu');
    t.ok(auto.fallbackReason && auto.fallbackReason.length > 0);
    t.throws(() => resolveDevice('cuda:0'), { code: 'ERR_DEVICE' });
    t.throws(() => zeros([2], { device: 'cuda:0' }), { code: 'ERR_DEVICE' });
  }
  t.equal(resolveDevice('cpu').device, 'cpu');
  t.throws(() => resolveDevice('gpu'), { code: 'ERR_DEVICE' });
  t.throws(() => resolveDevice('cuda:x'), { code: 'ERR_DEVICE' });
});

t.test('op support lists every op with its CUDA availability', async (t) => {
  const ops = opSupport();
  for (const name of ['add', 'cast', 'sum', 'randomNormal']) t.ok(ops.has(name), name);
  if (!devices().cuda.compiled) t.ok([...ops.values()].every((o) => !o.cuda));
});
