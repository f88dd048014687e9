// @ts-check
/**
 * Meeting tools around the call: chat, people (with the lobby and
 * moderator actions), raised hands, reactions, screen sharing, and the
 * room security dialog. The server enforces every rule; this module only
 * offers what the user's role allows and says what the server answered.
 *
 * Chat text is always shown with `textContent`; links are made with
 * `createElement('a')` and only for http(s) URLs, so no message can inject
 * HTML.
 *
 * @module
 */

import { byId } from './dom.js';
import { showToast } from './toast.js';

/** @typedef {import('../protocol.js').SignalingClient} SignalingClient */
/** @typedef {import('../protocol.js').Participant} Participant */
/** @typedef {import('../protocol.js').ChatMessage} ChatMessage */
/** @typedef {import('../protocol.js').Security} Security */
/** @typedef {import('../protocol.js').Knocker} Knocker */
/** @typedef {import('../protocol.js').JoinedMessage} JoinedMessage */
/** @typedef {import('../session.js').MediaSession} MediaSession */

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"]+/g;

/**
 * Appends `text` to `parent` as text nodes, with http(s) URLs as links.
 * @param {HTMLElement} parent
 * @param {string} text
 */
export function appendLinkified(parent, text) {
  let last = 0;
  for (const match of text.matchAll(URL_PATTERN)) {
    const index = match.index ?? 0;
    if (index > last) parent.append(document.createTextNode(text.slice(last, index)));
    const a = document.createElement('a');
    a.href = match[0];
    a.textContent = match[0];
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
    parent.append(a);
    last = index + match[0].length;
  }
  if (last < text.length) parent.append(document.createTextNode(text.slice(last)));
}

/**
 * @param {string} label
 * @param {() => void} run
 * @param {string} [className]
 */
function button(label, run, className = 'small') {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = label;
  b.addEventListener('click', run);
  return b;
}

export class MeetingTools {
  /** @type {Security} */
  security;
  /** @type {Knocker[]} */
  lobby = [];
  /** Room chat and private messages seen, oldest first. @type {ChatMessage[]} */
  chat = [];
  /** @type {string[]} */
  reactions = [];
  #signaling;
  #session;
  #self;
  #people;
  #onSelfMuted;
  #onTileReaction;
  /** @type {Array<() => void>} */
  #offs = [];
  /** @type {MediaStream | null} */
  #screen = null;
  #unread = 0;

