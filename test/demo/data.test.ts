import t from 'tap';
import { AlpacaRecord } from '../../lib/data/records';
import { FRAME_BANK, STEP_BANKS } from '../../lib/demo/phrasings';
import { buildDemoData, DemoDataOptions } from '../../lib/demo/data';
import { ALPHABET, applyChain, decode, Task, TaskName, TASKS } from '../../lib/demo/tasks';

const base: DemoDataOptions = {
  seed: 5,
  words: [2, 4],
  evalWords: [2, 4],
  trainSteps: 3,
  seqFraction: 0.5,
  heldoutPhrasings: true,
  unseenTasks: [],
  heldoutPairCount: 4,
  items: 60,
};

function take(gen: Generator<AlpacaRecord>, n: number): AlpacaRecord[] {
  return Array.from({ length: n }, () => gen.next().value as AlpacaRecord);
}

/** What an instruction asks for, read from its text alone: tasks in order of mention, and extra steps. */
function readInstruction(instruction: string) {
  const lower = instruction.toLowerCase();
  const at = (phrases: readonly string[]) => Math.min(...phrases.map((p) => lower.indexOf(p.toLowerCase())).filter((i) => i >= 0));
  const tasks = TASKS.map((task) => ({ task, at: at(task.phrasing.all) }))
    .filter((x) => Number.isFinite(x.at))
    .sort((a, b) => a.at - b.at)
    .map((x) => x.task);
  return { tasks, translate: Number.isFinite(at(STEP_BANKS.translate.all)), repeat: Number.isFinite(at(STEP_BANKS.repeat.all)) };
}

/** The expected output of a record, computed from its instruction and input independently of lib/demo/data. */
function expectedOutput(record: AlpacaRecord): string {
  const { tasks, translate, repeat } = readInstruction(record.instruction);
  const plain = translate ? decode(record.input) : record.input;
  if (tasks.length === 0) return plain; // decoding on its own
  const answer = applyChain(tasks, plain);
  const blocks: string[] = [];
  if (repeat) blocks.push(`Repeat:\n${record.input}`);
  if (translate) blocks.push(`Translation into English:\n${plain}`);
  tasks.slice(0, -1).forEach((task, i) => blocks.push(`${task.label}:\n${applyChain(tasks.slice(0, i + 1), plain)}`));
  return blocks.length === 0 ? answer : `${blocks.map((b, i) => `${i + 1}. ${b}\n`).join('')}Result: ${answer}`;
}

const pairKey = (a: TaskName, b: TaskName) => [a, b].sort().join('+');
const plainInput = (r: { instruction: string; input: string }) => (readInstruction(r.instruction).translate ? decode(r.input) : r.input);

t.test('every training record is right: outputs recomputed from instruction and input', async (t) => {
  const data = buildDemoData(base);
  for (const kind of ['it', 'sit'] as const) {
    const records = take(data.trainRecords(kind), 3000);
    let wrong = 0;
    for (const r of records) {
      if (r.output !== expectedOutput(r)) wrong++;
      for (const c of r.instruction + r.input + r.output) if (!ALPHABET.includes(c)) t.fail(`character ${JSON.stringify(c)} outside the tokenizer alphabet`);
    }
    t.equal(wrong, 0, `${kind}: all ${records.length} outputs as expected`);
    const multi = records.filter((r) => /^1\. /.test(r.output));
    if (kind === 'it') {
      t.equal(multi.length, 0, 'IT: single-step instructions only');
      t.notOk(records.some((r) => FRAME_BANK.all.some((f) => r.instruction.startsWith(f.lead))), 'IT: no sequential frames');
    } else {
      // half the SIT examples are sequential; 3000 draws put the share well inside 0.45-0.55
      t.ok(multi.length > 0.45 * records.length && multi.length < 0.55 * records.length, `SIT: ${multi.length} sequential`);
      const lengths = new Set(multi.map((r) => readInstruction(r.instruction).tasks.length));
      t.same([...lengths].sort(), [1, 2, 3], 'SIT: repeat/decode-then-task, and chains of 2 and 3 tasks');
      t.ok(multi.some((r) => readInstruction(r.instruction).repeat) && multi.some((r) => readInstruction(r.instruction).translate));
      t.notOk(multi.some((r) => readInstruction(r.instruction).tasks.some((x) => x.name === 'count')), 'count is never a step of a sequential instruction');
    }
  }
});

