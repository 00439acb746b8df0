/**
 * HfTokenizer's cached fast path (lib/model/tokenizer-cache.ts) against the library's plain
 * encode: identical ids on real tokenizers, Alpaca text and fresh random strings, and the fast path
 * provably in use (no fallback) where it should be.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import t, { Test } from 'tap';
import { simpleTokenizerFiles, writeTokenizerFiles } from '../../lib/model/io/simple-tokenizer';
import { HfTokenizer } from '../../lib/model/tokenizer';
import { PieceEncoder } from '../../lib/model/tokenizer-cache';
import { HostRng } from '../../lib/rng';
import { hostRng, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);
const sharedData = path.resolve(__dirname, '..', '..', '..', 'shared', 'data');
const tokenizers = path.join(sharedData, 'tokenizers');
const alpacaFile = path.join(sharedData, 'alpaca', 'alpaca_small_2000.json');
const noShared = fs.existsSync(path.join(tokenizers, 'llama2', 'tokenizer.json')) && fs.existsSync(alpacaFile) ? false : `shared data not found at ${sharedData} (the shared data folder is absent)`;

type Json = Record<string, unknown>;
const readJson = (file: string): Json => JSON.parse(fs.readFileSync(file, 'utf8')) as Json;

/** The library's plain encode, as HfTokenizer did it before the fast path. */
function plain(json: Json, config: Json): (text: string) => number[] {
  const lib = new Tokenizer(json, config);
  return (text) => lib.encode(text, { add_special_tokens: false }).ids;
}

/** Every instruction, input and output of the 2,000-row Alpaca sample. */
function alpacaTexts(): string[] {
  const rows = JSON.parse(fs.readFileSync(alpacaFile, 'utf8')) as Array<Record<string, string>>;
  return rows.flatMap((r) => [r.instruction, r.input, r.output]);
}

const SPECIAL_TEXT = ['</s>', '<s>', '<unk>', '<|endoftext|>'];
const SNIPPETS = ['<|user|>', '\u2581', '\u2581\u2581', '\u2028', ' \n', '\r\n', 'Hello', ' world', "don't", '1234'];

/** Random text: code points from many scripts, runs of spaces/tabs/newlines, snippets; special-token text if `specials`. */
function randomText(r: HostRng, n: number, specials = false): string {
  const ranges: Array<[number, number]> = [[0x20, 0x7e], [0xa0, 0x17f], [0x300, 0x36f], [0x400, 0x4ff], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1f6ff], [0x2580, 0x259f], [0xd800, 0xdfff]];
  let s = '';
  for (let i = 0; i < n; i++) {
    const kind = r.int(10);
    if (kind < 5) {
      const [lo, hi] = ranges[r.int(ranges.length)];
      s += String.fromCodePoint(lo + r.int(hi - lo + 1));
    } else if (kind < 8) {
      s += [' ', '\t', '\n'][r.int(3)].repeat(1 + r.int(kind === 7 ? 20 : 3));
    } else {
      const pool = specials && r.int(3) === 0 ? SPECIAL_TEXT : SNIPPETS;
      s += pool[r.int(pool.length)];
    }
  }
  return s;
}

/** Asserts the fast path's ids equal the library's on every text (the first mismatches shown in full). */
function compareAll(t: Test, tok: HfTokenizer, reference: (text: string) => number[], texts: readonly string[], label: string): void {
  let mismatches = 0;
  for (const text of texts) {
    const [ours, theirs] = [tok.encode(text), reference(text)];
    if (ours.length !== theirs.length || ours.some((id, i) => id !== theirs[i])) {
      if (++mismatches <= 3) t.same(ours, theirs, `${label}: ids of ${JSON.stringify(text).slice(0, 60)}`);
    }
  }
  t.equal(mismatches, 0, `${label}: ${texts.length} texts, identical ids`);
}

t.test('Llama-2: fast path equals the library (expected cases, Alpaca, random text)', { skip: noShared }, async (t) => {
  const dir = path.join(tokenizers, 'llama2');
  const json = readJson(path.join(dir, 'tokenizer.json'));
  const reference = plain(json, readJson(path.join(dir, 'tokenizer_config.json')));
  const tok = await HfTokenizer.fromDir(dir);
  t.equal(tok.fastPathOff, null, 'fast path on');
  t.equal(tok.pieceEncoder?.rule, 'metaspace', 'the merges prove the cut before each run of ▁');
  const encoder = tok.pieceEncoder!;

  const expected = readJson(path.join(tokenizers, 'expected_ids_sentencepiece.json')) as { models: { llama2: { cases: Array<{ text: string; ids: number[] }> } } };
  for (const c of expected.models.llama2.cases) t.same(tok.encode(c.text), c.ids, `expected ids of ${JSON.stringify(c.text).slice(0, 40)}`);
  compareAll(t, tok, reference, expected.models.llama2.cases.map((c) => c.text), 'expected cases');

  const alpaca = alpacaTexts();
  compareAll(t, tok, reference, alpaca, 'Alpaca fields');
  t.equal(encoder.stats.fallbacks, 0, 'no Alpaca text fell back to the library');
  t.ok(encoder.stats.misses < encoder.stats.pieces / 3, `pieces repeat: ${encoder.stats.misses} distinct of ${encoder.stats.pieces}`);

  compareAll(t, tok, reference, Array.from({ length: 400 }, () => randomText(rng, 1 + rng.int(80))), 'random text');
  t.equal(encoder.stats.fallbacks, 0, 'random text without special-token text stays on the fast path');
  const special = Array.from({ length: 200 }, () => randomText(rng, 1 + rng.int(80), true));
  compareAll(t, tok, reference, special, 'random text with special-token text');
  const holding = special.filter((x) => /<\/?s>|<unk>/.test(x)).length;
  t.ok(holding > 0, `${holding} texts hold <s>, </s> or <unk>`);
  t.equal(encoder.stats.fallbacks, 0, 'and are cut around them on the fast path, none going to the library');
  t.same(tok.encode('a</s>b'), reference('a</s>b'), 'special-token text inside text');
  t.same(tok.encode(''), [], 'empty text');
});

