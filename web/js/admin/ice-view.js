// @ts-check
/**
 * Views of ICE: what a participant joining now is given (GET
 * /api/v1/ice/servers), the TURN provider's state, and the connectivity
 * check (POST /api/v1/ice/check) with its report.
 *
 * @module
 */

import { api, ApiError, sentence } from '../api.js';
import { button, card, errorLine, formatTime, h, setError, setStatus, statusLine } from './dom.js';

/**
 * @typedef {object} IceServer
 * @property {string[] | string} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * @typedef {object} ProviderStatus
 * @property {string} kind
 * @property {boolean} [ok]
 * @property {string} [detail]
 * @property {number} [servers]
 * @property {number} [fetched_at]
 * @property {number} [expires_at]
 */

/**
 * @typedef {object} CheckStep
 * @property {string} name
 * @property {boolean} ok
 * @property {string} [reason]
 * @property {string} [detail]
 */

/**
 * @typedef {object} CheckResult
 * @property {string} url
 * @property {string} source
 * @property {string} transport
 * @property {boolean} ok
 * @property {string} [reason]
 * @property {string} summary
 * @property {number} [millis]
 * @property {CheckStep[]} [steps]
 */

/**
 * @typedef {object} CheckReport
 * @property {boolean} ok
 * @property {string | null} [media_address]
 * @property {ProviderStatus} [provider]
 * @property {CheckResult[]} results
 * @property {string[]} [notes]
 */

/** Provider kinds, for people. */
export const PROVIDER_NAMES = /** @type {Record<string, string>} */ ({
  none: 'None',
  builtin: 'Built-in TURN server',
  metered: 'Metered',
  twilio: 'Twilio',
  xirsys: 'Xirsys',
  custom: 'Custom HTTP provider',
});

/** Where a URL comes from, for people. */
const SOURCES = /** @type {Record<string, string>} */ ({
  builtin: 'Built-in',
  stun: 'STUN list',
  turn: 'TURN list',
  provider: 'Provider',
});

/**
 * A label: value list.
 * @param {Array<[string, string | Node]>} rows
 * @returns {HTMLDListElement}
 */
function facts(rows) {
  const dl = h('dl', { class: 'facts' });
  for (const [term, value] of rows) dl.append(h('dt', { text: term }), h('dd', {}, value));
  return dl;
}

/**
 * An OK / failed badge.
 * @param {boolean | undefined} ok
 * @param {string} [okText]
 * @param {string} [failText]
 * @returns {HTMLElement}
 */
function badge(ok, okText = 'OK', failText = 'Failed') {
  if (ok === undefined) return h('span', { class: 'badge', text: 'Not yet' });
  return h('span', { class: `badge ${ok ? 'badge-ok' : 'badge-fail'}`, text: ok ? okText : failText });
}

/**
 * The TURN provider's last answer.
 * @param {ProviderStatus | undefined} status
 * @returns {HTMLElement}
 */
export function providerStatusView(status) {
  if (!status) return h('p', { class: 'hint', text: 'No provider state.' });
  /** @type {Array<[string, string | Node]>} */
  const rows = [['Provider', PROVIDER_NAMES[status.kind] ?? status.kind]];
  if (status.kind !== 'none' && status.kind !== 'builtin') {
    rows.push(['State', badge(status.ok, 'Working', 'Failing')]);
    rows.push(['Servers', String(status.servers ?? 0)]);
    rows.push(['Last answer', formatTime(status.fetched_at)]);
    rows.push(['Reused until', formatTime(status.expires_at)]);
  }
  if (status.detail) rows.push(['Detail', status.detail]);
  return facts(rows);
}

/**
 * The ICE servers a participant gets, credentials masked until asked.
 * @param {IceServer[]} servers
 * @param {boolean} reveal
 * @returns {HTMLElement}
 */
function iceServersTable(servers, reveal) {
  if (servers.length === 0) {
    return h('p', { class: 'notice', text: 'Participants get no STUN or TURN server: only direct connections to the media port work.' });
  }
  const body = h('tbody');
  for (const server of servers) {
    const urls = Array.isArray(server.urls) ? server.urls : [server.urls];
    const credential = server.credential === undefined ? '—' : reveal ? server.credential : '••••••••';
    body.append(h('tr', {},
      h('td', {}, h('ul', { class: 'plain mono' }, ...urls.map((u) => h('li', { text: u })))),
      h('td', { class: 'mono', text: server.username ?? '—' }),
      h('td', { class: 'mono', text: credential })));
  }
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'data-table' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'URLs' }), h('th', { scope: 'col', text: 'Username' }),
        h('th', { scope: 'col', text: 'Credential' }))),
      body));
}

