/**
 * The chat screen: rooms with unread and mention badges, a room's history with
 * scroll-back, the composer (optimistic: pending → sent, failed with retry), typing,
 * presence, edits, deletes, reactions, threads, read markers, search, the
 * notification inbox and files.
 * @module
 */

import { ChorusError } from '/chorus-js/index.js';
import { h, mount, when } from './dom.js';
import { Invitations } from './invites.js';
import { describe } from './login.js';
import { Timeline } from './timeline.js';
import { saveCache } from './store.js';

/** @typedef {import('/chorus-js/index.js').HttpApi} HttpApi */
/** @typedef {import('/chorus-js/index.js').RealtimeClient} RealtimeClient */
/** @typedef {import('/chorus-js/index.js').User} User */
/** @typedef {import('/chorus-js/index.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./timeline.js').Shown} Shown */

const PAGE = 50;
const TYPING_EVERY_MS = 3000;
const LAST_ROOM_KEY = 'chorus.room';
const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

/**
 * @typedef {object} Panel
 * @property {'thread' | 'search' | 'inbox' | 'directory'} kind
 * @property {string} [room]
 * @property {string} [root]
 * @property {any[]} [items]
 */

export class ChatScreen {
  /**
   * @param {HTMLElement} root
   * @param {HttpApi} api
   * @param {RealtimeClient} client
   * @param {User} me
   * @param {any[]} rooms the last known room list (from the cache while offline)
   * @param {() => void} onSignOut
   */
  constructor(root, api, client, me, rooms, onSignOut) {
    this.root = root;
    this.api = api;
    this.client = client;
    this.me = me;
    this.onSignOut = onSignOut;
    /** @type {Map<string, any>} */
    this.rooms = new Map(rooms.map((room) => [room.id, room]));
    /** @type {Map<string, Timeline>} */
    this.timelines = new Map();
    /** @type {string | null} */
    this.current = null;
    /** Sends refused for good, by client id, until retried or discarded. @type {Map<string, {entry: OutboxEntry, reason: string}>} */
    this.failed = new Map();
    /** Entries of the outbox written before the client was connected (a reload). @type {OutboxEntry[]} */
    this.stored = [];
    /** @type {Map<string, Map<string, number>>} room → user → expiry (ms) */
    this.typing = new Map();
    /** @type {Map<string, string>} */
    this.presence = new Map();
    /** @type {Map<string, User>} */
    this.users = new Map([[me.id, me]]);
    /** @type {Map<string, {user_id: string}[]>} */
    this.members = new Map();
    /** Read markers of the others (receipts), by room then user. @type {Map<string, Map<string, number>>} */
    this.receipts = new Map();
    /** @type {Panel | null} */
    this.panel = null;
    this.unreadNotifications = 0;
    /** @type {string | null} id of the message being edited */
    this.editing = null;
    /** The read marker when the room was opened: the "new" divider goes after it. */
    this.readAtOpen = 0;
    this._lastTyping = 0;
    /** @type {Map<string, HTMLElement>} */
    this._elements = new Map();
    /** @type {Map<string, string>} */
    this._stamps = new Map();
    /** @type {Map<string, (file: any) => void>} upload waiters by file id */
    this._files = new Map();
    /** @type {{file: File, url: string | null}[]} */
    this.attaching = [];
    /** Files of a message being sent, each with its progress bar, until they are checked. @type {{file: File, url: string | null, bar: HTMLProgressElement}[]} */
    this.uploading = [];
    /** Sends of this page not acknowledged yet, for showing a refusal. @type {Map<string, OutboxEntry>} */
    this._lastSent = new Map();
    this._loadingOlder = false;
    /** The open thread's composer. @type {HTMLElement | null} */
    this._threadForm = null;
    this.invites = new Invitations(this);
    this.roomList = h('ul', { class: 'room-list', id: 'room-list' });
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
      if (this.timeline.scrollTop === 0 && this.current !== null) void this.loadOlder();
      this.markReadIfSeen();
    });
    this.typingLine = h('p', { class: 'typing', id: 'typing', 'aria-live': 'polite' });
    this.encryptedNote = h('p', { class: 'encrypted-note', id: 'encrypted-note', hidden: true }, '🔒 This conversation is end-to-end encrypted: the web client cannot read or write it yet. Use an end-to-end capable client (chorus chat).');
    this.input = h('textarea', { id: 'composer-input', rows: 2, maxlength: 4000, placeholder: 'Write a message', 'aria-label': 'Message' });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        /** @type {HTMLFormElement} */ (this.composer).requestSubmit();
      }
    });
    this.input.addEventListener('input', () => this.sendTyping());
    this.fileInput = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'visually-hidden', onchange: () => this.pickFiles() });
    this.previews = h('ul', { class: 'previews', id: 'previews', 'aria-label': 'Files to send' });
    this.composer = h(
      'form',
      { class: 'composer', id: 'composer', onsubmit: (/** @type {Event} */ e) => this.submit(e) },
      this.previews,
      h('label', { for: 'file-input', class: 'button attach', title: 'Attach files' }, '📎', h('span', { class: 'visually-hidden' }, 'Attach files')),
      this.fileInput,
      this.input,
      h('button', { type: 'submit', id: 'send' }, 'Send'),
    );
    this.roomSection = h(
      'section',
      { class: 'room', 'aria-labelledby': 'room-title' },
      h(
        'header',
        { class: 'room-head' },
        h('div', { class: 'room-line' }, this.roomTitle, h('div', { class: 'room-actions' }, this.invites.toggle, this.leaveButton)),
        this.people,
        this.invites.form,
        this.roomError,
      ),
      this.timeline,
      this.typingLine,
      this.encryptedNote,
      this.composer,
    );
    this.panelBox = h('aside', { class: 'panel', id: 'panel', hidden: true, 'aria-labelledby': 'panel-title' });
    this.panelBox.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.closePanel();
    });
    this.inboxBadge = h('span', { class: 'badge', id: 'inbox-badge', hidden: true });
    this.search = h('input', { type: 'search', id: 'search', placeholder: 'Search messages', 'aria-label': 'Search messages' });
    const sidebar = h(
      'nav',
      { class: 'sidebar', id: 'sidebar', 'aria-label': 'Rooms' },
      this.invites.section,
      h('h2', null, 'Rooms'),
      this.roomList,
      h(
        'form',
        { class: 'mini', id: 'create-room', onsubmit: (/** @type {Event} */ e) => this.createRoom(e) },
        h('label', { for: 'new-room' }, 'New room'),
        h('input', { id: 'new-room', name: 'name', required: true, maxlength: 100 }),
        h('select', { id: 'new-room-kind', 'aria-label': 'Kind' }, h('option', { value: 'public' }, 'public'), h('option', { value: 'private' }, 'private')),
        h('button', { type: 'submit' }, 'Create'),
      ),
      h(
        'form',
        { class: 'mini', id: 'open-dm', onsubmit: (/** @type {Event} */ e) => this.openDm(e) },
        h('label', { for: 'dm-name' }, 'Message a person'),
        h('input', { id: 'dm-name', name: 'username', required: true, placeholder: 'username', autocomplete: 'off' }),
        h('button', { type: 'submit' }, 'Open'),
      ),
      h('button', { type: 'button', id: 'browse', onclick: () => this.browse() }, 'Browse public rooms'),
      h('p', { class: 'error', id: 'side-error', role: 'alert' }),
    );
    const top = h(
      'header',
      { class: 'topbar' },
      h('button', { type: 'button', class: 'menu', id: 'menu', 'aria-controls': 'sidebar', 'aria-expanded': 'false', onclick: () => this.toggleMenu() }, '☰', h('span', { class: 'visually-hidden' }, 'Rooms')),
      h('span', { class: 'brand' }, 'Chorus'),
      h('form', { role: 'search', class: 'search', onsubmit: (/** @type {Event} */ e) => this.runSearch(e) }, this.search),
      h('button', { type: 'button', id: 'inbox', onclick: () => this.openInbox() }, 'Inbox ', this.inboxBadge),
      h('span', { class: 'me', id: 'me' }, this.me.display_name || this.me.username),
      h('button', { type: 'button', id: 'sign-out', onclick: () => this.onSignOut() }, 'Sign out'),
    );
    this.shell = h('div', { class: 'shell' }, top, h('div', { class: 'body' }, sidebar, this.roomSection, this.panelBox));
    this.sidebar = sidebar;
    mount(this.root, this.shell);
    this.root.removeAttribute('aria-busy');
    this.renderRooms();
    this.renderRoom();
    this._listen();
  }


  toggleMenu() {
    const open = this.shell.classList.toggle('menu-open');
    this.root.querySelector('#menu')?.setAttribute('aria-expanded', String(open));
  }

  // -- live events -------------------------------------------------------------------

  _listen() {
    const c = this.client;
    for (const type of /** @type {const} */ (['message', 'edited', 'deleted', 'reaction'])) {
      c.on(type, (event) => this.roomEvent(/** @type {any} */ (event)));
    }
    c.on('sent', ({ message }) => {
      this.failed.delete(message.client_id);
      this.stored = this.stored.filter((entry) => entry.client_id !== message.client_id);
      this.roomEvent({ ...message, type: 'message' });
      // It may have come as a `message` event first: its pending copy goes either way.
      if (message.room === this.current) this.renderTimeline();
      if (this.panel?.kind === 'thread') this.renderPanel();
    });
    c.on('send_failed', ({ client_id, error }) => {
      const entry = this.stored.find((stored) => stored.client_id === client_id) ?? this._lastSent.get(client_id);
      if (entry !== undefined) this.failed.set(client_id, { entry, reason: describe(error) });
      this.stored = this.stored.filter((stored) => stored.client_id !== client_id);
      this.renderTimeline();
    });
    c.on('typing', ({ room, user, expires_in_ms }) => {
      if (user === this.me.id) return;
      const map = this.typing.get(room) ?? new Map();
      map.set(user, Date.now() + expires_in_ms);
      this.typing.set(room, map);
      void this.user(user);
      this.renderTyping();
      setTimeout(() => this.renderTyping(), expires_in_ms + 50);
    });
    c.on('presence', ({ user, status }) => {
      this.presence.set(user, status);
      this.renderPeople();
      this.renderRooms();
    });
    c.on('notification', (note) => {
      this.unreadNotifications += 1;
      const room = this.rooms.get(note.room);
      if (room !== undefined && note.room !== this.current && note.kind !== 'reply') room.mentions = (room.mentions ?? 0) + 1;
      this.renderBadges();
    });
    c.on('room_added', ({ room }) => {
      this.invites.joined(room); // accepted (maybe on another device): no longer pending
      void this.refreshRooms();
    });
    c.on('room_found', () => void this.refreshRooms());
    // Left (here or on another device), removed or banned: the room goes.
    c.on('room_removed', ({ room }) => this.forget(room));
    c.on('room_invited', (event) => this.invites.invited(event));
    c.on('file', ({ file }) => this._files.get(file.id)?.(file));
    c.on('receipt', ({ room, user, seq }) => this.receipt(room, user, seq));
  }

  /** @param {any} event */
  roomEvent(event) {
    const room = event.room;
    const timeline = this.timelineOf(room);
    if (!timeline.apply(event)) return;
    const summary = this.rooms.get(room);
    if (summary !== undefined) summary.last_seq = Math.max(summary.last_seq ?? 0, event.seq);
    if (event.type === 'message') {
      void this.user(event.sender);
      // Nobody is told when someone else joins a room (and a member following it
      // by `resume` is not announced: docs/protocol.md, presence): a sender not in
      // the list is a newcomer, so the list (with their status) is loaded again.
      const members = this.members.get(room);
      if (members !== undefined && !members.some((member) => member.user_id === event.sender)) void this.loadMembers(room);
      this.typing.get(room)?.delete(event.sender);
      const seen = room === this.current && document.visibilityState === 'visible';
      if (summary !== undefined && event.sender !== this.me.id && !seen && event.seq > (summary.read_seq ?? 0)) {
        summary.unread = (summary.unread ?? 0) + 1;
        this.renderRooms();
      }
    }
    if (room === this.current) {
      this.renderTimeline();
      this.renderTyping();
      this.markReadIfSeen();
    }
    if (this.panel?.kind === 'thread' && this.panel.room === room) this.renderPanel();
  }

  // -- rooms -------------------------------------------------------------------------

  /** Load the rooms (with unread counts), join each, open the first. */
  async start() {
    await this.refreshRooms();
    void this.invites.load();
    try {
      const notes = await this.api.notifications({ limit: 50 });
      this.unreadNotifications = notes.filter((note) => note.read_at === null).length;
      this.renderBadges();
    } catch {
      // Offline: the badge comes with the next notification.
    }
    const last = this.lastRoom();
    if (last !== null) await this.open(last);
  }

  /**
   * The room to open: the one open last time (kept across reloads), else the first.
   * @returns {string | null}
   */
  lastRoom() {
    const kept = localStorage.getItem(LAST_ROOM_KEY);
    if (kept !== null && this.rooms.has(kept)) return kept;
    return this.rooms.size > 0 ? [...this.rooms.keys()][0] : null;
  }

  async refreshRooms() {
    try {
      const rooms = await this.api.roomsWithUnread();
      const before = new Set(this.rooms.keys());
      this.rooms = new Map(rooms.map((room) => [room.id, room]));
      this.saveRooms();
      this.renderRooms();
      this.renderActions();
      for (const room of rooms) {
        if (!before.has(room.id) || !this.client.rooms.has(room.id)) void this.subscribe(room.id);
        for (const other of room.others ?? []) this.users.set(other.id, other);
      }
    } catch (error) {
      this.sideError(error);
    }
  }

  /**
   * The names of the others whose read marker (read receipt) is at `seq` or past it.
   * @param {string} roomId
   * @param {number} seq
   * @returns {string}
   */
  seenBy(roomId, seq) {
    const markers = this.receipts.get(roomId) ?? new Map();
    return [...markers].filter(([user, read]) => user !== this.me.id && read >= seq).map(([user]) => this.nameOf(user)).join(', ');
  }

  /**
   * @param {string} roomId
   * @param {string} user
   * @param {number} seq
   */
  receipt(roomId, user, seq) {
    const markers = this.receipts.get(roomId) ?? new Map();
    markers.set(user, Math.max(seq, markers.get(user) ?? 0));
    this.receipts.set(roomId, markers);
    if (roomId === this.current) this.renderTimeline();
  }

  /** Keep the room list for the next visit (opened offline, it resumes from these seqs). */
  saveRooms() {
    const rooms = [...this.rooms.values()].map((room) => ({ ...room, last_seq: Math.max(room.last_seq ?? 0, this.timelines.get(room.id)?.latestSeq ?? 0) }));
    saveCache({ user: this.me, rooms });
  }

  /** @param {string} roomId */
  async subscribe(roomId) {
    if (this.client.rooms.has(roomId)) return;
    const timeline = this.timelineOf(roomId);
    try {
      if (timeline.latestSeq > 0) await this.client.resumeRoom(roomId, timeline.latestSeq);
      else await this.client.join(roomId);
    } catch (error) {
      console.warn('chorus: cannot follow room', roomId, error);
    }
  }

  /** @param {string} roomId */
  timelineOf(roomId) {
    let timeline = this.timelines.get(roomId);
    if (timeline === undefined) {
      timeline = new Timeline(roomId);
      this.timelines.set(roomId, timeline);
    }
    return timeline;
  }

  /** @param {any} room */
  roomName(room) {
    if (room.kind === 'direct') {
      const names = (room.others ?? []).map((/** @type {User} */ user) => user.display_name || user.username);
      return names.length > 0 ? names.join(', ') : 'Direct conversation';
    }
    return room.name;
  }

  renderRooms() {
    const items = [...this.rooms.values()].map((room) => {
      const current = room.id === this.current;
      const unread = room.unread ?? 0;
      const mentions = room.mentions ?? 0;
      const label = [this.roomName(room), unread ? `${unread} unread` : '', mentions ? `${mentions} mentions` : ''].filter(Boolean).join(', ');
      const other = room.kind === 'direct' && room.others?.length === 1 ? room.others[0].id : null;
      return h(
        'li',
        null,
        h(
          'button',
          { type: 'button', class: 'room-item', 'data-room': room.id, 'aria-current': current ? 'page' : false, 'aria-label': label, onclick: () => this.open(room.id) },
          other !== null ? h('span', { class: `dot ${this.presence.get(other) ?? 'offline'}`, 'aria-hidden': 'true' }) : h('span', { class: 'hash', 'aria-hidden': 'true' }, room.kind === 'private' ? '🔒' : '#'),
          h('span', { class: 'name' }, this.roomName(room)),
          unread ? h('span', { class: 'badge unread', 'aria-hidden': 'true' }, String(unread)) : null,
          mentions ? h('span', { class: 'badge mention', 'aria-hidden': 'true' }, `@${mentions}`) : null,
        ),
      );
    });
    mount(this.roomList, items.length > 0 ? items : h('li', { class: 'empty' }, 'No rooms yet: create one or browse.'));
  }

  renderBadges() {
    this.inboxBadge.hidden = this.unreadNotifications === 0;
    this.inboxBadge.textContent = String(this.unreadNotifications);
    this.renderRooms();
  }

  /** @param {string} roomId */
  async open(roomId) {
    this.current = roomId;
    localStorage.setItem(LAST_ROOM_KEY, roomId);
    this.editing = null;
    this._elements.clear();
    this._stamps.clear();
    this.messages.replaceChildren();
    this.shell.classList.remove('menu-open');
    const room = this.rooms.get(roomId);
    this.readAtOpen = room?.read_seq ?? 0;
    this.renderRooms();
    this.renderRoom();
    const timeline = this.timelineOf(roomId);
    if (timeline.oldestSeq === null) {
      try {
        timeline.applyPage(await this.api.events(roomId, { limit: PAGE }), PAGE);
      } catch (error) {
        this.sideError(error);
      }
    }
    if (this.current !== roomId) return;
    this.renderTimeline();
    this.scrollToEnd();
    this.markReadIfSeen();
    void this.loadMembers(roomId);
    this.input.focus();
  }

  /** @param {string} roomId */
  async loadMembers(roomId) {
    try {
      const room = await this.api.getRoom(roomId);
      this.members.set(roomId, room.members);
      for (const member of room.members) {
        if (member.read_seq !== null) this.receipt(roomId, member.user_id, member.read_seq);
        if (!this.presence.has(member.user_id)) this.presence.set(member.user_id, member.status);
        void this.user(member.user_id);
      }
      this.renderPeople();
    } catch {
      // Offline: the list comes with the next open.
    }
  }

  async loadOlder() {
    const roomId = this.current;
    if (roomId === null) return;
    const timeline = this.timelineOf(roomId);
    if (!timeline.hasOlder || timeline.oldestSeq === null || this._loadingOlder) return;
    this._loadingOlder = true;
    const height = this.timeline.scrollHeight;
    try {
      timeline.applyPage(await this.api.events(roomId, { before: timeline.oldestSeq, limit: PAGE }), PAGE);
      if (this.current === roomId) {
        this.renderTimeline();
        this.timeline.scrollTop = this.timeline.scrollHeight - height; // keep the reader's place
      }
    } catch (error) {
      this.sideError(error);
    } finally {
      this._loadingOlder = false;
    }
  }

  /** Move the read marker to the newest event once the reader is at the bottom. */
  markReadIfSeen() {
    const roomId = this.current;
    if (roomId === null || document.visibilityState !== 'visible') return;
    const room = this.rooms.get(roomId);
    const latest = this.timelineOf(roomId).latestSeq;
    const atEnd = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 40;
    if (room === undefined || !atEnd || latest <= (room.read_seq ?? 0)) {
      if (room !== undefined && atEnd && (room.unread || room.mentions)) {
        room.unread = 0;
        room.mentions = 0;
        this.renderRooms();
      }
      return;
    }
    room.read_seq = latest;
    room.unread = 0;
    room.mentions = 0;
    this.renderRooms();
    this.client.markRead(roomId, latest).catch(() => {
      // Offline: the marker moves with the next read.
    });
  }

  // -- the open room -----------------------------------------------------------------

  renderRoom() {
    const room = this.current === null ? undefined : this.rooms.get(this.current);
    this.roomTitle.textContent = room === undefined ? 'No room open' : this.roomName(room);
    this.roomError.textContent = '';
    this.renderActions();
    // End-to-end encrypted rooms need a client holding the keys (docs/e2e.md): shown, not written.
    const encrypted = room?.encrypted === true;
    this.composer.hidden = room === undefined || encrypted;
    this.encryptedNote.hidden = !encrypted;
    this.renderPeople();
    this.renderTimeline();
    this.renderTyping();
  }

  /** The open room's header actions, as the user's role there allows (it may change). */
  renderActions() {
    const room = this.current === null ? undefined : this.rooms.get(this.current);
    // Nobody leaves a direct room (docs/api.md); the owner may try, and is told why not.
    this.leaveButton.hidden = room === undefined || room.kind === 'direct';
    this.invites.renderAction(room);
  }

  renderPeople() {
    const members = this.current === null ? [] : this.members.get(this.current) ?? [];
    mount(
      this.people,
      members.map((member) => {
        const status = this.presence.get(member.user_id) ?? 'offline';
        return h(
          'li',
          { class: 'person', 'data-user': member.user_id },
          h('span', { class: `dot ${status}`, 'aria-hidden': 'true' }),
          this.nameOf(member.user_id),
          h('span', { class: 'status-text' }, ` ${status}`),
        );
      }),
    );
  }

  renderTyping() {
    const map = this.current === null ? undefined : this.typing.get(this.current);
    const now = Date.now();
    const names = [...(map?.entries() ?? [])].filter(([, until]) => until > now).map(([user]) => this.nameOf(user));
    this.typingLine.textContent = names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
  }

  scrollToEnd() {
    this.timeline.scrollTop = this.timeline.scrollHeight;
  }

  /** The open room's messages, pending and failed sends after them; only what changed is redrawn. */
  renderTimeline() {
    const roomId = this.current;
    if (roomId === null) {
      this.messages.replaceChildren();
      this.older.hidden = true;
      return;
    }
    const timeline = this.timelineOf(roomId);
    const atEnd = this.timeline.scrollHeight - this.timeline.scrollTop - this.timeline.clientHeight < 40;
    this.older.hidden = !timeline.hasOlder || timeline.oldestSeq === null;
    /** @type {[string, string, () => HTMLElement][]} */
    const rows = [];
    let divided = false;
    const messages = timeline.list();
    const lastOwn = messages.findLast((message) => message.sender === this.me.id && !message.deleted);
    for (const message of messages) {
      if (!divided && this.readAtOpen > 0 && message.seq > this.readAtOpen && message.sender !== this.me.id) {
        divided = true;
        rows.push(['divider', 'divider', () => h('div', { class: 'divider', role: 'separator' }, 'New')]);
      }
      const replies = timeline.replies.get(message.id) ?? 0;
      const seen = message === lastOwn ? this.seenBy(roomId, message.seq) : '';
      const stamp = JSON.stringify([message.body, message.edited_at, message.deleted, [...message.reactions].map(([e, u]) => [e, [...u]]), replies, this.editing === message.id, this.nameOf(message.sender), seen]);
      rows.push([message.id, stamp, () => this.messageView(message, replies, false, seen)]);
    }
    const pending = [...this.stored, ...this.client.pendingMessages()].filter((entry, index, all) => all.findIndex((e) => e.client_id === entry.client_id) === index);
    for (const entry of pending) {
      if (entry.room !== roomId || entry.thread !== null || timeline.clientIds.has(entry.client_id)) continue;
      rows.push([`pending:${entry.client_id}`, 'pending', () => this.pendingView(entry, null)]);
    }
    for (const [clientId, { entry, reason }] of this.failed) {
      if (entry.room !== roomId || entry.thread !== null) continue;
      rows.push([`failed:${clientId}`, `failed:${reason}`, () => this.pendingView(entry, reason)]);
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

  /**
   * @param {string} userId
   * @returns {string}
   */
  nameOf(userId) {
    const user = this.users.get(userId);
    return user === undefined ? userId : user.display_name || user.username;
  }

  /**
   * Fetch a user's name once; redraw what shows it.
   * @param {string} userId
   */
  async user(userId) {
    if (this.users.has(userId)) return;
    this.users.set(userId, { id: userId, username: userId, display_name: userId, created_at: 0 });
    try {
      this.users.set(userId, await this.api.getUser(userId));
      this.renderTimeline();
      this.renderPeople();
      this.renderTyping();
      this.invites.render();
    } catch {
      this.users.delete(userId);
    }
  }

  /**
   * @param {Shown} message
   * @param {number} replies
   * @param {boolean} [inThread]
   * @param {string} [seen] who has read it (their names), shown under it
   * @returns {HTMLElement}
   */
  messageView(message, replies, inThread = false, seen = '') {
    const own = message.sender === this.me.id;
    const room = message.room;
    const actions = message.deleted || message.encrypted
      ? []
      : [
          ...QUICK_REACTIONS.slice(0, 2).map((emoji) =>
            h('button', { type: 'button', class: 'act', 'aria-label': `React ${emoji}`, onclick: () => this.toggleReaction(message, emoji) }, emoji),
          ),
          inThread ? null : h('button', { type: 'button', class: 'act reply', onclick: () => this.openThread(room, message.id) }, replies ? `${replies} ${replies === 1 ? 'reply' : 'replies'}` : 'Reply in thread'),
          own ? h('button', { type: 'button', class: 'act edit', onclick: () => this.startEdit(message.id) }, 'Edit') : null,
          own ? h('button', { type: 'button', class: 'act delete', onclick: () => this.remove(message) }, 'Delete') : null,
        ];
    const body = message.deleted
      ? h('p', { class: 'tomb' }, 'This message was deleted.')
      : this.editing === message.id && !inThread
        ? this.editForm(message)
        : message.encrypted
        ? h('p', { class: 'tomb' }, '🔒 Encrypted message')
        : message.body
          ? h('p', { class: 'body' }, message.body)
          : null;
    return h(
      'article',
      { class: `msg${own ? ' own' : ''}`, 'data-id': message.id, 'data-seq': message.seq, 'data-client-id': message.client_id, 'aria-label': `${this.nameOf(message.sender)}, ${when(message.created_at)}` },
      h(
        'header',
        null,
        h('span', { class: 'sender' }, this.nameOf(message.sender)),
        ' ',
        h('time', { datetime: new Date(message.created_at).toISOString() }, when(message.created_at)),
        message.edited_at !== null && !message.deleted ? h('span', { class: 'edited' }, ' (edited)') : null,
        own ? h('span', { class: 'state sent' }, ' ✓ sent') : null,
      ),
      body,
      this.attachmentsView(message),
      this.reactionsView(message),
      seen ? h('p', { class: 'seen' }, `Seen by ${seen}`) : null,
      h('div', { class: 'actions' }, actions),
    );
  }

  /**
   * @param {OutboxEntry} entry
   * @param {string | null} failure why it was refused for good, or null: still pending
   * @returns {HTMLElement}
   */
  pendingView(entry, failure) {
    const state =
      failure === null
        ? h('span', { class: 'state pending' }, this.client.connected ? ' sending…' : ' waiting for the connection…')
        : h('span', { class: 'state failed', role: 'alert' }, ` not sent: ${failure}`);
    return h(
      'article',
      { class: `msg own ${failure === null ? 'pending' : 'failed'}`, 'data-client-id': entry.client_id },
      h('header', null, h('span', { class: 'sender' }, this.nameOf(this.me.id)), state),
      entry.body ? h('p', { class: 'body' }, entry.body) : null,
      entry.attachments.length > 0 ? h('p', { class: 'files-note' }, `${entry.attachments.length} file(s)`) : null,
      failure === null
        ? null
        : h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', class: 'act retry', onclick: () => this.retry(entry) }, 'Retry'),
            h('button', { type: 'button', class: 'act', onclick: () => this.discard(entry.client_id) }, 'Discard'),
          ),
    );
  }

  /** @param {Shown} message */
  reactionsView(message) {
    if (message.reactions.size === 0) return null;
    return h(
      'div',
      { class: 'reactions', 'aria-label': 'Reactions' },
      [...message.reactions].map(([emoji, users]) => {
        const mine = users.has(this.me.id);
        return h(
          'button',
          { type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'aria-pressed': String(mine), 'data-emoji': emoji, title: [...users].map((u) => this.nameOf(u)).join(', '), onclick: () => this.toggleReaction(message, emoji) },
          `${emoji} ${users.size}`,
        );
      }),
    );
  }

  /** @param {Shown} message */
  attachmentsView(message) {
    if (message.attachments.length === 0) return null;
    return h(
      'ul',
      { class: 'attachments' },
      message.attachments.map((file) => {
        const image = file.thumbnails.length > 0 || file.content_type.startsWith('image/');
        if (image) {
          const img = h('img', { alt: file.name, width: file.thumbnails[0]?.width, height: file.thumbnails[0]?.height, class: 'thumb' });
          const variant = file.thumbnails.find((t) => t.name === '320') ? '320' : 'original';
          this.api.fileUrl(file.id, variant).then((url) => img.setAttribute('src', url), () => {});
          return h('li', null, h('button', { type: 'button', class: 'image-link', onclick: () => this.download(file.id), 'aria-label': `Open ${file.name}` }, img));
        }
        return h('li', null, h('button', { type: 'button', class: 'file-link', onclick: () => this.download(file.id) }, `📄 ${file.name} (${Math.ceil(file.size / 1024)} KiB)`));
      }),
    );
  }

  /** @param {string} fileId */
  async download(fileId) {
    try {
      window.open(await this.api.fileUrl(fileId), '_blank', 'noopener');
    } catch (error) {
      this.sideError(error);
    }
  }

  /** @param {Shown} message */
  editForm(message) {
    const field = h('input', { class: 'edit-input', value: message.body, 'aria-label': 'Edit message', maxlength: 4000 });
    const form = h(
      'form',
      {
        class: 'edit',
        onsubmit: async (/** @type {Event} */ event) => {
          event.preventDefault();
          const body = /** @type {HTMLInputElement} */ (field).value.trim();
          this.editing = null;
          this.renderTimeline();
          if (body && body !== message.body) {
            try {
              await this.client.edit(message.room, message.id, body);
            } catch (error) {
              this.sideError(error);
            }
          }
        },
      },
      field,
      h('button', { type: 'submit' }, 'Save'),
      h('button', { type: 'button', onclick: () => this.cancelEdit() }, 'Cancel'),
    );
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.cancelEdit();
    });
    queueMicrotask(() => field.focus());
    return form;
  }

  /** @param {string} messageId */
  startEdit(messageId) {
    this.editing = messageId;
    this.renderTimeline();
  }

  cancelEdit() {
    this.editing = null;
    this.renderTimeline();
    this.input.focus();
  }

  /** @param {Shown} message */
  async remove(message) {
    if (!window.confirm('Delete this message for everyone?')) return;
    try {
      await this.client.delete(message.room, message.id);
    } catch (error) {
      this.sideError(error);
    }
  }

  /**
   * @param {Shown} message
   * @param {string} emoji
   */
  async toggleReaction(message, emoji) {
    const mine = message.reactions.get(emoji)?.has(this.me.id) ?? false;
    try {
      await this.client.react(message.room, message.id, emoji, { remove: mine });
    } catch (error) {
      this.sideError(error);
    }
  }

  // -- sending -----------------------------------------------------------------------

  sendTyping() {
    const now = Date.now();
    if (this.current !== null && now - this._lastTyping > TYPING_EVERY_MS) {
      this._lastTyping = now;
      this.client.typing(this.current);
    }
  }

  /** @param {Event} event */
  async submit(event) {
    event.preventDefault();
    const roomId = this.current;
    const input = /** @type {HTMLTextAreaElement} */ (this.input);
    const body = input.value.trim();
    if (roomId === null || (body === '' && this.attaching.length === 0)) return;
    input.value = '';
    this._lastTyping = 0;
    const files = this.attaching.splice(0).map(({ file, url }) => ({
      file,
      url,
      bar: /** @type {HTMLProgressElement} */ (h('progress', { max: file.size, value: 0, 'aria-label': `Uploading ${file.name}` })),
    }));
    this.uploading.push(...files);
    this.renderPreviews();
    let attachments = /** @type {string[]} */ ([]);
    if (files.length > 0) {
      try {
        attachments = await Promise.all(files.map(({ file, bar }) => this.upload(file, bar)));
      } catch (error) {
        this.sideError(error);
        input.value = body;
        return;
      } finally {
        for (const { url } of files) if (url !== null) URL.revokeObjectURL(url);
        this.uploading = this.uploading.filter((item) => !files.includes(item));
        this.renderPreviews();
      }
    }
    await this.post(roomId, body, null, attachments);
  }

  /**
   * Send through the outbox (kept in IndexedDB until acknowledged); shown at once as pending.
   * @param {string} roomId
   * @param {string} body
   * @param {string | null} thread
   * @param {string[]} [attachments]
   */
  async post(roomId, body, thread, attachments = []) {
    const clientId = crypto.randomUUID();
    const sending = this.client.send(roomId, body, { clientId, thread, attachments });
    // Shown as pending once the outbox has stored it (`outboxChanged`): then a reload keeps it.
    this._lastSent.set(clientId, { client_id: clientId, room: roomId, body, thread, attachments, created_at: Date.now() });
    try {
      await sending;
    } catch {
      // Refused for good: `send_failed` shows it with Retry.
    } finally {
      this._lastSent.delete(clientId);
    }
  }

  /** The outbox stored or dropped a message: redraw the pending ones. */
  outboxChanged() {
    this.renderTimeline();
    if (this.panel?.kind === 'thread') this.renderPanel();
  }

  /** @param {OutboxEntry} entry */
  async retry(entry) {
    this.failed.delete(entry.client_id);
    this.renderTimeline();
    await this.post(entry.room, entry.body, entry.thread, entry.attachments);
  }

  /** @param {string} clientId */
  discard(clientId) {
    this.failed.delete(clientId);
    this.renderTimeline();
  }

  pickFiles() {
    const input = /** @type {HTMLInputElement} */ (this.fileInput);
    for (const file of input.files ?? []) {
      this.attaching.push({ file, url: file.type.startsWith('image/') ? URL.createObjectURL(file) : null });
    }
    input.value = '';
    this.renderPreviews();
  }

  renderPreviews() {
    mount(
      this.previews,
      this.uploading.map(({ file, url, bar }) =>
        h('li', { class: 'uploading' }, url !== null ? h('img', { src: url, alt: `Preview of ${file.name}`, class: 'preview' }) : h('span', null, `📄 ${file.name}`), bar),
      ),
      this.attaching.map((item, index) =>
        h(
          'li',
          null,
          item.url !== null ? h('img', { src: item.url, alt: `Preview of ${item.file.name}`, class: 'preview' }) : h('span', null, `📄 ${item.file.name}`),
          h('button', { type: 'button', 'aria-label': `Remove ${item.file.name}`, onclick: () => { const [removed] = this.attaching.splice(index, 1); if (removed.url) URL.revokeObjectURL(removed.url); this.renderPreviews(); } }, '×'),
        ),
      ),
    );
  }

  /**
   * Upload a file, its progress shown on `bar`, and wait until the server has
   * checked it; its id.
   * @param {File} file
   * @param {HTMLProgressElement} bar
   * @returns {Promise<string>}
   */
  async upload(file, bar) {
    const info = await this.api.uploadFile(file, {
      name: file.name,
      contentType: file.type || 'application/octet-stream',
      onProgress: (sent) => {
        bar.value = sent;
      },
    });
    /** @type {Promise<any>} */
    const checked = new Promise((resolve) => this._files.set(info.id, resolve));
    // The `file` frame says when; polling covers a frame missed while reconnecting.
    for (let state = info; state.state !== 'ready'; ) {
      if (state.state === 'rejected') throw new Error(`${file.name} was refused (${state.reason})`);
      state = await Promise.race([checked, new Promise((resolve) => setTimeout(resolve, 2000)).then(() => this.api.file(info.id))]);
    }
    this._files.delete(info.id);
    return info.id;
  }

  // -- rooms and people --------------------------------------------------------------

  /**
   * Open a room the user has just become a member of: listed, followed, shown.
   * @param {string} roomId
   */
  async enter(roomId) {
    await this.refreshRooms();
    await this.subscribe(roomId);
    await this.open(roomId);
  }

  /** @param {Event} event */
  async createRoom(event) {
    event.preventDefault();
    const field = /** @type {HTMLInputElement} */ (this.root.querySelector('#new-room'));
    const kind = /** @type {HTMLSelectElement} */ (this.root.querySelector('#new-room-kind')).value;
    try {
      const room = await this.api.createRoom(field.value.trim(), /** @type {'public' | 'private'} */ (kind));
      field.value = '';
      await this.enter(room.id);
    } catch (error) {
      this.sideError(error);
    }
  }

  /** @param {Event} event */
  async openDm(event) {
    event.preventDefault();
    const field = /** @type {HTMLInputElement} */ (this.root.querySelector('#dm-name'));
    try {
      const room = await this.api.directRoomByName(field.value.trim());
      field.value = '';
      await this.enter(room.id);
    } catch (error) {
      this.sideError(error);
    }
  }

  async browse() {
    try {
      this.showPanel({ kind: 'directory', items: await this.api.publicRooms({ limit: 50 }) });
    } catch (error) {
      this.sideError(error);
    }
  }

  /** @param {string} roomId */
  async joinPublic(roomId) {
    try {
      await this.api.joinRoom(roomId);
      this.closePanel();
      await this.enter(roomId);
    } catch (error) {
      this.sideError(error);
    }
  }

  /** @param {unknown} error */
  sideError(error) {
    // Offline (or before the session is restored) the status line says it all.
    if (!navigator.onLine || this.api.session === null) return;
    this.sideMessage(describe(error));
  }

  /** @param {string} text */
  sideMessage(text) {
    const box = this.root.querySelector('#side-error');
    if (box !== null) box.textContent = text;
  }

  /** Leave the open room, once confirmed; the owner is told why the server refuses. */
  async leave() {
    const roomId = this.current;
    const room = roomId === null ? undefined : this.rooms.get(roomId);
    if (roomId === null || room === undefined) return;
    if (!window.confirm(`Leave ${this.roomName(room)}? You will no longer see its messages.`)) return;
    this.roomError.textContent = '';
    try {
      await this.api.leaveRoom(roomId);
    } catch (error) {
      const owner = error instanceof ChorusError && error.status === 403 && room.role === 'owner';
      this.roomError.textContent = owner ? 'You own this room, and the owner cannot leave it: make another member the owner first.' : describe(error);
      return;
    }
    // `room_removed` follows on every connection of the user; this one need not wait.
    this.forget(roomId);
  }

  /**
   * The user is no longer a member of the room: it leaves the list (and the cache);
   * if it was open, another room opens.
   * @param {string} roomId
   */
  forget(roomId) {
    if (!this.rooms.delete(roomId)) return;
    this.timelines.delete(roomId); // a later membership starts from fresh history
    this.members.delete(roomId);
    this.saveRooms();
    if (this.panel?.kind === 'thread' && this.panel.room === roomId) this.closePanel();
    if (this.current !== roomId) {
      this.renderRooms();
      return;
    }
    this.current = null;
    const next = this.lastRoom();
    if (next !== null) {
      void this.open(next);
      return;
    }
    this.renderRooms();
    this.renderRoom();
  }

  // -- the side panel: threads, search, inbox, directory -----------------------------

  /** @param {Panel} panel */
  showPanel(panel) {
    this.panel = panel;
    this.renderPanel();
    this.panelBox.querySelector('h2')?.focus();
  }

  closePanel() {
    this.panel = null;
    this.renderPanel();
    this.input.focus(); // back where the keyboard user was writing
  }

  /**
   * @param {string} roomId
   * @param {string} rootId
   */
  async openThread(roomId, rootId) {
    this.showPanel({ kind: 'thread', room: roomId, root: rootId });
    try {
      const replies = await this.api.thread(roomId, rootId, { limit: 100 });
      const timeline = this.timelineOf(roomId);
      for (const reply of replies) timeline.apply({ ...reply, type: 'message' });
      this.renderPanel();
    } catch (error) {
      this.sideError(error);
    }
  }

  /** @param {Event} event */
  async runSearch(event) {
    event.preventDefault();
    const query = /** @type {HTMLInputElement} */ (this.search).value.trim();
    if (!query) return;
    try {
      this.showPanel({ kind: 'search', items: await this.api.search(query, { limit: 20 }) });
    } catch (error) {
      this.sideError(error);
    }
  }

  async openInbox() {
    try {
      const items = await this.api.notifications({ limit: 50 });
      this.showPanel({ kind: 'inbox', items });
      const unread = items.filter((note) => note.read_at === null).map((note) => note.id);
      if (unread.length > 0) await this.api.markNotificationsRead(unread);
      this.unreadNotifications = 0;
      this.renderBadges();
    } catch (error) {
      this.sideError(error);
    }
  }

  renderPanel() {
    const panel = this.panel;
    this.panelBox.hidden = panel === null;
    this.shell.classList.toggle('panel-open', panel !== null);
    if (panel === null || panel.kind !== 'thread') this._threadForm = null;
    if (panel === null) {
      this.panelBox.replaceChildren();
      return;
    }
    const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close panel', onclick: () => this.closePanel() }, '×');
    if (panel.kind === 'thread') {
      const roomId = /** @type {string} */ (panel.room);
      const timeline = this.timelineOf(roomId);
      const root = timeline.messages.get(/** @type {string} */ (panel.root));
      const replies = timeline.list(panel.root);
      const pending = this.client.pendingMessages().filter((entry) => entry.thread === panel.root && !timeline.clientIds.has(entry.client_id));
      // The composer is built once per thread: redrawing the replies keeps what is typed.
      if (this._threadForm?.dataset.root !== panel.root) {
        const field = h('input', { id: 'thread-input', 'aria-label': 'Reply in thread', maxlength: 4000, placeholder: 'Reply' });
        this._threadForm = h(
          'form',
          {
            class: 'composer thread-composer',
            'data-root': panel.root,
            onsubmit: (/** @type {Event} */ event) => {
              event.preventDefault();
              const body = /** @type {HTMLInputElement} */ (field).value.trim();
              if (!body) return;
              /** @type {HTMLInputElement} */ (field).value = '';
              void this.post(roomId, body, /** @type {string} */ (panel.root));
            },
          },
          field,
          h('button', { type: 'submit' }, 'Reply'),
        );
        mount(
          this.panelBox,
          h('header', null, h('h2', { id: 'panel-title', tabindex: -1 }, 'Thread'), close),
          h('div', { id: 'thread-root' }),
          h('div', { class: 'thread-replies', id: 'thread-replies', role: 'log', 'aria-label': 'Replies' }),
          this._threadForm,
        );
      }
      mount(/** @type {HTMLElement} */ (this.panelBox.querySelector('#thread-root')), root === undefined ? null : this.messageView(root, 0, true));
      mount(
        /** @type {HTMLElement} */ (this.panelBox.querySelector('#thread-replies')),
        replies.map((reply) => this.messageView(reply, 0, true)),
        pending.map((entry) => this.pendingView(entry, null)),
      );
      return;
    }
    const titles = { search: 'Search results', inbox: 'Notifications', directory: 'Public rooms' };
    const items = panel.items ?? [];
    /** @type {HTMLElement[]} */
    let list;
    if (panel.kind === 'search') {
      list = items.map((hit) =>
        h('li', null, h('button', { type: 'button', class: 'hit', onclick: () => this.open(hit.message.room) }, h('span', { class: 'where' }, this.roomName(this.rooms.get(hit.message.room) ?? { name: hit.message.room })), ' ', highlight(hit.snippet))),
      );
    } else if (panel.kind === 'inbox') {
      list = items.map((note) =>
        h('li', { class: note.read_at === null ? 'unread' : '' }, h('button', { type: 'button', class: 'hit', onclick: () => this.open(note.room) }, `${{ mention: 'Mentioned you', room_mention: 'Mentioned the room', reply: 'Replied in a thread' }[/** @type {'mention'} */ (note.kind)] ?? note.kind} in ${this.roomName(this.rooms.get(note.room) ?? { name: note.room })} · ${when(note.created_at)}`)),
      );
    } else {
      list = items.map((room) =>
        h('li', null, h('span', null, `# ${room.name}`), this.rooms.has(room.id) ? h('span', { class: 'joined' }, ' joined') : h('button', { type: 'button', onclick: () => this.joinPublic(room.id) }, `Join ${room.name}`)),
      );
    }
    mount(
      this.panelBox,
      h('header', null, h('h2', { id: 'panel-title', tabindex: -1 }, titles[panel.kind]), close),
      h('ul', { class: 'panel-list' }, list.length > 0 ? list : h('li', { class: 'empty' }, 'Nothing here.')),
    );
  }
}

/**
 * A search snippet with its matches (between ⟦ and ⟧) marked, as text nodes.
 * @param {string} snippet
 * @returns {HTMLElement}
 */
function highlight(snippet) {
  const parts = snippet.split(/⟦|⟧/);
  return h('span', { class: 'snippet' }, parts.map((part, index) => (index % 2 === 1 ? h('mark', null, part) : part)));
}
