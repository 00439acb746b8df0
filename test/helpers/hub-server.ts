/**
 * A stand-in for the Hugging Face Hub on 127.0.0.1, serving model folders in the Hub's URL scheme,
 * for tests that must not touch the network (and for scripts/hf-cache-check.sh, which points
 * Python's huggingface_hub at it):
 *   GET  /api/models/ORG/NAME/revision/REV      {"id", "sha", "siblings": [{"rfilename"}]}
 *   HEAD|GET /ORG/NAME/resolve/REV/PATH          small files: 200, ETag = git blob sha1, X-Repo-Commit
 *                                                .safetensors (LFS): 302 to the "CDN" listener,
 *                                                X-Linked-Etag = sha256, X-Linked-Size, X-Repo-Commit
 *   GET  (CDN) /blobs/SHA256?commit=C            the bytes, with Range (206) and ETag
 * A renamed repository answers 307 with a relative Location, as the Hub does. A gated repository
 * lists its files to anyone but answers 401 for them without its token (403 with another),
 * X-Error-Code GatedRepo. Faults: `cut(file,
 * bytes, times)` sends that many bytes of the file and then drops the connection; `claimSize`
 * makes HEAD report a size the disk cannot hold. Every request is logged for assertions.
 *
 * The CDN is a second port on 127.0.0.1, so to seqtune (which compares origins) it is another
 * host; huggingface_hub compares host names only and follows the redirect in its HEAD, so CDN
 * responses repeat the Hub's metadata headers for it (the real CDN does not need to).
 *
 * Standalone: ts-node-transpile-only test/helpers/hub-server.ts DIR ORG/NAME  (prints ENDPOINT ID COMMIT)
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
  server: 'hub' | 'cdn';
}

interface Repo {
  commits: Map<string, Map<string, Buffer>>;
  refs: Map<string, string>;
  token?: string;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitBlobSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (file: string) => file.endsWith('.safetensors');

/** Every file under `dir`, by its relative path with '/' separators. */
export function readFolder(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (sub: string) => {
    for (const entry of fs.readdirSync(path.join(dir, sub), { withFileTypes: true })) {
      const rel = sub ? `${sub}/${entry.name}` : entry.name;
      if (entry.isDirectory()) walk(rel);
      else out.set(rel, fs.readFileSync(path.join(dir, rel)));
    }
  };
  walk('');
  return out;
}

export class HubServer {
  readonly log: LoggedRequest[] = [];
  private readonly repos = new Map<string, Repo>();
  private readonly renamed = new Map<string, string>();
  private readonly blobs = new Map<string, Buffer>();
  private readonly cuts = new Map<string, { bytes: number; times: number }>();
  private readonly claimed = new Map<string, number>();
  private hub!: http.Server;
  private cdn!: http.Server;
  endpoint = '';
  private cdnOrigin = '';

  /** Adds a commit of `files` to repository `id` and points `ref` (default main) at it; returns the commit. */
  addCommit(id: string, files: Map<string, Buffer>, options: { ref?: string; token?: string } = {}): string {
    const repo: Repo = this.repos.get(id) ?? { commits: new Map(), refs: new Map() };
    this.repos.set(id, repo);
    if (options.token) repo.token = options.token;
    const tree = [...files].map(([name, bytes]) => `${name}:${sha256(bytes)}`).join(',');
    const commit = createHash('sha1').update(`${id}:${repo.commits.size}:${tree}`).digest('hex');
    repo.commits.set(commit, files);
    repo.refs.set(options.ref ?? 'main', commit);
    for (const [file, bytes] of files) if (isLfs(file)) this.blobs.set(sha256(bytes), bytes);
    return commit;
  }

  rename(from: string, to: string): void {
    this.renamed.set(from, to);
  }

  /** HEAD reports `size` bytes for `file` (an LFS file), as for a model too big for the disk. */
  claimSize(file: string, size: number): void {
    this.claimed.set(file, size);
  }

  /** The next `times` downloads of `file` stop after `bytes` bytes (counted from where each starts). */
  cut(file: string, bytes: number, times = 1): void {
    this.cuts.set(file, { bytes, times });
  }

  async start(): Promise<this> {
    const listen = (server: http.Server) =>
      new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
    this.hub = http.createServer((req, res) => this.serveHub(req, res));
    this.cdn = http.createServer((req, res) => this.serveCdn(req, res));
    this.endpoint = await listen(this.hub);
    this.cdnOrigin = await listen(this.cdn);
    return this;
  }

  async close(): Promise<void> {
    for (const server of [this.hub, this.cdn]) {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  }

  /** Requests to the Hub or CDN since the start (or since `from`), as "METHOD url". */
  requests(from = 0): string[] {
    return this.log.slice(from).map((r) => `${r.method} ${r.url}`);
  }

  private record(req: http.IncomingMessage, server: 'hub' | 'cdn'): void {
    this.log.push({ method: req.method!, url: req.url!, range: req.headers.range, authorization: req.headers.authorization, server });
  }

  private error(res: http.ServerResponse, status: number, code: string): void {
    res.writeHead(status, { 'X-Error-Code': code, 'X-Error-Message': code, 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: code }));
  }

