// @ts-check
/**
 * The Rooms page: meetings on or off, the member limit, the rooms in use
 * with their participants, and the rooms used before.
 *
 * @module
 */

import { api, ApiError, sentence } from '../api.js';
import { page } from './context.js';
import { button, card, errorLine, formatTime, h, setError } from './dom.js';
import { checkField, numberField, numberValue, sectionCard, setNumber } from './forms.js';
import { PATH_NAMES, describePath } from '../ui/quality.js';

/** @typedef {import('../ui/quality.js').MediaPath} MediaPath */

/**
 * @typedef {object} RoomSettings
 * @property {boolean} enabled
 * @property {number} max_members
 * @property {number} ring_timeout_secs
 * @property {number} last_n
 * @property {number} reconnect_grace_secs
 */

/**
 * How a participant's media reaches the server, as their page reported it.
 * @typedef {{path: string, rtt_ms: number, loss_permille: number}} PathReport
 */

/**
 * @typedef {object} RoomsAnswer
 * @property {Array<{name: string, participants: Array<{id: string, name: string, mic: boolean, camera: boolean,
 *   reconnecting?: boolean, path?: PathReport | null}>}>} active
 * @property {{participants: number, reported: number, by_path: Record<string, number>, advice: string[]}} [connectivity]
 * @property {Array<{name: string, first_opened_at: number, last_opened_at: number, times_opened: number}>} known
 */

/**
 * A participant's path, for people.
 * @param {PathReport | null | undefined} p
 */
function pathText(p) {
  if (!p) return 'path not reported yet';
  return describePath(p);
}

/** @returns {import('./forms.js').SectionForm<RoomSettings>} */
function roomsForm() {
  const enabled = checkField({
    label: 'Meetings are on',
    field: 'enabled',
    hint: 'Off turns away everyone who tries to join a room; people in a meeting stay.',
  });
  const max = numberField({ label: 'Most people in a room', field: 'max_members', min: 2, max: 60, hint: '2 to 60.' });
  const ring = numberField({
    label: 'Calls ring for (seconds)',
    field: 'ring_timeout_secs',
    min: 10,
    max: 300,
    hint: '10 to 300. An unanswered one-to-one call ends with “no answer” after this.',
  });
  const lastN = numberField({
    label: 'Videos sent to each participant (last N)',
    field: 'last_n',
    min: 0,
    max: 60,
    hint: '0 sends everyone’s video. 1 to 60 sends only the video of that many most recent speakers, which saves bandwidth in large meetings; everyone is still heard.',
  });
  const grace = numberField({
    label: 'Place kept for a dropped connection (seconds)',
    field: 'reconnect_grace_secs',
    min: 0,
    max: 300,
    hint: '0 to 300. Someone whose network drops stays in the meeting, shown as reconnecting, this long; their page reconnects by itself. 0 removes them at once.',
  });
  return {
    fields: [enabled.wrap, max.wrap, ring.wrap, lastN.wrap, grace.wrap],
    render(v) {
      enabled.input.checked = v.enabled !== false;
      setNumber(max.input, v.max_members);
      setNumber(ring.input, v.ring_timeout_secs);
      setNumber(lastN.input, v.last_n ?? 0);
      setNumber(grace.input, v.reconnect_grace_secs ?? 30);
    },
    read: () => ({
      enabled: enabled.input.checked,
      max_members: /** @type {number} */ (numberValue(max.input)),
      ring_timeout_secs: /** @type {number} */ (numberValue(ring.input)),
      last_n: /** @type {number} */ (numberValue(lastN.input)),
      reconnect_grace_secs: /** @type {number} */ (numberValue(grace.input)),
    }),
  };
}

/**
 * A participant's microphone and camera, for people.
 * @param {{mic: boolean, camera: boolean}} p
 */
function devices(p) {
  return `microphone ${p.mic ? 'on' : 'off'}, camera ${p.camera ? 'on' : 'off'}`;
}

