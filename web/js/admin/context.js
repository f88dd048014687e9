// @ts-check
/**
 * What the console's pages share: the signed-in administrator, the settings
 * as loaded, each section's card, and news of ICE changes (so the preview
 * of what participants get can refresh).
 *
 * @module
 */

import { h, uid } from './dom.js';

/**
 * @typedef {object} ConsoleContext
 * @property {import('../api.js').User} user      the signed-in administrator
 * @property {Record<string, any>} settings        every section, as GET /api/v1/settings answered
 * @property {Map<string, import('./forms.js').SectionCard<any>>} cards  by section name
 * @property {(listener: () => void) => void} onIceChange
 * @property {() => void} iceChanged               a STUN, TURN or provider section was saved
 */

/**
 * One page of the console, shown for its `#id`.
 * @typedef {object} Page
 * @property {string} id
 * @property {string} title
 * @property {HTMLElement} element
 * @property {() => void} [shown] called each time the page is shown
 */

/**
 * @param {import('../api.js').User} user
 * @param {Record<string, any>} settings
 * @returns {ConsoleContext}
 */
export function createContext(user, settings) {
  /** @type {Array<() => void>} */
  const listeners = [];
  return {
    user,
    settings,
    cards: new Map(),
    onIceChange: (listener) => { listeners.push(listener); },
    iceChanged: () => { for (const l of listeners) l(); },
  };
}

/**
 * A page's element: its heading, an introduction, and its cards.
 * @param {string} id
 * @param {string} title
 * @param {string} intro
 * @param {...(HTMLElement | null)} cards
 * @returns {Page}
 */
export function page(id, title, intro, ...cards) {
  const headingId = uid('page-title');
  const element = h('section', { class: 'admin-page', id: `page-${id}`, 'aria-labelledby': headingId, hidden: true },
    h('h1', { id: headingId, tabindex: -1, text: title }),
    h('p', { class: 'page-intro', text: intro }),
    ...cards);
  return { id, title, element };
}
