/**
 * Which weight is not finite: read back only on an error path (a NaN loss at a run's first step, NaN
 * scores in generation), to replace a vague symptom with the tensor to blame.
 */
import type { Tensor } from '../tensor';

/** The name of the first tensor holding a NaN or an infinity, or null. */
export async function firstNonFinite(tensors: Map<string, Tensor>): Promise<string | null> {
  for (const [name, t] of tensors) {
    const values = await t.toArray();
    for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return name;
  }
  return null;
}
