// @ts-check
/**
 * The Connection & ICE page: STUN servers, TURN servers and transport
 * policy, media ports and announced addresses, and a preview of what a
 * participant joining now is given.
 *
 * @module
 */

import { page } from './context.js';
import { h, uid } from './dom.js';
import {
  checkField, listEditor, numberField, numberValue, sectionCard, secretField, selectField, setNumber,
  stringRow, textField,
} from './forms.js';
import { icePreviewCard } from './ice-view.js';

/** The most STUN servers, and the most TURN servers. */
const MAX_SERVERS = 5;
/** The most URLs of one TURN server (the server sets no limit; more is pointless). */
const MAX_URLS = 8;
/** The most announced addresses. */
const MAX_ANNOUNCE = 4;

/**
 * @typedef {object} StunSettings
 * @property {boolean} builtin
 * @property {string[]} servers
 */

/**
 * @typedef {object} TurnServer
 * @property {string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 * @property {string} [secret]
 */

/**
 * @typedef {object} TurnSettings
 * @property {TurnServer[]} servers
 * @property {'all' | 'relay'} transport_policy
 */

/**
 * @typedef {object} ConnectionSettings
 * @property {'fixed' | 'dynamic'} mode
 * @property {number} udp_port
 * @property {number} tcp_port
 * @property {number} min_udp_port
 * @property {number} max_udp_port
 * @property {string[]} announce
 */

/** @returns {import('./forms.js').SectionForm<StunSettings>} */
function stunForm() {
  const builtin = checkField({
    label: 'Offer Parley’s built-in STUN server',
    field: 'builtin',
    hint: 'It answers on the TURN port; participants’ requests never leave your server.',
  });
  const servers = listEditor({
    field: 'servers',
    label: 'Other STUN servers',
    itemName: 'STUN server',
    max: MAX_SERVERS,
    blank: () => '',
    row: stringRow({ itemName: 'STUN server URL', placeholder: 'stun:stun.example.org:3478' }),
    hint: 'stun: or stuns: URLs. At least one is needed when the built-in server is off.',
    emptyText: 'No other STUN server.',
  });
  return {
    fields: [builtin.wrap, servers.element],
    render(v) {
      builtin.input.checked = v.builtin !== false;
      servers.set(v.servers ?? []);
    },
    read: () => ({ builtin: builtin.input.checked, servers: servers.read() }),
  };
}

/**
 * One TURN server: its URLs, and a username and password or a REST secret.
 * @param {TurnServer} value
 * @param {string} path e.g. `servers[0]`
 * @param {number} index
 * @returns {import('./forms.js').ListRow<TurnServer>}
 */
function turnServerRow(value, path, index) {
  const n = index + 1;
  const urls = listEditor({
    field: `${path}.urls`,
    label: 'URLs',
    itemName: `URL of TURN server ${n}`,
    addText: 'Add URL',
    max: MAX_URLS,
    blank: () => '',
    row: stringRow({ itemName: `TURN server ${n} URL`, placeholder: 'turn:turn.example.org:3478?transport=udp' }),
    hint: 'turn: or turns: URLs, e.g. turn:turn.example.org:3478?transport=udp or turns:turn.example.org:443?transport=tcp.',
    emptyText: 'No URL yet.',
  });
  urls.set(value.urls ?? []);

  const group = uid('auth');
  const fixedRadio = h('input', { type: 'radio', name: group, value: 'fixed', id: `${group}-fixed` });
  const secretRadio = h('input', { type: 'radio', name: group, value: 'secret', id: `${group}-secret` });
  const usingSecret = value.secret !== undefined && value.username === undefined && value.credential === undefined;
  fixedRadio.checked = !usingSecret;
  secretRadio.checked = usingSecret;

  const username = textField({ label: 'Username', field: `${path}.username`, value: value.username ?? '' });
  const credential = secretField({ label: 'Password', field: `${path}.credential` });
  credential.input.value = value.credential ?? '';
  const secret = secretField({
    label: 'TURN REST secret',
    field: `${path}.secret`,
    hint: 'Parley mints short-lived credentials for each participant with this shared secret.',
  });
  secret.input.value = value.secret ?? '';
  const fixedFields = h('div', { class: 'field-row' }, username.wrap, credential.wrap);

  const sync = () => {
    fixedFields.hidden = !fixedRadio.checked;
    secret.wrap.hidden = !secretRadio.checked;
  };
  fixedRadio.addEventListener('change', sync);
  secretRadio.addEventListener('change', sync);
  sync();

  const element = h('div', { class: 'turn-server', 'data-field': path },
    h('div', { class: 'row-title', text: `TURN server ${n}` }),
    urls.element,
    h('fieldset', { class: 'radio-group' },
      h('legend', { text: 'Credentials' }),
      h('div', { class: 'check-line' }, fixedRadio, h('label', { for: fixedRadio.id, text: 'Username and password' })),
      h('div', { class: 'check-line' }, secretRadio, h('label', { for: secretRadio.id, text: 'TURN REST secret' }))),
    fixedFields,
    secret.wrap);

  return {
    element,
    read: () => (secretRadio.checked
      ? { urls: urls.read(), secret: secret.input.value }
      : { urls: urls.read(), username: username.input.value.trim(), credential: credential.input.value }),
  };
}

