/**
 * `RealtimeClient`: the gateway connection, kept alive, resumed, and never losing a send.
 * @module
 */

import { backoffDelay, sleep } from './backoff.js';
import { Emitter } from './emitter.js';
import { ChorusError, ClientClosed } from './errors.js';
import { newClientId } from './http.js';
import { MemoryOutbox } from './outbox.js';

/** @typedef {import('./http.js').HttpApi} HttpApi */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('./outbox.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./types.js').EventMap} EventMap */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('./types.js').RoomEvent} RoomEvent */
/** @typedef {import('./types.js').Room} Room */

/** The subprotocol of the gateway (docs/protocol.md, "Transport"). */
export const SUBPROTOCOL = 'chorus.v1';

/** Close codes after which reconnecting is pointless: the session has ended. */
const FATAL_CLOSES = new Set([4002, 1002, 1003, 1007, 1009, 4006]);
const AUTH_FAILED = 4000;
const RATE_LIMITED_CLOSE = 4005;
const RECONNECT = 4007;
const MAX_RECONNECT_DELAY_MS = 60_000;
/** @type {Record<string, number>} close codes of the refusals of `hello` */
const REFUSAL_CLOSES = { invalid_token: AUTH_FAILED, rate_limited: RATE_LIMITED_CLOSE, unavailable: 1001 };
/** Refusals after which a send stays in the outbox and is tried again. */
const RETRYABLE = new Set(['unavailable', 'rate_limited', 'internal']);
/** A send the server keeps failing on (`internal`: a server bug) is given up after this many. */
const INTERNAL_ATTEMPTS = 3;
/** Tries to subscribe to a room the user was added to, when the server asks to retry. */
const FOLLOW_ATTEMPTS = 3;
/** Catch-up pages after `too_far` (the API's largest). */
const CATCH_UP_PAGE = 100;

/**
 * The WebSocket class to use: the browser's (and Node 22's) global `WebSocket`, or
 * any constructor with the same interface (e.g. the `ws` package's).
 * @typedef {new (url: string, protocols: string[]) => WebSocket} WebSocketClass
 */

/**
 * @typedef {object} RealtimeOptions
 * @property {string} [gatewayUrl] connect only there (default: every gateway of
 *   `GET /api/v1/gateway`, in turn after failures)
 * @property {WebSocketClass} [WebSocket] default: the global `WebSocket`
 * @property {Outbox} [outbox] where unacknowledged messages are kept (default: memory)
 * @property {boolean} [followRooms] subscribe by itself to rooms the user is added
 *   to (`room_added`, and rooms found on reconnecting); default true
 * @property {number} [maxBackoffMs] the longest wait between reconnects (default 5000)
 * @property {number} [baseBackoffMs] the longest wait before the first reconnect,
 *   doubled after each failed one up to `maxBackoffMs` (default 100)
 * @property {number} [rateLimitedBackoffMs] the wait after a 4005 `RATE_LIMITED`
 *   close, plus jitter (default 10000)
 * @property {number} [connectTimeoutMs] a gateway not ready within this fails over
 *   (default 10000)
 * @property {() => number} [random] the jitter's source (default `Math.random`)
 * @property {string} [clientName] sent in `hello` for server logs
 */

/**
 * @typedef {object} Waiter
 * @property {(message: Message) => void} resolve
 * @property {(error: Error) => void} reject
 */

/**
 * @typedef {object} Pending
 * @property {OutboxEntry} entry
 * @property {number} attempts refusals with a retryable code so far
 * @property {Waiter[]} waiters `send` calls waiting for the outcome
 */

/**
 * @typedef {object} Request
 * @property {(ref: string) => Record<string, unknown>} make the frame, for a ref
 * @property {(ack: Record<string, any>) => void} resolve
 * @property {(error: Error) => void} reject
 */

/**
 * @typedef {object} Closed
 * @property {number | null} code
 * @property {string} reason
 */

/**
 * The events of a `RealtimeClient`: every server event by its `type`, plus the
 * SDK's own (`connection_lost`, `reconnected`, `room_found`, `sent`, `send_failed`,
 * `session_ended`).
 * @typedef {EventMap & {session_ended: {type: 'session_ended', error: Error}}} RealtimeEvents
 */

