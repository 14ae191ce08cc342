/** The gateway connection against a real server: join, send, resume, the outbox. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChorusError, ClientClosed, HttpApi, RealtimeClient } from '../src/index.js';
import { DEAD_GATEWAY, Line, PASSWORD, SERVER_URL, collectMessages, connected, nextEvent, newUser, uniqueName, until } from './helpers.js';

/**
 * Two users in a new public room, both connected and joined.
 * @param {import('node:test').TestContext} t
 * @param {{aliceLine?: Line, bobLine?: Line}} [lines]
 */
async function twoInARoom(t, lines = {}) {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const room = await alice.createRoom(uniqueName('room'));
  await bob.joinRoom(room.id);
  const a = await connected(t, alice, lines.aliceLine ? { WebSocket: lines.aliceLine.WebSocket } : {});
  const b = await connected(t, bob, lines.bobLine ? { WebSocket: lines.bobLine.WebSocket } : {});
  await a.join(room.id);
  await b.join(room.id);
  return { alice, bob, room, a, b };
}

/**
 * The messages' bodies, and a check that their seqs leave no gap and repeat none.
 * @param {import('../src/types.js').MessageEvent[]} messages
 */
function bodiesInOrder(messages) {
  const seqs = messages.map((m) => m.seq);
  assert.deepEqual(seqs, [...new Set(seqs)].sort((x, y) => x - y), 'no duplicates, in seq order');
  return messages.map((m) => m.body);
}

test('connect says hello, join answers the latest seq, send is acknowledged with the stored message', async (t) => {
  const { room, a, alice } = await twoInARoom(t);
  assert.equal(a.connected, true);
  assert.equal(a.ready?.user_id, alice.user.id);
  const message = await a.send(room.id, 'Hello, world!', { clientId: 'c-hello' });
  assert.equal(message.body, 'Hello, world!');
  assert.equal(message.client_id, 'c-hello');
  assert.equal(message.room, room.id);
  assert.equal(message.sender, alice.user.id);
  assert.ok(message.seq >= 1);
  assert.equal(a.unacknowledged, 0);
  assert.deepEqual(await a.outbox.list(), []);
});

test('a second client receives the message, once', async (t) => {
  const { room, a, b } = await twoInARoom(t);
  const received = collectMessages(b);
  const sent = await a.send(room.id, 'for bob');
  await until(() => received.length === 1, 'bob to receive it');
  assert.equal(received[0].id, sent.id);
  assert.equal(received[0].body, 'for bob');
  // Another message proves nothing else (no duplicate) arrived in between.
  await a.send(room.id, 'second');
  await until(() => received.length === 2, 'the second message');
  assert.deepEqual(bodiesInOrder(received), ['for bob', 'second']);
});

test('edits, reactions, deletes, typing and read receipts reach the other client', async (t) => {
  const { room, a, b } = await twoInARoom(t);
  const sent = await a.send(room.id, 'draft');
  const edited = nextEvent(b, 'edited');
  await a.edit(room.id, sent.id, 'final');
  assert.equal((await edited).body, 'final');
  const reacted = nextEvent(b, 'reaction');
  assert.ok((await a.react(room.id, sent.id, '👍')) !== null);
  const reaction = await reacted;
  assert.equal(reaction.emoji, '👍');
  assert.equal(reaction.present, true);
  const typing = nextEvent(b, 'typing');
  a.typing(room.id);
  assert.equal((await typing).room, room.id);
  const reply = await b.send(room.id, 'a reply', { thread: sent.id });
  assert.equal(reply.thread, sent.id);
  const marker = await b.markRead(room.id, reply.seq);
  assert.equal(marker, reply.seq);
  const deleted = nextEvent(b, 'deleted');
  await a.delete(room.id, sent.id);
  assert.equal((await deleted).message, sent.id);
});

test('a refused send rejects with the code and leaves the outbox', async (t) => {
  const alice = await newUser('alice');
  const a = await connected(t, alice);
  const failed = nextEvent(a, 'send_failed');
  await assert.rejects(a.send('r_nowhere', 'lost'), (error) => error instanceof ChorusError && error.code === 'not_joined');
  assert.equal((await failed).error.code, 'not_joined');
  assert.equal(a.unacknowledged, 0);
});

