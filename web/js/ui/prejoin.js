// @ts-check
/**
 * The pre-join screen: name, camera preview, mic/camera toggles and device
 * choice. Changes here act on the local media at once (so the preview shows
 * what others will see) and are remembered for the next call.
 *
 * @module
 */

import { describeProblems, listDevices } from '../local-media.js';
import { loadPrefs, savePrefs } from '../prefs.js';
import { renderAvatar } from './avatar.js';
import { fillDevices } from './devices.js';
import { byId, setToggle } from './dom.js';

/** @typedef {import('../local-media.js').LocalMedia} LocalMedia */

/**
 * Checks a display name against protocol.md's rule for `join.name`.
 * @param {string} name
 * @returns {string | null} what is wrong, or null
 */
export function nameProblem(name) {
  const trimmed = name.trim();
  if (trimmed.length === 0) return 'Enter your name so others know who you are.';
  if (Array.from(trimmed).length > 64) return 'Names are at most 64 characters long.';
  if (/[\u0000-\u001f\u007f-\u009f]/.test(trimmed)) return 'Names cannot contain control characters.';
  return null;
}

export class PrejoinScreen {
  /** @type {LocalMedia | null} */
  #media = null;
  #form = /** @type {HTMLFormElement} */ (byId('join-form'));
  #name = /** @type {HTMLInputElement} */ (byId('name'));
  #join = /** @type {HTMLButtonElement} */ (byId('join'));
  #error = byId('join-error');
  #status = byId('join-status');
  #preview = /** @type {HTMLVideoElement} */ (byId('preview'));
  #previewBox = byId('preview-box');
  #avatar = byId('preview-avatar');
  #deviceMessage = byId('device-message');
  #micToggle = /** @type {HTMLButtonElement} */ (byId('prejoin-toggle-mic'));
  #cameraToggle = /** @type {HTMLButtonElement} */ (byId('prejoin-toggle-camera'));
  #micSelect = /** @type {HTMLSelectElement} */ (byId('mic-device'));
  #cameraSelect = /** @type {HTMLSelectElement} */ (byId('camera-device'));
  #speakerSelect = /** @type {HTMLSelectElement} */ (byId('speaker-device'));
  /** Set when the room name itself is invalid: nothing can make Join work. */
  #blocked = false;

  /**
   * @param {{name: string, onJoin: (name: string) => void}} options
   */
  constructor({ name, onJoin }) {
    this.#name.value = name;
    this.#name.addEventListener('input', () => {
      this.#renderAvatar();
      if (!this.#error.hidden && !this.#blocked) this.showError('');
    });
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (this.#join.disabled) return;
      const problem = nameProblem(this.#name.value);
      if (problem) {
        this.showError(problem);
        this.#name.focus();
        return;
      }
      onJoin(this.#name.value.trim());
    });
    this.#micToggle.addEventListener('click', () => this.#toggleMic());
    this.#cameraToggle.addEventListener('click', () => this.#toggleCamera());
    this.#micSelect.addEventListener('change', () => this.#switchMic());
    this.#cameraSelect.addEventListener('change', () => this.#switchCamera());
    // The call plays sound on the chosen speaker (applied when it starts).
    this.#speakerSelect.addEventListener('change', () => savePrefs({ speakerDeviceId: this.#speakerSelect.value }));
    this.#renderAvatar();
  }

  /** The name as typed (untrimmed). */
  get name() {
    return this.#name.value;
  }

  /**
   * Shows the preview and device state for freshly opened local media.
   * @param {LocalMedia} media
   */
  async setMedia(media) {
    this.#media = media;
    this.#render();
    await this.#fillDeviceLists();
  }

  /**
   * A message above the Join button; '' hides it.
   * @param {string} message
   */
  showError(message) {
    this.#error.textContent = message;
    this.#error.hidden = message === '';
  }

  /**
   * Disables the form while a join is under way.
   * @param {boolean} busy
   * @param {string} [status] e.g. 'Joining…'
   */
  setBusy(busy, status = '') {
    this.#join.disabled = busy || this.#blocked;
    this.#name.disabled = busy;
    this.#status.textContent = status;
  }

  /**
   * Makes joining impossible, for a room name that can never be valid.
   * @param {string} message
   */
  block(message) {
    this.#blocked = true;
    this.#join.disabled = true;
    this.showError(message);
  }

  focus() {
    (this.#name.value ? this.#join : this.#name).focus();
  }

  /** Releases the preview (the tracks themselves belong to the caller). */
  detach() {
    this.#preview.srcObject = null;
    this.#media = null;
  }

  #render() {
    const media = this.#media;
    if (!media) return;
    setToggle(this.#micToggle, media.micOn, 'microphone');
    setToggle(this.#cameraToggle, media.cameraOn, 'camera');
    const video = media.videoTrack;
    this.#preview.srcObject = video ? new MediaStream([video]) : null;
    this.#previewBox.classList.toggle('show-video', video !== null);
    this.#deviceMessage.textContent = describeProblems(media.micProblem, media.cameraProblem);
    this.#deviceMessage.hidden = this.#deviceMessage.textContent === '';
  }

  #renderAvatar() {
    renderAvatar(this.#avatar, this.#name.value || '?', this.#name.value);
  }

  async #toggleMic() {
    const media = this.#media;
    if (!media) return;
    const on = !media.micOn;
    if (on) {
      try {
        await media.startMic();
      } catch {
        // startMic recorded the problem; #render explains it
      }
    } else {
      media.setMicEnabled(false);
    }
    savePrefs({ mic: media.micOn });
    this.#render();
    if (on) await this.#fillDeviceLists(); // labels appear once permission is granted
  }

  async #toggleCamera() {
    const media = this.#media;
    if (!media) return;
    if (media.cameraOn) {
      media.stopCamera();
    } else {
      try {
        await media.startCamera();
      } catch {
        // recorded in cameraProblem
      }
    }
    savePrefs({ camera: media.cameraOn });
    this.#render();
    if (media.cameraOn) await this.#fillDeviceLists();
  }

  async #switchMic() {
    const media = this.#media;
    if (!media) return;
    try {
      await media.switchMic(this.#micSelect.value);
      savePrefs({ micDeviceId: media.micDeviceId });
    } catch (err) {
      this.showError(err instanceof Error ? err.message : String(err));
    }
    this.#render();
  }

  async #switchCamera() {
    const media = this.#media;
    if (!media) return;
    try {
      await media.switchCamera(this.#cameraSelect.value);
      savePrefs({ cameraDeviceId: media.cameraDeviceId });
    } catch (err) {
      this.showError(err instanceof Error ? err.message : String(err));
    }
    this.#render();
  }

  /** Fills the device pickers; a picker with nothing to choose is hidden. */
  async #fillDeviceLists() {
    const media = this.#media;
    if (!media) return;
    const { mics, cameras, speakers } = await listDevices();
    fillDevices(this.#micSelect, mics, media.micDeviceId, 'Microphone');
    fillDevices(this.#cameraSelect, cameras, media.cameraDeviceId, 'Camera');
    fillDevices(this.#speakerSelect, speakers, loadPrefs().speakerDeviceId, 'Speaker');
    byId('mic-device-field').hidden = mics.length < 2;
    byId('camera-device-field').hidden = cameras.length < 2;
    byId('speaker-device-field').hidden = speakers.length < 2;
    byId('devices').hidden = mics.length < 2 && cameras.length < 2 && speakers.length < 2;
  }
}
