/**
 * One model's folder in the Hugging Face cache, in huggingface_hub's own layout, so a model that
 * Python downloaded is found here and one seqtune downloads is found by Python. The layout is
 * documented at https://huggingface.co/docs/huggingface_hub/guides/manage-cache ("Understand
 * caching"):
 *
 *   <cache>/models--ORG--NAME/
 *     refs/<branch or tag>             the commit it pointed to when last resolved (text, no newline)
 *     blobs/<etag>                     file contents, named by the Hub's ETag (sha256 for LFS files,
 *                                      the git blob sha1 otherwise); <etag>.incomplete while downloading
 *     snapshots/<commit>/<path>        relative symlinks into blobs/, one tree per commit
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { hubCacheDir } from './env';
import { isCommitHash } from './repo-id';

export class RepoCache {
  readonly folder: string;

  constructor(
    readonly id: string,
    readonly root: string = hubCacheDir(),
  ) {
    this.folder = path.join(root, `models--${id.split('/').join('--')}`);
  }

  snapshotDir(commit: string): string {
    return path.join(this.folder, 'snapshots', commit);
  }

  blobPath(etag: string): string {
    return path.join(this.folder, 'blobs', etag);
  }

  /** The commit a revision names: itself when it is one, else what refs/<revision> recorded. */
  async commitFor(revision: string): Promise<string | null> {
    if (isCommitHash(revision)) return revision;
    try {
      const commit = (await fs.readFile(path.join(this.folder, 'refs', revision), 'utf8')).trim();
      return isCommitHash(commit) ? commit : null;
    } catch {
      return null;
    }
  }

  /** Records where a branch or tag points (nothing to record for a commit). */
  async writeRef(revision: string, commit: string): Promise<void> {
    if (revision === commit) return;
    const file = path.join(this.folder, 'refs', revision);
    await fs.mkdir(path.dirname(file), { recursive: true });
    const temp = `${file}.${process.pid}.tmp`;
    await fs.writeFile(temp, commit);
    await fs.rename(temp, file);
  }

  /** Whether snapshots/<commit>/<file> resolves to a blob. */
  async hasFile(commit: string, file: string): Promise<boolean> {
    return fs.stat(path.join(this.snapshotDir(commit), file)).then(
      (s) => s.isFile(),
      () => false,
    );
  }

  /** snapshots/<commit>/<file> → ../../blobs/<etag> (a relative link, as huggingface_hub makes). */
  async link(commit: string, file: string, etag: string): Promise<void> {
    const target = path.join(this.snapshotDir(commit), file);
    await fs.mkdir(path.dirname(target), { recursive: true });
    const relative = path.relative(path.dirname(target), this.blobPath(etag));
    await fs.rm(target, { force: true });
    try {
      await fs.symlink(relative, target);
    } catch (error) {
      // Where links are not allowed (some Windows setups) huggingface_hub copies; so do we.
      if ((error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
      await fs.copyFile(this.blobPath(etag), target);
    }
  }
}
