/**
 * Chat templates: the Jinja template a Hugging Face tokenizer ships to turn a list of messages
 * into the exact prompt text the model was tuned on, rendered with @huggingface/jinja (the
 * implementation transformers.js uses; it provides raise_exception like transformers does).
 * Templates live in tokenizer_config.json ("chat_template": a string, or a list of named
 * templates) or, since transformers 4.43, in chat_template.jinja / chat_template.json beside it.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { SeqtuneError } from '../errors';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface RenderOptions {
  /** end with the header that starts the assistant's reply (for generation) */
  addGenerationPrompt?: boolean;
  /** more template variables (e.g. tools, date_string) */
  variables?: Record<string, unknown>;
}

export class ChatTemplate {
  private compiled: Template | undefined;

  /**
   * source: the Jinja text; origin: where it came from (named in errors); specialTokens: the
   * variables templates expect, such as bos_token and eos_token. The template is parsed on first
   * use, so a template this Jinja cannot parse does not stop plain tokenization.
   */
  constructor(
    readonly source: string,
    readonly origin: string,
    private readonly specialTokens: Readonly<Record<string, string>>,
  ) {}

  private template(): Template {
    if (!this.compiled) {
      try {
        this.compiled = new Template(this.source);
      } catch (error) {
        throw new SeqtuneError(`${this.origin}: the chat template does not parse: ${(error as Error).message}`, 'ERR_CONFIG');
      }
    }
    return this.compiled;
  }

  render(messages: readonly ChatMessage[], options: RenderOptions = {}): string {
    const template = this.template();
    try {
      return template.render({
        ...this.specialTokens,
        ...options.variables,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: options.addGenerationPrompt ?? false,
      });
    } catch (error) {
      // raise_exception in the template lands here, e.g. roles that do not alternate.
      throw new SeqtuneError(`chat template from ${this.origin}: ${(error as Error).message}`, 'ERR_DATA');
    }
  }
}

/** The template text of a tokenizer_config.json "chat_template" value; `null` when absent. */
function templateText(value: unknown, origin: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    // A list of {name, template}: the one named "default" is what apply_chat_template uses.
    const found = value.find((v: { name?: unknown }) => v?.name === 'default') as { template?: unknown } | undefined;
    if (typeof found?.template === 'string') return found.template;
  }
  throw new SeqtuneError(`${origin}: "chat_template" must be a string or a list with a template named "default"`, 'ERR_CONFIG');
}

async function readIfPresent(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new SeqtuneError(`${file}: cannot read: ${(error as Error).message}`, 'ERR_IO');
  }
}

/**
 * The chat template of the tokenizer in `dir`, or null if it has none. A separate
 * chat_template.jinja (or .json) wins over tokenizer_config.json, as in transformers.
 */
export async function loadChatTemplate(
  dir: string,
  tokenizerConfig: Readonly<Record<string, unknown>>,
  specialTokens: Readonly<Record<string, string>>,
): Promise<ChatTemplate | null> {
  const jinjaFile = path.join(dir, 'chat_template.jinja');
  const jinja = await readIfPresent(jinjaFile);
  if (jinja !== null) return new ChatTemplate(jinja, jinjaFile, specialTokens);
  const jsonFile = path.join(dir, 'chat_template.json');
  const json = await readIfPresent(jsonFile);
  if (json !== null) {
    let parsed: { chat_template?: unknown };
    try {
      parsed = JSON.parse(json) as { chat_template?: unknown };
    } catch (error) {
      throw new SeqtuneError(`${jsonFile}: not valid JSON (${(error as Error).message})`, 'ERR_CONFIG');
    }
    const text = templateText(parsed.chat_template, jsonFile);
    if (text === null) throw new SeqtuneError(`${jsonFile}: no "chat_template"`, 'ERR_CONFIG');
    return new ChatTemplate(text, jsonFile, specialTokens);
  }
  const configFile = path.join(dir, 'tokenizer_config.json');
  const text = templateText(tokenizerConfig.chat_template, configFile);
  return text === null ? null : new ChatTemplate(text, configFile, specialTokens);
}
