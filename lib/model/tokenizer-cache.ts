/**
 * A cached fast path for HfTokenizer.encode that gives exactly the ids of @huggingface/tokenizers'
 * own `encode(text, { add_special_tokens: false })`.
 *
 * Profile (Llama-2 tokenizer.json, Alpaca text): ~85% of the library's time is its BPE model, run
 * over each whole normalized text as ONE word (Llama files have no pre-tokenizer), looking up every
 * candidate pair by JSON.stringify; its own word cache only keeps words under 256 characters, so
 * whole prompts never hit it. Normalizing, splitting and id mapping are a few percent.
 *
 * So the text is cut into pieces the BPE model must treat independently, each distinct piece is
 * encoded once by the library's own model and its ids are cached. The library's added-token
 * splitter, normalizer and pre-tokenizer still run on every text; only the model step is cached. A
 * cut is made only where it is proven harmless from the tokenizer's own merges (see cutRule);
 * everything the proof does not cover makes `encode` return null, and the caller uses the library.
 */
import { BPE, Tokenizer } from '@huggingface/tokenizers';

/** SentencePiece's word-start mark, which the Llama/Mistral normalizer writes for each space. */
const META = '\u2581';
const META_CODE = 0x2581;

/**
 * How a pre-token is cut into independently encodable pieces:
 * - 'chars': the model has no merges, so BPE maps each code point on its own;
 * - 'metaspace': before each run of '▁' (a word start): no merge (a, b) has b starting with '▁'
 *   unless a ends with '▁', so no two symbols on either side of such a point can ever merge;
 * - 'none': the pre-token is one piece (byte-level BPE: the pre-tokenizer already cut it into words).
 */
export type CutRule = 'chars' | 'metaspace' | 'none';

/**
 * Bounded, approximately least-recently-used cache in two generations: an entry survives while it
 * is used at least once per generation. A hit in the young map costs one lookup (a strict LRU
 * would re-insert on every hit, the hot path here); when it fills, the old generation is dropped
 * and the young one becomes old.
 */
class PieceCache {
  private young = new Map<string, number[] | null>();
  private old = new Map<string, number[] | null>();

  constructor(private readonly generation: number) {}

  get size(): number {
    return this.young.size + this.old.size;
  }

  get(key: string): number[] | null | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  set(key: string, value: number[] | null): void {
    if (this.young.size >= this.generation) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(key, value);
  }
}

export interface PieceEncoderStats {
  /** texts encoded here, and texts handed back to the library (null returned) */
  texts: number;
  fallbacks: number;
  /** piece lookups, and those that ran the library's model */
  pieces: number;
  misses: number;
}

/** Why a post-processor is not the identity on one sequence without special tokens, or null. */
function postProcessorProblem(config: unknown): string | null {
  if (config === null || config === undefined) return null;
  const pp = config as { type?: string; single?: unknown[]; processors?: unknown[] };
  if (pp.type === 'ByteLevel') return null;
  if (pp.type === 'Sequence') return (pp.processors ?? []).map(postProcessorProblem).find((p) => p !== null) ?? null;
  if (pp.type === 'TemplateProcessing') {
    // without special tokens the template's output is its 'A' items: exactly one keeps the tokens as they are
    const items = (pp.single ?? []).filter((item) => typeof item === 'object' && item !== null && 'Sequence' in item);
    const ids = items.map((item) => (item as { Sequence: { id?: string } }).Sequence.id);
    return ids.length === 1 && ids[0] === 'A' ? null : `the template's single sequence is [${ids.join(', ')}], not [A]`;
  }
  return `post-processor ${pp.type} is not known to leave the tokens as they are`;
}

/** The cut rule the model's merges prove safe ('none' when they prove none). */
function cutRule(model: BPE): CutRule {
  if (model.merges.length === 0) return 'chars';
  if (!model.tokens_to_ids.has(META)) return 'none';
  const crossing = model.merges.find(([a, b]) => b.startsWith(META) && !a.endsWith(META));
  return crossing === undefined ? 'metaspace' : 'none';
}

/** The library's internals the added-token split reads (its encode_text does the same). */
interface AddedTokenSplit {
  splitter_unnormalized: { split(text: string): string[] };
  added_tokens_map: Map<string, { id: number; lstrip: boolean; rstrip: boolean }>;
}

