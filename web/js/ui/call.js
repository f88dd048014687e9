// @ts-check
/**
 * One joined call, from `joined` until it ends: keeps the participant list
 * and the tiles in step with signaling and media, and runs the mic, camera
 * and leave controls.
 *
 * When the WebSocket drops, the call keeps going: it shows "Reconnecting…",
 * opens a new connection and resumes its place in the room (`resume`), and
 * restarts ICE; the others saw it as reconnecting, never as gone. If the
 * place is gone (the server restarted, or the grace period ended) the call
 * ends with `rejoin` and the page joins afresh by itself. When the call
 * ends (leave, lost connection) it tears everything down and reports how it
 * ended; the page (room.js) decides what to show next.
 *
 * @module
 */

import { DeviceError } from '../local-media.js';
import { savePrefs } from '../prefs.js';
import { byId, setToggle } from './dom.js';
import { DeviceDialog } from './devices.js';
import { MeetingTools } from './meeting.js';
import { QualityMonitor, describePath, rate } from './quality.js';
import { clearToasts, showToast } from './toast.js';

/** @typedef {import('../protocol.js').SignalingClient} SignalingClient */
/** @typedef {import('../protocol.js').JoinedMessage} JoinedMessage */
/** @typedef {import('../protocol.js').Participant} Participant */
/** @typedef {import('../protocol.js').ErrorMessage} ErrorMessage */
/** @typedef {import('../session.js').MediaSession} MediaSession */
/** @typedef {import('../local-media.js').LocalMedia} LocalMedia */
/** @typedef {import('./tiles.js').TileGrid} TileGrid */

/**
 * How a call ended: the user left, the connection was lost, a moderator
 * removed us, or ended the meeting.
 * `rejoin`: the connection came back but the place in the room was gone.
 * @typedef {'left' | 'connection-lost' | 'removed' | 'ended' | 'call-ended' | 'rejoin'} CallEnd
 */

/**
 * Server errors that need no words for the user:
 * - `no_pending_offer`: our answer crossed a subscribe offer the server had
 *   withdrawn; its next offer recovers.
 * - `bad_candidate`: the server could not use one of our ICE candidates;
 *   the others (or its own checks) still connect us.
 */
const QUIET_ERRORS = new Set(['no_pending_offer', 'bad_candidate']);

/** How long `leave` waits for the server's `left` before closing anyway. */
const LEAVE_TIMEOUT_MS = 2000;
/** How often the connection is checked with a `ping`, and how long the `pong` may take. */
const WATCHDOG_INTERVAL_MS = 10_000;
const PONG_TIMEOUT_MS = 8_000;
/** Waits between reconnection attempts: doubling from the first to the last. */
const RECONNECT_FIRST_DELAY_MS = 500;
const RECONNECT_MAX_DELAY_MS = 4_000;
/** How long one connection attempt may take. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Our media path is reported to the server when it changes, else this often. */
const PATH_REPORT_INTERVAL_MS = 30_000;
/** After this long without a connection, the call ends as lost. */
const RECONNECT_GIVE_UP_MS = 120_000;

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));

export class Call {
  /** Everyone else in the room, by id, in order of arrival. @type {Map<string, Participant>} */
  participants = new Map();
  /** @type {Participant} */
  self;
  ended = false;

  #signaling;
  #session;
  #media;
  #tiles;
  #onEnd;
  /** @type {Array<() => void>} */
  #offs = [];
  #micButton = /** @type {HTMLButtonElement} */ (byId('toggle-mic'));
  #cameraButton = /** @type {HTMLButtonElement} */ (byId('toggle-camera'));
  /** A device toggle is in progress; a second click waits for it. */
  #busy = false;
  /** @type {MeetingTools} */
  tools;
  /** Who removed us or ended the meeting, for the page to say. */
  endedBy = '';
  /** The secret that resumes our place on a new connection. */
  #token = '';
  /** A reconnection is under way. */
  reconnecting = false;

