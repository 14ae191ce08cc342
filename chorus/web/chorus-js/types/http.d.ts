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
export function newClientId(): string;
/**
 * The message of a `message` room event.
 * @param {import('./types.js').MessageEvent} event
 * @returns {Message}
 */
export function messageOf(event: import("./types.js").MessageEvent): Message;
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
export const COOKIE_MODE_HEADER: "X-Chorus-Refresh-Cookie";
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
    constructor(baseUrl?: string, options?: HttpApiOptions);
    baseUrl: string;
    /** @type {TokenMode} */
    tokenMode: TokenMode;
    _fetch: typeof fetch;
    /** Uploads with progress go through XMLHttpRequest (browsers), unless `fetch` is the caller's. */
    _xhrUploads: boolean;
    _rateLimitRetries: number;
    _maxRetryAfterMs: number;
    _onSession: ((session: Session | null) => void) | undefined;
    /** @type {Session | null} */
    session: Session | null;
    /** @type {Promise<Session> | null} */
    _refreshing: Promise<Session> | null;
    /** The signed-in user; throws if there is no session. */
    get user(): import("./types.js").User;
    /**
     * Create an account and sign in.
     * @param {string} username
     * @param {string} password
     * @param {{displayName?: string}} [options]
     * @returns {Promise<Session>}
     */
    register(username: string, password: string, { displayName }?: {
        displayName?: string;
    }): Promise<Session>;
    /**
     * Sign in. Throws `TwoFactorRequired` when the account has 2FA and no `code` was
     * given (then call `completeLogin`), `ChorusError` 401 for wrong credentials.
     * @param {string} username
     * @param {string} password
     * @param {{code?: string}} [options] a TOTP or recovery code, for a 2FA account
     * @returns {Promise<Session>}
     */
    login(username: string, password: string, { code }?: {
        code?: string;
    }): Promise<Session>;
    /**
     * The second login step of a 2FA account: the challenge of `TwoFactorRequired`
     * and a TOTP code (or a recovery code).
     * @param {string} challengeToken
     * @param {string} code
     * @returns {Promise<Session>}
     */
    completeLogin(challengeToken: string, code: string): Promise<Session>;
    /**
     * Rotate the refresh token for a new access token. In cookie mode this also
     * restores the session after a page reload (no token in memory: the cookie
     * proves it). Throws `ChorusError` 401 when the session has ended.
     * @returns {Promise<Session>}
     */
    refresh(): Promise<Session>;
    /** End the session (and, in cookie mode, have the server clear the cookie). */
    logout(): Promise<void>;
    /** @returns {Promise<{enabled: boolean, pending: boolean, recovery_codes_left: number}>} */
    twoFactor(): Promise<{
        enabled: boolean;
        pending: boolean;
        recovery_codes_left: number;
    }>;
    /**
     * Start enrolling a TOTP authenticator; 2FA is on once `confirmTwoFactor` gets a code.
     * @param {string} password
     * @returns {Promise<{secret: string, otpauth_uri: string}>}
     */
    enrolTwoFactor(password: string): Promise<{
        secret: string;
        otpauth_uri: string;
    }>;
    /**
     * Turn 2FA on with a code of the enrolled secret; the recovery codes (shown once).
     * @param {string} code
     * @param {{revokeOtherSessions?: boolean}} [options]
     * @returns {Promise<{recovery_codes: string[], revoked_sessions: number}>}
     */
    confirmTwoFactor(code: string, { revokeOtherSessions }?: {
        revokeOtherSessions?: boolean;
    }): Promise<{
        recovery_codes: string[];
        revoked_sessions: number;
    }>;
    /**
     * @param {string} password
     * @param {string} code
     * @returns {Promise<void>}
     */
    disableTwoFactor(password: string, code: string): Promise<void>;
    /**
     * The caller's live sessions, oldest first (`current` marks this one).
     * @returns {Promise<SessionInfo[]>}
     */
    sessions(): Promise<SessionInfo[]>;
    /**
     * End one of the caller's sessions (this one too: then the client is signed out).
     * @param {string} sessionId
     */
    revokeSession(sessionId: string): Promise<void>;
    /**
     * End every other session of the caller; how many ended.
     * @returns {Promise<number>}
     */
    revokeOtherSessions(): Promise<number>;
    /** @returns {Promise<User>} */
    me(): Promise<User>;
    /**
     * @param {string} userId
     * @returns {Promise<User>}
     */
    getUser(userId: string): Promise<User>;
    /**
     * The user with this username (any letter case); `ChorusError` 404 if none.
     * @param {string} username
     * @returns {Promise<User>}
     */
    userByName(username: string): Promise<User>;
    /**
     * The caller's rooms, with read markers (`read_seq`) and a direct room's `others`.
     * @returns {Promise<Room[]>}
     */
    myRooms(): Promise<Room[]>;
    /**
     * Unread messages and mentions per room of the caller.
     * @returns {Promise<Record<string, Unread>>}
     */
    unread(): Promise<Record<string, Unread>>;
    /**
     * The caller's rooms with their unread and mention counts (a room list, in one call).
     * @returns {Promise<RoomSummary[]>}
     */
    roomsWithUnread(): Promise<RoomSummary[]>;
    /**
     * Public rooms in id order; the next page is `after` the last room's id.
     * @param {{limit?: number, after?: string}} [options]
     * @returns {Promise<Room[]>}
     */
    publicRooms({ limit, after }?: {
        limit?: number;
        after?: string;
    }): Promise<Room[]>;
    /**
     * @param {string} name
     * @param {'public' | 'private'} [kind]
     * @returns {Promise<Room>}
     */
    createRoom(name: string, kind?: "public" | "private"): Promise<Room>;
    /**
     * The room with its members (roles and presence), as the server sends it.
     * @param {string} roomId
     * @returns {Promise<Record<string, any>>}
     */
    getRoom(roomId: string): Promise<Record<string, any>>;
    /**
     * Become a member of a public room.
     * @param {string} roomId
     */
    joinRoom(roomId: string): Promise<void>;
    /**
     * Stop being a member of a room.
     * @param {string} roomId
     */
    leaveRoom(roomId: string): Promise<void>;
    /**
     * The direct room of the caller and this user (made on first use).
     * @param {string} userId
     * @returns {Promise<Room>}
     */
    directRoom(userId: string): Promise<Room>;
    /**
     * The direct room of the caller and the user with this username.
     * @param {string} username
     * @returns {Promise<Room>}
     */
    directRoomByName(username: string): Promise<Room>;
    /**
     * The direct conversation of the caller and these users (same set: same room).
     * @param {string[]} userIds
     * @returns {Promise<Room>}
     */
    groupRoom(userIds: string[]): Promise<Room>;
    /**
     * Invite a user to a private room (pending until they accept).
     * @param {string} roomId
     * @param {string} userId
     * @returns {Promise<{room_id: string, user_id: string, invited_by: string, created_at: number}>}
     */
    createInvite(roomId: string, userId: string): Promise<{
        room_id: string;
        user_id: string;
        invited_by: string;
        created_at: number;
    }>;
    /**
     * The caller's pending invitations, oldest first.
     * @returns {Promise<Invitation[]>}
     */
    myInvites(): Promise<Invitation[]>;
    /**
     * @param {string} roomId
     * @returns {Promise<Room>}
     */
    acceptInvite(roomId: string): Promise<Room>;
    /** @param {string} roomId */
    declineInvite(roomId: string): Promise<void>;
    /**
     * A page of the room's events (messages, edits, deletes, reactions) in seq order:
     * `before` a seq to scroll back, `after` one to catch up.
     * @param {string} roomId
     * @param {{before?: number, after?: number, limit?: number}} [options]
     * @returns {Promise<RoomEvent[]>}
     */
    events(roomId: string, { before, after, limit }?: {
        before?: number;
        after?: number;
        limit?: number;
    }): Promise<RoomEvent[]>;
    /**
     * The messages of a page of `events` (in their current state), oldest first.
     * Scroll back with `before: oldest.seq`.
     * @param {string} roomId
     * @param {{before?: number, after?: number, limit?: number}} [options]
     * @returns {Promise<Message[]>}
     */
    history(roomId: string, options?: {
        before?: number;
        after?: number;
        limit?: number;
    }): Promise<Message[]>;
    /**
     * Post over HTTP (same storage, order and idempotency as the gateway's `send`).
     * @param {string} roomId
     * @param {string} body
     * @param {{clientId?: string, thread?: string, attachments?: string[]}} [options]
     * @returns {Promise<Message>}
     */
    post(roomId: string, body: string, { clientId, thread, attachments }?: {
        clientId?: string;
        thread?: string;
        attachments?: string[];
    }): Promise<Message>;
    /**
     * One message with its reaction counts and thread summary.
     * @param {string} roomId
     * @param {string} messageId
     * @returns {Promise<MessageDetail>}
     */
    message(roomId: string, messageId: string): Promise<MessageDetail>;
    /**
     * The first `limit` replies of the thread rooted at `messageId`.
     * @param {string} roomId
     * @param {string} messageId
     * @param {{limit?: number}} [options]
     * @returns {Promise<Message[]>}
     */
    thread(roomId: string, messageId: string, { limit }?: {
        limit?: number;
    }): Promise<Message[]>;
    /**
     * Roots of the threads the caller started or replied to, newest activity first.
     * @param {{limit?: number}} [options]
     * @returns {Promise<MessageDetail[]>}
     */
    followedThreads({ limit }?: {
        limit?: number;
    }): Promise<MessageDetail[]>;
    /**
     * Ids of the users who reacted to the message with `emoji`.
     * @param {string} roomId
     * @param {string} messageId
     * @param {string} emoji
     * @returns {Promise<string[]>}
     */
    reactors(roomId: string, messageId: string, emoji: string): Promise<string[]>;
    /**
     * Move the caller's read marker forward to `seq`; the stored marker.
     * @param {string} roomId
     * @param {number} seq
     * @returns {Promise<number>}
     */
    markRead(roomId: string, seq: number): Promise<number>;
    /**
     * Messages of the caller's rooms matching `query`, newest first.
     * @param {string} query
     * @param {{roomId?: string, limit?: number}} [options]
     * @returns {Promise<SearchHit[]>}
     */
    search(query: string, { roomId, limit }?: {
        roomId?: string;
        limit?: number;
    }): Promise<SearchHit[]>;
    /**
     * The caller's latest notifications (the inbox), newest first.
     * @param {{limit?: number}} [options]
     * @returns {Promise<Notification[]>}
     */
    notifications({ limit }?: {
        limit?: number;
    }): Promise<Notification[]>;
    /**
     * Mark these notifications read, or all of them without `ids`.
     * @param {string[]} [ids]
     */
    markNotificationsRead(ids?: string[]): Promise<void>;
    /**
     * Which messages of the room notify the caller.
     * @param {string} roomId
     * @param {'all' | 'mentions' | 'none'} level
     */
    setNotify(roomId: string, level: "all" | "mentions" | "none"): Promise<void>;
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
    uploadFile(data: Blob | ArrayBuffer | Uint8Array, { name, contentType, onProgress }: {
        name: string;
        contentType?: string;
        onProgress?: ProgressListener;
    }): Promise<FileInfo>;
    /**
     * One of your files (or one attached in a room of yours): its state and metadata.
     * @param {string} fileId
     * @returns {Promise<FileInfo>}
     */
    file(fileId: string): Promise<FileInfo>;
    /**
     * A URL fetching the ready file (or a thumbnail) without a token, for a few minutes.
     * @param {string} fileId
     * @param {string} [variant] `original` or a thumbnail's name
     * @returns {Promise<string>}
     */
    fileUrl(fileId: string, variant?: string): Promise<string>;
    /**
     * The server's WebSocket gateways (every node of a cluster), to connect to.
     * @returns {Promise<string[]>}
     */
    gatewayUrls(): Promise<string[]>;
    /** @returns {Promise<Session>} */
    _refreshOnce(): Promise<Session>;
    /**
     * @param {any} data
     * @returns {Session}
     */
    _keep(data: any): Session;
    /** @param {Session | null} session */
    _setSession(session: Session | null): void;
    /**
     * A call whose JSON answer (null for 204) is returned; errors are thrown.
     * @param {string} method
     * @param {string} path under `/api/v1`
     * @param {RequestOptions} [options]
     * @returns {Promise<any>}
     */
    _call(method: string, path: string, options?: RequestOptions): Promise<any>;
    /**
     * Send a request: refresh once on 401, wait out 429/503 (`Retry-After`); a
     * response of status >= 400 is thrown as `ChorusError`.
     * @param {string} method
     * @param {string} path
     * @param {RequestOptions} options
     * @returns {Promise<Response>}
     */
    _request(method: string, path: string, options: RequestOptions): Promise<Response>;
    _canRefresh(): boolean;
    /**
     * @param {string} method
     * @param {string} path
     * @param {RequestOptions} options
     * @param {boolean} auth
     * @returns {Promise<Response>}
     */
    _send(method: string, path: string, options: RequestOptions, auth: boolean): Promise<Response>;
}
export type RequestOptions = {
    /**
     * sent as JSON
     */
    body?: Record<string, unknown> | undefined;
    /**
     * sent as is
     */
    raw?: Blob | ArrayBuffer | Uint8Array<ArrayBufferLike> | ReadableStream<any> | undefined;
    /**
     * the query (undefined: left out)
     */
    params?: Record<string, string | number | undefined> | undefined;
    headers?: Record<string, string> | undefined;
    /**
     * with the access token (default true)
     */
    auth?: boolean | undefined;
    /**
     * the request opens, rotates or ends a session: in cookie
     * mode it carries the cookie-mode header and the cookie
     */
    tokens?: boolean | undefined;
    /**
     * with `raw` data (not a stream): called as
     * the body goes out
     */
    onProgress?: import("./upload.js").ProgressListener | undefined;
};
export type Session = import("./types.js").Session;
export type User = import("./types.js").User;
export type Room = import("./types.js").Room;
export type RoomSummary = import("./types.js").RoomSummary;
export type Unread = import("./types.js").Unread;
export type Message = import("./types.js").Message;
export type RoomEvent = import("./types.js").RoomEvent;
export type MessageDetail = import("./types.js").MessageDetail;
export type SearchHit = import("./types.js").SearchHit;
export type Notification = import("./types.js").Notification;
export type SessionInfo = import("./types.js").SessionInfo;
export type Invitation = import("./types.js").Invitation;
export type FileInfo = import("./types.js").FileInfo;
export type ProgressListener = import("./upload.js").ProgressListener;
/**
 * Where the refresh token lives.
 * - `'cookie'`: in an HttpOnly cookie the server sets and page scripts cannot read
 *   (browsers; the API must be on the page's own origin).
 * - `'json'`: in `session.refresh_token`, in memory (Node, bots, other clients).
 */
export type TokenMode = "cookie" | "json";
export type HttpApiOptions = {
    /**
     * default: `'cookie'` in a browser page calling its own
     * origin, else `'json'`
     */
    tokenMode?: TokenMode | undefined;
    /**
     * default: the global `fetch`
     */
    fetch?: typeof fetch | undefined;
    /**
     * times a 429 or 503 is retried after its
     * `Retry-After` (default 2); then the `ChorusError` (with `retryAfter`) is thrown
     */
    rateLimitRetries?: number | undefined;
    /**
     * a `Retry-After` longer than this is not waited
     * for: the error is thrown at once (default 10000)
     */
    maxRetryAfterMs?: number | undefined;
    /**
     * called whenever the
     * session changes (login, refresh, logout, revocation seen)
     */
    onSession?: ((session: Session | null) => void) | undefined;
};
