import { SeqtuneError } from '../errors';
import { formatHubRef, parseHubRef } from '../hub/repo-id';
import { fetchSnapshot } from '../hub/snapshot';
import { Command } from './command';

const USAGE = 'seqtune download ORG/NAME[@REVISION] [--include GLOB]...';

export const downloadCommand: Command = {
  name: 'download',
  positionals: { max: 1 },
  summary: 'fetch a model from the Hugging Face Hub into the shared Hugging Face cache; prints its folder',
  usage:
    `${USAGE}\n` +
    '  by default only what seqtune loads: config.json, the tokenizer files, the safetensors weights (index and shards)\n' +
    '  --include GLOB   these files instead (repeatable; * matches across folders, as in huggingface_hub)\n' +
    '  cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub; HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE=1 are honoured',
  options: { include: { type: 'string', multiple: true } },
  async run(values, positionals) {
    if (positionals.length !== 1) throw new SeqtuneError(`give one model id\nusage: ${USAGE}`, 'ERR_ARGUMENT');
    const ref = parseHubRef(positionals[0]);
    if (!ref) throw new SeqtuneError(`'${positionals[0]}' is not a Hub model id (ORG/NAME or ORG/NAME@REVISION)\nusage: ${USAGE}`, 'ERR_ARGUMENT');
    const snapshot = await fetchSnapshot(ref, { include: values.include as string[] | undefined });
    const fetched = snapshot.downloaded.length;
    process.stderr.write(`${formatHubRef(ref)} at ${snapshot.commit}: ${fetched ? `${fetched} file(s) downloaded` : 'already in the cache'}\n`);
    console.log(snapshot.dir);
    return 0;
  },
};
