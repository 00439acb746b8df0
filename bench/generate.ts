/**
 * Generation throughput: seqtune's generate (lib/model/generate.ts: packed prefill, KV cache,
 * host-side greedy choice) against transformers' model.generate (bench/peer/torch_generate.py) on
 * the same GPU, in the same command: random bf16 weights of a preset's shapes, greedy, the same
 * prompt token ids (fixed length, every prompt the same length so neither side pads) and exactly
 * --new-tokens new tokens per sequence (EOS ignored on both sides), at batch 1 and 32.
 *
 * Per batch size, each side reports the median of --repeats runs of the whole generate call
 * (tokens/s = batch · new tokens / time) and of a one-token call (the prefill); decode tokens/s =
 * batch · (new tokens − 1) / (whole − prefill).
 *
 *   node dist/bench/generate.js [--device cuda:0|cpu] [--presets 1b,8b] [--batches 1,32]
 *     [--prompt-len 512] [--new-tokens 128] [--repeats 3] [--layers N] [--no-peer]
 *     [--python python3] [--deadline-s 450] [--child-timeout-s 240]
 *
 * Writes $OUT/generate.json on the device machine, else bench/results/<date>-generate.json.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { memoryStats } from '../lib/device';
import { llamaArch } from '../lib/model/config';
import { generate } from '../lib/model/generate';
import { LlamaModel } from '../lib/model/llama';
import { HfTokenizer } from '../lib/model/tokenizer';
import { HostRng, Rng } from '../lib/rng';
import type { TextTokenizer } from '../lib/text-tokenizer';
import { commonOptions, runPeer, runWorker, timeBudget, withDefaults, workerMain } from './common/child';
import { describeDevice, hopperKernelsNow, kernelsCell, KernelStates, kernelsOfChildren, median, round, table, writeResult } from './common/report';
import { benchConfig, randomWeights, writeConfigDir } from './common/train-shapes';

interface OursSpec {
  preset: string;
  layers: number;
  configDir: string;
  prompts: string[];
  promptIds: number[][];
  batches: number[];
  newTokens: number;
  repeats: number;
  device: string;
}

interface BatchResult {
  batch: number;
  whole_s: number;
  prefill_s: number;
  tokens_per_sec: number;
  decode_tokens_per_sec: number;
}

interface SideResult {
  rows: BatchResult[];
  peak_memory_bytes: number | null;
  /** the Hopper kernels' states in the child that generated (seqtune only) */
  hopper_kernels?: KernelStates;
  device_name?: string;
  versions?: Record<string, string>;
}

/** The tokenizer with an EOS id no token has, so every sequence runs to maxNewTokens (transformers: min_new_tokens). */
function ignoringEos(tokenizer: TextTokenizer): TextTokenizer {
  return {
    vocabSize: tokenizer.vocabSize,
    bosId: tokenizer.bosId,
    eosId: -1,
    padId: tokenizer.padId,
    encode: (text, options) => tokenizer.encode(text, options),
    decode: (ids) => tokenizer.decode(ids),
  };
}

async function measureOurs(spec: OursSpec): Promise<SideResult> {
  const config = benchConfig(spec.preset, spec.layers);
  const model = new LlamaModel(llamaArch(config), randomWeights(config, spec.device, 'bf16', new Rng(1)), { device: spec.device });
  const tokenizer = ignoringEos(await HfTokenizer.fromDir(spec.configDir));
  spec.prompts.forEach((p, i) => {
    const ids = tokenizer.encode(p, { addBos: true });
    if (ids.join() !== spec.promptIds[i].join()) throw new Error(`prompt ${i} encodes to ${ids.length} tokens, not the ${spec.promptIds[i].length} given to the peer`);
  });
  const timed = async (prompts: string[], maxNewTokens: number) => {
    const start = performance.now();
    const out = await generate(model, tokenizer, prompts, { maxNewTokens, addBos: true });
    const seconds = (performance.now() - start) / 1000;
    if (out.some((g) => g.tokens.length !== maxNewTokens)) throw new Error(`a sequence stopped before ${maxNewTokens} new tokens`);
    return seconds;
  };
  const rows: BatchResult[] = [];
  for (const batch of spec.batches) {
    const prompts = spec.prompts.slice(0, batch);
    await timed(prompts, 4); // warm-up: first launches, allocator growth
    const whole: number[] = [];
    const prefill: number[] = [];
    for (let r = 0; r < spec.repeats; r++) {
      whole.push(await timed(prompts, spec.newTokens));
      prefill.push(await timed(prompts, 1));
    }
    rows.push(batchResult(batch, spec.newTokens, median(whole), median(prefill)));
  }
  return { rows, peak_memory_bytes: memoryStats(spec.device).peakBytes, hopper_kernels: hopperKernelsNow(spec.device) };
}

