// Codec fit: a subscriber that can decode only H.264 still sees a publisher
// whose browser sends VP8 (the server asks the publisher to switch), in real
// Chromium through the real server, judged by getStats().

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  sharedServerAndBrowser, selfId, joinRoom, roomName, eventually, receivedByParticipant, recordSignaling, signalingLog,
} from './harness.mjs';

const shared = sharedServerAndBrowser();

/**
 * Makes a page's subscribe answers accept only H.264 video, as a device
 * without a VP8 decoder would: receiving codec preferences set on every
 * video transceiver before each answer.
 */
function decodeOnlyH264() {
  const original = RTCPeerConnection.prototype.createAnswer;
  // @ts-ignore — replacing a browser method in a test page
  RTCPeerConnection.prototype.createAnswer = function (...args) {
    const h264 = RTCRtpReceiver.getCapabilities('video')?.codecs
      .filter((c) => /^video\/(h264|rtx)$/i.test(c.mimeType)) ?? [];
    for (const t of this.getTransceivers()) {
      if (t.receiver.track.kind !== 'video' || t.currentDirection === 'stopped') continue;
      try {
        t.setCodecPreferences(h264);
      } catch (err) {
        console.warn('could not restrict to H.264', err);
      }
    }
    // @ts-ignore
    return original.apply(this, args);
  };
}

/** The codec of a page's published video, from the publish connection's stats. */
async function publishedVideoCodec(page) {
  return page.evaluate(async () => {
    // @ts-ignore — test hook
    const pc = window.parley?.session?.publishPc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let codec = null;
    stats.forEach((s) => {
      if (s.type === 'outbound-rtp' && s.kind === 'video' && s.codecId && (s.framesEncoded ?? 0) > 0) {
        codec = stats.get(s.codecId)?.mimeType ?? codec;
      }
    });
    return codec;
  });
}

test('an H.264-only subscriber gets a VP8 publisher\'s video: the publisher is asked to send H.264', { timeout: 90_000 }, async (t) => {
  const room = roomName('codec');
  const people = [];
  t.after(async () => {
    for (const p of people) await p.context.close().catch(() => {});
  });
  const ada = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Ada', { initScript: recordSignaling });
  people.push(ada);
  const adaId = await selfId(ada.page);
  await eventually(async () => (await publishedVideoCodec(ada.page)) === 'video/VP8', 15_000, 'Ada to send VP8 first');

  const bob = await joinRoom(shared.chrome.browser, shared.server.url, room, 'Bob', {
    initScript: `(${decodeOnlyH264.toString()})()`,
  });
  people.push(bob);
  const bobId = await selfId(bob.page);

  const got = await eventually(async () => {
    const r = await receivedByParticipant(bob.page);
    return (r[adaId]?.video ?? 0) > 30 && r;
  }, 30_000, "Bob (H.264 only) to decode Ada's video");
  console.log(`Bob decoded ${got[adaId].video} frames of Ada's video`);
  assert.equal(await publishedVideoCodec(ada.page), 'video/H264', 'Ada switched to H.264');
  const asked = await signalingLog(ada.page, { dir: 'in', type: 'publish_codec' });
  assert.equal(asked.length, 1, 'Ada was asked once');
  assert.equal(asked[0].msg.codec, 'h264');

  // Bob's own VP8 still reaches Ada, who decodes anything.
  await eventually(async () => ((await receivedByParticipant(ada.page))[bobId]?.video ?? 0) > 30, 20_000,
    "Ada to decode Bob's video");
  for (const p of people) assert.deepEqual(p.errors, [], `${p.name} had page errors`);
});
