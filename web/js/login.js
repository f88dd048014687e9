// @ts-check
/**
 * The sign-in page (`/login`): login and password, then on to `?next=`
 * (a path on this server) or the page the account is for.
 *
 * @module
 */

import { api, ApiError, landingPage, sentence } from './api.js';
import { byId } from './ui/dom.js';

const form = /** @type {HTMLFormElement} */ (byId('login-form'));
const loginInput = /** @type {HTMLInputElement} */ (byId('login'));
const passwordInput = /** @type {HTMLInputElement} */ (byId('password'));
const submit = /** @type {HTMLButtonElement} */ (byId('sign-in'));
const error = byId('login-error');

/** The longest a rate limit keeps the button disabled, in seconds. */
const MAX_WAIT = 300;

/** @type {ReturnType<typeof setTimeout> | undefined} */
let waitTimer;

/**
 * @param {string} message '' hides the message
 * @param {HTMLInputElement[]} [invalid] inputs to mark
 */
function showError(message, invalid = []) {
  error.textContent = message;
  error.hidden = message === '';
  for (const input of [loginInput, passwordInput]) {
    input.setAttribute('aria-invalid', String(invalid.includes(input)));
  }
}

/** @param {boolean} busy */
function setBusy(busy) {
  submit.disabled = busy;
  submit.textContent = busy ? 'Signing in…' : 'Sign in';
}

/**
 * What to tell someone whose sign-in was refused.
 * @param {unknown} err
 * @returns {string}
 */
function refusal(err) {
  if (!(err instanceof ApiError)) return 'Signing in failed. Try again.';
  switch (err.status) {
    case 401:
      return 'Wrong login or password.';
    case 403:
      return 'This account is disabled. Ask an administrator to enable it.';
    case 429: {
      const wait = err.retryAfter ? ` (about ${err.retryAfter} s)` : '';
      return `Too many sign-in attempts. Wait a little${wait} and try again.`;
    }
    default:
      return sentence(err.message);
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (submit.disabled) return;
  const login = loginInput.value.trim();
  const password = passwordInput.value;
  if (!login || !login.includes('@')) {
    showError('Enter your login, name@domain.', [loginInput]);
    loginInput.focus();
    return;
  }
  if (!password) {
    showError('Enter your password.', [passwordInput]);
    passwordInput.focus();
    return;
  }

  showError('');
  setBusy(true);
  try {
    /** @type {import('./api.js').SessionInfo} */
    const session = await api('POST', '/api/v1/login', { login, password });
    const next = new URLSearchParams(location.search).get('next');
    location.assign(landingPage(next, session.user));
  } catch (err) {
    setBusy(false);
    const status = err instanceof ApiError ? err.status : 0;
    showError(refusal(err), status === 401 ? [loginInput, passwordInput] : []);
    if (status === 401) {
      passwordInput.value = '';
      passwordInput.focus();
    }
    if (status === 429 && err instanceof ApiError) {
      // Trying again before the limit lifts only extends it.
      submit.disabled = true;
      clearTimeout(waitTimer);
      waitTimer = setTimeout(() => {
        submit.disabled = false;
      }, Math.min(err.retryAfter ?? 5, MAX_WAIT) * 1000);
    }
  }
});

for (const input of [loginInput, passwordInput]) {
  input.addEventListener('input', () => {
    if (!error.hidden && input.getAttribute('aria-invalid') === 'true') showError('');
  });
}

// A server without accounts has nobody to sign in: point at the setup link.
api('GET', '/api/v1/setup')
  .then((/** @type {{needed: boolean}} */ state) => {
    byId('setup-notice').hidden = !state.needed;
  })
  .catch(() => {});

loginInput.focus();
