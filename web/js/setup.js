// @ts-check
/**
 * The first-run page (`/setup#token=…`): creates the first administrator
 * with the one-time token the server printed in its log, then opens the
 * admin console signed in as that account.
 *
 * @module
 */

import { api, ApiError, sentence } from './api.js';
import { byId } from './ui/dom.js';
import { clearFieldError, clearFieldErrors, markField, showFieldErrors } from './ui/fields.js';

const form = /** @type {HTMLFormElement} */ (byId('setup-form'));
const loginInput = /** @type {HTMLInputElement} */ (byId('setup-login'));
const nameInput = /** @type {HTMLInputElement} */ (byId('setup-display-name'));
const passwordInput = /** @type {HTMLInputElement} */ (byId('setup-password'));
const repeatInput = /** @type {HTMLInputElement} */ (byId('setup-repeat'));
const submit = /** @type {HTMLButtonElement} */ (byId('setup-submit'));
const formError = byId('setup-error');

/** The shortest password the server accepts. */
const MIN_PASSWORD = 10;

/** The token from the link, kept in memory only once it is off the address bar. */
const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
if (location.hash) {
  // The token should not stay in the address bar, the history or bookmarks.
  history.replaceState(null, '', location.pathname + location.search);
}

/** @param {'form' | 'done' | 'no-token' | 'failed'} state */
function show(state) {
  byId('setup-loading').hidden = true;
  form.hidden = state !== 'form';
  byId('setup-done').hidden = state !== 'done';
  byId('setup-no-token').hidden = state !== 'no-token';
  document.body.dataset.state = state;
}

/** @param {string} message '' hides it */
function showFormError(message) {
  formError.textContent = message;
  formError.hidden = message === '';
}

/** @param {boolean} busy */
function setBusy(busy) {
  submit.disabled = busy;
  submit.textContent = busy ? 'Creating…' : 'Create administrator';
}

/**
 * Checks what the server would refuse anyway, to say so before sending.
 * @returns {boolean}
 */
function checkLocally() {
  /** @type {Array<[HTMLInputElement, string]>} */
  const problems = [];
  const login = loginInput.value.trim();
  if (!/^[^@\s]+@[^@\s]+$/.test(login)) problems.push([loginInput, 'Enter a login such as admin@example.org.']);
  if (passwordInput.value.length < MIN_PASSWORD) {
    problems.push([passwordInput, `The password needs at least ${MIN_PASSWORD} characters.`]);
  } else if (repeatInput.value !== passwordInput.value) {
    problems.push([repeatInput, 'The two passwords differ.']);
  }
  for (const [input, message] of problems) markField(input, message);
  problems[0]?.[0].focus();
  return problems.length === 0;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  if (submit.disabled) return;
  clearFieldErrors(form);
  showFormError('');
  if (!checkLocally()) return;

  setBusy(true);
  try {
    await api('POST', '/api/v1/setup', {
      token,
      login: loginInput.value.trim(),
      password: passwordInput.value,
      display_name: nameInput.value.trim(),
    });
    location.assign('/admin');
  } catch (err) {
    setBusy(false);
    if (!(err instanceof ApiError)) {
      showFormError('Setup failed. Try again.');
      return;
    }
    if (err.status === 403) {
      showFormError(sentence(err.message));
      return;
    }
    const unplaced = showFieldErrors(form, err.fields);
    if (err.fields.length === 0 || unplaced.length > 0) {
      showFormError(sentence(unplaced.length ? unplaced.map((f) => sentence(f.message)).join(' ') : err.message));
    }
  }
});

for (const input of [loginInput, nameInput, passwordInput, repeatInput]) {
  input.addEventListener('input', () => clearFieldError(input));
}

async function start() {
  try {
    /** @type {{needed: boolean}} */
    const state = await api('GET', '/api/v1/setup');
    if (!state.needed) {
      show('done');
    } else if (!token) {
      show('no-token');
    } else {
      show('form');
      loginInput.focus();
    }
  } catch (err) {
    show('failed');
    const failed = byId('setup-failed');
    failed.textContent = err instanceof ApiError ? err.message : 'Cannot reach the server.';
    failed.hidden = false;
  }
}

start();
