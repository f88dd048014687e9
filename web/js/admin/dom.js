// @ts-check
/**
 * Small DOM helpers for the admin console. Everything shown is set with
 * textContent or attributes, never parsed as HTML: settings and names are
 * typed by people.
 *
 * @module
 */

/** @typedef {string | number | boolean | null | undefined} AttrValue */
/** @typedef {Node | string | null | undefined | false} Child */

/**
 * A new element. `class` sets the class, `text` the text; any other key is
 * an attribute (`true` sets it empty; `false`, `null` and `undefined` skip it).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, AttrValue>} [attrs]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = String(value);
    else if (key === 'text') el.textContent = String(value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) el.append(child);
  }
  return el;
}

/**
 * A button (`type="button"` unless given).
 * @param {string} text
 * @param {() => void} onClick
 * @param {Record<string, AttrValue>} [attrs]
 * @returns {HTMLButtonElement}
 */
export function button(text, onClick, attrs = {}) {
  const b = h('button', { type: 'button', class: 'secondary', ...attrs, text });
  b.addEventListener('click', onClick);
  return b;
}

let lastId = 0;

/**
 * A fresh element id.
 * @param {string} prefix
 * @returns {string}
 */
export function uid(prefix) {
  lastId += 1;
  return `${prefix}-${lastId}`;
}

/**
 * A Unix time in seconds, for people; '—' for none.
 * @param {number | null | undefined} seconds
 * @returns {string}
 */
export function formatTime(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds <= 0) return '—';
  return new Date(seconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/**
 * A status line that screen readers announce (`role="status"`).
 * @param {string} [className]
 * @returns {HTMLParagraphElement}
 */
export function statusLine(className = 'form-status') {
  return h('p', { class: className, role: 'status', 'aria-live': 'polite' });
}

/**
 * An error line that screen readers announce at once (`role="alert"`),
 * hidden while empty.
 * @returns {HTMLParagraphElement}
 */
export function errorLine() {
  return h('p', { class: 'form-error', role: 'alert', hidden: true });
}

/**
 * Shows `message` in an {@link errorLine}; '' hides it.
 * @param {HTMLElement} line
 * @param {string} message
 */
export function setError(line, message) {
  line.textContent = message;
  line.hidden = message === '';
}

/**
 * Shows `message` in a {@link statusLine}, styled by `tone`.
 * @param {HTMLElement} line
 * @param {string} message
 * @param {'' | 'ok' | 'busy' | 'dirty'} [tone]
 */
export function setStatus(line, message, tone = '') {
  line.textContent = message;
  if (tone) line.dataset.tone = tone;
  else delete line.dataset.tone;
}

/**
 * A card: a titled block of the console.
 * @param {string} title
 * @param {string | Node | null} intro
 * @param {...Child} children
 * @returns {HTMLElement}
 */
export function card(title, intro, ...children) {
  const headingId = uid('card-title');
  return h('section', { class: 'card', 'aria-labelledby': headingId },
    h('div', { class: 'card-head' }, h('h2', { id: headingId, text: title })),
    typeof intro === 'string' ? h('p', { class: 'card-intro', text: intro }) : intro,
    ...children);
}
