/** Bounded concurrency for the endpoint-driven strategies. */

/** At most `limit` holders at once; the others wait in arrival order. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      // hand the slot straight to the next waiter, so `active` never dips and lets a newcomer jump the queue
      if (next) next();
      else this.active--;
    }
  }
}

/**
 * Maps an async source through `fn` with up to `concurrency` calls in flight, yielding results in
 * source order. Results finished ahead of a slow one wait in a window of at most 4 × concurrency,
 * so memory stays bounded. The first error stops new calls and is rethrown once in-flight ones settle.
 */
export async function* orderedMap<T, R>(source: AsyncIterable<T>, concurrency: number, fn: (item: T) => Promise<R>): AsyncGenerator<R> {
  const window = Math.max(1, concurrency) * 4;
  const pending: Array<Promise<{ ok: true; value: R } | { ok: false; error: unknown }>> = [];
  const limiter = new Limiter(Math.max(1, concurrency));
  const it = source[Symbol.asyncIterator]();
  let exhausted = false;
  let failure = false;
  try {
    for (;;) {
      while (!exhausted && !failure && pending.length < window) {
        const next = await it.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        const p = limiter.run(() => fn(next.value)).then(
          (value) => ({ ok: true as const, value }),
          (error: unknown) => ({ ok: false as const, error }),
        );
        pending.push(p);
        // stop launching as soon as any call fails
        void p.then((r) => {
          if (!r.ok) failure = true;
        });
      }
      const head = pending.shift();
      if (!head) break;
      const result = await head;
      if (!result.ok) {
        await Promise.all(pending);
        throw result.error;
      }
      yield result.value;
    }
  } finally {
    if (!exhausted) await it.return?.(undefined);
  }
}
