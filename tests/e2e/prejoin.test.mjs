// Getting into a room: the home page, the pre-join screen with blocked or
// missing devices, and choices remembered from the last call. Real Chromium
// (fake devices, getUserMedia replaced where a test needs it to fail) and the
// real server; media is judged by getStats().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  sharedServerAndBrowser, selfId, newContext, joinRoom, openRoom, clickJoin, waitForPrejoin, roomName,
  receivedByParticipant, eventually, sleep, tileState, isPressed,
} from './harness.mjs';

const shared = sharedServerAndBrowser();

/** Init script: every camera and microphone request is refused, as when the user clicks "Block". */
function blockAllDevices() {
  navigator.mediaDevices.getUserMedia = () =>
    Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
}

/** Init script: there is a microphone but no camera. */
function noCamera() {
  const real = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (constraints) => (constraints?.video
    ? Promise.reject(new DOMException('Requested device not found', 'NotFoundError'))
    : real(constraints));
}

/** Text of `selector` if it is visible, else null. */
async function visibleText(page, selector) {
  const el = page.locator(selector);
  return (await el.isVisible()) ? (await el.textContent())?.trim() ?? '' : null;
}

test('a participant with camera and microphone blocked can still join, see and hear', { timeout: 60_000 }, async (t) => {
  const room = roomName('blocked');
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
  });
  const noor = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Noor');
  people.push(noor);
  const bea = await openRoom(shared.chrome.browser, shared.server.url, room, 'Bea', { initScript: blockAllDevices });
  people.push(bea);

  // The pre-join screen says what is wrong and that joining still works.
  const message = await visibleText(bea.page, '#device-message');
  console.log(`blocked participant's pre-join message: ${message}`);
  assert.ok(message, '#device-message should be visible');
  assert.match(message, /blocked/i);
  assert.match(message, /still join/i);
  assert.match(message, /listen/i);
  assert.equal(await isPressed(bea.page, '#prejoin-toggle-mic'), false, 'mic toggle shows off');
  assert.equal(await isPressed(bea.page, '#prejoin-toggle-camera'), false, 'camera toggle shows off');
  assert.equal(await bea.page.locator('#join').isEnabled(), true, 'Join stays usable');

  await clickJoin(bea.page, 'Bea');
  const beaId = await selfId(bea.page);
  const noorId = await selfId(noor.page);
  assert.equal(await isPressed(bea.page, '#toggle-mic'), false);
  assert.equal(await isPressed(bea.page, '#toggle-camera'), false);

  // Bea decodes Noor's video and receives her audio, and it keeps flowing.
  const first = await eventually(async () => {
    const got = (await receivedByParticipant(bea.page))[noorId];
    return got?.video > 0 && got.audio > 0 && got;
  }, 20_000, 'Bea to decode video and receive audio from Noor');
  await sleep(2_000);
  const later = (await receivedByParticipant(bea.page))[noorId];
  console.log(`Bea from Noor: video ${first.video}→${later.video} frames, audio ${first.audio}→${later.audio} packets`);
  assert.ok(later.video > first.video + 5 && later.audio > first.audio + 30, 'media from Noor keeps flowing');

  // Noor sees Bea's tile, camera and mic off, showing the avatar...
  const tile = await eventually(() => tileState(noor.page, beaId), 5_000, "Noor's tile for Bea");
  assert.deepEqual(
    { cameraOff: tile.cameraOff, micOff: tile.micOff, showVideo: tile.showVideo, avatarVisible: tile.avatarVisible },
    { cameraOff: true, micOff: true, showVideo: false, avatarVisible: true },
    `Noor's tile for Bea: ${JSON.stringify(tile)}`);
  // ...and receives nothing from her: Bea never publishes.
  assert.equal(await bea.page.evaluate(() => /** @type {any} */ (window).parley.session.publishPc), null,
    'a participant without devices has no publish connection');
  const noorGot = await receivedByParticipant(noor.page);
  assert.equal(noorGot[beaId], undefined, `Noor should receive no media from Bea: ${JSON.stringify(noorGot)}`);

  for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page reported errors`);
});

test('a participant without a camera joins with the microphone working', { timeout: 60_000 }, async (t) => {
  const room = roomName('nocam');
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
  });
  const noor = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Noor');
  people.push(noor);
  const mo = await openRoom(shared.chrome.browser, shared.server.url, room, 'Mo', { initScript: noCamera });
  people.push(mo);

  const message = await visibleText(mo.page, '#device-message');
  console.log(`camera-less participant's pre-join message: ${message}`);
  assert.ok(message, '#device-message should be visible');
  assert.match(message, /no camera/i);
  assert.match(message, /still join/i);
  assert.equal(await isPressed(mo.page, '#prejoin-toggle-mic'), true, 'mic toggle shows on');
  assert.equal(await isPressed(mo.page, '#prejoin-toggle-camera'), false, 'camera toggle shows off');

  await clickJoin(mo.page, 'Mo');
  const moId = await selfId(mo.page);
  assert.equal(await isPressed(mo.page, '#toggle-mic'), true);
  assert.equal(await isPressed(mo.page, '#toggle-camera'), false);

  // Noor hears Mo (packets keep arriving) and sees his tile with the camera off.
  const first = await eventually(async () => {
    const got = (await receivedByParticipant(noor.page))[moId];
    return got?.audio > 0 && got;
  }, 20_000, 'Noor to receive audio from Mo');
  await sleep(2_000);
  const later = (await receivedByParticipant(noor.page))[moId];
  console.log(`Noor from Mo: audio ${first.audio}→${later.audio} packets, video ${later.video} frames`);
  assert.ok(later.audio > first.audio + 30, 'audio from Mo keeps arriving');
  assert.equal(later.video, 0, 'no video from Mo');
  const tile = await tileState(noor.page, moId);
  assert.ok(tile, "Noor should show Mo's tile");
  assert.equal(tile.cameraOff, true, `Mo's tile camera off: ${JSON.stringify(tile)}`);
  assert.equal(tile.micOff, false, `Mo's tile mic on: ${JSON.stringify(tile)}`);
  assert.equal(tile.avatarVisible, true);
  const kinds = await mo.page.evaluate(() => /** @type {any} */ (window).parley.session.publishPc
    .getTransceivers().map((/** @type {RTCRtpTransceiver} */ tr) => tr.sender.track?.kind ?? null));
  assert.deepEqual(kinds, ['audio'], 'Mo publishes his microphone only');

  for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page reported errors`);
});

test('mic and camera choices and the name are remembered for the next call', { timeout: 90_000 }, async (t) => {
  const room = roomName('prefs');
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
  });
  const noor = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Noor');
  people.push(noor);
  const rae = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Rae');
  people.push(rae);
  const { page } = rae;

  /** What Noor shows for Rae's current participant id. */
  const seenByNoor = async () => eventually(
    async () => tileState(noor.page, await selfId(page)), 5_000, "Noor's tile for Rae");
  const leaveAndReload = async () => {
    await page.click('#leave');
    await page.waitForFunction(() => document.body.dataset.state === 'left', null, { timeout: 5_000 });
    await page.reload();
    await waitForPrejoin(page);
  };
  // Rae leaves only once Noor receives her media, as in any real call, so
  // what Noor sees reflects Rae's remembered choices. (Leaving before Noor's
  // subscribe connection is up has its own test in renegotiation.test.mjs.)
  const noorReceivesRae = async () => {
    const id = await selfId(page);
    await eventually(async () => (await receivedByParticipant(noor.page))[id]?.audio > 0,
      15_000, "Noor to receive Rae's audio");
  };
  const prejoinState = async () => ({
    name: await page.inputValue('#name'),
    mic: await isPressed(page, '#prejoin-toggle-mic'),
    camera: await isPressed(page, '#prejoin-toggle-camera'),
  });

  // 1. Microphone off during the call: Rejoin keeps it off...
  await noorReceivesRae();
  await page.click('#toggle-mic');
  await eventually(async () => !(await isPressed(page, '#toggle-mic')), 5_000, 'the mic button to show off');
  await eventually(async () => (await seenByNoor()).micOff, 5_000, 'Noor to see Rae muted');
  await page.click('#leave');
  await page.waitForFunction(() => document.body.dataset.state === 'left', null, { timeout: 5_000 });
  await page.click('#rejoin');
  await page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 20_000 });
  assert.equal(await isPressed(page, '#toggle-mic'), false, 'Rejoin after muting must not unmute');
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).parley.media.audioTrack?.enabled), false,
    'the rejoined microphone track is disabled');
  assert.equal((await seenByNoor()).micOff, true, 'Noor sees the rejoined Rae muted');
  await noorReceivesRae();
  // ...and so does the next visit.
  await leaveAndReload();
  assert.deepEqual(await prejoinState(), { name: 'Rae', mic: false, camera: true }, 'after muting in the call');

  // 2. Camera off on the pre-join screen; the reload remembers both.
  await page.click('#prejoin-toggle-camera');
  await eventually(async () => !(await isPressed(page, '#prejoin-toggle-camera')), 5_000, 'the pre-join camera toggle to show off');
  await page.reload();
  await waitForPrejoin(page);
  assert.deepEqual(await prejoinState(), { name: 'Rae', mic: false, camera: false }, 'after the camera went off before joining');
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).parley.media.videoTrack), null, 'the camera is not even opened');

  // Joining with the prefilled name: both off, for Rae and for Noor.
  await clickJoin(page);
  assert.equal(await isPressed(page, '#toggle-mic'), false, 'mic starts off');
  assert.equal(await isPressed(page, '#toggle-camera'), false, 'camera starts off');
  let tile = await seenByNoor();
  assert.equal(tile.name, 'Rae');
  assert.equal(tile.micOff, true, `Noor sees Rae muted: ${JSON.stringify(tile)}`);
  assert.equal(tile.cameraOff, true, `Noor sees Rae's camera off: ${JSON.stringify(tile)}`);

  // 3. Camera back on during the call: Noor sees and decodes it, and the
  // next visit remembers camera on, mic still off.
  await page.click('#toggle-camera');
  await eventually(async () => isPressed(page, '#toggle-camera'), 5_000, 'the camera button to show on');
  const raeId = await selfId(page);
  await eventually(async () => !(await seenByNoor()).cameraOff, 5_000, "Noor to see Rae's camera on");
  await eventually(async () => (await receivedByParticipant(noor.page))[raeId]?.video > 0,
    15_000, "Noor to decode Rae's video once her camera is on");
  tile = await seenByNoor();
  assert.equal(tile.micOff, true, 'still muted');
  await leaveAndReload();
  assert.deepEqual(await prejoinState(), { name: 'Rae', mic: false, camera: true }, 'after the camera came back on in the call');

  for (const p of people) assert.deepEqual(p.errors, [], `${p.name}'s page reported errors`);
});

