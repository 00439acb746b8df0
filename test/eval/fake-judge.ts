/**
 * A fake OpenAI-compatible chat-completions server on 127.0.0.1 for the judge tests. Each SeqEval
 * instruction carries a case tag ("[followed]", "[http-500-once]", ...) that picks the server's
 * behaviour for requests about it, so the expected counts can be worked out by hand.
 */
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export interface SeenRequest {
  path: string;
  authorization: string | undefined;
  body: { model: string; temperature: number; messages: { role: string; content: string }[] };
  tag: string;
  pairwise: boolean;
}

const steps = (flags: [boolean, boolean][]) =>
  JSON.stringify({ steps: flags.map(([carried, order], i) => ({ step: i + 1, carried_out: carried, in_order: order })) });

const LIST = 'Sub-instructions:\n1. Answer the question.\n2. Summarise the answer.\n\nThe response answers and then summarises.\n';

export function completion(content: string, extra: { refusal?: string; finish?: string } = {}): string {
  return JSON.stringify({
    id: 'chatcmpl-test',
    object: 'chat.completion',
    choices: [{ index: 0, message: { role: 'assistant', content, ...(extra.refusal ? { refusal: extra.refusal } : {}) }, finish_reason: extra.finish ?? 'stop' }],
  });
}

export class FakeJudge {
  readonly seen: SeenRequest[] = [];
  /** 1 or 2: "[flaky-phase]" fails in phase 1 and answers in phase 2 */
  phase = 1;
  maxInFlight = 0;
  private inFlight = 0;
  private readonly perTag = new Map<string, number>();
  private server = createServer((req, res) => this.handle(req, res));

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  tagsSeen(): string[] {
    return this.seen.map((s) => s.tag);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    res.on('close', () => this.inFlight--);
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const body = JSON.parse(raw) as SeenRequest['body'];
      const user = body.messages.find((m) => m.role === 'user')!.content;
      const tag = /\[([a-z0-9-]+)\]/.exec(user)?.[1] ?? 'followed';
      const pairwise = user.includes('<response_a>');
      this.seen.push({ path: req.url ?? '', authorization: req.headers.authorization, body, tag, pairwise });
      const key = `${pairwise}:${user}`;
      const count = (this.perTag.get(key) ?? 0) + 1;
      this.perTag.set(key, count);
      if (pairwise) this.pairwise(tag, user, res);
      else this.follow(tag, count, req, res);
    });
  }

  private send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}, delayMs = 0): void {
    const write = () => {
      if (res.destroyed) return;
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };
    if (delayMs) setTimeout(write, delayMs);
    else write();
  }

  private follow(tag: string, count: number, req: IncomingMessage, res: ServerResponse): void {
    const ok = (flags: [boolean, boolean][] = [[true, true], [true, true]]) => this.send(res, 200, completion(`${LIST}\n\`\`\`json\n${steps(flags)}\n\`\`\``));
    switch (tag) {
      case 'not-followed':
        return ok([[true, true], [false, false]]);
      case 'out-of-order':
        return ok([[true, false], [true, true]]);
      case 'refusal-field':
        return this.send(res, 200, completion('', { refusal: 'I cannot evaluate this content.' }));
      case 'refusal-text':
        return this.send(res, 200, completion("I'm sorry, but I can't help with evaluating this."));
      case 'filter':
        return this.send(res, 200, completion('', { finish: 'content_filter' }));
      case 'no-json':
        return this.send(res, 200, completion(`${LIST}\nVerdict: everything was followed.`));
      case 'count-mismatch':
        return this.send(res, 200, completion(`${LIST}\n\`\`\`json\n${steps([[true, true]])}\n\`\`\``));
      case 'bad-type':
        return this.send(res, 200, completion(`${LIST}\n\`\`\`json\n{"steps": [{"step": 1, "carried_out": "yes", "in_order": true}, {"step": 2, "carried_out": true, "in_order": true}]}\n\`\`\``));
      case 'http-400':
        return this.send(res, 400, JSON.stringify({ error: { message: 'bad request' } }));
      case 'echo-key':
        return this.send(res, 401, JSON.stringify({ error: `invalid key in header: ${req.headers.authorization}` }));
      case 'http-500-once':
        return count === 1 ? this.send(res, 500, '{"error": "overloaded"}') : ok();
      case 'http-500-always':
        return this.send(res, 503, '{"error": "down"}');
      case '429':
        return count === 1 ? this.send(res, 429, '{"error": "slow down"}', { 'retry-after': '0' }) : ok();
      case 'slow-once':
        return count === 1 ? this.send(res, 200, completion('late'), {}, 2500) : ok();
      case 'slow-always':
        return this.send(res, 200, completion('late'), {}, 2500);
      case 'flaky-phase':
        return this.phase === 1 ? this.send(res, 500, '{"error": "flaky"}') : ok();
      case 'not-json':
        return this.send(res, 200, 'this is not json');
      default:
        // a little latency so concurrent requests overlap
        setTimeout(() => ok(), 20);
    }
  }

  private pairwise(tag: string, user: string, res: ServerResponse): void {
    const a = /<response_a>\n([\s\S]*?)\n<\/response_a>/.exec(user)![1];
    const b = /<response_b>\n([\s\S]*?)\n<\/response_b>/.exec(user)![1];
    const verdict = (winner: string) => this.send(res, 200, completion(`Sub-instructions:\n1. Do it.\n\nComparison done.\n\`\`\`json\n{"winner": "${winner}"}\n\`\`\``));
    if (tag === 'pair-biased') return verdict('A');
    if (tag === 'pair-bad') return verdict('C');
    const goodA = a.includes('GOOD');
    const goodB = b.includes('GOOD');
    return verdict(goodA === goodB ? 'tie' : goodA ? 'A' : 'B');
  }
}
