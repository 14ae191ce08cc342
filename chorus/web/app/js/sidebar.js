/**
 * The sidebar: pending invitations, the room list (presence of a direct room's other
 * person, unread and mention badges), creating a room, opening a direct conversation
 * by name, browsing and joining public rooms, and the line where failures are told.
 * @module
 */

import { h, mount } from './dom.js';
import { describe } from './login.js';

/** @typedef {import('/chorus-js/index.js').User} User */
/** @typedef {import('./chat.js').ChatScreen} ChatScreen */

/**
 * What a room is called: its name, or for a direct room the names of the others.
 * @param {any} room
 * @returns {string}
 */
export function roomName(room) {
  if (room.kind === 'direct') {
    const names = (room.others ?? []).map((/** @type {User} */ user) => user.display_name || user.username);
    return names.length > 0 ? names.join(', ') : 'Direct conversation';
  }
  return room.name;
}

export class Sidebar {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    this.roomList = h('ul', { class: 'room-list', id: 'room-list' });
    this.newRoom = h('input', { id: 'new-room', name: 'name', required: true, maxlength: 100 });
    this.newRoomKind = h('select', { id: 'new-room-kind', 'aria-label': 'Kind' }, h('option', { value: 'public' }, 'public'), h('option', { value: 'private' }, 'private'));
    this.dmName = h('input', { id: 'dm-name', name: 'username', required: true, placeholder: 'username', autocomplete: 'off' });
    this.error = h('p', { class: 'error', id: 'side-error', role: 'alert' });
    this.element = h(
      'nav',
      { class: 'sidebar', id: 'sidebar', 'aria-label': 'Rooms' },
      screen.invites.section,
      h('h2', null, 'Rooms'),
      this.roomList,
      h(
        'form',
        { class: 'mini', id: 'create-room', onsubmit: (/** @type {Event} */ e) => this.createRoom(e) },
        h('label', { for: 'new-room' }, 'New room'),
        this.newRoom,
        this.newRoomKind,
        h('button', { type: 'submit' }, 'Create'),
      ),
      h(
        'form',
        { class: 'mini', id: 'open-dm', onsubmit: (/** @type {Event} */ e) => this.openDm(e) },
        h('label', { for: 'dm-name' }, 'Message a person'),
        this.dmName,
        h('button', { type: 'submit' }, 'Open'),
      ),
      h('button', { type: 'button', id: 'browse', onclick: () => this.browse() }, 'Browse public rooms'),
      this.error,
    );
  }

  /** The room list. */
  render() {
    const screen = this.screen;
    const items = [...screen.rooms.values()].map((room) => {
      const current = room.id === screen.current;
      const unread = room.unread ?? 0;
      const mentions = room.mentions ?? 0;
      const label = [roomName(room), unread ? `${unread} unread` : '', mentions ? `${mentions} mentions` : ''].filter(Boolean).join(', ');
      const other = room.kind === 'direct' && room.others?.length === 1 ? room.others[0].id : null;
      return h(
        'li',
        null,
        h(
          'button',
          { type: 'button', class: 'room-item', 'data-room': room.id, 'aria-current': current ? 'page' : false, 'aria-label': label, onclick: () => screen.open(room.id) },
          other !== null ? h('span', { class: `dot ${screen.presence.get(other) ?? 'offline'}`, 'aria-hidden': 'true' }) : h('span', { class: 'hash', 'aria-hidden': 'true' }, room.kind === 'private' ? '🔒' : '#'),
          h('span', { class: 'name' }, roomName(room)),
          unread ? h('span', { class: 'badge unread', 'aria-hidden': 'true' }, String(unread)) : null,
          mentions ? h('span', { class: 'badge mention', 'aria-hidden': 'true' }, `@${mentions}`) : null,
        ),
      );
    });
    mount(this.roomList, items.length > 0 ? items : h('li', { class: 'empty' }, 'No rooms yet: create one or browse.'));
  }

  /** @param {Event} event */
  async createRoom(event) {
    event.preventDefault();
    const field = /** @type {HTMLInputElement} */ (this.newRoom);
    const kind = /** @type {HTMLSelectElement} */ (this.newRoomKind).value;
    try {
      const room = await this.screen.api.createRoom(field.value.trim(), /** @type {'public' | 'private'} */ (kind));
      field.value = '';
      await this.screen.enter(room.id);
    } catch (error) {
      this.showError(error);
    }
  }

  /** @param {Event} event */
  async openDm(event) {
    event.preventDefault();
    const field = /** @type {HTMLInputElement} */ (this.dmName);
    try {
      const room = await this.screen.api.directRoomByName(field.value.trim());
      field.value = '';
      await this.screen.enter(room.id);
    } catch (error) {
      this.showError(error);
    }
  }

  async browse() {
    try {
      this.screen.panel.show({ kind: 'directory', items: await this.screen.api.publicRooms({ limit: 50 }) });
    } catch (error) {
      this.showError(error);
    }
  }

  /** @param {string} roomId */
  async joinPublic(roomId) {
    try {
      await this.screen.api.joinRoom(roomId);
      this.screen.panel.close();
      await this.screen.enter(roomId);
    } catch (error) {
      this.showError(error);
    }
  }

  /** @param {unknown} error */
  showError(error) {
    // Offline (or before the session is restored) the status line says it all.
    if (!navigator.onLine || this.screen.api.session === null) return;
    this.showMessage(describe(error));
  }

  /** @param {string} text */
  showMessage(text) {
    this.error.textContent = text;
  }
}