test('the home page checks room names, makes new rooms and canonical room links', { timeout: 60_000 }, async (t) => {
  const context = await newContext(shared.chrome.browser);
  t.after(() => context.close());
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  // An invalid name is explained, and nothing navigates.
  await page.goto(`${shared.server.url}/`);
  await page.fill('#room-name', 'a b');
  await page.click('#join-room');
  const error = await eventually(() => visibleText(page, '#room-error'), 5_000, '#room-error to show');
  console.log(`home page error for "a b": ${error}`);
  assert.match(error, /space/i);
  assert.equal(new URL(page.url()).pathname, '/');

  // "New room" goes to a fresh room whose name the server accepts as is.
  await page.click('#new-room');
  await page.waitForURL(/\/r\/[^/]+$/, { timeout: 10_000 });
  const generated = new URL(page.url()).pathname.slice('/r/'.length);
  console.log(`New room → /r/${generated}`);
  assert.match(generated, /^[a-z0-9][a-z0-9._-]{0,63}$/, 'protocol.md room-name rules');
  assert.match(generated, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/, 'the documented xxxx-xxxx-xxxx form');
  await waitForPrejoin(page);
  const served = await fetch(`${shared.server.url}/r/${generated}`, { redirect: 'manual' });
  assert.equal(served.status, 200, 'the server serves the new room page under that exact name');
  assert.equal(await page.evaluate(() => /** @type {any} */ (window).parley.room), generated);

  // Upper case folds to the canonical lower-case link, by a redirect.
  const redirect = await fetch(`${shared.server.url}/r/SomeName`, { redirect: 'manual' });
  assert.ok([301, 308].includes(redirect.status), `expected a permanent redirect, got ${redirect.status}`);
  assert.equal(redirect.headers.get('location'), '/r/somename');
  await page.goto(`${shared.server.url}/r/SomeName`);
  assert.equal(new URL(page.url()).pathname, '/r/somename');
  await waitForPrejoin(page);

  // The home form folds case itself, and accepts a pasted link.
  await page.goto(`${shared.server.url}/`);
  await page.fill('#room-name', 'Weekly.Sync');
  await page.click('#join-room');
  await page.waitForURL(/\/r\/weekly\.sync$/, { timeout: 10_000 });
  await page.goto(`${shared.server.url}/`);
  await page.fill('#room-name', `${shared.server.url}/r/team_room`);
  await page.click('#join-room');
  await page.waitForURL(/\/r\/team_room$/, { timeout: 10_000 });

  assert.deepEqual(errors, []);
});
