// @ts-check
/**
 * The home page: start a new room, or go to a named one.
 *
 * @module
 */

import { api, setCsrfToken } from './api.js';
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
    const session = await api('GET', '/api/v1/session');
    setCsrfToken(session.csrf_token);
  } catch {
    return; // a guest: no buddy list, nobody can ring this page
  }
  byId('people-section').hidden = false;
  loadHistory();
  byId('history-delete').addEventListener('click', deleteHistory);
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

// ---------------------------------------------------------------------------
// History: the signed-in user's meetings and calls.

/**
 * @typedef {object} HistoryMeeting
 * @property {string} id
 * @property {string} room
 * @property {'meeting' | 'call'} kind
 * @property {number} started_at
 * @property {number | null} ended_at
 * @property {number | null} duration_secs
 * @property {Array<{name: string, account: boolean, joined_at: number, left_at: number | null}>} participants
 * @property {Array<{from: string, text: string, private: boolean, at: number}>} chat
 */

/** @param {number | null} secs */
function duration(secs) {
  if (secs === null) return 'going on';
  if (secs < 60) return `${secs} s`;
  const min = Math.round(secs / 60);
  return min < 60 ? `${min} min` : `${Math.floor(min / 60)} h ${min % 60} min`;
}

async function loadHistory() {
  /** @type {{meetings: HistoryMeeting[], retention_days: number}} */
  let answer;
  try {
    answer = await api('GET', '/api/v1/history?limit=20');
  } catch {
    return;
  }
  byId('history-section').hidden = false;
  byId('history-retention').textContent = `Kept for ${answer.retention_days} days. No audio or video is recorded.`;
  byId('history-list').replaceChildren(...answer.meetings.map((m) => {
    const li = document.createElement('li');
    li.dataset.meetingId = m.id;
    const head = document.createElement('div');
    head.className = 'history-head';
    const what = document.createElement('strong');
    what.textContent = m.kind === 'call' ? 'Call' : m.room;
    const when = document.createElement('time');
    when.dateTime = new Date(m.started_at * 1000).toISOString();
    when.textContent = new Date(m.started_at * 1000).toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
    const long = document.createElement('span');
    long.textContent = duration(m.duration_secs);
    head.append(what, when, long);
    const who = document.createElement('p');
    who.className = 'hint';
    who.textContent = [...new Set(m.participants.map((p) => p.name))].join(', ');
    li.append(head, who);
    if (m.chat.length > 0) {
      const details = document.createElement('details');
      const summary = document.createElement('summary');
      summary.textContent = `Chat (${m.chat.length})`;
      const log = document.createElement('ol');
      log.className = 'chat-log';
      for (const c of m.chat) {
        const line = document.createElement('li');
        line.textContent = `${c.from}${c.private ? ' (private)' : ''}: ${c.text}`;
        log.append(line);
      }
      details.append(summary, log);
      li.append(details);
    }
    return li;
  }));
  byId('history-empty').hidden = answer.meetings.length > 0;
}

async function deleteHistory() {
  if (!confirm('Delete your history of meetings and calls, and the chat messages you sent? This cannot be undone.')) return;
  try {
    await api('DELETE', '/api/v1/history');
  } catch (err) {
    alert(err instanceof Error ? err.message : 'The history could not be deleted.');
    return;
  }
  await loadHistory();
}
