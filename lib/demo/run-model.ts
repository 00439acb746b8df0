/**
 * One arm of the demo, IT or SIT: its training data (rebuilt from the seed, so a child process
 * gets exactly the parent's), a fresh model from the shared initial weights, training, and the
 * evaluation of every split through runEval into <out>/<split>/<kind>/. The settings are plain
 * JSON so they can be sent to a worker process (lib/demo/worker.ts).
 */
import * as path from 'node:path';
import { runEval } from '../eval/run';
import { buildDemoData, DemoDataOptions, EvalSplit } from './data';
import { budgetedDataset, demoGenerator, demoModelConfig, demoPreset, demoTokenizeOptions, demoTokenizer, initDemoModel, trainDemoModel } from './model';
import type { ModelSummary } from './report';

export type ModelKind = 'it' | 'sit';

export interface DemoSettings {
  seed: number;
  preset: string;
  tokenBudget: number;
  device: string;
  weightsDtype: 'f32' | 'bf16';
  out: string;
  data: DemoDataOptions;
}

/** Where a split's eval items are written (the synthetic bench's data file). */
export const itemsFile = (out: string, split: string) => path.join(out, split, 'items.jsonl');

const percent = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);

/** The most new tokens an answer to the split needs, with room for a model that rambles a bit. */
function answerBudget(split: EvalSplit): number {
  const longest = Math.max(...split.items.map((item) => item.steps.reduce((n, s) => n + s.label.length + s.text.length + 8, item.gold.length + 10)));
  return longest + 16;
}

export async function trainAndEvaluate(kind: ModelKind, settings: DemoSettings, log: (line: string) => void): Promise<ModelSummary> {
  const data = buildDemoData(settings.data);
  const preset = demoPreset(settings.preset);
  const tokenizer = demoTokenizer();
  const dataset = budgetedDataset(data.trainRecords(kind), demoTokenizeOptions(tokenizer), settings.tokenBudget);
  const model = initDemoModel(demoModelConfig(preset, tokenizer), settings.seed, settings.device, settings.weightsDtype);
  try {
    const trained = await trainDemoModel(model, dataset, preset, settings.seed, (m) => {
      if (m.step % 200 === 0) log(`${kind}: step ${m.step}, loss ${m.loss.toFixed(3)}, ${Math.round(m.tokensPerSec)} tokens/s`);
    });
    log(`${kind}: trained on ${trained.trainTokens} tokens in ${trained.steps} steps (${trained.seconds.toFixed(0)} s), final loss ${trained.finalLoss.toFixed(3)}`);
    const generator = demoGenerator(model, tokenizer);
    for (const split of data.splits) {
      const result = await runEval({
        bench: 'synthetic',
        dataFile: itemsFile(settings.out, split.name),
        generator,
        outDir: path.join(settings.out, split.name, kind),
        // one batch per split: the KV cache holds it easily and decoding steps are shared
        batchSize: split.items.length,
        maxNewTokens: answerBudget(split),
      });
      log(`${kind} ${split.name}: exact match ${percent(result.summary.overall.accuracy)}, following ${percent(result.summary.overall.followRate)}`);
    }
    return { trainTokens: trained.trainTokens, finalLoss: trained.finalLoss };
  } finally {
    for (const t of model.tensors().values()) t.dispose();
  }
}
