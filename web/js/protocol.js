// @ts-check
/**
 * The Parley signaling protocol, version 1, as seen from the browser.
 *
 * This module is the client half of the contract in `docs/protocol.md`: the
 * message types as JSDoc typedefs, and `SignalingClient`, which owns the
 * WebSocket at `/ws`. It touches no DOM, so it can be reused by any page (or
 * a test) that needs to talk to the server.
 *
 * @module
 */

import { Emitter } from './emitter.js';

/** The protocol version this client speaks; sent in `join`. */
export const PROTOCOL_VERSION = 1;

/** A message may be at most this many bytes of UTF-8 (protocol.md, Transport). */
export const MAX_MESSAGE_BYTES = 65536;

// ---------------------------------------------------------------------------
// Shared shapes

/**
 * Which of the participant's two peer connections a message is about.
 * `publish`: own media to the server, the client offers.
 * `subscribe`: everyone else's media, the server offers.
 * @typedef {'publish' | 'subscribe'} PcName
 */

/**
 * A participant as the server describes it.
 * @typedef {object} Participant
 * @property {string} id   server-assigned id, e.g. `p00c0ffee00000001`; also the
 *                         `MediaStream.id` of this participant's tracks on `subscribe`
 * @property {string} name display name
 * @property {boolean} mic    whether the microphone is on
 * @property {boolean} camera whether the camera is on
 * @property {Role} [role]    their role in the room (default participant)
 * @property {boolean} [owner]   the room's owner
 * @property {boolean} [account] signed in (false: a guest who came by link)
 * @property {number} [hand]     place in the raised-hands queue, when raised
 * @property {string} [screen]   mid of their screen track while sharing; the track id is `{id}-{mid}`
 * @property {boolean} [mic_locked] a moderator muted them and has not let them unmute
 * @property {boolean} [reconnecting] their connection dropped; they keep their place while they reconnect
 */

/** @typedef {'participant' | 'presenter' | 'moderator'} Role */

/**
 * A room's security, as everyone in it sees it.
 * @typedef {object} Security
 * @property {boolean} password  a password is needed to enter
 * @property {boolean} lobby     newcomers wait for a moderator
 * @property {boolean} locked    nobody new gets in
 * @property {boolean} presenter_mode only presenters and moderators publish video and screen
 * @property {boolean} multiple_shares several screens may be shared at once
 * @property {'next_account' | 'open_lobby'} on_moderator_leave
 */

/**
 * A chat message. `text` is plain text: show it with textContent, never as HTML.
 * @typedef {object} ChatMessage
 * @property {string} from  sender's id
 * @property {string} name  sender's name when sent
 * @property {string} text
 * @property {string} [to]  recipient's id for a private message
 * @property {number} at    milliseconds since the Unix epoch
 */

/**
 * @typedef {object} Knocker
 * @property {string} id
 * @property {string} name
 * @property {boolean} account
 */

/**
 * An entry of `joined.ice_servers`, passed to `RTCPeerConnection` as is.
 * @typedef {object} IceServer
 * @property {string | string[]} urls
 * @property {string} [username]
 * @property {string} [credential]
 */

/**
 * Why a participant left: it sent `leave`, its connection closed, or its
 * connection went silent.
 * @typedef {'left' | 'disconnected' | 'timeout' | 'removed' | 'ended'} LeaveReason
 */

/**
 * The machine-readable error codes of protocol.md. Typed as an open string
 * too, since a newer server may send codes this client does not know yet.
 * @typedef {'bad_json' | 'unknown_type' | 'bad_field' | 'too_large'
 *   | 'rate_limited' | 'unsupported_version' | 'not_joined' | 'already_joined'
 *   | 'room_full' | 'conferencing_disabled' | 'reaction_not_allowed'
 *   | 'no_pending_offer' | 'stale_answer' | 'sdp_rejected'
 *   | 'bad_candidate' | 'media_failed' | 'password_required' | 'wrong_password'
 *   | 'room_locked' | 'lobby_rejected' | 'blocked' | 'forbidden'
 *   | 'message_too_long' | 'unknown_participant' | 'screen_busy' | 'resume_failed'
 *   | 'no_common_codec'} KnownErrorCode
 */

