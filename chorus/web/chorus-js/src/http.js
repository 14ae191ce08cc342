/**
 * `HttpApi`: the Chorus HTTP API (`/api/v1`), with the session's tokens and rate limits handled.
 * @module
 */

import { sleep } from './backoff.js';
import { ChorusError, TwoFactorRequired } from './errors.js';
import { byteSize, hasXhr, monotonic, progressBody, xhrFetch } from './upload.js';

/** @typedef {import('./types.js').Session} Session */
/** @typedef {import('./types.js').User} User */
/** @typedef {import('./types.js').Room} Room */
/** @typedef {import('./types.js').RoomSummary} RoomSummary */
/** @typedef {import('./types.js').Unread} Unread */
/** @typedef {import('./types.js').Message} Message */
/** @typedef {import('./types.js').RoomEvent} RoomEvent */
/** @typedef {import('./types.js').MessageDetail} MessageDetail */
/** @typedef {import('./types.js').SearchHit} SearchHit */
/** @typedef {import('./types.js').Notification} Notification */
/** @typedef {import('./types.js').SessionInfo} SessionInfo */
/** @typedef {import('./types.js').Invitation} Invitation */
/** @typedef {import('./types.js').FileInfo} FileInfo */
/** @typedef {import('./upload.js').ProgressListener} ProgressListener */

/**
 * Where the refresh token lives.
 * - `'cookie'`: in an HttpOnly cookie the server sets and page scripts cannot read
 *   (browsers; the API must be on the page's own origin).
 * - `'json'`: in `session.refresh_token`, in memory (Node, bots, other clients).
 * @typedef {'cookie' | 'json'} TokenMode
 */

/**
 * @typedef {object} HttpApiOptions
 * @property {TokenMode} [tokenMode] default: `'cookie'` in a browser page calling its own
 *   origin, else `'json'`
 * @property {typeof fetch} [fetch] default: the global `fetch`
 * @property {number} [rateLimitRetries] times a 429 or 503 is retried after its
 *   `Retry-After` (default 2); then the `ChorusError` (with `retryAfter`) is thrown
 * @property {number} [maxRetryAfterMs] a `Retry-After` longer than this is not waited
 *   for: the error is thrown at once (default 10000)
 * @property {(session: Session | null) => void} [onSession] called whenever the
 *   session changes (login, refresh, logout, revocation seen)
 */

/** The request header that asks for, and authorises, the refresh-token cookie. */
export const COOKIE_MODE_HEADER = 'X-Chorus-Refresh-Cookie';

/**
 * A client of one Chorus server's `/api/v1`.
 *
 * After `register` or `login` every call is authenticated with the access token
 * (kept in memory only). When a call answers 401 the session is refreshed once and
 * the call repeated; concurrent calls share one refresh (a refresh token is single
 * use: two refreshes at once would revoke the session). A 429 or 503 is retried
 * after its `Retry-After`, up to `rateLimitRetries` times.
 */
export class HttpApi {
  /**
   * @param {string} [baseUrl] the server, e.g. `http://127.0.0.1:8080`; default `''`,
   *   the page's own origin
   * @param {HttpApiOptions} [options]
   */
  constructor(baseUrl = '', options = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    /** @type {TokenMode} */
    this.tokenMode = options.tokenMode ?? defaultTokenMode(this.baseUrl);
    this._fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    /** Uploads with progress go through XMLHttpRequest (browsers), unless `fetch` is the caller's. */
    this._xhrUploads = options.fetch === undefined && hasXhr();
    this._rateLimitRetries = options.rateLimitRetries ?? 2;
    this._maxRetryAfterMs = options.maxRetryAfterMs ?? 10_000;
    this._onSession = options.onSession;
    /** @type {Session | null} */
    this.session = null;
    /** @type {Promise<Session> | null} */
    this._refreshing = null;
  }

  /** The signed-in user; throws if there is no session. */
  get user() {
    if (this.session === null) throw new Error('log in first');
    return this.session.user;
  }

