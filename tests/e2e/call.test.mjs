// Three people in a room, in real Chromium, through the real server: they see
// and hear each other; one leaves and vanishes; one turns the camera off and on.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, joinRoom, roomName, receivedByParticipant,
  participantIdByName, eventually, sleep,
} from './harness.mjs';

test('three browsers see and hear each other through the SFU', { timeout: 180_000 }, async (t) => {
  const server = await startServer();
  const chrome = await launchBrowser();
  t.after(async () => {
    await chrome.close();
    await server.stop();
  });
  const room = roomName('call');
  const names = ['Ada', 'Grace', 'Lin'];
  const people = [];
  for (const name of names) people.push(await joinRoom(chrome.browser, server.url, room, name));

  // Everyone learns everyone's id from their tiles.
  const ids = {};
  for (const name of names) {
    const viewer = people.find((p) => p.name !== name);
    ids[name] = await eventually(() => participantIdByName(viewer.page, name), 15_000, `a tile for ${name}`);
  }

  // Media flows from both others to each page...
  for (const p of people) {
    await eventually(async () => {
      const got = await receivedByParticipant(p.page);
      return names.filter((n) => n !== p.name).every((n) => got[ids[n]]?.video > 0 && got[ids[n]]?.audio > 0);
    }, 30_000, `${p.name} to decode video and receive audio from both others`);
  }
  // ...and keeps flowing: counters rise over 10 seconds.
  const before = await Promise.all(people.map((p) => receivedByParticipant(p.page)));
  await sleep(10_000);
  const after = await Promise.all(people.map((p) => receivedByParticipant(p.page)));
  people.forEach((p, i) => {
    for (const other of names.filter((n) => n !== p.name)) {
      const b = before[i][ids[other]];
      const a = after[i][ids[other]];
      const report = `${p.name} from ${other}: video ${b.video}→${a.video} frames, audio ${b.audio}→${a.audio} packets`;
      console.log(report);
      assert.ok(a.video > b.video + 50, `video decoding stalled: ${report}`);
      assert.ok(a.audio > b.audio + 200, `audio stalled: ${report}`);
    }
  });

  // Grace turns her camera off: the others see her camera-off state; back on,
  // her video is decoded again without anyone rejoining.
  const [ada, grace, lin] = people;
  await grace.page.click('#toggle-camera');
  await eventually(
    () => ada.page.evaluate((id) => document.querySelector(`.tile[data-participant-id="${id}"]`)?.classList.contains('camera-off'), ids.Grace),
    5_000, 'Ada to see that Grace turned her camera off');
  await sleep(2_000);
  const paused = (await receivedByParticipant(ada.page))[ids.Grace].video;
  await sleep(1_000);
  const stillPaused = (await receivedByParticipant(ada.page))[ids.Grace].video;
  assert.ok(stillPaused - paused < 5, `video kept arriving with the camera off (${paused}→${stillPaused})`);
  await grace.page.click('#toggle-camera');
  await eventually(async () => (await receivedByParticipant(ada.page))[ids.Grace].video > stillPaused + 30,
    10_000, 'Ada to decode Grace again after her camera came back');

  // Lin closes the tab: gone from the others within 5 seconds.
  await lin.page.close();
  const closedAt = Date.now();
  for (const p of [ada, grace]) {
    await eventually(
      () => p.page.evaluate((id) => !document.querySelector(`.tile[data-participant-id="${id}"]`), ids.Lin),
      5_000, `${p.name} to stop showing Lin`);
  }
  console.log(`Lin's tile disappeared from both others ${Date.now() - closedAt} ms after the tab closed`);

  // The two who remain still see each other.
  const remaining = await receivedByParticipant(ada.page);
  await sleep(2_000);
  assert.ok((await receivedByParticipant(ada.page))[ids.Grace].video > remaining[ids.Grace].video + 10);
});
