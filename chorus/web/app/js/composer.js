/**
 * Writing in the open room: the composer (Enter sends, Shift+Enter a new line),
 * typing notices, files (previews, uploads with progress, waiting until the server
 * has checked them), and the sends themselves. A send goes through the outbox
 * (IndexedDB): shown pending at once, sent once acknowledged, or refused for good
 * and shown failed with Retry and Discard.
 * @module
 */

import { h, mount } from './dom.js';
import { describe } from './login.js';

/** @typedef {import('/chorus-js/index.js').OutboxEntry} OutboxEntry */
/** @typedef {import('./chat.js').ChatScreen} ChatScreen */

const TYPING_EVERY_MS = 3000;

export class Composer {
  /** @param {ChatScreen} screen */
  constructor(screen) {
    this.screen = screen;
    /** Sends refused for good, by client id, until retried or discarded. @type {Map<string, {entry: OutboxEntry, reason: string}>} */
    this.failed = new Map();
    /** Entries of the outbox written before the client was connected (a reload). @type {OutboxEntry[]} */
    this.stored = [];
    this._lastTyping = 0;
    /** @type {Map<string, (file: any) => void>} upload waiters by file id */
    this._files = new Map();
    /** @type {{file: File, url: string | null}[]} */
    this.attaching = [];
    /** Files of a message being sent, each with its progress bar, until they are checked. @type {{file: File, url: string | null, bar: HTMLProgressElement}[]} */
    this.uploading = [];
    /** Sends of this page not acknowledged yet, for showing a refusal. @type {Map<string, OutboxEntry>} */
    this._lastSent = new Map();
    this.input = h('textarea', { id: 'composer-input', rows: 2, maxlength: 4000, placeholder: 'Write a message', 'aria-label': 'Message' });
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey) {
        event.preventDefault();
        /** @type {HTMLFormElement} */ (this.form).requestSubmit();
      }
    });
    this.input.addEventListener('input', () => this.sendTyping());
    this.fileInput = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'visually-hidden', onchange: () => this.pickFiles() });
    this.previews = h('ul', { class: 'previews', id: 'previews', 'aria-label': 'Files to send' });
    this.form = h(
      'form',
      { class: 'composer', id: 'composer', onsubmit: (/** @type {Event} */ e) => this.submit(e) },
      this.previews,
      h('label', { for: 'file-input', class: 'button attach', title: 'Attach files' }, '📎', h('span', { class: 'visually-hidden' }, 'Attach files')),
      this.fileInput,
      this.input,
      h('button', { type: 'submit', id: 'send' }, 'Send'),
    );
    this._listen();
  }

  _listen() {
    const screen = this.screen;
    screen.client.on('sent', ({ message }) => {
      this.failed.delete(message.client_id);
      this.stored = this.stored.filter((entry) => entry.client_id !== message.client_id);
      screen.roomEvent({ ...message, type: 'message' });
      // It may have come as a `message` event first: its pending copy goes either way.
      if (message.room === screen.current) screen.roomView.renderTimeline();
      if (screen.panel.state?.kind === 'thread') screen.panel.render();
    });
    screen.client.on('send_failed', ({ client_id, error }) => {
      const entry = this.stored.find((stored) => stored.client_id === client_id) ?? this._lastSent.get(client_id);
      if (entry !== undefined) this.failed.set(client_id, { entry, reason: describe(error) });
      this.stored = this.stored.filter((stored) => stored.client_id !== client_id);
      screen.roomView.renderTimeline();
    });
    screen.client.on('file', ({ file }) => this._files.get(file.id)?.(file));
  }

  focus() {
    this.input.focus();
  }

  sendTyping() {
    const now = Date.now();
    const current = this.screen.current;
    if (current !== null && now - this._lastTyping > TYPING_EVERY_MS) {
      this._lastTyping = now;
      this.screen.client.typing(current);
    }
  }

  /** @param {Event} event */
  async submit(event) {
    event.preventDefault();
    const roomId = this.screen.current;
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
        this.screen.sidebar.showError(error);
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
    const sending = this.screen.client.send(roomId, body, { clientId, thread, attachments });
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
    this.screen.roomView.renderTimeline();
    if (this.screen.panel.state?.kind === 'thread') this.screen.panel.render();
  }

  /** @param {OutboxEntry} entry */
  async retry(entry) {
    this.failed.delete(entry.client_id);
    this.screen.roomView.renderTimeline();
    await this.post(entry.room, entry.body, entry.thread, entry.attachments);
  }

  /** @param {string} clientId */
  discard(clientId) {
    this.failed.delete(clientId);
    this.screen.roomView.renderTimeline();
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
    const api = this.screen.api;
    const info = await api.uploadFile(file, {
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
      state = await Promise.race([checked, new Promise((resolve) => setTimeout(resolve, 2000)).then(() => api.file(info.id))]);
    }
    this._files.delete(info.id);
    return info.id;
  }
}