export class PieceEncoder {
  readonly stats: PieceEncoderStats = { texts: 0, fallbacks: 0, pieces: 0, misses: 0 };
  private readonly cache: PieceCache;
  /** added-token texts by first character: only text holding one is split around them */
  private readonly addedByFirst = new Map<string, string[]>();
  private readonly added = new Set<string>();

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly model: BPE,
    readonly rule: CutRule,
    addedTokens: readonly string[],
    capacity: number,
  ) {
    this.cache = new PieceCache(Math.max(1, capacity >> 1));
    for (const content of addedTokens) {
      // the library's splitter never matches an empty token
      if (content === '') continue;
      this.added.add(content);
      const list = this.addedByFirst.get(content[0]) ?? [];
      list.push(content);
      this.addedByFirst.set(content[0], list);
    }
  }

  /**
   * The encoder for a tokenizer built from `tokenizerJson` and `config`, or the reason there is
   * none (then every text goes through the library). `capacity` bounds the cached pieces.
   */
  static create(tokenizer: Tokenizer, tokenizerJson: unknown, config: Readonly<Record<string, unknown>>, capacity = 100_000): PieceEncoder | string {
    const json = tokenizerJson as { added_tokens?: Array<{ content: string; special?: boolean; normalized?: boolean }>; post_processor?: unknown };
    const model = tokenizer.model;
    if (!(model instanceof BPE)) return `model ${(tokenizerJson as { model?: { type?: string } }).model?.type} is not BPE`;
    // config switches the library applies to the whole text before normalizing
    if (config.remove_space === true || Boolean(config.do_lowercase_and_remove_accent)) return 'remove_space or do_lowercase_and_remove_accent is set';
    const postProblem = postProcessorProblem(json.post_processor);
    if (postProblem !== null) return postProblem;
    const added = json.added_tokens ?? [];
    // normalized added tokens are matched in normalized text and re-map ids: not reproduced here
    if (tokenizer.normalizer !== null && added.some((t) => t.normalized ?? !(t.special ?? false))) return 'an added token is matched after normalization';
    let rule = cutRule(model);
    // these act on a whole pre-token, so cutting one would change the result
    if (model.ignore_merges || model.end_of_word_suffix || model.continuing_subword_suffix) rule = 'none';
    if (rule === 'none' && tokenizer.pre_tokenizer === null) return 'no pre-tokenizer and no proven cut in the merges: every text would be one piece';
    return new PieceEncoder(tokenizer, model, rule, added.map((t) => t.content), capacity);
  }

  /** Pieces held in the cache now. */
  get cached(): number {
    return this.cache.size;
  }

  /** The library's ids for `text`, or null when the text needs the library's full encode. */
  encode(text: string): number[] | null {
    this.stats.texts++;
    if (text === '') return [];
    const ids = this.containsAdded(text) ? this.encodeAroundAdded(text) : this.encodeSection(text, 0, []);
    if (ids === null) this.stats.fallbacks++;
    return ids;
  }

  /**
   * Text holding added tokens, cut as the library's encode_text cuts it (its own splitter): each
   * added token is its id, each section between is encoded with its index (Metaspace's
   * prepend_scheme 'first' reads it). Tokens that strip their neighbours are left to the library.
   */
  private encodeAroundAdded(text: string): number[] | null {
    const lib = this.tokenizer as unknown as AddedTokenSplit;
    const sections = lib.splitter_unnormalized.split(text);
    const ids: number[] = [];
    for (let i = 0; i < sections.length; i++) {
      const added = lib.added_tokens_map.get(sections[i]);
      if (added) {
        if (added.lstrip || added.rstrip) return null;
        ids.push(added.id);
      } else if (this.encodeSection(sections[i], i, ids) === null) {
        return null;
      }
    }
    return ids;
  }

  /** Appends the ids of one section of text without added tokens to `ids`; null when it needs the library. */
  private encodeSection(text: string, sectionIndex: number, ids: number[]): number[] | null {
    const normalized = this.tokenizer.normalizer === null ? text : this.tokenizer.normalizer._call(text);
    if (normalized === '') return ids;
    // the library keeps a normalized text equal to an added token as that token
    if (this.added.has(normalized)) return null;
    const words = this.tokenizer.pre_tokenizer === null ? [normalized] : this.tokenizer.pre_tokenizer._call(normalized, { section_index: sectionIndex });
    for (const word of words) {
      if (word === '') continue;
      if (this.rule === 'metaspace') {
        let start = 0;
        for (let i = 1; i < word.length; i++) {
          if (word.charCodeAt(i) === META_CODE && word.charCodeAt(i - 1) !== META_CODE) {
            if (!this.append(word.slice(start, i), ids)) return null;
            start = i;
          }
        }
        if (!this.append(start === 0 ? word : word.slice(start), ids)) return null;
      } else if (this.rule === 'chars') {
        for (const ch of word) if (!this.append(ch, ids)) return null;
      } else if (!this.append(word, ids)) {
        return null;
      }
    }
    return ids;
  }

  /** Appends the ids of one piece; false when the piece makes the whole text the library's. */
  private append(piece: string, ids: number[]): boolean {
    this.stats.pieces++;
    let pieceIds = this.cache.get(piece);
    if (pieceIds === undefined) {
      this.stats.misses++;
      pieceIds = this.encodePiece(piece);
      this.cache.set(piece, pieceIds);
    }
    if (pieceIds === null) return false;
    for (let i = 0; i < pieceIds.length; i++) ids.push(pieceIds[i]);
    return true;
  }

  /** The library's ids for one piece, or null when it yields <unk> that fuse_unk could join across pieces. */
  private encodePiece(piece: string): number[] | null {
    const model = this.model;
    const ids = model._call([piece]).map((token) => model.tokens_to_ids.get(token) ?? model.unk_token_id) as number[];
    return model.fuse_unk && ids.some((id) => id === model.unk_token_id) ? null : ids;
  }

  /** Whether an added token's text occurs in `text` (the library would cut the text there). */
  private containsAdded(text: string): boolean {
    // indexOf per distinct first character: usually one or two ('<'), and far faster than a loop over every character
    for (const [first, candidates] of this.addedByFirst) {
      for (let i = text.indexOf(first); i !== -1; i = text.indexOf(first, i + 1)) {
        if (candidates.some((c) => text.startsWith(c, i))) return true;
      }
    }
    return false;
  }
}
