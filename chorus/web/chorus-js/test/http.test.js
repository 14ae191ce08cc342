/** The HTTP helpers a client needs, against a real server. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChorusError } from '../src/index.js';
import { newUser, uniqueName, until } from './helpers.js';

test('the room list carries unread and mention counts; read markers clear them', async () => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const room = await alice.createRoom(uniqueName('room'));
  assert.equal(room.kind, 'public');
  await bob.joinRoom(room.id);
  await alice.post(room.id, 'hello everyone');
  const last = await alice.post(room.id, `@${bob.user.username} look`);
  const listed = (await bob.roomsWithUnread()).find((r) => r.id === room.id);
  assert.ok(listed);
  assert.equal(listed.unread, 2);
  assert.equal(listed.mentions, 1);
  assert.equal(await bob.markRead(room.id, last.seq), last.seq);
  const after = (await bob.roomsWithUnread()).find((r) => r.id === room.id);
  assert.equal(after?.unread, 0);
  assert.equal(after?.read_seq, last.seq);
  const inbox = await bob.notifications();
  assert.equal(inbox[0].message, last.id);
  await bob.markNotificationsRead();
  assert.ok((await bob.notifications()).every((n) => n.read_at !== null));
});

test('a direct room by username is the same room both ways', async () => {
  const alice = await newUser('alice');
  const bob = await newUser('bob');
  const dm = await alice.directRoomByName(bob.user.username.toUpperCase());
  assert.equal(dm.kind, 'direct');
  assert.equal((await bob.directRoomByName(alice.user.username)).id, dm.id);
  const listed = (await alice.myRooms()).find((r) => r.id === dm.id);
  assert.deepEqual(listed?.others?.map((u) => u.id), [bob.user.id]);
  await assert.rejects(alice.directRoomByName('nobody_here'), (error) => error instanceof ChorusError && error.status === 404);
});

test('history scrolls back a page at a time, with edits applied', async () => {
  const alice = await newUser('alice');
  const room = await alice.createRoom(uniqueName('history'));
  const posted = [];
  for (let n = 0; n < 7; n++) posted.push(await alice.post(room.id, `m${n}`));
  const latest = await alice.history(room.id, { limit: 3 });
  assert.deepEqual(latest.map((m) => m.body), ['m4', 'm5', 'm6']);
  const older = await alice.history(room.id, { before: latest[0].seq, limit: 3 });
  assert.deepEqual(older.map((m) => m.body), ['m1', 'm2', 'm3']);
  const newer = await alice.events(room.id, { after: posted[5].seq });
  assert.deepEqual(newer.map((e) => e.type), ['message']);
});

test('threads, reactions, search and sessions', async () => {
  const alice = await newUser('alice');
  const room = await alice.createRoom(uniqueName('threads'));
  const root = await alice.post(room.id, 'the zebra question');
  const reply = await alice.post(room.id, 'an answer', { thread: root.id });
  assert.equal(reply.thread, root.id);
  assert.deepEqual((await alice.thread(room.id, root.id)).map((m) => m.id), [reply.id]);
  const detail = await alice.message(room.id, root.id);
  assert.equal(detail.reply_count, 1);
  assert.ok((await alice.followedThreads()).some((t) => t.message.id === root.id));
  await until(async () => (await alice.search('zebra')).some((hit) => hit.message.id === root.id), 'the search index');
  const sessions = await alice.sessions();
  assert.equal(sessions.filter((s) => s.current).length, 1);
  assert.equal(await alice.revokeOtherSessions(), 0);
});

test('gateway discovery lists the server gateways', async () => {
  const alice = await newUser('alice');
  const urls = await alice.gatewayUrls();
  assert.ok(urls.length >= 1);
  assert.match(urls[0], /^wss?:\/\//);
});

test('public rooms are listed for anyone to join', async () => {
  const alice = await newUser('alice');
  const room = await alice.createRoom(uniqueName('open'));
  const hidden = await alice.createRoom(uniqueName('closed'), 'private');
  /** @type {import('../src/types.js').Room[]} */
  const listed = [];
  for (let page = 0, after; page < 50; page++) {
    const rooms = await alice.publicRooms({ limit: 100, after });
    listed.push(...rooms);
    if (rooms.length < 100) break;
    after = rooms[rooms.length - 1].id;
  }
  assert.ok(listed.some((r) => r.id === room.id));
  assert.ok(!listed.some((r) => r.id === hidden.id));
});

test('an uploaded file, once checked, goes with a message', async () => {
  const alice = await newUser('alice');
  const room = await alice.createRoom(uniqueName('files'));
  const bytes = new TextEncoder().encode('minutes of the meeting\n'.repeat(20));
  const uploaded = await alice.uploadFile(new Blob([bytes]), { name: 'notes.txt', contentType: 'text/plain' });
  assert.equal(uploaded.name, 'notes.txt');
  assert.equal(uploaded.size, bytes.length);
  await until(async () => (await alice.file(uploaded.id)).state === 'ready', 'the file check');
  const message = await alice.post(room.id, '', { attachments: [uploaded.id] });
  assert.deepEqual(message.attachments.map((f) => f.id), [uploaded.id]);
  const url = await alice.fileUrl(uploaded.id);
  const fetched = await fetch(url); // absolute, and needs no token
  assert.equal(fetched.status, 200);
  assert.equal(await fetched.text(), 'minutes of the meeting\n'.repeat(20));
});

test('an upload reports its progress, never going back, up to its size', async () => {
  const alice = await newUser('alice');
  // Several of the streamed body's 64 KiB pieces.
  const text = Array.from({ length: 6000 }, (_, n) => `line ${n} of the minutes\n`).join('');
  const bytes = new TextEncoder().encode(text);
  /** @type {[number, number][]} */
  const seen = [];
  const uploaded = await alice.uploadFile(new Blob([bytes]), {
    name: 'minutes.txt',
    contentType: 'text/plain',
    onProgress: (sent, total) => seen.push([sent, total]),
  });
  assert.equal(uploaded.size, bytes.length);
  assert.ok(seen.length > 1, `reported as it went, not once: ${JSON.stringify(seen)}`);
  const sent = seen.map(([done]) => done);
  assert.deepEqual(sent, [...sent].sort((x, y) => x - y), 'never decreasing');
  assert.equal(new Set(sent).size, sent.length, 'each report is new progress');
  assert.equal(sent.at(-1), bytes.length);
  assert.ok(seen.every(([, total]) => total === bytes.length));
  await until(async () => (await alice.file(uploaded.id)).state === 'ready', 'the file check');
  const fetched = await fetch(await alice.fileUrl(uploaded.id));
  assert.equal(await fetched.text(), text, 'the streamed body arrived whole');
});

