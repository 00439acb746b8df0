/**
 * The tensors a config implies, by Hugging Face name and shape ([out, in] for projections, as
 * torch.nn.Linear stores them), and the check of a checkpoint against that list.
 */
import { SeqtuneError } from '../../errors';
import { ModelConfig } from '../config';

/** Name -> shape, in the order transformers' state_dict lists them. */
export function expectedWeights(config: ModelConfig): Map<string, number[]> {
  const C = config.hiddenSize;
  const q = config.numHeads * config.headDim;
  const kv = config.numKvHeads * config.headDim;
  const F = config.intermediateSize;
  const weights = new Map<string, number[]>([['model.embed_tokens.weight', [config.vocabSize, C]]]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    weights.set(`${p}.self_attn.q_proj.weight`, [q, C]);
    if (config.attentionBias) weights.set(`${p}.self_attn.q_proj.bias`, [q]);
    weights.set(`${p}.self_attn.k_proj.weight`, [kv, C]);
    if (config.attentionBias) weights.set(`${p}.self_attn.k_proj.bias`, [kv]);
    weights.set(`${p}.self_attn.v_proj.weight`, [kv, C]);
    if (config.attentionBias) weights.set(`${p}.self_attn.v_proj.bias`, [kv]);
    weights.set(`${p}.self_attn.o_proj.weight`, [C, q]);
    weights.set(`${p}.mlp.gate_proj.weight`, [F, C]);
    weights.set(`${p}.mlp.up_proj.weight`, [F, C]);
    weights.set(`${p}.mlp.down_proj.weight`, [C, F]);
    weights.set(`${p}.input_layernorm.weight`, [C]);
    weights.set(`${p}.post_attention_layernorm.weight`, [C]);
  }
  weights.set('model.norm.weight', [C]);
  if (!config.tieWordEmbeddings) weights.set('lm_head.weight', [config.vocabSize, C]);
  return weights;
}

export function parameterCount(config: ModelConfig): number {
  let n = 0;
  for (const shape of expectedWeights(config).values()) n += shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Tensors a checkpoint may hold that the model does not use: old Llama checkpoints saved RoPE's
 * inv_freq buffer, and some tied models store lm_head.weight anyway (transformers ignores both).
 */
function ignorable(name: string, shape: readonly number[], config: ModelConfig): boolean {
  if (/^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/.test(name)) return true;
  return config.tieWordEmbeddings && name === 'lm_head.weight' && shape.length === 2 && shape[0] === config.vocabSize && shape[1] === config.hiddenSize;
}

function list(items: string[], max = 12): string {
  return items.length > max ? `${items.slice(0, max).join(', ')}, ... (${items.length} in all)` : items.join(', ');
}

/**
 * Checks that `actual` (name -> shape, e.g. CheckpointReader.shapes()) holds exactly the tensors
 * `config` implies; one ERR_CONFIG lists every missing, unexpected and mis-shaped tensor. Returns
 * the names it ignored (see `ignorable`).
 */
export function checkWeights(config: ModelConfig, actual: ReadonlyMap<string, readonly number[]>, source: string): string[] {
  const expected = expectedWeights(config);
  const missing: string[] = [];
  const wrongShape: string[] = [];
  for (const [name, shape] of expected) {
    const got = actual.get(name);
    if (!got) missing.push(name);
    else if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) wrongShape.push(`${name} is [${got.join(',')}], expected [${shape.join(',')}]`);
  }
  const ignored: string[] = [];
  const unexpected: string[] = [];
  for (const [name, shape] of actual) {
    if (expected.has(name)) continue;
    if (ignorable(name, shape, config)) ignored.push(name);
    else unexpected.push(name);
  }
  if (missing.length + wrongShape.length + unexpected.length > 0) {
    const problems = [
      missing.length ? `missing: ${list(missing)}` : '',
      wrongShape.length ? `wrong shape: ${list(wrongShape, 6)}` : '',
      unexpected.length ? `unexpected: ${list(unexpected)}` : '',
    ].filter(Boolean);
    const shape = `${config.architecture}, ${config.numLayers} layers, hidden ${config.hiddenSize}, vocab ${config.vocabSize}${config.tieWordEmbeddings ? ', tied embeddings' : ''}${config.attentionBias ? ', q/k/v biases' : ''}`;
    throw new SeqtuneError(
      `${source}: the weights do not match config.json (${shape}: ${expected.size} tensors expected, e.g. ` +
        `model.embed_tokens.weight [${config.vocabSize},${config.hiddenSize}]):\n  ${problems.join('\n  ')}`,
      'ERR_CONFIG',
    );
  }
  return ignored;
}