t.test('a tiny cache evicts and still gives the same ids', { skip: noShared }, async (t) => {
  const dir = path.join(tokenizers, 'llama2');
  const [json, config] = [readJson(path.join(dir, 'tokenizer.json')), readJson(path.join(dir, 'tokenizer_config.json'))];
  const lib = new Tokenizer(json, config);
  const encoder = PieceEncoder.create(lib, json, config, 8);
  if (typeof encoder === 'string') throw new Error(encoder);
  const texts = [...alpacaTexts().slice(0, 300), ...Array.from({ length: 100 }, () => randomText(rng, 1 + rng.int(40), true))];
  let same = 0;
  for (const text of texts) {
    const ids = encoder.encode(text) ?? lib.encode(text, { add_special_tokens: false }).ids;
    if (JSON.stringify(ids) === JSON.stringify(lib.encode(text, { add_special_tokens: false }).ids)) same++;
  }
  t.equal(same, texts.length, 'identical ids on every text');
  t.ok(encoder.cached <= 8, `at most 8 pieces cached (${encoder.cached})`);
});

t.test('the fast path is off where it is not proven: a merge across a word start, post-processors', async (t) => {
  // Llama-style files with one merge joining two words: '▁a' + '▁b'
  const json = {
    version: '1.0',
    added_tokens: [{ id: 0, content: '<unk>', special: true, normalized: false }],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '\u2581' }, { type: 'Replace', pattern: { String: ' ' }, content: '\u2581' }] },
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', unk_token: '<unk>', fuse_unk: true, byte_fallback: false, vocab: { '<unk>': 0, '\u2581': 1, a: 2, b: 3, '\u2581a': 4, '\u2581b': 5, '\u2581a\u2581b': 6 }, merges: [['\u2581', 'a'], ['\u2581', 'b'], ['\u2581a', '\u2581b']] },
  };
  const config = { eos_token: '<unk>' };
  const tok = new HfTokenizer(json, config, 'crossing');
  t.match(tok.fastPathOff, /no proven cut/, 'no fast path');
  t.same(tok.encode('a b'), [6], 'the library merges across the word start');
  const reference = plain(json, config);
  t.same([...reference('a'), ...reference('b')], [4, 5], 'cut at the word start, the ids would differ');

  const fixed = { ...json, model: { ...json.model, merges: json.model.merges.slice(0, 2) } };
  t.equal(new HfTokenizer(fixed, config, 'fixed').pieceEncoder?.rule, 'metaspace', 'without that merge the cut is proven');

  const sequenceA = { Sequence: { id: 'A', type_id: 0 } };
  const twice = { ...fixed, post_processor: { type: 'TemplateProcessing', single: [sequenceA, sequenceA], pair: [], special_tokens: {} } };
  t.match(new HfTokenizer(twice, config, 'twice').fastPathOff, /single sequence is \[A, A\]/, 'a template repeating the text');
  t.same(new HfTokenizer(twice, config, 'twice').encode('a'), [4, 4], 'which the library does');
  const roberta = { ...fixed, post_processor: { type: 'RobertaProcessing', sep: ['<unk>', 0], cls: ['<unk>', 0] } };
  t.match(new HfTokenizer(roberta, config, 'roberta').fastPathOff, /RobertaProcessing is not known/, 'an unlisted post-processor');
  const normalizedAdded = { ...fixed, added_tokens: [...fixed.added_tokens, { id: 5, content: 'b', special: false }] };
  t.match(new HfTokenizer(normalizedAdded, config, 'normalized').fastPathOff, /matched after normalization/, 'an added token matched in normalized text');
});

