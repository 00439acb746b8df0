/**
 * One entry point for every augmentation the `seqtune augment` command offers, so scripts can do
 * what the CLI does: the mix strategies (augmentFile), Seq-Instruct and its IT control
 * (runSeqInstruct), and caption-then-answer VQA data (buildVqaData).
 */
import { SeqtuneError } from '../errors';
import { checkOutputPath, refuseInputAsOutput } from '../io/out-path';
import { augmentFile, AugmentFileOptions, AugmentReport } from './augment';
import { buildVqaData, VqaMix } from './caption';
import { EndpointOptions, OpenAIChatClient } from './endpoint';
import { DataCounts } from './records';
import { IterationReport, runSeqInstruct } from './seq-instruct';

/** The strategies that run on their own rather than in a mix. */
export const SOLO_STRATEGIES = ['seq-instruct', 'direct-response', 'caption'] as const;

export interface AugmentRequest extends Omit<AugmentFileOptions, 'client'> {
  /** an OpenAI-compatible endpoint for paraphrases, translations and Seq-Instruct */
  endpoint?: EndpointOptions;
  /** seq-instruct rounds */
  iterations?: number;
  /** seq-instruct: start again instead of resuming */
  overwrite?: boolean;
  /** caption: VQA question file and caption file */
  vqa?: { questions: string; captions: string; mix?: VqaMix };
}

export type AugmentResult =
  | { kind: 'mix'; report: AugmentReport; counts: DataCounts }
  | { kind: 'seq-instruct'; iterations: IterationReport[]; counts: DataCounts }
  | { kind: 'caption'; counts: DataCounts };

export async function runAugmentation(request: AugmentRequest): Promise<AugmentResult> {
  const out = { flag: '--out', path: request.out, kind: 'file' as const };
  checkOutputPath(out);
  refuseInputAsOutput(out, [
    { flag: '--in', path: request.in },
    ...Object.entries(request.parallel ?? {}).map(([lang, file]) => ({ flag: `--parallel ${lang}`, path: file })),
    { flag: '--vqa-questions', path: request.vqa?.questions },
    { flag: '--captions', path: request.vqa?.captions },
  ]);
  const solo = request.strategies.filter((s) => (SOLO_STRATEGIES as readonly string[]).includes(s));
  if (solo.length > 0 && request.strategies.length > 1) {
    throw new SeqtuneError(`strategy '${solo[0]}' runs on its own, not combined with others`, 'ERR_ARGUMENT');
  }
  const client = request.endpoint ? new OpenAIChatClient(request.endpoint) : undefined;
  const strategy = request.strategies[0];
  if (strategy === 'caption') {
    if (!request.vqa) throw new SeqtuneError('caption needs --vqa-questions and --captions', 'ERR_ARGUMENT');
    const counts = await buildVqaData({ ...request.vqa, out: request.out, seed: request.seed, skipInvalid: request.skipInvalid });
    return { kind: 'caption', counts };
  }
  if (strategy === 'seq-instruct' || strategy === 'direct-response') {
    if (!client) throw new SeqtuneError(`${strategy} needs an endpoint (--endpoint, --model)`, 'ERR_ARGUMENT');
    const iterations = await runSeqInstruct({
      in: request.in,
      out: request.out,
      client,
      iterations: request.iterations,
      directResponse: strategy === 'direct-response',
      concurrency: request.concurrency,
      seed: request.seed,
      skipInvalid: request.skipInvalid,
      overwrite: request.overwrite,
    });
    const last = iterations[iterations.length - 1];
    return { kind: 'seq-instruct', iterations, counts: { in: last.in, augmented: last.augmented, kept: last.kept, skipped: last.skipped, truncated: last.truncated } };
  }
  const report = await augmentFile({ ...request, client });
  return { kind: 'mix', report, counts: { in: report.in, augmented: report.augmented, kept: report.kept, skipped: report.skipped, truncated: report.truncated } };
}