  /**
   * Wires the call to signaling and media. Call this as soon as `joined`
   * arrives; {@link MediaSession#start} is called here.
   *
   * @param {object} parts
   * @param {SignalingClient} parts.signaling
   * @param {MediaSession} parts.session
   * @param {LocalMedia} parts.media
   * @param {TileGrid} parts.tiles
   * @param {JoinedMessage} parts.joined
   * @param {(how: CallEnd) => void} parts.onEnd
   */
  constructor({ signaling, session, media, tiles, joined, onEnd }) {
    this.#signaling = signaling;
    this.#session = session;
    this.#media = media;
    this.#tiles = tiles;
    this.#onEnd = onEnd;
    // Our own state is what the devices say, whatever the server echoed.
    this.self = { ...joined.self, mic: media.micOn, camera: media.cameraOn };
    for (const p of joined.participants) this.participants.set(p.id, p);
    this.#token = joined.resume_token ?? '';

    this.#offs.push(
      signaling.on('participant_joined', ({ participant }) => this.#upsert(participant)),
      signaling.on('participant_updated', ({ participant }) => {
        if (participant.id === this.self.id) {
          // Role, hand and share come from the server; devices stay ours.
          this.self = { ...participant, mic: this.#media.micOn, camera: this.#media.cameraOn };
          this.#tiles.upsert(this.self, true);
          this.tools.render();
        } else {
          this.#upsert(participant);
        }
      }),
      signaling.on('active_speaker', ({ id }) => tiles.setSpeaking(id)),
      // A one-to-one call is over when the other side leaves.
      signaling.on('call_ended', ({ reason }) => {
        if (reason === 'hung_up') this.leave('call-ended');
      }),
      signaling.on('removed', ({ reason, by }) => {
        this.endedBy = by;
        this.#end(reason === 'ended' ? 'ended' : 'removed');
      }),
      signaling.on('participant_left', ({ id }) => this.#remove(id)),
      signaling.on('error', (err) => this.#onServerError(err)),
      signaling.on('close', ({ expected }) => {
        if (expected || this.reconnecting) return;
        if (this.#token) this.#reconnect();
        else this.#end('connection-lost');
      }),
      session.on('track', ({ participantId, track }) => tiles.addTrack(participantId, track)),
      session.on('trackended', ({ participantId, track }) => tiles.removeTrack(participantId, track)),
      session.on('error', ({ message, cause }) => {
        if (cause) console.warn('parley:', message, cause);
        showToast(message);
      }),
      media.on('ended', ({ kind }) => this.#onDeviceEnded(kind)),
    );

    const onMic = () => this.#toggleMic();
    const onCamera = () => this.#toggleCamera();
    const onLeave = () => this.leave();
    this.#micButton.addEventListener('click', onMic);
    this.#cameraButton.addEventListener('click', onCamera);
    byId('leave').addEventListener('click', onLeave);
    this.#offs.push(() => {
      this.#micButton.removeEventListener('click', onMic);
      this.#cameraButton.removeEventListener('click', onCamera);
      byId('leave').removeEventListener('click', onLeave);
    });

    this.tools = new MeetingTools({
      signaling,
      session,
      joined,
      self: () => this.self,
      people: () => this.participants,
      onSelfMuted: () => {
        if (this.#media.micOn) this.#session.setMicEnabled(false).then(() => {
          if (!this.ended) this.#renderSelf();
        }, () => {});
      },
      onTileReaction: (id, emoji) => tiles.react(id, emoji),
    });
    this.#offs.push(() => this.tools.close());
    const quality = new QualityMonitor(
      session,
      this.self.id,
      (id, q) => tiles.setQuality(id, q),
      (report) => this.#reportPath(report),
    );
    this.#offs.push(() => quality.stop());
    this.#offs.push(signaling.on('connection_stats', (m) => {
      tiles.setPath(m.participant, describePath(m), m.path);
    }));
    const devices = new DeviceDialog({ media, session, tiles, onChange: () => this.#renderSelf() });
    this.#offs.push(() => devices.close());
    const watchdog = setInterval(() => this.#checkConnection(), WATCHDOG_INTERVAL_MS);
    this.#offs.push(() => clearInterval(watchdog));
    const viewButton = byId('toggle-view');
    const onView = () => {
      const speaker = viewButton.getAttribute('aria-pressed') !== 'true';
      viewButton.setAttribute('aria-pressed', String(speaker));
      tiles.setView(speaker ? 'speaker' : 'grid');
      savePrefs({ view: speaker ? 'speaker' : 'grid' });
    };
    viewButton.addEventListener('click', onView);
    this.#offs.push(() => viewButton.removeEventListener('click', onView));

    tiles.clear();
    tiles.upsert(this.self, true);
    tiles.setSelfVideo(this.self.id, media.videoTrack);
    for (const p of this.participants.values()) tiles.upsert(p);
    this.#renderControls();
    this.#renderCount();

    session.start(joined).catch((err) => {
      console.warn('parley: media did not start', err);
      showToast('Your camera and microphone could not be connected.');
    });
  }

  /**
   * Leaves the room: tells the server, closes both peer connections, stops
   * the camera and microphone, and ends the call. The WebSocket is closed
   * once the server has acknowledged (or after a short wait).
   */
  leave(how = /** @type {CallEnd} */ ('left')) {
    if (this.ended) return;
    const signaling = this.#signaling;
    const acknowledged = signaling.leave().catch(() => {});
    const waited = new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS));
    this.#end(how);
    Promise.race([acknowledged, waited]).then(() => signaling.close());
  }

