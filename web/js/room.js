// @ts-check
/**
 * The room page (`/r/{room}`): pre-join screen → call → "you left" screen.
 *
 * `document.body.dataset.state` is `prejoin`, `joined` or `left` (`loading`
 * before this script runs), so tests and styles can follow along. For tests
 * and debugging, `window.parley` exposes the live objects; see
 * {@link exposeForTests}.
 *
 * @module
 */

import { api } from './api.js';
import { LocalMedia } from './local-media.js';
import { loadPrefs, savePrefs } from './prefs.js';
import { SignalingClient, SignalingError } from './protocol.js';
import { guessableRoomName, newRoomName, normalizeRoomName, roomNameProblem } from './room-name.js';
import { MediaSession } from './session.js';
import { hangUpSound } from './tones.js';
import { Call } from './ui/call.js';
import { byId } from './ui/dom.js';
import { PrejoinScreen } from './ui/prejoin.js';
import { TileGrid } from './ui/tiles.js';
import { showToast } from './ui/toast.js';

/** @typedef {'prejoin' | 'joined' | 'left'} PageState */

const prefs = loadPrefs();
const rawRoom = roomFromPath(location.pathname);
const room = normalizeRoomName(rawRoom);

const tiles = new TileGrid(
  byId('tiles'),
  /** @type {HTMLTemplateElement} */ (byId('tile-template')),
  onPlayFailed,
  byId('stage'),
);
const prejoin = new PrejoinScreen({ name: prefs.name, onJoin: join });

/** Local camera/microphone for the next or current call; opened on the pre-join screen. */
/** @type {Promise<LocalMedia> | null} */
let mediaReady = null;
/** @type {LocalMedia | null} */
let media = null;
/** The join in flight, if any. @type {SignalingClient | null} */
let connecting = null;
/** @type {Call | null} */
let call = null;
/** @type {SignalingClient | null} */
let signaling = null;
/** @type {MediaSession | null} */
let session = null;
/** The name used for the last join, reused by Rejoin. */
let lastName = prefs.name;

init();

function init() {
  byId('room-title').textContent = rawRoom;
  byId('prejoin-room').textContent = rawRoom;
  document.title = `${rawRoom || 'Room'} · Parley`;
  byId('rejoin').addEventListener('click', rejoin);
  // A call turns into a meeting the same way any room grows: share its link.
  byId('copy-link').addEventListener('click', async () => {
    const link = `${location.origin}${location.pathname}`;
    try {
      await navigator.clipboard.writeText(link);
      showToast('Link copied. Send it to the people you want to invite.', { kind: 'info' });
    } catch {
      showToast(`Send this link to invite someone: ${link}`, { kind: 'info', timeoutMs: 0 });
    }
  });
  // Closing the tab hangs up straight away, rather than leaving a silent
  // participant until the server's 30-second timeout.
  window.addEventListener('pagehide', () => call?.abandon());
  exposeForTests();

  setState('prejoin');
  const problem = roomNameProblem(rawRoom);
  if (problem) {
    // No camera prompt for a room nobody can enter.
    prejoin.block(`This link does not name a valid room. ${problem}`);
    return;
  }
  const guessable = guessableRoomName(rawRoom);
  if (guessable) {
    byId('room-name-warning-text').textContent = guessable;
    /** @type {HTMLAnchorElement} */ (byId('safe-room-link')).href = `/r/${newRoomName()}`;
    byId('room-name-warning').hidden = false;
  }
  openMedia();
  prejoin.focus();
  if (location.hash === '#call') autoJoinCall();
}

/**
 * An answered call brings both people here with `#call`: join at once with
 * the remembered devices, under the account's name if none is remembered.
 */
async function autoJoinCall() {
  history.replaceState(null, '', location.pathname);
  let name = prefs.name;
  if (!name) {
    try {
      name = (await api('GET', '/api/v1/session')).user.display_name;
    } catch {
      name = 'Guest';
    }
  }
  /** @type {HTMLInputElement} */ (byId('name')).value = name;
  await mediaReady;
  join(name);
}