// ---------------------------------------------------------------------------
// Client → server

/**
 * @typedef {object} JoinMessage
 * @property {'join'} type
 * @property {number} version  must be {@link PROTOCOL_VERSION}
 * @property {string} room     1–64 of `a-z 0-9 - _ .`, starting with a letter or digit
 * @property {string} name     1–64 characters after trimming, no control characters
 * @property {boolean} [mic]    default true
 * @property {boolean} [camera] default true
 * @property {string} [password] the room's password, when it has one
 */

/**
 * The client's offer for its `publish` connection.
 * @typedef {object} ClientOfferMessage
 * @property {'offer'} type
 * @property {'publish'} pc
 * @property {string} sdp
 */

/**
 * The client's answer to the server's `subscribe` offer.
 * @typedef {object} ClientAnswerMessage
 * @property {'answer'} type
 * @property {'subscribe'} pc
 * @property {number} [offer_id] the answered offer's `offer_id`
 * @property {string} sdp
 */

/**
 * A trickled ICE candidate; the empty string means end of candidates.
 * @typedef {object} CandidateMessage
 * @property {'candidate'} type
 * @property {PcName} pc
 * @property {string} candidate
 */

/**
 * Own microphone/camera state as shown to others; a missing field keeps its value.
 * @typedef {object} MediaMessage
 * @property {'media'} type
 * @property {boolean} [mic]
 * @property {boolean} [camera]
 */

/**
 * A reaction; only the emojis listed in `joined.reactions` are accepted.
 * @typedef {object} ReactionMessage
 * @property {'reaction'} type
 * @property {string} emoji
 */

/** @typedef {{type: 'leave'}} LeaveMessage */
/** @typedef {{type: 'ping'}} PingMessage */
/** @typedef {{type: 'resume', participant: string, token: string}} ResumeMessage */
/**
 * How our media reaches the server, for moderators and the administrator.
 * @typedef {{type: 'connection', path: 'udp' | 'tcp' | 'turn_udp' | 'turn_tcp' | 'turn_tls',
 *   rtt_ms: number, loss_permille: number}} ConnectionReportMessage
 */
/** @typedef {{type: 'chat', text: string, to?: string}} ChatSendMessage */
/** @typedef {{type: 'hand', raised: boolean}} HandMessage */
/** @typedef {{type: 'screen', mid: string | null}} ScreenMessage */
/**
 * @typedef {{type: 'video_sizes', sizes: {mid: string, width: number, height: number}[]}}
 *   VideoSizesMessage
 */
/**
 * @typedef {{type: 'security', password?: string, lobby?: boolean, locked?: boolean,
 *   presenter_mode?: boolean, multiple_shares?: boolean,
 *   on_moderator_leave?: 'next_account' | 'open_lobby'}} SecurityMessage
 */
/** @typedef {{type: 'admit' | 'reject', id?: string, all?: boolean}} LobbyDecisionMessage */
/**
 * @typedef {{type: 'moderate', action: ModerateAction, participant: string,
 *   forbid_unmute?: boolean, block?: boolean, role?: Role}} ModerateMessage
 */
/**
 * @typedef {'mute' | 'allow_unmute' | 'ask_camera' | 'stop_screen' | 'lower_hand'
 *   | 'remove' | 'role'} ModerateAction
 */
/** @typedef {{type: 'end_meeting'}} EndMeetingMessage */
/** @typedef {{type: 'presence', status: 'available' | 'away' | 'dnd'}} PresenceSendMessage */
/** @typedef {{type: 'call', to: number, video?: boolean}} CallMessage */
/** @typedef {{type: 'call_answer' | 'call_decline' | 'call_hangup', call_id: number}} CallActionMessage */

/**
 * Every message a client may send.
 * @typedef {JoinMessage | ClientOfferMessage | ClientAnswerMessage
 *   | CandidateMessage | MediaMessage | ReactionMessage | LeaveMessage
 *   | PingMessage | ChatSendMessage | HandMessage | ScreenMessage | VideoSizesMessage
 *   | SecurityMessage
 *   | LobbyDecisionMessage | ModerateMessage | EndMeetingMessage | PresenceSendMessage
 *   | CallMessage | CallActionMessage | ResumeMessage | ConnectionReportMessage} ClientMessage
 */