/** @returns {import('./forms.js').SectionForm<TurnSettings>} */
function turnForm() {
  const servers = listEditor({
    field: 'servers',
    label: 'Servers',
    itemName: 'TURN server',
    max: MAX_SERVERS,
    blank: () => ({ urls: [''], username: '', credential: '' }),
    row: turnServerRow,
    hint: 'Offered besides the TURN provider’s servers.',
    emptyText: 'No TURN server besides the provider’s.',
  });
  const policy = selectField({
    label: 'Transport policy',
    field: 'transport_policy',
    options: [
      ['all', 'All: direct connections first, TURN when needed'],
      ['relay', 'Relay only: media always goes through TURN'],
    ],
    hint: 'Relay only hides participants’ addresses from each other and from the server, at the cost of a detour.',
  });
  return {
    fields: [servers.element, policy.wrap],
    render(v) {
      servers.set(v.servers ?? []);
      policy.input.value = v.transport_policy === 'relay' ? 'relay' : 'all';
    },
    read: () => ({
      servers: servers.read(),
      transport_policy: policy.input.value === 'relay' ? 'relay' : 'all',
    }),
  };
}

/** @returns {import('./forms.js').SectionForm<ConnectionSettings>} */
function connectionForm() {
  const mode = selectField({
    label: 'Media port',
    field: 'mode',
    options: [
      ['fixed', 'Fixed: one known port (needed behind port forwarding and in containers)'],
      ['dynamic', 'Dynamic: a free port, optionally from a range'],
    ],
  });
  const udp = numberField({ label: 'UDP port', field: 'udp_port', min: 1, max: 65535 });
  const tcp = numberField({ label: 'TCP port', field: 'tcp_port', min: 1, max: 65535, hint: 'For ICE over TCP.' });
  const minUdp = numberField({ label: 'Lowest UDP port', field: 'min_udp_port', min: 0, max: 65535, hint: '0: no lower bound.' });
  const maxUdp = numberField({ label: 'Highest UDP port', field: 'max_udp_port', min: 0, max: 65535, hint: '0: no upper bound.' });
  const fixed = h('div', { class: 'field-row' }, udp.wrap, tcp.wrap);
  const dynamic = h('div', { class: 'field-row' }, minUdp.wrap, maxUdp.wrap);
  const announce = listEditor({
    field: 'announce',
    label: 'Announced addresses',
    itemName: 'address',
    max: MAX_ANNOUNCE,
    blank: () => '',
    row: stringRow({ itemName: 'Announced address', placeholder: '203.0.113.10', inputmode: 'decimal' }),
    hint: 'IP addresses participants send media to, instead of the server’s own: the public address behind NAT, '
      + 'or both a LAN and a public one. Empty: the interface addresses.',
    emptyText: 'None: the interface addresses are announced.',
  });
  const sync = () => {
    fixed.hidden = mode.input.value !== 'fixed';
    dynamic.hidden = mode.input.value !== 'dynamic';
  };
  mode.input.addEventListener('change', sync);
  return {
    fields: [mode.wrap, fixed, dynamic, announce.element],
    render(v) {
      mode.input.value = v.mode === 'dynamic' ? 'dynamic' : 'fixed';
      setNumber(udp.input, v.udp_port);
      setNumber(tcp.input, v.tcp_port);
      setNumber(minUdp.input, v.min_udp_port);
      setNumber(maxUdp.input, v.max_udp_port);
      announce.set(v.announce ?? []);
      sync();
    },
    read: () => /** @type {ConnectionSettings} */ ({
      mode: mode.input.value === 'dynamic' ? 'dynamic' : 'fixed',
      udp_port: /** @type {number} */ (numberValue(udp.input)),
      tcp_port: /** @type {number} */ (numberValue(tcp.input)),
      min_udp_port: /** @type {number} */ (numberValue(minUdp.input)),
      max_udp_port: /** @type {number} */ (numberValue(maxUdp.input)),
      announce: announce.read(),
    }),
  };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function connectionPage(ctx) {
  const stun = sectionCard({
    key: 'stun',
    title: 'STUN servers',
    intro: 'STUN tells a browser its public address, so it can reach Parley directly.',
    form: stunForm(),
    value: ctx.settings.stun,
    onSaved: ctx.iceChanged,
  });
  const turn = sectionCard({
    key: 'turn',
    title: 'TURN servers',
    intro: 'TURN relays media for participants whose network lets nothing else through.',
    form: turnForm(),
    value: ctx.settings.turn,
    onSaved: ctx.iceChanged,
  });
  const connection = sectionCard({
    key: 'connection',
    title: 'Media connection',
    intro: 'Where participants send audio and video. A change applies at once to new connections.',
    form: connectionForm(),
    value: ctx.settings.connection,
    onSaved: ctx.iceChanged,
  });
  for (const c of [stun, turn, connection]) ctx.cards.set(c.key, c);
  const preview = icePreviewCard(ctx);
  const testHint = h('p', { class: 'hint' },
    'To test these servers, saved or not, use ',
    h('a', { href: '#provider', text: 'Test TURN configuration' }),
    ' on the TURN provider page.');
  const p = page('connection', 'Connection & ICE',
    'How participants’ browsers reach the server: STUN and TURN servers and the media port.',
    stun.element, turn.element, connection.element, preview.element, testHint);
  p.shown = preview.refresh;
  return p;
}
