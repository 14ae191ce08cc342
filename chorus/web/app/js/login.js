/**
 * The sign-in screen: log in (with the two-factor step when the account has it) or
 * register.
 * @module
 */

import { ChorusError, TwoFactorRequired } from '/chorus-js/index.js';
import { h, mount } from './dom.js';

/** @typedef {import('/chorus-js/index.js').HttpApi} HttpApi */
/** @typedef {import('/chorus-js/index.js').Session} Session */

/**
 * Show the sign-in screen in `root`; resolves with the session once signed in.
 * @param {HTMLElement} root
 * @param {HttpApi} api
 * @returns {Promise<Session>}
 */
export function signIn(root, api) {
  return new Promise((resolve) => {
    const error = h('p', { class: 'error', role: 'alert', id: 'login-error' });
    const username = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true, minlength: 3, maxlength: 32 });
    const password = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true, minlength: 8 });
    const register = h('input', { id: 'register', type: 'checkbox' });
    /** @type {string | null} */
    let challenge = null;
    const code = h('input', { id: 'code', name: 'code', autocomplete: 'one-time-code', inputmode: 'numeric' });
    const codeRow = h('div', { class: 'field', hidden: true }, h('label', { for: 'code' }, 'Two-factor code (or a recovery code)'), code);
    const submit = h('button', { type: 'submit' }, 'Sign in');
    register.addEventListener('change', () => {
      submit.textContent = /** @type {HTMLInputElement} */ (register).checked ? 'Create account' : 'Sign in';
    });

    /** @param {SubmitEvent} event */
    async function onSubmit(event) {
      event.preventDefault();
      error.textContent = '';
      submit.setAttribute('disabled', '');
      const name = /** @type {HTMLInputElement} */ (username).value.trim();
      const secret = /** @type {HTMLInputElement} */ (password).value;
      try {
        let session;
        if (challenge !== null) session = await api.completeLogin(challenge, /** @type {HTMLInputElement} */ (code).value.trim());
        else if (/** @type {HTMLInputElement} */ (register).checked) session = await api.register(name, secret);
        else session = await api.login(name, secret);
        resolve(session);
      } catch (failure) {
        if (failure instanceof TwoFactorRequired) {
          challenge = failure.challengeToken;
          codeRow.hidden = false;
          code.focus();
          error.textContent = 'Enter the code of your authenticator app.';
        } else {
          error.textContent = describe(failure);
        }
      } finally {
        submit.removeAttribute('disabled');
      }
    }

    const form = h(
      'form',
      { class: 'login', 'aria-labelledby': 'login-title', onsubmit: onSubmit },
      h('h1', { id: 'login-title' }, 'Chorus'),
      h('div', { class: 'field' }, h('label', { for: 'username' }, 'Username'), username),
      h('div', { class: 'field' }, h('label', { for: 'password' }, 'Password'), password),
      h('div', { class: 'field check' }, register, h('label', { for: 'register' }, 'New here: create an account')),
      codeRow,
      submit,
      error,
    );
    mount(root, form);
    root.removeAttribute('aria-busy');
    username.focus();
  });
}

/**
 * A sentence for a failed call.
 * @param {unknown} failure
 * @returns {string}
 */
export function describe(failure) {
  if (failure instanceof ChorusError) {
    const known = {
      invalid_credentials: 'Wrong username or password.',
      username_taken: 'That username is taken.',
      invalid_code: 'That code is not right.',
      rate_limited: 'Too many attempts: wait a moment.',
    };
    return /** @type {Record<string, string>} */ (known)[failure.code] ?? failure.detail;
  }
  if (failure instanceof TypeError) return 'The server cannot be reached (offline?).';
  return String(failure);
}
