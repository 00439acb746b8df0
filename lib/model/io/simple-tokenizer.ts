/**
 * Tokenizer files for randomly initialised models (seqtune init-model): a byte-level tokenizer
 * (one token per UTF-8 byte, so any text encodes) or a char-level one (one token per character of
 * a given alphabet, <unk> for the rest). Both are BPE models with no merges, a form the Rust
 * `tokenizers` library, transformers' PreTrainedTokenizerFast and @huggingface/tokenizers all
 * load. Ids: the special tokens first, then the bytes or characters, then `<|unused_N|>` entries up
 * to the model's vocab size (they are never produced by encoding: BPE without merges only emits
 * single symbols).
 */
import * as path from 'node:path';
import { SeqtuneError } from '../../errors';
import { writeJsonAtomic } from './atomic';

export type SimpleTokenizerKind = 'byte' | 'char';

/** pad, bos, eos, unk, then the role markers the generated chat template uses. */
export const SPECIAL_TOKENS = ['<pad>', '<s>', '</s>', '<unk>', '<|system|>', '<|user|>', '<|assistant|>'] as const;

/** Printable ASCII plus newline and tab: the char-level default. */
export const DEFAULT_ALPHABET = `\n\t${Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)).join('')}`;

/** Each turn is `<|role|>\n{content}</s>\n`; the conversation starts with <s>. */
export const SIMPLE_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] not in ['system', 'user', 'assistant'] %}" +
  "{{ raise_exception('roles must be system, user or assistant, got ' + message['role']) }}{% endif %}" +
  "{% if loop.first %}{{ bos_token }}{% endif %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

export interface TokenizerFiles {
  /** tokenizer.json */
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json */
  config: Record<string, unknown>;
  bosId: number;
  eosId: number;
  padId: number;
  /** ids below this are specials, bytes or characters; from it on, unused padding */
  usedSize: number;
}

/**
 * GPT-2's byte-to-character table: printable bytes stand for themselves, the others map to
 * U+0100 upwards, so every byte is a visible, distinct vocabulary entry (the ByteLevel
 * pre-tokenizer and decoder use the same table).
 */
function byteSymbols(): string[] {
  const printable = (b: number) => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
}

/** An added token as tokenizer_config.json's added_tokens_decoder lists it. */
function tokenFlags(content: string): Record<string, unknown> {
  return { content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** tokenizer.json and tokenizer_config.json for a byte- or char-level tokenizer padded to vocabSize. */
export function simpleTokenizerFiles(kind: SimpleTokenizerKind, vocabSize: number, options: { alphabet?: string; maxLength?: number } = {}): TokenizerFiles {
  let symbols: string[];
  if (kind === 'byte') {
    symbols = byteSymbols();
  } else {
    symbols = [...(options.alphabet ?? DEFAULT_ALPHABET)];
    const seen = new Set<string>();
    for (const c of symbols) {
      if (seen.has(c)) throw new SeqtuneError(`the char-level alphabet lists ${JSON.stringify(c)} twice`, 'ERR_ARGUMENT');
      seen.add(c);
    }
    if (symbols.length === 0) throw new SeqtuneError('the char-level alphabet is empty', 'ERR_ARGUMENT');
  }
  const usedSize = SPECIAL_TOKENS.length + symbols.length;
  if (usedSize > vocabSize) {
    throw new SeqtuneError(`a ${kind}-level tokenizer needs ${usedSize} ids (${SPECIAL_TOKENS.length} special + ${symbols.length}) but the vocab size is ${vocabSize}`, 'ERR_CONFIG');
  }
  const vocab: Record<string, number> = {};
  SPECIAL_TOKENS.forEach((s, i) => (vocab[s] = i));
  symbols.forEach((s, i) => (vocab[s] = SPECIAL_TOKENS.length + i));
  for (let id = usedSize; id < vocabSize; id++) vocab[`<|unused_${id - usedSize}|>`] = id;

  const [pad, bos, eos, unk] = SPECIAL_TOKENS;
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((s, i) => ({ id: i, ...tokenFlags(s) })),
    normalizer: null,
    pre_tokenizer: kind === 'byte' ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false } : null,
    // Like Llama's: tokenizer(text) in transformers prepends <s>.
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: bos, type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { [bos]: { id: bos, ids: [vocab[bos]], tokens: [bos] } },
    },
    decoder: kind === 'byte' ? { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false } : { type: 'Fuse' },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: kind === 'char' ? unk : null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const config = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: bos,
    eos_token: eos,
    pad_token: pad,
    unk_token: unk,
    add_bos_token: true,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: options.maxLength ?? 2048,
    added_tokens_decoder: Object.fromEntries(SPECIAL_TOKENS.map((s, i) => [String(i), tokenFlags(s)])),
    chat_template: SIMPLE_CHAT_TEMPLATE,
  };
  return { tokenizer, config, bosId: vocab[bos], eosId: vocab[eos], padId: vocab[pad], usedSize };
}

/** Writes tokenizer.json and tokenizer_config.json into `dir`, each atomically. */
export async function writeTokenizerFiles(dir: string, files: Pick<TokenizerFiles, 'tokenizer' | 'config'>): Promise<void> {
  await writeJsonAtomic(path.join(dir, 'tokenizer.json'), files.tokenizer);
  await writeJsonAtomic(path.join(dir, 'tokenizer_config.json'), files.config);
}