  // -- accounts ------------------------------------------------------------------------

  /**
   * Create an account and sign in.
   * @param {string} username
   * @param {string} password
   * @param {{displayName?: string}} [options]
   * @returns {Promise<Session>}
   */
  async register(username, password, { displayName } = {}) {
    /** @type {Record<string, unknown>} */
    const body = { username, password };
    if (displayName !== undefined) body.display_name = displayName;
    return this._keep(await this._call('POST', '/auth/register', { body, auth: false, tokens: true }));
  }

  /**
   * Sign in. Throws `TwoFactorRequired` when the account has 2FA and no `code` was
   * given (then call `completeLogin`), `ChorusError` 401 for wrong credentials.
   * @param {string} username
   * @param {string} password
   * @param {{code?: string}} [options] a TOTP or recovery code, for a 2FA account
   * @returns {Promise<Session>}
   */
  async login(username, password, { code } = {}) {
    const response = await this._request('POST', '/auth/login', {
      body: { username, password },
      auth: false,
      tokens: true,
    });
    const data = await readJson(response);
    if (response.status !== 202) return this._keep(data);
    if (code === undefined) throw new TwoFactorRequired(data.challenge_token, data.expires_in);
    return this.completeLogin(data.challenge_token, code);
  }

  /**
   * The second login step of a 2FA account: the challenge of `TwoFactorRequired`
   * and a TOTP code (or a recovery code).
   * @param {string} challengeToken
   * @param {string} code
   * @returns {Promise<Session>}
   */
  async completeLogin(challengeToken, code) {
    const body = { challenge_token: challengeToken, code };
    return this._keep(await this._call('POST', '/auth/login/2fa', { body, auth: false, tokens: true }));
  }

  /**
   * Rotate the refresh token for a new access token. In cookie mode this also
   * restores the session after a page reload (no token in memory: the cookie
   * proves it). Throws `ChorusError` 401 when the session has ended.
   * @returns {Promise<Session>}
   */
  refresh() {
    // One refresh at a time: the token is single use, a second concurrent one
    // would present a spent token and get the whole session revoked.
    this._refreshing ??= this._refreshOnce().finally(() => {
      this._refreshing = null;
    });
    return this._refreshing;
  }

  /** End the session (and, in cookie mode, have the server clear the cookie). */
  async logout() {
    try {
      await this._call('POST', '/auth/logout', { tokens: true });
    } finally {
      this._setSession(null);
    }
  }

  // -- two-factor authentication and sessions -----------------------------------------

  /** @returns {Promise<{enabled: boolean, pending: boolean, recovery_codes_left: number}>} */
  twoFactor() {
    return this._call('GET', '/auth/2fa');
  }

  /**
   * Start enrolling a TOTP authenticator; 2FA is on once `confirmTwoFactor` gets a code.
   * @param {string} password
   * @returns {Promise<{secret: string, otpauth_uri: string}>}
   */
  enrolTwoFactor(password) {
    return this._call('POST', '/auth/2fa/enrol', { body: { password } });
  }

  /**
   * Turn 2FA on with a code of the enrolled secret; the recovery codes (shown once).
   * @param {string} code
   * @param {{revokeOtherSessions?: boolean}} [options]
   * @returns {Promise<{recovery_codes: string[], revoked_sessions: number}>}
   */
  confirmTwoFactor(code, { revokeOtherSessions = false } = {}) {
    const body = { code, revoke_other_sessions: revokeOtherSessions };
    return this._call('POST', '/auth/2fa/confirm', { body });
  }

  /**
   * @param {string} password
   * @param {string} code
   * @returns {Promise<void>}
   */
  async disableTwoFactor(password, code) {
    await this._call('POST', '/auth/2fa/disable', { body: { password, code } });
  }

  /**
   * The caller's live sessions, oldest first (`current` marks this one).
   * @returns {Promise<SessionInfo[]>}
   */
  async sessions() {
    return (await this._call('GET', '/auth/sessions')).sessions;
  }

