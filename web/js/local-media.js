// @ts-check
/**
 * The local camera and microphone: asking for them, turning them on and off,
 * and explaining in words why one is missing.
 *
 * The rules that shape this module:
 * - A camera or microphone that is blocked or absent never stops anyone from
 *   joining; they join to listen and watch.
 * - One missing device must not lose the other, so after a failed combined
 *   request each kind is asked for alone.
 * - Camera off means the camera light is off: the track is stopped, not just
 *   disabled. The microphone, by contrast, is muted by disabling its track, so
 *   unmuting is instant and needs no new permission prompt.
 *
 * @module
 */

import { Emitter } from './emitter.js';

/**
 * Why a device is not available.
 * - `blocked`: the user or a policy denied permission (NotAllowedError)
 * - `missing`: no such device (NotFoundError, OverconstrainedError)
 * - `busy`: the device exists but could not be started, often because
 *   another application holds it (NotReadableError, AbortError)
 * - `insecure`: the page is not in a secure context (plain http), where
 *   browsers hide `navigator.mediaDevices` entirely
 * - `failed`: anything else
 * @typedef {'blocked' | 'missing' | 'busy' | 'insecure' | 'failed'} DeviceProblem
 */

/** @typedef {'audio' | 'video'} MediaKind */

/**
 * @typedef {object} LocalMediaEvents
 * @property {{kind: MediaKind}} ended a device stopped by itself (unplugged, revoked)
 */

/**
 * @typedef {object} OpenOptions
 * @property {boolean} mic             whether the microphone starts unmuted
 * @property {boolean} camera          whether to start the camera now
 * @property {string} [micDeviceId]    '' or absent for the default device
 * @property {string} [cameraDeviceId] '' or absent for the default device
 */

/** The three simulcast layers go up to this size; the lower two are scaled down. */
const VIDEO_CONSTRAINTS = {
  width: { ideal: 1280 },
  height: { ideal: 720 },
  frameRate: { ideal: 30 },
};

/**
 * @extends {Emitter<LocalMediaEvents>}
 */
export class LocalMedia extends Emitter {
  /** @type {MediaStreamTrack | null} */
  audioTrack = null;
  /** @type {MediaStreamTrack | null} */
  videoTrack = null;
  /** @type {DeviceProblem | null} why there is no microphone, if there is none */
  micProblem = null;
  /** @type {DeviceProblem | null} why the camera could not be started, if it could not */
  cameraProblem = null;
  /**
   * Whether a camera is believed to exist even though it is off, so that the
   * call can reserve a video slot and turning the camera on needs no
   * renegotiation.
   */
  cameraAvailable = false;
  micDeviceId = '';
  cameraDeviceId = '';
  #micEnabled = true;

  /**
   * Asks for the microphone always (a muted microphone is captured but
   * disabled) and for the camera only when `options.camera` is true.
   *
   * @param {OpenOptions} options
   * @returns {Promise<LocalMedia>}
   */
  static async open(options) {
    const media = new LocalMedia();
    media.micDeviceId = options.micDeviceId ?? '';
    media.cameraDeviceId = options.cameraDeviceId ?? '';
    media.#micEnabled = options.mic;
    await media.#acquire(options.camera);
    if (!options.camera && !media.cameraProblem) {
      media.cameraAvailable = await hasDevice('videoinput');
    }
    return media;
  }

  /** Whether the microphone track exists and is enabled. */
  get micOn() {
    return this.audioTrack !== null && this.#micEnabled;
  }

  /** Whether the camera is running. */
  get cameraOn() {
    return this.videoTrack !== null;
  }

  /**
   * Mutes or unmutes by enabling the track: a disabled track sends silence
   * without renegotiating, as protocol.md asks.
   * @param {boolean} on
   */
  setMicEnabled(on) {
    this.#micEnabled = on;
    if (this.audioTrack) this.audioTrack.enabled = on;
  }

  /**
   * Captures the microphone if there is no microphone track yet (it was
   * blocked or missing when the call started), and unmutes it.
   * @returns {Promise<MediaStreamTrack>}
   * @throws {DeviceError} when the microphone cannot be started
   */
  async startMic() {
    this.#micEnabled = true;
    if (this.audioTrack) {
      this.audioTrack.enabled = true;
      return this.audioTrack;
    }
    try {
      const stream = await getUserMedia({ audio: audioConstraints(this.micDeviceId) });
      this.micProblem = null;
      return this.#adopt(stream.getAudioTracks()[0], 'audio');
    } catch (err) {
      this.micProblem = classify(err);
      throw new DeviceError('audio', this.micProblem);
    }
  }

