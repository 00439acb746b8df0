/** Timing helpers of the CPU data benchmarks (bench/data-augment.ts, bench/tokenize.ts). */

export const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

/** Wall and CPU seconds of fn (CPU: user + system of this process). */
export async function timed<T>(fn: () => Promise<T> | T): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const c = process.cpuUsage(c0);
  return { value, wall: (performance.now() - t0) / 1000, cpu: (c.user + c.system) / 1e6 };
}