/**
 * Opens the camera and microphone for the pre-join preview, as remembered
 * from last time. Joining waits for this; it never fails (missing devices
 * are described on the screen instead).
 */
function openMedia() {
  // Read afresh, not the copy from page load: Rejoin comes here after a call
  // in which the microphone or camera may have been turned off, and must not
  // turn them back on behind the user's back.
  const remembered = loadPrefs();
  const current = mediaReady = LocalMedia.open({
    mic: remembered.mic,
    camera: remembered.camera,
    micDeviceId: remembered.micDeviceId,
    cameraDeviceId: remembered.cameraDeviceId,
  }).then(async (opened) => {
    media = opened;
    if (mediaReady === current) await prejoin.setMedia(opened);
    return opened;
  });
  return current;
}

/**
 * Connects and joins with the chosen name. On failure the pre-join screen
 * stays, with the reason above the Join button.
 * @param {string} name
 */
async function join(name) {
  if (connecting || call) return;
  lastName = name;
  savePrefs({ name });
  prejoin.showError('');
  prejoin.setBusy(true, 'Joining…');

  const client = new SignalingClient();
  connecting = client;
  try {
    const localMedia = await (mediaReady ?? openMedia());
    await client.connect();
    // Created before `join` is sent, so it hears a subscribe offer that
    // follows `joined` immediately.
    const mediaSession = new MediaSession(client, localMedia);
    let joined;
    const password = /** @type {HTMLInputElement} */ (byId('password')).value;
    const offLobby = client.on('lobby_waiting', () => {
      document.body.dataset.lobby = 'waiting';
      prejoin.setBusy(true, 'Waiting for a moderator to let you in…');
    });
    try {
      joined = await client.join({
        room, name, mic: localMedia.micOn, camera: localMedia.cameraOn,
        ...(password ? { password } : {}),
      });
    } catch (err) {
      mediaSession.close();
      throw err;
    } finally {
      offLobby();
      delete document.body.dataset.lobby;
    }
    signaling = client;
    session = mediaSession;
    prejoin.detach();
    prejoin.setBusy(false);
    setState('joined');
    call = new Call({
      signaling: client,
      session: mediaSession,
      media: localMedia,
      tiles,
      joined,
      onEnd: (how) => onCallEnded(how, call?.endedBy),
    });
    const remembered = loadPrefs();
    if (remembered.speakerDeviceId) tiles.setSpeaker(remembered.speakerDeviceId);
    tiles.setView(remembered.view);
    byId('toggle-view').setAttribute('aria-pressed', String(remembered.view === 'speaker'));
    byId('toggle-mic').focus();
  } catch (err) {
    client.close();
    prejoin.setBusy(false);
    if (err instanceof SignalingError && (err.code === 'password_required' || err.code === 'wrong_password')) {
      byId('password-field').hidden = false;
      byId('password').focus();
    }
    prejoin.showError(joinErrorMessage(err));
  } finally {
    connecting = null;
  }
}

/**
 * @param {import('./ui/call.js').CallEnd} how
 * @param {string} [endedBy] the moderator who removed us or ended the meeting
 */
function onCallEnded(how, endedBy = '') {
  call = null;
  session = null;
  media = null;
  mediaReady = null;
  if (how === 'rejoin') {
    // The connection came back but our place was gone (the server
    // restarted): join the same room again, without asking.
    rejoin();
    return;
  }
  byId('participant-count').textContent = '';
  const by = endedBy || 'A moderator';
  const isCall = room.startsWith('call-');
  if (how === 'call-ended' || (isCall && how === 'left')) hangUpSound();
  const [title, detail] = {
    'connection-lost': ['Connection lost', 'The connection to the server was lost.'],
    left: isCall ? ['Call ended', 'You hung up.'] : ['You left the meeting', ''],
    'call-ended': ['Call ended', 'The other person hung up.'],
    removed: ['You were removed', `${by} removed you from the meeting.`],
    ended: ['The meeting has ended', `${by} ended the meeting for everyone.`],
  }[how];
  byId('ended-title').textContent = title;
  byId('ended-detail').textContent = detail;
  document.body.dataset.ended = how;
  setState('left');
  byId('rejoin').focus();
}