  /**
   * Starts the camera if it is not running.
   * @returns {Promise<MediaStreamTrack>}
   * @throws {DeviceError} when the camera cannot be started
   */
  async startCamera() {
    if (this.videoTrack) return this.videoTrack;
    try {
      const stream = await getUserMedia({ video: videoConstraints(this.cameraDeviceId) });
      this.cameraProblem = null;
      this.cameraAvailable = true;
      return this.#adopt(stream.getVideoTracks()[0], 'video');
    } catch (err) {
      this.cameraProblem = classify(err);
      throw new DeviceError('video', this.cameraProblem);
    }
  }

  /** Stops the camera so its light goes off. */
  stopCamera() {
    this.videoTrack?.stop();
    this.videoTrack = null;
  }

  /**
   * Switches the microphone to another device, keeping mute state.
   * @param {string} deviceId
   * @returns {Promise<MediaStreamTrack>}
   * @throws {DeviceError}
   */
  async switchMic(deviceId) {
    this.micDeviceId = deviceId;
    let stream;
    try {
      stream = await getUserMedia({ audio: audioConstraints(deviceId) });
    } catch (err) {
      throw new DeviceError('audio', classify(err));
    }
    this.audioTrack?.stop();
    this.micProblem = null;
    return this.#adopt(stream.getAudioTracks()[0], 'audio');
  }

  /**
   * Switches the camera to another device; starts it only if it was running.
   * @param {string} deviceId
   * @returns {Promise<MediaStreamTrack | null>}
   * @throws {DeviceError}
   */
  async switchCamera(deviceId) {
    this.cameraDeviceId = deviceId;
    if (!this.videoTrack) return null;
    this.stopCamera();
    return this.startCamera();
  }

  /** Stops every track; the object is finished afterwards. */
  stopAll() {
    this.audioTrack?.stop();
    this.audioTrack = null;
    this.stopCamera();
  }

  /**
   * Asks for audio and, if wanted, video in one prompt; if that fails,
   * asks for each alone so one missing or blocked device keeps the other.
   * @param {boolean} wantVideo
   */
  async #acquire(wantVideo) {
    if (wantVideo) {
      try {
        const stream = await getUserMedia({
          audio: audioConstraints(this.micDeviceId),
          video: videoConstraints(this.cameraDeviceId),
        });
        const [audio] = stream.getAudioTracks();
        const [video] = stream.getVideoTracks();
        if (audio && video) {
          this.#adopt(audio, 'audio');
          this.#adopt(video, 'video');
          this.cameraAvailable = true;
          return;
        }
        stream.getTracks().forEach((t) => t.stop());
      } catch {
        // fall through to one kind at a time
      }
    }
    const micEnabled = this.#micEnabled;
    try {
      await this.startMic();
    } catch {
      // startMic recorded micProblem
    }
    this.setMicEnabled(micEnabled);
    if (wantVideo) {
      try {
        await this.startCamera();
      } catch {
        // startCamera recorded cameraProblem
      }
    }
  }

  /**
   * Takes ownership of a freshly captured track.
   * @param {MediaStreamTrack | undefined} track
   * @param {MediaKind} kind
   * @returns {MediaStreamTrack}
   */
  #adopt(track, kind) {
    if (!track) throw new DeviceError(kind, 'missing');
    if (kind === 'audio') {
      this.audioTrack = track;
      track.enabled = this.#micEnabled;
    } else {
      this.videoTrack = track;
    }
    // Remember the real device, so "default" resolves to something stable.
    const id = track.getSettings().deviceId;
    if (id) {
      if (kind === 'audio') this.micDeviceId = id;
      else this.cameraDeviceId = id;
    }
    track.addEventListener('ended', () => {
      const current = kind === 'audio' ? this.audioTrack : this.videoTrack;
      if (current !== track) return; // replaced or stopped by us
      if (kind === 'audio') this.audioTrack = null;
      else this.videoTrack = null;
      this.emit('ended', { kind });
    });
    return track;
  }
}

/** A camera or microphone could not be started, and why. */
export class DeviceError extends Error {
  /**
   * @param {MediaKind} kind
   * @param {DeviceProblem} problem
   */
  constructor(kind, problem) {
    super(deviceErrorMessage(kind === 'audio' ? 'Microphone' : 'Camera', problem));
    this.name = 'DeviceError';
    this.kind = kind;
    this.problem = problem;
  }
}

/**
 * A sentence or two telling the user what is missing, why, and that they can
 * still join. Returns '' when nothing is wrong.
 *
 * @param {DeviceProblem | null} mic
 * @param {DeviceProblem | null} camera
 */