/**
 * One user's live connection to the gateway.
 *
 * `connect()` connects, authenticates and keeps the connection alive: after a drop
 * (or a gateway not ready within `connectTimeoutMs`) it reconnects with jittered
 * exponential backoff (after a 4007 close from a draining node: after the delay
 * its reason names) to the next of the server's gateways, resumes every joined
 * room from the last seq it delivered, and re-sends unacknowledged messages with
 * their original client ids (the server answers a retry with the original message,
 * so nothing is stored twice). A room more than the server's `resume_limit` behind
 * (`too_far`) is caught up over HTTP before anything later is emitted. Room events
 * (`message`, `edited`, `deleted`, `reaction`) are emitted exactly once each, in
 * seq order per room; an outage is reported by `connection_lost` then `reconnected`.
 *
 * With `followRooms` (the default) it also subscribes by itself to every room the
 * user is added to while connected (`room_added`), from the seq at which the user
 * was added, and on reconnecting to rooms added meanwhile (`room_found`).
 *
 * Your own messages come back as the result of `send` and a `sent` event, not as
 * `message` events (a resume may replay some of them as `message` events: they
 * carry your `client_id`).
 * @extends {Emitter<RealtimeEvents>}
 */
export class RealtimeClient extends Emitter {
  /**
   * @param {HttpApi} api signed in (or, in cookie mode, able to `refresh`)
   * @param {RealtimeOptions} [options]
   */
  constructor(api, options = {}) {
    super();
    this.api = api;
    this._gatewayUrl = options.gatewayUrl ?? null;
    /** @type {WebSocketClass | undefined} */
    this._WebSocket = options.WebSocket ?? globalThis.WebSocket;
    /** @type {Outbox} */
    this.outbox = options.outbox ?? new MemoryOutbox();
    this._followRooms = options.followRooms ?? true;
    this._maxBackoffMs = options.maxBackoffMs ?? 5000;
    this._baseBackoffMs = options.baseBackoffMs ?? 100;
    this._rateLimitedBackoffMs = options.rateLimitedBackoffMs ?? 10_000;
    this._connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this._random = options.random ?? Math.random;
    this._clientName = options.clientName ?? 'chorus-js';
    /** The last `ready` frame (its `user_id`, `heartbeat_interval_ms`, `resume_limit`). @type {ReadyFrame | null} */
    this.ready = null;
    /** Joined rooms and the last seq emitted from each. @type {Map<string, number>} */
    this.rooms = new Map();
    /** With `followRooms`: the rooms the user is known to be a member of. @type {Set<string> | null} */
    this._memberOf = null;
    /** @type {Map<string, Pending>} in the order they were sent */
    this._pending = new Map();
    /** Requests waiting for a connection. @type {Request[]} */
    this._queued = [];
    /** Requests sent on the current connection, by ref. @type {Map<string, Request>} */
    this._inFlight = new Map();
    /** @type {Map<string, string>} ref → client id of a `send` */
    this._refToClientId = new Map();
    this._refs = 0;
    /** The authenticated socket, null while (re)connecting. @type {WebSocket | null} */
    this._ws = null;
    /** Last seen status per user: the server repeats it per shared room. @type {Map<string, string>} */
    this._presence = new Map();
    this._down = false;
    /** @type {string | null} */
    this._resumeRef = null;
    this._caughtUp = 0;
    this._abort = new AbortController();
    /** @type {Promise<void> | null} */
    this._running = null;
    this._everReady = false;
    /** Why the client stopped for good (closed, or the session ended). @type {Error | null} */
    this._stopped = null;
    /** @type {(() => void) | undefined} */
    this._firstReady = undefined;
    /** @type {((error: Error) => void) | undefined} */
    this._firstFailure = undefined;
    /** Ends the current connection (opening or open) at once. @type {((reason: string) => void) | null} */
    this._dropCurrent = null;
    /** Ends the current wait before reconnecting. @type {(() => void) | null} */
    this._wake = null;
  }

  /** Whether a connection is open and authenticated now. */
  get connected() {
    return this._ws !== null;
  }

  /** Messages sent and not acknowledged yet (kept in the outbox). */
  get unacknowledged() {
    return this._pending.size;
  }

