// @ts-check
/**
 * The home page: start a new room, or go to a named one.
 *
 * @module
 */

import { ApiError, api, setCsrfToken } from './api.js';
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
  startSchedule();
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

// ---------------------------------------------------------------------------
// Scheduled conferences: the upcoming list and the schedule/edit form.

/**
 * @typedef {object} ScheduledConference
 * @property {number} id
 * @property {string} title
 * @property {string} link
 * @property {string} starts_local
 * @property {string} time_zone
 * @property {number} starts_at
 * @property {number} duration_min
 * @property {boolean} cancelled
 * @property {{name: string, login: string, you: boolean}} organizer
 * @property {Array<{email: string, account: boolean, delivery?: string}>} invitees
 */

/** @type {ScheduledConference[]} */
let conferences = [];

function startSchedule() {
  byId('schedule-section').hidden = false;
  const tz = /** @type {HTMLInputElement} */ (byId('conf-tz'));
  tz.value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  const zones = /** @type {any} */ (Intl).supportedValuesOf?.('timeZone') ?? [];
  byId('tz-list').replaceChildren(...zones.map((/** @type {string} */ z) => new Option(z, z)));
  byId('schedule-form').addEventListener('submit', (e) => {
    e.preventDefault();
    submitConference();
  });
  byId('schedule-reset').addEventListener('click', resetScheduleForm);
  loadConferences();
}

async function loadConferences() {
  try {
    conferences = (await api('GET', '/api/v1/conferences')).conferences;
  } catch {
    conferences = [];
  }
  byId('conference-list').replaceChildren(...conferences.map(conferenceItem));
  byId('conference-empty').hidden = conferences.length > 0;
}

/** @param {ScheduledConference} c */
function conferenceItem(c) {
  const li = document.createElement('li');
  li.dataset.conferenceId = String(c.id);
  li.classList.toggle('cancelled', c.cancelled);
  const head = document.createElement('div');
  head.className = 'history-head';
  const title = document.createElement('strong');
  title.textContent = c.cancelled ? `${c.title} (cancelled)` : c.title;
  const when = document.createElement('time');
  const start = new Date(c.starts_at * 1000);
  when.dateTime = start.toISOString();
  when.textContent = `${start.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' })} · ${c.duration_min} min`;
  head.append(title, when);
  const who = document.createElement('p');
  who.className = 'hint';
  who.textContent = c.organizer.you
    ? `You organize · ${c.invitees.map((i) => `${i.email}${i.delivery && i.delivery !== 'sent' ? ` (${i.delivery})` : ''}`).join(', ') || 'no invitees'}`
    : `Invited by ${c.organizer.name}`;
  const actions = document.createElement('div');
  actions.className = 'row';
  if (!c.cancelled) {
    const join = document.createElement('a');
    join.className = 'button small primary';
    join.href = new URL(c.link).pathname;
    join.textContent = 'Join';
    const ics = document.createElement('a');
    ics.className = 'button small';
    ics.href = `/api/v1/conferences/${c.id}/ics`;
    ics.download = 'invite.ics';
    ics.textContent = 'Add to calendar';
    actions.append(join, ics);
    if (c.organizer.you) {
      const edit = document.createElement('button');
      edit.type = 'button';
      edit.className = 'small';
      edit.textContent = 'Edit';
      edit.addEventListener('click', () => editConference(c));
      const cancel = document.createElement('button');
      cancel.type = 'button';
      cancel.className = 'small danger';
      cancel.textContent = 'Cancel';
      cancel.addEventListener('click', async () => {
        if (!confirm(`Cancel "${c.title}"? Invitees are told.`)) return;
        try {
          await api('DELETE', `/api/v1/conferences/${c.id}`);
        } catch (err) {
          alert(err instanceof Error ? err.message : 'Could not cancel.');
        }
        loadConferences();
      });
      actions.append(edit, cancel);
    }
  }
  li.append(head, who, actions);
  return li;
}

/** @param {ScheduledConference} c */
function editConference(c) {
  /** @type {HTMLInputElement} */ (byId('conf-id')).value = String(c.id);
  /** @type {HTMLInputElement} */ (byId('conf-title')).value = c.title;
  /** @type {HTMLInputElement} */ (byId('conf-start')).value = c.starts_local;
  /** @type {HTMLInputElement} */ (byId('conf-duration')).value = String(c.duration_min);
  /** @type {HTMLInputElement} */ (byId('conf-tz')).value = c.time_zone;
  /** @type {HTMLTextAreaElement} */ (byId('conf-invitees')).value = c.invitees.map((i) => i.email).join('\n');
  /** @type {HTMLInputElement} */ (byId('conf-password')).value = '';
  byId('schedule-summary').textContent = `Editing "${c.title}"`;
  byId('schedule-submit').textContent = 'Save and send updates';
  byId('schedule-reset').hidden = false;
  /** @type {HTMLDetailsElement} */ (byId('schedule-details')).open = true;
}

function resetScheduleForm() {
  /** @type {HTMLFormElement} */ (byId('schedule-form')).reset();
  /** @type {HTMLInputElement} */ (byId('conf-id')).value = '';
  /** @type {HTMLInputElement} */ (byId('conf-tz')).value = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  byId('schedule-summary').textContent = 'Schedule a conference';
  byId('schedule-submit').textContent = 'Schedule and invite';
  byId('schedule-reset').hidden = true;
}

async function submitConference() {
  const error = byId('schedule-error');
  error.hidden = true;
  const value = (/** @type {string} */ id) => /** @type {HTMLInputElement} */ (byId(id)).value;
  const body = {
    title: value('conf-title'),
    starts_local: value('conf-start').slice(0, 16),
    time_zone: value('conf-tz').trim(),
    duration_min: Number(value('conf-duration')),
    password: value('conf-password'),
    lobby: /** @type {HTMLInputElement} */ (byId('conf-lobby')).checked,
    invitees: /** @type {HTMLTextAreaElement} */ (byId('conf-invitees')).value.split(/[\s,;]+/).filter(Boolean),
  };
  const id = value('conf-id');
  try {
    if (id) await api('PUT', `/api/v1/conferences/${id}`, body);
    else await api('POST', '/api/v1/conferences', body);
  } catch (err) {
    const field = err instanceof ApiError ? err.fields[0] : undefined;
    error.textContent = field ? field.message : err instanceof Error ? err.message : 'Could not schedule the conference.';
    error.hidden = false;
    return;
  }
  resetScheduleForm();
  /** @type {HTMLDetailsElement} */ (byId('schedule-details')).open = false;
  await loadConferences();
}
