/**
 * What the page keeps across reloads: the outbox (IndexedDB, one database per user)
 * and a cache of non-secret data (the user, the rooms) to show while offline. No
 * token is ever stored here: the access token lives in memory, the refresh token in
 * an HttpOnly cookie.
 * @module
 */

/** @typedef {import('/chorus-js/index.js').Outbox} Outbox */
/** @typedef {import('/chorus-js/index.js').OutboxEntry} OutboxEntry */

const STORE = 'outbox';
const CACHE_KEY = 'chorus.cache';

/**
 * An outbox in IndexedDB: messages written offline survive a reload, and the SDK
 * sends them (with their client ids, so exactly once) when it connects.
 * Entries come back in the order they were put.
 * @implements {Outbox}
 */
export class IndexedDbOutbox {
  /** @param {IDBDatabase} db */
  constructor(db) {
    this._db = db;
    this._order = Date.now() * 1000;
    /** Called after each change is committed (the page shows what is stored). @type {() => void} */
    this.onchange = () => {};
  }

  /**
   * The outbox of one user (each user of the browser has their own).
   * @param {string} userId
   * @returns {Promise<IndexedDbOutbox>}
   */
  static async open(userId) {
    const request = indexedDB.open(`chorus-outbox-${userId}`, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: 'entry.client_id' }).createIndex('order', 'order');
    };
    return new IndexedDbOutbox(await done(request));
  }

  /** @returns {Promise<OutboxEntry[]>} */
  async list() {
    const store = this._db.transaction(STORE).objectStore(STORE);
    /** @type {{entry: OutboxEntry, order: number}[]} */
    const rows = await done(store.index('order').getAll());
    return rows.map((row) => row.entry);
  }

  /** @param {OutboxEntry} entry */
  async put(entry) {
    this._order += 1;
    await this._write((store) => store.put({ entry, order: this._order }));
  }

  /** @param {string} clientId */
  async delete(clientId) {
    await this._write((store) => store.delete(clientId));
  }

  /** @param {(store: IDBObjectStore) => IDBRequest} change */
  async _write(change) {
    const transaction = this._db.transaction(STORE, 'readwrite');
    change(transaction.objectStore(STORE));
    await new Promise((resolve, reject) => {
      transaction.oncomplete = resolve;
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
    // After the caller's continuation (the SDK lists the entry once `put` returns).
    setTimeout(() => this.onchange(), 0);
  }

  close() {
    this._db.close();
  }
}

/**
 * @template T
 * @param {IDBRequest<T>} request
 * @returns {Promise<T>}
 */
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * @typedef {object} Cached
 * @property {import('/chorus-js/index.js').User} user
 * @property {any[]} rooms the room list as last shown
 */

/** @returns {Cached | null} */
export function loadCache() {
  try {
    return JSON.parse(localStorage.getItem(CACHE_KEY) ?? 'null');
  } catch {
    return null;
  }
}

/** @param {Cached | null} cached */
export function saveCache(cached) {
  if (cached === null) localStorage.removeItem(CACHE_KEY);
  else localStorage.setItem(CACHE_KEY, JSON.stringify(cached));
}
