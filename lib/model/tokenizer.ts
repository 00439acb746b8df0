/**
 * TextTokenizer over a Hugging Face tokenizer.json, run by @huggingface/tokenizers (a pure-JS port
 * of the Rust library; on the real Llama-2 tokenizer its ids equal SentencePiece's, see
 * test/model/tokenizer.test.ts). Special tokens (bos/eos/pad) come from tokenizer_config.json, or
 * special_tokens_map.json for older exports; the chat template from ./chat-template.ts.
 *
 * encode() never lets the tokenizer's post-processor add tokens: BOS is added only on request, so
 * the data pipeline controls exactly where special tokens go. It runs through a PieceEncoder
 * (./tokenizer-cache.ts: the library's ids, each distinct word encoded once) where the tokenizer
 * allows one, and the library's own encode for everything else.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { SeqtuneError } from '../errors';
import type { TextTokenizer } from '../text-tokenizer';
import { ChatMessage, ChatTemplate, loadChatTemplate, RenderOptions } from './chat-template';
import { PieceEncoder } from './tokenizer-cache';

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
const SPECIAL_TOKENS_MAP_FILE = 'special_tokens_map.json';

type Json = Record<string, unknown>;

/** A token field is "text" or an AddedToken object {"content": "text", ...}. */
function tokenText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (typeof value === 'object' && value !== null && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return null;
}

async function readJson(file: string, required: boolean, expectation: string): Promise<Json | null> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' && !required) return null;
    throw new SeqtuneError(`${file}: cannot read: ${err.code ?? ''} ${err.message} (${expectation})`, 'ERR_IO');
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as Json;
  } catch (error) {
    throw new SeqtuneError(`${file}: not valid JSON (${(error as Error).message})`, 'ERR_CONFIG');
  }
}

export interface TokenizerOverrides {
  /** eos token text when the tokenizer files do not name one */
  eosToken?: string;
}

/** bos/eos/pad/unk token text from the config, with overrides applied. */
function specialTokensOf(config: Readonly<Json>, overrides: TokenizerOverrides): Record<string, string> {
  const special: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const text = tokenText(config[key]);
    if (text !== null) special[key] = text;
  }
  if (overrides.eosToken !== undefined) special.eos_token = overrides.eosToken;
  return special;
}

export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number | null;
  /** bos_token, eos_token, pad_token, unk_token as text, for chat templates */
  readonly specialTokens: Readonly<Record<string, string>>;
  /** the cached fast path, or null with the reason in fastPathOff */
  readonly pieceEncoder: PieceEncoder | null;
  readonly fastPathOff: string | null;
  private readonly tokenizer: Tokenizer;

  /**
   * tokenizerJson: the parsed tokenizer.json; config: tokenizer_config.json merged over
   * special_tokens_map.json; source names the files in errors.
   */
  constructor(
    tokenizerJson: unknown,
    config: Readonly<Json>,
    readonly source: string,
    readonly chatTemplate: ChatTemplate | null = null,
    overrides: TokenizerOverrides = {},
  ) {
    try {
      this.tokenizer = new Tokenizer(tokenizerJson as object, config);
    } catch (error) {
      throw new SeqtuneError(`${source}: cannot build the tokenizer: ${(error as Error).message}`, 'ERR_CONFIG');
    }
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    if (maxId < 0) throw new SeqtuneError(`${source}: the tokenizer has an empty vocabulary`, 'ERR_CONFIG');
    this.vocabSize = maxId + 1;
    const fast = PieceEncoder.create(this.tokenizer, tokenizerJson, config);
    [this.pieceEncoder, this.fastPathOff] = typeof fast === 'string' ? [null, fast] : [fast, null];

    const special = specialTokensOf(config, overrides);
    this.specialTokens = special;
    if (special.eos_token === undefined) {
      throw new SeqtuneError(
        `${source}: no eos_token: expected "eos_token" in ${TOKENIZER_CONFIG_FILE} (or ${SPECIAL_TOKENS_MAP_FILE}), e.g. "eos_token": "</s>"`,
        'ERR_CONFIG',
      );
    }
    this.bosId = this.idOf(special.bos_token, 'bos_token');
    this.eosId = this.idOf(special.eos_token, 'eos_token') as number;
    this.padId = this.idOf(special.pad_token, 'pad_token');
  }

  /** Loads tokenizer.json, tokenizer_config.json (optional), special_tokens_map.json (optional) and the chat template from `dir`. */
  static async fromDir(dir: string, overrides: TokenizerOverrides = {}): Promise<HfTokenizer> {
    const file = path.join(dir, TOKENIZER_FILE);
    const sentencePiece = await fs.stat(path.join(dir, 'tokenizer.model')).then(
      () => true,
      () => false,
    );
    const expectation = sentencePiece
      ? 'seqtune needs the Hugging Face fast-tokenizer file; this directory has only a SentencePiece tokenizer.model: convert it with transformers (AutoTokenizer.from_pretrained(dir).save_pretrained(dir))'
      : 'a model directory needs the Hugging Face tokenizer.json beside config.json';
    const tokenizerJson = await readJson(file, true, expectation);
    const specialMap = (await readJson(path.join(dir, SPECIAL_TOKENS_MAP_FILE), false, '')) ?? {};
    const config = { ...specialMap, ...((await readJson(path.join(dir, TOKENIZER_CONFIG_FILE), false, '')) ?? {}) };
    const template = await loadChatTemplate(dir, config, specialTokensOf(config, overrides));
    return new HfTokenizer(tokenizerJson, config, file, template, overrides);
  }

  encode(text: string, options: { addBos?: boolean } = {}): number[] {
    const ids = this.pieceEncoder?.encode(text) ?? this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    return options.addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  /** Text of the ids; special tokens are kept unless skipSpecialTokens. */
  decode(ids: readonly number[], options: { skipSpecialTokens?: boolean } = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new SeqtuneError(`${this.source}: cannot decode token id ${id} (vocabulary has ids 0..${this.vocabSize - 1})`, 'ERR_INDEX');
      }
    }
    // The library refuses an empty list; the text of no tokens is empty.
    if (ids.length === 0) return '';
    return this.tokenizer.decode([...ids], { skip_special_tokens: options.skipSpecialTokens ?? false, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.tokenizer.id_to_token(id);
  }

  /** The prompt text for `messages` from the tokenizer's chat template. */
  applyChatTemplate(messages: readonly ChatMessage[], options?: RenderOptions): string {
    if (!this.chatTemplate) {
      throw new SeqtuneError(`${this.source}: this tokenizer has no chat template (expected "chat_template" in ${TOKENIZER_CONFIG_FILE} or a chat_template.jinja)`, 'ERR_CONFIG');
    }
    return this.chatTemplate.render(messages, options);
  }

  private idOf(token: string | undefined, key: string): number | null {
    if (token === undefined) return null;
    const id = this.tokenizer.token_to_id(token);
    if (id === undefined) throw new SeqtuneError(`${this.source}: ${key} ${JSON.stringify(token)} is not in the vocabulary`, 'ERR_CONFIG');
    return id;
  }
}