/**
 * The card previewing what a participant joining now is given. It loads
 * when first shown and after every ICE change.
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {{element: HTMLElement, refresh: () => void}}
 */
export function icePreviewCard(ctx) {
  const content = h('div', { class: 'preview-body', 'aria-live': 'polite' });
  const error = errorLine();
  /** @type {{ice_servers: IceServer[], ice_transport_policy: string, provider?: ProviderStatus} | null} */
  let last = null;
  let reveal = false;
  let loaded = false;

  const toggle = button('Show credentials', () => {
    reveal = !reveal;
    toggle.textContent = reveal ? 'Hide credentials' : 'Show credentials';
    toggle.setAttribute('aria-pressed', String(reveal));
    draw();
  }, { class: 'secondary small', 'aria-pressed': 'false' });

  const draw = () => {
    if (!last) return;
    const policy = last.ice_transport_policy === 'relay'
      ? 'Relay only: media always goes through TURN.'
      : 'All: direct connections first, TURN when needed.';
    content.replaceChildren(
      facts([['Transport policy', policy]]),
      iceServersTable(last.ice_servers ?? [], reveal),
      h('h3', { text: 'TURN provider' }),
      providerStatusView(last.provider));
  };

  const refresh = async () => {
    loaded = true;
    refreshButton.disabled = true;
    content.setAttribute('aria-busy', 'true');
    try {
      last = await api('GET', '/api/v1/ice/servers');
      setError(error, '');
      draw();
    } catch (err) {
      setError(error, `Could not load the preview: ${err instanceof ApiError ? sentence(err.message) : 'try again.'}`);
    } finally {
      refreshButton.disabled = false;
      content.removeAttribute('aria-busy');
    }
  };
  const refreshButton = button('Refresh', () => { refresh(); }, { class: 'secondary small' });
  ctx.onIceChange(() => { if (loaded) refresh(); });

  const element = card('What participants get',
    'The STUN and TURN servers, with freshly minted credentials, that a participant joining now is given.',
    h('div', { class: 'card-tools' }, refreshButton, toggle),
    error,
    content);
  element.dataset.card = 'ice-preview';
  return { element, refresh: () => { if (!loaded) refresh(); } };
}

/**
 * One URL's row of the check report, with its steps to expand.
 * @param {CheckResult} r
 * @returns {HTMLTableRowElement}
 */
function resultRow(r) {
  const steps = h('ol', { class: 'steps' });
  for (const s of r.steps ?? []) {
    steps.append(h('li', { class: s.ok ? 'step-ok' : 'step-fail' },
      h('span', { class: 'step-mark', 'aria-hidden': 'true', text: s.ok ? '✓' : '✗' }),
      h('span', { class: 'step-name', text: s.name }),
      h('span', { class: 'visually-hidden', text: s.ok ? ' worked' : ' failed' }),
      s.detail ? h('span', { class: 'step-detail', text: ` — ${s.detail}` }) : null,
      s.reason ? h('span', { class: 'step-reason', text: ` (${s.reason})` }) : null));
  }
  const summary = r.steps && r.steps.length > 0
    ? h('details', {}, h('summary', { text: r.summary }), steps)
    : h('span', { text: r.summary });
  return h('tr', { class: r.ok ? 'result-ok' : 'result-fail', 'data-url': r.url },
    h('td', {}, badge(r.ok)),
    h('td', { class: 'mono url-cell', text: r.url }),
    h('td', { class: 'nowrap', text: r.transport.toUpperCase() }),
    h('td', { class: 'nowrap', text: SOURCES[r.source] ?? r.source }),
    h('td', { class: 'nowrap', text: r.reason ?? '—' }),
    h('td', {}, summary, r.millis !== undefined ? h('span', { class: 'hint millis', text: ` ${r.millis} ms` }) : null));
}

/**
 * The check report.
 * @param {CheckReport} report
 * @returns {HTMLElement[]}
 */
