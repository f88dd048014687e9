// @ts-check
/**
 * Choices remembered between calls, in `localStorage`: the display name,
 * whether the microphone and camera start on, and which devices to use.
 * "The last mic/camera choice is remembered for the next call."
 *
 * Storage can be unavailable (privacy modes, blocked site data) or hold
 * something written by another version; both read as the defaults, and a
 * failed write is ignored, since remembering is a convenience, not a need.
 *
 * @module
 */

const KEY = 'parley.prefs.v1';

/**
 * @typedef {object} Prefs
 * @property {string} name           last display name, '' if none yet
 * @property {boolean} mic           microphone on when joining
 * @property {boolean} camera        camera on when joining
 * @property {string} micDeviceId    '' for the browser's default
 * @property {string} cameraDeviceId '' for the browser's default
 * @property {string} speakerDeviceId '' for the browser's default
 * @property {'grid' | 'speaker'} view the call layout
 */

/** @type {Readonly<Prefs>} */
const DEFAULTS = Object.freeze({
  name: '',
  mic: true,
  camera: true,
  micDeviceId: '',
  cameraDeviceId: '',
  speakerDeviceId: '',
  view: 'grid',
});

/** @returns {Prefs} */
export function loadPrefs() {
  /** @type {unknown} */
  let stored = null;
  try {
    stored = JSON.parse(localStorage.getItem(KEY) ?? 'null');
  } catch {
    // unreadable or unavailable: defaults
  }
  const prefs = { ...DEFAULTS };
  if (typeof stored !== 'object' || stored === null) return prefs;
  const s = /** @type {Record<string, unknown>} */ (stored);
  if (typeof s.name === 'string') prefs.name = s.name;
  if (typeof s.mic === 'boolean') prefs.mic = s.mic;
  if (typeof s.camera === 'boolean') prefs.camera = s.camera;
  if (typeof s.micDeviceId === 'string') prefs.micDeviceId = s.micDeviceId;
  if (typeof s.cameraDeviceId === 'string') prefs.cameraDeviceId = s.cameraDeviceId;
  if (typeof s.speakerDeviceId === 'string') prefs.speakerDeviceId = s.speakerDeviceId;
  if (s.view === 'grid' || s.view === 'speaker') prefs.view = s.view;
  return prefs;
}

/**
 * Merges `changes` into the stored preferences.
 * @param {Partial<Prefs>} changes
 */
export function savePrefs(changes) {
  const prefs = { ...loadPrefs(), ...changes };
  try {
    localStorage.setItem(KEY, JSON.stringify(prefs));
  } catch {
    // storage full or blocked: the choice is simply not remembered
  }
}
