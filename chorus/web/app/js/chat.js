/**
 * The chat screen: the state the parts share (rooms, their timelines, the open
 * room, people's names and presence, typing, read receipts) and the live events that
 * change it, routed to the parts, each in its own module: the sidebar (sidebar.js),
 * invitations (invites.js), the open room (room-view.js) and its messages
 * (messages.js), the composer (composer.js) and the side panel: threads, search,
 * the inbox and the room directory (panel.js).
 * @module
 */

import { Composer } from './composer.js';
import { h, mount } from './dom.js';
import { Invitations } from './invites.js';
import { MessageViews } from './messages.js';
import { SidePanel } from './panel.js';
import { PAGE, RoomView } from './room-view.js';
import { Sidebar } from './sidebar.js';
import { Timeline } from './timeline.js';
import { saveCache } from './store.js';

/** @typedef {import('/chorus-js/index.js').HttpApi} HttpApi */
/** @typedef {import('/chorus-js/index.js').RealtimeClient} RealtimeClient */
/** @typedef {import('/chorus-js/index.js').User} User */

const LAST_ROOM_KEY = 'chorus.room';

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
    // The parts (each keeps its own elements and state; built in this order, as
    // the later ones place the earlier ones' elements).
    this.invites = new Invitations(this);
    this.messages = new MessageViews(this);
    this.composer = new Composer(this);
    this.panel = new SidePanel(this);
    this.sidebar = new Sidebar(this);
    this.roomView = new RoomView(this);
    const top = h(
      'header',
      { class: 'topbar' },
      h('button', { type: 'button', class: 'menu', id: 'menu', 'aria-controls': 'sidebar', 'aria-expanded': 'false', onclick: () => this.toggleMenu() }, '☰', h('span', { class: 'visually-hidden' }, 'Rooms')),
      h('span', { class: 'brand' }, 'Chorus'),
      this.panel.searchForm,
      this.panel.inboxButton,
      h('span', { class: 'me', id: 'me' }, this.me.display_name || this.me.username),
      h('button', { type: 'button', id: 'sign-out', onclick: () => this.onSignOut() }, 'Sign out'),
    );
    this.shell = h('div', { class: 'shell' }, top, h('div', { class: 'body' }, this.sidebar.element, this.roomView.element, this.panel.box));
    mount(this.root, this.shell);
    this.root.removeAttribute('aria-busy');
    this.sidebar.render();
    this.roomView.render();
    this._listen();
  }

  toggleMenu() {
    const open = this.shell.classList.toggle('menu-open');
    this.root.querySelector('#menu')?.setAttribute('aria-expanded', String(open));
  }

  // -- live events (the composer follows its own: sent, send_failed, file) -------------

  _listen() {
    const c = this.client;
    for (const type of /** @type {const} */ (['message', 'edited', 'deleted', 'reaction'])) {
      c.on(type, (event) => this.roomEvent(/** @type {any} */ (event)));
    }
    c.on('typing', ({ room, user, expires_in_ms }) => {
      if (user === this.me.id) return;
      const map = this.typing.get(room) ?? new Map();
      map.set(user, Date.now() + expires_in_ms);
      this.typing.set(room, map);
      void this.user(user);
      this.roomView.renderTyping();
      setTimeout(() => this.roomView.renderTyping(), expires_in_ms + 50);
    });
    c.on('presence', ({ user, status }) => {
      this.presence.set(user, status);
      this.roomView.renderPeople();
      this.sidebar.render();
    });
    c.on('notification', (note) => {
      this.panel.unreadNotifications += 1;
      const room = this.rooms.get(note.room);
      if (room !== undefined && note.room !== this.current && note.kind !== 'reply') room.mentions = (room.mentions ?? 0) + 1;
      this.panel.renderBadge();
      this.sidebar.render();
    });
    c.on('room_added', ({ room }) => {
      this.invites.joined(room); // accepted (maybe on another device): no longer pending
      void this.refreshRooms();
    });
    c.on('room_found', () => void this.refreshRooms());
    // Left (here or on another device), removed or banned: the room goes.
    c.on('room_removed', ({ room }) => this.forget(room));
    c.on('room_invited', (event) => this.invites.invited(event));
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
        this.sidebar.render();
      }
    }
    if (room === this.current) {
      this.roomView.renderTimeline();
      this.roomView.renderTyping();
      this.roomView.markReadIfSeen();
    }
    if (this.panel.state?.kind === 'thread' && this.panel.state.room === room) this.panel.render();
  }

  // -- rooms -------------------------------------------------------------------------

  /** Load the rooms (with unread counts), join each, open the first. */
  async start() {
    await this.refreshRooms();
    void this.invites.load();
    try {
      const notes = await this.api.notifications({ limit: 50 });
      this.panel.unreadNotifications = notes.filter((note) => note.read_at === null).length;
      this.panel.renderBadge();
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
      this.sidebar.render();
      this.roomView.renderActions();
      for (const room of rooms) {
        if (!before.has(room.id) || !this.client.rooms.has(room.id)) void this.subscribe(room.id);
        for (const other of room.others ?? []) this.users.set(other.id, other);
      }
    } catch (error) {
      this.sidebar.showError(error);
    }
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
    if (roomId === this.current) this.roomView.renderTimeline();
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

  /** @param {string} roomId */
  async open(roomId) {
    this.current = roomId;
    localStorage.setItem(LAST_ROOM_KEY, roomId);
    this.roomView.reset(this.rooms.get(roomId));
    this.shell.classList.remove('menu-open');
    this.sidebar.render();
    this.roomView.render();
    const timeline = this.timelineOf(roomId);
    if (timeline.oldestSeq === null) {
      try {
        timeline.applyPage(await this.api.events(roomId, { limit: PAGE }), PAGE);
      } catch (error) {
        this.sidebar.showError(error);
      }
    }
    if (this.current !== roomId) return;
    this.roomView.renderTimeline();
    this.roomView.scrollToEnd();
    this.roomView.markReadIfSeen();
    void this.loadMembers(roomId);
    this.composer.focus();
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
      this.roomView.renderPeople();
    } catch {
      // Offline: the list comes with the next open.
    }
  }

  // -- people and membership ---------------------------------------------------------

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
      this.roomView.renderTimeline();
      this.roomView.renderPeople();
      this.roomView.renderTyping();
      this.invites.render();
    } catch {
      this.users.delete(userId);
    }
  }

  /**
   * Open a room the user has just become a member of: listed, followed, shown.
   * @param {string} roomId
   */
  async enter(roomId) {
    await this.refreshRooms();
    await this.subscribe(roomId);
    await this.open(roomId);
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
    if (this.panel.state?.kind === 'thread' && this.panel.state.room === roomId) this.panel.close();
    if (this.current !== roomId) {
      this.sidebar.render();
      return;
    }
    this.current = null;
    const next = this.lastRoom();
    if (next !== null) {
      void this.open(next);
      return;
    }
    this.sidebar.render();
    this.roomView.render();
  }
}
