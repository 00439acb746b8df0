/**
 * Data-pipeline benchmark: `node dist/bench/data-augment.js` (after `npx tsc -p .`), with the
 * shared data beside the repo (../shared/data). Writes bench/results/<YYYY-MM-DD>-data.json.
 *
 * - augment: 52,000 records synthesised from the 2,000-row Alpaca sample (26 copies), augmented with
 *   `repeat` by augmentFile (read twice, streamed; JSONL written). Target < 10 s.
 * - tokenize + pack: the augmented file tokenized with the real Llama-2 tokenizer.json in Tulu
 *   format (maxLength 2048) and packed into 4,096-token batches for one epoch. Target < 60 s.
 *   The tokenizer is seqtune's HfTokenizer over the real tokenizer.json (what training uses); the
 *   section is skipped with the reason when the file is absent.
 * - peer: the original SentencePiece (Debian python3-sentencepiece) encodes the same segment texts
 *   in the same run (bench/peer/sentencepiece_tokenize.py); encode_ratio = SentencePiece's encode
 *   time / ours (our speed relative to the peer), and ids_agreement = share of texts with identical ids.
 * `<what>_ratio` is higher-is-better: target / measured (1 or more meets the target) or peer time /
 * our time (our throughput over the peer's). Wall seconds
 * depend on what else runs on the machine, so CPU seconds (user + system of this process; of the
 * peer process for SentencePiece) are reported beside them and the ratios use CPU seconds.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { augmentFile } from '../lib/data/augment';
import { BatchLoader } from '../lib/data/loader';
import { readRecords } from '../lib/data/read';
import { tuluFormat } from '../lib/data/templates';
import { tokenizeRecords } from '../lib/data/tokenize';
import { HfTokenizer } from '../lib/model/tokenizer';
import { TextTokenizer } from '../lib/text-tokenizer';
import { roundTo, timed, writeJson } from './common/report';

const root = path.join(__dirname, '..', '..');
const shared = path.join(root, '..', 'shared', 'data');
const alpacaPath = path.join(shared, 'alpaca', 'alpaca_small_2000.json');
const tokenizerDir = path.join(shared, 'tokenizers', 'llama2');

/** The real Llama-2 tokenizer through seqtune's HfTokenizer (what training uses), or why it is unavailable. */
async function loadLlama2(): Promise<TextTokenizer | string> {
  if (!fs.existsSync(path.join(tokenizerDir, 'tokenizer.json'))) return `no tokenizer.json in ${tokenizerDir}`;
  return HfTokenizer.fromDir(tokenizerDir);
}

