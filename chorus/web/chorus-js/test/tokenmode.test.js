/** Which token mode an HttpApi picks by default: cookie only for a page's own origin. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HttpApi } from '../src/index.js';

test('node gets JSON mode; a page gets cookie mode for its own origin only', (t) => {
  assert.equal(new HttpApi('http://127.0.0.1:8080').tokenMode, 'json');
  // What a page at http://127.0.0.1:8080/ has (the checks read only these two).
  Object.assign(globalThis, { document: {}, location: new URL('http://127.0.0.1:8080/rooms') });
  t.after(() => {
    Reflect.deleteProperty(globalThis, 'document');
    Reflect.deleteProperty(globalThis, 'location');
  });
  assert.equal(new HttpApi().tokenMode, 'cookie');
  assert.equal(new HttpApi('http://127.0.0.1:8080/').tokenMode, 'cookie');
  assert.equal(new HttpApi('https://chat.example.com').tokenMode, 'json');
  assert.equal(new HttpApi('', { tokenMode: 'json' }).tokenMode, 'json');
});
