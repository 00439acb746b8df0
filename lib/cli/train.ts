import * as path from 'node:path';
import { SeqtuneError } from '../errors';
import { linearNames, LinearName } from '../model/block';
import { loadConfigFile, presets, resolveConfig, TrainConfig } from '../train/config';
import { train } from '../train/train';
import { Command, flagOptions, numberFlag, stringFlag, Values } from './command';

type Layer = Parameters<typeof resolveConfig>[0][number];

/** CLI flags as a config layer (only the flags given). */
export function flagsToConfig(values: Values): Layer {
  const n = (name: string) => numberFlag(values, name);
  const s = (name: string) => stringFlag(values, name);
  const layer: Record<string, unknown> = {};
  const set = (key: string, value: unknown) => {
    if (value !== undefined) layer[key] = value;
  };
  set('model', s('model'));
  set('data', s('data')?.split(',').filter(Boolean));
  set('out', s('out'));
  set('dev', s('dev'));
  set('valSize', n('val-size'));
  if (values.full) layer.mode = 'full';
  const lora: Record<string, unknown> = {};
  if (n('lora-r') !== undefined) lora.r = n('lora-r');
  if (n('lora-alpha') !== undefined) lora.alpha = n('lora-alpha');
  if (n('lora-dropout') !== undefined) lora.dropout = n('lora-dropout');
  if (values.rslora) lora.useRslora = true;
  const targets = s('lora-targets');
  if (targets) {
    const list = targets.split(',').map((t) => t.trim().replace(/_proj$/, ''));
    for (const t of list) {
      if (!linearNames.includes(t as LinearName)) throw new SeqtuneError(`--lora-targets: unknown layer '${t}' (use ${linearNames.join(',')})`, 'ERR_ARGUMENT');
    }
    lora.targets = list;
  }
  if (Object.keys(lora).length) layer.lora = lora;
  const optimizer: Record<string, unknown> = {};
  for (const [flag, key] of [['lr', 'lr'], ['beta1', 'beta1'], ['beta2', 'beta2'], ['adam-eps', 'eps'], ['weight-decay', 'weightDecay']]) {
    if (n(flag) !== undefined) optimizer[key] = n(flag);
  }
  if (Object.keys(optimizer).length) layer.optimizer = optimizer;
  const schedule: Record<string, unknown> = {};
  if (s('schedule')) schedule.kind = s('schedule');
  if (n('warmup-steps') !== undefined) schedule.warmupSteps = n('warmup-steps');
  if (n('warmup-ratio') !== undefined) schedule.warmupRatio = n('warmup-ratio');
  if (Object.keys(schedule).length) layer.schedule = schedule;
  // Flags that set the config key of their own name in camelCase. Their order is kept: a run's hash
  // reads the optional keys (maxSteps, batchTokens, stepExamples) in the order they were set.
  const direct = [
    ['epochs', n], ['max-steps', n], ['batch-size', n], ['batch-tokens', n], ['grad-accum', n], ['step-examples', n],
    ['max-length', n], ['loss-mask', s], ['template', s], ['max-grad-norm', n], ['seed', n], ['device', s],
    ['eval-every', n], ['save-every', n], ['keep-checkpoints', n], ['log-every', n], ['weights-dtype', s],
  ] as const;
  for (const [flag, read] of direct) set(flag.replace(/-(\w)/g, (_, c: string) => c.toUpperCase()), read(flag));
  if (values['no-packing']) layer.packing = false;
  if (values['activation-checkpointing']) layer.activationCheckpointing = true;
  return layer as Layer;
}

