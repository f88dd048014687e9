// @ts-check
/**
 * DOM helpers shared by the pages.
 *
 * @module
 */

/**
 * The element with this id. The pages and scripts ship together, so a
 * missing element is a bug in this repository, reported loudly.
 * @param {string} id
 * @returns {HTMLElement}
 */
export function byId(id) {
  const element = document.getElementById(id);
  if (!element) throw new Error(`page has no #${id}`);
  return element;
}

/**
 * Shows a device toggle's state: `aria-pressed="true"` while the device is
 * on, and a tooltip naming what a click will do.
 * @param {HTMLButtonElement} button
 * @param {boolean} on
 * @param {'microphone' | 'camera'} device
 */
export function setToggle(button, on, device) {
  button.setAttribute('aria-pressed', String(on));
  button.title = on ? `Turn off ${device}` : `Turn on ${device}`;
}
