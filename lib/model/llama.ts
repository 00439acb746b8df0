/**
 * The LLaMA-family decoder (Llama 2/3, Mistral, Qwen2) over the op interface, readable in one
 * sitting: embedding -> N blocks (lib/model/block.ts) -> final RMSNorm -> LM head fused with the
 * loss (linearCrossEntropy, so [T, V] logits are never stored in training).
 *
 * Parameters keep their Hugging Face names (model.layers.N.self_attn.q_proj.weight, ...); LoRA
 * adapters are named `<linear>.lora_A` / `.lora_B` after the layer they adapt (PEFT adds its
 * `base_model.model.` prefix and `.weight` suffix when saving).
 */
import { SeqtuneError } from '../errors';
import {
  addInplace,
  DropoutOptions,
  embedding,
  embeddingBackward,
  linearCrossEntropy,
  linearCrossEntropyBackward,
  LossResult,
  matmul,
  rmsnormResidual,
  rmsnormResidualBackward,
  RmsnormResult,
  RopeOptions,
} from '../ops';
import { Rng } from '../rng';
import { disposeAll, rand, scope, sync, Tensor, tensor, zeros } from '../tensor';
import { BlockCache, blockBackward, BlockDims, blockForward, BlockParams, CacheContext, GradSink, LinearName, linearNames, PackedContext } from './block';
import { DrawSource, LinearParams } from './linear';

/** The sizes of a LLaMA-family transformer, as its config.json gives them (in camelCase). */
export interface LlamaShape {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
}

export interface LlamaArch extends LlamaShape {
  rope: RopeOptions;
  tieWordEmbeddings: boolean;
  /** Qwen2: q, k and v projections have biases */
  attentionBias: boolean;
  /**
   * Mistral/Qwen2 sliding-attention window, when shorter than the context: the model computes full
   * causal attention, which equals sliding attention only up to this many tokens, so nothing longer may run.
   */
  slidingWindow?: number | null;
}

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  targets: LinearName[];
  /** rsLoRA: scale alpha/sqrt(r) instead of alpha/r */
  useRslora: boolean;
}

/** A packed batch (lib/data/batch.ts) on the model's device. */
export interface DeviceBatch extends PackedContext {
  inputIds: Tensor;
  /** int32 [T], aligned with the rows: row i predicts labels[i]; -100 = no loss */
  labels: Tensor;
}

export interface ForwardResult {
  /** summed cross-entropy over the batch's label tokens (reduction 'sum') */
  loss: LossResult;
  cache: ModelCache;
}

/** What the backward needs of a block: its cache, or (checkpointed) its inputs and dropout draws. */
type BlockSaved = { cache: BlockCache } | { x: Tensor; residual: Tensor | undefined; draws: Array<DropoutOptions | undefined> };

interface ModelCache {
  batch: DeviceBatch;
  blocks: BlockSaved[];
  final: RmsnormResult;
}

export const hfLinearName: Record<LinearName, string> = {
  q: 'self_attn.q_proj',
  k: 'self_attn.k_proj',
  v: 'self_attn.v_proj',
  o: 'self_attn.o_proj',
  gate: 'mlp.gate_proj',
  up: 'mlp.up_proj',
  down: 'mlp.down_proj',
};

/** Each block linear's weight shape, [out, in]. */
export function linearShapes(arch: LlamaArch): Record<LinearName, [number, number]> {
  const C = arch.hiddenSize;
  const qOut = arch.numHeads * arch.headDim;
  const kvOut = arch.numKvHeads * arch.headDim;
  return {
    q: [qOut, C],
    k: [kvOut, C],
    v: [kvOut, C],
    o: [C, qOut],
    gate: [arch.intermediateSize, C],
    up: [arch.intermediateSize, C],
    down: [C, arch.intermediateSize],
  };
}

/**
 * A LoRA rank above min(in, out) of a target adds parameters (and memory, and checkpoint size) but
 * no capacity: B·A already spans every in×out matrix at that rank. Refused, naming the layer.
 */
