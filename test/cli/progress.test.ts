/** Progress output: a bar redrawn in place on a terminal, whole lines (one per tenth) in logs. */
import t from 'tap';
import { ProgressLine } from '../../lib/cli/progress';
import { hostRng, testSeed } from '../helpers/random';

const seed = testSeed();
t.comment(`seed ${seed}`);
const rng = hostRng(seed);

function sink(isTTY: boolean) {
  const s = { isTTY, text: '', write: (chunk: string) => ((s.text += chunk), true) };
  return s;
}

t.test('in a log: one line per tenth of the work and the last, no carriage returns', async (t) => {
  for (let c = 0; c < 5; c++) {
    const total = 1 + rng.int(400);
    const out = sink(false);
    const p = new ProgressLine(out);
    for (let done = 1; done <= total; done++) p.update(done, total, `${done}/${total} items`);
    p.end(`(3 resumed from x)`);
    t.notOk(out.text.includes('\r'), 'no \\r');
    const lines = out.text.split('\n').slice(0, -1);
    t.equal(lines[lines.length - 1], '(3 resumed from x)');
    const counts = lines.slice(0, -1).map((l) => Number(/^(\d+)\//.exec(l)![1]));
    t.equal(counts[counts.length - 1], total, 'the last line is the total');
    const tenths = new Set(Array.from({ length: total }, (_, i) => Math.floor((10 * (i + 1)) / total)));
    t.equal(counts.length, tenths.size, `${total} items: a line per tenth reached`);
    t.same(counts, [...counts].sort((a, b) => a - b));
  }
});

t.test('on a terminal: redrawn in place, then ended with a newline', async (t) => {
  const out = sink(true);
  const p = new ProgressLine(out);
  p.update(1, 2, '1/2 items');
  p.update(2, 2, '2/2 items');
  p.end('(done)');
  t.equal(out.text, '\r1/2 items\x1b[K\r2/2 items\x1b[K (done)\n');
});
