// Running a meeting in real Chromium pages through the real server: the
// owner's lobby and admit/reject, a room password, chat (with HTML shown as
// text and replayed to a late joiner), reactions only from the allowed list,
// a moderator's mute stopping the audio that reaches others, a screen share
// decoded by the others, moderator rights surviving a reload, and the lobby
// still run after the moderator leaves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  clickJoin, eventually, launchBrowser, openRoom, receivedByParticipant, recordSignaling,
  roomName, signalingLog, signedInContext, signedInUsers, sleep, startServer, waitForPrejoin,
} from './harness.mjs';

const OWNER = { login: 'owen@example.org', password: 'owner passphrase 1', name: 'Owen' };
const BEA = { login: 'bea@example.org', password: 'bea passphrase 22', name: 'Bea' };

/** @param {import('playwright-core').Page} page */
const state = (page) => page.evaluate(() => {
  const p = /** @type {any} */ (window).parley;
  return {
    state: document.body.dataset.state,
    lobby: document.body.dataset.lobby ?? null,
    role: p.self?.role ?? null,
    participants: p.participants.length,
    tiles: document.querySelectorAll('.tile').length,
    error: document.getElementById('join-error')?.textContent ?? '',
  };
});

/** Clicks Join without waiting to get in (lobby, password). */
async function knock(page, name) {
  await page.fill('#name', name);
  await page.click('#join');
}

