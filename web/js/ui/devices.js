// @ts-check
/**
 * The in-call device dialog: camera, microphone and speaker, switched live
 * (the new track replaces the old in the running connection) and
 * remembered for next time.
 *
 * @module
 */

import { DeviceError, listDevices } from '../local-media.js';
import { loadPrefs, savePrefs } from '../prefs.js';
import { byId } from './dom.js';
import { showToast } from './toast.js';

/**
 * Fills a device picker.
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {string} current the chosen device's id
 * @param {string} fallback label while the browser hides device names
 */
export function fillDevices(select, devices, current, fallback) {
  select.replaceChildren(...devices.map((d, i) => new Option(d.label || `${fallback} ${i + 1}`, d.deviceId)));
  if (devices.some((d) => d.deviceId === current)) select.value = current;
}

export class DeviceDialog {
  #media;
  #session;
  #tiles;
  #onChange;
  /** @type {Array<() => void>} */
  #offs = [];
  #dialog = /** @type {HTMLDialogElement} */ (byId('devices-dialog'));
  #camera = /** @type {HTMLSelectElement} */ (byId('call-camera'));
  #mic = /** @type {HTMLSelectElement} */ (byId('call-mic'));
  #speaker = /** @type {HTMLSelectElement} */ (byId('call-speaker'));

  /**
   * @param {object} parts
   * @param {import('../local-media.js').LocalMedia} parts.media
   * @param {import('../session.js').MediaSession} parts.session
   * @param {import('./tiles.js').TileGrid} parts.tiles
   * @param {() => void} parts.onChange the local tracks changed (redraw self)
   */
  constructor({ media, session, tiles, onChange }) {
    this.#media = media;
    this.#session = session;
    this.#tiles = tiles;
    this.#onChange = onChange;
    this.#on(byId('open-devices'), 'click', () => this.open());
    this.#on(this.#camera, 'change', () => this.#switch('video'));
    this.#on(this.#mic, 'change', () => this.#switch('audio'));
    this.#on(this.#speaker, 'change', () => {
      this.#tiles.setSpeaker(this.#speaker.value);
      savePrefs({ speakerDeviceId: this.#speaker.value });
    });
  }

  /**
   * @param {EventTarget} target
   * @param {string} type
   * @param {() => void} handler
   */
  #on(target, type, handler) {
    target.addEventListener(type, handler);
    this.#offs.push(() => target.removeEventListener(type, handler));
  }

  close() {
    this.#offs.forEach((off) => off());
    if (this.#dialog.open) this.#dialog.close();
  }

  async open() {
    const { mics, cameras, speakers } = await listDevices();
    fillDevices(this.#camera, cameras, this.#media.cameraDeviceId, 'Camera');
    fillDevices(this.#mic, mics, this.#media.micDeviceId, 'Microphone');
    fillDevices(this.#speaker, speakers, loadPrefs().speakerDeviceId, 'Speaker');
    byId('call-speaker-field').hidden = speakers.length === 0;
    this.#dialog.showModal();
  }

  /** @param {'audio' | 'video'} kind */
  async #switch(kind) {
    try {
      if (kind === 'video') {
        await this.#media.switchCamera(this.#camera.value);
        savePrefs({ cameraDeviceId: this.#media.cameraDeviceId });
      } else {
        await this.#media.switchMic(this.#mic.value);
        savePrefs({ micDeviceId: this.#media.micDeviceId });
      }
      await this.#session.refreshTracks();
    } catch (err) {
      showToast(err instanceof DeviceError ? err.message : 'The device could not be switched.');
    }
    this.#onChange();
  }
}
