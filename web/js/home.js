// @ts-check
/**
 * The home page: start a new room, or go to a named one.
 *
 * @module
 */

import { api } from './api.js';
import { CallCenter } from './calls.js';
import { newRoomName, normalizeRoomName, roomNameFromInput, roomNameProblem } from './room-name.js';
import { byId } from './ui/dom.js';

const form = /** @type {HTMLFormElement} */ (byId('room-form'));
const input = /** @type {HTMLInputElement} */ (byId('room-name'));
const error = byId('room-error');

/** @param {string} room a valid, normalized room name */
function goToRoom(room) {
  location.assign(`/r/${encodeURIComponent(room)}`);
}

/** @param {string} message '' hides the message */
function showError(message) {
  error.textContent = message;
  error.hidden = message === '';
  input.setAttribute('aria-invalid', String(message !== ''));
}

byId('new-room').addEventListener('click', () => goToRoom(newRoomName()));

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = roomNameFromInput(input.value);
  const problem = roomNameProblem(name);
  if (problem) {
    showError(problem);
    input.focus();
    return;
  }
  goToRoom(normalizeRoomName(name));
});

input.addEventListener('input', () => {
  if (!error.hidden) showError('');
});

// ---------------------------------------------------------------------------
// People: signed-in users see their buddies and can call them.

/**
 * @typedef {object} Buddy
 * @property {number} id
 * @property {string} name
 * @property {string} login
 * @property {import('./protocol.js').PresenceStatus} status
 */

const STATUS_WORDS = { available: 'Available', away: 'Away', busy: 'Busy', dnd: 'Do not disturb', offline: 'Offline' };

/** @type {Buddy[]} */
let buddies = [];
/** @type {CallCenter | null} */
let calls = null;

async function startPeople() {
  try {
    await api('GET', '/api/v1/session');
  } catch {
    return; // a guest: no buddy list, nobody can ring this page
  }
  byId('people-section').hidden = false;
  calls = new CallCenter();
  calls.on('presence', ({ user, status }) => {
    const b = buddies.find((x) => x.id === user);
    if (b) {
      b.status = status;
      renderBuddies();
    }
  });
  const status = /** @type {HTMLSelectElement} */ (byId('my-status'));
  status.value = calls.dnd ? 'dnd' : 'available';
  status.addEventListener('change', () => calls?.setDnd(status.value === 'dnd'));
  let timer = 0;
  byId('buddy-search').addEventListener('input', () => {
    clearTimeout(timer);
    timer = window.setTimeout(loadBuddies, 200);
  });
  try {
    await calls.start();
  } catch {
    byId('call-notice').textContent = 'Calls are unavailable: the server cannot be reached.';
    byId('call-notice').hidden = false;
  }
  await loadBuddies();
  document.body.dataset.people = 'ready';
}

async function loadBuddies() {
  const q = /** @type {HTMLInputElement} */ (byId('buddy-search')).value.trim();
  try {
    const answer = await api('GET', `/api/v1/buddies?q=${encodeURIComponent(q)}`);
    buddies = answer.buddies;
    for (const b of buddies) {
      const live = calls?.presence.get(b.id);
      if (live) b.status = live;
    }
  } catch {
    buddies = [];
  }
  renderBuddies();
}

function renderBuddies() {
  const list = byId('buddy-list');
  list.replaceChildren(...buddies.map((b) => {
    const li = document.createElement('li');
    li.dataset.userId = String(b.id);
    li.dataset.status = b.status;
    const dot = document.createElement('span');
    dot.className = 'presence-dot';
    dot.setAttribute('aria-hidden', 'true');
    const who = document.createElement('span');
    who.className = 'buddy-name';
    who.textContent = b.name;
    const state = document.createElement('span');
    state.className = 'buddy-status';
    state.textContent = STATUS_WORDS[b.status] ?? b.status;
    const audio = document.createElement('button');
    audio.type = 'button';
    audio.className = 'small call-audio';
    audio.textContent = 'Call';
    audio.setAttribute('aria-label', `Audio call ${b.name}`);
    audio.addEventListener('click', () => calls?.call(b, false));
    const video = document.createElement('button');
    video.type = 'button';
    video.className = 'small primary call-video';
    video.textContent = 'Video';
    video.setAttribute('aria-label', `Video call ${b.name}`);
    video.addEventListener('click', () => calls?.call(b, true));
    li.append(dot, who, state, audio, video);
    return li;
  }));
  byId('buddy-empty').hidden = buddies.length > 0;
}

startPeople();