  /**
   * End one of the caller's sessions (this one too: then the client is signed out).
   * @param {string} sessionId
   */
  async revokeSession(sessionId) {
    await this._call('DELETE', `/auth/sessions/${enc(sessionId)}`);
    if (this.session?.session_id === sessionId) this._setSession(null);
  }

  /**
   * End every other session of the caller; how many ended.
   * @returns {Promise<number>}
   */
  async revokeOtherSessions() {
    return (await this._call('POST', '/auth/sessions/revoke-others')).revoked_sessions;
  }

  // -- users ---------------------------------------------------------------------------

  /** @returns {Promise<User>} */
  me() {
    return this._call('GET', '/users/me');
  }

  /**
   * @param {string} userId
   * @returns {Promise<User>}
   */
  getUser(userId) {
    return this._call('GET', `/users/${enc(userId)}`);
  }

  /**
   * The user with this username (any letter case); `ChorusError` 404 if none.
   * @param {string} username
   * @returns {Promise<User>}
   */
  userByName(username) {
    return this._call('GET', `/users/by-name/${enc(username)}`);
  }

  // -- rooms ---------------------------------------------------------------------------

  /**
   * The caller's rooms, with read markers (`read_seq`) and a direct room's `others`.
   * @returns {Promise<Room[]>}
   */
  async myRooms() {
    return (await this._call('GET', '/rooms')).rooms;
  }

  /**
   * Unread messages and mentions per room of the caller.
   * @returns {Promise<Record<string, Unread>>}
   */
  async unread() {
    const data = await this._call('GET', '/unread');
    /** @type {Record<string, Unread>} */
    const counts = {};
    for (const entry of data.rooms) counts[entry.room] = { unread: entry.unread, mentions: entry.mentions };
    return counts;
  }

  /**
   * The caller's rooms with their unread and mention counts (a room list, in one call).
   * @returns {Promise<RoomSummary[]>}
   */
  async roomsWithUnread() {
    const [rooms, counts] = await Promise.all([this.myRooms(), this.unread()]);
    return rooms.map((room) => ({ ...room, ...(counts[room.id] ?? { unread: 0, mentions: 0 }) }));
  }

  /**
   * Public rooms in id order; the next page is `after` the last room's id.
   * @param {{limit?: number, after?: string}} [options]
   * @returns {Promise<Room[]>}
   */
  async publicRooms({ limit = 50, after } = {}) {
    return (await this._call('GET', '/rooms/public', { params: { limit, after } })).rooms;
  }

  /**
   * @param {string} name
   * @param {'public' | 'private'} [kind]
   * @returns {Promise<Room>}
   */
  createRoom(name, kind = 'public') {
    return this._call('POST', '/rooms', { body: { name, kind } });
  }

  /**
   * The room with its members (roles and presence), as the server sends it.
   * @param {string} roomId
   * @returns {Promise<Record<string, any>>}
   */
  getRoom(roomId) {
    return this._call('GET', `/rooms/${enc(roomId)}`);
  }

  /**
   * Become a member of a public room.
   * @param {string} roomId
   */
  async joinRoom(roomId) {
    await this._call('POST', `/rooms/${enc(roomId)}/join`);
  }

  /**
   * Stop being a member of a room.
   * @param {string} roomId
   */
  async leaveRoom(roomId) {
    await this._call('DELETE', `/rooms/${enc(roomId)}/members/${enc(this.user.id)}`);
  }

  /**
   * The direct room of the caller and this user (made on first use).
   * @param {string} userId
   * @returns {Promise<Room>}
   */
  directRoom(userId) {
    return this._call('POST', '/dms', { body: { user_id: userId } });
  }

  /**
   * The direct room of the caller and the user with this username.
   * @param {string} username
   * @returns {Promise<Room>}
   */
  async directRoomByName(username) {
    return this.directRoom((await this.userByName(username)).id);
  }