  /**
   * Hangs up without waiting, e.g. when the page is being closed.
   */
  abandon() {
    if (this.ended) return;
    // `leave` first: a connection that merely closes keeps its place for
    // the reconnection grace period, and the others would see "reconnecting".
    this.#signaling.send({ type: 'leave' });
    this.#signaling.close();
    this.#end('left');
  }

  /** The last path report sent, and when. @type {{key: string, at: number}} */
  #lastReport = { key: '', at: 0 };

  /**
   * Tells the server how our media reaches it: at once when the path or
   * the quality level changes, else every {@link PATH_REPORT_INTERVAL_MS}.
   * @param {import('./quality.js').PathReport} report
   */
  #reportPath(report) {
    if (this.ended || this.reconnecting) return;
    const key = `${report.path}/${rate(report.loss_permille / 10, report.rtt_ms)}`;
    const now = Date.now();
    if (key === this.#lastReport.key && now - this.#lastReport.at < PATH_REPORT_INTERVAL_MS) return;
    if (this.#signaling.send({ type: 'connection', ...report })) this.#lastReport = { key, at: now };
  }

  /**
   * Pings the server; a connection that does not answer in time is given
   * up (a network that changed or dropped leaves the socket looking open).
   */
  async #checkConnection() {
    if (this.ended || this.reconnecting || !this.#signaling.isOpen) return;
    const answered = await Promise.race([
      this.#signaling.ping().then(() => true, () => true),
      sleep(PONG_TIMEOUT_MS).then(() => false),
    ]);
    if (!answered && !this.ended && !this.reconnecting) {
      console.warn('parley: the server stopped answering; reconnecting');
      this.#signaling.drop();
    }
  }

  /**
   * The connection dropped: keep the call on screen, connect again and
   * resume our place, retrying until it works or {@link RECONNECT_GIVE_UP_MS}.
   */
  async #reconnect() {
    this.reconnecting = true;
    this.#showReconnecting(true);
    const giveUp = Date.now() + RECONNECT_GIVE_UP_MS;
    let delay = RECONNECT_FIRST_DELAY_MS;
    while (!this.ended && Date.now() < giveUp) {
      try {
        // A connection attempt into a dead network can hang for long: cut it short.
        const opened = await Promise.race([
          this.#signaling.reopen().then(() => true),
          sleep(CONNECT_TIMEOUT_MS).then(() => false),
        ]);
        if (!opened) {
          this.#signaling.drop();
          throw new Error('connection attempt timed out');
        }
        const joined = await this.#signaling.resume(this.self.id, this.#token);
        if (this.ended) return;
        this.#resumed(joined);
        return;
      } catch (err) {
        if (this.ended) return;
        if (err instanceof Error && 'code' in err && err.code === 'resume_failed') {
          // Our place is gone (the server restarted): join again.
          this.#end('rejoin');
          return;
        }
        await sleep(delay);
        delay = Math.min(delay * 2, RECONNECT_MAX_DELAY_MS);
      }
    }
    this.#end('connection-lost');
  }

  /**
   * Back in the room: the participant list as it is now, our media state
   * told again, ICE restarted on the publish connection.
   * @param {JoinedMessage} joined
   */
  #resumed(joined) {
    this.reconnecting = false;
    this.#showReconnecting(false);
    this.#token = joined.resume_token || this.#token;
    const present = new Set(joined.participants.map((p) => p.id));
    for (const id of [...this.participants.keys()]) {
      if (!present.has(id)) this.#remove(id);
    }
    for (const p of joined.participants) this.#upsert(p);
    this.self = { ...joined.self, mic: this.#media.micOn, camera: this.#media.cameraOn };
    this.#renderSelf();
    this.#session.restartIce().catch(() => {});
    this.#syncMedia(joined.self);
    // The path may have changed with the network: report it afresh.
    this.#lastReport = { key: '', at: 0 };
  }

