/**
 * Which of a repository's files seqtune fetches: config.json, the tokenizer's files, and the
 * safetensors weights (the index and the shards it names, else model.safetensors, else every
 * top-level .safetensors). Not the .bin/.pth copies, ONNX or GGUF exports many repos also carry.
 * `--include` globs (fnmatch, as huggingface_hub's allow_patterns) pick files instead.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { HubError } from './api';
import { formatHubRef, HubRef } from './repo-id';

export const INDEX_FILE = 'model.safetensors.index.json';
const SINGLE_FILE = 'model.safetensors';
/** What the model loader reads besides the weights (lib/model/config.ts, tokenizer.ts, chat-template.ts). */
const SMALL_FILES = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'chat_template.json'];

/** fnmatch: `*` matches any run of characters, `/` included; `?` one; `[...]` a class. */
export function globToRegExp(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) out += '\\[';
      else {
        const body = glob.slice(i + 1, end);
        out += `[${body.startsWith('!') ? `^${body.slice(1)}` : body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

export interface FilePlan {
  /** fetched first: the small files, and the index when there is one */
  files: string[];
  /** whether the weight shards come from the index (read once it is fetched) */
  fromIndex: boolean;
}

export function planFiles(ref: HubRef, available: string[], include?: string[]): FilePlan {
  if (include?.length) {
    const patterns = include.map(globToRegExp);
    const files = available.filter((f) => patterns.some((p) => p.test(f)));
    if (!files.length) {
      throw new SeqtuneError(`no file of ${formatHubRef(ref)} matches --include ${include.join(' ')} (it has ${available.join(', ')})`, 'ERR_ARGUMENT');
    }
    return { files, fromIndex: false };
  }
  if (!available.includes('config.json')) throw new HubError(`${formatHubRef(ref)} has no config.json: it is not a transformers model seqtune can load`);
  const small = SMALL_FILES.filter((f) => available.includes(f));
  // Only for the loader's advice to convert it: a repo with no tokenizer.json.
  if (!available.includes('tokenizer.json') && available.includes('tokenizer.model')) small.push('tokenizer.model');
  if (available.includes(INDEX_FILE)) return { files: [...small, INDEX_FILE], fromIndex: true };
  const weights = available.includes(SINGLE_FILE) ? [SINGLE_FILE] : available.filter((f) => !f.includes('/') && f.endsWith('.safetensors'));
  if (!weights.length) {
    const others = available.filter((f) => /\.(bin|pth|pt|ckpt|gguf)$/.test(f));
    throw new HubError(
      `${formatHubRef(ref)} has no safetensors weights${others.length ? ` (only ${others.slice(0, 3).join(', ')})` : ''}: seqtune reads safetensors only; ` +
        'use a revision that has them (the Hub often has a conversion pull request: ID@refs/pr/N)',
    );
  }
  return { files: [...small, ...weights], fromIndex: false };
}

/** The shard files an index names, checked to be plain relative paths. */
export function shardsOfIndex(ref: HubRef, text: string): string[] {
  let map: unknown;
  try {
    map = (JSON.parse(text) as { weight_map?: unknown }).weight_map;
  } catch {
    map = undefined;
  }
  const shards = map && typeof map === 'object' ? [...new Set(Object.values(map as Record<string, unknown>))] : [];
  if (!shards.length || !shards.every((s) => typeof s === 'string' && !s.startsWith('/') && !s.split('/').includes('..'))) {
    throw new HubError(`${formatHubRef(ref)}: ${INDEX_FILE} has no usable weight_map`);
  }
  return shards as string[];
}

/**
 * Whether a snapshot folder has what the loader needs (config, tokenizer, every weight file), so a
 * cached copy can be used without asking the Hub.
 */
export async function snapshotComplete(dir: string): Promise<boolean> {
  const has = (f: string) => fs.stat(path.join(dir, f)).then((s) => s.isFile(), () => false);
  if (!(await has('config.json')) || !((await has('tokenizer.json')) || (await has('tokenizer.model')))) return false;
  if (await has(INDEX_FILE)) {
    try {
      const shards = shardsOfIndex({ id: dir, revision: 'main' }, await fs.readFile(path.join(dir, INDEX_FILE), 'utf8'));
      return (await Promise.all(shards.map(has))).every(Boolean);
    } catch {
      return false;
    }
  }
  const entries = await fs.readdir(dir).catch(() => [] as string[]);
  return entries.some((f) => f.endsWith('.safetensors'));
}