  /**
   * The direct conversation of the caller and these users (same set: same room).
   * @param {string[]} userIds
   * @returns {Promise<Room>}
   */
  groupRoom(userIds) {
    return this._call('POST', '/dms', { body: { user_ids: userIds } });
  }

  /**
   * Invite a user to a private room (pending until they accept).
   * @param {string} roomId
   * @param {string} userId
   * @returns {Promise<{room_id: string, user_id: string, invited_by: string, created_at: number}>}
   */
  createInvite(roomId, userId) {
    return this._call('POST', `/rooms/${enc(roomId)}/invites`, { body: { user_id: userId } });
  }

  /**
   * The caller's pending invitations, oldest first.
   * @returns {Promise<Invitation[]>}
   */
  async myInvites() {
    return (await this._call('GET', '/me/invites')).invites;
  }

  /**
   * @param {string} roomId
   * @returns {Promise<Room>}
   */
  acceptInvite(roomId) {
    return this._call('POST', `/me/invites/${enc(roomId)}/accept`);
  }

  /** @param {string} roomId */
  async declineInvite(roomId) {
    await this._call('POST', `/me/invites/${enc(roomId)}/decline`);
  }

  // -- messages ------------------------------------------------------------------------

  /**
   * A page of the room's events (messages, edits, deletes, reactions) in seq order:
   * `before` a seq to scroll back, `after` one to catch up.
   * @param {string} roomId
   * @param {{before?: number, after?: number, limit?: number}} [options]
   * @returns {Promise<RoomEvent[]>}
   */
  async events(roomId, { before, after, limit = 50 } = {}) {
    const params = { before, after, limit };
    return (await this._call('GET', `/rooms/${enc(roomId)}/messages`, { params })).events;
  }

  /**
   * The messages of a page of `events` (in their current state), oldest first.
   * Scroll back with `before: oldest.seq`.
   * @param {string} roomId
   * @param {{before?: number, after?: number, limit?: number}} [options]
   * @returns {Promise<Message[]>}
   */
  async history(roomId, options = {}) {
    const events = await this.events(roomId, options);
    return events.filter((event) => event.type === 'message').map(messageOf);
  }

  /**
   * Post over HTTP (same storage, order and idempotency as the gateway's `send`).
   * @param {string} roomId
   * @param {string} body
   * @param {{clientId?: string, thread?: string, attachments?: string[]}} [options]
   * @returns {Promise<Message>}
   */
  async post(roomId, body, { clientId = newClientId(), thread, attachments = [] } = {}) {
    /** @type {Record<string, unknown>} */
    const fields = { body, client_id: clientId, attachments };
    if (thread !== undefined) fields.thread = thread;
    return (await this._call('POST', `/rooms/${enc(roomId)}/messages`, { body: fields })).message;
  }

  /**
   * One message with its reaction counts and thread summary.
   * @param {string} roomId
   * @param {string} messageId
   * @returns {Promise<MessageDetail>}
   */
  message(roomId, messageId) {
    return this._call('GET', messagePath(roomId, messageId));
  }

  /**
   * The first `limit` replies of the thread rooted at `messageId`.
   * @param {string} roomId
   * @param {string} messageId
   * @param {{limit?: number}} [options]
   * @returns {Promise<Message[]>}
   */
  async thread(roomId, messageId, { limit = 50 } = {}) {
    const path = `${messagePath(roomId, messageId)}/thread`;
    return (await this._call('GET', path, { params: { limit } })).messages;
  }

  /**
   * Roots of the threads the caller started or replied to, newest activity first.
   * @param {{limit?: number}} [options]
   * @returns {Promise<MessageDetail[]>}
   */
  async followedThreads({ limit = 20 } = {}) {
    return (await this._call('GET', '/threads', { params: { limit } })).threads;
  }

