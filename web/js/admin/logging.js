// @ts-check
/**
 * The Logging & retention page: how much the server logs, how long history
 * is kept, and whose names the buddy list shows.
 *
 * @module
 */

import { page } from './context.js';
import { numberField, numberValue, sectionCard, selectField, setNumber } from './forms.js';

/**
 * @typedef {object} LoggingSettings
 * @property {'debug' | 'informational' | 'warning' | 'error' | 'critical'} level
 */

/**
 * @typedef {object} HistorySettings
 * @property {number} retention_days
 * @property {'same_domain' | 'all_domains'} buddy_list
 */

/** @type {Array<[LoggingSettings['level'], string]>} */
const LEVELS = [
  ['debug', 'Debug: everything, for diagnosing problems'],
  ['informational', 'Informational: start-up, joins and leaves, warnings and errors'],
  ['warning', 'Warning: warnings and errors'],
  ['error', 'Error: errors only'],
  ['critical', 'Critical: the gravest errors only'],
];

/** @returns {import('./forms.js').SectionForm<LoggingSettings>} */
function loggingForm() {
  const level = selectField({
    label: 'Log level',
    field: 'level',
    options: LEVELS,
    hint: 'The server logs to standard error. A RUST_LOG environment variable overrides this.',
  });
  return {
    fields: [level.wrap],
    render(v) {
      level.input.value = v.level ?? 'informational';
    },
    read: () => ({ level: /** @type {LoggingSettings['level']} */ (level.input.value) }),
  };
}

/** @returns {import('./forms.js').SectionForm<HistorySettings>} */
function historyForm() {
  const days = numberField({
    label: 'Keep history for (days)',
    field: 'retention_days',
    min: 1,
    max: 3650,
    hint: '1 to 3650. Older entries are deleted.',
  });
  const buddies = selectField({
    label: 'Buddy list',
    field: 'buddy_list',
    options: [
      ['same_domain', 'People of the same domain only'],
      ['all_domains', 'People of every domain on this server'],
    ],
    hint: 'Whom people see in their buddy list.',
  });
  return {
    fields: [days.wrap, buddies.wrap],
    render(v) {
      setNumber(days.input, v.retention_days);
      buddies.input.value = v.buddy_list === 'all_domains' ? 'all_domains' : 'same_domain';
    },
    read: () => ({
      retention_days: /** @type {number} */ (numberValue(days.input)),
      buddy_list: buddies.input.value === 'all_domains' ? 'all_domains' : 'same_domain',
    }),
  };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function loggingPage(ctx) {
  const logging = sectionCard({ key: 'logging', title: 'Logging', form: loggingForm(), value: ctx.settings.logging });
  const history = sectionCard({ key: 'history', title: 'History', form: historyForm(), value: ctx.settings.history });
  for (const c of [logging, history]) ctx.cards.set(c.key, c);
  return page('logging', 'Logging & retention', 'What the server writes to its log, and what it keeps and for how long.',
    logging.element, history.element);
}
