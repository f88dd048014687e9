// @ts-check
/**
 * The WebRTC half of a call: the participant's two peer connections, driven
 * by the signaling messages of protocol.md. No DOM: the UI listens to the
 * events this emits and calls the camera/mic methods.
 *
 * - `publishPc` carries the local camera and microphone to the server. The
 *   client offers; the server answers. It exists only when there is something
 *   to publish (a listen-only participant never publishes).
 * - `subscribePc` carries everyone else's media. The server offers whenever
 *   the set of tracks changes; the client answers, one offer at a time.
 *
 * Because each side only offers on its own connection, offers never collide.
 *
 * @module
 */

import { Emitter } from './emitter.js';
import { SignalingError } from './protocol.js';
import { streamIdsByMid } from './sdp.js';

/** @typedef {import('./protocol.js').SignalingClient} SignalingClient */
/** @typedef {import('./protocol.js').JoinedMessage} JoinedMessage */
/** @typedef {import('./protocol.js').PcName} PcName */
/** @typedef {import('./protocol.js').ServerOfferMessage} ServerOfferMessage */
/** @typedef {import('./local-media.js').LocalMedia} LocalMedia */

/**
 * The video encodings offered for simulcast, lowest first: the SFU picks a
 * layer per receiver according to its bandwidth and tile size.
 * @type {ReadonlyArray<RTCRtpEncodingParameters>}
 */
export const SIMULCAST_ENCODINGS = Object.freeze([
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
]);

/** How long to wait for the server's `answer` to a publish offer. */
const PUBLISH_ANSWER_TIMEOUT_MS = 15_000;

/**
 * @typedef {object} RemoteTrack
 * @property {string} participantId the publisher, from the track's stream id
 * @property {MediaStreamTrack} track
 */

/**
 * @typedef {object} SessionEvents
 * @property {RemoteTrack} track        a remote participant's track arrived
 * @property {RemoteTrack} trackended   a remote track went away (m-line stopped, participant left)
 * @property {{pc: PcName, state: RTCPeerConnectionState}} connectionstate
 * @property {{message: string, cause?: unknown}} error something the user should hear about
 */

/**
 * @extends {Emitter<SessionEvents>}
 */
export class MediaSession extends Emitter {
  /** @type {RTCPeerConnection | null} own media → server; null until there is something to publish */
  publishPc = null;
  /** @type {RTCPeerConnection | null} others' media → us; created by {@link start} */
  subscribePc = null;

  #signaling;
  #media;
  /** @type {RTCIceServer[]} */
  #iceServers = [];
  /** @type {RTCIceTransportPolicy} */
  #icePolicy = 'all';
  #closed = false;
  /** @type {Array<() => void>} */
  #offs = [];
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #sizeTimer;
  /** The tile sizes last sent, to send only changes. */
  #sentSizes = '';

  /** Resolves once {@link start} has created the subscribe connection. @type {Promise<void>} */
  #ready;
  /** @type {() => void} */
  #markReady = () => {};

  /** Subscribe offers are handled strictly one after another on this chain. */
  #subscribeChain = Promise.resolve();
  /** Number of the newest subscribe offer received, to skip superseded ones. */
  #offerSeq = 0;
  /** A queued offer asked for a new subscribe connection. */
  #renewPending = false;

  /** Publish negotiations likewise run one at a time. */
  #publishChain = Promise.resolve();
  /** @type {{resolve: (sdp: string) => void, reject: (err: Error) => void} | null} */
  #pendingAnswer = null;

  /** @type {RTCRtpTransceiver | null} */
  #audioTransceiver = null;
  /** @type {RTCRtpTransceiver | null} */
  #videoTransceiver = null;
  /** A screen share's transceivers (video, and tab audio when offered). @type {RTCRtpTransceiver[]} */
  #screenTransceivers = [];
  /** Gives the published tracks a common msid; the server names streams itself. */
  #localStream = new MediaStream();

  /**
   * Local candidates wait here until the description they belong to has been
   * sent, so the server never hears of a candidate before its offer/answer.
   * @type {Record<PcName, {sent: boolean, queue: string[]}>}
   */
  #trickle = { publish: { sent: false, queue: [] }, subscribe: { sent: false, queue: [] } };

