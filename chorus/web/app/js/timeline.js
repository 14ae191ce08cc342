/**
 * One room's messages as the page knows them, built from room events (live, replayed
 * or fetched pages) applied idempotently: each seq is applied once, so overlaps
 * between history pages and live events change nothing, and a message is never
 * shown twice.
 * @module
 */

/** @typedef {import('/chorus-js/index.js').Message} Message */
/** @typedef {import('/chorus-js/index.js').RoomEvent} RoomEvent */

/**
 * @typedef {Message & {reactions: Map<string, Set<string>>, deleted: boolean}} Shown
 */

export class Timeline {
  /** @param {string} roomId */
  constructor(roomId) {
    this.roomId = roomId;
    /** @type {Map<string, Shown>} */
    this.messages = new Map();
    /** @type {Set<number>} */
    this._applied = new Set();
    /** The lowest seq fetched so far (older history starts below it); null: none fetched. */
    this.oldestSeq = /** @type {number | null} */ (null);
    this.hasOlder = true;
    this.latestSeq = 0;
    /** Reply counts of thread roots, from replies seen. @type {Map<string, number>} */
    this.replies = new Map();
    /** The client ids of the messages, to tell a pending send that is stored already. @type {Set<string>} */
    this.clientIds = new Set();
  }

  /**
   * Apply one room event; true if it changed anything.
   * @param {RoomEvent} event
   * @returns {boolean}
   */
  apply(event) {
    if (this._applied.has(event.seq)) return false;
    this._applied.add(event.seq);
    this.latestSeq = Math.max(this.latestSeq, event.seq);
    if (event.type === 'message') {
      const { type: _type, ...message } = event;
      if (this.messages.has(message.id)) return false;
      this.messages.set(message.id, { ...message, reactions: new Map(), deleted: false });
      this.clientIds.add(message.client_id);
      if (message.thread !== null) this.replies.set(message.thread, (this.replies.get(message.thread) ?? 0) + 1);
      return true;
    }
    const target = this.messages.get(event.message);
    if (target === undefined) return false; // older than what is loaded: fetched in its current state
    if (event.type === 'edited') {
      target.body = event.body;
      target.edited_at = event.edited_at;
    } else if (event.type === 'deleted') {
      target.deleted = true;
      target.body = '';
      target.attachments = [];
      if (target.thread !== null) this.replies.set(target.thread, Math.max(0, (this.replies.get(target.thread) ?? 1) - 1));
    } else if (event.type === 'reaction') {
      const users = target.reactions.get(event.emoji) ?? new Set();
      if (event.present) users.add(event.user);
      else users.delete(event.user);
      if (users.size > 0) target.reactions.set(event.emoji, users);
      else target.reactions.delete(event.emoji);
    }
    return true;
  }

  /**
   * A page of history (ascending seq), as fetched over HTTP.
   * @param {RoomEvent[]} events
   * @param {number} limit the page size asked for (a shorter page is the last)
   */
  applyPage(events, limit) {
    for (const event of events) this.apply(event);
    if (events.length > 0) {
      const first = events[0].seq;
      this.oldestSeq = this.oldestSeq === null ? first : Math.min(this.oldestSeq, first);
    }
    if (events.length < limit) this.hasOlder = false;
  }

  /**
   * Top-level messages (or the replies of `thread`), in seq order.
   * @param {string | null} [thread]
   * @returns {Shown[]}
   */
  list(thread = null) {
    return [...this.messages.values()].filter((message) => message.thread === thread).sort((a, b) => a.seq - b.seq);
  }
}