// ---------------------------------------------------------------------------
// Server → client

/**
 * You are in the room.
 * @typedef {object} JoinedMessage
 * @property {'joined'} type
 * @property {number} version
 * @property {string} room           the room name, lower-cased by the server
 * @property {Participant} self
 * @property {Participant[]} participants everyone else, in order of arrival
 * @property {IceServer[]} ice_servers
 * @property {RTCIceTransportPolicy} [ice_transport_policy] `relay`: connect through TURN only
 * @property {string[]} [reactions]  the reactions this server allows, in display order
 * @property {Security} [security]   the room's security
 * @property {ChatMessage[]} [chat]  the meeting's room chat so far, oldest first
 * @property {string} [resume_token] send with `resume` on a new connection to keep this place
 * @property {boolean} [resumed]     this `joined` answers `resume`
 */

/** @typedef {{type: 'lobby_waiting', room: string}} LobbyWaitingMessage */
/** @typedef {{type: 'lobby', waiting: Knocker[]}} LobbyMessage */
/** @typedef {{type: 'chat', message: ChatMessage}} ServerChatMessage */
/** @typedef {{type: 'security', security: Security}} ServerSecurityMessage */
/**
 * @typedef {{type: 'moderation', action: ModerateAction, by: string,
 *   forbid_unmute?: boolean}} ModerationMessage
 */
/** @typedef {{type: 'removed', reason: LeaveReason, by: string, blocked?: boolean}} RemovedMessage */
/** @typedef {{type: 'active_speaker', id: string}} ActiveSpeakerMessage */
/** @typedef {'available' | 'away' | 'busy' | 'dnd' | 'offline'} PresenceStatus */
/** @typedef {{type: 'presence', user: number, status: PresenceStatus}} PresenceMessage */
/** @typedef {{id: number, name: string}} CallParty */
/** @typedef {{type: 'incoming_call', call_id: number, from: CallParty, video: boolean}} IncomingCallMessage */
/** @typedef {{type: 'call_ringing', call_id: number, to: CallParty}} CallRingingMessage */
/** @typedef {{type: 'call_accepted', call_id: number, room: string}} CallAcceptedMessage */
/**
 * @typedef {'declined' | 'no_answer' | 'busy' | 'dnd' | 'offline' | 'cancelled'
 *   | 'answered_elsewhere' | 'hung_up'} CallEndReason
 */
/** @typedef {{type: 'call_ended', call_id: number, reason: CallEndReason}} CallEndedMessage */

/**
 * @typedef {object} ParticipantJoinedMessage
 * @property {'participant_joined'} type
 * @property {Participant} participant
 */

/**
 * @typedef {object} ParticipantUpdatedMessage
 * @property {'participant_updated'} type
 * @property {Participant} participant
 */

/**
 * Someone (possibly you) reacted.
 * @typedef {object} ServerReactionMessage
 * @property {'reaction'} type
 * @property {string} participant the sender's id
 * @property {string} emoji
 */

/**
 * The administrator changed what participants may do; replaces what
 * `joined` said.
 * @typedef {object} RoomSettingsMessage
 * @property {'room_settings'} type
 * @property {string[]} reactions the reactions now allowed
 */

/**
 * @typedef {object} ParticipantLeftMessage
 * @property {'participant_left'} type
 * @property {string} id
 * @property {LeaveReason} reason
 */

/**
 * The server's answer to the client's `publish` offer.
 * @typedef {object} ServerAnswerMessage
 * @property {'answer'} type
 * @property {'publish'} pc
 * @property {string} sdp
 */

/**
 * The server's offer for the `subscribe` connection.
 * @typedef {object} ServerOfferMessage
 * @property {'offer'} type
 * @property {'subscribe'} pc
 * @property {number} offer_id numbers the offers; the answer repeats it
 * @property {boolean} [renew] replace the subscribe connection before applying
 * @property {string} sdp
 */