  /**
   * Ids of the users who reacted to the message with `emoji`.
   * @param {string} roomId
   * @param {string} messageId
   * @param {string} emoji
   * @returns {Promise<string[]>}
   */
  async reactors(roomId, messageId, emoji) {
    return (await this._call('GET', `${messagePath(roomId, messageId)}/reactions/${enc(emoji)}`)).users;
  }

  /**
   * Move the caller's read marker forward to `seq`; the stored marker.
   * @param {string} roomId
   * @param {number} seq
   * @returns {Promise<number>}
   */
  async markRead(roomId, seq) {
    return (await this._call('POST', `/rooms/${enc(roomId)}/read`, { body: { seq } })).read_seq;
  }

  /**
   * Messages of the caller's rooms matching `query`, newest first.
   * @param {string} query
   * @param {{roomId?: string, limit?: number}} [options]
   * @returns {Promise<SearchHit[]>}
   */
  async search(query, { roomId, limit = 20 } = {}) {
    return (await this._call('GET', '/search', { params: { q: query, room: roomId, limit } })).hits;
  }

  // -- notifications -------------------------------------------------------------------

  /**
   * The caller's latest notifications (the inbox), newest first.
   * @param {{limit?: number}} [options]
   * @returns {Promise<Notification[]>}
   */
  async notifications({ limit = 20 } = {}) {
    return (await this._call('GET', '/notifications', { params: { limit } })).notifications;
  }

  /**
   * Mark these notifications read, or all of them without `ids`.
   * @param {string[]} [ids]
   */
  async markNotificationsRead(ids) {
    const body = ids === undefined ? { all: true } : { ids };
    await this._call('POST', '/notifications/read', { body });
  }

  /**
   * Which messages of the room notify the caller.
   * @param {string} roomId
   * @param {'all' | 'mentions' | 'none'} level
   */
  async setNotify(roomId, level) {
    await this._call('PUT', `/rooms/${enc(roomId)}/notify`, { body: { level } });
  }

  // -- files ---------------------------------------------------------------------------

  /**
   * Upload a file; it is `pending` until the server has checked it (a `file` event,
   * or `file()`, says `ready` or `rejected`). `contentType` is a claim the server
   * checks against the bytes.
   *
   * With `onProgress`, it is called with the bytes sent so far and the total, never
   * going back, the last time with the total: in browsers from `XMLHttpRequest`
   * upload events, elsewhere (Node) as the streamed body is read.
   * @param {Blob | ArrayBuffer | Uint8Array} data
   * @param {{name: string, contentType?: string, onProgress?: ProgressListener}} options
   * @returns {Promise<FileInfo>}
   */
  uploadFile(data, { name, contentType = 'application/octet-stream', onProgress }) {
    return this._call('POST', '/files', {
      params: { name },
      raw: data,
      headers: { 'content-type': contentType },
      onProgress: onProgress === undefined ? undefined : monotonic(onProgress),
    });
  }

  /**
   * One of your files (or one attached in a room of yours): its state and metadata.
   * @param {string} fileId
   * @returns {Promise<FileInfo>}
   */
  file(fileId) {
    return this._call('GET', `/files/${enc(fileId)}`);
  }

  /**
   * A URL fetching the ready file (or a thumbnail) without a token, for a few minutes.
   * @param {string} fileId
   * @param {string} [variant] `original` or a thumbnail's name
   * @returns {Promise<string>}
   */
  async fileUrl(fileId, variant = 'original') {
    return (await this._call('GET', `/files/${enc(fileId)}/url`, { params: { variant } })).url;
  }

  // -- the gateway ---------------------------------------------------------------------

  /**
   * The server's WebSocket gateways (every node of a cluster), to connect to.
   * @returns {Promise<string[]>}
   */
  async gatewayUrls() {
    return (await this._call('GET', '/gateway', { auth: false })).urls;
  }

  // -- plumbing ------------------------------------------------------------------------