/**
 * Joins again with the same name and remembered devices. The pre-join
 * screen is shown meanwhile, and stays (with the reason) if joining fails.
 */
function rejoin() {
  delete document.body.dataset.ended;
  setState('prejoin');
  openMedia();
  join(lastName);
}

/**
 * Words for a failed join, for the pre-join screen.
 * @param {unknown} err
 */
function joinErrorMessage(err) {
  if (!(err instanceof SignalingError)) {
    console.warn('parley: join failed', err);
    return 'Could not join. Try again.';
  }
  switch (err.code) {
    case 'room_full':
      return 'This room is full. Try again later.';
    case 'conferencing_disabled':
      return 'Meetings are turned off on this server. Ask its administrator.';
    case 'unsupported_version':
      return 'This page is out of date for the server. Reload the page and try again.';
    case 'rate_limited':
      return `Too many attempts: ${err.message || 'wait a moment and try again.'}`;
    case 'connection_closed':
    case 'timeout':
      return 'Could not reach the server. Check your connection and try again.';
    case 'bad_field':
      return `The server did not accept this: ${err.message}`;
    case 'password_required':
      return 'This room has a password. Enter it to join.';
    case 'wrong_password':
      return 'That password is wrong. Check it and try again.';
    case 'room_locked':
      return 'A moderator locked this room. Nobody new can join right now.';
    case 'lobby_rejected':
      return err.message.includes('ended')
        ? 'The meeting ended while you were waiting.'
        : 'A moderator declined your request to join.';
    case 'blocked':
      return 'A moderator removed you from this meeting and blocked your return.';
    default:
      return err.message || `Could not join (${err.code}).`;
  }
}

/** @param {PageState} state */
function setState(state) {
  byId('prejoin').hidden = state !== 'prejoin';
  byId('call').hidden = state !== 'joined';
  byId('ended').hidden = state !== 'left';
  document.body.dataset.state = state;
}

/**
 * The room name is the last path segment, URL-decoded.
 * @param {string} pathname
 */
function roomFromPath(pathname) {
  const segment = pathname.split('/').filter(Boolean).pop() ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/**
 * A video would not start. Usually the browser blocked playing sound
 * without a click (after a reload into a joined room, say): offer one.
 * @param {unknown} err
 */
function onPlayFailed(err) {
  if (err instanceof DOMException && err.name === 'NotAllowedError') {
    showToast('Your browser paused sound from the call.', {
      kind: 'info',
      action: { label: 'Play sound', run: () => tiles.resumePlayback() },
    });
  } else {
    console.warn('parley: video did not play', err);
  }
}

/**
 * `window.parley`, for browser tests and debugging. Every property is a
 * getter, so it always shows the current call:
 * - `state`: 'loading' | 'prejoin' | 'joined' | 'left'
 * - `room`: the room name as sent in `join`
 * - `selfId`: own participant id while joined, else null
 * - `participants`: the others in the room (array of `{id, name, mic, camera}`)
 * - `signaling`: the `SignalingClient` of the current call
 * - `session`: the `MediaSession`; `session.publishPc` / `session.subscribePc`
 *   are the two `RTCPeerConnection`s (for `getStats()`)
 * - `media`: the `LocalMedia` (local tracks)
 */
function exposeForTests() {
  const handle = {
    get state() { return document.body.dataset.state; },
    get room() { return room; },
    get selfId() { return call ? call.self.id : null; },
    get participants() { return call ? [...call.participants.values()] : []; },
    get self() { return call ? call.self : null; },
    get tools() { return call ? call.tools : null; },
    get signaling() { return signaling; },
    get session() { return session; },
    get media() { return media; },
  };
  Object.defineProperty(window, 'parley', { value: handle, configurable: true });
}
