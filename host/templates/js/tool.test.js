// Tests of tool.js, run natively: node --test
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidInput, run } from '../src/tool.js';

test('greets', () => {
  assert.deepEqual(run({ name: 'Ada', times: 2 }), { text: 'Hello, Ada! Hello, Ada!' });
});

test('refuses bad input', () => {
  assert.throws(() => run({ name: 'Ada', times: 0 }), InvalidInput);
});