test('a reconnect resumes the room without gaps or duplicates', async (t) => {
  const bobLine = new Line();
  const { room, a, b } = await twoInARoom(t, { bobLine });
  const received = collectMessages(b);
  await a.send(room.id, 'before');
  await until(() => received.length === 1, 'the first message');
  const lost = nextEvent(b, 'connection_lost');
  bobLine.hold();
  bobLine.cut();
  await lost;
  assert.equal(b.connected, false);
  for (const body of ['one', 'two', 'three', 'four', 'five']) await a.send(room.id, body);
  const back = nextEvent(b, 'reconnected');
  bobLine.release();
  const reconnected = await back;
  // The missed messages came first, from the resume.
  assert.deepEqual(bodiesInOrder(received), ['before', 'one', 'two', 'three', 'four', 'five']);
  assert.equal(reconnected.caught_up, 5);
  await a.send(room.id, 'after');
  await until(() => received.length === 7, 'the live message after the resume');
  assert.deepEqual(bodiesInOrder(received).slice(-2), ['five', 'after']);
});

test('messages sent while disconnected go out after the reconnect, exactly once', async (t) => {
  const aliceLine = new Line();
  const { room, a, b } = await twoInARoom(t, { aliceLine });
  const received = collectMessages(b);
  const lost = nextEvent(a, 'connection_lost');
  aliceLine.hold();
  aliceLine.cut();
  await lost;
  const sends = ['one', 'two', 'three'].map((body) => a.send(room.id, body));
  await until(async () => (await a.outbox.list()).length === 3, 'the outbox to hold them');
  assert.equal(a.unacknowledged, 3);
  aliceLine.release();
  const stored = await Promise.all(sends);
  assert.deepEqual(stored.map((m) => m.body), ['one', 'two', 'three']);
  await until(() => received.length === 3, 'bob to receive them');
  assert.deepEqual(bodiesInOrder(received), ['one', 'two', 'three']);
  assert.deepEqual(received.map((m) => m.id), stored.map((m) => m.id));
  assert.equal(a.unacknowledged, 0);
});

test('a send whose ack was lost is sent again and stored once', async (t) => {
  const aliceLine = new Line();
  const { room, a, b } = await twoInARoom(t, { aliceLine });
  const received = collectMessages(b);
  // The connection drops right after the send frame left: the server stores the
  // message, the ack never arrives.
  aliceLine.onSend = (frame, ws) => {
    if (frame.type === 'send' && frame.body === 'exactly once') {
      aliceLine.onSend = null;
      ws.close();
    }
  };
  const message = await a.send(room.id, 'exactly once', { clientId: 'c-once' });
  const sendFrames = aliceLine.sent.filter((frame) => frame.type === 'send' && frame.client_id === 'c-once');
  assert.ok(sendFrames.length >= 2, 'sent again after the reconnect');
  await a.send(room.id, 'marker');
  await until(() => received.some((m) => m.body === 'marker'), 'the marker');
  const copies = received.filter((m) => m.client_id === 'c-once');
  assert.equal(copies.length, 1);
  assert.equal(copies[0].id, message.id);
});