  /** @returns {Promise<Session>} */
  async _refreshOnce() {
    /** @type {RequestOptions} */
    const options = { auth: false, tokens: true };
    if (this.tokenMode === 'json') {
      if (this.session?.refresh_token == null) throw new Error('log in first');
      options.body = { refresh_token: this.session.refresh_token };
    }
    const signedIn = this.session?.user.id;
    try {
      const session = await oneRefreshPerProfile(this.tokenMode, () =>
        this._call('POST', '/auth/refresh', options),
      );
      if (signedIn !== undefined && session.user.id !== signedIn) {
        // Another tab of this browser profile signed in as someone else, replacing the
        // one refresh cookie: this client's session is over, it must not become theirs.
        throw new ChorusError(401, 'session_changed', 'another account signed in in this browser');
      }
      return this._keep(session);
    } catch (error) {
      // The session is over (expired, revoked, its token reused, or replaced): sign in again.
      if (error instanceof ChorusError && error.status === 401) this._setSession(null);
      throw error;
    }
  }

  /**
   * @param {any} data
   * @returns {Session}
   */
  _keep(data) {
    this._setSession(data);
    return data;
  }

  /** @param {Session | null} session */
  _setSession(session) {
    this.session = session;
    this._onSession?.(session);
  }

  /**
   * A call whose JSON answer (null for 204) is returned; errors are thrown.
   * @param {string} method
   * @param {string} path under `/api/v1`
   * @param {RequestOptions} [options]
   * @returns {Promise<any>}
   */
  async _call(method, path, options = {}) {
    return readJson(await this._request(method, path, options));
  }

  /**
   * Send a request: refresh once on 401, wait out 429/503 (`Retry-After`); a
   * response of status >= 400 is thrown as `ChorusError`.
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} options
   * @returns {Promise<Response>}
   */
  async _request(method, path, options) {
    const auth = options.auth ?? true;
    let refreshed = false;
    for (let retries = 0; ; ) {
      const response = await this._send(method, path, options, auth);
      if (response.status === 401 && auth && !refreshed && this._canRefresh()) {
        refreshed = true;
        await this.refresh();
        continue;
      }
      if (response.status < 400) return response;
      const error = await errorOf(response);
      const waitMs = error.retryAfter === null ? null : error.retryAfter * 1000;
      if (
        (response.status === 429 || response.status === 503) &&
        waitMs !== null &&
        waitMs <= this._maxRetryAfterMs &&
        retries < this._rateLimitRetries &&
        !(options.raw instanceof ReadableStream)
      ) {
        retries += 1;
        await sleep(waitMs);
        continue;
      }
      throw error;
    }
  }

  _canRefresh() {
    return this.tokenMode === 'cookie' || this.session?.refresh_token != null;
  }

