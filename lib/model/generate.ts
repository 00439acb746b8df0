/**
 * Batched generation with a KV cache: prompts of different lengths are prefilled together as one
 * packed batch, then each step feeds one token per unfinished sequence (finished ones contribute
 * an empty document), attends against the per-layer caches [B, Hkv, maxTokens, D] and samples on
 * the host. Stops on EOS, on a stop string (cut from the text), or at maxNewTokens.
 */
import { SeqtuneError } from '../errors';
import { HostRng } from '../rng';
import { scope, tensor, Tensor, zeros } from '../tensor';
import type { TextTokenizer } from '../text-tokenizer';
import { CacheContext } from './block';
import { LlamaModel } from './llama';
import { sampleToken, SamplingOptions } from './sampling';

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  stop?: string[];
  /** seed of the host RNG used when temperature > 0 */
  seed?: number;
  /** prepend BOS to each prompt (default: when the tokenizer has one) */
  addBos?: boolean;
  /** called as each sequence's text grows */
  onToken?: (sequence: number, token: number, text: string) => void;
}

export interface Generation {
  text: string;
  tokens: number[];
  finishReason: 'eos' | 'stop' | 'length';
}

function i32(data: number[] | Int32Array, device: string): Tensor {
  return tensor(Int32Array.from(data), [data.length], { dtype: 'i32', device });
}

function cutAtStop(text: string, stops: readonly string[]): string | null {
  let cut = -1;
  for (const s of stops) {
    const at = s ? text.indexOf(s) : -1;
    if (at >= 0 && (cut < 0 || at < cut)) cut = at;
  }
  return cut >= 0 ? text.slice(0, cut) : null;
}

export async function generate(
  model: LlamaModel,
  tokenizer: TextTokenizer,
  prompts: string[],
  options: GenerateOptions,
): Promise<Generation[]> {
  if (!Array.isArray(prompts) || prompts.some((p) => typeof p !== 'string')) {
    const bad = Array.isArray(prompts) ? prompts.findIndex((p) => typeof p !== 'string') : -1;
    throw new SeqtuneError(
      `generate: prompts must be an array of strings${bad >= 0 ? `; prompt ${bad} is a ${typeof prompts[bad]} (${JSON.stringify(prompts[bad])})` : `, got ${typeof prompts}`} (token ids go through the tokenizer's decode first)`,
      'ERR_ARGUMENT',
    );
  }
  if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 1) {
    throw new SeqtuneError(`generate: maxNewTokens must be a positive integer, got ${options.maxNewTokens}`, 'ERR_ARGUMENT');
  }
  const B = prompts.length;
  if (B === 0) return [];
  const device = model.device;
  const addBos = options.addBos ?? tokenizer.bosId !== null;
  const promptIds = prompts.map((p) => tokenizer.encode(p, { addBos }));
  if (promptIds.some((ids) => ids.length === 0)) throw new SeqtuneError('generate: a prompt encodes to zero tokens', 'ERR_ARGUMENT');
  const longest = Math.max(...promptIds.map((ids) => ids.length));
  const maxTokens = longest + options.maxNewTokens;
  const window = model.arch.slidingWindow;
  if (window && maxTokens > window) {
    throw new SeqtuneError(
      `generate: a prompt of ${longest} tokens plus ${options.maxNewTokens} new tokens is ${maxTokens} tokens, beyond the model's sliding attention window of ${window} ` +
        `(full attention equals sliding-window attention only within it); shorten the prompt or lower --max-new-tokens to ${Math.max(0, window - longest)}`,
      'ERR_ARGUMENT',
    );
  }
  const { numKvHeads, headDim, numLayers } = model.arch;
  const dtype = model.embed.dtype === 'f64' ? 'f64' : model.embed.dtype;
  const caches = Array.from({ length: numLayers }, () => ({
    k: zeros([B, numKvHeads, maxTokens, headDim], { dtype, device }),
    v: zeros([B, numKvHeads, maxTokens, headDim], { dtype, device }),
  }));
  const rng = new HostRng(options.seed ?? 0);
  const cached = prompts.map(() => 0); // tokens already in each sequence's cache
  const generated: number[][] = prompts.map(() => []);
  const finish: Array<Generation['finishReason'] | null> = prompts.map(() => null);
  const texts = prompts.map(() => '');
  const V = model.arch.vocabSize;

  // What each sequence feeds this step: its whole prompt first, then its last sampled token.
  let feed: number[][] = promptIds;
  try {
    for (let step = 0; finish.some((f) => f === null); step++) {
      const logits = await scope(async () => {
        const ids: number[] = [];
        const positions: number[] = [];
        const cu = [0];
        const rows: number[] = [];
        feed.forEach((tokens, b) => {
          tokens.forEach((tok, i) => {
            ids.push(tok);
            positions.push(cached[b] + i);
          });
          cu.push(ids.length);
          if (tokens.length > 0) rows.push(ids.length - 1);
        });
        const offsets = i32(cached, device);
        const kvLens = i32(feed.map((tokens, b) => cached[b] + tokens.length), device);
        const kv: CacheContext[] = caches.map((c) => ({ k: c.k, v: c.v, offsets, kvLens }));
        const batch = { inputIds: i32(ids, device), positionIds: i32(positions, device), cuSeqlens: i32(cu, device) };
        return (await model.logits(batch, Int32Array.from(rows), kv).toArray()) as Float32Array | Float64Array;
      });
      feed.forEach((tokens, b) => (cached[b] += tokens.length));
      const next: number[][] = prompts.map(() => []);
      let row = 0;
      feed.forEach((tokens, b) => {
        if (tokens.length === 0) return;
        const token = sampleToken(logits.subarray(row * V, (row + 1) * V), [...promptIds[b], ...generated[b]], options, rng);
        // sampling from NaN scores would pick an arbitrary token: a silent garbage answer
        if (token < 0) {
          throw new SeqtuneError(`generate: the model's scores for prompt ${b} are NaN (at new token ${generated[b].length}); its weights or adapter are not finite`, 'ERR_NON_FINITE');
        }
        row++;
        if (token === tokenizer.eosId) {
          finish[b] = 'eos';
          return;
        }
        generated[b].push(token);
        texts[b] = tokenizer.decode(generated[b]);
        const cut = options.stop ? cutAtStop(texts[b], options.stop) : null;
        if (cut !== null) {
          texts[b] = cut;
          finish[b] = 'stop';
          return;
        }
        options.onToken?.(b, token, texts[b]);
        if (generated[b].length >= options.maxNewTokens) {
          finish[b] = 'length';
        } else {
          next[b] = [token];
        }
      });
      feed = next;
    }
  } finally {
    for (const c of caches) {
      c.k.dispose();
      c.v.dispose();
    }
  }
  return prompts.map((_, b) => ({ text: texts[b], tokens: generated[b], finishReason: finish[b] ?? 'length' }));
}
