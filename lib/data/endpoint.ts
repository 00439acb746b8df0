/**
 * An LLM behind an OpenAI-compatible chat endpoint (vLLM, llama.cpp server, OpenAI...), for the
 * paraphrase, translate and seq-instruct strategies. The API key comes only from an environment
 * variable (SEQTUNE_API_KEY unless named otherwise) and is never logged, written or put in errors.
 *
 * Requests are limited to `concurrency` at once. Network errors, timeouts, 408/409/429/5xx and
 * bodies without a completion are retried with exponential backoff (Retry-After honoured); other
 * 4xx answers fail at once. What fails after the retries is an ERR_IO for the caller to stop on:
 * the record-producing runs are resumable, so a rerun continues where it stopped.
 */
import { SeqtuneError } from '../errors';
import { Limiter } from './concurrency';
import { ChatMessage } from './records';

export interface ChatRequest {
  messages: ChatMessage[];
  temperature?: number;
  top_p?: number;
  /** not in OpenAI's API; vLLM accepts it */
  top_k?: number;
  max_tokens?: number;
}

/** What the strategies need from a model: the assistant text for some messages. */
export interface ChatClient {
  complete(request: ChatRequest): Promise<string>;
}

export interface EndpointStats {
  requests: number;
  retries: number;
}

export interface EndpointOptions {
  /** base URL (…/v1) or the full …/chat/completions URL */
  endpoint: string;
  model: string;
  /** environment variable holding the API key (default SEQTUNE_API_KEY); none set: no auth header */
  apiKeyEnv?: string;
  /** concurrent requests (default 8) */
  concurrency?: number;
  /** attempts after the first (default 4) */
  retries?: number;
  /** first backoff in ms, doubled each retry with jitter (default 500) */
  backoffMs?: number;
  /** per-request timeout in ms (default 120000) */
  timeoutMs?: number;
}

const RETRY_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504]);

class Retryable extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

function chatUrl(endpoint: string): string {
  const base = endpoint.replace(/\/+$/, '');
  return base.endsWith('/chat/completions') ? base : `${base}/chat/completions`;
}

export class OpenAIChatClient implements ChatClient {
  readonly stats: EndpointStats = { requests: 0, retries: 0 };
  private readonly url: string;
  private readonly limiter: Limiter;

  constructor(private readonly options: EndpointOptions) {
    try {
      this.url = chatUrl(new URL(options.endpoint).toString());
    } catch {
      throw new SeqtuneError(`--endpoint is not a URL: '${options.endpoint}'`, 'ERR_ARGUMENT');
    }
    if (!options.model) throw new SeqtuneError('an endpoint needs a model name (--model)', 'ERR_ARGUMENT');
    this.limiter = new Limiter(Math.max(1, options.concurrency ?? 8));
  }

  async complete(request: ChatRequest): Promise<string> {
    return this.limiter.run(async () => {
      const retries = this.options.retries ?? 4;
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.once(request);
        } catch (error) {
          if (!(error instanceof Retryable)) throw error;
          if (attempt >= retries) {
            throw new SeqtuneError(`${this.url}: gave up after ${attempt + 1} attempts: ${error.message}`, 'ERR_IO');
          }
          this.stats.retries++;
          const base = (this.options.backoffMs ?? 500) * 2 ** attempt;
          const wait = error.retryAfterMs ?? base * (0.5 + Math.random() / 2);
          await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 60_000)));
        }
      }
    });
  }

  private async once(request: ChatRequest): Promise<string> {
    this.stats.requests++;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    const key = process.env[this.options.apiKeyEnv ?? 'SEQTUNE_API_KEY'];
    if (key) headers.authorization = `Bearer ${key}`;
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ model: this.options.model, ...request }),
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 120_000),
      });
    } catch (error) {
      const e = error as Error;
      throw new Retryable(e.name === 'TimeoutError' ? 'request timed out' : `request failed: ${e.message}`);
    }
    const text = await response.text().catch(() => '');
    if (!response.ok) {
      // a server may echo request headers: never let the key reach a message
      const snippet = (key ? text.split(key).join('***') : text).slice(0, 200).replace(/\s+/g, ' ');
      const message = `HTTP ${response.status}: ${snippet}`;
      if (RETRY_STATUS.has(response.status)) {
        const header = response.headers.get('retry-after');
        const after = header === null ? NaN : Number(header);
        throw new Retryable(message, Number.isFinite(after) && after >= 0 ? after * 1000 : undefined);
      }
      throw new SeqtuneError(`${this.url}: ${message}`, 'ERR_IO');
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Retryable('the response body is not JSON');
    }
    const content = (body as { choices?: Array<{ message?: { content?: unknown } }> }).choices?.[0]?.message?.content;
    if (typeof content !== 'string') throw new Retryable('the response has no choices[0].message.content');
    return content;
  }
}
