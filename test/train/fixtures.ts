/** A tiny char-level model directory and a small instruction file, made fresh per test file. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { initModel } from '../../lib/model/init-model';
import { resolveConfig, TrainConfig } from '../../lib/train/config';

export async function tinyModelDir(seed: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-model-'));
  await initModel({ preset: 'tiny', out: dir, tokenizer: 'char', seed });
  return dir;
}

export function dataFile(records: Array<{ instruction: string; input?: string; output: string }>): string {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-data-')), 'data.jsonl');
  fs.writeFileSync(file, records.map((r) => JSON.stringify({ input: '', ...r })).join('\n') + '\n');
  return file;
}

/** The compiled CLI the CLI tests spawn. */
export const cliPath = path.resolve(__dirname, '../../dist/lib/cli.js');

/** Flags that keep a CLI training run on the tiny model short, on the CPU, and logging every step. */
export const quickTrainFlags = ['--device', 'cpu', '--batch-size', '2', '--max-length', '64', '--log-every', '1', '--lr', '1e-3'];

export function tempOut(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-run-')), 'out');
}

export const sampleRecords = [
  { instruction: 'Reverse the word.', input: 'stone', output: 'enots' },
  { instruction: 'Uppercase the word.', input: 'lamp', output: 'LAMP' },
  { instruction: 'Say the colour of the sky.', output: 'blue' },
  { instruction: 'Count the letters.', input: 'tree', output: '4' },
  { instruction: 'Repeat the input twice.', input: 'ab', output: 'abab' },
  { instruction: 'Name a fruit.', output: 'apple' },
];

export function smallConfig(model: string, data: string, out: string, over: Record<string, unknown> = {}): TrainConfig {
  return resolveConfig([
    {
      model,
      data: [data],
      out,
      device: 'cpu',
      batchSize: 2,
      maxLength: 64,
      logEvery: 1000,
      ...over,
    } as never,
  ]);
}
