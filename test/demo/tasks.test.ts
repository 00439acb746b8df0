import t from 'tap';
import { HostRng } from '../../lib/rng';
import { Bank, bankSide, FRAME_BANK, STEP_BANKS } from '../../lib/demo/phrasings';
import { ALPHABET, applyChain, CIPHER, decode, encode, randomInput, taskByName, TASKS, WORDS } from '../../lib/demo/tasks';

const task = (name: string) => taskByName(name);

t.test('each task on hand-worked examples', async (t) => {
  t.equal(task('reverse').apply('cat dog sun'), 'sun dog cat');
  t.equal(task('uppercase').apply('cat dog'), 'CAT DOG');
  t.equal(task('sort').apply('tree bus kite ant'), 'ant bus kite tree');
  t.equal(task('sort').apply('TREE BUS'), 'BUS TREE', 'upper-case text sorts too');
  t.equal(task('dropvowels').apply('kite moon'), 'kt mn');
  t.equal(task('dropvowels').apply('KITE OWL'), 'KT WL', 'upper-case vowels are vowels');
  t.equal(task('shift').apply('zoo yak'), 'app zbl', 'z wraps to a');
  t.equal(task('shift').apply('ZOO'), 'APP');
  t.equal(task('mirror').apply('cat lamp'), 'tac pmal');
  t.equal(task('count').apply('cat dog sun'), '3');
  t.equal(applyChain([task('reverse'), task('uppercase'), task('count')], 'a bc d'), '3');
  t.equal(applyChain([task('shift'), task('mirror')], 'cat dog'), 'ubd hpe');
  t.throws(() => taskByName('translate'), /unknown demo task 'translate'/);
});

t.test('at least six tasks, each with several distinct phrasings; all but count can be chained', async (t) => {
  t.ok(TASKS.length >= 6);
  for (const x of TASKS) {
    t.ok(x.phrasing.all.length >= 3, x.name);
    t.equal(new Set(x.phrasing.all).size, x.phrasing.all.length, `${x.name}: distinct phrasings`);
  }
  t.same(TASKS.filter((x) => !x.sequential).map((x) => x.name), ['count']);
  // phrases are how the data tests recognise a task inside an instruction
  const all = TASKS.flatMap((x) => x.phrasing.all.map((p) => ({ p, name: x.name })));
  for (const a of all) for (const b of all) if (a.name !== b.name) t.notOk(b.p.includes(a.p), `'${a.p}' is not inside '${b.p}'`);
});

t.test('held-out phrasings: a third of each bank, each a new combination of words its training part uses', async (t) => {
  const banks: Array<[string, Bank<string>]> = [
    ...TASKS.map((x): [string, Bank<string>] => [x.name, x.phrasing]),
    ['repeat', STEP_BANKS.repeat],
    ['translate', STEP_BANKS.translate],
    ['frames', { all: FRAME_BANK.all.map((f) => `${f.lead}|${f.join}|${f.last}`), heldout: FRAME_BANK.heldout.map((f) => `${f.lead}|${f.join}|${f.last}`) }],
  ];
  for (const [name, bank] of banks) {
    const trained = bankSide(bank, true, 'train');
    t.equal(bank.heldout.length * 3, bank.all.length, `${name}: a third held out`);
    t.same(bankSide(bank, true, 'eval'), bank.heldout);
    t.same(bankSide(bank, false, 'train'), bank.all, 'shared: all of it');
    t.equal(new Set(bank.all).size, bank.all.length, `${name}: distinct`);
    for (const p of bank.heldout) {
      t.ok(bank.all.includes(p) && !trained.includes(p), `${name}: '${p}' is evaluated only`);
      const words = (q: string) => q.split(/[ |]/).filter((w) => w !== '');
      for (const word of words(p)) t.ok(trained.some((q) => words(q).includes(word)), `${name}: '${word}' of '${p}' is trained`);
    }
  }
});

t.test('the word list: short, distinct, and every task keeps a word non-empty', async (t) => {
  t.equal(new Set(WORDS).size, WORDS.length);
  for (const w of WORDS) {
    t.match(w, /^[a-z]{3,5}$/);
    t.match(w, /[aeiou]/, `${w} has a vowel`);
    // after any task a word must keep a consonant, so dropping vowels never empties it
    t.match(w, /[^aeiou]/, `${w} has a consonant`);
    t.match(task('shift').apply(w), /[^aeiou]/, `${w} shifted keeps a consonant`);
  }
});

t.test('the cipher is a fixed derangement of a-z, and decode inverts encode', async (t) => {
  t.equal([...CIPHER].sort().join(''), 'abcdefghijklmnopqrstuvwxyz');
  for (let i = 0; i < 26; i++) t.not(CIPHER[i], String.fromCharCode(97 + i), `letter ${i} moves`);
  t.equal(encode('abc xyz'), 'qwe bnm', 'by hand: a->q, b->w, c->e, x->b, y->n, z->m');
  t.equal(decode('qwe bnm'), 'abc xyz');
  t.equal(encode('CAT 3'), 'CAT 3', 'only lower-case letters are encoded');
  const rng = new HostRng(7);
  for (let i = 0; i < 200; i++) {
    const x = randomInput(rng, 2 + rng.int(5));
    t.equal(decode(encode(x)), x);
    t.equal(encode(x).length, x.length);
    for (let k = 0; k < x.length; k++) if (x[k] !== ' ') t.not(encode(x)[k], x[k]);
  }
});

t.test('inputs are deterministic per seed, of distinct known words, in the tokenizer alphabet', async (t) => {
  const a = new HostRng(3);
  const b = new HostRng(3);
  const xs = Array.from({ length: 50 }, () => randomInput(a, 4));
  t.same(Array.from({ length: 50 }, () => randomInput(b, 4)), xs);
  t.not(randomInput(new HostRng(4), 4), xs[0], 'another seed, another input');
  for (const x of xs) {
    const ws = x.split(' ');
    t.equal(ws.length, 4);
    t.equal(new Set(ws).size, 4);
    for (const w of ws) t.ok(WORDS.includes(w));
    for (const name of TASKS.map((y) => y.name)) for (const c of task(name).apply(x)) t.ok(ALPHABET.includes(c), `${name} output char ${c}`);
  }
});
