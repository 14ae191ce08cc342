/** Signing in against a real server: login, 2FA, refresh, cookie mode, rate limits. */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ChorusError, HttpApi, TwoFactorRequired } from '../src/index.js';
import { LIMITED_URL, PASSWORD, SERVER_URL, connected, newUser, timeStep, totp, uniqueName } from './helpers.js';

test('login opens a session that connects; wrong credentials are a ChorusError', async (t) => {
  const first = await newUser('ada');
  const api = new HttpApi(SERVER_URL);
  const session = await api.login(first.user.username, PASSWORD);
  assert.equal(session.user.id, first.user.id);
  assert.ok(session.refresh_token, 'JSON mode keeps the refresh token in memory');
  assert.equal((await api.me()).username, first.user.username);
  const client = await connected(t, api);
  assert.equal(client.ready?.session_id, session.session_id);
  await assert.rejects(new HttpApi(SERVER_URL).login(first.user.username, 'wrong password'), (error) => {
    assert.ok(error instanceof ChorusError);
    assert.equal(error.status, 401);
    assert.equal(error.code, 'invalid_credentials');
    return true;
  });
});

test('a two-factor account needs the second step', async () => {
  const api = await newUser('totp');
  const { secret } = await api.enrolTwoFactor(PASSWORD);
  const step = timeStep();
  const { recovery_codes: codes } = await api.confirmTwoFactor(totp(secret, step));
  assert.ok(codes.length > 0);

  const fresh = new HttpApi(SERVER_URL);
  /** @type {TwoFactorRequired | undefined} */
  let required;
  try {
    await fresh.login(api.user.username, PASSWORD);
  } catch (error) {
    if (error instanceof TwoFactorRequired) required = error;
    else throw error;
  }
  assert.ok(required, 'the password alone is not enough');
  assert.ok(required.expiresIn > 0);
  assert.equal(fresh.session, null);
  await assert.rejects(fresh.completeLogin(required.challengeToken, '000000x'), ChorusError);
  // The step that enabled 2FA is spent: the next one is accepted.
  const session = await fresh.completeLogin(required.challengeToken, totp(secret, step + 1));
  assert.equal(session.user.id, api.user.id);
  // In one call, with a recovery code.
  const again = await new HttpApi(SERVER_URL).login(api.user.username, PASSWORD, { code: codes[0] });
  assert.equal(again.user.id, api.user.id);
});

test('an expired access token is refreshed once, transparently', async () => {
  const api = await newUser('refresh');
  const before = /** @type {import('../src/types.js').Session} */ (api.session);
  api.session = { ...before, access_token: 'expired' };
  const results = await Promise.all([api.me(), api.myRooms(), api.unread()]);
  assert.equal(results[0].id, before.user.id);
  assert.notEqual(api.session.access_token, 'expired');
  assert.notEqual(api.session.refresh_token, before.refresh_token, 'rotated');
  // Concurrent 401s shared one refresh: a second one would have presented a spent
  // token and revoked the session.
  assert.equal((await api.me()).id, before.user.id);
});

/**
 * A browser's cookie handling for one origin, enough for the refresh cookie: it keeps
 * Set-Cookie values, sends them back to paths under their Path, never with
 * `credentials: 'omit'`.
 */
class CookieJar {
  constructor() {
    /** @type {Map<string, {value: string, path: string, attributes: string}>} */
    this.cookies = new Map();
    /** @type {typeof fetch} */
    this.fetch = async (input, init = {}) => {
      const url = new URL(String(input));
      const headers = new Headers(init.headers);
      if (init.credentials !== 'omit') {
        const sent = [...this.cookies.entries()]
          .filter(([, cookie]) => url.pathname.startsWith(cookie.path))
          .map(([name, cookie]) => `${name}=${cookie.value}`);
        if (sent.length > 0) headers.set('cookie', sent.join('; '));
      }
      const response = await fetch(url, { ...init, headers });
      for (const line of response.headers.getSetCookie()) {
        const [pair, ...attributes] = line.split(';').map((part) => part.trim());
        const [name, value] = pair.split('=');
        const path = attributes.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
        if (value === '' || attributes.includes('Max-Age=0')) this.cookies.delete(name);
        else this.cookies.set(name, { value, path, attributes: attributes.join('; ') });
      }
      return response;
    };
  }
}

test('cookie mode: the refresh token is only in an HttpOnly cookie, and a reload refreshes from it', async (t) => {
  const jar = new CookieJar();
  const api = new HttpApi(SERVER_URL, { tokenMode: 'cookie', fetch: jar.fetch });
  const session = await api.register(uniqueName('cookie'), PASSWORD);
  assert.equal(session.refresh_token, null, 'no refresh token for page scripts');
  const cookie = jar.cookies.get('chorus_refresh');
  assert.ok(cookie, 'the server set the cookie');
  assert.equal(cookie.path, '/api/v1/auth/refresh');
  assert.match(cookie.attributes, /HttpOnly/);
  assert.match(cookie.attributes, /SameSite=Strict/);

  // A reload: nothing in memory, the cookie restores the session.
  const reloaded = new HttpApi(SERVER_URL, { tokenMode: 'cookie', fetch: jar.fetch });
  const restored = await reloaded.refresh();
  assert.equal(restored.session_id, session.session_id);
  assert.notEqual(jar.cookies.get('chorus_refresh')?.value, cookie.value, 'rotated');
  assert.equal((await reloaded.me()).id, session.user.id);
  const client = await connected(t, reloaded);
  assert.equal(client.ready?.session_id, session.session_id);

  // An expired access token is refreshed from the cookie too.
  reloaded.session = { ...restored, access_token: 'expired' };
  assert.equal((await reloaded.me()).id, session.user.id);

  await reloaded.logout();
  assert.equal(jar.cookies.has('chorus_refresh'), false, 'logout clears the cookie');
  await assert.rejects(new HttpApi(SERVER_URL, { tokenMode: 'cookie', fetch: jar.fetch }).refresh(), (error) => {
    assert.ok(error instanceof ChorusError);
    assert.equal(error.status, 401);
    return true;
  });
});

test('a 429 is waited out after its Retry-After, or thrown with it', async () => {
  // The limited server allows 20 sign-in attempts per minute per address.
  const username = uniqueName('limited');
  /** @type {number[]} */
  const statuses = [];
  /** @type {typeof fetch} */
  const recording = async (input, init) => {
    const response = await fetch(input, init);
    statuses.push(response.status);
    return response;
  };
  const impatient = new HttpApi(LIMITED_URL, { rateLimitRetries: 0 });
  await impatient.register(username, PASSWORD);
  /** @type {ChorusError | undefined} */
  let limited;
  for (let attempt = 0; attempt < 40 && limited === undefined; attempt++) {
    try {
      await impatient.login(username, 'wrong password');
    } catch (error) {
      assert.ok(error instanceof ChorusError);
      if (error.status === 429) limited = error;
      else assert.equal(error.code, 'invalid_credentials');
    }
  }
  assert.ok(limited, 'the limit was reached');
  assert.equal(limited.code, 'rate_limited');
  assert.ok(limited.retryAfter !== null && limited.retryAfter >= 1);

  const patient = new HttpApi(LIMITED_URL, { fetch: recording, maxRetryAfterMs: 10_000 });
  const session = await patient.login(username, PASSWORD);
  assert.equal(session.user.username, username);
  assert.equal(statuses[0], 429);
  assert.equal(statuses.at(-1), 200);
});
