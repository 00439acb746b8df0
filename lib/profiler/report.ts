/**
 * What the profiler's records say: where each step's time went (per op, the gaps between ops,
 * and the time outside any op), as text tables, and the Chrome trace (trace event format).
 *
 * An op's time is its span on the GPU stream on CUDA (between the CUDA events around it), its
 * span on the device thread on the CPU. A gap is time between one op's end and the next op's
 * start inside a step, when the device waited for the host. "outside ops" is the rest of the
 * step's wall time: before its first op started and after its last op ended (queuing the first
 * ops, the read-back and synchronisation that end a step).
 */
import type { OpRecord } from './session';

export interface StepProfile {
  step: number;
  /** profiler clock, microseconds: beginStep and endStep on the JS thread */
  beginUs: number;
  endUs: number;
  records: OpRecord[];
}

export interface StepSummary {
  step: number;
  wallUs: number;
  opsUs: number;
  gapsUs: number;
  outsideUs: number;
  ops: number;
  maxQueueDepth: number;
}

export interface OpSummary {
  op: string;
  kernels: string;
  calls: number;
  totalUs: number;
  /** device-thread time (on CUDA the launch cost, on the CPU the op itself) */
  hostUs: number;
}

/** [begin, end] of a record on the timeline that matters for its device. */
export function span(r: OpRecord): [number, number] {
  return r.gpuBeginUs !== undefined && r.gpuEndUs !== undefined ? [r.gpuBeginUs, r.gpuEndUs] : [r.hostBeginUs, r.hostEndUs];
}

export function summarizeStep(s: StepProfile): StepSummary {
  const spans = s.records.map(span).sort((a, b) => a[0] - b[0]);
  let opsUs = 0;
  let gapsUs = 0;
  for (let i = 0; i < spans.length; i++) {
    opsUs += spans[i][1] - spans[i][0];
    if (i > 0) gapsUs += Math.max(0, spans[i][0] - spans[i - 1][1]);
  }
  const wallUs = s.endUs - s.beginUs;
  return {
    step: s.step,
    wallUs,
    opsUs,
    gapsUs,
    outsideUs: wallUs - opsUs - gapsUs,
    ops: s.records.length,
    maxQueueDepth: s.records.reduce((m, r) => Math.max(m, r.queueDepth), 0),
  };
}

/** Per op name: calls, time and kernel paths over `records`, largest total first. */
export function summarizeOps(records: OpRecord[]): OpSummary[] {
  const byOp = new Map<string, OpSummary & { paths: Set<string> }>();
  for (const r of records) {
    let o = byOp.get(r.op);
    if (!o) byOp.set(r.op, (o = { op: r.op, kernels: '', calls: 0, totalUs: 0, hostUs: 0, paths: new Set() }));
    const [b, e] = span(r);
    o.calls++;
    o.totalUs += e - b;
    o.hostUs += r.hostEndUs - r.hostBeginUs;
    o.paths.add(r.kernels);
  }
  return [...byOp.values()]
    .map(({ paths, ...o }) => ({ ...o, kernels: [...paths].sort().join(',') }))
    .sort((a, b) => b.totalUs - a.totalUs);
}