  /**
   * Connect, and stay connected until `close()`. Resolves once the first connection
   * is authenticated (its rooms resumed, the outbox re-sent); rejects if the
   * session has ended (refreshing fails) before that. Entries found in the
   * outbox (a persistent one, after a reload) are sent with their client ids.
   * @returns {Promise<void>}
   */
  async connect() {
    if (this._running !== null) throw new Error('connect() was called already');
    if (this._WebSocket === undefined) {
      throw new Error('no WebSocket here: pass options.WebSocket (Node 20: --experimental-websocket)');
    }
    /** @type {Promise<void>} */
    const first = new Promise((resolve, reject) => {
      this._firstReady = resolve;
      this._firstFailure = reject;
    });
    this._running = this._start().catch((error) => {
      if (this._abort.signal.aborted) return;
      this.emit('session_ended', { type: 'session_ended', error });
      this._shutDown(error);
    });
    return first;
  }

  /** Load the outbox (a persistent one holds what an earlier page could not send), then run. */
  async _start() {
    for (const entry of await this.outbox.list()) {
      this._pending.set(entry.client_id, { entry, attempts: 0, waiters: [] });
    }
    await this._run();
  }

  /**
   * Disconnect for good. Waiting `send` calls reject with `ClientClosed`; their
   * messages stay in the outbox (a persistent outbox sends them next time).
   */
  async close() {
    this._abort.abort(new ClientClosed()); // the open connection closes itself (1000)
    this._shutDown(new ClientClosed());
    await this._running;
  }

