/**
 * Tokenizer encode benchmark: `node dist/bench/tokenize.js` (after `npx tsc -p .`), with the shared
 * data beside the repo (../shared/data). Writes bench/results/<YYYY-MM-DD>-tokenize.json.
 *
 * Text: what the data benchmark (bench/data-augment.ts) encodes: the 2,000-row Alpaca sample ×26
 * (52,000 records), 'repeat'-augmented, as Tulu segments, one encode per non-empty segment.
 * Measured in one run, on the same texts, as CPU seconds (user + system of this process; the
 * peer's process_time), since the machine is shared and wall time depends on its load:
 * - library: @huggingface/tokenizers' own encode over the real Llama-2 tokenizer.json (what
 *   HfTokenizer.encode did before the piece cache);
 * - fast: HfTokenizer.encode (lib/model/tokenizer-cache.ts) from a cold cache; the first 1/26 of
 *   the texts is also timed alone, where nearly every piece is new;
 * - peer: SentencePiece (Debian python3-sentencepiece) on tokenizer.model via
 *   bench/peer/sentencepiece_tokenize.py, ids compared by CRC-32 per text;
 * - tokenize + pack: tokenizeRecords and one epoch of 4,096-token batches with a fresh HfTokenizer
 *   (the data benchmark's section, target < 60 s).
 * tokenize_ratio = peer CPU seconds / fast CPU seconds (higher is better; above 1 beats the peer).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { Tokenizer } from '@huggingface/tokenizers';
import { augmentRecords } from '../lib/data/augment';
import { BatchLoader } from '../lib/data/loader';
import { readRecords } from '../lib/data/read';
import { DataRecord } from '../lib/data/records';
import { tuluFormat } from '../lib/data/templates';
import { tokenizeRecords } from '../lib/data/tokenize';
import { HfTokenizer } from '../lib/model/tokenizer';
import { roundTo, timed, writeJson } from './common/report';

const root = path.join(__dirname, '..', '..');
const shared = path.join(root, '..', 'shared', 'data');
const alpacaPath = path.join(shared, 'alpaca', 'alpaca_small_2000.json');
const tokenizerDir = path.join(shared, 'tokenizers', 'llama2');
const COPIES = 26;

const crc = (ids: readonly number[]) => zlib.crc32(Buffer.from(Int32Array.from(ids).buffer));
const sameIds = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((id, i) => id === b[i]);

interface PeerResult {
  seconds: number;
  cpu_seconds: number;
  tokens: number;
  crc32: number[];
  version: string;
}

/** SentencePiece on the same texts, or the reason it could not run. */
function runPeer(work: string, texts: readonly string[]): PeerResult | string {
  const textsPath = path.join(work, 'texts.jsonl');
  fs.writeFileSync(textsPath, texts.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const out = path.join(work, 'peer.json');
  const script = path.join(root, 'bench', 'peer', 'sentencepiece_tokenize.py');
  const peer = spawnSync('/usr/bin/python3', [script, path.join(tokenizerDir, 'tokenizer.model'), textsPath, out], { encoding: 'utf8' });
  if (peer.status !== 0) return `SentencePiece peer failed (apt-get install python3-sentencepiece): ${(peer.stderr || peer.error?.message || '').trim().split('\n').pop()}`;
  return JSON.parse(fs.readFileSync(out, 'utf8')) as PeerResult;
}

async function main(): Promise<void> {
  if (!fs.existsSync(alpacaPath) || !fs.existsSync(path.join(tokenizerDir, 'tokenizer.json'))) {
    console.log(`skipped: ${shared} has no Alpaca sample or Llama-2 tokenizer.json (the shared data folder must sit beside the repo)`);
    return;
  }
  const source = JSON.parse(fs.readFileSync(alpacaPath, 'utf8')) as object[];
  const records: DataRecord[] = [];
  for (let copy = 0; copy < COPIES; copy++) source.forEach((r, i) => records.push({ ...r, idx: copy * source.length + i } as DataRecord));
  const augmented = (await augmentRecords(records, { strategies: ['repeat'] })).records;
  const format = tuluFormat();
  const texts = augmented.flatMap((r) => format.segments(r).map((s) => s.text)).filter((x) => x !== '');
  const firstCopy = Math.round(texts.length / COPIES);
  const loadAtStart = os.loadavg()[0];
  console.log(`${augmented.length} records → ${texts.length} texts, ${texts.reduce((s, x) => s + x.length, 0)} characters; load average ${loadAtStart.toFixed(1)}`);

  const tok = await HfTokenizer.fromDir(tokenizerDir);
  if (tok.pieceEncoder === null) throw new Error(`no fast path for the Llama-2 tokenizer: ${tok.fastPathOff}`);
  const first = await timed(() => texts.slice(0, firstCopy).map((x) => tok.encode(x)));
  const rest = await timed(() => texts.slice(firstCopy).map((x) => tok.encode(x)));
  const fast = [...first.value, ...rest.value];
  const fastCpu = first.cpu + rest.cpu;
  const stats = { ...tok.pieceEncoder.stats };
  console.log(`fast: ${fastCpu.toFixed(2)} s CPU (first ${firstCopy} texts ${first.cpu.toFixed(2)} s), ${stats.misses} distinct pieces of ${stats.pieces}, ${stats.fallbacks} fallbacks`);

  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-bench-tok-'));
  const jsonl = path.join(work, 'records.jsonl');
  fs.writeFileSync(jsonl, augmented.map((r) => JSON.stringify(r)).join('\n') + '\n');
  const packTok = await HfTokenizer.fromDir(tokenizerDir);
  const tp = await timed(async () => {
    const { dataset } = await tokenizeRecords(readRecords(jsonl), { tokenizer: packTok, format, maxLength: 2048 });
    let [batches, labels] = [0, 0];
    for (const b of new BatchLoader(dataset, { tokenBudget: 4096, seed: 0 }).epochBatches()) {
      batches++;
      labels += b.numLabelTokens;
    }
    return { tokens: dataset.tokens.length, batches, labels };
  });
  console.log(`tokenize + pack: ${tp.value.tokens} tokens, ${tp.value.batches} batches in ${tp.cpu.toFixed(2)} s CPU`);

  const json = JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer.json'), 'utf8')) as object;
  const lib = new Tokenizer(json, JSON.parse(fs.readFileSync(path.join(tokenizerDir, 'tokenizer_config.json'), 'utf8')) as object);
  const library = await timed(() => texts.map((x) => lib.encode(x, { add_special_tokens: false }).ids));
  const equal = library.value.filter((ids, i) => sameIds(ids, fast[i])).length;
  console.log(`library: ${library.cpu.toFixed(2)} s CPU; fast ids equal on ${equal}/${texts.length} texts`);

  const peer = runPeer(work, texts);
  fs.rmSync(work, { recursive: true, force: true });
  const tokens = fast.reduce((s, x) => s + x.length, 0);
  const peerSection =
    typeof peer === 'string'
      ? { skipped: peer }
      : {
          peer: `SentencePiece ${peer.version} (python3-sentencepiece), tokenizer.model`,
          seconds: roundTo(peer.seconds, 3),
          cpu_seconds: roundTo(peer.cpu_seconds, 3),
          tokens: peer.tokens,
          ids_agreement: roundTo(fast.filter((ids, i) => crc(ids) === peer.crc32[i]).length / texts.length, 5),
        };

  const rows: Array<[string, number, number]> = [['library (@huggingface/tokenizers)', library.cpu, library.wall], ['fast (HfTokenizer, piece cache)', fastCpu, first.wall + rest.wall]];
  if (typeof peer !== 'string') rows.push([`SentencePiece ${peer.version} (peer)`, peer.cpu_seconds, peer.seconds]);
  console.log(`\n${'encoder'.padEnd(36)}${'CPU s'.padStart(9)}${'wall s'.padStart(9)}${'tokens/CPU s'.padStart(14)}`);
  for (const [name, cpu, wall] of rows) console.log(`${name.padEnd(36)}${cpu.toFixed(2).padStart(9)}${wall.toFixed(2).padStart(9)}${Math.round(tokens / cpu).toString().padStart(14)}`);

  const report = {
    date: new Date().toISOString(),
    command: 'node dist/bench/tokenize.js',
    device: { cpu: os.cpus()[0]?.model.trim(), threads: os.cpus().length, node: process.version, load_average_at_start: roundTo(loadAtStart, 2) },
    text: { source: `alpaca_small_2000.json ×${COPIES}, 'repeat'-augmented, Tulu segments`, records: augmented.length, texts: texts.length, tokens },
    library: { cpu_seconds: roundTo(library.cpu, 3), seconds: roundTo(library.wall, 3) },
    fast: {
      cpu_seconds: roundTo(fastCpu, 3),
      seconds: roundTo(first.wall + rest.wall, 3),
      first_copy: { texts: firstCopy, cpu_seconds: roundTo(first.cpu, 3) },
      pieces: stats.pieces,
      distinct_pieces: stats.misses,
      fallbacks: stats.fallbacks,
      ids_equal_library: roundTo(equal / texts.length, 5),
    },
    sentencepiece: peerSection,
    tokenize_pack: { cpu_seconds: roundTo(tp.cpu, 3), seconds: roundTo(tp.wall, 3), tokens: tp.value.tokens, batches: tp.value.batches, label_tokens: tp.value.labels, target_seconds: 60, tokenize_pack_ratio: roundTo(tp.cpu / 60, 3) },
    speedup_over_library: roundTo(library.cpu / fastCpu, 2),
    tokenize_ratio: typeof peer === 'string' ? null : roundTo(peer.cpu_seconds / fastCpu, 3),
    library_tokenize_ratio: typeof peer === 'string' ? null : roundTo(peer.cpu_seconds / library.cpu, 3),
  };
  writeJson('tokenize', report);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