/**
 * Send the publish track `mid` in `codec`: someone cannot decode the codec
 * it is sent in, and everyone can decode this one. Put it first in the
 * track's codec preferences and offer again.
 * @typedef {object} PublishCodecMessage
 * @property {'publish_codec'} type
 * @property {string} mid
 * @property {'vp8' | 'vp9' | 'h264' | 'av1' | (string & {})} codec
 */

/** @typedef {{type: 'left'}} LeftMessage */
/** @typedef {{type: 'pong'}} PongMessage */
/**
 * A participant's media path (to moderators).
 * @typedef {{type: 'connection_stats', participant: string,
 *   path: 'udp' | 'tcp' | 'turn_udp' | 'turn_tcp' | 'turn_tls', rtt_ms: number,
 *   loss_permille: number}} ConnectionStatsMessage
 */

/**
 * @typedef {object} ErrorMessage
 * @property {'error'} type
 * @property {KnownErrorCode | (string & {})} code for programs
 * @property {string} message for people
 * @property {string} [in_reply_to] the `type` of the offending message, when it could be read
 */

/**
 * Every message the server may send.
 * @typedef {JoinedMessage | ParticipantJoinedMessage | ParticipantUpdatedMessage
 *   | ParticipantLeftMessage | ServerReactionMessage | RoomSettingsMessage | ServerAnswerMessage
 *   | ServerOfferMessage | LeftMessage | PongMessage | ErrorMessage | LobbyWaitingMessage
 *   | LobbyMessage | ServerChatMessage | ServerSecurityMessage | ModerationMessage
 *   | RemovedMessage | ActiveSpeakerMessage | PresenceMessage | IncomingCallMessage
 *   | CallRingingMessage | CallAcceptedMessage | CallEndedMessage | ConnectionStatsMessage
 *   | PublishCodecMessage} ServerMessage
 */

// ---------------------------------------------------------------------------
// Client

/**
 * How the WebSocket ended.
 * @typedef {object} ConnectionClosed
 * @property {number} code     WebSocket close code (1006 when the network dropped)
 * @property {string} reason
 * @property {boolean} expected true when this side called {@link SignalingClient#close}
 */

/**
 * The events of a {@link SignalingClient}: one per server message type, named
 * after its `type`, plus `close` when the WebSocket ends.
 * @typedef {object} SignalingEvents
 * @property {JoinedMessage} joined
 * @property {ParticipantJoinedMessage} participant_joined
 * @property {ParticipantUpdatedMessage} participant_updated
 * @property {ParticipantLeftMessage} participant_left
 * @property {ServerReactionMessage} reaction
 * @property {RoomSettingsMessage} room_settings
 * @property {ServerAnswerMessage} answer
 * @property {ServerOfferMessage} offer
 * @property {LeftMessage} left
 * @property {PongMessage} pong
 * @property {ErrorMessage} error
 * @property {LobbyWaitingMessage} lobby_waiting
 * @property {LobbyMessage} lobby
 * @property {ServerChatMessage} chat
 * @property {ServerSecurityMessage} security
 * @property {ModerationMessage} moderation
 * @property {RemovedMessage} removed
 * @property {ActiveSpeakerMessage} active_speaker
 * @property {PresenceMessage} presence
 * @property {IncomingCallMessage} incoming_call
 * @property {CallRingingMessage} call_ringing
 * @property {CallAcceptedMessage} call_accepted
 * @property {CallEndedMessage} call_ended
 * @property {ConnectionStatsMessage} connection_stats
 * @property {PublishCodecMessage} publish_codec
 * @property {ConnectionClosed} close
 */

/**
 * How long a request (`join`, `leave`, `ping`) waits for its reply. The
 * server answers at once; this only stops a promise from hanging forever if
 * a reply is lost (say, an error sent without `in_reply_to`).
 */
const REQUEST_TIMEOUT_MS = 15_000;

