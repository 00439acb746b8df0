/**
 * A child process that runs one arm of the demo (lib/demo/run-model.ts) and reports over IPC:
 * `{log}` lines as it goes, then `{summary}` or `{error}`. The parent (lib/demo/index.ts) forks
 * one per arm on a multi-core CPU, because these small models do not keep two threads busy in one
 * process while two single-threaded processes do.
 */
import { isSeqtuneError } from '../errors';
import { DemoSettings, ModelKind, trainAndEvaluate } from './run-model';

export interface WorkerRequest {
  kind: ModelKind;
  settings: DemoSettings;
}

export type WorkerMessage = { log: string } | { summary: { trainTokens: number; finalLoss: number } } | { error: { message: string; code: string } };

function send(message: WorkerMessage): Promise<void> {
  return new Promise((resolve) => process.send!(message, () => resolve()));
}

if (process.send) {
  process.once('message', (request: WorkerRequest) => {
    trainAndEvaluate(request.kind, request.settings, (line) => void send({ log: line }))
      .then((summary) => send({ summary }))
      .catch((error: unknown) =>
        send({ error: { message: isSeqtuneError(error) ? error.message : String((error as Error).stack ?? error), code: isSeqtuneError(error) ? error.code : 'ERR_INTERNAL' } }),
      )
      .finally(() => process.disconnect());
  });
}
