/**
 * What the SDK's tests share: the server they talk to, fresh users, a WebSocket
 * that a test can cut and hold down, and waiting with a deadline (never sleeping).
 *
 * The servers are real `chorus serve` processes started by
 * tests/web/test_chorus_js.py, which passes their URLs in the environment.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

import { HttpApi, RealtimeClient } from '../src/index.js';

/** @returns {string} */
function required(/** @type {string} */ name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through tests/web/test_chorus_js.py`);
  return value;
}

/** The main server (generous limits). */
export const SERVER_URL = required('CHORUS_URL');
/** A server allowing few sign-in attempts per minute (for the rate-limit test). */
export const LIMITED_URL = required('CHORUS_LIMITED_URL');
export const PASSWORD = 'correct horse battery staple';

/** A gateway URL where nothing listens: connections to it are refused at once. */
export const DEAD_GATEWAY = await new Promise((resolve) => {
  const probe = createServer();
  probe.listen(0, '127.0.0.1', () => {
    const { port } = /** @type {import('node:net').AddressInfo} */ (probe.address());
    probe.close(() => resolve(`ws://127.0.0.1:${port}/`));
  });
});

/**
 * A unique username with this prefix.
 * @param {string} prefix
 */
export function uniqueName(prefix) {
  return `${prefix}_${randomBytes(4).toString('hex')}`;
}

/**
 * A newly registered user's API (JSON mode, as in Node).
 * @param {string} prefix
 * @param {import('../src/http.js').HttpApiOptions} [options]
 * @returns {Promise<HttpApi>}
 */
export async function newUser(prefix, options = {}) {
  const api = new HttpApi(SERVER_URL, options);
  await api.register(uniqueName(prefix), PASSWORD);
  return api;
}

/**
 * A WebSocket class for one client whose connections a test can cut (`cut()`) and
 * hold down (`hold()` … `release()`): while held, every new connection goes to a
 * port that refuses it, as when the network is down.
 */
export class Line {
  constructor() {
    this.held = false;
    /** @type {WebSocket[]} */
    this.sockets = [];
    /** Frames the client sent, decoded. @type {Record<string, any>[]} */
    this.sent = [];
    /** Frames the server sent, decoded. @type {Record<string, any>[]} */
    this.received = [];
    /** Called with each frame the client sends, before it goes out. @type {((frame: Record<string, any>, ws: WebSocket) => void) | null} */
    this.onSend = null;
    const line = this;
    /** @type {import('../src/realtime.js').WebSocketClass} */
    this.WebSocket = /** @type {any} */ (
      class extends WebSocket {
        /**
         * @param {string} url
         * @param {string[]} protocols
         */
        constructor(url, protocols) {
          super(line.held ? DEAD_GATEWAY : url, protocols);
          line.sockets.push(this);
          this.addEventListener('message', (event) => line.received.push(JSON.parse(String(event.data))));
        }

        /** @param {string} data */
        send(data) {
          const frame = JSON.parse(data);
          line.sent.push(frame);
          super.send(data);
          line.onSend?.(frame, this);
        }
      }
    );
  }

  /** Close the open connection (the client sees it drop). */
  cut() {
    for (const ws of this.sockets) ws.close();
  }

  /** New connections fail until `release()`. */
  hold() {
    this.held = true;
  }

  release() {
    this.held = false;
  }
}

/**
 * The next event of `type` that satisfies `accept`, within `timeoutMs`.
 * @template {keyof import('../src/realtime.js').RealtimeEvents} K
 * @param {RealtimeClient} client
 * @param {K} type
 * @param {(event: import('../src/realtime.js').RealtimeEvents[K]) => boolean} [accept]
 * @param {number} [timeoutMs]
 * @returns {Promise<import('../src/realtime.js').RealtimeEvents[K]>}
 */
export function nextEvent(client, type, accept = () => true, timeoutMs = 15_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no ${String(type)} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = client.on(type, (event) => {
      if (!accept(event)) return;
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/**
 * Resolves once `check()` is true, polling; rejects after `timeoutMs`.
 * @param {() => boolean | Promise<boolean>} check
 * @param {string} what
 * @param {number} [timeoutMs]
 */
export async function until(check, what, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Every `message` event the client emits, in order.
 * @param {RealtimeClient} client
 * @returns {import('../src/types.js').MessageEvent[]}
 */
export function collectMessages(client) {
  /** @type {import('../src/types.js').MessageEvent[]} */
  const seen = [];
  client.on('message', (event) => seen.push(event));
  return seen;
}

/**
 * A connected client of `api` (closed by `t.after`).
 * @param {import('node:test').TestContext} t
 * @param {HttpApi} api
 * @param {import('../src/realtime.js').RealtimeOptions} [options]
 * @returns {Promise<RealtimeClient>}
 */
export async function connected(t, api, options = {}) {
  const client = new RealtimeClient(api, { maxBackoffMs: 300, ...options });
  t.after(() => client.close());
  await client.connect();
  return client;
}

/**
 * The TOTP code (RFC 6238: SHA-1, 6 digits, 30 s) of a base32 `secret` at `step`.
 * @param {string} secret
 * @param {number} step
 */
export function totp(secret, step) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const char of secret.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(char).toString(2).padStart(5, '0');
  }
  const key = Buffer.from((bits.match(/.{8}/g) ?? []).map((byte) => parseInt(byte, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const digest = createHmac('sha1', key).update(counter).digest();
  const offset = digest[digest.length - 1] & 0xf;
  const value = digest.readUInt32BE(offset) & 0x7fffffff;
  return String(value % 1_000_000).padStart(6, '0');
}

/** The current TOTP time step. */
export function timeStep() {
  return Math.floor(Date.now() / 30_000);
}