export function checkReportView(report) {
  const results = report.results ?? [];
  const failed = results.filter((r) => !r.ok).length;
  let headline;
  if (results.length === 0) headline = 'There is no STUN or TURN URL to check.';
  else if (failed === 0) headline = `All ${results.length} checks passed.`;
  else headline = `${failed} of ${results.length} checks failed.`;
  /** @type {HTMLElement[]} */
  const out = [
    h('p', { class: `report-headline ${report.ok && failed === 0 ? 'is-ok' : 'is-fail'}`, text: headline }),
    facts([['Media address', report.media_address ?? 'unknown: TURN test packets have nowhere to go']]),
  ];
  if (results.length > 0) {
    out.push(h('div', { class: 'table-wrap' },
      h('table', { class: 'data-table check-table' },
        h('caption', { class: 'visually-hidden', text: 'Result per URL and transport' }),
        h('thead', {}, h('tr', {},
          ...['Result', 'URL', 'Transport', 'Source', 'Reason', 'Summary'].map((t) => h('th', { scope: 'col', text: t })))),
        h('tbody', {}, ...results.map(resultRow)))));
  }
  if (report.provider) out.push(h('h3', { text: 'TURN provider' }), providerStatusView(report.provider));
  if (report.notes && report.notes.length > 0) {
    out.push(h('h3', { text: 'Notes' }), h('ul', { class: 'notes' }, ...report.notes.map((n) => h('li', { text: n }))));
  }
  return out;
}

/** The sections the check can take unsaved. */
const CHECKED_SECTIONS = ['stun', 'turn', 'turn_provider'];

/**
 * The card with the "Test TURN configuration" button. Sections with unsaved
 * changes in their forms are sent along, so they are tested before saving.
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {HTMLElement}
 */
export function checkCard(ctx) {
  const status = statusLine();
  const error = errorLine();
  const results = h('div', { class: 'check-results', 'aria-live': 'polite' });
  const run = h('button', { type: 'button', class: 'primary', text: 'Test TURN configuration', 'data-action': 'check' });

  run.addEventListener('click', async () => {
    /** @type {Record<string, unknown>} */
    const body = {};
    /** @type {string[]} */
    const unsaved = [];
    for (const key of CHECKED_SECTIONS) {
      const c = ctx.cards.get(key);
      if (c?.dirty()) {
        body[key] = c.read();
        unsaved.push(c.title);
      }
    }
    run.disabled = true;
    run.textContent = 'Testing…';
    results.setAttribute('aria-busy', 'true');
    setError(error, '');
    setStatus(status, unsaved.length
      ? `Testing, with the unsaved changes to ${unsaved.join(', ')}… this takes a few seconds.`
      : 'Testing the settings in force… this takes a few seconds.', 'busy');
    try {
      /** @type {CheckReport} */
      const report = await api('POST', '/api/v1/ice/check', unsaved.length ? body : undefined);
      results.replaceChildren(...checkReportView(report));
      setStatus(status, unsaved.length
        ? `Tested with the unsaved changes to ${unsaved.join(', ')}.`
        : 'Tested the settings in force.', 'ok');
    } catch (err) {
      setStatus(status, '');
      if (err instanceof ApiError && err.status === 422 && err.fields.length > 0) {
        // Each field is named with its section (`turn.servers[0].urls[0]`):
        // mark it on that section's form.
        /** @type {Map<string, import('../api.js').FieldProblem[]>} */
        const bySection = new Map();
        /** @type {import('../api.js').FieldProblem[]} */
        const elsewhere = [];
        for (const f of err.fields) {
          const key = CHECKED_SECTIONS.find((k) => f.field === k || f.field.startsWith(`${k}.`));
          if (key && body[key] !== undefined) {
            const list = bySection.get(key) ?? [];
            list.push({ ...f, field: f.field.slice(key.length + 1) });
            bySection.set(key, list);
          } else {
            elsewhere.push(f);
          }
        }
        for (const [key, fields] of bySection) {
          ctx.cards.get(key)?.showError(new ApiError(422, 'invalid', err.message, fields));
        }
        const titles = [...bySection.keys()].map((k) => ctx.cards.get(k)?.title ?? k);
        const extra = elsewhere.map((f) => `${f.field}: ${sentence(f.message)}`).join(' ');
        setError(error, `Not tested: the unsaved changes to ${titles.join(', ') || 'the settings'} are invalid; the fields at fault are marked on their forms. ${extra}`.trim());
      } else {
        setError(error, `Not tested: ${err instanceof ApiError ? sentence(err.message) : 'something went wrong.'}`);
      }
    } finally {
      run.disabled = false;
      run.textContent = 'Test TURN configuration';
      results.removeAttribute('aria-busy');
    }
  });

  const element = card('Test TURN configuration',
    'Sends a Binding request to each STUN URL. For each TURN URL it allocates a relay with the credentials participants get, '
      + 'lets it send to Parley\'s media address, relays a test packet there and waits for it, then releases the relay. '
      + 'Unsaved changes to the STUN, TURN and provider forms are tested without being saved.',
    h('div', { class: 'card-actions' }, run, status),
    error,
    results);
  element.dataset.card = 'ice-check';
  return element;
}