/** The rooms in use and the rooms used before, refreshed on demand. */
function roomsActivity() {
  const active = h('div', { 'aria-live': 'polite' });
  const connectivity = h('div', { 'data-connectivity': '' });
  const known = h('div');
  const error = errorLine();
  const refresh = async () => {
    refreshButton.disabled = true;
    try {
      /** @type {RoomsAnswer} */
      const answer = await api('GET', '/api/v1/rooms');
      setError(error, '');
      const rooms = answer.active ?? [];
      if (rooms.length === 0) {
        active.replaceChildren(h('p', { class: 'hint', text: 'No meeting is going on.' }));
      } else {
        active.replaceChildren(h('ul', { class: 'room-list' }, ...rooms.map((room) => h('li', { class: 'room-item' },
          h('div', { class: 'room-item-head' },
            h('a', { class: 'mono', href: `/r/${encodeURIComponent(room.name)}`, target: '_blank', rel: 'noopener', text: room.name }),
            h('span', { class: 'hint', text: `${room.participants.length} ${room.participants.length === 1 ? 'person' : 'people'}` })),
          h('ul', { class: 'participants' }, ...room.participants.map((p) => h('li', { 'data-path': p.path?.path ?? '' },
            h('span', { class: 'participant-name', text: p.name }),
            h('span', { class: 'hint', text: ` — ${p.reconnecting ? 'reconnecting, ' : ''}${devices(p)}; ${pathText(p.path)}` }))))))));
      }
      const c = answer.connectivity;
      if (!c || c.participants === 0) {
        connectivity.replaceChildren(h('p', { class: 'hint', text: 'Nobody is in a meeting.' }));
      } else {
        const counts = Object.entries(c.by_path).map(([path, n]) => `${n} ${PATH_NAMES[/** @type {MediaPath} */ (path)] ?? path}`).join(', ');
        const summary = c.reported === 0
          ? `${c.participants} in meetings; no path reported yet.`
          : `${c.participants} in meetings; media paths reported by ${c.reported}: ${counts}.`;
        connectivity.replaceChildren(
          h('p', { text: summary }),
          ...(c.advice.length ? [h('ul', { class: 'advice' }, ...c.advice.map((a) => h('li', { text: a })))] : []),
        );
      }
      const list = [...(answer.known ?? [])].sort((a, b) => b.last_opened_at - a.last_opened_at);
      if (list.length === 0) {
        known.replaceChildren(h('p', { class: 'hint', text: 'No room has been used yet.' }));
      } else {
        known.replaceChildren(h('div', { class: 'table-wrap' }, h('table', { class: 'data-table' },
          h('thead', {}, h('tr', {}, ...['Room', 'First used', 'Last used', 'Times opened'].map((t) => h('th', { scope: 'col', text: t })))),
          h('tbody', {}, ...list.map((r) => h('tr', {},
            h('td', { class: 'mono', text: r.name }),
            h('td', { text: formatTime(r.first_opened_at) }),
            h('td', { text: formatTime(r.last_opened_at) }),
            h('td', { class: 'num', text: String(r.times_opened) })))))));
      }
    } catch (err) {
      setError(error, `Could not load the rooms: ${err instanceof ApiError ? sentence(err.message) : 'try again.'}`);
    } finally {
      refreshButton.disabled = false;
    }
  };
  const refreshButton = button('Refresh', () => { refresh(); }, { class: 'secondary small' });
  const activeCard = card('Meetings now', 'Rooms with people in them, and how each participant’s media reaches the server.', h('div', { class: 'card-tools' }, refreshButton), error, active);
  activeCard.dataset.card = 'active-rooms';
  const pathsCard = card('How media gets through', 'Counted from what the participants’ pages report: UDP straight to the media port is best; ICE-TCP and TURN mean UDP did not get through from their network.', connectivity);
  pathsCard.dataset.card = 'connectivity';
  const knownCard = card('Rooms used before', 'Every room opened on this server, most recent first. No audio, video or chat is stored.', known);
  knownCard.dataset.card = 'known-rooms';
  return { cards: [activeCard, pathsCard, knownCard], refresh };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function roomsPage(ctx) {
  const rooms = sectionCard({
    key: 'rooms',
    title: 'Meetings',
    form: roomsForm(),
    value: ctx.settings.rooms,
  });
  ctx.cards.set(rooms.key, rooms);
  const activity = roomsActivity();
  const p = page('rooms', 'Rooms', 'Whether meetings are on, how big they may get, and which rooms are in use.',
    rooms.element, ...activity.cards);
  p.shown = () => { activity.refresh(); };
  return p;
}
