/**
 * The Hub's HTTP endpoints as huggingface_hub calls them, over Node's own fetch:
 *   GET  {endpoint}/api/models/{id}/revision/{rev}   the commit a revision names and its files
 *   HEAD {endpoint}/{id}/resolve/{commit}/{path}     a file's ETag, size and download location
 *   GET  <location> with Range                        the bytes (LFS files redirect to a CDN)
 * Every failure is a HubError naming the model and the fix; `unreachable` marks the ones where
 * no answer came back (so a cached copy may stand in).
 */
import { SeqtuneError } from '../errors';
import { hubEndpoint, hubToken } from './env';
import { formatHubRef, HubRef, isCommitHash } from './repo-id';

export class HubError extends SeqtuneError {
  constructor(
    message: string,
    readonly unreachable = false,
  ) {
    super(message, 'ERR_HUB');
  }
}

export interface FileMetadata {
  file: string;
  /** the Hub's ETag: the file's sha256 for LFS files, its git blob sha1 otherwise */
  etag: string;
  size: number;
  commit: string;
  /** where to GET the bytes (the CDN for LFS files) */
  location: string;
}

/** An LFS file's ETag is the sha256 of its contents. */
export function isSha256(etag: string): boolean {
  return /^[0-9a-f]{64}$/.test(etag);
}

function normalizeEtag(raw: string | null): string | null {
  return raw ? raw.replace(/^W\//, '').replace(/"/g, '') : null;
}

const MAX_REDIRECTS = 5;
/** as huggingface_hub's HF_HUB_ETAG_TIMEOUT default */
const METADATA_TIMEOUT_MS = 10_000;

export class HubClient {
  constructor(
    readonly endpoint: string = hubEndpoint(),
    readonly token: string | undefined = hubToken(),
  ) {}

  /** The token goes to the Hub only, never to the CDN a file redirects to. */
  private headers(url: string, extra: Record<string, string> = {}): Record<string, string> {
    const headers: Record<string, string> = { 'user-agent': `seqtune; node/${process.versions.node}`, ...extra };
    if (this.token && new URL(url).origin === new URL(this.endpoint).origin) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  async fetch(url: string, init: RequestInit, ref: HubRef): Promise<Response> {
    try {
      return await fetch(url, { ...init, headers: this.headers(url, init.headers as Record<string, string>) });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new HubError(
        `cannot reach ${this.endpoint} for ${formatHubRef(ref)} (${why}): check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the local cache`,
        true,
      );
    }
  }

  /** The error for a response that is not a success, naming the model and what to do. */
  statusError(response: Response, ref: HubRef, file?: string): HubError {
    const id = ref.id;
    const code = response.headers.get('x-error-code');
    const status = response.status;
    const page = `${this.endpoint}/${id}`;
    if (code === 'RevisionNotFound') return new HubError(`${id} has no revision '${ref.revision}' (${status}): check the branch, tag or commit after '@'`);
    if (code === 'EntryNotFound') return new HubError(`${formatHubRef(ref)} has no file ${file ?? ''} (${status})`);
    if (status === 404 || code === 'RepoNotFound') {
      return new HubError(
        `no model ${id} on ${this.endpoint} (${status}), and no local folder of that name: check the id` +
          (this.token ? '' : '; for a private model set HF_TOKEN'),
      );
    }
    if (status === 401 || status === 403) {
      return new HubError(
        this.token
          ? `${id}: the Hub refused the token in HF_TOKEN (${status}): accept the model's terms at ${page} with that account, or use a token with read access`
          : `${id} is gated or private (${status}): accept its terms at ${page}, then set HF_TOKEN to an access token (${this.endpoint}/settings/tokens)`,
      );
    }
    if (status === 429) return new HubError(`${id}: the Hub is rate-limiting requests (429): wait a minute and run again${this.token ? '' : ', or set HF_TOKEN'}`);
    return new HubError(`${id}: ${this.endpoint} answered ${status} ${response.statusText}${file ? ` for ${file}` : ''}: try again later`);
  }

  /** The commit a revision names now, and the repository's file list at that commit. */
  async revision(ref: HubRef): Promise<{ commit: string; files: string[] }> {
    const url = `${this.endpoint}/api/models/${ref.id}/revision/${encodeURIComponent(ref.revision)}`;
    const response = await this.fetch(url, { signal: AbortSignal.timeout(METADATA_TIMEOUT_MS) }, ref);
    if (!response.ok) throw this.statusError(response, ref);
    const body = (await response.json().catch(() => null)) as { sha?: unknown; siblings?: Array<{ rfilename?: unknown }> } | null;
    const commit = body?.sha;
    if (typeof commit !== 'string' || !isCommitHash(commit) || !Array.isArray(body?.siblings)) {
      throw new HubError(`${formatHubRef(ref)}: ${url} did not answer like the Hub (no commit sha and file list): check HF_ENDPOINT`);
    }
    return { commit, files: body.siblings.map((s) => s.rfilename).filter((f): f is string => typeof f === 'string') };
  }

  resolveUrl(id: string, commit: string, file: string): string {
    return `${this.endpoint}/${id}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  /**
   * HEAD on the file's resolve URL. Redirects on the Hub itself (a renamed repository) are
   * followed; one to another host (the CDN of an LFS file) is not: that response carries the
   * metadata (X-Linked-Etag, X-Linked-Size) and its Location is where the bytes are.
   */
  async fileMetadata(ref: HubRef, commit: string, file: string): Promise<FileMetadata> {
    let url = this.resolveUrl(ref.id, commit, file);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const response = await this.fetch(
        url,
        { method: 'HEAD', redirect: 'manual', headers: { 'accept-encoding': 'identity' }, signal: AbortSignal.timeout(METADATA_TIMEOUT_MS) },
        ref,
      );
      const location = response.headers.get('location');
      const redirect = response.status >= 300 && response.status < 400 && location;
      if (redirect) {
        const target = new URL(location, url).toString();
        if (new URL(target).origin === new URL(url).origin) {
          url = target;
          continue;
        }
      } else if (!response.ok) {
        throw this.statusError(response, ref, file);
      }
      const etag = normalizeEtag(response.headers.get('x-linked-etag') ?? response.headers.get('etag'));
      const size = Number(response.headers.get('x-linked-size') ?? (redirect ? NaN : response.headers.get('content-length')));
      const repoCommit = response.headers.get('x-repo-commit');
      if (!etag || !Number.isSafeInteger(size) || size < 0 || !repoCommit) {
        throw new HubError(`${formatHubRef(ref)}: ${url} did not answer like the Hub (no ETag, size or X-Repo-Commit for ${file}): check HF_ENDPOINT`);
      }
      return { file, etag, size, commit: repoCommit, location: redirect ? new URL(location, url).toString() : url };
    }
    throw new HubError(`${formatHubRef(ref)}: more than ${MAX_REDIRECTS} redirects for ${file}`);
  }

  /** GET the bytes from `from` on (a Range request when resuming). */
  async download(meta: FileMetadata, ref: HubRef, from: number, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (from > 0) headers.range = `bytes=${from}-`;
    return this.fetch(meta.location, { headers, signal }, ref);
  }
}
