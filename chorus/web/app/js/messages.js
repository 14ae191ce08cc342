/**
 * One message as shown (in the room's timeline or a thread): its text, files,
 * reactions and read receipts, a pending or refused send, and what can be done to a
 * message (react, reply in a thread, edit, delete, open a file).
 * @module
 */

import { h, when } from './dom.js';

/** @typedef {import('/chorus-js/index.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./timeline.js').Shown} Shown */
/** @typedef {import('./chat.js').ChatScreen} ChatScreen */

const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

export class MessageViews {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    /** @type {string | null} id of the message being edited */
    this.editing = null;
  }

  /**
   * @param {Shown} message
   * @param {number} replies
   * @param {boolean} [inThread]
   * @param {string} [seen] who has read it (their names), shown under it
   * @returns {HTMLElement}
   */
  messageView(message, replies, inThread = false, seen = '') {
    const screen = this.screen;
    const own = message.sender === screen.me.id;
    const room = message.room;
    const actions = message.deleted || message.encrypted
      ? []
      : [
          ...QUICK_REACTIONS.slice(0, 2).map((emoji) =>
            h('button', { type: 'button', class: 'act', 'aria-label': `React ${emoji}`, onclick: () => this.toggleReaction(message, emoji) }, emoji),
          ),
          inThread ? null : h('button', { type: 'button', class: 'act reply', onclick: () => screen.panel.openThread(room, message.id) }, replies ? `${replies} ${replies === 1 ? 'reply' : 'replies'}` : 'Reply in thread'),
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
      { class: `msg${own ? ' own' : ''}`, 'data-id': message.id, 'data-seq': message.seq, 'data-client-id': message.client_id, 'aria-label': `${screen.nameOf(message.sender)}, ${when(message.created_at)}` },
      h(
        'header',
        null,
        h('span', { class: 'sender' }, screen.nameOf(message.sender)),
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
    const screen = this.screen;
    const state =
      failure === null
        ? h('span', { class: 'state pending' }, screen.client.connected ? ' sending…' : ' waiting for the connection…')
        : h('span', { class: 'state failed', role: 'alert' }, ` not sent: ${failure}`);
    return h(
      'article',
      { class: `msg own ${failure === null ? 'pending' : 'failed'}`, 'data-client-id': entry.client_id },
      h('header', null, h('span', { class: 'sender' }, screen.nameOf(screen.me.id)), state),
      entry.body ? h('p', { class: 'body' }, entry.body) : null,
      entry.attachments.length > 0 ? h('p', { class: 'files-note' }, `${entry.attachments.length} file(s)`) : null,
      failure === null
        ? null
        : h(
            'div',
            { class: 'actions' },
            h('button', { type: 'button', class: 'act retry', onclick: () => screen.composer.retry(entry) }, 'Retry'),
            h('button', { type: 'button', class: 'act', onclick: () => screen.composer.discard(entry.client_id) }, 'Discard'),
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
        const mine = users.has(this.screen.me.id);
        return h(
          'button',
          { type: 'button', class: `reaction${mine ? ' mine' : ''}`, 'aria-pressed': String(mine), 'data-emoji': emoji, title: [...users].map((u) => this.screen.nameOf(u)).join(', '), onclick: () => this.toggleReaction(message, emoji) },
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
          this.screen.api.fileUrl(file.id, variant).then((url) => img.setAttribute('src', url), () => {});
          return h('li', null, h('button', { type: 'button', class: 'image-link', onclick: () => this.download(file.id), 'aria-label': `Open ${file.name}` }, img));
        }
        return h('li', null, h('button', { type: 'button', class: 'file-link', onclick: () => this.download(file.id) }, `📄 ${file.name} (${Math.ceil(file.size / 1024)} KiB)`));
      }),
    );
  }

  /** @param {string} fileId */
  async download(fileId) {
    try {
      window.open(await this.screen.api.fileUrl(fileId), '_blank', 'noopener');
    } catch (error) {
      this.screen.sidebar.showError(error);
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
          this.screen.roomView.renderTimeline();
          if (body && body !== message.body) {
            try {
              await this.screen.client.edit(message.room, message.id, body);
            } catch (error) {
              this.screen.sidebar.showError(error);
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
    this.screen.roomView.renderTimeline();
  }

  cancelEdit() {
    this.editing = null;
    this.screen.roomView.renderTimeline();
    this.screen.composer.focus();
  }

  /** @param {Shown} message */
  async remove(message) {
    if (!window.confirm('Delete this message for everyone?')) return;
    try {
      await this.screen.client.delete(message.room, message.id);
    } catch (error) {
      this.screen.sidebar.showError(error);
    }
  }

  /**
   * @param {Shown} message
   * @param {string} emoji
   */
  async toggleReaction(message, emoji) {
    const mine = message.reactions.get(emoji)?.has(this.screen.me.id) ?? false;
    try {
      await this.screen.client.react(message.room, message.id, emoji, { remove: mine });
    } catch (error) {
      this.screen.sidebar.showError(error);
    }
  }
}