/** The server message types this client understands. */
const SERVER_TYPES = new Set([
  'joined', 'participant_joined', 'participant_updated', 'participant_left',
  'answer', 'offer', 'left', 'pong', 'error', 'reaction', 'room_settings',
  'lobby_waiting', 'lobby', 'chat', 'security', 'moderation', 'removed', 'active_speaker',
  'presence', 'incoming_call', 'call_ringing', 'call_accepted', 'call_ended', 'connection_stats',
  'publish_codec',
]);

/**
 * An `error` from the server (or a failure to reach it), as a throwable.
 * `code` is the protocol's error code, or one of this client's own:
 * `connection_closed` when the WebSocket ended before the reply came,
 * `timeout` when no reply came at all.
 */
export class SignalingError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {string} [inReplyTo]
   */
  constructor(code, message, inReplyTo) {
    super(message);
    this.name = 'SignalingError';
    this.code = code;
    this.inReplyTo = inReplyTo;
  }
}

/** The `/ws` URL on the server that served this page. */
export function defaultSignalingUrl() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  return `${scheme}://${location.host}/ws`;
}

/**
 * The WebSocket to the server, with typed messages in both directions.
 *
 * Server messages are delivered as events named after their `type`
 * (`client.on('participant_joined', …)`); requests that have a reply
 * (`join`, `leave`, `ping`) also have promise-returning helpers.
 *
 * @extends {Emitter<SignalingEvents>}
 */
export class SignalingClient extends Emitter {
  /** @type {WebSocket | null} */
  #ws = null;
  #closing = false;
  /** @type {ConnectionClosed | null} */
  #closed = null;

  /** @param {string} [url] defaults to {@link defaultSignalingUrl} */
  constructor(url) {
    super();
    this.url = url ?? defaultSignalingUrl();
  }

  /** True while the WebSocket is open and usable. */
  get isOpen() {
    return this.#ws !== null && this.#ws.readyState === WebSocket.OPEN;
  }

