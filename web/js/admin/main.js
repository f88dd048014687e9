// @ts-check
/**
 * The admin console (`/admin`): checks who is signed in, then builds every
 * page and shows the one the address's `#hash` names.
 *
 * @module
 */

import { api, ApiError, onUnauthorized, sentence, setCsrfToken } from '../api.js';
import { byId } from '../ui/dom.js';
import { connectionPage } from './connection.js';
import { createContext } from './context.js';
import { loggingPage } from './logging.js';
import { mailPage } from './mail.js';
import { providerPage } from './provider.js';
import { reactionsPage } from './reactions.js';
import { roomsPage } from './rooms.js';
import { usersPage } from './users.js';

/** @typedef {import('./context.js').Page} Page */

const nav = byId('admin-nav');
const pagesRoot = byId('admin-pages');
const signOutButton = /** @type {HTMLButtonElement} */ (byId('sign-out'));

/** @type {Page[]} */
let pages = [];
/** @type {Page | null} */
let currentPage = null;

/**
 * @param {string} state
 */
function setState(state) {
  document.body.dataset.state = state;
}

/**
 * Shows a message instead of the console.
 * @param {string} title
 * @param {string} text
 */
function showMessage(title, text) {
  byId('admin-loading').hidden = true;
  byId('admin-message-title').textContent = title;
  byId('admin-message-text').textContent = text;
  byId('admin-message').hidden = false;
}

/** Where to come back to after signing in again. */
function loginUrl() {
  return `/login?next=${encodeURIComponent(`/admin${location.hash}`)}`;
}

/**
 * Shows the page the hash names (the first page for none or an unknown one).
 * @param {boolean} focus move the focus to the page's heading (after a click)
 */
function route(focus) {
  if (pages.length === 0) return;
  const id = decodeURIComponent(location.hash.slice(1));
  const named = pages.find((p) => p.id === id);
  // A hash that names no page (an in-page anchor) leaves the page shown.
  if (!named && currentPage && id !== '') return;
  const current = named ?? pages[0];
  currentPage = current;
  for (const p of pages) p.element.hidden = p !== current;
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#${current.id}`) {
      link.setAttribute('aria-current', 'page');
      // On narrow screens the navigation scrolls sideways: keep the current page's link in view.
      link.scrollIntoView({ block: 'nearest', inline: 'nearest' });
    } else {
      link.removeAttribute('aria-current');
    }
  }
  document.title = `${current.title} · Parley admin`;
  current.shown?.();
  if (focus) current.element.querySelector('h1')?.focus();
}

async function signOut() {
  signOutButton.disabled = true;
  signOutButton.textContent = 'Signing out…';
  try {
    await api('POST', '/api/v1/logout');
  } catch (err) {
    // Not signed in any more is as good as signed out.
    if (!(err instanceof ApiError) || err.status !== 401) {
      signOutButton.disabled = false;
      signOutButton.textContent = 'Sign out';
      alert(`Signing out failed: ${err instanceof ApiError ? sentence(err.message) : 'try again.'}`);
      return;
    }
  }
  location.assign('/login');
}

async function start() {
  /** @type {import('../api.js').SessionInfo} */
  let session;
  try {
    session = await api('GET', '/api/v1/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      location.replace(loginUrl());
      return;
    }
    setState('failed');
    showMessage('The console cannot start', err instanceof ApiError ? sentence(err.message) : 'Try again.');
    return;
  }

  const { user } = session;
  byId('user-name').textContent = user.display_name && user.display_name !== user.login
    ? `${user.display_name} (${user.login})`
    : user.login;
  byId('user-box').hidden = false;
  signOutButton.addEventListener('click', () => { signOut(); });
  setCsrfToken(session.csrf_token);

  if (user.role !== 'admin') {
    setState('forbidden');
    showMessage('Administrators only', `This console is for administrators only. You are signed in as ${user.login}.`);
    return;
  }

  onUnauthorized(() => {
    const ended = byId('session-ended');
    /** @type {HTMLAnchorElement} */ (byId('sign-in-again')).href = loginUrl();
    ended.hidden = false;
    setState('signed-out');
  });

  /** @type {Record<string, any>} */
  let settings;
  try {
    settings = await api('GET', '/api/v1/settings');
  } catch (err) {
    setState('failed');
    showMessage('The settings could not be loaded', err instanceof ApiError ? sentence(err.message) : 'Try again.');
    return;
  }

  const ctx = createContext(user, settings);
  pages = [usersPage, connectionPage, providerPage, roomsPage, reactionsPage, loggingPage, mailPage].map((make) => make(ctx));
  pagesRoot.replaceChildren(...pages.map((p) => p.element));
  byId('admin-loading').hidden = true;
  nav.hidden = false;
  window.addEventListener('hashchange', () => route(true));
  route(false);
  setState('ready');
}

// The skip link moves the focus without touching the hash, which names the page.
document.querySelector('.skip-link')?.addEventListener('click', (event) => {
  event.preventDefault();
  byId('admin-main').focus();
});

start();
