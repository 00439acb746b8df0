/**
 * The prompt template a trained adapter or model directory was trained with, recorded beside it in
 * seqtune.json (not in adapter_config.json, which PEFT parses), so generate and eval default to the
 * format the weights saw instead of one they never did.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { writeJsonAtomic } from './io/atomic';
import { TEMPLATE_NAMES, TemplateName } from './prompt-format';

export const TRAINED_WITH_FILE = 'seqtune.json';

export async function writeTrainedTemplate(dir: string, template: TemplateName): Promise<void> {
  await writeJsonAtomic(path.join(dir, TRAINED_WITH_FILE), { template });
}

/** The template recorded in `dir`, or null when the directory records none (e.g. a base model). */
export async function readTrainedTemplate(dir: string): Promise<TemplateName | null> {
  const file = path.join(dir, TRAINED_WITH_FILE);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SeqtuneError(`${file}: cannot read: ${(error as Error).message}`, 'ERR_IO');
  }
  let template: unknown;
  try {
    template = (JSON.parse(text) as { template?: unknown }).template;
  } catch (error) {
    throw new SeqtuneError(`${file}: not valid JSON (${(error as Error).message})`, 'ERR_CONFIG');
  }
  if (!(TEMPLATE_NAMES as readonly unknown[]).includes(template)) {
    throw new SeqtuneError(`${file}: "template" must be one of ${TEMPLATE_NAMES.join(', ')}, got ${JSON.stringify(template)}`, 'ERR_CONFIG');
  }
  return template as TemplateName;
}

/** The template a command defaults to: the adapter's record, else the model directory's, else `fallback`. */
export async function defaultTemplate(modelDir: string, adapterDir: string | undefined, fallback: TemplateName): Promise<{ template: TemplateName; from: string | null }> {
  for (const dir of adapterDir !== undefined ? [adapterDir, modelDir] : [modelDir]) {
    const template = await readTrainedTemplate(dir);
    if (template !== null) return { template, from: path.join(dir, TRAINED_WITH_FILE) };
  }
  return { template: fallback, from: null };
}
