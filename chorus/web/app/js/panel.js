/**
 * The side panel, one of: a thread (its replies and a composer), search results, the
 * notification inbox (and its unread badge) or the public room directory. Escape
 * closes it and the keyboard goes back to the composer.
 * @module
 */

import { h, mount, when } from './dom.js';
import { roomName } from './sidebar.js';

/** @typedef {import('./chat.js').ChatScreen} ChatScreen */

/**
 * @typedef {object} Panel
 * @property {'thread' | 'search' | 'inbox' | 'directory'} kind
 * @property {string} [room]
 * @property {string} [root]
 * @property {any[]} [items]
 */

export class SidePanel {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    /** What is shown; null: the panel is closed. @type {Panel | null} */
    this.state = null;
    this.unreadNotifications = 0;
    /** The open thread's composer. @type {HTMLElement | null} */
    this._threadForm = null;
    this.box = h('aside', { class: 'panel', id: 'panel', hidden: true, 'aria-labelledby': 'panel-title' });
    this.box.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') this.close();
    });
    this.inboxBadge = h('span', { class: 'badge', id: 'inbox-badge', hidden: true });
    this.search = h('input', { type: 'search', id: 'search', placeholder: 'Search messages', 'aria-label': 'Search messages' });
    /** The top bar's search form and inbox button. */
    this.searchForm = h('form', { role: 'search', class: 'search', onsubmit: (/** @type {Event} */ e) => this.runSearch(e) }, this.search);
    this.inboxButton = h('button', { type: 'button', id: 'inbox', onclick: () => this.openInbox() }, 'Inbox ', this.inboxBadge);
  }

  renderBadge() {
    this.inboxBadge.hidden = this.unreadNotifications === 0;
    this.inboxBadge.textContent = String(this.unreadNotifications);
  }

  /** @param {Panel} panel */
  show(panel) {
    this.state = panel;
    this.render();
    this.box.querySelector('h2')?.focus();
  }

  close() {
    this.state = null;
    this.render();
    this.screen.composer.focus(); // back where the keyboard user was writing
  }

  /**
   * @param {string} roomId
   * @param {string} rootId
   */
  async openThread(roomId, rootId) {
    this.show({ kind: 'thread', room: roomId, root: rootId });
    try {
      const replies = await this.screen.api.thread(roomId, rootId, { limit: 100 });
      const timeline = this.screen.timelineOf(roomId);
      for (const reply of replies) timeline.apply({ ...reply, type: 'message' });
      this.render();
    } catch (error) {
      this.screen.sidebar.showError(error);
    }
  }

  /** @param {Event} event */
  async runSearch(event) {
    event.preventDefault();
    const query = /** @type {HTMLInputElement} */ (this.search).value.trim();
    if (!query) return;
    try {
      this.show({ kind: 'search', items: await this.screen.api.search(query, { limit: 20 }) });
    } catch (error) {
      this.screen.sidebar.showError(error);
    }
  }

  async openInbox() {
    try {
      const items = await this.screen.api.notifications({ limit: 50 });
      this.show({ kind: 'inbox', items });
      const unread = items.filter((note) => note.read_at === null).map((note) => note.id);
      if (unread.length > 0) await this.screen.api.markNotificationsRead(unread);
      this.unreadNotifications = 0;
      this.renderBadge();
    } catch (error) {
      this.screen.sidebar.showError(error);
    }
  }

  render() {
    const panel = this.state;
    this.box.hidden = panel === null;
    this.screen.shell.classList.toggle('panel-open', panel !== null);
    if (panel === null || panel.kind !== 'thread') this._threadForm = null;
    if (panel === null) {
      this.box.replaceChildren();
      return;
    }
    const close = h('button', { type: 'button', class: 'close', 'aria-label': 'Close panel', onclick: () => this.close() }, '×');
    if (panel.kind === 'thread') {
      const roomId = /** @type {string} */ (panel.room);
      const timeline = this.screen.timelineOf(roomId);
      const root = timeline.messages.get(/** @type {string} */ (panel.root));
      const replies = timeline.list(panel.root);
      const pending = this.screen.client.pendingMessages().filter((entry) => entry.thread === panel.root && !timeline.clientIds.has(entry.client_id));
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
              void this.screen.composer.post(roomId, body, /** @type {string} */ (panel.root));
            },
          },
          field,
          h('button', { type: 'submit' }, 'Reply'),
        );
        mount(
          this.box,
          h('header', null, h('h2', { id: 'panel-title', tabindex: -1 }, 'Thread'), close),
          h('div', { id: 'thread-root' }),
          h('div', { class: 'thread-replies', id: 'thread-replies', role: 'log', 'aria-label': 'Replies' }),
          this._threadForm,
        );
      }
      mount(/** @type {HTMLElement} */ (this.box.querySelector('#thread-root')), root === undefined ? null : this.screen.messages.messageView(root, 0, true));
      mount(
        /** @type {HTMLElement} */ (this.box.querySelector('#thread-replies')),
        replies.map((reply) => this.screen.messages.messageView(reply, 0, true)),
        pending.map((entry) => this.screen.messages.pendingView(entry, null)),
      );
      return;
    }
    const titles = { search: 'Search results', inbox: 'Notifications', directory: 'Public rooms' };
    const items = panel.items ?? [];
    /** @type {HTMLElement[]} */
    let list;
    if (panel.kind === 'search') {
      list = items.map((hit) =>
        h('li', null, h('button', { type: 'button', class: 'hit', onclick: () => this.screen.open(hit.message.room) }, h('span', { class: 'where' }, roomName(this.screen.rooms.get(hit.message.room) ?? { name: hit.message.room })), ' ', highlight(hit.snippet))),
      );
    } else if (panel.kind === 'inbox') {
      list = items.map((note) =>
        h('li', { class: note.read_at === null ? 'unread' : '' }, h('button', { type: 'button', class: 'hit', onclick: () => this.screen.open(note.room) }, `${{ mention: 'Mentioned you', room_mention: 'Mentioned the room', reply: 'Replied in a thread' }[/** @type {'mention'} */ (note.kind)] ?? note.kind} in ${roomName(this.screen.rooms.get(note.room) ?? { name: note.room })} · ${when(note.created_at)}`)),
      );
    } else {
      list = items.map((room) =>
        h('li', null, h('span', null, `# ${room.name}`), this.screen.rooms.has(room.id) ? h('span', { class: 'joined' }, ' joined') : h('button', { type: 'button', onclick: () => this.screen.sidebar.joinPublic(room.id) }, `Join ${room.name}`)),
      );
    }
    mount(
      this.box,
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
