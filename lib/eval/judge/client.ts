/**
 * A client for an OpenAI-compatible chat-completions endpoint, for LLM judging. Transport
 * failures never throw: they come back as an `error` outcome (after retries) so the caller can
 * count them. The API key comes only from SEQTUNE_JUDGE_API_KEY and is masked in every text the
 * client returns, in case a server echoes the request headers back.
 */
import { SeqtuneError } from '../../errors';

export const JUDGE_KEY_ENV = 'SEQTUNE_JUDGE_API_KEY';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface JudgeClientOptions {
  /** base URL (e.g. http://host/v1) or the full .../chat/completions URL */
  endpoint: string;
  model: string;
  /** requests in flight at once; default 4 */
  concurrency?: number;
  /** retries after the first attempt; default 3 */
  maxRetries?: number;
  /** per attempt; default 120 s */
  timeoutMs?: number;
  /** first retry delay, doubled each retry; default 1 s */
  backoffMs?: number;
  /** max_tokens sent with each request; default 1024 */
  maxTokens?: number;
}

export type ChatOutcome =
  | { kind: 'reply'; content: string; refusal: string | null; finishReason: string | null; attempts: number }
  | { kind: 'error'; message: string; status: number | null; timedOut: boolean; attempts: number };

export interface ClientStats {
  requests: number;
  retries: number;
  timeouts: number;
}

// 409 and 408 are transient in practice (conflicting/slow upstream); other 4xx will not improve
const RETRYABLE_STATUS = new Set([408, 409, 429]);
const MAX_DELAY_MS = 60_000;

function completionsUrl(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new SeqtuneError(`--judge-endpoint is not a URL: '${endpoint}'`, 'ERR_ARGUMENT');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new SeqtuneError(`--judge-endpoint must be http(s), got '${url.protocol}'`, 'ERR_ARGUMENT');
  if (!url.pathname.endsWith('/chat/completions')) url.pathname = `${url.pathname.replace(/\/+$/, '')}/chat/completions`;
  return url.toString();
}

function intOption(name: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min) throw new SeqtuneError(`${name} must be an integer >= ${min}, got ${v}`, 'ERR_ARGUMENT');
  return v;
}

type Attempt = { done: ChatOutcome } | { retry: { message: string; status: number | null; timedOut: boolean; delayMs: number } };

export class JudgeClient {
  readonly url: string;
  private readonly model: string;
  private readonly key: string | undefined;
  private readonly concurrency: number;
  private readonly maxRetries: number;
  private readonly timeoutMs: number;
  private readonly backoffMs: number;
  private readonly maxTokens: number;
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly counters: ClientStats = { requests: 0, retries: 0, timeouts: 0 };

  constructor(options: JudgeClientOptions) {
    this.url = completionsUrl(options.endpoint);
    if (!options.model) throw new SeqtuneError('--judge-model is required with --judge-endpoint', 'ERR_ARGUMENT');
    this.model = options.model;
    const key = process.env[JUDGE_KEY_ENV];
    this.key = key === undefined || key === '' ? undefined : key;
    this.concurrency = intOption('judge concurrency', options.concurrency, 4, 1);
    this.maxRetries = intOption('judge retries', options.maxRetries, 3, 0);
    this.timeoutMs = intOption('judge timeout (ms)', options.timeoutMs, 120_000, 1);
    this.backoffMs = intOption('judge backoff (ms)', options.backoffMs, 1000, 0);
    this.maxTokens = intOption('judge max tokens', options.maxTokens, 1024, 1);
  }

  stats(): ClientStats {
    return { ...this.counters };
  }

  /** Removes the API key from a text that may hold a server's echo of the request. */
  redact(text: string): string {
    return this.key ? text.split(this.key).join('[redacted]') : text;
  }

  async complete(messages: ChatMessage[]): Promise<ChatOutcome> {
    await this.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        const result = await this.attempt(messages, attempt);
        if ('done' in result) return result.done;
        if (attempt > this.maxRetries) return { kind: 'error', message: result.retry.message, status: result.retry.status, timedOut: result.retry.timedOut, attempts: attempt };
        this.counters.retries++;
        await new Promise((r) => setTimeout(r, result.retry.delayMs));
      }
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    if (this.active < this.concurrency) {
      this.active++;
      return;
    }
    // the releasing request hands its slot over directly, so `active` stays at the limit
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active--;
  }

  private backoff(attempt: number, retryAfter: string | null): number {
    const exponential = this.backoffMs * 2 ** (attempt - 1);
    const server = retryAfter !== null && /^\d+$/.test(retryAfter.trim()) ? Number(retryAfter) * 1000 : 0;
    return Math.min(MAX_DELAY_MS, Math.max(exponential, server));
  }

  private async attempt(messages: ChatMessage[], attempt: number): Promise<Attempt> {
    this.counters.requests++;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.key) headers.authorization = `Bearer ${this.key}`;
    const body = JSON.stringify({ model: this.model, messages, temperature: 0, max_tokens: this.maxTokens });
    let status: number | null = null;
    try {
      // one deadline for the headers and the body: a server that stalls mid-body is slow too
      const response = await fetch(this.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(this.timeoutMs) });
      status = response.status;
      const text = await response.text();
      if (!response.ok) {
        const message = this.redact(`HTTP ${status}: ${text.slice(0, 300)}`);
        if (status >= 500 || RETRYABLE_STATUS.has(status)) return { retry: { message, status, timedOut: false, delayMs: this.backoff(attempt, response.headers.get('retry-after')) } };
        return { done: { kind: 'error', message, status, timedOut: false, attempts: attempt } };
      }
      const reply = this.parseReply(text, attempt);
      if (reply) return { done: reply };
      return { retry: { message: this.redact(`HTTP ${status} without a chat completion: ${text.slice(0, 300)}`), status, timedOut: false, delayMs: this.backoff(attempt, null) } };
    } catch (error) {
      const e = error as Error;
      const timedOut = e.name === 'TimeoutError' || e.name === 'AbortError';
      if (timedOut) this.counters.timeouts++;
      const message = timedOut ? `no answer within ${this.timeoutMs} ms` : this.redact(`request failed: ${e.message}${e.cause ? ` (${String((e.cause as Error).message ?? e.cause)})` : ''}`);
      return { retry: { message, status, timedOut, delayMs: this.backoff(attempt, null) } };
    }
  }

  private parseReply(text: string, attempt: number): ChatOutcome | null {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return null;
    }
    const choice = (json as { choices?: unknown[] })?.choices?.[0] as { message?: { content?: unknown; refusal?: unknown }; finish_reason?: unknown } | undefined;
    const message = choice?.message;
    if (!message || (typeof message.content !== 'string' && message.content !== null && message.content !== undefined)) return null;
    return {
      kind: 'reply',
      content: this.redact(typeof message.content === 'string' ? message.content : ''),
      refusal: typeof message.refusal === 'string' && message.refusal !== '' ? this.redact(message.refusal) : null,
      finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null,
      attempts: attempt,
    };
  }
}
