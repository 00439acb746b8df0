import t from 'tap';
import { OpenAIChatClient } from '../../lib/data/endpoint';
import { orderedMap } from '../../lib/data/concurrency';
import { isSeqtuneError, SeqtuneError } from '../../lib/errors';
import { FakeAnswer, startFakeLlm } from './fake-llm';

const messages = [{ role: 'user' as const, content: 'hello' }];

async function withServer(answer: (n: number) => FakeAnswer, fn: (url: string, server: Awaited<ReturnType<typeof startFakeLlm>>) => Promise<void>) {
  const server = await startFakeLlm((_, n) => answer(n));
  try {
    await fn(server.url, server);
  } finally {
    await server.close();
  }
}

t.test('a completion, with the key from the named env var as a bearer token', async (t) => {
  process.env.SEQTUNE_TEST_KEY = 'sk-test-secret';
  await withServer(
    () => ({ content: 'hi there' }),
    async (url, server) => {
      const client = new OpenAIChatClient({ endpoint: url, model: 'm1', apiKeyEnv: 'SEQTUNE_TEST_KEY' });
      t.equal(await client.complete({ messages, temperature: 0, max_tokens: 5 }), 'hi there');
      t.equal(server.requests[0].authorization, 'Bearer sk-test-secret');
      t.same(server.requests[0].body, { model: 'm1', messages, temperature: 0, max_tokens: 5 });
      const noKey = new OpenAIChatClient({ endpoint: `${url}/chat/completions`, model: 'm1', apiKeyEnv: 'SEQTUNE_TEST_UNSET' });
      await noKey.complete({ messages });
      t.equal(server.requests[1].authorization, undefined, 'no key: no auth header');
    },
  );
});

t.test('errors never reveal the key, even when the server echoes it', async (t) => {
  process.env.SEQTUNE_TEST_KEY = 'sk-test-secret';
  await withServer(
    () => ({ status: 401, raw: '{"error": "bad key Bearer sk-test-secret"}' }),
    async (url, server) => {
      const client = new OpenAIChatClient({ endpoint: url, model: 'm', apiKeyEnv: 'SEQTUNE_TEST_KEY', retries: 3 });
      try {
        await client.complete({ messages });
        t.fail('should fail');
      } catch (error) {
        t.ok(isSeqtuneError(error, 'ERR_IO'));
        t.match((error as Error).message, /HTTP 401/);
        t.notMatch((error as Error).message, /sk-test-secret/);
      }
      t.equal(server.requests.length, 1, '4xx other than 408/409/425/429 is not retried');
    },
  );
});

t.test('5xx, 429 with Retry-After, malformed bodies and timeouts are retried', async (t) => {
  const script: FakeAnswer[] = [
    { status: 500, raw: 'oops' },
    { status: 429, raw: '{}', headers: { 'retry-after': '0' } },
    { raw: 'not json' },
    { raw: '{"choices": []}' },
    { delayMs: 400, content: 'late' },
    { content: 'finally' },
  ];
  await withServer(
    (n) => script[Math.min(n, script.length - 1)],
    async (url, server) => {
      const client = new OpenAIChatClient({ endpoint: url, model: 'm', retries: 6, backoffMs: 1, timeoutMs: 150 });
      t.equal(await client.complete({ messages }), 'finally');
      t.equal(client.stats.retries, 5);
      t.equal(server.requests.length, 6);
    },
  );
});

t.test('giving up after the retries is an ERR_IO naming the last problem', async (t) => {
  await withServer(
    () => ({ raw: '{"choices": [{"message": {"content": null}}]}' }),
    async (url, server) => {
      const client = new OpenAIChatClient({ endpoint: url, model: 'm', retries: 2, backoffMs: 1 });
      await t.rejects(client.complete({ messages }), /gave up after 3 attempts: the response has no choices\[0\]\.message\.content/);
      t.equal(server.requests.length, 3);
    },
  );
  const closed = new OpenAIChatClient({ endpoint: 'http://127.0.0.1:9/v1', model: 'm', retries: 1, backoffMs: 1 });
  await t.rejects(closed.complete({ messages }), /gave up after 2 attempts: request failed/);
});

t.test('requests are limited to the concurrency', async (t) => {
  await withServer(
    () => ({ delayMs: 30, content: 'ok' }),
    async (url, server) => {
      const client = new OpenAIChatClient({ endpoint: url, model: 'm', concurrency: 3 });
      const all = await Promise.all(Array.from({ length: 12 }, () => client.complete({ messages })));
      t.equal(all.length, 12);
      t.equal(server.maxInFlight, 3, 'exactly the limit in flight at the peak');
    },
  );
});

t.test('bad configuration', async (t) => {
  for (const [options, pattern] of [
    [{ endpoint: 'not a url', model: 'm' }, /not a URL/],
    [{ endpoint: 'http://127.0.0.1:1/v1', model: '' }, /needs a model/],
  ] as const) {
    try {
      new OpenAIChatClient(options);
      t.fail('should throw');
    } catch (error) {
      t.equal((error as SeqtuneError).code, 'ERR_ARGUMENT');
      t.match((error as Error).message, pattern);
    }
  }
});

t.test('orderedMap keeps source order under out-of-order completion and stops on error', async (t) => {
  async function* numbers(n: number) {
    for (let i = 0; i < n; i++) yield i;
  }
  const got: number[] = [];
  let active = 0;
  let peak = 0;
  for await (const v of orderedMap(numbers(40), 4, async (i) => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setTimeout(r, (i * 7) % 13));
    active--;
    return i * 2;
  })) got.push(v);
  t.same(got, Array.from({ length: 40 }, (_, i) => i * 2));
  t.equal(peak, 4);
  const seen: number[] = [];
  await t.rejects(
    (async () => {
      for await (const v of orderedMap(numbers(100), 2, async (i) => {
        if (i === 5) throw new Error('boom');
        return i;
      })) seen.push(v);
    })(),
    /boom/,
  );
  t.same(seen, [0, 1, 2, 3, 4], 'results before the failure are delivered, none after');
});
