// A Custom TURN provider end to end: a local HTTP endpoint answers like
// Xirsys (PUT, Basic auth, {v: {iceServers: {...}}}) and then like Twilio
// (POST, {ice_servers: [...]}); Parley fetches it server-side, extracts the
// servers through the configured JSON paths, and hands them to browsers,
// which (told to relay only) reach each other through exactly those servers.
//
// The provider's TURN URLs point at Parley's own TURN server with REST
// credentials this test mints from a secret given with --turn-secret, the
// way a hosted service's would.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import {
  startServer, launchBrowser, joinRoom, roomName, receivedByParticipant, eventually, selfId,
  selectedPaths, adminApi,
} from './harness.mjs';

const SECRET = 'provider-test-secret';

/** A TURN REST credential for Parley's TURN server, as a provider would mint it. */
function mint(user) {
  const username = `${Math.floor(Date.now() / 1000) + 3600}:${user}`;
  const credential = createHmac('sha1', SECRET).update(username).digest('base64');
  return { username, credential };
}

/** @type {any} */
let server;
/** @type {any} */
let chrome;
/** @type {import('node:http').Server} */
let provider;
let providerUrl = '';
/** Requests the provider saw: method, path, authorization. */
const seen = [];
/** What the provider answers next, by path prefix. */
const answers = { xirsys: {}, twilio: {} };

