import { saveFullModel } from '../train/train';
import { loadModel } from '../model/load';
import { Command, requireFlag } from './command';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge a LoRA adapter into its base model and save a full Hugging Face checkpoint',
  usage: 'seqtune merge --model DIR|ORG/NAME[@REV] --adapter DIR --out DIR',
  options: { model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' } },
  async run(values) {
    const loaded = await loadModel(requireFlag(values, 'model', mergeCommand), { adapterDir: requireFlag(values, 'adapter', mergeCommand) });
    const out = requireFlag(values, 'out', mergeCommand);
    await saveFullModel(loaded, out);
    console.log(`merged model written to ${out}`);
    return 0;
  },
};