  /**
   * @param {object} parts
   * @param {SignalingClient} parts.signaling
   * @param {MediaSession} parts.session
   * @param {JoinedMessage} parts.joined
   * @param {() => Participant} parts.self  our current participant record
   * @param {() => Map<string, Participant>} parts.people the others, by id
   * @param {() => void} parts.onSelfMuted a moderator turned our microphone off
   * @param {(id: string, emoji: string) => void} parts.onTileReaction
   */
  constructor({ signaling, session, joined, self, people, onSelfMuted, onTileReaction }) {
    this.#signaling = signaling;
    this.#session = session;
    this.#self = self;
    this.#people = people;
    this.#onSelfMuted = onSelfMuted;
    this.#onTileReaction = onTileReaction;
    this.security = joined.security ?? {
      password: false, lobby: false, locked: false, presenter_mode: false,
      multiple_shares: false, on_moderator_leave: 'next_account',
    };
    this.reactions = joined.reactions ?? [];
    byId('chat-log').replaceChildren();
    for (const m of joined.chat ?? []) this.#addChat(m, false);

    this.#offs.push(
      signaling.on('chat', ({ message }) => this.#addChat(message, true)),
      signaling.on('lobby', ({ waiting }) => {
        const known = new Set(this.lobby.map((k) => k.id));
        this.lobby = waiting;
        // Whatever panel is open, a moderator hears of each newcomer.
        for (const k of waiting.filter((w) => !known.has(w.id))) {
          showToast(`${k.name} is waiting in the lobby.`, {
            kind: 'info',
            timeoutMs: 15_000,
            action: { label: 'Admit', run: () => signaling.send({ type: 'admit', id: k.id }) },
          });
        }
        this.render();
      }),
      signaling.on('security', ({ security }) => {
        this.security = security;
        this.render();
      }),
      signaling.on('room_settings', ({ reactions }) => {
        this.reactions = reactions;
        this.#renderReactions();
      }),
      signaling.on('reaction', ({ participant, emoji }) => this.#onTileReaction(participant, emoji)),
      signaling.on('moderation', (m) => this.#onModeration(m)),
    );
    this.#listen('toggle-chat', 'click', () => this.#togglePanel('chat'));
    this.#listen('toggle-people', 'click', () => this.#togglePanel('people'));
    this.#listen('toggle-hand', 'click', () => this.#toggleHand());
    this.#listen('toggle-screen', 'click', () => this.#toggleScreen());
    this.#listen('toggle-reactions', 'click', () => {
      const bar = byId('reaction-bar');
      bar.hidden = !bar.hidden;
      byId('toggle-reactions').setAttribute('aria-expanded', String(!bar.hidden));
    });
    this.#listen('chat-form', 'submit', (event) => {
      event.preventDefault();
      this.#sendChat();
    });
    this.#listen('chat-text', 'keydown', (event) => {
      const e = /** @type {KeyboardEvent} */ (event);
      if (e.key === 'Enter' && !e.shiftKey) {
        e.preventDefault();
        this.#sendChat();
      }
    });
    this.#listen('admit-all', 'click', () => signaling.send({ type: 'admit', all: true }));
    this.#listen('reject-all', 'click', () => signaling.send({ type: 'reject', all: true }));
    this.#listen('end-meeting', 'click', () => {
      if (confirm('End the meeting for everyone?')) signaling.send({ type: 'end_meeting' });
    });
    this.#listen('open-security', 'click', () => this.#openSecurity());
    this.#wireSecurityDialog();
    this.#renderReactions();
    this.render();
  }

  /** Removes every listener and stops a screen share. */
  close() {
    this.#offs.forEach((off) => off());
    this.#offs = [];
    this.#screen?.getTracks().forEach((t) => t.stop());
    this.#screen = null;
    const dialog = /** @type {HTMLDialogElement} */ (byId('security-dialog'));
    if (dialog.open) dialog.close();
  }

  get isModerator() {
    return this.#self().role === 'moderator';
  }

  /**
   * @param {string} id
   * @param {string} type
   * @param {(event: Event) => void} handler
   */
  #listen(id, type, handler) {
    const element = byId(id);
    element.addEventListener(type, handler);
    this.#offs.push(() => element.removeEventListener(type, handler));
  }

  /** Redraws everything that depends on roles, people, the lobby or security. */
  render() {
    const moderator = this.isModerator;
    byId('open-security').hidden = !moderator;
    byId('end-meeting').hidden = !moderator;
    byId('lobby-box').hidden = !moderator || this.lobby.length === 0;
    const count = byId('lobby-count');
    count.hidden = !moderator || this.lobby.length === 0;
    count.textContent = String(this.lobby.length);
    byId('lobby-list').replaceChildren(...this.lobby.map((k) => this.#knockerRow(k)));
    this.#renderPeople();
    this.#renderChatTargets();
    const self = this.#self();
    const hand = byId('toggle-hand');
    hand.setAttribute('aria-pressed', String(self.hand != null));
    hand.classList.toggle('on', self.hand != null);
    const screen = byId('toggle-screen');
    const mayPresent = !this.security.presenter_mode || self.role === 'moderator' || self.role === 'presenter';
    screen.toggleAttribute('disabled', !mayPresent && !this.#screen);
    screen.setAttribute('aria-pressed', String(this.#screen !== null));
    screen.classList.toggle('on', this.#screen !== null);
    document.body.dataset.role = self.role ?? 'participant';
  }

  /** @param {Knocker} k */
  #knockerRow(k) {
    const li = document.createElement('li');
    li.dataset.knockerId = k.id;
    const name = document.createElement('span');
    name.textContent = k.account ? k.name : `${k.name} (guest)`;
    li.append(
      name,
      button('Admit', () => this.#signaling.send({ type: 'admit', id: k.id }), 'small admit'),
      button('Reject', () => this.#signaling.send({ type: 'reject', id: k.id }), 'small secondary reject'),
    );
    return li;
  }

  #renderPeople() {
    const everyone = [this.#self(), ...this.#people().values()];
    const moderator = this.isModerator;
    const selfId = this.#self().id;
    const rows = everyone.map((p) => {
      const li = document.createElement('li');
      li.dataset.participantId = p.id;
      const name = document.createElement('span');
      name.className = 'person-name';
      const tags = [p.owner ? 'owner' : p.role === 'moderator' ? 'moderator' : p.role === 'presenter' ? 'presenter' : '',
        p.account ? '' : 'guest', p.id === selfId ? 'you' : ''].filter(Boolean);
      name.textContent = tags.length ? `${p.name} (${tags.join(', ')})` : p.name;
      li.append(name);
      if (moderator && p.id !== selfId) {
        const actions = document.createElement('span');
        actions.className = 'person-actions';
        const act = (/** @type {import('../protocol.js').ModerateAction} */ action, extra = {}) =>
          this.#signaling.send({ type: 'moderate', action, participant: p.id, ...extra });
        if (p.mic) actions.append(button('Mute', () => act('mute'), 'small mute'));
        if (!p.mic_locked) actions.append(button('Mute, no unmute', () => act('mute', { forbid_unmute: true }), 'small mute-lock'));
        else actions.append(button('Allow unmute', () => act('allow_unmute'), 'small'));
        if (!p.camera) actions.append(button('Ask for camera', () => act('ask_camera'), 'small'));
        if (p.screen) actions.append(button('Stop share', () => act('stop_screen'), 'small'));
        if (p.hand != null) actions.append(button('Lower hand', () => act('lower_hand'), 'small'));
        if (!p.owner) {
          if (p.role !== 'moderator') actions.append(button('Make moderator', () => act('role', { role: 'moderator' }), 'small make-moderator'));
          if (p.role === 'participant' || !p.role) actions.append(button('Make presenter', () => act('role', { role: 'presenter' }), 'small'));
          if (p.role && p.role !== 'participant') actions.append(button('Make participant', () => act('role', { role: 'participant' }), 'small'));
          actions.append(button('Remove', () => {
            const block = confirm(`Remove ${p.name}. Also block them from coming back to this meeting?`);
            act('remove', { block });
          }, 'small danger remove'));
        }
        li.append(actions);
      }
      return li;
    });
    byId('people-list').replaceChildren(...rows);
    const hands = everyone.filter((p) => p.hand != null).sort((a, b) => (a.hand ?? 0) - (b.hand ?? 0));
    byId('hands-box').hidden = hands.length === 0;
    byId('hands-list').replaceChildren(...hands.map((p) => {
      const li = document.createElement('li');
      li.textContent = p.name;
      return li;
    }));
  }

  #renderChatTargets() {
    const select = /** @type {HTMLSelectElement} */ (byId('chat-to'));
    const chosen = select.value;
    const options = [new Option('Everyone', '')];
    for (const p of this.#people().values()) options.push(new Option(`${p.name} (private)`, p.id));
    select.replaceChildren(...options);
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : '';
  }

  #renderReactions() {
    const bar = byId('reaction-bar');
    bar.replaceChildren(...this.reactions.map((emoji) => {
      const b = button(emoji, () => this.#signaling.send({ type: 'reaction', emoji }), 'reaction');
      b.setAttribute('aria-label', `React ${emoji}`);
      return b;
    }));
    byId('toggle-reactions').hidden = this.reactions.length === 0;
  }

  /** @param {'chat' | 'people'} which */
  #togglePanel(which) {
    const panel = byId(`${which}-panel`);
    const other = byId(which === 'chat' ? 'people-panel' : 'chat-panel');
    const show = panel.hidden;
    panel.hidden = !show;
    if (show) other.hidden = true;
    byId('side').hidden = panel.hidden && other.hidden;
    byId('toggle-chat').setAttribute('aria-pressed', String(!byId('chat-panel').hidden));
    byId('toggle-people').setAttribute('aria-pressed', String(!byId('people-panel').hidden));
    if (which === 'chat' && show) {
      this.#unread = 0;
      byId('chat-unread').hidden = true;
      byId('chat-text').focus();
    }
  }

  #sendChat() {
    const input = /** @type {HTMLTextAreaElement} */ (byId('chat-text'));
    const text = input.value.trim();
    if (!text) return;
    const to = /** @type {HTMLSelectElement} */ (byId('chat-to')).value;
    if (this.#signaling.send(to ? { type: 'chat', text, to } : { type: 'chat', text })) input.value = '';
  }

  /**
   * @param {ChatMessage} m
   * @param {boolean} live false for messages replayed at join
   */
  #addChat(m, live) {
    this.chat.push(m);
    const li = document.createElement('li');
    li.className = 'chat-message';
    if (m.to) li.classList.add('private');
    if (m.from === this.#self().id) li.classList.add('mine');
    const head = document.createElement('div');
    head.className = 'chat-head';
    const who = document.createElement('strong');
    const toName = m.to ? (m.to === this.#self().id ? 'you' : this.#people().get(m.to)?.name ?? 'someone') : '';
    who.textContent = m.to ? `${m.name} → ${toName} (private)` : m.name;
    const time = document.createElement('time');
    const at = new Date(m.at);
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    head.append(who, time);
    const body = document.createElement('div');
    body.className = 'chat-text';
    appendLinkified(body, m.text);
    li.append(head, body);
    const log = byId('chat-log');
    log.append(li);
    log.scrollTop = log.scrollHeight;
    if (live && byId('chat-panel').hidden && m.from !== this.#self().id) {
      this.#unread += 1;
      const badge = byId('chat-unread');
      badge.textContent = String(this.#unread);
      badge.hidden = false;
    }
  }

  #toggleHand() {
    this.#signaling.send({ type: 'hand', raised: this.#self().hand == null });
  }

  async #toggleScreen() {
    if (this.#screen) {
      await this.#stopScreen();
      return;
    }
    /** @type {MediaStream} */
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
    } catch (err) {
      if (!(err instanceof DOMException && err.name === 'NotAllowedError')) {
        showToast('Your screen could not be shared.');
      }
      return;
    }
    this.#screen = stream;
    const [video] = stream.getVideoTracks();
    video?.addEventListener('ended', () => this.#stopScreen());
    try {
      const mid = await this.#session.startScreen(stream);
      if (mid) this.#signaling.send({ type: 'screen', mid });
    } catch (err) {
      console.warn('parley: screen share failed', err);
      showToast('Your screen could not be shared.');
      await this.#stopScreen();
    }
    this.render();
  }

  async #stopScreen() {
    if (!this.#screen) return;
    this.#screen.getTracks().forEach((t) => t.stop());
    this.#screen = null;
    this.#signaling.send({ type: 'screen', mid: null });
    await this.#session.stopScreen();
    this.render();
  }

  /** @param {import('../protocol.js').ModerationMessage} m */
  #onModeration(m) {
    const by = m.by || 'A moderator';
    switch (m.action) {
      case 'mute':
        this.#onSelfMuted();
        showToast(m.forbid_unmute
          ? `${by} muted you. You can unmute when they allow it.`
          : `${by} muted you.`, { kind: 'info' });
        break;
      case 'allow_unmute':
        showToast(`${by} allows you to unmute.`, { kind: 'info' });
        break;
      case 'ask_camera':
        showToast(`${by} asks you to turn your camera on.`, { kind: 'info' });
        break;
      case 'stop_screen':
        this.#screen?.getTracks().forEach((t) => t.stop());
        this.#screen = null;
        this.#session.stopScreen();
        showToast(`${by} stopped your screen share.`, { kind: 'info' });
        break;
      case 'lower_hand':
        showToast(`${by} lowered your hand.`, { kind: 'info' });
        break;
      case 'role':
        showToast(m.by ? `${by} changed your role.` : 'You are now a moderator of this meeting.', { kind: 'info' });
        break;
    }
    this.render();
  }

  #openSecurity() {
    const dialog = /** @type {HTMLDialogElement} */ (byId('security-dialog'));
    this.#renderSecurity();
    dialog.showModal();
  }

  #renderSecurity() {
    const s = this.security;
    byId('password-state').textContent = s.password ? '(set)' : '(none)';
    /** @type {HTMLInputElement} */ (byId('security-lobby')).checked = s.lobby;
    /** @type {HTMLInputElement} */ (byId('security-locked')).checked = s.locked;
    /** @type {HTMLInputElement} */ (byId('security-presenter')).checked = s.presenter_mode;
    /** @type {HTMLInputElement} */ (byId('security-shares')).checked = s.multiple_shares;
    /** @type {HTMLSelectElement} */ (byId('security-handover')).value = s.on_moderator_leave;
    byId('remove-password').toggleAttribute('disabled', !s.password);
  }

  #wireSecurityDialog() {
    const send = (/** @type {Omit<import('../protocol.js').SecurityMessage, 'type'>} */ change) =>
      this.#signaling.send({ type: 'security', ...change });
    /** @param {string} id */
    const checked = (id) => /** @type {HTMLInputElement} */ (byId(id)).checked;
    this.#listen('set-password', 'click', () => {
      const input = /** @type {HTMLInputElement} */ (byId('security-password'));
      if (!input.value) {
        showToast('Type the new password first.');
        return;
      }
      send({ password: input.value });
      input.value = '';
      showToast('Room password set. Share it with the people you invite.', { kind: 'info' });
    });
    this.#listen('remove-password', 'click', () => send({ password: '' }));
    this.#listen('security-lobby', 'change', () => send({ lobby: checked('security-lobby') }));
    this.#listen('security-locked', 'change', () => send({ locked: checked('security-locked') }));
    this.#listen('security-presenter', 'change', () => send({ presenter_mode: checked('security-presenter') }));
    this.#listen('security-shares', 'change', () => send({ multiple_shares: checked('security-shares') }));
    this.#listen('security-handover', 'change', () => {
      const value = /** @type {HTMLSelectElement} */ (byId('security-handover')).value;
      send({ on_moderator_leave: value === 'open_lobby' ? 'open_lobby' : 'next_account' });
    });
    this.#offs.push(this.#signaling.on('security', () => this.#renderSecurity()));
  }
}
