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
  /** How this participant's media reaches the server (shown to moderators). */
  path = '';
  /** The last connection quality shown. @type {{level: string, detail: string} | null} */
  quality = null;

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
    this.badges = /** @type {HTMLElement | null} */ (root.querySelector('.tile-badges'));
    this.reaction = /** @type {HTMLElement | null} */ (root.querySelector('.tile-reaction'));
    /** The large tile of this participant's shared screen, while there is one. @type {HTMLElement | null} */
    this.screen = null;
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
    this.element.setAttribute('aria-label', participant.reconnecting ? `${participant.name} (reconnecting)` : participant.name);
    this.element.classList.toggle('reconnecting', Boolean(participant.reconnecting));
    this.element.dataset.role = participant.role ?? 'participant';
    this.element.classList.toggle('hand-raised', participant.hand != null);
    if (this.badges) {
      const badges = [];
      if (participant.reconnecting) badges.push('reconnecting…');
      if (participant.hand != null) badges.push('✋');
      if (participant.role === 'moderator') badges.push('★');
      else if (participant.role === 'presenter') badges.push('▶');
      this.badges.textContent = badges.join(' ');
    }
    renderAvatar(this.avatar, participant.name, participant.id);
    this.#showVideoOrAvatar();
  }

  /**
   * Points the video element at the current tracks. A new MediaStream is
   * built on every change: browsers reliably pick up a new `srcObject`,
   * less so tracks added to a stream already playing.
   * @param {(err: unknown) => void} onPlayFailed
   * @param {HTMLElement | null} [stage] where a shared screen is shown
   */
  refreshMedia(onPlayFailed, stage = null) {
    const all = [...this.tracks].filter((t) => t.readyState === 'live');
    const screenId = this.participant.screen ? `${this.participant.id}-${this.participant.screen}` : null;
    const screenTrack = all.find((t) => t.kind === 'video' && t.id === screenId) ?? null;
    const live = all.filter((t) => t !== screenTrack);
    this.#showScreen(screenTrack, stage, onPlayFailed);
    this.video.srcObject = live.length > 0 ? new MediaStream(live) : null;
    this.#showVideoOrAvatar();
    if (live.length > 0) {
      this.video.play().catch((err) => {
        // AbortError: a newer srcObject replaced this one; nothing is wrong.
        if (!(err instanceof DOMException && err.name === 'AbortError')) onPlayFailed(err);
      });
    }
  }

  /**
   * @param {MediaStreamTrack | null} track
   * @param {HTMLElement | null} stage
   * @param {(err: unknown) => void} onPlayFailed
   */
  #showScreen(track, stage, onPlayFailed) {
    if (!track || !stage) {
      this.screen?.remove();
      this.screen = null;
      if (stage) stage.hidden = stage.childElementCount === 0;
      return;
    }
    if (!this.screen) {
      const box = document.createElement('div');
      box.className = 'screen-tile';
      box.dataset.participantId = this.participant.id;
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      video.muted = true; // its sound, if any, plays in the person's tile
      const label = document.createElement('span');
      label.className = 'tile-name';
      box.append(video, label);
      stage.append(box);
      this.screen = box;
    }
    const label = this.screen.querySelector('.tile-name');
    if (label) label.textContent = `${this.participant.name}'s screen`;
    const video = /** @type {HTMLVideoElement} */ (this.screen.querySelector('video'));
    const current = video.srcObject instanceof MediaStream ? video.srcObject.getVideoTracks()[0] : null;
    if (current !== track) {
      video.srcObject = new MediaStream([track]);
      video.play().catch((err) => {
        if (!(err instanceof DOMException && err.name === 'AbortError')) onPlayFailed(err);
      });
    }
    stage.hidden = false;
  }

  /**
   * Shows a reaction on the tile for a moment.
   * @param {string} emoji
   */
  react(emoji) {
    if (!this.reaction) return;
    const span = document.createElement('span');
    span.className = 'reaction-pop';
    span.textContent = emoji;
    this.reaction.append(span);
    setTimeout(() => span.remove(), 2500);
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
  /** @type {HTMLElement | null} */
  #stage;
  /** The chosen speaker ('' for the default). */
  #sinkId = '';

  /**
   * @param {HTMLElement} container the grid element
   * @param {HTMLTemplateElement} template whose first element is a tile
   * @param {(err: unknown) => void} onPlayFailed called when a video refuses
   *   to play, typically because the browser blocked sound without a click
   * @param {HTMLElement | null} [stage] where shared screens are shown large
   */
  constructor(container, template, onPlayFailed, stage = null) {
    this.#stage = stage;
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
      const screenChanged = existing.participant.screen !== participant.screen;
      existing.update(participant);
      if (screenChanged) existing.refreshMedia(this.#onPlayFailed, this.#stage);
      return;
    }
    const tile = new Tile(this.#template, participant, isSelf);
    this.#tiles.set(participant.id, tile);
    if (this.#sinkId && !isSelf) applySink(tile.video, this.#sinkId);
    if (isSelf) this.#container.prepend(tile.element);
    else this.#container.append(tile.element);
    const waiting = this.#pending.get(participant.id);
    if (waiting) {
      this.#pending.delete(participant.id);
      waiting.forEach((track) => tile.tracks.add(track));
      tile.refreshMedia(this.#onPlayFailed, this.#stage);
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
    tile.screen?.remove();
    if (this.#stage) this.#stage.hidden = this.#stage.childElementCount === 0;
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
    // A newer track from the same source (the same track id) replaces the old.
    for (const old of tile.tracks) if (old.id === track.id) tile.tracks.delete(old);
    tile.tracks.add(track);
    tile.refreshMedia(this.#onPlayFailed, this.#stage);
  }

  /**
   * @param {string} id participant id
   * @param {MediaStreamTrack} track
   */
  removeTrack(id, track) {
    this.#pending.get(id)?.delete(track);
    const tile = this.#tiles.get(id);
    if (!tile || !tile.tracks.delete(track)) return;
    tile.refreshMedia(this.#onPlayFailed, this.#stage);
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
    tile.refreshMedia(this.#onPlayFailed, this.#stage);
  }

  /**
   * Plays everyone's sound on the speaker `deviceId` ('' for the default).
   * @param {string} deviceId
   */
  setSpeaker(deviceId) {
    this.#sinkId = deviceId;
    for (const tile of this.#tiles.values()) if (!tile.isSelf) applySink(tile.video, deviceId);
  }

  /**
   * Marks the active speaker's tile (and features it in speaker view).
   * @param {string | null} id
   */
  setSpeaking(id) {
    for (const [tileId, tile] of this.#tiles) tile.element.classList.toggle('speaking', tileId === id);
  }

  /**
   * Shows a participant's connection quality on their tile.
   * @param {string} id
   * @param {{level: string, detail: string}} quality
   */
  setQuality(id, quality) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    tile.quality = quality;
    this.#renderQuality(tile);
  }

  /**
   * Shows how a participant's media reaches the server (a moderator's view
   * of the others, from `connection_stats`).
   * @param {string} id
   * @param {string} path e.g. "via TURN over TLS, round trip 42 ms, loss 0.5%"
   * @param {string} kind the path's short name, for styles and tests
   */
  setPath(id, path, kind) {
    const tile = this.#tiles.get(id);
    if (!tile) return;
    tile.path = path;
    tile.element.dataset.path = kind;
    this.#renderQuality(tile);
  }

  /** @param {Tile} tile */
  #renderQuality(tile) {
    if (tile.quality) tile.element.dataset.quality = tile.quality.level;
    const dot = tile.element.querySelector('.tile-quality');
    if (!dot) return;
    const parts = [];
    if (tile.quality) parts.push(`Connection ${tile.quality.level}: ${tile.quality.detail}`);
    if (tile.path) parts.push(`Media ${tile.path}`);
    dot.setAttribute('title', parts.join('. '));
    dot.setAttribute('aria-label', tile.quality ? `Connection ${tile.quality.level}` : 'Connection');
  }

  /**
   * Grid view (everyone the same size) or speaker view (the active speaker large).
   * @param {'grid' | 'speaker'} view
   */
  setView(view) {
    this.#container.classList.toggle('speaker-view', view === 'speaker');
  }

  /**
   * Shows a reaction on a participant's tile.
   * @param {string} id
   * @param {string} emoji
   */
  react(id, emoji) {
    this.#tiles.get(id)?.react(emoji);
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

/**
 * Routes a media element's sound to an output device, where the browser can.
 * @param {HTMLMediaElement} element
 * @param {string} deviceId
 */
function applySink(element, deviceId) {
  const withSink = /** @type {HTMLMediaElement & {setSinkId?: (id: string) => Promise<void>}} */ (element);
  withSink.setSinkId?.(deviceId).catch((err) => console.warn('parley: speaker not available', err));
}
