// @ts-check
/**
 * The grid of participant tiles: one per person in the call, yourself
 * included. A tile is `<div class="tile" data-participant-id="p…">` holding a
 * `<video>` (which also plays the person's audio), an avatar shown while
 * their camera is off, and a label with their name and a muted-mic icon.
 *
 * Tiles are keyed by participant id. Tracks and participant announcements
 * arrive on different paths (WebRTC vs. signaling) in no guaranteed order,
 * so tracks for a participant not yet announced wait until they are.
 *
 * @module
 */

import { renderAvatar } from './avatar.js';

/** @typedef {import('../protocol.js').Participant} Participant */

class Tile {
  /** @type {Set<MediaStreamTrack>} */
  tracks = new Set();

  /**
   * @param {HTMLTemplateElement} template
   * @param {Participant} participant
   * @param {boolean} isSelf
   */
  constructor(template, participant, isSelf) {
    const root = /** @type {HTMLElement} */ (
      /** @type {DocumentFragment} */ (template.content.cloneNode(true)).firstElementChild
    );
    this.element = root;
    this.video = /** @type {HTMLVideoElement} */ (root.querySelector('video'));
    this.avatar = /** @type {HTMLElement} */ (root.querySelector('.avatar'));
    this.name = /** @type {HTMLElement} */ (root.querySelector('.tile-name'));
    this.isSelf = isSelf;
    this.participant = participant;
    root.dataset.participantId = participant.id;
    root.classList.add(isSelf ? 'self' : 'remote');
    // Yourself: muted so you do not hear yourself, mirrored like a mirror.
    // Others: never muted; their audio plays through this element.
    this.video.muted = isSelf;
    this.update(participant);
  }

  /** @param {Participant} participant */
  update(participant) {
    this.participant = participant;
    this.name.textContent = this.isSelf ? `${participant.name} (you)` : participant.name;
    // Both as attributes (for styles) and classes (for simple selectors).
    this.element.dataset.mic = participant.mic ? 'on' : 'off';
    this.element.dataset.camera = participant.camera ? 'on' : 'off';
    this.element.classList.toggle('mic-off', !participant.mic);
    this.element.classList.toggle('camera-off', !participant.camera);
    this.element.setAttribute('aria-label', participant.name);
    renderAvatar(this.avatar, participant.name, participant.id);
    this.#showVideoOrAvatar();
  }

  /**
   * Points the video element at the current tracks. A new MediaStream is
   * built on every change: browsers reliably pick up a new `srcObject`,
   * less so tracks added to a stream already playing.
   * @param {(err: unknown) => void} onPlayFailed
   */
  refreshMedia(onPlayFailed) {
    const live = [...this.tracks].filter((t) => t.readyState === 'live');
    this.video.srcObject = live.length > 0 ? new MediaStream(live) : null;
    this.#showVideoOrAvatar();
    if (live.length > 0) {
      this.video.play().catch((err) => {
        // AbortError: a newer srcObject replaced this one; nothing is wrong.
        if (!(err instanceof DOMException && err.name === 'AbortError')) onPlayFailed(err);
      });
    }
  }

  #showVideoOrAvatar() {
    const hasVideo = [...this.tracks].some((t) => t.kind === 'video' && t.readyState === 'live');
    this.element.classList.toggle('show-video', this.participant.camera && hasVideo);
  }
}

export class TileGrid {
  /** @type {Map<string, Tile>} */
  #tiles = new Map();
  /** @type {Map<string, Set<MediaStreamTrack>>} */
  #pending = new Map();
  #container;
  #template;
  #onPlayFailed;

  /**
   * @param {HTMLElement} container the grid element
   * @param {HTMLTemplateElement} template whose first element is a tile
   * @param {(err: unknown) => void} onPlayFailed called when a video refuses
   *   to play, typically because the browser blocked sound without a click
   */
  constructor(container, template, onPlayFailed) {
    this.#container = container;
    this.#template = template;
    this.#onPlayFailed = onPlayFailed;
  }

  /** Number of tiles, yourself included. */
  get size() {
    return this.#tiles.size;
  }

  /**
   * Adds a tile for `participant`, or updates the name and mic/camera state
   * of an existing one.
   * @param {Participant} participant
   * @param {boolean} [isSelf]
   */
  upsert(participant, isSelf = false) {
    const existing = this.#tiles.get(participant.id);
    if (existing) {
      existing.update(participant);
      return;
    }
    const tile = new Tile(this.#template, participant, isSelf);
    this.#tiles.set(participant.id, tile);
    if (isSelf) this.#container.prepend(tile.element);
    else this.#container.append(tile.element);
    const waiting = this.#pending.get(participant.id);
    if (waiting) {
      this.#pending.delete(participant.id);
      waiting.forEach((track) => tile.tracks.add(track));
      tile.refreshMedia(this.#onPlayFailed);
    }
    this.#updateCount();
  }

  /**
   * Removes a participant's tile at once, whatever media is still attached.
   * @param {string} id
   */
  remove(id) {
    this.#pending.delete(id);
    const tile = this.#tiles.get(id);
    if (!tile) return;
    tile.video.srcObject = null;
    tile.element.remove();
    this.#tiles.delete(id);
    this.#updateCount();
  }

  /**
   * @param {string} id participant id
   * @param {MediaStreamTrack} track
   */
  addTrack(id, track) {
    const tile = this.#tiles.get(id);
    if (!tile) {
      const waiting = this.#pending.get(id) ?? new Set();
      waiting.add(track);
      this.#pending.set(id, waiting);
      return;
    }
    // One track per kind: a newer track of the same kind replaces the old.
    for (const old of tile.tracks) if (old.kind === track.kind) tile.tracks.delete(old);
    tile.tracks.add(track);
    tile.refreshMedia(this.#onPlayFailed);
  }

  /**
   * @param {string} id participant id
   * @param {MediaStreamTrack} track
   */
  removeTrack(id, track) {
    this.#pending.get(id)?.delete(track);
    const tile = this.#tiles.get(id);
    if (!tile || !tile.tracks.delete(track)) return;
    tile.refreshMedia(this.#onPlayFailed);
  }

  /**
   * Shows the local camera in your own tile (video only; your own audio is
   * never played back).
   * @param {string} id your participant id
   * @param {MediaStreamTrack | null} track
   */
  setSelfVideo(id, track) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    tile.tracks.clear();
    if (track) tile.tracks.add(track);
    tile.refreshMedia(this.#onPlayFailed);
  }

  /** Tries again to start every video, after a click unblocked autoplay. */
  resumePlayback() {
    for (const tile of this.#tiles.values()) {
      if (tile.video.srcObject) tile.video.play().catch(() => {});
    }
  }

  /** Removes every tile. */
  clear() {
    for (const id of [...this.#tiles.keys()]) this.remove(id);
    this.#pending.clear();
  }

  #updateCount() {
    // The stylesheet sizes the grid by how many tiles it holds.
    this.#container.dataset.count = String(Math.min(this.#tiles.size, 5));
  }
}