async function main(): Promise<void> {
  if (!fs.existsSync(alpacaPath)) {
    console.log(`skipped: ${alpacaPath} not found (the shared data folder must sit beside the repo)`);
    return;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-bench-data-'));
  const source = JSON.parse(fs.readFileSync(alpacaPath, 'utf8')) as object[];
  const input = path.join(work, 'alpaca-52k.jsonl');
  const lines: string[] = [];
  for (let copy = 0; copy < 26; copy++) source.forEach((r, i) => lines.push(JSON.stringify({ ...r, idx: copy * source.length + i })));
  fs.writeFileSync(input, lines.join('\n') + '\n');

  const augmented = path.join(work, 'repeat.jsonl');
  const a = await timed(() => augmentFile({ in: input, out: augmented, strategies: ['repeat'] }));
  const aug = a.value;
  console.log(`augment: ${aug.in} records → ${aug.augmented} augmented in ${a.wall.toFixed(2)} s (${a.cpu.toFixed(2)} s CPU)`);

  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    command: 'node dist/bench/data-augment.js',
    device: { cpu: os.cpus()[0]?.model.trim(), threads: os.cpus().length, node: process.version },
    augment: {
      records: aug.in,
      augmented: aug.augmented,
      seconds: roundTo(a.wall, 3),
      cpu_seconds: roundTo(a.cpu, 3),
      records_per_cpu_second: Math.round(aug.in / a.cpu),
      target_seconds: 10,
      augment_ratio: roundTo(10 / a.cpu, 3),
    },
  };

  const tokenizer = await loadLlama2();
  if (typeof tokenizer === 'string') {
    report.tokenize = { skipped: tokenizer };
    console.log(`tokenize: skipped, ${tokenizer}`);
  } else {
    const format = tuluFormat();
    const tk = await timed(() => tokenizeRecords(readRecords(augmented), { tokenizer, format, maxLength: 2048 }));
    const { dataset, report: tok } = tk.value;
    const pk = await timed(() => {
      const loader = new BatchLoader(dataset, { tokenBudget: 4096, seed: 0 });
      let batches = 0;
      let labels = 0;
      for (const b of loader.epochBatches()) {
        batches++;
        labels += b.numLabelTokens;
      }
      return { batches, labels };
    });
    const { batches, labels } = pk.value;
    console.log(`tokenize: ${dataset.tokens.length} tokens in ${tk.wall.toFixed(2)} s (${tk.cpu.toFixed(2)} s CPU); pack: ${batches} batches in ${pk.wall.toFixed(2)} s`);

    // the peer encodes the same segment texts; ours is timed on the same list, encode only
    const texts: string[] = [];
    for await (const { record } of readRecords(augmented)) for (const s of format.segments(record)) if (s.text !== '') texts.push(s.text);
    const textsPath = path.join(work, 'texts.jsonl');
    fs.writeFileSync(textsPath, texts.map((x) => JSON.stringify(x)).join('\n') + '\n');
    const enc = await timed(() => texts.map((x) => tokenizer.encode(x)));
    const ours = enc.value;
    const peerOut = path.join(work, 'peer.json');
    const peer = spawnSync('/usr/bin/python3', [path.join(root, 'bench', 'peer', 'sentencepiece_tokenize.py'), path.join(tokenizerDir, 'tokenizer.model'), textsPath, peerOut], { encoding: 'utf8' });
    let peerSection: Record<string, unknown>;
    if (peer.status !== 0) {
      peerSection = { skipped: `SentencePiece peer failed (apt-get install python3-sentencepiece): ${(peer.stderr || peer.error?.message || '').trim().split('\n').pop()}` };
    } else {
      const p = JSON.parse(fs.readFileSync(peerOut, 'utf8')) as { seconds: number; cpu_seconds: number; tokens: number; crc32: number[]; version: string };
      const agree = ours.filter((ids, i) => zlib.crc32(Buffer.from(Int32Array.from(ids).buffer)) === p.crc32[i]).length;
      peerSection = {
        peer: `SentencePiece ${p.version} (python3-sentencepiece), tokenizer.model`,
        texts: texts.length,
        ours_encode_seconds: roundTo(enc.wall, 3),
        ours_encode_cpu_seconds: roundTo(enc.cpu, 3),
        peer_encode_seconds: roundTo(p.seconds, 3),
        peer_encode_cpu_seconds: roundTo(p.cpu_seconds, 3),
        ours_tokens: ours.reduce((s, x) => s + x.length, 0),
        peer_tokens: p.tokens,
        ids_agreement: roundTo(agree / texts.length, 5),
        encode_ratio: roundTo(p.cpu_seconds / enc.cpu, 3),
      };
      console.log(`peer: SentencePiece ${p.cpu_seconds.toFixed(2)} s CPU vs ours ${enc.cpu.toFixed(2)} s CPU; ids agree on ${agree}/${texts.length} texts`);
    }
    report.tokenize = {
      tokenizer: 'seqtune HfTokenizer over llama2/tokenizer.json',
      format: 'tulu',
      examples: tok.kept,
      truncated: tok.truncated,
      dropped: tok.skipped,
      tokens: dataset.tokens.length,
      tokenize_seconds: roundTo(tk.wall, 3),
      tokenize_cpu_seconds: roundTo(tk.cpu, 3),
      tokens_per_cpu_second: Math.round(dataset.tokens.length / tk.cpu),
      pack_seconds: roundTo(pk.wall, 3),
      pack_cpu_seconds: roundTo(pk.cpu, 3),
      batches,
      token_budget: 4096,
      fill: roundTo(dataset.tokens.length / (batches * 4096), 3),
      label_tokens: labels,
      target_seconds: 60,
      tokenize_pack_ratio: roundTo(60 / (tk.cpu + pk.cpu), 3),
      sentencepiece: peerSection,
    };
  }
  fs.rmSync(work, { recursive: true, force: true });
  writeJson('data', report);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