export function checkLoraRank(arch: LlamaArch, lora: Pick<LoraConfig, 'r' | 'targets'>): void {
  const shapes = linearShapes(arch);
  for (const name of lora.targets) {
    const [out, inp] = shapes[name];
    if (lora.r > Math.min(out, inp)) {
      throw new SeqtuneError(
        `LoRA rank ${lora.r} is larger than the ${name} projection allows (min(in ${inp}, out ${out}) = ${Math.min(out, inp)}); use --lora-r ${Math.min(out, inp)} or less`,
        'ERR_CONFIG',
      );
    }
  }
}

export function loraScale(config: LoraConfig): number {
  return config.useRslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

export class LlamaModel {
  readonly arch: LlamaArch;
  readonly device: string;
  readonly lora?: LoraConfig;
  readonly blocks: BlockParams[];
  readonly embed: Tensor;
  readonly norm: Tensor;
  readonly lmHead: Tensor;
  private readonly dims: BlockDims;
  private readonly weights: Map<string, Tensor>;
  private readonly adapters = new Map<string, Tensor>();
  /**
   * Keep only each block's inputs in the forward and recompute the block in the backward:
   * activation memory of one block instead of all, for about a third more compute.
   */
  activationCheckpointing: boolean;

  /**
   * weights: the checkpoint's tensors by Hugging Face name, on `device`. With `lora`, adapters are
   * created (A Kaiming-uniform from rng, B zero, as PEFT) or taken from `adapterWeights`.
   */
  constructor(
    arch: LlamaArch,
    weights: Map<string, Tensor>,
    options: { device?: string; lora?: LoraConfig; rng?: Rng; adapterWeights?: Map<string, Tensor>; activationCheckpointing?: boolean } = {},
  ) {
    this.arch = arch;
    this.activationCheckpointing = options.activationCheckpointing ?? false;
    this.weights = weights;
    this.device = options.device ?? 'cpu';
    this.lora = options.lora;
    this.dims = {
      numHeads: arch.numHeads,
      numKvHeads: arch.numKvHeads,
      headDim: arch.headDim,
      rmsNormEps: arch.rmsNormEps,
      rope: arch.rope,
    };
    const full = !options.lora;
    this.embed = this.weight('model.embed_tokens.weight', [arch.vocabSize, arch.hiddenSize]);
    this.norm = this.weight('model.norm.weight', [arch.hiddenSize]);
    this.lmHead = arch.tieWordEmbeddings ? this.embed : this.weight('lm_head.weight', [arch.vocabSize, arch.hiddenSize]);
    const C = arch.hiddenSize;
    const shapes = linearShapes(arch);
    this.blocks = [];
    for (let l = 0; l < arch.numLayers; l++) {
      const prefix = `model.layers.${l}`;
      const linear = (name: LinearName): LinearParams => {
        const base = `${prefix}.${hfLinearName[name]}`;
        const [out, inp] = shapes[name];
        const hasBias = arch.attentionBias && (name === 'q' || name === 'k' || name === 'v');
        const params: LinearParams = {
          weight: this.weight(`${base}.weight`, [out, inp]),
          bias: hasBias ? this.weight(`${base}.bias`, [out]) : undefined,
          trainable: full,
        };
        if (options.lora && options.lora.targets.includes(name)) {
          params.lora = {
            a: this.adapter(`${base}.lora_A`, [options.lora.r, inp], options),
            b: this.adapter(`${base}.lora_B`, [out, options.lora.r], options),
            scale: loraScale(options.lora),
            dropout: options.lora.dropout,
          };
        }
        return params;
      };
      this.blocks.push({
        inputNorm: this.weight(`${prefix}.input_layernorm.weight`, [C]),
        postNorm: this.weight(`${prefix}.post_attention_layernorm.weight`, [C]),
        q: linear('q'),
        k: linear('k'),
        v: linear('v'),
        o: linear('o'),
        gate: linear('gate'),
        up: linear('up'),
        down: linear('down'),
        trainNorms: full,
      });
    }
  }

  private weight(name: string, shape: number[]): Tensor {
    const t = this.weights.get(name);
    if (!t) throw new SeqtuneError(`checkpoint is missing tensor ${name} (expected shape [${shape.join(', ')}])`, 'ERR_CONFIG');
    if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new SeqtuneError(`tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`, 'ERR_CONFIG');
    }
    return t;
  }

  private adapter(name: string, shape: number[], options: { rng?: Rng; adapterWeights?: Map<string, Tensor> }): Tensor {
    let t = options.adapterWeights?.get(name);
    if (t) {
      if (t.shape.some((d, i) => d !== shape[i])) {
        throw new SeqtuneError(`adapter tensor ${name} has shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`, 'ERR_CONFIG');
      }
    } else if (name.endsWith('lora_A')) {
      // PEFT: kaiming_uniform_(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
      if (!options.rng) throw new SeqtuneError('initialising LoRA adapters needs an rng', 'ERR_ARGUMENT');
      const bound = 1 / Math.sqrt(shape[1]);
      t = rand(shape, { rng: options.rng, low: -bound, high: bound, device: this.device });
    } else {
      t = zeros(shape, { device: this.device });
    }
    this.adapters.set(name, t);
    return t;
  }

  /** Trainable tensors by name: the adapters with LoRA, every weight in full fine-tuning. */
  trainable(): Map<string, Tensor> {
    if (this.lora) return new Map(this.adapters);
    const out = new Map<string, Tensor>();
    for (const [name, t] of this.weights) {
      if (name === 'lm_head.weight' && this.arch.tieWordEmbeddings) continue;
      out.set(name, t);
    }
    return out;
  }

  /** Every tensor the model holds, by name (base weights and adapters). */
  tensors(): Map<string, Tensor> {
    return new Map([...this.weights, ...this.adapters]);
  }

  /** Token ids -> final hidden states, keeping each block's cache in `caches` when given. */
  private trunk(batch: PackedContext & { inputIds: Tensor }, draws: DrawSource, caches: BlockSaved[] | null, kv?: CacheContext[]): RmsnormResult {
    let x = embedding(batch.inputIds, this.embed, { indicesChecked: batch.indicesChecked });
    let residual: Tensor | undefined;
    this.blocks.forEach((block, l) => {
      const { delta, sum, cache } = blockForward(block, this.dims, x, residual, batch, draws, kv?.[l]);
      caches?.push({ cache });
      x = delta;
      residual = sum;
    });
    return rmsnormResidual(x, this.norm, { eps: this.arch.rmsNormEps, residual });
  }

  /**
   * The checkpointed trunk: each block keeps only its inputs and dropout draws, and the queue is
   * drained after each block so its temporaries are freed before the next is queued (tensors are
   * allocated when queued and freed when their last queued use has run).
   */
  private async checkpointedTrunk(batch: DeviceBatch, draws: DrawSource, saved: BlockSaved[]): Promise<RmsnormResult> {
    let x = embedding(batch.inputIds, this.embed, { indicesChecked: batch.indicesChecked });
    let residual: Tensor | undefined;
    for (const block of this.blocks) {
      const recorded: Array<DropoutOptions | undefined> = [];
      saved.push({ x, residual, draws: recorded });
      const recording: DrawSource = (p) => {
        const draw = draws(p);
        recorded.push(draw);
        return draw;
      };
      const input = { x, residual };
      ({ delta: x, sum: residual } = scope(() => {
        const out = blockForward(block, this.dims, input.x, input.residual, batch, recording);
        return { delta: out.delta, sum: out.sum };
      }));
      await sync(this.device);
    }
    return rmsnormResidual(x, this.norm, { eps: this.arch.rmsNormEps, residual });
  }

  /** Training forward: summed loss over the batch's label tokens, and the cache for backward. */
  async forward(batch: DeviceBatch, rng?: Rng): Promise<ForwardResult> {
    const draws: DrawSource = (p) => (p > 0 && rng ? ({ p, ...rng.next() } as DropoutOptions) : undefined);
    const blocks: BlockSaved[] = [];
    const final = this.activationCheckpointing ? await this.checkpointedTrunk(batch, draws, blocks) : this.trunk(batch, draws, blocks);
    const loss = linearCrossEntropy(final.out, this.lmHead, batch.labels, { reduction: 'sum', indicesChecked: batch.indicesChecked });
    return { loss, cache: { batch, blocks, final } };
  }

  /**
   * Backward of forward(): gradScale multiplies the loss (1 / the optimizer step's label tokens).
   * Each trainable tensor's gradient goes to sink(name, grad). With activation checkpointing it
   * waits for each recomputed block to finish before the next, so memory stays bounded (tensors are
   * allocated when queued and freed when their last queued use has run).
   */
  async backward(result: ForwardResult, gradScale: number, sink: GradSink): Promise<void> {
    const { batch, blocks, final } = result.cache;
    const full = !this.lora;
    const head = linearCrossEntropyBackward(final.out, this.lmHead, batch.labels, result.loss, {
      reduction: 'sum',
      gradScale,
      needWeight: full,
      indicesChecked: batch.indicesChecked,
    });
    const tiedHeadGrad = this.arch.tieWordEmbeddings ? head.dweight : undefined;
    if (head.dweight && !this.arch.tieWordEmbeddings) sink('lm_head.weight', head.dweight);
    const fn = rmsnormResidualBackward(head.dh, final, this.norm, { needWeight: full });
    if (fn.dweight) sink('model.norm.weight', fn.dweight);
    let G = fn.dx;
    for (let l = this.blocks.length - 1; l >= 0; l--) {
      const saved = blocks[l];
      const prefix = `model.layers.${l}`;
      if ('cache' in saved) {
        // The block's backward temporaries (scope) and then its activations and incoming gradient
        // are released as soon as its backward is queued, not when the whole backward ends: each
        // is freed once the queued ops reading it have run, so the backward's peak holds one
        // block's temporaries instead of every block's.
        const dy = G;
        G = scope(() => blockBackward(this.blocks[l], this.dims, saved.cache, dy, batch, prefix, sink));
        disposeAll(saved.cache);
        dy.dispose();
        continue;
      }
      // Recompute the block with the same dropout draws, then run its backward; the recomputed
      // activations are freed when the scope ends (gradients the sink keeps survive it).
      const dy = G;
      G = scope(() => {
        let next = 0;
        const { cache } = blockForward(this.blocks[l], this.dims, saved.x, saved.residual, batch, () => saved.draws[next++]);
        return blockBackward(this.blocks[l], this.dims, cache, dy, batch, prefix, sink);
      });
      await sync(this.device);
    }
    if (full) {
      const dEmbed = embeddingBackward(G, batch.inputIds, this.arch.vocabSize, { indicesChecked: batch.indicesChecked });
      if (tiedHeadGrad) {
        // Tied weights: the embedding and the head are one tensor, so their gradients add.
        addInplace(dEmbed, tiedHeadGrad);
      }
      sink('model.embed_tokens.weight', dEmbed);
    }
  }

  /**
   * Inference: logits [rows.length, V] of the given rows of a packed batch, optionally writing
   * the batch's keys and values into per-layer KV caches.
   */
  logits(batch: PackedContext & { inputIds: Tensor }, rows: Int32Array, kv?: CacheContext[]): Tensor {
    const final = this.trunk(batch, () => undefined, null, kv);
    const picked = embedding(tensor(rows, [rows.length], { dtype: 'i32', device: this.device }), final.out);
    return matmul(picked, this.lmHead, { transB: true });
  }
}
