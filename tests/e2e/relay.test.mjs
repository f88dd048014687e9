// Media through Parley's built-in TURN: pages forced to relay-only ICE still
// see each other through the SFU, relayed over UDP and over TCP, and the
// selected candidate pair says so.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  sharedServerAndBrowser, joinRoom, roomName, receivedByParticipant, eventually, selfId, selectedPaths, adminApi,
} from './harness.mjs';

const shared = sharedServerAndBrowser();
/** @type {Promise<(method: string, path: string, body?: unknown) => Promise<{status: number, body: any}>> | null} */
let admin = null;

/**
 * Init script: every RTCPeerConnection uses relay candidates only, and only
 * TURN URLs for `transport` (`udp` or `tcp`), as a browser behind a firewall
 * that lets nothing else through would.
 */
function relayOnly(transport) {
  const Native = window.RTCPeerConnection;
  // @ts-ignore
  window.RTCPeerConnection = function (config = {}) {
    const iceServers = (config.iceServers ?? []).map((s) => ({
      ...s,
      urls: [].concat(s.urls).filter((u) => u.startsWith('turn:') && u.includes(`transport=${transport}`)),
    })).filter((s) => s.urls.length > 0);
    return new Native({ ...config, iceServers, iceTransportPolicy: 'relay' });
  };
  window.RTCPeerConnection.prototype = Native.prototype;
}

for (const transport of ['udp', 'tcp']) {
  test(`relay-only browsers decode each other through TURN over ${transport}`, { timeout: 90_000 }, async (t) => {
    const room = roomName(`relay-${transport}`);
    const script = `(${relayOnly.toString()})(${JSON.stringify(transport)})`;
    const people = [];
    t.after(async () => {
      for (const p of people) await p.context.close().catch(() => {});
    });
    for (const name of ['Ada', 'Grace']) {
      people.push(await joinRoom(shared.chrome.browser, shared.server.url, room, name, { initScript: script }));
    }
    const ids = { Ada: await selfId(people[0].page), Grace: await selfId(people[1].page) };
    for (const p of people) {
      const other = p.name === 'Ada' ? 'Grace' : 'Ada';
      await eventually(async () => {
        const got = await receivedByParticipant(p.page);
        return got[ids[other]]?.video > 10 && got[ids[other]]?.audio > 20;
      }, 30_000, `${p.name} to decode ${other} over relayed ${transport}`);
      const paths = await selectedPaths(p.page);
      console.log(`${p.name}: ${JSON.stringify(paths)}`);
      for (const pc of ['publishPc', 'subscribePc']) {
        assert.equal(paths[pc]?.type, 'relay', `${p.name}'s ${pc} is relayed`);
        assert.equal(paths[pc]?.relayProtocol, transport, `${p.name}'s ${pc} reaches TURN over ${transport}`);
      }
    }
    // The administrator sees each participant's path, as their page reported
    // it, and what the paths say about the network.
    admin ??= adminApi(shared.server);
    const api = await admin;
    const wanted = `turn_${transport}`;
    const rooms = await eventually(async () => {
      const answer = (await api('GET', '/api/v1/rooms')).body;
      const here = answer.active.find((r) => r.name === room);
      return here?.participants.every((p) => p.path?.path === wanted) ? answer : null;
    }, 20_000, `the Rooms API to show both participants relayed over ${transport}`);
    console.log(`admin view: ${JSON.stringify(rooms.connectivity)}`);
    assert.ok(rooms.connectivity.by_path[wanted] >= 2);
    if (transport === 'tcp') assert.match(rooms.connectivity.advice.join(' '), /send media over TCP/);
    const metrics = await (await fetch(`${shared.server.url}/metrics`)).text();
    const relayed = Number(/parley_turn_packets_to_peers_total (\d+)/.exec(metrics)?.[1]);
    console.log(`TURN relayed ${relayed} datagrams to the SFU so far`);
    assert.ok(relayed > 100, 'the built-in TURN relayed the media');
  });
}