test('a persistent outbox is sent by the next client (a reload), exactly once', async (t) => {
  const { room, b, alice } = await twoInARoom(t);
  const received = collectMessages(b);
  /** @type {Map<string, import('../src/outbox.js').OutboxEntry>} */
  const kept = new Map();
  /** An outbox surviving the client, like the web client's IndexedDB one. */
  const outbox = {
    list: async () => [...kept.values()],
    put: async (/** @type {import('../src/outbox.js').OutboxEntry} */ entry) => void kept.set(entry.client_id, entry),
    delete: async (/** @type {string} */ clientId) => void kept.delete(clientId),
  };
  const line = new Line();
  line.hold(); // the page was offline: these were never sent
  const offline = new RealtimeClient(alice, { outbox, WebSocket: line.WebSocket, maxBackoffMs: 300 });
  const connecting = offline.connect().catch((/** @type {unknown} */ error) => error);
  const lostSends = ['written', 'offline'].map((body) =>
    offline.send(room.id, body).catch((/** @type {unknown} */ error) => error),
  );
  await until(() => kept.size === 2, 'the outbox to keep both');
  await offline.close();
  assert.ok((await connecting) instanceof ClientClosed, 'connect() gave up with the client');
  for (const outcome of await Promise.all(lostSends)) assert.ok(outcome instanceof ClientClosed);
  assert.equal(kept.size, 2);

  const online = new RealtimeClient(alice, { outbox, maxBackoffMs: 300 });
  t.after(() => online.close());
  /** @type {string[]} */
  const sentIds = [];
  online.on('sent', (event) => sentIds.push(event.client_id));
  await online.connect();
  await until(() => kept.size === 0, 'the outbox to empty');
  assert.deepEqual(sentIds.sort(), [...sentIds].sort());
  assert.equal(sentIds.length, 2);
  await until(() => received.length === 2, 'bob to receive both');
  assert.deepEqual(bodiesInOrder(received), ['written', 'offline']);
});

test('sends past the rate limit are retried until stored, each once', async (t) => {
  const { room, a, b } = await twoInARoom(t);
  const received = collectMessages(b);
  const bodies = Array.from({ length: 12 }, (_, n) => `burst ${n}`);
  const stored = await Promise.all(bodies.map((body) => a.send(room.id, body)));
  assert.deepEqual(stored.map((m) => m.body), bodies);
  await until(() => received.length === bodies.length, 'bob to receive them all');
  assert.equal(new Set(received.map((m) => m.client_id)).size, bodies.length);
});

test('a room the user is added to is followed by itself', async (t) => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const b = await connected(t, bob);
  const added = nextEvent(b, 'room_added');
  const dm = await alice.directRoom(bob.user.id);
  assert.equal((await added).room, dm.id);
  const received = collectMessages(b);
  await alice.post(dm.id, 'psst');
  await until(() => received.length === 1, 'the direct message');
  assert.equal(received[0].body, 'psst');
});

test('a dead gateway is failed over to the next one the server lists', async (t) => {
  /** @type {string[]} */
  const tried = [];
  // The server lists a gateway that is down first (a node that died).
  /** @type {typeof fetch} */
  const withDeadGateway = async (input, init) => {
    const response = await fetch(input, init);
    if (!String(input).endsWith('/api/v1/gateway')) return response;
    const { urls } = await response.json();
    return Response.json({ urls: [DEAD_GATEWAY, ...urls] });
  };
  const api = new HttpApi(SERVER_URL, { fetch: withDeadGateway });
  await api.register(uniqueName('failover'), PASSWORD);
  const line = new Line();
  const client = await connected(t, api, { WebSocket: line.WebSocket });
  for (const ws of line.sockets) tried.push(ws.url);
  assert.equal(tried[0], DEAD_GATEWAY);
  assert.notEqual(tried.at(-1), DEAD_GATEWAY);
  assert.equal(client.connected, true);
});

test('a room too far behind for a resume is caught up over HTTP, in order, once', async (t) => {
  const bobLine = new Line();
  const { room, a, b } = await twoInARoom(t, { bobLine });
  const limit = /** @type {import('../src/types.js').ReadyFrame} */ (b.ready).resume_limit;
  const received = collectMessages(b);
  const lost = nextEvent(b, 'connection_lost');
  bobLine.hold();
  bobLine.cut();
  await lost;
  const bodies = Array.from({ length: limit + 3 }, (_, n) => `missed ${n}`);
  for (const body of bodies) await a.send(room.id, body);
  const tooFar = nextEvent(b, 'too_far');
  bobLine.release();
  assert.equal((await tooFar).room, room.id);
  await until(() => received.length === bodies.length, 'the catch-up');
  assert.deepEqual(bodiesInOrder(received), bodies);
  await a.send(room.id, 'live again');
  await until(() => received.length === bodies.length + 1, 'the next live message');
  assert.deepEqual(bodiesInOrder(received).at(-1), 'live again');
});

