/**
 * Invitations to private rooms, both ways: the user's pending invitations (listed
 * by `GET /me/invites` on start and after each reconnect, added live by
 * `room_invited`), each accepted (the room is joined and opened) or declined; and
 * the room header's "Invite…" form, by user name, for a member who may invite.
 *
 * A revoked invitation sends no event (docs/protocol.md, room_invited): it leaves
 * the list at the next reconnect or reload, or when accepting it answers 404.
 * @module
 */

import { ChorusError } from '/chorus-js/index.js';
import { h, mount } from './dom.js';
import { describe } from './login.js';

/** @typedef {import('./chat.js').ChatScreen} ChatScreen */
/**
 * A pending invitation as listed: the room (its id and name) and who invited.
 * @typedef {{room: {id: string, name: string}, invited_by: string}} Pending
 */
/** @typedef {import('/chorus-js/types.js').RoomInvitedEvent} RoomInvitedEvent */

/** The room roles that may invite (docs/permissions.md, `invite`). */
const INVITERS = new Set(['owner', 'moderator']);

export class Invitations {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    /** The pending invitations by room id, oldest first. @type {Map<string, Pending>} */
    this.pending = new Map();
    this.list = h('ul', { class: 'invite-list', id: 'invites' });
    /** The sidebar's section: hidden while nothing is pending. */
    this.section = h('section', { class: 'invitations', id: 'invitations', 'aria-labelledby': 'invites-title', hidden: true }, h('h2', { id: 'invites-title' }, 'Invitations'), this.list);
    this.nameField = h('input', { id: 'invite-name', name: 'username', required: true, autocomplete: 'off', placeholder: 'username' });
    this.result = h('p', { class: 'invite-result', id: 'invite-result', role: 'status' });
    this.form = h(
      'form',
      { class: 'mini invite-form', id: 'invite-form', hidden: true, onsubmit: (/** @type {Event} */ e) => this.invite(e) },
      h('label', { for: 'invite-name' }, 'Invite a person'),
      this.nameField,
      h('button', { type: 'submit' }, 'Invite'),
      this.result,
    );
    this.form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        this.closeForm();
        this.toggle.focus(); // back to the action that opened it
      }
    });
    /** The room header's action: shown in a private room to a member who may invite. */
    this.toggle = h('button', { type: 'button', class: 'act', id: 'invite-toggle', 'aria-controls': 'invite-form', 'aria-expanded': 'false', hidden: true, onclick: () => this.toggleForm() }, 'Invite…');
  }

  /** Replace the list with the server's (on start and after a reconnect: what was revoked goes). */
  async load() {
    try {
      const invites = await this.screen.api.myInvites();
      this.pending = new Map(invites.map((invite) => [invite.room.id, invite]));
      for (const invite of invites) void this.screen.user(invite.invited_by);
      this.render();
    } catch {
      // Offline: the list comes with the next reconnect.
    }
  }

  /** @param {RoomInvitedEvent} event */
  invited(event) {
    this.pending.set(event.room, { room: { id: event.room, name: event.name }, invited_by: event.by });
    void this.screen.user(event.by);
    this.render();
  }

  /**
   * The user is a member of the room now (accepted here or on another device).
   * @param {string} roomId
   */
  joined(roomId) {
    if (this.pending.delete(roomId)) this.render();
  }

  /** @param {string} roomId */
  async accept(roomId) {
    try {
      await this.screen.api.acceptInvite(roomId);
    } catch (error) {
      if (error instanceof ChorusError && error.status === 404) {
        this.joined(roomId); // revoked, or declined on another device: it is gone
        this.screen.sidebar.showMessage('That invitation was withdrawn.');
      } else {
        this.screen.sidebar.showError(error);
      }
      return;
    }
    this.joined(roomId);
    await this.screen.enter(roomId);
  }

  /** @param {string} roomId */
  async decline(roomId) {
    try {
      await this.screen.api.declineInvite(roomId);
    } catch (error) {
      // 404: revoked or answered elsewhere meanwhile; it goes from the list all the same.
      if (!(error instanceof ChorusError && error.status === 404)) {
        this.screen.sidebar.showError(error);
        return;
      }
    }
    this.joined(roomId);
  }

  render() {
    this.section.hidden = this.pending.size === 0;
    mount(
      this.list,
      [...this.pending.values()].map(({ room, invited_by }) =>
        h(
          'li',
          { class: 'invite', 'data-room': room.id },
          h('span', { class: 'name' }, `🔒 ${room.name}`),
          h('span', { class: 'by' }, ` from ${this.screen.nameOf(invited_by)}`),
          h(
            'span',
            { class: 'actions' },
            h('button', { type: 'button', class: 'act', 'aria-label': `Accept the invitation to ${room.name}`, onclick: () => this.accept(room.id) }, 'Accept'),
            h('button', { type: 'button', class: 'act', 'aria-label': `Decline the invitation to ${room.name}`, onclick: () => this.decline(room.id) }, 'Decline'),
          ),
        ),
      ),
    );
  }

  /**
   * Show the "Invite…" action for the open room, if the user may invite there.
   * @param {any} room the open room (as in the room list, with the user's `role`), if any
   */
  renderAction(room) {
    const allowed = room !== undefined && room.kind === 'private' && INVITERS.has(room.role);
    this.toggle.hidden = !allowed;
    if (!allowed || this.form.dataset.room !== room.id) this.closeForm();
  }

  toggleForm() {
    if (!this.form.hidden) {
      this.closeForm();
      return;
    }
    this.form.hidden = false;
    this.form.dataset.room = this.screen.current ?? '';
    this.toggle.setAttribute('aria-expanded', 'true');
    this.nameField.focus();
  }

  closeForm() {
    this.form.hidden = true;
    this.toggle.setAttribute('aria-expanded', 'false');
    this.result.textContent = '';
    /** @type {HTMLInputElement} */ (this.nameField).value = '';
  }

  /** @param {Event} event */
  async invite(event) {
    event.preventDefault();
    const roomId = this.screen.current;
    const field = /** @type {HTMLInputElement} */ (this.nameField);
    const name = field.value.trim();
    if (roomId === null || name === '') return;
    this.result.textContent = '';
    let user;
    try {
      user = await this.screen.api.userByName(name);
    } catch (error) {
      this.result.textContent = error instanceof ChorusError && error.status === 404 ? `Nobody is called “${name}”.` : describe(error);
      return;
    }
    try {
      await this.screen.api.createInvite(roomId, user.id);
      field.value = '';
      this.result.textContent = `Invited ${name}: they can accept or decline.`;
    } catch (error) {
      this.result.textContent = inviteRefusal(error, name);
    }
  }
}

/**
 * Why an invitation was refused, in plain words.
 * @param {unknown} error
 * @param {string} name the user name typed
 * @returns {string}
 */
function inviteRefusal(error, name) {
  if (!(error instanceof ChorusError)) return describe(error);
  if (error.status === 404) return 'This room or this person no longer exists.';
  if (error.status === 409) return `${name} is a member of this room already.`;
  if (error.status === 403 && error.detail.includes('banned')) return `${name} is banned from this room: lift the ban first.`;
  if (error.status === 403) return 'You may not invite people to this room.';
  return describe(error);
}
