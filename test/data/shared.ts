/** The shared real-data folder, or a skip reason when this clone has none. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const SHARED_DATA = join(__dirname, '..', '..', '..', 'shared', 'data');

export function sharedSkip(...files: string[]): string | false {
  for (const f of files) {
    if (!existsSync(join(SHARED_DATA, f))) return `needs ../shared/data/${f} (the shared data folder is not beside this clone)`;
  }
  return false;
}

export function shared(file: string): string {
  return join(SHARED_DATA, file);
}
