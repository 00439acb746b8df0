/**
 * scorePredictions: ids by string or index, and every error path naming file:line.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { scorePredictions } from '../../lib/eval/predictions';
import { writeXquad, xquadOutput } from './fixtures';

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

t.test('ids may be the item id or its 0-based index; extra fields are ignored', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const file = join(dir, 'p.jsonl');
  writeFileSync(file, jsonl([0, 1, 2, 3, 4, 5, 6].map((i) => (i % 2 ? { id: i, output: xquadOutput(i), note: 'x' } : { id: String(i), output: xquadOutput(i) }))));
  const { summary, records } = await scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: file });
  t.same(summary.overall, { n: 7, empty: 0, accuracy: 5 / 7, followRate: 5 / 7, correctAndFollowedRate: 3 / 7 });
  t.same(records[3], { id: '3', group: 'vi', prompt: null, output: xquadOutput(3), extracted: 'levi stadium', correct: true, followed: true, gold: 'Levi Stadium' });

  writeFileSync(file, jsonl([{ id: 1, output: '' }, { id: 0, output: 'Result: Denver Broncos' }]));
  const limited = await scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: file, limit: 2 });
  t.same(limited.summary.overall, { n: 2, empty: 1, accuracy: 0.5, followRate: 0.5, correctAndFollowedRate: 0.5 });
  writeFileSync(file, jsonl([0, 1, 2, 3].map((i) => ({ id: i, output: xquadOutput(i) }))));
  const prefix = await scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: file, limit: 3 });
  t.same(prefix.records.map((r) => r.id), ['0', '1', '2'], 'predictions beyond the limit are ignored');
});

t.test('missing, duplicate, unknown and malformed predictions name file:line', async (t) => {
  const dir = t.testdir({});
  const data = writeXquad(dir);
  const file = join(dir, 'p.jsonl');
  const all = [0, 1, 2, 3, 4, 5, 6].map((i) => ({ id: String(i), output: 'x' }));
  const check = async (rows: unknown[] | string, message: RegExp) => {
    writeFileSync(file, typeof rows === 'string' ? rows : jsonl(rows));
    await t.rejects(scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: file }), { code: 'ERR_DATA', message }, String(message));
  };
  // the data file's line of the first item without a prediction (item 3 is on line 5 of the array file)
  await check(all.filter((r) => r.id !== '3' && r.id !== '5'), /xquad_trans_vi\.json:5: item '3' has no prediction in .*p\.jsonl \(2 items have none\)/);
  await check([...all.slice(0, 4), { id: 2, output: 'y' }, ...all.slice(4)], /p\.jsonl:5: duplicate prediction for id '2' \(first on line 3\)/);
  await check([...all, { id: 'de/1', output: 'y' }], /p\.jsonl:8: unknown id 'de\/1'/);
  await check([...all.slice(0, 2), { id: 7, output: 'y' }], /p\.jsonl:3: 'id' must be an item id \(string\) or a 0-based index below 7, got 7/);
  await check([{ id: -1, output: 'y' }], /p\.jsonl:1: 'id' must be/);
  await check([{ id: 1.5, output: 'y' }], /p\.jsonl:1: 'id' must be/);
  await check([{ output: 'y' }], /p\.jsonl:1: 'id' must be .* got nothing/);
  await check([all[0], { id: '1', output: 7 }], /p\.jsonl:2: 'output' must be a string, got 7/);
  await check([all[0], { id: '1' }], /p\.jsonl:2: 'output' must be a string, got nothing/);
  await check([all[0], ['not', 'an', 'object']], /p\.jsonl:2: expected a JSON object/);
  await check(`${jsonl(all.slice(0, 3))}{"id": "3", "out`, /p\.jsonl:4: invalid JSON \(the file ends mid-record: truncated\?\)/);
  await t.rejects(scorePredictions({ bench: 'xquad', dataFile: data, predictionsFile: join(dir, 'none.jsonl') }), { code: 'ERR_IO' });

  await check([...all.slice(2), all[1]], /xquad_trans_vi\.json:2: item '0' has no prediction/);
});
