// @ts-check
/**
 * One-to-one calls on any Parley page of a signed-in user: a signaling
 * connection that makes the user reachable (with presence: away while the
 * page is hidden, or do-not-disturb), the incoming-call notification with
 * ringtone, and the outgoing-call screen with the caller's own camera and
 * the ringback. An answered call continues in its room (`/r/<room>#call`).
 *
 * @module
 */

import { SignalingClient } from './protocol.js';
import { hangUpSound, ringback, ringtone } from './tones.js';
import { renderAvatar } from './ui/avatar.js';
import { byId } from './ui/dom.js';
import { Emitter } from './emitter.js';

/** @typedef {import('./protocol.js').PresenceStatus} PresenceStatus */
/** @typedef {import('./protocol.js').CallEndReason} CallEndReason */

const DND_KEY = 'parley.dnd';

/**
 * Words for why a call ended, for the caller or the callee.
 * @param {CallEndReason} reason
 * @param {string} other the other person's name
 */
export function endedMessage(reason, other) {
  switch (reason) {
    case 'declined': return `${other} declined the call.`;
    case 'no_answer': return `${other} did not answer.`;
    case 'busy': return `${other} is busy in another call or meeting.`;
    case 'dnd': return `${other} does not want to be disturbed right now.`;
    case 'offline': return `${other} is not online.`;
    case 'cancelled': return `${other} hung up.`;
    case 'answered_elsewhere': return 'You answered on another page.';
    case 'hung_up': return `${other} hung up.`;
    default: return 'The call ended.';
  }
}

/**
 * Shows `message` in the page's call notice ('' hides it).
 * @param {string} message
 */
function showNotice(message) {
  const notice = byId('call-notice');
  notice.textContent = message;
  notice.hidden = message === '';
}

/**
 * @typedef {object} CallCenterEvents
 * @property {{user: number, status: PresenceStatus}} presence
 */

/** @extends {Emitter<CallCenterEvents>} */
export class CallCenter extends Emitter {
  /** Known presence of others, by account id. @type {Map<number, PresenceStatus>} */
  presence = new Map();
  #client = new SignalingClient();
  /** @type {{id: number, name: string, stopTone: () => void} | null} */
  #incoming = null;
  /** @type {{id: number, name: string, stopTone: () => void, stream: MediaStream | null} | null} */
  #outgoing = null;
  #dnd = localStorage.getItem(DND_KEY) === '1';

