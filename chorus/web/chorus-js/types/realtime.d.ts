/**
 * The delay (ms) a 4007 `RECONNECT` close asks for (`retry_after_ms=N`), capped;
 * 0 when its reason has none.
 * @param {string} reason
 * @returns {number}
 */
export function reconnectHint(reason: string): number;
/** @typedef {import('./http.js').HttpApi} HttpApi */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('./outbox.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./types.js').EventMap} EventMap */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').ReadyFrame} ReadyFrame */
/** @typedef {import('./types.js').RoomEvent} RoomEvent */
/** @typedef {import('./types.js').Room} Room */
/** The subprotocol of the gateway (docs/protocol.md, "Transport"). */
export const SUBPROTOCOL: "chorus.v1";
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
export class RealtimeClient extends Emitter<RealtimeEvents> {
    /**
     * @param {HttpApi} api signed in (or, in cookie mode, able to `refresh`)
     * @param {RealtimeOptions} [options]
     */
    constructor(api: HttpApi, options?: RealtimeOptions);
    api: import("./http.js").HttpApi;
    _gatewayUrl: string | null;
    /** @type {WebSocketClass | undefined} */
    _WebSocket: WebSocketClass | undefined;
    /** @type {Outbox} */
    outbox: Outbox;
    _followRooms: boolean;
    _maxBackoffMs: number;
    _baseBackoffMs: number;
    _rateLimitedBackoffMs: number;
    _connectTimeoutMs: number;
    _random: () => number;
    _clientName: string;
    /** The last `ready` frame (its `user_id`, `heartbeat_interval_ms`, `resume_limit`). @type {ReadyFrame | null} */
    ready: ReadyFrame | null;
    /** Joined rooms and the last seq emitted from each. @type {Map<string, number>} */
    rooms: Map<string, number>;
    /** With `followRooms`: the rooms the user is known to be a member of. @type {Set<string> | null} */
    _memberOf: Set<string> | null;
    /** @type {Map<string, Pending>} in the order they were sent */
    _pending: Map<string, Pending>;
    /** Requests waiting for a connection. @type {Request[]} */
    _queued: Request[];
    /** Requests sent on the current connection, by ref. @type {Map<string, Request>} */
    _inFlight: Map<string, Request>;
    /** @type {Map<string, string>} ref → client id of a `send` */
    _refToClientId: Map<string, string>;
    _refs: number;
    /** The authenticated socket, null while (re)connecting. @type {WebSocket | null} */
    _ws: WebSocket | null;
    /** Last seen status per user: the server repeats it per shared room. @type {Map<string, string>} */
    _presence: Map<string, string>;
    _down: boolean;
    /** @type {string | null} */
    _resumeRef: string | null;
    _caughtUp: number;
    _abort: AbortController;
    /** @type {Promise<void> | null} */
    _running: Promise<void> | null;
    _everReady: boolean;
    /** Why the client stopped for good (closed, or the session ended). @type {Error | null} */
    _stopped: Error | null;
    /** @type {(() => void) | undefined} */
    _firstReady: (() => void) | undefined;
    /** @type {((error: Error) => void) | undefined} */
    _firstFailure: ((error: Error) => void) | undefined;
    /** Ends the current connection (opening or open) at once. @type {((reason: string) => void) | null} */
    _dropCurrent: ((reason: string) => void) | null;
    /** Ends the current wait before reconnecting. @type {(() => void) | null} */
    _wake: (() => void) | null;
    /** Whether a connection is open and authenticated now. */
    get connected(): boolean;
    /** Messages sent and not acknowledged yet (kept in the outbox). */
    get unacknowledged(): number;
    /**
     * Connect, and stay connected until `close()`. Resolves once the first connection
     * is authenticated (its rooms resumed, the outbox re-sent); rejects if the
     * session has ended (refreshing fails) before that. Entries found in the
     * outbox (a persistent one, after a reload) are sent with their client ids.
     * @returns {Promise<void>}
     */
    connect(): Promise<void>;
    /** Load the outbox (a persistent one holds what an earlier page could not send), then run. */
    _start(): Promise<void>;
    /**
     * Disconnect for good. Waiting `send` calls reject with `ClientClosed`; their
     * messages stay in the outbox (a persistent outbox sends them next time).
     */
    close(): Promise<void>;
    /**
     * Subscribe to a room (kept across reconnects); its latest seq.
     * @param {string} roomId
     * @returns {Promise<number>}
     */
    join(roomId: string): Promise<number>;
    /**
     * Follow a room from `seq`: the events after it are emitted first, then live ones.
     * For a room whose events the application already has (e.g. kept across a page
     * reload); call it before `connect()` to have it resumed with the first connection.
     * Resolves once the server has answered (at once when not connected).
     * @param {string} roomId
     * @param {number} seq
     * @returns {Promise<void>}
     */
    resumeRoom(roomId: string, seq: number): Promise<void>;
    /**
     * Unsubscribe from a room (membership is unchanged).
     * @param {string} roomId
     */
    leave(roomId: string): Promise<void>;
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
    send(roomId: string, body: string, { clientId, thread, attachments }?: {
        clientId?: string;
        thread?: string | null;
        attachments?: string[];
    }): Promise<Message>;
    /**
     * The outbox's entries, oldest first (for showing pending messages).
     * @returns {OutboxEntry[]}
     */
    pendingMessages(): OutboxEntry[];
    /**
     * Replace the text of your message; the seq of the `edited` event.
     * @param {string} roomId
     * @param {string} messageId
     * @param {string} body
     * @returns {Promise<number>}
     */
    edit(roomId: string, messageId: string, body: string): Promise<number>;
    /**
     * Delete a message (yours, or any as the room's owner or a moderator); the event's seq.
     * @param {string} roomId
     * @param {string} messageId
     * @returns {Promise<number>}
     */
    delete(roomId: string, messageId: string): Promise<number>;
    /**
     * Add (or `remove`) your reaction; the event's seq, null when nothing changed.
     * @param {string} roomId
     * @param {string} messageId
     * @param {string} emoji
     * @param {{remove?: boolean}} [options]
     * @returns {Promise<number | null>}
     */
    react(roomId: string, messageId: string, emoji: string, { remove }?: {
        remove?: boolean;
    }): Promise<number | null>;
    /**
     * Move your read marker in the room forward to `seq`; the stored marker.
     * @param {string} roomId
     * @param {number} seq
     * @returns {Promise<number>}
     */
    markRead(roomId: string, seq: number): Promise<number>;
    /**
     * Tell the room's members this user is typing (dropped while disconnected).
     * @param {string} roomId
     */
    typing(roomId: string): void;
    /**
     * Set this user's presence (dropped while disconnected).
     * @param {'online' | 'idle'} status
     */
    setPresence(status: "online" | "idle"): void;
    /**
     * Reconnect now if the client is waiting to (e.g. on the browser's `online`
     * event): the backoff pause after failed attempts is cut short. Nothing happens
     * while a connection is open or being opened.
     */
    reconnectNow(): void;
    /**
     * Drop the connection at once (e.g. on the browser's `offline` event, as a socket
     * can outlive the network until a timeout) and reconnect as after any drop: with
     * backoff, or at once on `reconnectNow()`. What is sent meanwhile waits in the
     * outbox. Nothing happens while no connection is open or being opened.
     * @param {string} [reason] the close frame's reason (at most 123 bytes)
     */
    dropConnection(reason?: string): void;
    /** Connect, and reconnect after every drop, until closed or the session ends. */
    _run(): Promise<void>;
    /**
     * Wait `ms` before the next try, or less if `reconnectNow()` is called; rejects
     * when the client is closed.
     * @param {number} ms
     * @returns {Promise<void>}
     */
    _pause(ms: number): Promise<void>;
    /**
     * The gateways to use, retrying with backoff while the API cannot be reached.
     * @returns {Promise<string[]>}
     */
    _gatewayUrls(): Promise<string[]>;
    /**
     * One connection, from the upgrade to its close.
     * @param {string} url
     * @returns {Promise<Closed & {ready: boolean}>}
     */
    _connection(url: string): Promise<Closed & {
        ready: boolean;
    }>;
    /**
     * Authenticated: resume the joined rooms, re-send the outbox and queued requests.
     * @param {WebSocket} ws
     * @param {ReadyFrame} ready
     */
    _session(ws: WebSocket, ready: ReadyFrame): Promise<void>;
    /**
     * Rooms the user was added to since the last connection (none on the first one);
     * each is added to the rooms to resume, from the user's read marker when a resume
     * can replay everything unread, else from the room's latest seq.
     * @param {ReadyFrame} ready
     * @returns {Promise<Room[]>}
     */
    _roomsFound(ready: ReadyFrame): Promise<Room[]>;
    _disconnected(): void;
    _backUp(): void;
    /**
     * @param {number} attempt
     * @returns {number}
     */
    _backoff(attempt: number): number;
    /** @param {Error} error */
    _shutDown(error: Error): void;
    /**
     * @param {WebSocket} ws
     * @param {Record<string, any>} frame
     */
    _dispatch(ws: WebSocket, frame: Record<string, any>): Promise<void>;
    /**
     * Emit a room event unless it was emitted already (replays, catch-ups and live
     * events overlap: deduplicated by (room, seq)).
     * @param {string} room
     * @param {number} seq
     * @param {RoomEvent} event
     */
    _deliver(room: string, seq: number, event: RoomEvent): void;
    /**
     * Subscribe to a room the user was just added to, from the seq they were added at.
     * @param {string} room
     * @param {number} seq
     */
    _follow(room: string, seq: number): Promise<void>;
    /**
     * Fetch over HTTP what a resume could not replay (`too_far`), in order, before any
     * later frame. If the API cannot be reached (or answers 5xx) this throws, and the
     * connection is dropped: the next resume starts from the last seq emitted.
     * @param {string} room
     * @param {number} afterSeq
     */
    _catchUp(room: string, afterSeq: number): Promise<void>;
    /**
     * @param {Message} message
     * @param {number | null} seq
     */
    _acknowledged(message: Message, seq: number | null): Promise<void>;
    /**
     * A `send` was refused: kept (and sent again later) for a retryable code, else dropped.
     * @param {WebSocket} ws
     * @param {string | null} ref
     * @param {string} code
     * @param {string} text
     */
    _refused(ws: WebSocket, ref: string | null, code: string, text: string): Promise<void>;
    /**
     * @param {string | null} ref
     * @param {Record<string, any>} reply
     */
    _answer(ref: string | null, reply: Record<string, any>): void;
    /**
     * Send a request frame and wait for its ack; sent again after a reconnect.
     * @param {(ref: string) => Record<string, unknown>} make
     * @returns {Promise<Record<string, any>>}
     */
    _request(make: (ref: string) => Record<string, unknown>): Promise<Record<string, any>>;
    /**
     * @param {WebSocket} ws
     * @param {Request} request
     */
    _sendRequest(ws: WebSocket, request: Request): void;
    /**
     * @param {WebSocket} ws
     * @param {Pending} pending
     */
    _transmit(ws: WebSocket, pending: Pending): void;
    /**
     * @param {WebSocket} ws
     * @param {Record<string, unknown>} frame
     */
    _write(ws: WebSocket, frame: Record<string, unknown>): void;
    _nextRef(): string;
}
export type HttpApi = import("./http.js").HttpApi;
export type Outbox = import("./outbox.js").Outbox;
export type OutboxEntry = import("./outbox.js").OutboxEntry;
export type EventMap = import("./types.js").EventMap;
export type Message = import("./types.js").Message;
export type ReadyFrame = import("./types.js").ReadyFrame;
export type RoomEvent = import("./types.js").RoomEvent;
export type Room = import("./types.js").Room;
/**
 * The WebSocket class to use: the browser's (and Node 22's) global `WebSocket`, or
 * any constructor with the same interface (e.g. the `ws` package's).
 */
