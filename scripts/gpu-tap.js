'use strict';
/**
 * The few tap calls the GPU-only tests make (test/ops/cuda-wiring.test.ts, test/runtime/device.test.ts),
 * on node:test and node:assert, for the GPU machine: it gets only the production node_modules, and
 * tap with its dependencies is about 150 MB. `scripts/gpu.sh prepare` installs this file as
 * .gpu/prod/node_modules/tap and compiles those tests into dist/test (scripts/tsconfig.gpu-tests.json);
 * `scripts/gpu.sh tests` runs them. As in tap, a failed assertion does not stop its test; the test
 * fails at its end with every failed assertion listed. Not a tap replacement: only these calls.
 */
const nodeTest = require('node:test');
const assert = require('node:assert');

/** Partial match, as tap's t.match: a RegExp or string against a string, an object by its keys. */
function matches(actual, pattern) {
  if (pattern instanceof RegExp) return pattern.test(String(actual));
  if (typeof pattern === 'string') return String(actual).includes(pattern);
  if (pattern && typeof pattern === 'object') return actual != null && Object.keys(pattern).every((k) => matches(actual[k], pattern[k]));
  return actual === pattern;
}

function wrap(ctx) {
  const failures = [];
  let passed = 0;
  const check = (fn, message) => {
    try {
      fn();
      passed++;
    } catch (error) {
      failures.push(`${message ?? 'assertion'}: ${error.message.replace(/\s+/g, ' ').slice(0, 300)}`);
    }
  };
  const note = (line) => (ctx.diagnostic ? ctx.diagnostic(line) : console.log(`# ${line}`));
  const t = {
    test(name, options, fn) {
      if (typeof options === 'function') [options, fn] = [{}, options];
      return ctx.test(name, { skip: options.skip || false, todo: options.todo || false }, async (sub) => {
        const inner = wrap(sub);
        await fn(inner.t);
        inner.finish();
      });
    },
    ok: (value, message) => check(() => assert.ok(value), message),
    notOk: (value, message) => check(() => assert.ok(!value), message),
    equal: (actual, expected, message) => check(() => assert.strictEqual(actual, expected), message),
    not: (actual, expected, message) => check(() => assert.notStrictEqual(actual, expected), message),
    same: (actual, expected, message) => check(() => assert.deepEqual(actual, expected), message),
    strictSame: (actual, expected, message) => check(() => assert.deepStrictEqual(actual, expected), message),
    match: (actual, pattern, message) => check(() => assert.ok(matches(actual, pattern), `${JSON.stringify(actual)} does not match ${pattern}`), message),
    notMatch: (actual, pattern, message) => check(() => assert.ok(!matches(actual, pattern), `${JSON.stringify(actual)} matches ${pattern}`), message),
    type: (value, type, message) =>
      check(() => assert.ok(typeof type === 'string' ? typeof value === type : value instanceof type, `${typeof value} is not ${type.name ?? type}`), message),
    throws: (fn, wanted, message) => {
      if (typeof wanted === 'string') [wanted, message] = [undefined, wanted];
      check(() => (wanted ? assert.throws(fn, wanted) : assert.throws(fn)), message);
    },
    rejects: async (promise, wanted, message) => {
      if (typeof wanted === 'string') [wanted, message] = [undefined, wanted];
      const p = typeof promise === 'function' ? promise() : promise;
      try {
        await (wanted ? assert.rejects(p, wanted) : assert.rejects(p));
        passed++;
      } catch (error) {
        failures.push(`${message ?? 'rejects'}: ${error.message.replace(/\s+/g, ' ').slice(0, 300)}`);
      }
    },
    pass: (message) => check(() => undefined, message),
    fail: (message) => check(() => assert.fail(message), message),
    skip: (message) => note(`SKIP ${message}`),
    comment: (message) => note(message),
  };
  return {
    t,
    finish() {
      note(`${passed} passed, ${failures.length} failed`);
      if (failures.length) throw new Error(`${failures.length} failed:\n  ${failures.join('\n  ')}`);
    },
  };
}

module.exports = wrap({ test: (name, options, fn) => nodeTest(name, options, fn) }).t;
