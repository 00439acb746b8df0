/**
 * A tiny stand-in for a real tokenizer: one token per UTF-16 code unit (id = code + 3), with
 * PAD 0, BOS 1, EOS 2. Token counts equal string lengths, which makes expected positions easy to
 * compute independently in tests.
 */
import { TextTokenizer } from '../../lib/text-tokenizer';

export class CharTokenizer implements TextTokenizer {
  readonly vocabSize = 65536 + 3;
  readonly bosId = 1;
  readonly eosId = 2;
  readonly padId = 0;

  encode(text: string, options: { addBos?: boolean } = {}): number[] {
    const ids = options.addBos ? [this.bosId] : [];
    for (let i = 0; i < text.length; i++) ids.push(text.charCodeAt(i) + 3);
    return ids;
  }

  decode(ids: readonly number[]): string {
    return ids.filter((id) => id > 2).map((id) => String.fromCharCode(id - 3)).join('');
  }
}
