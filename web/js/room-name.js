// @ts-check
/**
 * Room names, as protocol.md defines them for `join.room`: 1–64 characters
 * of `a-z 0-9 - _ .`, starting with a letter or digit; upper case is folded
 * to lower case. The home page and the room page check names here, so a bad
 * name is explained before the server has to refuse it.
 *
 * @module
 */

const ROOM_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * The room name as the server will see it: trimmed and lower-cased.
 * @param {string} input
 */
export function normalizeRoomName(input) {
  return input.trim().toLowerCase();
}

/**
 * Explains what is wrong with a room name, in words for people, or returns
 * null when the name is valid. The name is normalized first.
 *
 * @param {string} input
 * @returns {string | null}
 */
export function roomNameProblem(input) {
  const name = normalizeRoomName(input);
  if (name.length === 0) return 'Enter a room name.';
  if (name.length > 64) return 'Room names are at most 64 characters long.';
  if (!/^[a-z0-9]/.test(name)) return 'Room names start with a letter or a digit.';
  if (!ROOM_NAME.test(name)) {
    return 'Room names may only contain letters, digits, “-”, “_” and “.” (no spaces).';
  }
  return null;
}

/**
 * Takes what someone typed or pasted into the "room" field, which may be a
 * bare name or a whole room link (`https://host/r/weekly-sync`), and returns
 * the room name part.
 *
 * @param {string} input
 */
export function roomNameFromInput(input) {
  const text = input.trim();
  const match = /\/r\/([^/?#]+)\/?(?:[?#].*)?$/.exec(text);
  if (!match) return text;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

/** RFC 4648 base32 alphabet, lower-cased: 32 symbols, so a byte maps evenly. */
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';

/**
 * A fresh, hard-to-guess room name such as `k7qd-m2xa-fp4z`: twelve random
 * base32 characters (60 bits from the platform CSPRNG), grouped by dashes so
 * it can be read out loud. Anyone with the link can join a room, so the name
 * is the only secret.
 */
export function newRoomName() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  const chars = Array.from(bytes, (b) => BASE32[b % 32]);
  return [chars.slice(0, 4), chars.slice(4, 8), chars.slice(8, 12)]
    .map((group) => group.join(''))
    .join('-');
}

/**
 * Whether a room name is easy to guess, and why, or null. Anyone who guesses
 * a room's name can walk into it (unless it has a password or a lobby), so
 * names are scored by a rough estimate of the guesses needed: a segment
 * that looks like a word counts as one of ~65,000 words (16 bits), others
 * by their characters. Under 50 bits is guessable.
 *
 * @param {string} input
 * @returns {string | null}
 */
export function guessableRoomName(input) {
  const name = normalizeRoomName(input);
  let bits = 0;
  for (const segment of name.split(/[._-]+/).filter(Boolean)) {
    if (/^[a-z]+$/.test(segment) && /[aeiouy]/.test(segment) && segment.length < 12) {
      bits += 16;
    } else if (/^[0-9]+$/.test(segment)) {
      bits += segment.length * Math.log2(10);
    } else {
      bits += segment.length * Math.log2(36);
    }
  }
  if (bits >= 50) return null;
  return `“${name}” is easy to guess: anyone who tries it can walk in unless the room has a password or a lobby.`;
}