  /** Remote tracks currently shown, and whose they are. @type {Map<MediaStreamTrack, string>} */
  #remote = new Map();

  /**
   * Registers for signaling at once, before `join` is even sent, so that a
   * subscribe offer arriving right after `joined` is queued rather than lost.
   *
   * @param {SignalingClient} signaling
   * @param {LocalMedia} media
   */
  constructor(signaling, media) {
    super();
    this.#signaling = signaling;
    this.#media = media;
    this.#ready = new Promise((resolve) => {
      this.#markReady = () => resolve(undefined);
    });
    this.#offs.push(
      signaling.on('offer', (msg) => {
        if (msg.pc === 'subscribe') this.#queueSubscribeOffer(msg);
      }),
      signaling.on('answer', (msg) => {
        if (msg.pc !== 'publish' || !this.#pendingAnswer) return;
        this.#pendingAnswer.resolve(msg.sdp);
        this.#pendingAnswer = null;
      }),
      signaling.on('publish_codec', (msg) => this.#sendInCodec(msg.mid, msg.codec)),
      signaling.on('error', (msg) => {
        if (msg.in_reply_to !== 'offer' || !this.#pendingAnswer) return;
        this.#pendingAnswer.reject(new SignalingError(msg.code, msg.message, msg.in_reply_to));
        this.#pendingAnswer = null;
      }),
    );
  }

  /**
   * Starts media once the room is joined: creates the subscribe connection
   * (processing any offer that arrived meanwhile) and publishes whatever
   * local media exists.
   *
   * @param {JoinedMessage} joined
   */
  async start(joined) {
    if (this.#closed) return;
    this.#iceServers = joined.ice_servers;
    this.#icePolicy = joined.ice_transport_policy === 'relay' ? 'relay' : 'all';
    this.#createSubscribePc();
    this.#markReady();

    const mic = this.#media.audioTrack;
    const hasCamera = this.#media.videoTrack !== null || this.#media.cameraAvailable;
    if (!mic && !hasCamera) return; // listen only: no publish connection at all
    if (mic) this.#addAudioTransceiver(mic);
    // A camera that exists but is off still gets its m-line now (with no
    // track), so turning it on later is a replaceTrack, not a renegotiation.
    if (hasCamera) this.#addVideoTransceiver(this.#media.videoTrack);
    await this.#negotiatePublish();
  }

  /**
   * Mutes or unmutes: the track is disabled (silence is sent, nothing is
   * renegotiated) and the room is told with `media`. Unmuting a call that
   * has no microphone yet (it was blocked or missing at the start) captures
   * one and adds it, which does renegotiate.
   *
   * @param {boolean} on
   * @throws {import('./local-media.js').DeviceError} when the microphone cannot start
   */
  async setMicEnabled(on) {
    if (on && !this.#media.audioTrack) {
      const track = await this.#media.startMic();
      if (this.#closed) return;
      if (this.#audioTransceiver) {
        await this.#audioTransceiver.sender.replaceTrack(track);
      } else {
        this.#addAudioTransceiver(track);
        await this.#negotiatePublish();
      }
    }
    this.#media.setMicEnabled(on);
    this.#signaling.send({ type: 'media', mic: this.#media.micOn });
  }

  /**
   * Turns the camera on or off. Off stops the camera (its light goes out) and
   * sends nothing on the same m-line; on captures again and resumes that
   * m-line, or adds one and renegotiates if this call never had video.
   *
   * @param {boolean} on
   * @throws {import('./local-media.js').DeviceError} when the camera cannot start
   */
  async setCameraEnabled(on) {
    if (on) {
      const track = await this.#media.startCamera();
      if (this.#closed) return;
      if (this.#videoTransceiver) {
        await this.#videoTransceiver.sender.replaceTrack(track);
      } else {
        this.#addVideoTransceiver(track);
        await this.#negotiatePublish();
      }
    } else {
      await this.#videoTransceiver?.sender.replaceTrack(null);
      this.#media.stopCamera();
    }
    this.#signaling.send({ type: 'media', camera: this.#media.cameraOn });
  }

  /**
   * Ends both connections. Remote tracks are reported as ended so the UI
   * clears them. Local tracks belong to the caller and are left running.
   */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sizeTimer);
    this.#offs.forEach((off) => off());
    this.#pendingAnswer?.reject(new Error('session closed'));
    this.#pendingAnswer = null;
    this.#markReady(); // let queued offers run and see #closed
    this.publishPc?.close();
    this.subscribePc?.close();
    for (const [track, participantId] of this.#remote) this.emit('trackended', { participantId, track });
    this.#remote.clear();
  }

  // -------------------------------------------------------------------------
  // Connections

  /**
   * @param {PcName} name
   * @returns {RTCPeerConnection}
   */
  #createPc(name) {
    // Publish: max-bundle, one transport, which is all an SFU needs and keeps
    // the trickled candidates (and messages) few. Subscribe: the browser's
    // default, because the server's offer decides bundling there, and with
    // max-bundle Chrome refuses an offer whose m-lines are all stopped (the
    // last publisher left), since such an offer has no BUNDLE group.
    /** @type {RTCConfiguration} */
    const config = { iceServers: this.#iceServers, iceTransportPolicy: this.#icePolicy };
    if (name === 'publish') config.bundlePolicy = 'max-bundle';
    let pc;
    try {
      pc = new RTCPeerConnection(config);
    } catch (err) {
      // A malformed ice_servers entry (a server setting) must not keep the
      // call from working where no relay is needed.
      console.warn('parley: ignoring unusable ice_servers', err);
      pc = new RTCPeerConnection({ ...config, iceServers: [] });
    }
    pc.addEventListener('icecandidate', (event) => {
      // A null candidate (or an empty one, in older browsers) ends gathering.
      this.#sendCandidate(name, event.candidate ? event.candidate.candidate : '');
    });
    pc.addEventListener('connectionstatechange', () => {
      this.emit('connectionstate', { pc: name, state: pc.connectionState });
      if (pc.connectionState === 'failed' && !this.#closed) {
        this.emit('error', {
          message: name === 'publish'
            ? 'Your camera and microphone could not reach the server. Leave and join again.'
            : 'Media from the room could not reach you. Leave and join again.',
        });
      }
    });
    return pc;
  }

  #ensurePublishPc() {
    if (!this.publishPc) this.publishPc = this.#createPc('publish');
    return this.publishPc;
  }

  /**
   * @param {PcName} pc
   * @param {string} candidate '' for end of candidates
   */
  #sendCandidate(pc, candidate) {
    const trickle = this.#trickle[pc];
    if (!trickle.sent) {
      trickle.queue.push(candidate);
      return;
    }
    this.#signaling.send({ type: 'candidate', pc, candidate });
  }

  /**
   * Called once the first description of `pc` is on its way to the server.
   * @param {PcName} pc
   */
  #startTrickle(pc) {
    const trickle = this.#trickle[pc];
    if (trickle.sent) return;
    trickle.sent = true;
    for (const candidate of trickle.queue.splice(0)) this.#signaling.send({ type: 'candidate', pc, candidate });
  }

  /**
   * Sends the local media's current tracks, after a device switch replaced
   * them (no renegotiation: the m-lines stay).
   */
  async refreshTracks() {
    if (this.#closed) return;
    const mic = this.#media.audioTrack;
    if (this.#audioTransceiver && mic) await this.#audioTransceiver.sender.replaceTrack(mic);
    if (this.#videoTransceiver) await this.#videoTransceiver.sender.replaceTrack(this.#media.videoTrack);
  }

  /**
   * Publishes a screen capture (from getDisplayMedia) next to the camera.
   * Resolves with the mid of its video track, which the server needs to
   * tell the others which track is the screen.
   * @param {MediaStream} stream
   * @returns {Promise<string | null>}
   */
  async startScreen(stream) {
    const pc = this.#ensurePublishPc();
    for (const track of stream.getTracks()) {
      const transceiver = pc.addTransceiver(track, { direction: 'sendonly', streams: [this.#localStream] });
      if (track.kind === 'video') {
        preferCodec(transceiver, 'video/VP8');
        this.#screenTransceivers.unshift(transceiver);
      } else {
        this.#screenTransceivers.push(transceiver);
      }
    }
    await this.#negotiatePublish();
    return this.#screenTransceivers[0]?.mid ?? null;
  }

  /** Stops publishing the screen share, if any. */
  async stopScreen() {
    const transceivers = this.#screenTransceivers;
    if (transceivers.length === 0) return;
    this.#screenTransceivers = [];
    for (const t of transceivers) {
      t.sender.track?.stop();
      if (!this.#closed) t.stop();
    }
    if (!this.#closed) await this.#negotiatePublish();
  }

  // -------------------------------------------------------------------------
  // Publishing

  /** @param {MediaStreamTrack} track */
  #addAudioTransceiver(track) {
    this.#audioTransceiver = this.#ensurePublishPc().addTransceiver(track, {
      direction: 'sendonly',
      streams: [this.#localStream],
    });
  }

  /**
   * Adds the video m-line with three simulcast encodings, preferring VP8.
   * @param {MediaStreamTrack | null} track null reserves the m-line with the camera off
   */
  #addVideoTransceiver(track) {
    const pc = this.#ensurePublishPc();
    const transceiver = pc.addTransceiver(track ?? 'video', {
      direction: 'sendonly',
      streams: [this.#localStream],
      sendEncodings: SIMULCAST_ENCODINGS.map((encoding) => ({ ...encoding })),
    });
    preferCodec(transceiver, 'video/VP8');
    this.#videoTransceiver = transceiver;
  }

  /**
   * Offers the current publish transceivers and applies the server's answer.
   * Calls are chained, so a second negotiation starts only after the first
   * has its answer (the signaling state must be stable to offer again).
   * @returns {Promise<void>}
   */
  #negotiatePublish(options = /** @type {RTCOfferOptions | undefined} */ (undefined)) {
    const run = this.#publishChain.then(() => this.#publishOnce(options));
    this.#publishChain = run.catch((err) => {
      // A lost signaling connection is the call's to report (it reconnects).
      if (this.#closed || (err instanceof SignalingError && err.code === 'connection_closed')) return;
      const reason = err instanceof SignalingError ? ` The server said: ${err.message}` : '';
      this.emit('error', { message: `Your camera and microphone could not be sent.${reason}`, cause: err });
    });
    return this.#publishChain;
  }

  /**
   * After the signaling connection was resumed: the publish connection
   * restarts ICE (new credentials, new candidates), so a changed network
   * path is found. The server renews the subscribe connection itself.
   * @returns {Promise<void>}
   */
  restartIce() {
    if (this.#closed || !this.publishPc) return Promise.resolve();
    // An answer lost with the old connection will not come.
    this.#pendingAnswer?.reject(new SignalingError('connection_closed', 'The connection to the server was replaced.'));
    this.#pendingAnswer = null;
    return this.#negotiatePublish({ iceRestart: true });
  }

  /**
   * The server asks for a published video in another codec (someone in the
   * room cannot decode the one sent): that codec goes first in the track's
   * preferences, and a new offer makes the browser switch.
   * @param {string} mid
   * @param {string} codec e.g. 'h264'
   */
  #sendInCodec(mid, codec) {
    const transceiver = this.publishPc?.getTransceivers().find((t) => t.mid === mid);
    if (!transceiver || this.#closed) return;
    preferCodec(transceiver, `video/${codec}`);
    void this.#negotiatePublish();
  }

  /** @param {RTCOfferOptions} [options] */
  async #publishOnce(options) {
    const pc = this.publishPc;
    if (!pc || this.#closed) return;
    await pc.setLocalDescription(await pc.createOffer(options));
    const sdp = pc.localDescription?.sdp;
    if (!sdp || this.#closed) return;
    const answer = this.#waitForPublishAnswer();
    try {
      if (!this.#signaling.send({ type: 'offer', pc: 'publish', sdp })) {
        this.#pendingAnswer?.reject(new SignalingError('connection_closed', 'Not connected to the server.'));
        this.#pendingAnswer = null;
      } else {
        this.#startTrickle('publish');
      }
      await pc.setRemoteDescription({ type: 'answer', sdp: await answer });
    } catch (err) {
      // Back to stable, so a later negotiation can offer again.
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      throw err;
    }
  }

  /** @returns {Promise<string>} the answer's SDP */
  #waitForPublishAnswer() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pendingAnswer = null;
        reject(new Error('The server did not answer our media offer.'));
      }, PUBLISH_ANSWER_TIMEOUT_MS);
      this.#pendingAnswer = {
        resolve: (sdp) => {
          clearTimeout(timer);
          resolve(sdp);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  // -------------------------------------------------------------------------
  // Subscribing

  /** Creates the subscribe connection (again, when the server renews it). */
  #createSubscribePc() {
    this.subscribePc = this.#createPc('subscribe');
    this.subscribePc.addEventListener('track', (event) => this.#onTrack(event));
    if (this.#sizeTimer === undefined && typeof document !== 'undefined') {
      this.#sizeTimer = setInterval(() => this.#reportVideoSizes(), VIDEO_SIZE_INTERVAL_MS);
      // Back from the background: the videos again at once, not at the
      // next tick (timers of background pages run late).
      const onVisibility = () => this.#reportVideoSizes();
      document.addEventListener('visibilitychange', onVisibility);
      this.#offs.push(() => document.removeEventListener('visibilitychange', onVisibility));
    }
  }

  /**
   * Tells the server how large each received video is shown, so it sends no
   * bigger simulcast layer than the tile needs. A tile scrolled out of view,
   * or every tile while the page is in the background, counts as hidden
   * (0×0: the server sends that video nothing until it is back). Videos
   * without a tile yet are left out (the server then decides by the room's
   * size), so a video never waits for a tile that waits for the video.
   * Sizes are in device pixels, rounded so small layout shifts send nothing.
   */
  #reportVideoSizes() {
    const pc = this.subscribePc;
    if (!pc || this.#closed) return;
    const elements = [...document.querySelectorAll('video')];
    const ratio = globalThis.devicePixelRatio || 1;
    const background = document.visibilityState === 'hidden';
    const viewWidth = globalThis.innerWidth || 0;
    const viewHeight = globalThis.innerHeight || 0;
    /** @type {{mid: string, width: number, height: number}[]} */
    const sizes = [];
    for (const transceiver of pc.getTransceivers()) {
      const { track } = transceiver.receiver;
      if (transceiver.mid === null || track.kind !== 'video' || track.readyState === 'ended') continue;
      let width = 0;
      let height = 0;
      let tiled = false;
      for (const el of elements) {
        const stream = el.srcObject;
        if (!(stream instanceof MediaStream) || !stream.getVideoTracks().includes(track)) continue;
        const rect = el.getBoundingClientRect();
        if (rect.width === 0 || rect.height === 0) continue;
        tiled = true;
        const inView = rect.bottom > 0 && rect.right > 0 && rect.top < viewHeight && rect.left < viewWidth;
        // Picture-in-picture stays on screen when the page does not.
        const pip = document.pictureInPictureElement === el;
        if (!pip && (background || !inView)) continue;
        width = Math.max(width, Math.round((rect.width * ratio) / 16) * 16);
        height = Math.max(height, Math.round((rect.height * ratio) / 16) * 16);
      }
      if (tiled) sizes.push({ mid: transceiver.mid, width, height });
    }
    const key = JSON.stringify(sizes);
    if (sizes.length === 0 || key === this.#sentSizes) return;
    if (this.#signaling.send({ type: 'video_sizes', sizes: sizes.slice(0, 100) })) this.#sentSizes = key;
  }

  /**
   * The server started its side of the subscribe connection afresh (after
   * an answer it could not apply, or an offer that went unanswered): a new
   * peer connection replaces ours, and the tracks of the old one end.
   */
  #renewSubscribePc() {
    this.subscribePc?.close();
    for (const [track] of this.#remote) this.#dropRemote(track);
    this.#trickle.subscribe = { sent: false, queue: [] };
    this.#createSubscribePc();
  }

  /**
   * Queues a subscribe offer behind any being handled. When it comes up, an
   * offer that a newer one has superseded is skipped: the server keeps only
   * one offer outstanding, so a newer offer means the older was withdrawn.
   * A skipped offer that renewed the connection passes the renewal on.
   * @param {ServerOfferMessage} offer
   */
  #queueSubscribeOffer(offer) {
    const seq = ++this.#offerSeq;
    if (offer.renew) this.#renewPending = true;
    this.#subscribeChain = this.#subscribeChain
      .then(async () => {
        await this.#ready;
        if (seq !== this.#offerSeq || this.#closed) return;
        if (this.#renewPending) {
          this.#renewPending = false;
          this.#renewSubscribePc();
        }
        await this.#answerSubscribeOffer(offer);
      })
      .catch((err) => {
        if (!this.#closed) this.emit('error', { message: 'Media from the room could not be received.', cause: err });
      });
  }

  /** @param {ServerOfferMessage} offer */
  async #answerSubscribeOffer({ sdp, offer_id }) {
    const pc = /** @type {RTCPeerConnection} */ (this.subscribePc);
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      await pc.setLocalDescription(await pc.createAnswer());
    } catch (err) {
      // Leave the connection stable; the server renews the connection when
      // its offer goes unanswered, and the next offer says so.
      if (pc.signalingState === 'have-remote-offer') {
        await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
      }
      throw err;
    }
    const answer = pc.localDescription?.sdp;
    if (!answer || this.#closed) return;
    this.#signaling.send({ type: 'answer', pc: 'subscribe', offer_id, sdp: answer });
    this.#startTrickle('subscribe');
    this.#reconcileRemoteTracks();
  }

  /**
   * `track` event: the fast path for a new remote track. The stream id is the
   * publisher's participant id (protocol.md, "Whose track is it?").
   * @param {RTCTrackEvent} event
   */
  #onTrack(event) {
    const participantId = event.streams[0]?.id;
    if (!participantId) return;
    const { track } = event;
    track.addEventListener('ended', () => this.#dropRemote(track));
    this.#addRemote(track, participantId);
  }

  /**
   * After each subscribe negotiation, compares the tracks the UI knows with
   * the transceivers that are actually receiving. This catches what events
   * alone can miss: an m-line the server stopped or made inactive (the
   * browser ends or merely mutes its track), or an m-line handed to another
   * participant.
   */
  #reconcileRemoteTracks() {
    const pc = this.subscribePc;
    if (!pc) return;
    const owners = streamIdsByMid(pc.remoteDescription?.sdp ?? '');
    /** @type {Map<MediaStreamTrack, string>} */
    const live = new Map();
    for (const transceiver of pc.getTransceivers()) {
      const direction = transceiver.currentDirection;
      if (transceiver.mid === null || (direction !== 'recvonly' && direction !== 'sendrecv')) continue;
      const { track } = transceiver.receiver;
      if (track.readyState === 'ended') continue;
      const participantId = owners.get(transceiver.mid) ?? this.#remote.get(track);
      if (participantId) live.set(track, participantId);
    }
    for (const [track, participantId] of this.#remote) {
      if (live.get(track) !== participantId) this.#dropRemote(track);
    }
    for (const [track, participantId] of live) this.#addRemote(track, participantId);
  }

  /**
   * @param {MediaStreamTrack} track
   * @param {string} participantId
   */
  #addRemote(track, participantId) {
    const known = this.#remote.get(track);
    if (known === participantId) return;
    if (known !== undefined) this.#dropRemote(track);
    this.#remote.set(track, participantId);
    this.emit('track', { participantId, track });
  }

  /** @param {MediaStreamTrack} track */
  #dropRemote(track) {
    const participantId = this.#remote.get(track);
    if (participantId === undefined) return;
    this.#remote.delete(track);
    this.emit('trackended', { participantId, track });
  }
}

/** How often tile sizes are checked for changes. */
const VIDEO_SIZE_INTERVAL_MS = 1000;

/**
 * Puts `mimeType` first in the transceiver's codec list, keeping the rest
 * (including RTX/RED/FEC) in the browser's order. Where the browser cannot
 * set preferences, its defaults (VP8 first in Chrome and Firefox) stand.
 *
 * @param {RTCRtpTransceiver} transceiver
 * @param {string} mimeType e.g. 'video/VP8'
 */
function preferCodec(transceiver, mimeType) {
  if (typeof transceiver.setCodecPreferences !== 'function') return;
  // Receiver capabilities: what setCodecPreferences has always accepted.
  const codecs = RTCRtpReceiver.getCapabilities?.('video')?.codecs;
  if (!codecs) return;
  const wanted = mimeType.toLowerCase();
  const first = codecs.filter((c) => c.mimeType.toLowerCase() === wanted);
  if (first.length === 0) return;
  const rest = codecs.filter((c) => c.mimeType.toLowerCase() !== wanted);
  try {
    transceiver.setCodecPreferences([...first, ...rest]);
  } catch (err) {
    console.warn('parley: could not prefer', mimeType, err);
  }
}
