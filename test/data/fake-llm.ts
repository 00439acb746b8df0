/**
 * A fake OpenAI-compatible chat server on 127.0.0.1 for the endpoint tests: real HTTP, with a
 * scriptable answer per request (status, body, delay), the requests it saw, and the most requests
 * it had in flight at once. Closed by the test that started it.
 */
import { createServer, IncomingMessage, Server } from 'node:http';
import { AddressInfo } from 'node:net';

export interface FakeRequest {
  body: { model: string; messages: Array<{ role: string; content: string }>; [k: string]: unknown };
  authorization?: string;
}

export interface FakeAnswer {
  status?: number;
  /** an assistant text (wrapped as a completion) or a raw body string */
  content?: string;
  raw?: string;
  delayMs?: number;
  headers?: Record<string, string>;
}

export interface FakeServer {
  url: string;
  requests: FakeRequest[];
  maxInFlight: number;
  close(): Promise<void>;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

export async function startFakeLlm(answer: (request: FakeRequest, n: number) => FakeAnswer): Promise<FakeServer> {
  let inFlight = 0;
  const state = { requests: [] as FakeRequest[], maxInFlight: 0 };
  const server: Server = createServer(async (req, res) => {
    inFlight++;
    state.maxInFlight = Math.max(state.maxInFlight, inFlight);
    try {
      const request: FakeRequest = { body: JSON.parse(await readBody(req)), authorization: req.headers.authorization };
      const n = state.requests.push(request) - 1;
      const a = answer(request, n);
      if (a.delayMs) await new Promise((r) => setTimeout(r, a.delayMs));
      const body = a.raw ?? JSON.stringify({ id: `c${n}`, object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: a.content ?? '' }, finish_reason: 'stop' }] });
      if (!res.destroyed) {
        res.writeHead(a.status ?? 200, { 'content-type': 'application/json', ...(a.headers ?? {}) });
        res.end(body);
      }
    } finally {
      inFlight--;
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    get requests() {
      return state.requests;
    },
    get maxInFlight() {
      return state.maxInFlight;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