function batchResult(batch: number, newTokens: number, whole: number, prefill: number): BatchResult {
  return {
    batch,
    whole_s: whole,
    prefill_s: prefill,
    tokens_per_sec: (batch * newTokens) / whole,
    decode_tokens_per_sec: (batch * (newTokens - 1)) / (whole - prefill),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      ...commonOptions,
      ...withDefaults({
        presets: '1b,8b', batches: '1,32', 'prompt-len': '512', 'new-tokens': '128', repeats: '3',
        'child-timeout-s': '240',
      }),
      layers: { type: 'string' },
    },
  });
  if (values.worker) return workerMain(measureOurs);

  const device = describeDevice(values.device);
  const batches = values.batches.split(',').map(Number);
  const promptLen = Number(values['prompt-len']);
  const newTokens = Number(values['new-tokens']);
  const repeats = Number(values.repeats);
  if (newTokens < 2) throw new Error('--new-tokens must be at least 2 (decode time is whole minus prefill)');
  const timeout = timeBudget(values);
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'seqtune-bench-generate-'));
  console.log(`generation benchmark on ${device.device} (${device.name}): greedy, prompts of ${promptLen} tokens, ${newTokens} new tokens`);
  if (values['no-peer']) console.log('torch peer skipped (--no-peer)');

  // Letters and digits: one byte-level token per character (no special token like <s> can form), plus BOS.
  const rng = new HostRng(7);
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  const prompts = Array.from({ length: Math.max(...batches) }, () => Array.from({ length: promptLen - 1 }, () => alphabet[rng.int(alphabet.length)]).join(''));
  const results = [];
  for (const preset of values.presets.split(',')) {
    const config = benchConfig(preset, values.layers === undefined ? undefined : Number(values.layers));
    const configDir = path.join(workDir, preset);
    await writeConfigDir(configDir, config);
    const tokenizer = await HfTokenizer.fromDir(configDir);
    const promptIds = prompts.map((p) => tokenizer.encode(p, { addBos: true }));
    if (promptIds.some((ids) => ids.length !== promptLen)) throw new Error(`a prompt does not encode to ${promptLen} tokens`);
    console.error(`-- ${preset} (${config.numLayers} layers)`);
    const ours = runWorker<SideResult>(
      __filename,
      { preset, layers: config.numLayers, configDir, prompts, promptIds, batches, newTokens, repeats, device: device.device } satisfies OursSpec,
      timeout(),
    );
    const torch = runPeer<SideResult>(
      values,
      'torch_generate.py',
      { config_dir: configDir, prompt_ids: promptIds, batches, new_tokens: newTokens, repeats, device: device.device },
      timeout(),
    );
    if (ours.error) console.error(`   seqtune: ${ours.error}`);
    if (torch.error && !values['no-peer']) console.error(`   torch: ${torch.error}`);
    results.push({
      preset,
      layers: config.numLayers,
      seqtune: ours.result ?? null,
      seqtune_skipped: ours.error ?? null,
      torch: torch.result ?? null,
      torch_skipped: torch.error ?? null,
      rows: batches.map((batch) => {
        const o = ours.result?.rows.find((r) => r.batch === batch);
        const t = torch.result?.rows.find((r) => r.batch === batch);
        return {
          batch,
          seqtune_tokens_per_sec: o?.tokens_per_sec ?? null,
          torch_tokens_per_sec: t?.tokens_per_sec ?? null,
          tokens_per_sec_ratio: o && t ? o.tokens_per_sec / t.tokens_per_sec : null,
          decode_tokens_per_sec_ratio: o && t ? o.decode_tokens_per_sec / t.decode_tokens_per_sec : null,
          prefill_time_ratio_torch_over_ours: o && t ? t.prefill_s / o.prefill_s : null,
        };
      }),
    });
  }
  fs.rmSync(workDir, { recursive: true, force: true });

  console.log('\nnew tokens/s (whole generate call); ratios = seqtune/torch, prefill ratio = torch time / seqtune time (higher favours seqtune)');
  table(
    ['model', 'batch', 'seqtune tok/s', 'torch tok/s', 'ratio', 'decode ratio', 'prefill ratio', 'Hopper kernels (seqtune child)'],
    results.flatMap((p) =>
      p.rows.map((r) => [
        p.preset,
        r.batch,
        round(r.seqtune_tokens_per_sec, 4),
        round(r.torch_tokens_per_sec, 4),
        round(r.tokens_per_sec_ratio),
        round(r.decode_tokens_per_sec_ratio),
        round(r.prefill_time_ratio_torch_over_ours),
        kernelsCell(p.seqtune?.hopper_kernels),
      ]),
    ),
  );
  writeResult('generate', device, {
    settings: { dtype: 'bf16', greedy: true, prompt_tokens: promptLen, new_tokens: newTokens, repeats, batches },
    timing: 'median of the repeats; one warm-up call (4 new tokens) per batch size first; each call timed to its last token on the host',
    presets: results,
  }, kernelsOfChildren(results.map((p) => p.seqtune?.hopper_kernels)));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