  private serveHub(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record(req, 'hub');
    const url = new URL(req.url!, this.endpoint);
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const match = api ?? resolve;
    if (!match) return this.error(res, 404, 'NotFound');
    const id = decodeURIComponent(match[1]);
    const newId = this.renamed.get(id);
    if (newId) {
      res.writeHead(307, { Location: url.pathname.replace(match[1], newId) });
      return void res.end();
    }
    const repo = this.repos.get(id);
    if (!repo) return this.error(res, 404, 'RepoNotFound');
    // As on the Hub, a gated repository's listing is public; its files are not.
    if (resolve && repo.token && req.headers.authorization !== `Bearer ${repo.token}`) return this.error(res, req.headers.authorization ? 403 : 401, 'GatedRepo');
    const revision = decodeURIComponent(match[2]);
    const commit = repo.commits.has(revision) ? revision : repo.refs.get(revision);
    if (!commit) return this.error(res, 404, 'RevisionNotFound');
    const files = repo.commits.get(commit)!;
    if (api) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const siblings = [...files.keys()].map((rfilename) => ({ rfilename }));
      return void res.end(JSON.stringify({ id, modelId: id, sha: commit, private: false, gated: repo.token ? 'manual' : false, disabled: false, tags: [], siblings }));
    }
    const file = match[3].split('/').map(decodeURIComponent).join('/');
    const bytes = files.get(file);
    if (!bytes) return this.error(res, 404, 'EntryNotFound');
    if (isLfs(file)) {
      const etag = sha256(bytes);
      res.writeHead(302, {
        Location: `${this.cdnOrigin}/blobs/${etag}?commit=${commit}`,
        'X-Linked-Etag': `"${etag}"`,
        'X-Linked-Size': String(this.claimed.get(file) ?? bytes.length),
        'X-Repo-Commit': commit,
        ETag: `"${gitBlobSha1(Buffer.from(`oid sha256:${etag}\nsize ${bytes.length}\n`))}"`,
      });
      return void res.end();
    }
    res.writeHead(200, { ETag: `"${gitBlobSha1(bytes)}"`, 'X-Repo-Commit': commit, 'Content-Length': String(bytes.length), 'Content-Type': 'application/octet-stream' });
    if (req.method === 'HEAD') return void res.end();
    this.send(res, file, bytes);
  }

  private serveCdn(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.record(req, 'cdn');
    const url = new URL(req.url!, this.cdnOrigin);
    const etag = /^\/blobs\/([0-9a-f]{64})$/.exec(url.pathname)?.[1];
    const bytes = etag && this.blobs.get(etag);
    if (!bytes) return this.error(res, 404, 'NotFound');
    const headers: http.OutgoingHttpHeaders = { ETag: `"${etag}"`, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream' };
    // For huggingface_hub, which follows this redirect in its HEAD (see the file comment).
    Object.assign(headers, { 'X-Linked-Etag': `"${etag}"`, 'X-Linked-Size': String(bytes.length), 'X-Repo-Commit': url.searchParams.get('commit') ?? '' });
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    let start = 0;
    if (range) {
      start = Number(range[1]);
      if (start >= bytes.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` });
        return void res.end();
      }
      res.writeHead(206, { ...headers, 'Content-Range': `bytes ${start}-${bytes.length - 1}/${bytes.length}`, 'Content-Length': String(bytes.length - start) });
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': String(bytes.length) });
    }
    if (req.method === 'HEAD') return void res.end();
    const file = [...this.repos.values()].flatMap((r) => [...r.commits.values()].flatMap((f) => [...f].filter(([, b]) => b === bytes).map(([n]) => n)))[0];
    this.send(res, file, bytes.subarray(start));
  }

  private send(res: http.ServerResponse, file: string, bytes: Buffer): void {
    const cut = this.cuts.get(file);
    if (cut && cut.times > 0 && cut.bytes < bytes.length) {
      cut.times--;
      // Dropped a moment after the last byte, as on a real network: a client that errors its body
      // stream at once would otherwise lose bytes it had received but not yet read.
      res.write(bytes.subarray(0, cut.bytes), () => setTimeout(() => res.socket?.destroy(), 100));
      return;
    }
    res.end(bytes);
  }
}

if (require.main === module) {
  const [dir, id] = process.argv.slice(2);
  if (!dir || !id) {
    console.error('usage: hub-server.ts MODEL_DIR ORG/NAME');
    process.exit(2);
  }
  const server = new HubServer();
  const commit = server.addCommit(id, readFolder(dir));
  server.start().then(() => console.log(`${server.endpoint} ${id} ${commit}`));
}