  /**
   * Subscribe to a room (kept across reconnects); its latest seq.
   * @param {string} roomId
   * @returns {Promise<number>}
   */
  async join(roomId) {
    const ack = await this._request((ref) => ({ type: 'join', ref, room: roomId }));
    const seq = ack.seq ?? 0;
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, seq);
    this._memberOf?.add(roomId);
    return seq;
  }

  /**
   * Follow a room from `seq`: the events after it are emitted first, then live ones.
   * For a room whose events the application already has (e.g. kept across a page
   * reload); call it before `connect()` to have it resumed with the first connection.
   * Resolves once the server has answered (at once when not connected).
   * @param {string} roomId
   * @param {number} seq
   * @returns {Promise<void>}
   */
  async resumeRoom(roomId, seq) {
    const known = this.rooms.get(roomId);
    if (known !== undefined && known >= seq) return; // followed already, further along
    this.rooms.set(roomId, seq);
    this._memberOf?.add(roomId);
    if (this._ws === null) return; // resumed with the others when the connection opens
    await this._request((ref) => ({ type: 'resume', ref, rooms: { [roomId]: seq } }));
  }

  /**
   * Unsubscribe from a room (membership is unchanged).
   * @param {string} roomId
   */
  async leave(roomId) {
    this.rooms.delete(roomId);
    await this._request((ref) => ({ type: 'leave', ref, room: roomId }));
  }

  /**
   * Post `body` in a joined room (with `thread`, as a reply to that root message);
   * the stored message.
   *
   * The message goes into the outbox first, and is re-sent after every reconnect
   * with the same client id until the server acknowledges it: stored exactly once.
   * Rejects with `ChorusError` if the server refuses it for good (e.g. not joined);
   * then it leaves the outbox (and a `send_failed` event is emitted).
   * @param {string} roomId
   * @param {string} body
   * @param {{clientId?: string, thread?: string | null, attachments?: string[]}} [options]
   * @returns {Promise<Message>}
   */
  async send(roomId, body, { clientId = newClientId(), thread = null, attachments = [] } = {}) {
    /** @type {OutboxEntry} */
    const entry = { client_id: clientId, room: roomId, body, thread, attachments, created_at: Date.now() };
    /** @type {Pending} */
    const pending = { entry, attempts: 0, waiters: [] };
    /** @type {Promise<Message>} */
    const result = new Promise((resolve, reject) => pending.waiters.push({ resolve, reject }));
    if (this._stopped !== null) throw this._stopped;
    // Stored before it is sent: whatever happens next (a reconnect, a reload with a
    // persistent outbox), it is sent again until acknowledged.
    await this.outbox.put(entry);
    this._pending.set(clientId, pending);
    if (this._ws !== null) this._transmit(this._ws, pending);
    return result;
  }

  /**
   * The outbox's entries, oldest first (for showing pending messages).
   * @returns {OutboxEntry[]}
   */
  pendingMessages() {
    return [...this._pending.values()].map((pending) => pending.entry);
  }

  /**
   * Replace the text of your message; the seq of the `edited` event.
   * @param {string} roomId
   * @param {string} messageId
   * @param {string} body
   * @returns {Promise<number>}
   */
  async edit(roomId, messageId, body) {
    const clientId = newClientId(); // the same on every retry: applied once
    const ack = await this._request((ref) => ({ type: 'edit', ref, room: roomId, message: messageId, client_id: clientId, body }));
    return ack.seq ?? 0;
  }

  /**
   * Delete a message (yours, or any as the room's owner or a moderator); the event's seq.
   * @param {string} roomId
   * @param {string} messageId
   * @returns {Promise<number>}
   */
  async delete(roomId, messageId) {
    const clientId = newClientId();
    const ack = await this._request((ref) => ({ type: 'delete', ref, room: roomId, message: messageId, client_id: clientId }));
    return ack.seq ?? 0;
  }

  /**
   * Add (or `remove`) your reaction; the event's seq, null when nothing changed.
   * @param {string} roomId
   * @param {string} messageId
   * @param {string} emoji
   * @param {{remove?: boolean}} [options]
   * @returns {Promise<number | null>}
   */
  async react(roomId, messageId, emoji, { remove = false } = {}) {
    const clientId = newClientId();
    const ack = await this._request((ref) => ({
      type: 'react',
      ref,
      room: roomId,
      message: messageId,
      client_id: clientId,
      emoji,
      remove,
    }));
    return ack.seq ?? null;
  }

  /**
   * Move your read marker in the room forward to `seq`; the stored marker.
   * @param {string} roomId
   * @param {number} seq
   * @returns {Promise<number>}
   */
  async markRead(roomId, seq) {
    const ack = await this._request((ref) => ({ type: 'mark_read', ref, room: roomId, seq }));
    return ack.seq ?? 0;
  }

  /**
   * Tell the room's members this user is typing (dropped while disconnected).
   * @param {string} roomId
   */
  typing(roomId) {
    if (this._ws !== null) this._write(this._ws, { type: 'typing', room: roomId });
  }

  /**
   * Set this user's presence (dropped while disconnected).
   * @param {'online' | 'idle'} status
   */
  setPresence(status) {
    if (this._ws !== null) this._write(this._ws, { type: 'presence', status });
  }

  /**
   * Reconnect now if the client is waiting to (e.g. on the browser's `online`
   * event): the backoff pause after failed attempts is cut short. Nothing happens
   * while a connection is open or being opened.
   */
  reconnectNow() {
    this._wake?.();
  }

  /**
   * Drop the connection at once (e.g. on the browser's `offline` event, as a socket
   * can outlive the network until a timeout) and reconnect as after any drop: with
   * backoff, or at once on `reconnectNow()`. What is sent meanwhile waits in the
   * outbox. Nothing happens while no connection is open or being opened.
   * @param {string} [reason] the close frame's reason (at most 123 bytes)
   */
  dropConnection(reason = 'dropped by the client') {
    this._dropCurrent?.(reason);
  }

  // -- the connection loop ---------------------------------------------------------------

  /** Connect, and reconnect after every drop, until closed or the session ends. */
  async _run() {
    const signal = this._abort.signal;
    const urls = await this._gatewayUrls();
    let turn = 0;
    let attempt = 0;
    while (!signal.aborted) {
      if (this.api.session === null) await this.api.refresh(); // cookie mode after a reload
      const closed = await this._connection(urls[turn % urls.length]);
      if (signal.aborted) return;
      if (closed.ready) attempt = 0;
      if (this._everReady && !this._down) {
        this._down = true;
        this.emit('connection_lost', { type: 'connection_lost', code: closed.code, reason: closed.reason });
      }
      if (closed.code !== null && FATAL_CLOSES.has(closed.code)) {
        const error = closed.code === 4002 ? new ChorusError(401, 'session_revoked', 'the session has ended') : new ChorusError(400, 'closed', `closed ${closed.code}: ${closed.reason}`);
        throw error;
      }
      if (closed.code === AUTH_FAILED) await this.api.refresh(); // throws if the session is over
      // Several gateways: after any failure the next one is tried first, so a dead
      // node's clients fail over at once instead of waiting for it.
      turn += 1;
      const hint = closed.code === RECONNECT ? reconnectHint(closed.reason) : null;
      if (hint !== null) {
        // A draining node spreads its clients over a window: come back when told.
        attempt = 0;
        await this._pause(hint);
        continue;
      }
      attempt += 1;
      const delay = closed.code === RATE_LIMITED_CLOSE ? this._rateLimitedBackoffMs + this._backoff(attempt) : this._backoff(attempt);
      await this._pause(delay);
    }
  }

  /**
   * Wait `ms` before the next try, or less if `reconnectNow()` is called; rejects
   * when the client is closed.
   * @param {number} ms
   * @returns {Promise<void>}
   */
  async _pause(ms) {
    const closed = this._abort.signal;
    if (closed.aborted) throw closed.reason;
    const woken = new AbortController();
    this._wake = () => woken.abort();
    const onClose = () => woken.abort();
    closed.addEventListener('abort', onClose, { once: true });
    try {
      await sleep(ms, woken.signal).catch(() => {});
    } finally {
      this._wake = null;
      closed.removeEventListener('abort', onClose);
    }
    if (closed.aborted) throw closed.reason;
  }

  /**
   * The gateways to use, retrying with backoff while the API cannot be reached.
   * @returns {Promise<string[]>}
   */
  async _gatewayUrls() {
    if (this._gatewayUrl !== null) return [this._gatewayUrl];
    for (let attempt = 1; ; attempt++) {
      try {
        const urls = await this.api.gatewayUrls();
        if (urls.length > 0) return urls;
      } catch (error) {
        if (error instanceof ChorusError && error.status < 500) throw error;
      }
      await this._pause(this._backoff(attempt));
    }
  }

  /**
   * One connection, from the upgrade to its close.
   * @param {string} url
   * @returns {Promise<Closed & {ready: boolean}>}
   */
  _connection(url) {
    return new Promise((resolve) => {
      const WebSocketClass = /** @type {WebSocketClass} */ (this._WebSocket);
      /** @type {WebSocket} */
      let ws;
      try {
        ws = new WebSocketClass(url, [SUBPROTOCOL]);
      } catch (error) {
        resolve({ code: null, reason: String(error), ready: false });
        return;
      }
      let ready = false;
      /** The `error` answering `hello`; the server closes right after it. @type {string | null} */
      let refusal = null;
      let lastHeard = Date.now();
      /** @type {ReturnType<typeof setInterval> | undefined} */
      let heartbeat;
      // Frames are handled one after another, to the end: a catch-up over HTTP
      // (too_far) finishes before any later frame is emitted.
      /** @type {Promise<void>} */
      let chain = Promise.resolve();
      // A gateway that accepts but never answers (a node starting or stopping) fails.
      const opening = setTimeout(() => ws.close(), this._connectTimeoutMs);
      ws.onopen = () => {
        const session = this.api.session;
        if (session === null) {
          ws.close();
          return;
        }
        this._write(ws, { type: 'hello', token: session.access_token, client: this._clientName });
      };
      ws.onmessage = (message) => {
        lastHeard = Date.now();
        /** @type {Record<string, any>} */
        let frame;
        try {
          frame = JSON.parse(String(message.data));
        } catch {
          return; // the server never sends this; nothing to do with it
        }
        chain = chain.then(async () => {
          if (ready) {
            await this._dispatch(ws, frame);
            return;
          }
          if (frame.type === 'error') {
            refusal = String(frame.code);
            return;
          }
          if (frame.type !== 'ready') {
            ws.close();
            return;
          }
          ready = true;
          clearTimeout(opening);
          const interval = frame.heartbeat_interval_ms;
          heartbeat = setInterval(() => {
            // Nothing heard (not even a pong) for two intervals: the link is dead.
            if (Date.now() - lastHeard > 2 * interval) ws.close();
            else this._write(ws, { type: 'ping' });
          }, interval);
          await this._session(ws, /** @type {ReadyFrame} */ (frame));
        }).catch((error) => {
          // A catch-up that failed: reconnect, and resume from what was emitted.
          console.warn('chorus-js: dropping the connection:', error);
          ws.close();
        });
      };
      let finished = false;
      /**
       * @param {number | null} closeCode
       * @param {string} reason
       */
      const finish = (closeCode, reason) => {
        if (finished) return;
        finished = true;
        clearTimeout(opening);
        clearInterval(heartbeat);
        this._abort.signal.removeEventListener('abort', onAbort);
        if (this._dropCurrent === drop) this._dropCurrent = null;
        if (this._ws === ws) this._disconnected();
        // The close after a refused `hello` is told by the `error` before it.
        const code = (refusal !== null && REFUSAL_CLOSES[refusal]) || closeCode;
        resolve({ code, reason: reason || refusal || 'connection closed', ready });
      };
      ws.onclose = (event) => finish(event.code || null, event.reason);
      // Closed or dropped: done at once, whatever the socket reports later (a socket
      // whose network is gone may take long to report its close).
      /** @param {string} why */
      const drop = (why) => {
        finish(1000, why);
        ws.close(1000, why);
      };
      const onAbort = () => drop('client closed');
      this._abort.signal.addEventListener('abort', onAbort);
      this._dropCurrent = drop;
      // Node 20's WebSocket reports a refused connection with `error` only, never
      // `close`; browsers send both (the first one settles).
      ws.onerror = () => {
        finish(null, 'connection failed');
        if (ws.readyState === ws.OPEN) ws.close();
      };
    });
  }

  /**
   * Authenticated: resume the joined rooms, re-send the outbox and queued requests.
   * @param {WebSocket} ws
   * @param {ReadyFrame} ready
   */
  async _session(ws, ready) {
    this.ready = ready;
    const found = this._followRooms ? await this._roomsFound(ready) : [];
    if (ws.readyState !== ws.OPEN || this._abort.signal.aborted) return;
    this._ws = ws;
    this.emit('ready', ready);
    if (this.rooms.size > 0) {
      const ref = this._nextRef();
      if (this._down) {
        this._resumeRef = ref;
        this._caughtUp = 0;
      }
      this._write(ws, { type: 'resume', ref, rooms: Object.fromEntries(this.rooms) });
    } else if (this._down) {
      this._backUp();
    }
    // A message may only be sent in a joined room: one left in a persistent outbox by
    // an earlier page has its room joined first (frames are handled in order).
    const unjoined = new Set([...this._pending.values()].map((p) => p.entry.room).filter((room) => !this.rooms.has(room)));
    for (const room of unjoined) this.join(room).catch(() => {}); // refused: its sends fail too
    for (const pending of this._pending.values()) this._transmit(ws, pending);
    const queued = this._queued.splice(0);
    for (const request of queued) this._sendRequest(ws, request);
    for (const room of found) this.emit('room_found', { type: 'room_found', room });
    this._everReady = true;
    this._firstReady?.();
    this._firstReady = undefined;
    this._firstFailure = undefined;
  }

  /**
   * Rooms the user was added to since the last connection (none on the first one);
   * each is added to the rooms to resume, from the user's read marker when a resume
   * can replay everything unread, else from the room's latest seq.
   * @param {ReadyFrame} ready
   * @returns {Promise<Room[]>}
   */
  async _roomsFound(ready) {
    /** @type {Room[]} */
    let rooms;
    try {
      rooms = await this.api.myRooms();
    } catch (error) {
      console.warn('chorus-js: rooms unavailable, checked on the next reconnect:', error);
      return [];
    }
    const known = this._memberOf;
    this._memberOf = new Set(rooms.map((room) => room.id));
    if (known === null) return [];
    const found = rooms.filter((room) => !known.has(room.id) && !this.rooms.has(room.id));
    for (const room of found) {
      const read = room.read_seq ?? 0;
      this.rooms.set(room.id, room.last_seq - read <= ready.resume_limit ? read : room.last_seq);
    }
    return found;
  }

  _disconnected() {
    this._ws = null;
    this._resumeRef = null;
    this._refToClientId.clear();
    // No answer will come on this connection: sent again after the reconnect.
    this._queued.unshift(...this._inFlight.values());
    this._inFlight.clear();
  }

  _backUp() {
    this._down = false;
    this._resumeRef = null;
    this.emit('reconnected', { type: 'reconnected', caught_up: this._caughtUp });
  }

  /**
   * @param {number} attempt
   * @returns {number}
   */
  _backoff(attempt) {
    return backoffDelay(attempt, { baseMs: this._baseBackoffMs, maxMs: this._maxBackoffMs, random: this._random });
  }

  /** @param {Error} error */
  _shutDown(error) {
    this._stopped ??= error; // later calls are refused with it
    this._firstFailure?.(error); // a `connect()` still waiting for its first connection
    this._firstReady = undefined;
    this._firstFailure = undefined;
    for (const request of [...this._queued, ...this._inFlight.values()]) request.reject(error);
    this._queued = [];
    this._inFlight.clear();
    for (const pending of this._pending.values()) {
      for (const waiter of pending.waiters.splice(0)) waiter.reject(error);
    }
  }

  // -- frames ----------------------------------------------------------------------------

  /**
   * @param {WebSocket} ws
   * @param {Record<string, any>} frame
   */
  async _dispatch(ws, frame) {
    const ref = frame.ref ?? null;
    if ((frame.type === 'ack' || frame.type === 'error') && ref !== null && ref === this._resumeRef) {
      if (frame.type === 'error') console.warn('chorus-js: resume refused:', frame.code, frame.message);
      this._backUp();
      return;
    }
    switch (frame.type) {
      case 'message':
        this._deliver(frame.room, frame.seq, /** @type {any} */ (frame));
        return;
      case 'edited':
      case 'deleted':
      case 'reaction':
        this._deliver(frame.room, frame.seq, /** @type {any} */ (frame));
        return;
      case 'ack':
        if (frame.message != null) await this._acknowledged(frame.message, frame.seq);
        this._answer(ref, frame);
        return;
      case 'error':
        if (ref !== null && this._inFlight.has(ref)) this._answer(ref, frame);
        else await this._refused(ws, ref, frame.code, frame.message);
        return;
      case 'too_far':
        await this._catchUp(frame.room, frame.after_seq);
        this.emit('too_far', /** @type {any} */ (frame));
        return;
      case 'room_added':
        this._memberOf?.add(frame.room);
        if (this._followRooms && !this.rooms.has(frame.room)) {
          this.rooms.set(frame.room, frame.seq);
          void this._follow(frame.room, frame.seq);
        }
        this.emit('room_added', /** @type {any} */ (frame));
        return;
      case 'room_removed':
        this._memberOf?.delete(frame.room);
        this.rooms.delete(frame.room);
        this.emit('room_removed', /** @type {any} */ (frame));
        return;
      case 'presence':
        if (this._presence.get(frame.user) !== frame.status) {
          this._presence.set(frame.user, frame.status);
          this.emit('presence', /** @type {any} */ (frame));
        }
        return;
      case 'typing':
      case 'receipt':
      case 'notification':
      case 'notice':
      case 'room_invited':
      case 'file':
        this.emit(frame.type, /** @type {any} */ (frame));
        return;
      default:
        return; // pong, replayed: nothing to do
    }
  }

  /**
   * Emit a room event unless it was emitted already (replays, catch-ups and live
   * events overlap: deduplicated by (room, seq)).
   * @param {string} room
   * @param {number} seq
   * @param {RoomEvent} event
   */
  _deliver(room, seq, event) {
    const last = this.rooms.get(room);
    if (last !== undefined && seq <= last) return;
    this.rooms.set(room, seq);
    if (this._resumeRef !== null && event.type === 'message') this._caughtUp += 1;
    this.emit(event.type, /** @type {any} */ (event));
  }

  /**
   * Subscribe to a room the user was just added to, from the seq they were added at.
   * @param {string} room
   * @param {number} seq
   */
  async _follow(room, seq) {
    for (let attempt = 1; attempt <= FOLLOW_ATTEMPTS; attempt++) {
      try {
        await this._request((ref) => ({ type: 'resume', ref, rooms: { [room]: seq } }));
        return;
      } catch (error) {
        const retry = error instanceof ChorusError && RETRYABLE.has(error.code) && attempt < FOLLOW_ATTEMPTS;
        if (!retry) {
          if (!(error instanceof ClientClosed)) console.warn('chorus-js: cannot follow room', room, error);
          this.rooms.delete(room);
          return;
        }
      }
      await sleep(this._backoff(attempt), this._abort.signal).catch(() => {});
    }
  }

  /**
   * Fetch over HTTP what a resume could not replay (`too_far`), in order, before any
   * later frame. If the API cannot be reached (or answers 5xx) this throws, and the
   * connection is dropped: the next resume starts from the last seq emitted.
   * @param {string} room
   * @param {number} afterSeq
   */
  async _catchUp(room, afterSeq) {
    let after = Math.max(afterSeq, this.rooms.get(room) ?? 0);
    for (;;) {
      /** @type {RoomEvent[]} */
      let page;
      try {
        page = await this.api.events(room, { after, limit: CATCH_UP_PAGE });
      } catch (error) {
        if (error instanceof ChorusError && error.status < 500) {
          console.warn('chorus-js: cannot catch up room', room, error);
          return;
        }
        throw error;
      }
      for (const event of page) {
        this._deliver(room, event.seq, event);
        after = event.seq;
      }
      if (page.length < CATCH_UP_PAGE) return;
    }
  }

  /**
   * @param {Message} message
   * @param {number | null} seq
   */
  async _acknowledged(message, seq) {
    // Our own message is the room's next event: later resumes need not replay it.
    if (seq !== null && this.rooms.get(message.room) === seq - 1) this.rooms.set(message.room, seq);
    const pending = this._pending.get(message.client_id);
    if (pending === undefined) return;
    this._pending.delete(message.client_id);
    await this.outbox.delete(message.client_id);
    for (const waiter of pending.waiters) waiter.resolve(message);
    this.emit('sent', { type: 'sent', client_id: message.client_id, message });
  }

  /**
   * A `send` was refused: kept (and sent again later) for a retryable code, else dropped.
   * @param {WebSocket} ws
   * @param {string | null} ref
   * @param {string} code
   * @param {string} text
   */
  async _refused(ws, ref, code, text) {
    const clientId = ref === null ? undefined : this._refToClientId.get(ref);
    if (ref !== null) this._refToClientId.delete(ref);
    const pending = clientId === undefined ? undefined : this._pending.get(clientId);
    if (pending === undefined) {
      console.warn('chorus-js: server error:', code, text);
      return;
    }
    if (RETRYABLE.has(code) && !(code === 'internal' && pending.attempts + 1 >= INTERNAL_ATTEMPTS)) {
      // Stays in the outbox; sent again after a pause (and after any reconnect).
      pending.attempts += 1;
      const delay = this._backoff(pending.attempts);
      setTimeout(() => {
        if (this._ws === ws && this._pending.get(pending.entry.client_id) === pending) this._transmit(ws, pending);
      }, delay);
      return;
    }
    this._pending.delete(pending.entry.client_id);
    await this.outbox.delete(pending.entry.client_id);
    const error = new ChorusError(400, code, text);
    for (const waiter of pending.waiters) waiter.reject(error);
    this.emit('send_failed', { type: 'send_failed', client_id: pending.entry.client_id, error });
  }

  /**
   * @param {string | null} ref
   * @param {Record<string, any>} reply
   */
  _answer(ref, reply) {
    if (ref === null) return;
    this._refToClientId.delete(ref);
    const request = this._inFlight.get(ref);
    if (request === undefined) return;
    this._inFlight.delete(ref);
    if (reply.type === 'ack') request.resolve(reply);
    else request.reject(new ChorusError(400, reply.code, reply.message));
  }

  /**
   * Send a request frame and wait for its ack; sent again after a reconnect.
   * @param {(ref: string) => Record<string, unknown>} make
   * @returns {Promise<Record<string, any>>}
   */
  _request(make) {
    return new Promise((resolve, reject) => {
      if (this._stopped !== null) {
        reject(this._stopped);
        return;
      }
      /** @type {Request} */
      const request = { make, resolve, reject };
      if (this._ws !== null) this._sendRequest(this._ws, request);
      else this._queued.push(request);
    });
  }

  /**
   * @param {WebSocket} ws
   * @param {Request} request
   */
  _sendRequest(ws, request) {
    const ref = this._nextRef();
    this._inFlight.set(ref, request);
    this._write(ws, request.make(ref));
  }

  /**
   * @param {WebSocket} ws
   * @param {Pending} pending
   */
  _transmit(ws, pending) {
    const ref = this._nextRef();
    const { entry } = pending;
    this._refToClientId.set(ref, entry.client_id);
    this._write(ws, {
      type: 'send',
      ref,
      room: entry.room,
      client_id: entry.client_id,
      body: entry.body,
      thread: entry.thread,
      attachments: entry.attachments,
    });
  }

  /**
   * @param {WebSocket} ws
   * @param {Record<string, unknown>} frame
   */
  _write(ws, frame) {
    // On a closing socket the frame is lost; its close is handled, and the outbox
    // and requests are sent again after the reconnect.
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame));
  }

  _nextRef() {
    this._refs += 1;
    return `r${this._refs}`;
  }
}

/**
 * The delay (ms) a 4007 `RECONNECT` close asks for (`retry_after_ms=N`), capped;
 * 0 when its reason has none.
 * @param {string} reason
 * @returns {number}
 */
export function reconnectHint(reason) {
  const found = /retry_after_ms=(\d{1,9})/.exec(reason);
  return found === null ? 0 : Math.min(Number(found[1]), MAX_RECONNECT_DELAY_MS);
}
