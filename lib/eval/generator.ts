/**
 * What evaluation needs from a model: text in, text out, in batches. The model engineer's
 * generator implements this; tests use deterministic fakes. Decoding is greedy unless the
 * implementation documents otherwise, because every protocol in docs/method.md §5 is greedy.
 */
export interface GenerateOptions {
  maxNewTokens: number;
  /** generation stops before any of these strings (none of the paper's chat-format protocols uses one) */
  stop?: string[];
}

export interface Generator {
  /** one completion per prompt, in the same order; the prompt itself is not repeated in it */
  generate(prompts: string[], options: GenerateOptions): Promise<string[]>;
}

/** How the CLI gets a Generator for a model directory (and optional adapter) on a device, weights in a dtype (--weights-dtype). */
export type LoadGenerator = (
  modelDir: string,
  adapterDir: string | undefined,
  device: string | undefined,
  weightsDtype?: string,
) => Promise<Generator> | Generator;
