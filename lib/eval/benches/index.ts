/**
 * Registers the five paper benches and resolves bench names. `synthetic` is the demo's bench: its
 * one deterministic scorer lives in lib/demo/synthetic-bench (module contract: it exports
 * `syntheticBench: BenchDefinition`), loaded on first use so lib/eval does not depend on the demo.
 */
import { SeqtuneError } from '../../errors';
import { BenchDefinition, benchNames, findBench, registerBench } from '../bench';
import { csqaBench } from './csqa';
import { gsm8kBench } from './gsm8k';
import { mgsmBench } from './mgsm';
import { seqEvalBench } from './seqeval';
import { xquadBench } from './xquad';

registerBench('xquad', xquadBench);
registerBench('mgsm', mgsmBench);
registerBench('gsm8k', gsm8kBench);
registerBench('csqa', csqaBench);
registerBench('seqeval', seqEvalBench);

const SYNTHETIC_MODULE = '../../demo/synthetic-bench';

function loadSynthetic(): void {
  let mod: { syntheticBench?: BenchDefinition };
  try {
    mod = require(SYNTHETIC_MODULE);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    // only the module itself being absent means "not in this build"; its own failures propagate
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes('synthetic-bench')) {
      throw new SeqtuneError("the 'synthetic' bench is not available in this build (lib/demo/synthetic-bench is missing)", 'ERR_ARGUMENT');
    }
    throw error;
  }
  if (!findBench('synthetic')) {
    if (!mod.syntheticBench) throw new SeqtuneError('lib/demo/synthetic-bench does not export syntheticBench', 'ERR_INTERNAL');
    registerBench('synthetic', mod.syntheticBench);
  }
}

export function resolveBench(name: string): BenchDefinition {
  if (name === 'synthetic' && !findBench(name)) loadSynthetic();
  const bench = findBench(name);
  if (!bench) throw new SeqtuneError(`unknown bench '${name}' (one of: ${[...new Set([...benchNames(), 'synthetic'])].join(', ')})`, 'ERR_ARGUMENT');
  return bench;
}
