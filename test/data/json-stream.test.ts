import t from 'tap';
import { JsonArrayScanner } from '../../lib/data/json-stream';
import { isSeqtuneError } from '../../lib/errors';
import { HostRng } from '../../lib/rng';
import { testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = new HostRng(seed);

const ALPHABET = ['a', 'Z', ' ', '\n', '"', '\\', '[', ']', '{', '}', ',', 'é', '中', '\t', '/'];

function randomString(): string {
  let s = '';
  const n = rng.int(12);
  for (let i = 0; i < n; i++) s += ALPHABET[rng.int(ALPHABET.length)];
  return s;
}

function randomValue(depth: number): unknown {
  const kind = rng.int(depth > 2 ? 4 : 6);
  if (kind === 0) return randomString();
  if (kind === 1) return Math.round(rng.normal() * 1000) / 10;
  if (kind === 2) return [true, false, null][rng.int(3)];
  if (kind === 3) return rng.int(100);
  if (kind === 4) return Array.from({ length: rng.int(4) }, () => randomValue(depth + 1));
  return Object.fromEntries(Array.from({ length: rng.int(4) }, () => [randomString(), randomValue(depth + 1)]));
}

/** Pretty or compact JSON, with random whitespace between elements. */
function render(values: unknown[]): string {
  const parts = values.map((v) => JSON.stringify(v, null, rng.int(2) ? 2 : undefined));
  return '[' + parts.map((p) => ' \n'.slice(0, rng.int(3)) + p + '\n '.slice(0, rng.int(3))).join(',') + ']\n';
}

function scan(text: string, chunkSizes: () => number) {
  const scanner = new JsonArrayScanner('mem.json');
  const out = [];
  for (let i = 0; i < text.length; ) {
    const n = Math.max(1, chunkSizes());
    out.push(...scanner.push(text.slice(i, i + n)));
    i += n;
  }
  scanner.end();
  return out;
}

t.test('elements and their start lines match JSON.parse for random arrays split at random points', async (t) => {
  for (let trial = 0; trial < 60; trial++) {
    const values = Array.from({ length: rng.int(8) }, () => randomValue(0));
    const text = render(values);
    const elements = scan(text, () => 1 + rng.int(rng.int(2) ? 3 : 200));
    t.same(elements.map((e) => JSON.parse(e.text)), JSON.parse(text), `trial ${trial}`);
    // expected line of each element: lines before the element's first character in the source
    let from = 1;
    for (const e of elements) {
      const at = text.indexOf(e.text, from);
      t.equal(e.line, text.slice(0, at).split('\n').length, `line of element in trial ${trial}`);
      from = at + e.text.length;
    }
  }
});

t.test('structural errors name the line', async (t) => {
  const cases: Array<[string, RegExp]> = [
    ['{"a": 1}', /expected '\['/],
    ['[{"a": 1}', /unexpected end of file/],
    ['[{"a": 1}\n{"b": 2}]', /mem.json:2: expected ',' or '\]'/],
    ['[1,]', /expected a value/],
    ['[1] x', /after the end of the array/],
    ['[,1]', /expected a value/],
    ['["abc', /unexpected end of file/],
  ];
  for (const [text, message] of cases) {
    t.throws(() => scan(text, () => 3), message, text);
    try {
      scan(text, () => 100);
    } catch (error) {
      t.ok(isSeqtuneError(error, 'ERR_DATA'), `${text}: ERR_DATA`);
    }
  }
});

t.test('empty input and empty array give no elements', async (t) => {
  t.same(scan('', () => 5), []);
  t.same(scan(' [ ] ', () => 1), []);
});