test('moderators, lobby, password, chat, reactions, mute and screen share', { timeout: 240_000 }, async (t) => {
  const server = await startServer();
  const chrome = await launchBrowser();
  t.after(async () => {
    await chrome.close();
    await server.stop();
  });
  const [ownerCookie, beaCookie] = await signedInUsers(server, [OWNER, BEA]);
  const room = roomName('meeting');
  const browser = chrome.browser;

  // The owner's account creates the room and moderates it.
  const ownerContext = await signedInContext(browser, server, ownerCookie);
  const owner = await openRoom(browser, server.url, room, 'Owen', { context: ownerContext, initScript: recordSignaling });
  await clickJoin(owner.page, 'Owen');
  await eventually(async () => (await state(owner.page)).role === 'moderator', 5_000, 'the owner to be moderator');

  // The shield: turn the lobby on.
  await owner.page.click('#open-security');
  await owner.page.check('#security-lobby');
  await owner.page.click('#security-close');

  /** @type {any} */
  let guest;
  /** @type {any} */
  let bea;
  await t.test('a guest waits in the lobby, sees nothing, and gets in when admitted', async () => {
    guest = await openRoom(browser, server.url, room, 'Gus', { initScript: recordSignaling });
    await knock(guest.page, 'Gus');
    await eventually(async () => (await state(guest.page)).lobby === 'waiting', 10_000, 'Gus to wait in the lobby');
    await sleep(1_000);
    const waiting = await state(guest.page);
    assert.equal(waiting.state, 'prejoin');
    assert.equal(waiting.participants, 0);
    const heard = (await signalingLog(guest.page, { dir: 'in' })).map((e) => e.msg.type);
    assert.deepEqual(heard, ['lobby_waiting'], `a waiting guest hears nothing of the room: ${heard}`);

    await owner.page.click('#toggle-people');
    await owner.page.waitForSelector('#lobby-list li button.admit', { timeout: 5_000 });
    assert.match(await owner.page.textContent('#lobby-list'), /Gus \(guest\)/);
    await owner.page.click('#lobby-list li button.admit');
    await guest.page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 10_000 });
    const ownerId = await owner.page.evaluate(() => /** @type {any} */ (window).parley.selfId);
    await eventually(async () => (await receivedByParticipant(guest.page))[ownerId]?.video > 0, 20_000,
      'the admitted guest to decode the owner');
  });

  await t.test('the active speaker and each connection quality are shown', async () => {
    // Chromium's fake microphone beeps: its audio levels (RFC 6464) make
    // someone the active speaker, announced to the room and highlighted.
    const speakers = await eventually(async () => {
      const log = await signalingLog(owner.page, { dir: 'in', type: 'active_speaker' });
      return log.length > 0 ? log.map((e) => e.msg.id) : null;
    }, 15_000, 'an active_speaker message');
    const [first] = speakers;
    await eventually(() => owner.page.evaluate((id) =>
      document.querySelector(`.tile[data-participant-id="${id}"]`)?.classList.contains('speaking')
      || document.querySelector('.tile.speaking') !== null, first), 5_000, 'a highlighted speaker tile');
    // Each tile gets a quality dot from the page's own WebRTC statistics.
    const quality = await eventually(async () => {
      const shown = await owner.page.evaluate(() => [...document.querySelectorAll('.tile[data-quality]')]
        .map((t) => `${t.getAttribute('data-quality')} (${t.querySelector('.tile-quality')?.getAttribute('title')})`));
      return shown.length >= 2 ? shown : null;
    }, 10_000, 'quality on the owner\'s and the guest\'s tiles');
    console.log('quality shown to the owner:', quality);
  });

  await t.test('a rejected guest is told so', async () => {
    const reject = await openRoom(browser, server.url, room, 'Rex');
    await knock(reject.page, 'Rex');
    await eventually(async () => (await state(reject.page)).lobby === 'waiting', 10_000, 'Rex to wait');
    await owner.page.waitForSelector('#lobby-list li button.reject', { timeout: 5_000 });
    await owner.page.click('#lobby-list li button.reject');
    await eventually(async () => /declined/.test((await state(reject.page)).error), 10_000, 'Rex to be told');
    await reject.context.close();
  });

  const guestId = await guest.page.evaluate(() => /** @type {any} */ (window).parley.selfId);
  const ownerId = await owner.page.evaluate(() => /** @type {any} */ (window).parley.selfId);

  await t.test('chat reaches everyone, HTML shows as text, a late joiner sees it', async () => {
    const nasty = '<img src=x id=injected onerror="window.pwned=1"> see https://example.org/a?b=1';
    await owner.page.click('#toggle-chat');
    await owner.page.fill('#chat-text', nasty);
    await owner.page.click('#chat-send');
    await guest.page.waitForFunction((text) =>
      [...document.querySelectorAll('#chat-log .chat-text')].some((e) => e.textContent === text), nasty, { timeout: 5_000 });
    const safe = await guest.page.evaluate(() => ({
      injected: document.querySelector('#chat-log img, #injected') !== null,
      pwned: /** @type {any} */ (window).pwned === 1,
      link: document.querySelector('#chat-log a')?.getAttribute('href'),
    }));
    assert.deepEqual(safe, { injected: false, pwned: false, link: 'https://example.org/a?b=1' });

    // Bea (an account, not a moderator) joins late: the owner admits her; she sees the message.
    const beaContext = await signedInContext(browser, server, beaCookie);
    bea = await openRoom(browser, server.url, room, 'Bea', { context: beaContext });
    await knock(bea.page, 'Bea');
    await owner.page.click('#toggle-people');
    await owner.page.waitForSelector('#lobby-list li button.admit', { timeout: 10_000 });
    await owner.page.click('#lobby-list li button.admit');
    await bea.page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 10_000 });
    const replayed = await bea.page.evaluate(() => [...document.querySelectorAll('#chat-log .chat-text')].map((e) => e.textContent));
    assert.deepEqual(replayed, [nasty]);
  });

  await t.test('a reaction outside the configured list is refused by the server', async () => {
    await guest.page.evaluate(() => /** @type {any} */ (window).parley.signaling.send({ type: 'reaction', emoji: '💩' }));
    await guest.page.evaluate(() => /** @type {any} */ (window).parley.signaling.send({ type: 'reaction', emoji: '👍' }));
    await eventually(async () => (await signalingLog(guest.page, { dir: 'in', type: 'error' }))
      .some((e) => e.msg.code === 'reaction_not_allowed'), 5_000, 'the refusal');
    await eventually(async () => (await signalingLog(owner.page, { dir: 'in', type: 'reaction' }))
      .some((e) => e.msg.emoji === '👍' && e.msg.participant === guestId), 5_000, 'the allowed reaction to reach the owner');
    const seen = (await signalingLog(owner.page, { dir: 'in', type: 'reaction' })).map((e) => e.msg.emoji);
    assert.ok(!seen.includes('💩'), `refused reaction reached others: ${seen}`);
  });

  await t.test("a moderator's mute stops the participant's audio reaching others", async () => {
    await eventually(async () => (await receivedByParticipant(owner.page))[guestId]?.audio > 50, 20_000, 'audio from the guest');
    const rising = (await receivedByParticipant(owner.page))[guestId].audio;
    await sleep(1_000);
    assert.ok((await receivedByParticipant(owner.page))[guestId].audio > rising + 20, 'guest audio flows before the mute');
    // The guest's page is made to ignore the mute, as a modified client
    // would: the server must stop the audio by itself.
    await guest.page.evaluate(() => {
      const session = /** @type {any} */ (window).parley.session;
      session.setMicEnabled = async () => {};
    });
    await owner.page.click(`#people-list li[data-participant-id="${guestId}"] button.mute-lock`);
    await sleep(1_500);
    const muted = (await receivedByParticipant(owner.page))[guestId].audio;
    const beaMuted = (await receivedByParticipant(bea.page))[guestId]?.audio ?? 0;
    await sleep(2_000);
    const after = (await receivedByParticipant(owner.page))[guestId].audio;
    const beaAfter = (await receivedByParticipant(bea.page))[guestId]?.audio ?? 0;
    console.log(`guest audio packets at the owner during 2 s of mute: ${after - muted}; at Bea: ${beaAfter - beaMuted}`);
    assert.ok(after - muted <= 2, `audio kept arriving after the mute (${muted}→${after})`);
    assert.ok(beaAfter - beaMuted <= 2, `audio kept arriving at Bea after the mute (${beaMuted}→${beaAfter})`);
    // Unmuting is refused until the moderator allows it.
    await guest.page.evaluate(() => /** @type {any} */ (window).parley.signaling.send({ type: 'media', mic: true }));
    await eventually(async () => (await signalingLog(guest.page, { dir: 'in', type: 'error' }))
      .some((e) => e.msg.code === 'forbidden' && e.msg.in_reply_to === 'media'), 5_000, 'the refused unmute');
  });

  await t.test('a screen share is decoded by the other pages', async () => {
    await guest.page.click('#toggle-screen');
    for (const viewer of [owner, bea]) {
      await eventually(() => viewer.page.evaluate(() => {
        const video = /** @type {HTMLVideoElement | null} */ (document.querySelector('.screen-tile video'));
        return video !== null && video.videoWidth > 0 && video.getVideoPlaybackQuality().totalVideoFrames > 10;
      }), 20_000, `${viewer.name} to decode the guest's screen`);
    }
    const size = await owner.page.evaluate(() => {
      const video = /** @type {HTMLVideoElement} */ (document.querySelector('.screen-tile video'));
      return `${video.videoWidth}x${video.videoHeight}, ${video.getVideoPlaybackQuality().totalVideoFrames} frames`;
    });
    console.log(`owner decodes the guest's screen: ${size}`);
    // The moderator stops it.
    await owner.page.click(`#people-list li[data-participant-id="${guestId}"] button:text("Stop share")`);
    await eventually(() => owner.page.evaluate(() => document.querySelector('.screen-tile') === null), 10_000,
      'the screen tile to go');
  });

  await t.test('the moderator reloads and is still moderator', async () => {
    await owner.page.reload();
    await waitForPrejoin(owner.page);
    await clickJoin(owner.page, 'Owen');
    await eventually(async () => (await state(owner.page)).role === 'moderator', 5_000, 'the owner to moderate again');
  });

  await t.test('when the moderator leaves, someone can still admit from the lobby', async () => {
    await owner.page.click('#leave');
    await eventually(async () => (await state(bea.page)).role === 'moderator', 10_000, 'Bea to take over');
    const late = await openRoom(browser, server.url, room, 'Lola');
    await knock(late.page, 'Lola');
    await bea.page.click('#toggle-people');
    await bea.page.waitForSelector('#lobby-list li button.admit', { timeout: 10_000 });
    await bea.page.click('#lobby-list li button.admit');
    await late.page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 10_000 });
  });

  await t.test('a wrong password is refused and the right one admits', async () => {
    await bea.page.click('#open-security');
    await bea.page.fill('#security-password', 'blue harbour 7');
    await bea.page.click('#set-password');
    await bea.page.uncheck('#security-lobby');
    await bea.page.click('#security-close');
    await eventually(() => bea.page.evaluate(() => /** @type {any} */ (window).parley.tools.security.password), 10_000, 'the password to be set');
    const visitor = await openRoom(browser, server.url, room, 'Vic');
    await knock(visitor.page, 'Vic');
    await eventually(async () => /password/.test((await state(visitor.page)).error), 10_000, 'the password prompt');
    await visitor.page.fill('#password', 'red harbour 7');
    await visitor.page.click('#join');
    await eventually(async () => /wrong/.test((await state(visitor.page)).error), 10_000, 'the wrong password refused');
    await visitor.page.fill('#password', 'blue harbour 7');
    await visitor.page.click('#join');
    await visitor.page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 10_000 });
  });

  for (const p of [owner, guest, bea]) assert.deepEqual(p.errors.filter((e) => !/favicon/.test(e)), [], `${p.name} page errors`);
});