export type WebSocketClass = new (url: string, protocols: string[]) => WebSocket;
export type RealtimeOptions = {
    /**
     * connect only there (default: every gateway of
     * `GET /api/v1/gateway`, in turn after failures)
     */
    gatewayUrl?: string | undefined;
    /**
     * default: the global `WebSocket`
     */
    WebSocket?: WebSocketClass | undefined;
    /**
     * where unacknowledged messages are kept (default: memory)
     */
    outbox?: import("./outbox.js").Outbox | undefined;
    /**
     * subscribe by itself to rooms the user is added
     * to (`room_added`, and rooms found on reconnecting); default true
     */
    followRooms?: boolean | undefined;
    /**
     * the longest wait between reconnects (default 5000)
     */
    maxBackoffMs?: number | undefined;
    /**
     * the longest wait before the first reconnect,
     * doubled after each failed one up to `maxBackoffMs` (default 100)
     */
    baseBackoffMs?: number | undefined;
    /**
     * the wait after a 4005 `RATE_LIMITED`
     * close, plus jitter (default 10000)
     */
    rateLimitedBackoffMs?: number | undefined;
    /**
     * a gateway not ready within this fails over
     * (default 10000)
     */
    connectTimeoutMs?: number | undefined;
    /**
     * the jitter's source (default `Math.random`)
     */
    random?: (() => number) | undefined;
    /**
     * sent in `hello` for server logs
     */
    clientName?: string | undefined;
};
export type Waiter = {
    resolve: (message: Message) => void;
    reject: (error: Error) => void;
};
export type Pending = {
    entry: OutboxEntry;
    /**
     * refusals with a retryable code so far
     */
    attempts: number;
    /**
     * `send` calls waiting for the outcome
     */
    waiters: Waiter[];
};
export type Request = {
    /**
     * the frame, for a ref
     */
    make: (ref: string) => Record<string, unknown>;
    resolve: (ack: Record<string, any>) => void;
    reject: (error: Error) => void;
};
export type Closed = {
    code: number | null;
    reason: string;
};
/**
 * The events of a `RealtimeClient`: every server event by its `type`, plus the
 * SDK's own (`connection_lost`, `reconnected`, `room_found`, `sent`, `send_failed`,
 * `session_ended`).
 */
export type RealtimeEvents = EventMap & {
    session_ended: {
        type: "session_ended";
        error: Error;
    };
};
import { Emitter } from './emitter.js';