t.test('held-out task pairs are never together in a training instruction', async (t) => {
  const data = buildDemoData(base);
  t.equal(data.heldoutPairs.length, 4);
  const heldout = new Set(data.heldoutPairs.map(([a, b]) => pairKey(a, b)));
  const seenPairs = new Set<string>();
  for (const kind of ['it', 'sit'] as const) {
    for (const r of take(data.trainRecords(kind), 4000)) {
      const names = readInstruction(r.instruction).tasks.map((x) => x.name);
      for (const a of names) for (const b of names) if (a < b) seenPairs.add(pairKey(a, b));
    }
  }
  for (const key of heldout) t.notOk(seenPairs.has(key), `${key} never trained together`);
  // the test is not vacuous: every other pair of the six chainable tasks is trained
  t.equal(seenPairs.size, 15 - 4);
  for (const [a, b] of data.heldoutPairs) {
    t.ok([...seenPairs].some((k) => k.split('+').includes(a)) && [...seenPairs].some((k) => k.split('+').includes(b)), `${a} and ${b} are trained in other pairs`);
  }
  const chain2 = data.splits.find((s) => s.name === 'chain2-unseen')!;
  for (const item of chain2.items) {
    const tasks = readInstruction(item.instruction).tasks;
    t.equal(tasks.length, 2);
    t.ok(heldout.has(pairKey(tasks[0].name, tasks[1].name)), item.instruction);
    t.equal(item.gold, applyChain(tasks, item.input));
    t.same(item.steps, [{ label: tasks[0].label, text: tasks[0].apply(item.input) }]);
  }
});

t.test('eval splits: the requested shapes, golds recomputed, inputs never trained on', async (t) => {
  const data = buildDemoData(base);
  t.same(data.splits.map((s) => s.name), ['single', 'chain2-unseen', 'chain3-unseen', 'chain3-seen', 'decode-seen']);
  const evalInputs = new Set<string>();
  for (const split of data.splits) {
    t.equal(split.items.length, 60);
    t.equal(new Set(split.items.map((i) => i.id)).size, 60, 'unique ids');
    for (const item of split.items) {
      const { tasks, translate } = readInstruction(item.instruction);
      const plain = plainInput(item);
      evalInputs.add(plain);
      t.equal(item.gold, applyChain(tasks, plain), item.id);
      const expectedSteps = { single: 0, 'chain2-unseen': 1, 'chain3-unseen': 2, 'chain3-seen': 2, 'decode-seen': 1 }[split.name];
      t.equal(item.steps.length, expectedSteps, `${item.id} steps`);
      t.equal(tasks.length, split.name === 'decode-seen' ? 1 : split.name === 'single' ? 1 : expectedSteps! + 1);
      t.equal(translate, split.name === 'decode-seen');
    }
  }
  for (const kind of ['it', 'sit'] as const) {
    const leaked = take(data.trainRecords(kind), 4000).filter((r) => evalInputs.has(plainInput(r)));
    t.equal(leaked.length, 0, `${kind}: no eval input in training`);
  }
});

t.test('no permutation of an eval input is trained on', async (t) => {
  const data = buildDemoData(base);
  // the word multisets of the eval inputs, computed here rather than by lib/demo/data
  const bag = (text: string) => JSON.stringify(text.split(' ').sort());
  const evalBags = new Set(data.splits.flatMap((s) => s.items.map((i) => bag(plainInput(i)))));
  // not vacuous: 2-word inputs have only C(56, 2) = 1540 bags, so a few percent of the 2-word
  // training inputs would be permutations of an eval input if only exact strings were excluded
  const twoWordBags = [...evalBags].filter((b) => JSON.parse(b).length === 2).length;
  t.ok(twoWordBags > 40, `${twoWordBags} 2-word eval bags`);
  for (const kind of ['it', 'sit'] as const) {
    const records = take(data.trainRecords(kind), 6000);
    const leaked = records.filter((r) => evalBags.has(bag(plainInput(r))));
    t.equal(leaked.length, 0, `${kind}: no training input is an eval input in any word order`);
    t.ok(records.filter((r) => plainInput(r).split(' ').length === 2).length > 1000, 'many 2-word training inputs drawn');
  }
});

