/**
 * chorus-js: a client for the Chorus chat server, in browsers and Node 20+.
 *
 * `HttpApi` signs in and calls the HTTP API; `RealtimeClient` keeps a gateway
 * connection (the `chorus.v1` protocol) with resume and an exactly-once outbox.
 * See docs/js-sdk.md.
 * @module
 */

export { HttpApi, COOKIE_MODE_HEADER, newClientId, messageOf } from './http.js';
export { RealtimeClient, SUBPROTOCOL, reconnectHint } from './realtime.js';
export { MemoryOutbox } from './outbox.js';
export { Emitter } from './emitter.js';
export { backoffDelay } from './backoff.js';
export { ChorusError, TwoFactorRequired, ClientClosed } from './errors.js';

/** @typedef {import('./http.js').HttpApiOptions} HttpApiOptions */
/** @typedef {import('./http.js').TokenMode} TokenMode */
/** @typedef {import('./upload.js').ProgressListener} ProgressListener */
/** @typedef {import('./realtime.js').RealtimeOptions} RealtimeOptions */
/** @typedef {import('./realtime.js').RealtimeEvents} RealtimeEvents */
/** @typedef {import('./realtime.js').WebSocketClass} WebSocketClass */
/** @typedef {import('./outbox.js').Outbox} Outbox */
/** @typedef {import('./outbox.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Room} Room */
/** @typedef {import('./types.js').RoomSummary} RoomSummary */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').RoomEvent} RoomEvent */
/** @typedef {import('./types.js').FileInfo} FileInfo */
/** @typedef {import('./types.js').EventMap} EventMap */