export function formatTable(header: string[], rows: Array<Array<string | number>>): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  return [line(cells[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

const ms = (us: number) => (us / 1000).toFixed(3);
const pct = (part: number, whole: number) => (whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '-');

/**
 * The per-step table, then the per-op table averaged over the steps (step 1, which warms caches
 * and allocators, is left out of the average when there are more). Without steps, the per-op
 * table covers every recorded op.
 */
export function profileTables(steps: StepProfile[], loose: OpRecord[]): string {
  const out: string[] = [];
  if (steps.length > 0) {
    const summaries = steps.map(summarizeStep);
    out.push(
      'seqtune profile: per step (ms; op time on the GPU stream for CUDA ops, on the device thread for CPU ops)',
      formatTable(
        ['step', 'wall', 'in ops', 'gaps between ops', 'outside ops', 'ops', 'max queue'],
        summaries.map((s) => [s.step, ms(s.wallUs), ms(s.opsUs), ms(s.gapsUs), ms(s.outsideUs), s.ops, s.maxQueueDepth]),
      ),
    );
    const counted = steps.length > 1 ? steps.slice(1) : steps;
    const sums = counted.map(summarizeStep);
    const n = counted.length;
    const wall = sums.reduce((a, s) => a + s.wallUs, 0) / n;
    const ops = summarizeOps(counted.flatMap((s) => s.records));
    const which = steps.length > 1 ? `steps ${counted[0].step}-${counted[n - 1].step}` : `step ${counted[0].step}`;
    out.push(
      '',
      `seqtune profile: where a step's time goes (mean of ${which}; share of the step's wall time)`,
      formatTable(
        ['op', 'kernel', 'calls/step', 'ms/step', 'share', 'us/call', 'host us/call'],
        [
          ...ops.map((o) => [o.op, o.kernels, +(o.calls / n).toFixed(2), ms(o.totalUs / n), pct(o.totalUs / n, wall), (o.totalUs / o.calls).toFixed(1), (o.hostUs / o.calls).toFixed(1)]),
          ['(gaps between ops)', '', '', ms(sums.reduce((a, s) => a + s.gapsUs, 0) / n), pct(sums.reduce((a, s) => a + s.gapsUs, 0) / n, wall), '', ''],
          ['(outside ops)', '', '', ms(sums.reduce((a, s) => a + s.outsideUs, 0) / n), pct(sums.reduce((a, s) => a + s.outsideUs, 0) / n, wall), '', ''],
          ['step wall', '', '', ms(wall), '100.0%', '', ''],
        ],
      ),
    );
  }
  if (loose.length > 0) {
    const ops = summarizeOps(loose);
    const total = ops.reduce((a, o) => a + o.totalUs, 0);
    out.push(
      '',
      `seqtune profile: ops outside training steps (${loose.length} ops, ${ms(total)} ms in ops)`,
      formatTable(
        ['op', 'kernel', 'calls', 'ms', 'share of op time', 'us/call'],
        ops.map((o) => [o.op, o.kernels, o.calls, ms(o.totalUs), pct(o.totalUs, total), (o.totalUs / o.calls).toFixed(1)]),
      ),
    );
  }
  if (out.length === 0) out.push('seqtune profile: no ops were recorded');
  return out.join('\n');
}

interface TraceEvent {
  name: string;
  ph: 'X' | 'M';
  pid: number;
  tid: number;
  ts?: number;
  dur?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

const HOST = 1;
const JS_THREAD = 1;

/**
 * Trace events: process 1 is the host (the JS thread with the steps, one track per device
 * thread with the ops as it ran them), and each CUDA device's stream is a process of its own.
 */
export function traceEvents(steps: StepProfile[], loose: OpRecord[]): TraceEvent[] {
  const events: TraceEvent[] = [
    { name: 'process_name', ph: 'M', pid: HOST, tid: 0, args: { name: 'seqtune host' } },
    { name: 'thread_name', ph: 'M', pid: HOST, tid: JS_THREAD, args: { name: 'JS thread (steps)' } },
  ];
  const tracks = new Map<string, { thread: number; stream: number }>();
  const trackOf = (device: string) => {
    let t = tracks.get(device);
    if (!t) {
      t = { thread: 2 + tracks.size, stream: 2 + tracks.size };
      tracks.set(device, t);
      events.push({ name: 'thread_name', ph: 'M', pid: HOST, tid: t.thread, args: { name: `${device} device thread` } });
    }
    return t;
  };
  for (const s of steps) {
    events.push({ name: `step ${s.step}`, ph: 'X', pid: HOST, tid: JS_THREAD, ts: s.beginUs, dur: s.endUs - s.beginUs, cat: 'step', args: { ...summarizeStep(s) } });
  }
  const streams = new Set<string>();
  for (const r of [...loose, ...steps.flatMap((s) => s.records)]) {
    const t = trackOf(r.device);
    const args = { inputs: r.inputs, outputs: r.outputs, kernels: r.kernels, queueDepth: r.queueDepth, queuedUs: r.queuedUs, failed: r.failed };
    events.push({ name: r.op, ph: 'X', pid: HOST, tid: t.thread, ts: r.hostBeginUs, dur: r.hostEndUs - r.hostBeginUs, cat: r.kernels, args });
    if (r.gpuBeginUs !== undefined && r.gpuEndUs !== undefined) {
      if (!streams.has(r.device)) {
        streams.add(r.device);
        events.push({ name: 'process_name', ph: 'M', pid: t.stream, tid: 0, args: { name: `${r.device} GPU stream` } });
        events.push({ name: 'thread_name', ph: 'M', pid: t.stream, tid: 1, args: { name: 'stream (CUDA events)' } });
      }
      events.push({ name: r.op, ph: 'X', pid: t.stream, tid: 1, ts: r.gpuBeginUs, dur: r.gpuEndUs - r.gpuBeginUs, cat: r.kernels, args });
    }
  }
  return events;
}
