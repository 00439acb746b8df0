/**
 * `--model` as every command takes it: an existing local path always wins (as in transformers);
 * otherwise an `ORG/NAME[@REVISION]` id is looked up in the Hugging Face cache and fetched from
 * the Hub as needed (./snapshot.ts). Anything else is returned as given, for the loader to report
 * the missing folder.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { parseHubRef } from './repo-id';
import { fetchSnapshot, FetchOptions } from './snapshot';

export interface ResolvedModel {
  /** the local folder to load */
  dir: string;
  /** how to name the model elsewhere (an adapter's base_model_name_or_path): the Hub id, or the absolute local path */
  name: string;
}

export async function resolveModel(arg: string, options: FetchOptions = {}): Promise<ResolvedModel> {
  const local = await fs.stat(arg).then(() => true, () => false);
  const ref = local ? null : parseHubRef(arg);
  if (!ref) return { dir: arg, name: path.resolve(arg) };
  return { dir: (await fetchSnapshot(ref, options)).dir, name: ref.id };
}
