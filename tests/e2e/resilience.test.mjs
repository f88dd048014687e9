// Calls survive a lost signaling connection and a server restart: a page
// whose WebSocket drops resumes its place (the others see it reconnecting,
// never leaving), and pages whose server restarted rejoin the same room by
// themselves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startServer, launchBrowser, joinRoom, roomName, eventually, selfId, recordSignaling, signalingLog,
  decodeEachOther,
} from './harness.mjs';

/** A TCP port free right now on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });
}

test('a page whose signaling connection drops resumes its place; the others never see it leave', { timeout: 120_000 }, async (t) => {
  const server = await startServer();
  const chrome = await launchBrowser();
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
    await chrome.close();
    await server.stop();
  });
  const room = roomName('resume');
  for (const name of ['Ada', 'Grace', 'Lin']) {
    people.push(await joinRoom(chrome.browser, server.url, room, name, { initScript: recordSignaling }));
  }
  await decodeEachOther(people, 30_000, 'at first');
  const [ada, grace, lin] = people;
  const linId = await selfId(lin.page);

  // Lin's WebSocket is given up as dead (as the watchdog does when pongs stop).
  await lin.page.evaluate(() => /** @type {any} */ (window).parley.signaling.drop());
  await eventually(
    () => lin.page.evaluate(() => document.body.dataset.reconnecting === undefined && document.body.dataset.state === 'joined'),
    20_000, 'Lin to be back in the call');
  assert.equal(await selfId(lin.page), linId, 'the same participant, not a new join');
  const resumes = await signalingLog(lin.page, { dir: 'out', type: 'resume' });
  assert.equal(resumes.length, 1, 'Lin resumed once');
  await decodeEachOther(people, 30_000, 'after Lin resumed');

  for (const p of [ada, grace]) {
    const left = (await signalingLog(p.page, { dir: 'in', type: 'participant_left' })).filter((e) => e.msg.id === linId);
    assert.deepEqual(left, [], `${p.name} never saw Lin leave`);
    const updates = (await signalingLog(p.page, { dir: 'in', type: 'participant_updated' }))
      .filter((e) => e.msg.participant.id === linId).map((e) => Boolean(e.msg.participant.reconnecting));
    assert.ok(updates.includes(true) && updates.at(-1) === false, `${p.name} saw Lin reconnecting, then back: ${updates}`);
  }
  for (const p of people) assert.deepEqual(p.errors, [], `${p.name} had no page errors`);
});

test('after a server restart, the pages rejoin the same room by themselves', { timeout: 150_000 }, async (t) => {
  const port = await freePort();
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-restart-'));
  let server = await startServer([], { http: `127.0.0.1:${port}`, dataDir });
  const chrome = await launchBrowser();
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
    await chrome.close();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });
  const room = roomName('restart');
  for (const name of ['Ada', 'Grace']) people.push(await joinRoom(chrome.browser, server.url, room, name));
  await decodeEachOther(people, 30_000, 'before the restart');
  const before = await Promise.all(people.map((p) => selfId(p.page)));

  await server.stop();
  server = await startServer([], { http: `127.0.0.1:${port}`, dataDir });
  console.log('server restarted');
  for (const p of people) {
    await eventually(async () => {
      const now = await p.page.evaluate(() => ({
        state: document.body.dataset.state,
        // @ts-ignore
        id: window.parley.selfId,
        // @ts-ignore
        room: window.parley.room,
      }));
      return now.state === 'joined' && now.id && !before.includes(now.id) && now.room === room;
    }, 60_000, `${p.name} to be back in ${room} as a new participant`);
  }
  await decodeEachOther(people, 30_000, 'after the restart');
});