before(async () => {
  server = await startServer(['--turn-secret', SECRET]);
  chrome = await launchBrowser();
  provider = createServer((req, res) => {
    seen.push({ method: req.method, url: req.url, auth: req.headers.authorization ?? '' });
    const body = req.url?.startsWith('/_turn/') ? answers.xirsys : answers.twilio;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise((r) => provider.listen(0, '127.0.0.1', () => r(undefined)));
  const address = /** @type {import('node:net').AddressInfo} */ (provider.address());
  providerUrl = `http://127.0.0.1:${address.port}`;
});

after(async () => {
  await chrome?.close();
  await server?.stop();
  await new Promise((r) => provider?.close(() => r(undefined)));
});

/** The built-in TURN port, from the server's ready line. */
function turnPort() {
  const m = /TURN ready: udp and tcp 127\.0\.0\.1:(\d+)/.exec(server.log.join(''));
  assert.ok(m, 'TURN ready line');
  return Number(m[1]);
}

/**
 * Two relay-only participants join; both decode each other through the
 * provider's TURN server, and their peer connections were configured with
 * the provider's credential.
 */
async function twoParticipantsThrough(expectedUsername, label) {
  const room = roomName(`provider-${label}`);
  const people = [];
  try {
    for (const name of ['Ada', 'Grace']) {
      people.push(await joinRoom(chrome.browser, server.url, room, name));
    }
    const ids = { Ada: await selfId(people[0].page), Grace: await selfId(people[1].page) };
    for (const p of people) {
      const config = await p.page.evaluate(() => {
        // @ts-ignore — test hook
        const c = window.parley.session.subscribePc.getConfiguration();
        return { policy: c.iceTransportPolicy, users: c.iceServers.map((s) => s.username ?? null) };
      });
      assert.equal(config.policy, 'relay', `${p.name} was told to relay only`);
      assert.ok(config.users.includes(expectedUsername), `${p.name} got the provider's credential: ${JSON.stringify(config)}`);
      const other = p.name === 'Ada' ? 'Grace' : 'Ada';
      await eventually(async () => {
        const got = await receivedByParticipant(p.page);
        return got[ids[other]]?.video > 10 && got[ids[other]]?.audio > 20;
      }, 30_000, `${p.name} to decode ${other} through the ${label} provider's TURN`);
      const paths = await selectedPaths(p.page);
      console.log(`${label}: ${p.name}: ${JSON.stringify(paths)}`);
      assert.equal(paths.subscribePc?.type, 'relay');
      assert.equal(paths.publishPc?.type, 'relay');
    }
  } finally {
    for (const p of people) await p.context.close().catch(() => {});
  }
}

test('a Custom provider answering like Xirsys and like Twilio gives browsers working TURN servers', { timeout: 150_000 }, async () => {
  const api = await adminApi(server);
  const port = turnPort();
  const turnUrls = [`turn:127.0.0.1:${port}?transport=udp`, `turn:127.0.0.1:${port}?transport=tcp`];

  // Relay only, so media can flow only through the provider's servers.
  const policy = await api('PUT', '/api/v1/settings/turn', { servers: [], transport_policy: 'relay' });
  assert.equal(policy.status, 200, JSON.stringify(policy.body));

  // Xirsys-shaped: PUT /_turn/<channel> with Basic auth.
  const x = mint('xirsys-user');
  answers.xirsys = {
    v: { iceServers: { username: x.username, urls: [`stun:127.0.0.1:${port}`, ...turnUrls], credential: x.credential } },
    s: 'ok',
  };
  const xirsys = await api('PUT', '/api/v1/settings/turn_provider', {
    kind: 'custom',
    url_template: `${providerUrl}/_turn/\${CHANNEL}`,
    variables: { CHANNEL: 'parley room' },
    method: 'PUT',
    auth: { type: 'basic', username: 'ident', password: 'xirsys-secret' },
    urls_path: 'v.iceServers.urls',
    username_path: 'v.iceServers.username',
    credential_path: 'v.iceServers.credential',
  });
  assert.equal(xirsys.status, 200, JSON.stringify(xirsys.body));
  await eventually(async () => {
    const { body } = await api('GET', '/api/v1/ice/servers');
    return body.ice_servers.some((s) => s.username === x.username);
  }, 10_000, 'Parley to fetch the Xirsys-shaped answer');
  const asked = seen.find((r) => r.url.startsWith('/_turn/'));
  assert.equal(asked?.method, 'PUT');
  assert.equal(asked?.url, '/_turn/parley%20room', 'variables are filled in and encoded');
  assert.equal(asked?.auth, `Basic ${Buffer.from('ident:xirsys-secret').toString('base64')}`);
  await twoParticipantsThrough(x.username, 'xirsys');

  // Twilio-shaped: POST, a list of servers; paths pick the TURN entry's credential.
  const t = mint('twilio-user');
  answers.twilio = {
    username: t.username,
    ice_servers: [
      { url: `stun:127.0.0.1:${port}`, urls: `stun:127.0.0.1:${port}` },
      { url: turnUrls[0], urls: turnUrls[0], username: t.username, credential: t.credential },
      { url: turnUrls[1], urls: turnUrls[1], username: t.username, credential: t.credential },
    ],
    ttl: '86400',
    password: t.credential,
    account_sid: 'AC0123456789abcdef0123456789abcdef',
  };
  const twilio = await api('PUT', '/api/v1/settings/turn_provider', {
    kind: 'custom',
    url_template: `${providerUrl}/2010-04-01/Accounts/\${SID}/Tokens.json`,
    variables: { SID: 'AC0123456789abcdef0123456789abcdef' },
    method: 'POST',
    auth: { type: 'basic', username: 'AC0123456789abcdef0123456789abcdef', password: 'auth-token' },
    urls_path: 'ice_servers[].urls',
    username_path: 'ice_servers[1].username',
    credential_path: 'ice_servers[1].credential',
  });
  assert.equal(twilio.status, 200, JSON.stringify(twilio.body));
  await eventually(async () => {
    const { body } = await api('GET', '/api/v1/ice/servers');
    return body.ice_servers.some((s) => s.username === t.username) && body.provider.ok === true;
  }, 10_000, 'Parley to fetch the Twilio-shaped answer');
  assert.equal(seen.at(-1)?.method, 'POST');
  await twoParticipantsThrough(t.username, 'twilio');

  // The provider's answer never reaches the log (credentials are secret).
  const log = server.log.join('');
  assert.ok(!log.includes(x.credential) && !log.includes(t.credential), 'no credential in the log');
  assert.ok(!log.includes('xirsys-secret') && !log.includes('auth-token'), 'no provider secret in the log');
});