test('heartbeats keep an idle connection open', async (t) => {
  const line = new Line();
  const alice = await newUser('alice');
  const a = await connected(t, alice, { WebSocket: line.WebSocket });
  const interval = /** @type {import('../src/types.js').ReadyFrame} */ (a.ready).heartbeat_interval_ms;
  // The server closes a connection silent for about two intervals: three pings later
  // it is the same connection.
  await until(() => line.sent.filter((frame) => frame.type === 'ping').length >= 3, 'three pings', 5 * interval);
  assert.equal(line.sockets.length, 1);
  assert.equal(a.connected, true);
});

test('a revoked session ends the client: session_ended, no reconnecting', async (t) => {
  const alice = await newUser('alice');
  const other = new HttpApi(SERVER_URL);
  await other.login(alice.user.username, PASSWORD);
  const a = await connected(t, alice);
  const ended = nextEvent(a, 'session_ended');
  await other.revokeSession(/** @type {import('../src/types.js').Session} */ (alice.session).session_id);
  const { error } = await ended;
  assert.ok(error instanceof ChorusError);
  assert.equal(error.code, 'session_revoked');
  assert.equal(a.connected, false);
  await assert.rejects(a.send('r_any', 'too late'), ChorusError);
  await assert.rejects(alice.refresh(), (e) => e instanceof ChorusError && e.status === 401);
  assert.equal(alice.session, null);
});

test('dropConnection drops at once; reconnectNow skips the backoff wait', async (t) => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const room = await alice.createRoom(uniqueName('room'));
  await bob.joinRoom(room.id);
  const line = new Line();
  // Every pause before reconnecting is a minute: only reconnectNow() brings it back in time.
  const a = await connected(t, alice, { WebSocket: line.WebSocket, baseBackoffMs: 60_000, maxBackoffMs: 60_000, random: () => 1 });
  const b = await connected(t, bob);
  await a.join(room.id);
  await b.join(room.id);
  const received = collectMessages(b);
  a.reconnectNow(); // connected: nothing to do
  assert.equal(line.sockets.length, 1);

  const lost = nextEvent(a, 'connection_lost');
  a.dropConnection('offline');
  assert.equal(a.connected, false, 'dropped at once, not after the close handshake');
  assert.equal((await lost).code, 1000);
  const sent = a.send(room.id, 'written while dropped');
  await until(async () => (await a.outbox.list()).length === 1, 'the outbox to keep it');
  assert.equal(line.sockets.length, 1, 'no reconnect before the minute is over');

  const back = nextEvent(a, 'reconnected', () => true, 10_000);
  a.reconnectNow();
  await back;
  assert.equal(line.sockets.length, 2);
  assert.equal((await sent).body, 'written while dropped');
  await until(() => received.length === 1, 'bob to receive it');
  assert.deepEqual(bodiesInOrder(received), ['written while dropped']);
});

test('a room resumed before connect() is resumed once, with the first connection', async (t) => {
  const alice = await newUser('alice');
  const room = await alice.createRoom(uniqueName('room'));
  for (const body of ['one', 'two', 'three']) await alice.post(room.id, body);
  const line = new Line();
  const client = new RealtimeClient(alice, { WebSocket: line.WebSocket, maxBackoffMs: 300 });
  t.after(() => client.close());
  const received = collectMessages(client);
  const resumed = client.resumeRoom(room.id, 1);
  await client.connect();
  await resumed;
  await until(() => received.length === 2, 'the replay');
  await alice.post(room.id, 'live');
  await until(() => received.length === 3, 'the live message');
  assert.deepEqual(bodiesInOrder(received), ['two', 'three', 'live']);
  const resumes = line.sent.filter((frame) => frame.type === 'resume' && room.id in frame.rooms);
  assert.equal(resumes.length, 1, JSON.stringify(resumes));
  // The server sent each event once: nothing was replayed twice and dropped.
  const seqs = line.received.filter((frame) => frame.type === 'message').map((frame) => frame.seq);
  assert.deepEqual(seqs, [2, 3, 4]);
});