t.test('unseen compositions hold a held-out pair; seen ones are trained chain types', async (t) => {
  const data = buildDemoData(base);
  const heldout = new Set(data.heldoutPairs.map(([a, b]) => pairKey(a, b)));
  const holdsPair = (names: TaskName[]) => names.some((a, i) => names.some((b, j) => i < j && heldout.has(pairKey(a, b))));
  const trainedChains = new Set(
    take(data.trainRecords('sit'), 6000)
      .map((r) => readInstruction(r.instruction).tasks.map((x) => x.name))
      .filter((names) => names.length === 3)
      .map((names) => names.join('>')),
  );
  const chains = (name: string) => data.splits.find((s) => s.name === name)!.items.map((i) => readInstruction(i.instruction).tasks.map((x) => x.name));
  const unseen = chains('chain3-unseen');
  t.ok(unseen.every((names) => names.length === 3 && holdsPair(names)), 'chain3-unseen: every chain holds a held-out pair');
  t.notOk(unseen.some((names) => trainedChains.has(names.join('>'))), 'chain3-unseen: no chain is trained');
  t.ok(new Set(unseen.map((n) => n.join('>'))).size > 10, 'chain3-unseen: many compositions');
  const seen = chains('chain3-seen');
  t.ok(seen.every((names) => names.length === 3 && !holdsPair(names) && trainedChains.has(names.join('>'))), 'chain3-seen: trained chains');
  const two = buildDemoData({ ...base, trainSteps: 2 });
  t.ok(two.splits.some((s) => s.name === 'chain3') && !two.splits.some((s) => s.name === 'chain3-seen'), 'with 2-step training the 3-step split is not called seen');
});

t.test('deterministic per seed', async (t) => {
  const a = buildDemoData(base);
  const b = buildDemoData(base);
  t.same(a.splits, b.splits);
  t.same(take(a.trainRecords('sit'), 300), take(b.trainRecords('sit'), 300));
  t.same(take(a.trainRecords('it'), 300), take(b.trainRecords('it'), 300));
  const c = buildDemoData({ ...base, seed: 6 });
  t.notSame(c.splits, a.splits);
  t.notSame(take(c.trainRecords('sit'), 50), take(a.trainRecords('sit'), 50));
});

t.test('analyses: number of steps, held-out phrasings, unseen tasks, prompt length', async (t) => {
  const two = buildDemoData({ ...base, trainSteps: 2 });
  t.notOk(take(two.trainRecords('sit'), 2000).some((r) => readInstruction(r.instruction).tasks.length > 2), 'train-steps 2: no 3-task chains');
  t.throws(() => buildDemoData({ ...base, trainSteps: 4 }), /trainSteps must be 2 or 3/);

  const verb = buildDemoData(base); // held-out phrasings, the default
  const phrasesIn = (texts: string[]) => {
    const found = new Set<string>();
    const bank = [...TASKS.flatMap((x) => x.phrasing.all), ...STEP_BANKS.repeat.all, ...STEP_BANKS.translate.all];
    for (const text of texts) for (const p of bank) if (text.toLowerCase().includes(p.toLowerCase())) found.add(p);
    return found;
  };
  const trained = phrasesIn([...take(verb.trainRecords('sit'), 3000), ...take(verb.trainRecords('it'), 1000)].map((r) => r.instruction));
  const evaluated = phrasesIn(verb.splits.flatMap((s) => s.items.map((i) => i.instruction)));
  t.same([...trained].filter((p) => evaluated.has(p)), [], 'no phrasing both trained and evaluated');
  t.ok(evaluated.size > 10 && trained.size > 10);
  const shared = buildDemoData({ ...base, heldoutPhrasings: false });
  const sharedTrained = phrasesIn(take(shared.trainRecords('sit'), 3000).map((r) => r.instruction));
  const sharedEvaluated = phrasesIn(shared.splits.flatMap((s) => s.items.map((i) => i.instruction)));
  t.ok([...sharedTrained].filter((p) => sharedEvaluated.has(p)).length > 10, 'shared phrasings: evaluated ones are trained');

  const unseen = buildDemoData({ ...base, unseenTasks: ['shift'] });
  const isShift = (x: Task) => x.name === 'shift';
  for (const r of take(unseen.trainRecords('sit'), 3000)) {
    const read = readInstruction(r.instruction);
    if (read.tasks.some(isShift)) t.ok(read.tasks.length === 1 && !read.repeat && !read.translate, 'shift only as a single step');
  }
  const split = unseen.splits.find((s) => s.name === 'unseen-task')!;
  t.ok(split.items.every((i) => readInstruction(i.instruction).tasks.some(isShift)));
  t.notOk(unseen.heldoutPairs.some((p) => p.includes('shift')));

  const long = buildDemoData({ ...base, evalWords: [6, 7] });
  for (const s of long.splits) for (const i of s.items) t.ok([6, 7].includes(plainInput(i).split(' ').length));
  t.ok(take(long.trainRecords('it'), 500).every((r) => plainInput(r).split(' ').length <= 4), 'training inputs keep their own length');
  t.throws(() => buildDemoData({ ...base, words: [1, 3] }), /word ranges/);
});
