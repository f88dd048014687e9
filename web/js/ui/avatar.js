// @ts-check
/**
 * Avatars shown instead of video when a camera is off: the person's initials
 * on a circle whose color is derived from their participant id, so a person
 * keeps one color for the whole call and neighbours rarely share one.
 *
 * @module
 */

/**
 * Up to two initials: first letters of the first and last words. Works on
 * code points, so a name starting with an emoji or a non-BMP letter is not
 * cut in half.
 *
 * @param {string} name
 */
export function initials(name) {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return '?';
  const first = Array.from(words[0])[0] ?? '';
  const last = words.length > 1 ? Array.from(words[words.length - 1])[0] ?? '' : '';
  return (first + last).toLocaleUpperCase();
}

/**
 * A hue in degrees from a string (FNV-1a hash).
 * @param {string} key
 */
export function hueFor(key) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0) % 360;
}

/**
 * Fills `element` with the avatar for `name`. Text only, never markup.
 * @param {HTMLElement} element
 * @param {string} name
 * @param {string} colorKey usually the participant id
 */
export function renderAvatar(element, name, colorKey) {
  element.textContent = initials(name);
  element.style.setProperty('--avatar-hue', String(hueFor(colorKey)));
}
