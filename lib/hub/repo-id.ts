/**
 * A model named the Hub's way: `ORG/NAME` or `ORG/NAME@REVISION`, where the revision is a branch,
 * a tag or a 40-hex commit (default `main`). Validated as huggingface_hub validates repo ids, so an
 * argument that cannot be an id (an absolute path, `a/b/c`, `./x`) is never sent to the Hub.
 */
export interface HubRef {
  /** ORG/NAME */
  id: string;
  /** branch, tag or commit as given */
  revision: string;
}

const PART = /^[A-Za-z0-9][\w.-]{0,95}$/;

export function isCommitHash(revision: string): boolean {
  return /^[0-9a-f]{40}$/.test(revision);
}

/** The id and revision in `arg`, or null when `arg` cannot be a Hub model id. */
export function parseHubRef(arg: string): HubRef | null {
  const at = arg.indexOf('@');
  const id = at < 0 ? arg : arg.slice(0, at);
  const revision = at < 0 ? 'main' : arg.slice(at + 1);
  const parts = id.split('/');
  if (parts.length !== 2 || !parts.every((p) => PART.test(p) && !p.includes('--') && !p.includes('..') && !p.endsWith('.'))) return null;
  if (!revision || /\s/.test(revision) || revision.split('/').some((p) => p === '' || p === '.' || p === '..')) return null;
  return { id, revision };
}

export function formatHubRef(ref: HubRef): string {
  return ref.revision === 'main' ? ref.id : `${ref.id}@${ref.revision}`;
}