  /** Connects and makes the user reachable. Resolves when connected. */
  async start() {
    const c = this.#client;
    c.on('presence', ({ user, status }) => {
      this.presence.set(user, status);
      this.emit('presence', { user, status });
    });
    c.on('incoming_call', (m) => this.#onIncoming(m));
    c.on('call_ringing', ({ call_id, to }) => {
      if (this.#outgoing) this.#outgoing.id = call_id;
      byId('outgoing-status').textContent = `Ringing ${to.name}…`;
    });
    c.on('call_accepted', ({ room }) => this.#goToCall(room));
    c.on('call_ended', ({ call_id, reason }) => this.#onEnded(call_id, reason));
    c.on('close', () => setTimeout(() => location.reload(), 5000));
    await c.connect();
    this.#sendPresence();
    document.addEventListener('visibilitychange', () => this.#sendPresence());
    byId('incoming-answer').addEventListener('click', () => this.#answer());
    byId('incoming-decline').addEventListener('click', () => this.#decline());
    byId('incoming-close').addEventListener('click', () => this.#decline());
    byId('incoming-call').addEventListener('cancel', (e) => {
      // Escape or closing the notification declines.
      e.preventDefault();
      this.#decline();
    });
    byId('outgoing-hangup').addEventListener('click', () => this.#hangUp());
  }

  get dnd() {
    return this.#dnd;
  }

  /** @param {boolean} on */
  setDnd(on) {
    this.#dnd = on;
    localStorage.setItem(DND_KEY, on ? '1' : '0');
    this.#sendPresence();
  }

  #sendPresence() {
    const status = this.#dnd ? 'dnd' : document.hidden ? 'away' : 'available';
    this.#client.send({ type: 'presence', status });
  }

  /**
   * Calls a user: shows the outgoing screen with one's own camera and plays
   * the ringback until an answer or an end.
   * @param {{id: number, name: string}} user
   * @param {boolean} video
   */
  async call(user, video) {
    if (this.#outgoing || this.#incoming) return;
    this.#outgoing = { id: 0, name: user.name, stopTone: ringback(), stream: null };
    renderAvatar(byId('outgoing-avatar'), user.name, String(user.id));
    byId('outgoing-name').textContent = user.name;
    byId('outgoing-status').textContent = `Calling ${user.name}…`;
    /** @type {HTMLDialogElement} */ (byId('outgoing-call')).showModal();
    document.body.dataset.call = 'outgoing';
    this.#client.send({ type: 'call', to: user.id, video });
    if (video) {
      try {
        const stream = await navigator.mediaDevices.getUserMedia({ video: true });
        if (this.#outgoing) {
          this.#outgoing.stream = stream;
          /** @type {HTMLVideoElement} */ (byId('outgoing-preview')).srcObject = stream;
        } else {
          stream.getTracks().forEach((t) => t.stop());
        }
      } catch {
        // no camera: the avatar shows
      }
    }
  }

  /** @param {import('./protocol.js').IncomingCallMessage} m */
  #onIncoming(m) {
    if (this.#incoming || this.#outgoing) return;
    this.#incoming = { id: m.call_id, name: m.from.name, stopTone: ringtone() };
    renderAvatar(byId('incoming-avatar'), m.from.name, String(m.from.id));
    byId('incoming-name').textContent = m.from.name;
    byId('incoming-kind').textContent = m.video ? 'Video call' : 'Audio call';
    /** @type {HTMLDialogElement} */ (byId('incoming-call')).showModal();
    document.body.dataset.call = 'incoming';
  }

  #answer() {
    if (!this.#incoming) return;
    this.#client.send({ type: 'call_answer', call_id: this.#incoming.id });
    this.#incoming.stopTone();
    byId('incoming-kind').textContent = 'Connecting…';
  }

  #decline() {
    if (!this.#incoming) return;
    this.#client.send({ type: 'call_decline', call_id: this.#incoming.id });
    this.#closeIncoming();
  }

  #hangUp() {
    if (!this.#outgoing) return;
    if (this.#outgoing.id) this.#client.send({ type: 'call_hangup', call_id: this.#outgoing.id });
    this.#closeOutgoing('');
  }

  #closeIncoming() {
    this.#incoming?.stopTone();
    this.#incoming = null;
    const dialog = /** @type {HTMLDialogElement} */ (byId('incoming-call'));
    if (dialog.open) dialog.close();
    delete document.body.dataset.call;
  }

  /** @param {string} message shown on the page ('' for none) */
  #closeOutgoing(message) {
    if (this.#outgoing) {
      this.#outgoing.stopTone();
      this.#outgoing.stream?.getTracks().forEach((t) => t.stop());
    }
    this.#outgoing = null;
    const dialog = /** @type {HTMLDialogElement} */ (byId('outgoing-call'));
    if (dialog.open) dialog.close();
    delete document.body.dataset.call;
    showNotice(message);
  }

  /**
   * @param {number} callId
   * @param {CallEndReason} reason
   */
  #onEnded(callId, reason) {
    if (this.#outgoing && (this.#outgoing.id === callId || callId === 0)) {
      const message = endedMessage(reason, this.#outgoing.name);
      hangUpSound();
      this.#closeOutgoing(message);
      document.body.dataset.callEnded = reason;
    } else if (this.#incoming && this.#incoming.id === callId) {
      const name = this.#incoming.name;
      this.#closeIncoming();
      if (reason !== 'declined' && reason !== 'answered_elsewhere') {
        hangUpSound();
        showNotice(reason === 'cancelled' || reason === 'no_answer'
          ? `You missed a call from ${name}.`
          : endedMessage(reason, name));
      }
      document.body.dataset.callEnded = reason;
    }
  }

  /** @param {string} room */
  #goToCall(room) {
    this.#incoming?.stopTone();
    this.#outgoing?.stopTone();
    this.#outgoing?.stream?.getTracks().forEach((t) => t.stop());
    location.assign(`/r/${encodeURIComponent(room)}#call`);
  }
}
