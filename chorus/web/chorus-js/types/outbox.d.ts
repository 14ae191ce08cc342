/**
 * The outbox: messages sent but not yet acknowledged, kept until the server stores them.
 *
 * `RealtimeClient` writes an entry before it sends, re-sends every entry after each
 * reconnect with its original `client_id` (the server answers a retry with the
 * original message, so each is stored exactly once), and deletes the entry on the
 * ack or on a final refusal. A persistent outbox (the web client's IndexedDB one)
 * makes that survive a page reload: entries found at `connect` are sent too.
 * @module
 */
/**
 * One unacknowledged message.
 * @typedef {object} OutboxEntry
 * @property {string} client_id the message's idempotency key, kept across retries
 * @property {string} room
 * @property {string} body
 * @property {string | null} thread the root message's id for a thread reply
 * @property {string[]} attachments ids of ready files
 * @property {number} created_at when it was queued (ms since the epoch)
 */
/**
 * Where unacknowledged messages are kept. Every method may be async; `list` returns
 * the entries in the order they were `put` (messages are re-sent in that order).
 * @typedef {object} Outbox
 * @property {() => OutboxEntry[] | Promise<OutboxEntry[]>} list
 * @property {(entry: OutboxEntry) => void | Promise<void>} put
 * @property {(clientId: string) => void | Promise<void>} delete
 */
/**
 * The default outbox: kept in memory, so it lasts as long as the page or process.
 * @implements {Outbox}
 */
export class MemoryOutbox implements Outbox {
    /** @type {Map<string, OutboxEntry>} */
    _entries: Map<string, OutboxEntry>;
    /** @returns {OutboxEntry[]} */
    list(): OutboxEntry[];
    /** @param {OutboxEntry} entry */
    put(entry: OutboxEntry): void;
    /** @param {string} clientId */
    delete(clientId: string): void;
}
/**
 * One unacknowledged message.
 */
export type OutboxEntry = {
    /**
     * the message's idempotency key, kept across retries
     */
    client_id: string;
    room: string;
    body: string;
    /**
     * the root message's id for a thread reply
     */
    thread: string | null;
    /**
     * ids of ready files
     */
    attachments: string[];
    /**
     * when it was queued (ms since the epoch)
     */
    created_at: number;
};
/**
 * Where unacknowledged messages are kept. Every method may be async; `list` returns
 * the entries in the order they were `put` (messages are re-sent in that order).
 */
export type Outbox = {
    list: () => OutboxEntry[] | Promise<OutboxEntry[]>;
    put: (entry: OutboxEntry) => void | Promise<void>;
    delete: (clientId: string) => void | Promise<void>;
};