  /**
   * Opens the WebSocket. Resolves once it is open; rejects with a
   * `SignalingError('connection_closed')` if it closes first.
   * A client connects once; {@link reopen} connects it again after a close.
   *
   * @returns {Promise<void>}
   */
  connect() {
    if (this.#ws) return Promise.reject(new Error('SignalingClient.connect called twice'));
    const ws = new WebSocket(this.url);
    this.#ws = ws;
    return new Promise((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      // A socket given up by drop() or replaced by reopen() says nothing more.
      ws.addEventListener('message', (event) => {
        if (ws === this.#ws) this.#receive(event.data);
      });
      // 'error' is always followed by 'close', which carries the details.
      ws.addEventListener('close', (event) => {
        reject(new SignalingError('connection_closed', 'Could not connect to the server.'));
        if (ws !== this.#ws || this.#closed) return;
        this.#closed = { code: event.code, reason: event.reason, expected: this.#closing };
        this.emit('close', this.#closed);
      });
    });
  }

  /**
   * Gives the connection up as lost (it stopped answering), without waiting
   * for the closing handshake a dead network never completes: `close`
   * follows at once, with `expected: false`.
   */
  drop() {
    const ws = this.#ws;
    if (!ws || this.#closed) return;
    this.#closed = { code: 1006, reason: 'no answer from the server', expected: false };
    ws.close(4000, 'no answer');
    this.emit('close', this.#closed);
  }

  /**
   * Opens a new WebSocket after the last one closed, keeping every
   * listener: a call resumes on it with {@link resume}.
   * @returns {Promise<void>}
   */
  reopen() {
    if (this.#ws && this.#ws.readyState < WebSocket.CLOSING) this.#ws.close(1000, 'reopened');
    this.#ws = null;
    this.#closed = null;
    this.#closing = false;
    return this.connect();
  }

  /**
   * Takes up one's place in the room again on this (new) connection.
   * Resolves with `joined` (`resumed: true`); rejects with
   * `SignalingError('resume_failed')` when the place is gone.
   * @param {string} participant
   * @param {string} token
   * @returns {Promise<JoinedMessage>}
   */
  resume(participant, token) {
    return this.#request({ type: 'resume', participant, token }, 'joined', 'resume');
  }

  /**
   * Sends one message. Messages sent while the socket is not open are
   * dropped (and reported by the return value): after a close there is
   * nobody to send to, and the `close` event already told the UI.
   *
   * @param {ClientMessage} message
   * @returns {boolean} whether the message was handed to the socket
   */
  send(message) {
    if (!this.#ws || this.#ws.readyState !== WebSocket.OPEN) return false;
    this.#ws.send(JSON.stringify(message));
    return true;
  }

  /**
   * Joins a room. Resolves with `joined`, or rejects with a `SignalingError`
   * carrying the server's error code (`room_full`, `unsupported_version`, …).
   *
   * While the room's lobby holds the request (`lobby_waiting`), there is
   * no time limit: the promise settles when a moderator decides.
   *
   * @param {{room: string, name: string, mic?: boolean, camera?: boolean, password?: string}} request
   * @returns {Promise<JoinedMessage>}
   */
  join(request) {
    return this.#request(
      { type: 'join', version: PROTOCOL_VERSION, ...request },
      'joined',
      'join',
    );
  }

  /**
   * Leaves the room; the connection stays open.
   * @returns {Promise<LeftMessage>}
   */
  leave() {
    return this.#request({ type: 'leave' }, 'left', 'leave');
  }

  /**
   * Application-level round trip.
   * @returns {Promise<PongMessage>}
   */
  ping() {
    return this.#request({ type: 'ping' }, 'pong', 'ping');
  }

  /**
   * Closes the WebSocket. The `close` event that follows has `expected: true`,
   * so the UI can tell a deliberate hang-up from a lost connection.
   */
  close() {
    this.#closing = true;
    if (this.#ws && this.#ws.readyState < WebSocket.CLOSING) this.#ws.close(1000, 'bye');
  }

  /**
   * Sends `message` and waits for the reply of type `replyType`, or for an
   * `error` whose `in_reply_to` is `requestType`, or for the socket to close.
   *
   * @template {'joined' | 'left' | 'pong'} R
   * @param {ClientMessage} message
   * @param {R} replyType
   * @param {ClientMessage['type']} requestType
   * @returns {Promise<SignalingEvents[R]>}
   */
  #request(message, replyType, requestType) {
    return new Promise((resolve, reject) => {
      if (this.#closed || !this.send(message)) {
        reject(new SignalingError('connection_closed', 'Not connected to the server.', requestType));
        return;
      }
      const timer = setTimeout(() => {
        done();
        reject(new SignalingError('timeout', 'The server did not reply in time.', requestType));
      }, REQUEST_TIMEOUT_MS);
      /** @type {Array<() => void>} */
      const offs = [];
      if (replyType === 'joined') offs.push(this.on('lobby_waiting', () => clearTimeout(timer)));
      const done = () => {
        clearTimeout(timer);
        offs.forEach((off) => off());
      };
      offs.push(this.on(replyType, (reply) => {
        done();
        resolve(reply);
      }));
      offs.push(this.on('error', (err) => {
        if (err.in_reply_to !== requestType) return;
        done();
        reject(new SignalingError(err.code, err.message, err.in_reply_to));
      }));
      offs.push(this.on('close', () => {
        done();
        reject(new SignalingError('connection_closed', 'The connection to the server was lost.', requestType));
      }));
    });
  }

  /**
   * Parses one frame and emits it. Frames that are not JSON objects with a
   * known `type` are ignored: a newer server may add message types, and the
   * protocol promises old clients can ignore them.
   *
   * @param {unknown} data
   */
  #receive(data) {
    if (typeof data !== 'string') return;
    /** @type {unknown} */
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      console.warn('parley: ignoring a frame that is not JSON');
      return;
    }
    if (!isServerMessage(parsed)) {
      console.debug('parley: ignoring an unknown server message', parsed);
      return;
    }
    this.emit(parsed.type, parsed);
  }
}

/**
 * Checks the one thing dispatch relies on: a known `type`. Field contents are
 * trusted to follow protocol.md; the server is the other half of the contract.
 *
 * @param {unknown} value
 * @returns {value is ServerMessage}
 */
function isServerMessage(value) {
  return typeof value === 'object' && value !== null && 'type' in value
    && typeof value.type === 'string' && SERVER_TYPES.has(value.type);
}
