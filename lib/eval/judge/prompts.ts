/**
 * Loading the judge prompt files (lib/eval/prompts/*.txt, format in its README.md) and filling
 * their placeholders. The files are found next to this module's source tree whether it runs from
 * lib/ (tests) or from dist/lib (the package), which is why the package must ship lib/eval/prompts.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SeqtuneError } from '../../errors';
import { ChatMessage } from './client';

const CANDIDATE_DIRS = [join(__dirname, '..', 'prompts'), join(__dirname, '..', '..', '..', '..', 'lib', 'eval', 'prompts')];

const PLACEHOLDER = /\{\{(\w+)\}\}/g;
const SECTION = /^\[\[(system|user)\]\]$/;

export interface PromptTemplate {
  name: string;
  system: string;
  user: string;
}

async function readPromptFile(name: string): Promise<string> {
  for (const dir of CANDIDATE_DIRS) {
    const text = await readFile(join(dir, name), 'utf8').catch(() => null);
    if (text !== null) return text;
  }
  throw new SeqtuneError(`judge prompt ${name} not found in ${CANDIDATE_DIRS.join(' or ')}`, 'ERR_IO');
}

/** Reads a prompt file and checks it uses exactly the placeholders the caller fills. */
export async function loadPrompt(name: string, placeholders: readonly string[]): Promise<PromptTemplate> {
  const text = await readPromptFile(name);
  const sections: Record<string, string[]> = {};
  let current: string[] | null = null;
  for (const line of text.split('\n')) {
    const header = SECTION.exec(line.trim());
    if (header) sections[header[1]] = current = [];
    else if (current) current.push(line);
  }
  if (!sections.system || !sections.user) throw new SeqtuneError(`judge prompt ${name} needs a [[system]] and a [[user]] section`, 'ERR_CONFIG');
  const template = { name, system: sections.system.join('\n').trim(), user: sections.user.join('\n').trim() };
  const used = new Set([...`${template.system}\n${template.user}`.matchAll(PLACEHOLDER)].map((m) => m[1]));
  const unknown = [...used].filter((p) => !placeholders.includes(p));
  const unused = placeholders.filter((p) => !used.has(p));
  if (unknown.length || unused.length) {
    throw new SeqtuneError(`judge prompt ${name}: ${unknown.length ? `unknown placeholders ${unknown.join(', ')}` : ''}${unknown.length && unused.length ? '; ' : ''}${unused.length ? `missing placeholders ${unused.join(', ')}` : ''}`, 'ERR_CONFIG');
  }
  return template;
}

/** One pass, so text inside a value that looks like a placeholder is left alone. */
function fill(text: string, values: Record<string, string>): string {
  return text.replace(PLACEHOLDER, (_, key: string) => values[key]);
}

export function promptMessages(template: PromptTemplate, values: Record<string, string>): ChatMessage[] {
  return [
    { role: 'system', content: fill(template.system, values) },
    { role: 'user', content: fill(template.user, values) },
  ];
}