export const trainCommand: Command = {
  name: 'train',
  summary: 'LoRA or full fine-tuning of a Hugging Face checkpoint on instruction data',
  usage:
    'seqtune train --model DIR|ORG/NAME[@REV] --data FILE[,FILE] --out DIR [--config FILE.json|yaml] [--preset ' +
    Object.keys(presets).join('|') +
    '] [--full] [--lora-r N --lora-alpha N --lora-dropout P --lora-targets q,k,v,o,gate,up,down --rslora] ' +
    '[--lr X --beta1 X --beta2 X --weight-decay X] [--schedule constant|linear|cosine --warmup-steps N|--warmup-ratio X] ' +
    '[--epochs N|--max-steps N] [--batch-size N|--batch-tokens N] [--grad-accum N|--step-examples N] [--max-length N] [--no-packing] ' +
    '[--loss-mask response|all] [--template alpaca|tulu|chat] [--max-grad-norm X] [--seed N] [--device auto|cpu|cuda:N] ' +
    '[--dev FILE|--val-size N] [--eval-every N] [--save-every N] [--keep-checkpoints N] [--activation-checkpointing] [--weights-dtype auto|f32|bf16] [--resume DIR|--overwrite] ' +
    '[--profile] (times every op of every step: tables on stderr, Chrome trace in OUT/profile.trace.json)',
  conflicts: [
    ...['lora-r', 'lora-alpha', 'lora-dropout', 'lora-targets', 'rslora'].map((f): [string, string, string] => ['full', f, '--full trains every weight, no LoRA adapter']),
    ['epochs', 'max-steps', '--max-steps sets the run length by itself'],
    ['batch-size', 'batch-tokens', 'a micro-batch is a number of examples or a token budget'],
    ['dev', 'val-size', 'the dev set is a file or a sample of the training data'],
    ['warmup-steps', 'warmup-ratio'],
    ['resume', 'overwrite', '--overwrite would delete the run --resume continues'],
  ],
  options: flagOptions(
    [
      'model', 'data', 'out', 'config', 'preset', 'lora-r', 'lora-alpha', 'lora-dropout', 'lora-targets', 'lr', 'beta1',
      'beta2', 'adam-eps', 'weight-decay', 'schedule', 'warmup-steps', 'warmup-ratio', 'epochs', 'max-steps',
      'batch-size', 'batch-tokens', 'grad-accum', 'step-examples', 'max-length', 'loss-mask', 'template',
      'max-grad-norm', 'seed', 'device', 'dev', 'val-size', 'eval-every', 'save-every', 'keep-checkpoints',
      'log-every', 'resume', 'weights-dtype',
    ],
    ['full', 'rslora', 'no-packing', 'activation-checkpointing', 'overwrite', 'profile'],
  ),
  async run(values) {
    const layers: Layer[] = [];
    const preset = stringFlag(values, 'preset');
    if (preset) layers.push({ preset });
    const file = stringFlag(values, 'config');
    if (file) layers.push(loadConfigFile(file));
    layers.push(flagsToConfig(values));
    const config: TrainConfig = resolveConfig(layers);
    const controller = new AbortController();
    // A scheduler's stop (SIGTERM) is handled as Ctrl-C: finish the step, save, exit 128+signal.
    let stoppedBy: NodeJS.Signals | null = null;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stoppedBy) process.exit(signal === 'SIGTERM' ? 143 : 130);
      stoppedBy = signal;
      process.stderr.write(`\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'}: finishing this step and saving a checkpoint (${signal === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again to quit at once)\n`);
      controller.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const outcome = await train(config, {
        resume: stringFlag(values, 'resume'),
        overwrite: values.overwrite === true,
        signal: controller.signal,
        profile: values.profile ? path.join(config.out, 'profile.trace.json') : undefined,
      });
      if (outcome.stopped === 'interrupted') {
        console.error(`stopped at step ${outcome.steps}/${outcome.totalSteps}; continue with --resume ${config.out}`);
        return stoppedBy === 'SIGTERM' ? 143 : 130;
      }
      console.log(`done: ${outcome.steps} steps, final loss ${outcome.finalLoss.toFixed(4)}, ${outcome.artifact ? `saved ${outcome.artifact}` : ''}`);
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  },
};