  /**
   * After a resume: the server's view of our microphone and camera against
   * ours. A microphone on here but off there was muted by a moderator while
   * we were away (or our unmute was lost): it goes off here too, rather
   * than on again behind the moderator's back. Otherwise ours is told again.
   * @param {Participant} server
   */
  async #syncMedia(server) {
    if (this.#media.micOn && (!server.mic || server.mic_locked)) {
      try {
        await this.#session.setMicEnabled(false);
      } catch {
        // turning off cannot fail in a way worth reporting
      }
      if (this.ended) return;
      savePrefs({ mic: false });
      this.#renderSelf();
      showToast('Your microphone was muted while you were reconnecting.', { kind: 'info' });
    }
    this.#signaling.send({ type: 'media', mic: this.#media.micOn, camera: this.#media.cameraOn });
  }

  /** @param {boolean} on */
  #showReconnecting(on) {
    let banner = document.getElementById('reconnect-banner');
    if (on && !banner) {
      banner = document.createElement('div');
      banner.id = 'reconnect-banner';
      banner.className = 'reconnect-banner';
      banner.setAttribute('role', 'status');
      banner.textContent = 'Connection lost. Reconnecting…';
      document.body.append(banner);
    }
    if (!on) banner?.remove();
    if (on) document.body.dataset.reconnecting = 'true';
    else delete document.body.dataset.reconnecting;
  }

  /** @param {CallEnd} how */
  #end(how) {
    if (this.ended) return;
    this.ended = true;
    this.reconnecting = false;
    this.#showReconnecting(false);
    this.#offs.forEach((off) => off());
    this.#session.close();
    this.#media.stopAll();
    if (how !== 'left') this.#signaling.close();
    this.#tiles.clear();
    clearToasts();
    this.#onEnd(how);
  }

  /** @param {Participant} participant */
  #upsert(participant) {
    if (participant.id === this.self.id) return;
    this.participants.set(participant.id, participant);
    this.#tiles.upsert(participant);
    this.#renderCount();
    this.tools?.render();
  }

  /** @param {string} id */
  #remove(id) {
    this.participants.delete(id);
    this.#tiles.remove(id);
    this.#renderCount();
    this.tools?.render();
  }

  /** @param {ErrorMessage} err */
  #onServerError(err) {
    // A join in flight handles its own errors; the media session reports a
    // refused publish offer itself, in words about the user's media.
    if (err.in_reply_to === 'join' || err.in_reply_to === 'offer') return;
    if (QUIET_ERRORS.has(err.code)) {
      console.warn(`parley: server error ${err.code}: ${err.message}`);
      return;
    }
    if (err.code === 'media_failed') {
      showToast('Your media connection failed. Leave and join again to reconnect.');
      return;
    }
    showToast(err.message || `Server error: ${err.code}`);
  }

  async #toggleMic() {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#session.setMicEnabled(!this.#media.micOn);
    } catch (err) {
      showToast(err instanceof DeviceError ? err.message : 'The microphone could not be changed.');
    } finally {
      this.#busy = false;
    }
    if (this.ended) return;
    savePrefs({ mic: this.#media.micOn });
    this.#renderSelf();
  }

  async #toggleCamera() {
    if (this.#busy) return;
    this.#busy = true;
    try {
      await this.#session.setCameraEnabled(!this.#media.cameraOn);
    } catch (err) {
      showToast(err instanceof DeviceError ? err.message : 'The camera could not be changed.');
    } finally {
      this.#busy = false;
    }
    if (this.ended) return;
    savePrefs({ camera: this.#media.cameraOn });
    this.#renderSelf();
  }

  /**
   * A device stopped on its own (unplugged, permission revoked): show it as
   * off, and tell the room.
   * @param {'audio' | 'video'} kind
   */
  async #onDeviceEnded(kind) {
    try {
      if (kind === 'video') await this.#session.setCameraEnabled(false);
      else await this.#session.setMicEnabled(false);
    } catch {
      // turning off cannot fail in a way worth reporting
    }
    if (this.ended) return;
    showToast(kind === 'video' ? 'Your camera stopped.' : 'Your microphone stopped.');
    this.#renderSelf();
  }

  #renderSelf() {
    this.self = { ...this.self, mic: this.#media.micOn, camera: this.#media.cameraOn };
    this.#tiles.upsert(this.self, true);
    this.#tiles.setSelfVideo(this.self.id, this.#media.videoTrack);
    this.#renderControls();
  }

  #renderControls() {
    setToggle(this.#micButton, this.#media.micOn, 'microphone');
    setToggle(this.#cameraButton, this.#media.cameraOn, 'camera');
  }

  #renderCount() {
    const n = this.participants.size + 1;
    byId('participant-count').textContent = n === 1 ? 'Just you' : `${n} people`;
  }
}