  /**
   * @param {string} method
   * @param {string} path
   * @param {RequestOptions} options
   * @param {boolean} auth
   * @returns {Promise<Response>}
   */
  _send(method, path, options, auth) {
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json', ...options.headers };
    if (auth) {
      if (this.session === null) throw new Error('log in first');
      headers.authorization = `Bearer ${this.session.access_token}`;
    }
    /** @type {BodyInit | undefined} */
    let body;
    if (options.raw !== undefined) {
      body = /** @type {BodyInit} */ (options.raw);
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    /** @type {RequestInit & {headers: Record<string, string>, duplex?: 'half'}} */
    const init = { method, headers, body };
    if (options.tokens && this.tokenMode === 'cookie') {
      // Asks the server to keep the refresh token in its HttpOnly cookie, and proves
      // the request is the page's own script (a form or a link cannot set a header).
      headers[COOKIE_MODE_HEADER] = '1';
      init.credentials = 'same-origin';
    } else {
      init.credentials = 'omit';
    }
    const url = `${this.baseUrl}/api/v1${path}${query(options.params)}`;
    const { raw, onProgress } = options;
    if (onProgress !== undefined && raw !== undefined && !(raw instanceof ReadableStream)) {
      // A new body for every try (a retry after a refresh sends it all again).
      if (this._xhrUploads) return xhrFetch(url, init, byteSize(raw), onProgress);
      init.body = progressBody(raw, onProgress);
      init.duplex = 'half'; // required by fetch for a streamed body
    }
    return this._fetch(url, init);
  }
}

/**
 * @typedef {object} RequestOptions
 * @property {Record<string, unknown>} [body] sent as JSON
 * @property {Blob | ArrayBuffer | Uint8Array | ReadableStream} [raw] sent as is
 * @property {Record<string, string | number | undefined>} [params] the query (undefined: left out)
 * @property {Record<string, string>} [headers]
 * @property {boolean} [auth] with the access token (default true)
 * @property {boolean} [tokens] the request opens, rotates or ends a session: in cookie
 *   mode it carries the cookie-mode header and the cookie
 * @property {ProgressListener} [onProgress] with `raw` data (not a stream): called as
 *   the body goes out
 */

/**
 * A fresh client id (for `send` and `post`): 128 random bits in hex.
 * (`crypto.randomUUID` would be shorter to write, but browsers only have it on
 * https and localhost pages; `getRandomValues` is everywhere.)
 * @returns {string}
 */
export function newClientId() {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * The message of a `message` room event.
 * @param {import('./types.js').MessageEvent} event
 * @returns {Message}
 */
export function messageOf(event) {
  const { type: _type, ...message } = event;
  return message;
}

/**
 * Cookie mode for a browser page calling its own origin (the only place the cookie can
 * work: see docs/security.md), JSON mode anywhere else.
 * @param {string} baseUrl
 * @returns {TokenMode}
 */
function defaultTokenMode(baseUrl) {
  if (typeof globalThis.document === 'undefined' || typeof globalThis.location === 'undefined') {
    return 'json';
  }
  return new URL(baseUrl || '/', globalThis.location.href).origin === globalThis.location.origin ? 'cookie' : 'json';
}

/**
 * @param {Record<string, string | number | undefined>} [params]
 * @returns {string}
 */
function query(params) {
  if (params === undefined) return '';
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined) search.set(key, String(value));
  }
  const text = search.toString();
  return text === '' ? '' : `?${text}`;
}

/**
 * @param {string} part
 * @returns {string}
 */
function enc(part) {
  return encodeURIComponent(part);
}

/**
 * @param {string} roomId
 * @param {string} messageId
 * @returns {string}
 */
function messagePath(roomId, messageId) {
  return `/rooms/${enc(roomId)}/messages/${enc(messageId)}`;
}

/**
 * @param {Response} response
 * @returns {Promise<any>}
 */
async function readJson(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  return text === '' ? null : JSON.parse(text);
}

/**
 * The `ChorusError` of an error response (the API's `{"error": {code, message}}` shape).
 * @param {Response} response
 * @returns {Promise<ChorusError>}
 */
async function errorOf(response) {
  const header = response.headers.get('retry-after');
  const retryAfter = header !== null && /^\d+$/.test(header) ? Number(header) : null;
  const text = await response.text();
  try {
    const { error } = JSON.parse(text);
    return new ChorusError(response.status, String(error.code), String(error.message), retryAfter);
  } catch {
    return new ChorusError(response.status, 'http_error', text.slice(0, 200), retryAfter);
  }
}

/**
 * Run `refresh` alone among the tabs of this browser profile in cookie mode (the Web
 * Locks API): they share one refresh cookie, which each refresh rotates, so two at
 * once would present the same token and the server would revoke the session as
 * stolen. The one that waited sends the cookie the first one got. Elsewhere (JSON
 * mode, Node, no Web Locks) `refresh` runs as it is.
 * @template T
 * @param {TokenMode} tokenMode
 * @param {() => Promise<T>} refresh
 * @returns {Promise<T>}
 */
function oneRefreshPerProfile(tokenMode, refresh) {
  const locks = globalThis.navigator?.locks;
  if (tokenMode !== 'cookie' || locks === undefined) return refresh();
  return locks.request('chorus-js-refresh', refresh);
}
