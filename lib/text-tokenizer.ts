/**
 * What the data pipeline, trainer and generator need from a tokenizer. lib/model/tokenizer.ts
 * implements it over Hugging Face tokenizer.json files; tests may use small stand-ins.
 */
export interface TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number;
  readonly padId: number | null;
  /** Token ids of text; addBos prepends the BOS token when the tokenizer has one. */
  encode(text: string, options?: { addBos?: boolean }): number[];
  decode(ids: readonly number[]): string;
}