t.test('GPT-2 byte-level BPE: pre-tokenizer pieces are the cache keys', { skip: noShared }, async (t) => {
  const dir = path.join(tokenizers, 'gpt2');
  const vocab = readJson(path.join(dir, 'vocab.json'));
  const merges = fs.readFileSync(path.join(dir, 'merges.txt'), 'utf8').split('\n').filter((line) => line !== '' && !line.startsWith('#version'));
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    added_tokens: [{ id: 50256, content: '<|endoftext|>', special: true, normalized: false }],
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: { type: 'BPE', unk_token: null, fuse_unk: false, byte_fallback: false, vocab, merges },
  };
  const config = { eos_token: '<|endoftext|>' };
  const tok = new HfTokenizer(json, config, 'gpt2');
  t.equal(tok.pieceEncoder?.rule, 'none', 'no ▁ in the vocabulary: pieces are the pre-tokens');
  const reference = plain(json, config);
  compareAll(t, tok, reference, alpacaTexts().slice(0, 2000), 'Alpaca fields');
  t.equal(tok.pieceEncoder!.stats.fallbacks, 0, 'no Alpaca text fell back');
  compareAll(t, tok, reference, Array.from({ length: 300 }, () => randomText(rng, 1 + rng.int(80), true)), 'random text');
});

t.test('generated byte- and char-level tokenizers: one cached piece per character', async (t) => {
  for (const kind of ['byte', 'char', 'char, fuse_unk'] as const) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-tokcache-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const files = simpleTokenizerFiles(kind === 'byte' ? 'byte' : 'char', 400, kind === 'byte' ? {} : { alphabet: 'abc \n\u4e00\u{1f600}' });
    // with fuse_unk the library joins neighbouring <unk>s, also across pieces: such texts must fall back
    if (kind === 'char, fuse_unk') (files.tokenizer.model as Json).fuse_unk = true;
    await writeTokenizerFiles(dir, files);
    const tok = await HfTokenizer.fromDir(dir);
    t.equal(tok.pieceEncoder?.rule, 'chars', `${kind}: no merges, so every character is a piece`);
    const texts = Array.from({ length: 200 }, () => randomText(rng, rng.int(60), true));
    compareAll(t, tok, plain(files.tokenizer, files.config), texts, kind);
    if (kind === 'char, fuse_unk') t.ok(tok.pieceEncoder!.stats.fallbacks > 0, `texts with unknown characters fell back (${tok.pieceEncoder!.stats.fallbacks})`);
    else t.equal(tok.pieceEncoder!.stats.fallbacks, 0, `${kind}: texts holding special tokens stay on the fast path`);
  }
});

t.test('added tokens: sections between them keep their index; tokens that strip neighbours go to the library', async (t) => {
  // Metaspace with prepend_scheme 'first' prepends ▁ only to the text's first section
  const vocab: Record<string, number> = { '<unk>': 0, '<x>': 1, '<y>': 2, '\u2581': 3, a: 4, b: 5, ' ': 6 };
  const added = [
    { id: 0, content: '<unk>', special: true, normalized: false },
    { id: 1, content: '<x>', special: true, normalized: false },
    { id: 2, content: '<y>', special: true, normalized: false, lstrip: true, rstrip: true },
  ];
  const json = {
    version: '1.0',
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '\u2581', prepend_scheme: 'first', split: false },
    post_processor: null,
    decoder: null,
    model: { type: 'BPE', unk_token: '<unk>', fuse_unk: false, byte_fallback: false, vocab, merges: [] },
  };
  const config = { eos_token: '<unk>' };
  const tok = new HfTokenizer(json, config, 'metaspace-first');
  t.equal(tok.pieceEncoder?.rule, 'chars');
  const reference = plain(json, config);
  const texts = ['a<x>b', '<x>a b', 'ab<x><x> a', 'a<x>', '<x>', 'b <x>a<x>b a'];
  compareAll(t, tok, reference, texts, 'around <x>');
  t.equal(tok.pieceEncoder!.stats.fallbacks, 0, 'all on the fast path');
  t.not(reference('a<x>b').length, reference('a').length + 1 + reference('b').length, 'the sections after the first are not prepended (so the index matters)');
  compareAll(t, tok, reference, ['a <y> b', 'a<y>b', ' <y> '], 'around <y>, which strips');
  t.equal(tok.pieceEncoder!.stats.fallbacks, 3, 'each went to the library');
});

t.test('other shared tokenizers: compared where a tokenizer.json exists', { skip: noShared }, async (t) => {
  const others = fs.readdirSync(tokenizers, { withFileTypes: true }).filter((d) => d.isDirectory() && !['llama2', 'gpt2'].includes(d.name));
  for (const d of others) {
    const dir = path.join(tokenizers, d.name);
    const hasJson = fs.existsSync(path.join(dir, 'tokenizer.json'));
    await t.test(d.name, { skip: hasJson ? false : `no tokenizer.json (only ${fs.readdirSync(dir).filter((f) => f.includes('model')).join(', ')}: SentencePiece/tiktoken files the library cannot load)` }, async (t) => {
      const tok = await HfTokenizer.fromDir(dir);
      const config = fs.existsSync(path.join(dir, 'tokenizer_config.json')) ? readJson(path.join(dir, 'tokenizer_config.json')) : {};
      const reference = plain(readJson(path.join(dir, 'tokenizer.json')), config);
      compareAll(t, tok, reference, [...alpacaTexts().slice(0, 1000), ...Array.from({ length: 200 }, () => randomText(rng, 1 + rng.int(80), true))], d.name);
    });
  }
});
