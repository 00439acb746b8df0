import { saveFullModel } from '../train/train';
import { loadModel } from '../model/load';
import { checkOutputPath, refuseInputAsOutput, refuseNonEmptyDir } from '../io/out-path';
import { writeDirectoryStaged } from '../io/staged';
import { Command, requireFlag } from './command';

export const mergeCommand: Command = {
  name: 'merge',
  summary: 'merge a LoRA adapter into its base model and save a full Hugging Face checkpoint',
  usage: 'seqtune merge --model DIR|ORG/NAME[@REV] --adapter DIR --out DIR [--overwrite]',
  options: { model: { type: 'string' }, adapter: { type: 'string' }, out: { type: 'string' }, overwrite: { type: 'boolean' } },
  async run(values) {
    const model = requireFlag(values, 'model', mergeCommand);
    const adapter = requireFlag(values, 'adapter', mergeCommand);
    const out = { flag: '--out', path: requireFlag(values, 'out', mergeCommand), kind: 'dir' as const };
    // checked before the (slow) load; the model is written under a temporary name and swapped in
    checkOutputPath(out);
    refuseInputAsOutput(out, [
      { flag: '--model', path: model },
      { flag: '--adapter', path: adapter },
    ]);
    refuseNonEmptyDir(out, ['--overwrite'], values.overwrite === true);
    const loaded = await loadModel(model, { adapterDir: adapter });
    await writeDirectoryStaged(out.path, (dir) => saveFullModel(loaded, dir), { replace: values.overwrite === true });
    console.log(`merged model written to ${out.path}`);
    return 0;
  },
};
