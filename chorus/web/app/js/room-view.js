/**
 * The open room: its header (name, members with presence, the Leave and Invite
 * actions), its messages with scroll-back, the "new" divider and read receipts,
 * pending and refused sends, who is typing, and the read marker, moved once the
 * reader has seen the newest message. Only the messages that changed are redrawn.
 * @module
 */

import { ChorusError } from '/chorus-js/index.js';
import { h, mount } from './dom.js';
import { describe } from './login.js';
import { roomName } from './sidebar.js';

/** @typedef {import('./chat.js').ChatScreen} ChatScreen */

/** Events fetched per page of history. */
export const PAGE = 50;

export class RoomView {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    /** The read marker when the room was opened: the "new" divider goes after it. */
    this.readAtOpen = 0;
    /** @type {Map<string, HTMLElement>} */
    this._elements = new Map();
    /** @type {Map<string, string>} */
    this._stamps = new Map();
    this._loadingOlder = false;
    this.roomTitle = h('h2', { id: 'room-title' }, 'No room open');
    this.leaveButton = h('button', { type: 'button', class: 'act', id: 'leave-room', hidden: true, onclick: () => this.leave() }, 'Leave room');
    this.roomError = h('p', { class: 'error', id: 'room-error', role: 'alert' });
    this.people = h('ul', { class: 'people', id: 'people', 'aria-label': 'Members' });
    this.older = h('button', { type: 'button', class: 'older', onclick: () => this.loadOlder() }, 'Load older messages');
    this.messages = h('div', { class: 'messages', id: 'messages' });
    this.timeline = h(
      'div',
      { class: 'timeline', id: 'timeline', role: 'log', 'aria-labelledby': 'room-title', tabindex: 0 },
      this.older,
      this.messages,
    );
    this.timeline.addEventListener('scroll', () => {
      if (this.timeline.scrollTop === 0 && this.screen.current !== null) void this.loadOlder();
      this.markReadIfSeen();
    });
    this.typingLine = h('p', { class: 'typing', id: 'typing', 'aria-live': 'polite' });
    this.encryptedNote = h('p', { class: 'encrypted-note', id: 'encrypted-note', hidden: true }, '🔒 This conversation is end-to-end encrypted: the web client cannot read or write it yet. Use an end-to-end capable client (chorus chat).');
    this.element = h(
      'section',
      { class: 'room', 'aria-labelledby': 'room-title' },
      h(
        'header',
        { class: 'room-head' },
        h('div', { class: 'room-line' }, this.roomTitle, h('div', { class: 'room-actions' }, screen.invites.toggle, this.leaveButton)),
        this.people,
        screen.invites.form,
        this.roomError,
      ),
      this.timeline,
      this.typingLine,
      this.encryptedNote,
      screen.composer.form,
    );
  }

  /**
   * Start showing another room: nothing of the last one's is kept on screen.
   * @param {any} room the room opened (its `read_seq` places the "new" divider), if known
   */
  reset(room) {
    this.screen.messages.editing = null;
    this._elements.clear();
    this._stamps.clear();
    this.messages.replaceChildren();
    this.readAtOpen = room?.read_seq ?? 0;
  }

  /**
   * The names of the others whose read marker (read receipt) is at `seq` or past it.
   * @param {string} roomId
   * @param {number} seq
   * @returns {string}
   */
  seenBy(roomId, seq) {
    const markers = this.screen.receipts.get(roomId) ?? new Map();
    return [...markers].filter(([user, read]) => user !== this.screen.me.id && read >= seq).map(([user]) => this.screen.nameOf(user)).join(', ');
  }

  async loadOlder() {
    const roomId = this.screen.current;
    if (roomId === null) return;
    const timeline = this.screen.timelineOf(roomId);
    if (!timeline.hasOlder || timeline.oldestSeq === null || this._loadingOlder) return;
    this._loadingOlder = true;
    const height = this.timeline.scrollHeight;
    try {
      timeline.applyPage(await this.screen.api.events(roomId, { before: timeline.oldestSeq, limit: PAGE }), PAGE);
      if (this.screen.current === roomId) {
        this.renderTimeline();
        this.timeline.scrollTop = this.timeline.scrollHeight - height; // keep the reader's place
      }
    } catch (error) {
      this.screen.sidebar.showError(error);
    } finally {
      this._loadingOlder = false;
    }
  }

  /** Move the read marker to the newest event once the reader is at the bottom. */
  markReadIfSeen() {
    const roomId = this.screen.current;
    if (roomId === null || document.visibilityState !== 'visible') return;
    const room = this.screen.rooms.get(roomId);
    const latest = this.screen.timelineOf(roomId).latestSeq;
    const atEnd = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 40;
    if (room === undefined || !atEnd || latest <= (room.read_seq ?? 0)) {
      if (room !== undefined && atEnd && (room.unread || room.mentions)) {
        room.unread = 0;
        room.mentions = 0;
        this.screen.sidebar.render();
      }
      return;
    }
    room.read_seq = latest;
    room.unread = 0;
    room.mentions = 0;
    this.screen.sidebar.render();
    this.screen.client.markRead(roomId, latest).catch(() => {
      // Offline: the marker moves with the next read.
    });
  }

  /** The open room: its name, header actions, members, messages and composer. */
  render() {
    const room = this.screen.current === null ? undefined : this.screen.rooms.get(this.screen.current);
    this.roomTitle.textContent = room === undefined ? 'No room open' : roomName(room);
    this.roomError.textContent = '';
    this.renderActions();
    // End-to-end encrypted rooms need a client holding the keys (docs/e2e.md): shown, not written.
    const encrypted = room?.encrypted === true;
    this.screen.composer.form.hidden = room === undefined || encrypted;
    this.encryptedNote.hidden = !encrypted;
    this.renderPeople();
    this.renderTimeline();
    this.renderTyping();
  }

  /** The open room's header actions, as the user's role there allows (it may change). */
  renderActions() {
    const room = this.screen.current === null ? undefined : this.screen.rooms.get(this.screen.current);
    // Nobody leaves a direct room (docs/api.md); the owner may try, and is told why not.
    this.leaveButton.hidden = room === undefined || room.kind === 'direct';
    this.screen.invites.renderAction(room);
  }

  renderPeople() {
    const members = this.screen.current === null ? [] : this.screen.members.get(this.screen.current) ?? [];
    mount(
      this.people,
      members.map((member) => {
        const status = this.screen.presence.get(member.user_id) ?? 'offline';
        return h(
          'li',
          { class: 'person', 'data-user': member.user_id },
          h('span', { class: `dot ${status}`, 'aria-hidden': 'true' }),
          this.screen.nameOf(member.user_id),
          h('span', { class: 'status-text' }, ` ${status}`),
        );
      }),
    );
  }

  renderTyping() {
    const map = this.screen.current === null ? undefined : this.screen.typing.get(this.screen.current);
    const now = Date.now();
    const names = [...(map?.entries() ?? [])].filter(([, until]) => until > now).map(([user]) => this.screen.nameOf(user));
    this.typingLine.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  scrollToEnd() {
    this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  /** The open room's messages, pending and failed sends after them; only what changed is redrawn. */
  renderTimeline() {
    const roomId = this.screen.current;
    if (roomId === null) {
      this.messages.replaceChildren();
      this.older.hidden = true;
      return;
    }
    const timeline = this.screen.timelineOf(roomId);
    const atEnd = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 40;
    const noOlder = !timeline.hasOlder || timeline.oldestSeq === null;
    // A keyboard reader who tabs to the button scrolls to the top, which loads the
    // older page by itself; if history begins there, the focused button goes and the
    // focus would fall to the page's start: it stays in the log instead.
    if (noOlder && document.activeElement === this.older) this.timeline.focus({ preventScroll: true });
    this.older.hidden = noOlder;
    /** @type {[string, string, () => HTMLElement][]} */
    const rows = [];
    let divided = false;
    const messages = timeline.list();
    const lastOwn = messages.findLast((message) => message.sender === this.screen.me.id && !message.deleted);
    for (const message of messages) {
      if (!divided && this.readAtOpen > 0 && message.seq > this.readAtOpen && message.sender !== this.screen.me.id) {
        divided = true;
        rows.push(['divider', 'divider', () => h('div', { class: 'divider', role: 'separator' }, 'New')]);
      }
      const replies = timeline.replies.get(message.id) ?? 0;
      const seen = message === lastOwn ? this.seenBy(roomId, message.seq) : '';
      const stamp = JSON.stringify([message.body, message.edited_at, message.deleted, [...message.reactions].map(([e, u]) => [e, [...u]]), replies, this.screen.messages.editing === message.id, this.screen.nameOf(message.sender), seen]);
      rows.push([message.id, stamp, () => this.screen.messages.messageView(message, replies, false, seen)]);
    }
    const pending = [...this.screen.composer.stored, ...this.screen.client.pendingMessages()].filter((entry, index, all) => all.findIndex((e) => e.client_id === entry.client_id) === index);
    for (const entry of pending) {
      if (entry.room !== roomId || entry.thread !== null || timeline.clientIds.has(entry.client_id)) continue;
      rows.push([`pending:${entry.client_id}`, 'pending', () => this.screen.messages.pendingView(entry, null)]);
    }
    for (const [clientId, { entry, reason }] of this.screen.composer.failed) {
      if (entry.room !== roomId || entry.thread !== null) continue;
      rows.push([`failed:${clientId}`, `failed:${reason}`, () => this.screen.messages.pendingView(entry, reason)]);
    }
    this._reconcile(this.messages, rows);
    if (atEnd) this.scrollToEnd();
  }

  /**
   * Make `parent`'s children the rows, in order, rebuilding only rows whose stamp changed.
   * @param {HTMLElement} parent
   * @param {[string, string, () => HTMLElement][]} rows key, stamp, builder
   */
  _reconcile(parent, rows) {
    const keep = new Set(rows.map(([key]) => key));
    for (const [key, element] of this._elements) {
      if (!keep.has(key)) {
        element.remove();
        this._elements.delete(key);
        this._stamps.delete(key);
      }
    }
    let previous = /** @type {Element | null} */ (null);
    for (const [key, stamp, build] of rows) {
      let element = this._elements.get(key);
      if (element === undefined || this._stamps.get(key) !== stamp) {
        const built = build();
        if (element !== undefined) element.replaceWith(built);
        element = built;
        this._elements.set(key, element);
        this._stamps.set(key, stamp);
      }
      const expected = previous === null ? parent.firstElementChild : previous.nextElementSibling;
      if (expected !== element) parent.insertBefore(element, expected);
      previous = element;
    }
  }

  /** Leave the open room, once confirmed; the owner is told why the server refuses. */
  async leave() {
    const roomId = this.screen.current;
    const room = roomId === null ? undefined : this.screen.rooms.get(roomId);
    if (roomId === null || room === undefined) return;
    if (!window.confirm(`Leave ${roomName(room)}? You will no longer see its messages.`)) return;
    this.roomError.textContent = '';
    try {
      await this.screen.api.leaveRoom(roomId);
    } catch (error) {
      const owner = error instanceof ChorusError && error.status === 403 && room.role === 'owner';
      this.roomError.textContent = owner ? 'You own this room, and the owner cannot leave it: make another member the owner first.' : describe(error);
      return;
    }
    // `room_removed` follows on every connection of the user; this one need not wait.
    this.screen.forget(roomId);
  }
}