export function describeProblems(mic, camera) {
  if (!mic && !camera) return '';
  if (mic === 'insecure' || camera === 'insecure') {
    return 'Camera and microphone only work over a secure (https) connection. '
      + 'You can still join to listen and watch.';
  }
  const what = mic && camera && mic === camera
    ? problemSentence('Camera and microphone', mic, true)
    : [
      mic ? problemSentence('Microphone', mic, false) : '',
      camera ? problemSentence('Camera', camera, false) : '',
    ].filter(Boolean).join(' ');
  const outcome = mic && camera
    ? 'You can still join to listen and watch'
    : mic ? 'You can still join, but others will not hear you'
      : 'You can still join, but others will not see you';
  const micBlocked = mic === 'blocked';
  const cameraBlocked = camera === 'blocked';
  const hint = micBlocked || cameraBlocked
    ? `; allow access in your browser's site settings to be ${
      micBlocked && cameraBlocked ? 'seen and heard' : micBlocked ? 'heard' : 'seen'}`
    : '';
  return `${what} ${outcome}${hint}.`;
}

/**
 * What went wrong when one device was asked for during a call, where
 * "you can still join" no longer applies.
 * @param {'Microphone' | 'Camera'} device
 * @param {DeviceProblem} problem
 */
function deviceErrorMessage(device, problem) {
  switch (problem) {
    case 'blocked':
      return `${device} is blocked. Allow access in your browser's site settings, then try again.`;
    case 'insecure':
      return `${device} only works over a secure (https) connection.`;
    default:
      return problemSentence(device, problem, false);
  }
}

/**
 * @param {string} device  capitalized device name(s)
 * @param {DeviceProblem} problem
 * @param {boolean} plural
 */
function problemSentence(device, problem, plural) {
  switch (problem) {
    case 'blocked':
      return `${device} ${plural ? 'are' : 'is'} blocked.`;
    case 'missing':
      return `No ${device.toLowerCase().replace(' and ', ' or ')} found.`;
    case 'busy':
      return `${device} could not be started; another application may be using ${plural ? 'them' : 'it'}.`;
    default:
      return `${device} could not be started.`;
  }
}

/**
 * `navigator.mediaDevices.getUserMedia`, failing with a recognizable error
 * where the browser hides `mediaDevices` (insecure contexts).
 * @param {MediaStreamConstraints} constraints
 */
function getUserMedia(constraints) {
  if (!navigator.mediaDevices?.getUserMedia) {
    return Promise.reject(new DOMException('not a secure context', 'InsecureContextError'));
  }
  return navigator.mediaDevices.getUserMedia(constraints);
}

/**
 * @param {string} deviceId
 * @returns {MediaTrackConstraints}
 */
function audioConstraints(deviceId) {
  // `ideal`, not `exact`: a remembered device that was unplugged falls back
  // to the default instead of failing.
  return deviceId ? { deviceId: { ideal: deviceId } } : {};
}

/**
 * @param {string} deviceId
 * @returns {MediaTrackConstraints}
 */
function videoConstraints(deviceId) {
  return deviceId ? { ...VIDEO_CONSTRAINTS, deviceId: { ideal: deviceId } } : { ...VIDEO_CONSTRAINTS };
}

/**
 * @param {unknown} err
 * @returns {DeviceProblem}
 */
function classify(err) {
  const name = err instanceof DOMException || err instanceof Error ? err.name : '';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'blocked';
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'missing';
    case 'NotReadableError':
    case 'AbortError':
      return 'busy';
    case 'InsecureContextError':
      return 'insecure';
    default:
      return 'failed';
  }
}

/**
 * Whether the browser reports any device of `kind`. Before permission is
 * granted labels are hidden, but devices are still listed.
 * @param {MediaDeviceKind} kind
 */
async function hasDevice(kind) {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return devices.some((d) => d.kind === kind);
  } catch {
    return false;
  }
}

/**
 * The microphones, cameras and speakers the browser will name. Labels are
 * empty until the user has granted permission for that kind.
 * @returns {Promise<{mics: MediaDeviceInfo[], cameras: MediaDeviceInfo[], speakers: MediaDeviceInfo[]}>}
 */
export async function listDevices() {
  try {
    const devices = await navigator.mediaDevices.enumerateDevices();
    return {
      mics: devices.filter((d) => d.kind === 'audioinput' && d.deviceId),
      cameras: devices.filter((d) => d.kind === 'videoinput' && d.deviceId),
      speakers: devices.filter((d) => d.kind === 'audiooutput' && d.deviceId),
    };
  } catch {
    return { mics: [], cameras: [], speakers: [] };
  }
}
