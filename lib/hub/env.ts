/**
 * The environment huggingface_hub reads, read the same way so both tools share a cache, an
 * endpoint and a login: HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME, HF_ENDPOINT, HF_TOKEN (else the
 * token file `hf auth login` writes), HF_HUB_OFFLINE.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

type Env = Record<string, string | undefined>;

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

export function hfHome(env: Env = process.env): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  return path.join(env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'huggingface');
}

/** $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: Env = process.env): string {
  const explicit = env.HF_HUB_CACHE ?? env.HUGGINGFACE_HUB_CACHE;
  return explicit ? expandHome(explicit) : path.join(hfHome(env), 'hub');
}

export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

/** HF_TOKEN, else the token file of `hf auth login` ($HF_TOKEN_PATH, else $HF_HOME/token). */
export function hubToken(env: Env = process.env): string | undefined {
  const fromEnv = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv !== undefined) return fromEnv.trim() || undefined;
  try {
    return fs.readFileSync(env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : path.join(hfHome(env), 'token'), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

export function hubOffline(env: Env = process.env): boolean {
  return ['1', 'on', 'yes', 'true'].includes((env.HF_HUB_OFFLINE ?? '').trim().toLowerCase());
}
