/** Reconnect delays: full jitter within bounds, and the draining node's hint. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { backoffDelay, reconnectHint } from '../src/index.js';

test('backoff is full jitter, doubling up to the cap', () => {
  assert.equal(backoffDelay(1, { random: () => 0 }), 0);
  assert.equal(backoffDelay(1, { random: () => 0.999999 }) < 200, true);
  assert.equal(backoffDelay(3, { random: () => 0.5 }), 400);
  assert.equal(backoffDelay(30, { random: () => 1, maxMs: 5000 }), 5000);
});

test('a 4007 reason names the delay, capped at 60 s', () => {
  assert.equal(reconnectHint('draining; retry_after_ms=1234'), 1234);
  assert.equal(reconnectHint('draining; retry_after_ms=999999999'), 60_000);
  assert.equal(reconnectHint('draining'), 0);
});
