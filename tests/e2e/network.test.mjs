// The connectivity matrix: Parley in its own network namespace, and Chromium
// in client namespaces that reach it directly, through NATs, without UDP, or
// over IPv6 only. In every case three participants must decode each other's
// video; the test prints which path each connection took.
//
// Needs root for `ip netns` (CI runs as root); elsewhere it is skipped with
// the reason.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, newContext, openRoom, clickJoin, roomName, decodeEachOther,
  receivedByParticipant, selfId, selectedPaths, CHROMIUM, recordSignaling, signalingLog, sleep,
} from './harness.mjs';
import { join } from 'node:path';
import { Internet, unavailable, run } from './netns.mjs';

/** Fetches `url` from inside namespace `ns` (the test runner is outside the small internet). */
const fetchInSite = (ns, url) => run('ip', [
  'netns', 'exec', ns, process.execPath, '-e',
  `fetch(${JSON.stringify(url)}, { signal: AbortSignal.timeout(5000) }).then((r) => r.text()).then((t) => process.stdout.write(t))`,
]);

const why = unavailable();
// A public-looking address (TEST-NET-3): browsers refuse ICE candidates on
// port 443 at private addresses, as a guard against reaching into LANs.
const SERVER_V4 = '203.0.113.2';
const SERVER_V6 = 'fd77::2';

/**
 * A client site: a namespace Chromium runs in, and how it reaches the server.
 * @typedef {{name: string, ns?: string, v6?: boolean}} Site
 */

/**
 * Builds the internet: `net` routes between the server and every site;
 * NAT sites sit behind a namespace of their own that masquerades.
 * @param {Internet} inet
 */
function build(inet) {
  const net = inet.namespace('net');
  inet.forward(net);
  const srv = inet.namespace('srv');
  inet.link(net, 'n-srv', ['203.0.113.1/24', 'fd77::1/64'], srv, 'eth0', [`${SERVER_V4}/24`, `${SERVER_V6}/64`]);
  inet.route(srv, '203.0.113.1');
  inet.route(srv, 'fd77::1');

  /** A client namespace routed straight to `net` on subnet `10.77.<n>.0/24`. */
  const direct = (name, n) => {
    const ns = inet.namespace(name);
    inet.link(net, `n-${name}`, [`10.77.${n}.1/24`], ns, 'eth0', [`10.77.${n}.2/24`]);
    inet.route(ns, `10.77.${n}.1`);
    return ns;
  };
  /**
   * A client namespace behind a NAT namespace on subnet `10.77.<n>.0/24`.
   * `symmetric`: a new public port for every destination (masquerade
   * random); otherwise ports are kept and only answers from where a packet
   * went are let back in (Linux conntrack: a port-restricted cone NAT).
   */
  const natted = (name, n, symmetric) => {
    const nat = inet.namespace(`nat-${name}`);
    inet.forward(nat);
    inet.link(net, `n-${name}`, [`10.77.${n}.1/24`], nat, 'out', [`10.77.${n}.2/24`]);
    inet.route(nat, `10.77.${n}.1`);
    const ns = inet.namespace(name);
    inet.link(nat, 'in', ['192.168.1.1/24'], ns, 'eth0', ['192.168.1.2/24']);
    inet.route(ns, '192.168.1.1');
    inet.nft(nat, `table ip nat {
      chain postrouting { type nat hook postrouting priority srcnat; oifname "out" masquerade${symmetric ? ' random' : ''}; }
    }
    table ip filter {
      chain forwarding { type filter hook forward priority filter; policy drop;
        iifname "in" accept; ct state established,related accept; }
    }`);
    return ns;
  };

  const sites = {
    direct: direct('direct', 1),
    prnat: natted('prnat', 2, false),
    sym1: natted('sym1', 3, true),
    sym2: natted('sym2', 4, true),
    noudp: direct('noudp', 5),
    // One participant of the network-cut test: its link is taken down.
    cut: direct('cut', 7),
    only443: direct('only443', 8),
  };
  // A firewall that lets only TCP to port 443 out (and its answers back in).
  inet.nft(sites.only443, `table inet filter {
    chain outbound { type filter hook output priority filter; policy drop;
      oifname "lo" accept; ct state established,related accept; tcp dport 443 accept; }
    chain inbound { type filter hook input priority filter; policy drop;
      iifname "lo" accept; ct state established,related accept; }
  }`);
  // UDP blocked both ways (a firewall that lets only TCP through).
  inet.nft(sites.noudp, `table inet filter {
    chain outbound { type filter hook output priority filter; oifname != "lo" meta l4proto udp drop; }
    chain inbound { type filter hook input priority filter; iifname != "lo" meta l4proto udp drop; }
  }`);
  // IPv6 only: no IPv4 address at all.
  const v6 = inet.namespace('v6');
  inet.link(net, 'n-v6', ['fd77:6::1/64'], v6, 'eth0', ['fd77:6::2/64']);
  inet.route(v6, 'fd77:6::1');
  return { srv, sites: { ...sites, v6 } };
}

/** A connection through ICE-TCP: the browser's TCP candidate (its port is
 * learnt from the server's answer, so it shows as peer-reflexive), no relay. */
const iceTcp = (p) => p.protocol === 'tcp' && p.type !== 'relay';

/** Init script: no STUN or TURN servers, as with an administrator who configured none. */
function noIceServers() {
  const Native = window.RTCPeerConnection;
  // @ts-ignore
  window.RTCPeerConnection = function (config = {}) {
    return new Native({ ...config, iceServers: [] });
  };
  window.RTCPeerConnection.prototype = Native.prototype;
}

/** How a selected local candidate reads in the matrix. */
function pathName(p) {
  if (!p) return 'none';
  if (p.type === 'relay') return `TURN over ${p.relayProtocol}`;
  if (p.protocol === 'tcp') return 'ICE-TCP';
  return `UDP ${p.type === 'host' ? 'direct' : 'NAT-mapped'}${p.address?.includes(':') ? ' IPv6' : ''}`;
}

/**
 * The cases: which sites the three participants join from, and what path
 * their connections must take (checked on every connection of every page).
 * @type {{name: string, sites: string[], v6?: boolean, https?: boolean, initScript?: string,
 *   expect: (p: any) => string | null}[]}
 */
const CASES = [
  {
    name: '(a) directly routed',
    sites: ['direct', 'direct', 'direct'],
    expect: (p) => (p.type === 'host' && p.protocol === 'udp' ? null : 'host UDP'),
  },
  {
    name: '(b) port-restricted NAT',
    sites: ['prnat', 'prnat', 'prnat'],
    expect: (p) => (p.protocol === 'udp' && p.type !== 'relay' ? null : 'UDP without relay'),
  },
  {
    name: '(c) symmetric NATs (two sites)',
    sites: ['sym1', 'sym1', 'sym2'],
    expect: (p) => (p.protocol === 'udp' ? null : 'UDP'),
  },
  {
    name: '(d) UDP blocked',
    sites: ['noudp', 'noudp', 'noudp'],
    // Either TCP path will do when TURN is offered too.
    expect: (p) => (p.protocol === 'tcp' || p.relayProtocol === 'tcp' ? null : 'ICE-TCP or TURN over TCP'),
  },
  {
    name: '(d) UDP blocked, no TURN offered',
    sites: ['noudp', 'noudp', 'noudp'],
    initScript: `(${noIceServers.toString()})()`,
    expect: (p) => (iceTcp(p) ? null : 'ICE-TCP'),
  },
  {
    name: '(e) only TCP 443 allowed (one-port mode)',
    sites: ['only443', 'only443', 'only443'],
    https: true,
    // Both reach the one port: ICE-TCP, or TURN over TLS (turns: names 443).
    expect: (p) => (iceTcp(p) || p.relayProtocol === 'tls' ? null : 'ICE-TCP or TURN over TLS on port 443'),
  },
  {
    name: '(e) only TCP 443 allowed, no TURN offered',
    sites: ['only443', 'only443', 'only443'],
    https: true,
    initScript: `(${noIceServers.toString()})()`,
    expect: (p) => (iceTcp(p) ? null : 'ICE-TCP on port 443'),
  },
  {
    name: '(f) IPv6-only client, dual-stack server',
    sites: ['v6', 'v6', 'v6'],
    v6: true,
    expect: (p) => (p.protocol === 'udp' && p.address?.includes(':') ? null : 'UDP over IPv6'),
  },
];

describe('connectivity matrix (network namespaces)', { skip: why ?? false }, () => {
  const inet = new Internet(`pn${process.pid % 10000}`);
  /** @type {any} */
  let server;
  /** @type {Record<string, string>} */
  let sites;
  /** @type {string[]} */
  const matrix = [];

  before(async () => {
    const built = build(inet);
    sites = built.sites;
    // A throwaway certificate for one-port mode on 443.
    const cert = join(inet.dir, 'cert.pem');
    const key = join(inet.dir, 'key.pem');
    run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=parley-matrix',
      '-addext', `subjectAltName=IP:${SERVER_V4},IP:${SERVER_V6}`]);
    server = await startServer(['--https', '[::]:443', '--tls-cert', cert, '--tls-key', key],
      { wrap: ['ip', 'netns', 'exec', built.srv], http: '[::]:0' });
  });
  after(async () => {
    await server?.stop();
    inet.down();
    if (matrix.length) console.log(`\nconnectivity matrix (selected path of each participant's publish / subscribe connection):\n${matrix.join('\n')}\n`);
  });

  /**
   * Opens Chromium in each site once and joins `room` as P1, P2, … from `siteNames`.
   * @param {any} t the test (its end closes the browsers)
   */
  async function joinFrom(t, siteNames, room, base, initScript, browserArgs) {
    /** @type {Record<string, any>} */
    const browsers = {};
    t.after(async () => {
      for (const b of Object.values(browsers)) await b.close().catch(() => {});
    });
    const people = [];
    for (const [i, site] of siteNames.entries()) {
      browsers[site] ??= await launchBrowser({
        executablePath: inet.chromiumIn(sites[site], CHROMIUM),
        // Camera and microphone need a secure context; this plain-HTTP
        // address counts as one for the test (HTTPS has a throwaway
        // certificate instead).
        extraArgs: browserArgs ?? [`--unsafely-treat-insecure-origin-as-secure=${base}`],
      });
      const name = `P${i + 1}`;
      const context = await newContext(browsers[site].browser);
      await context.addInitScript(recordSignaling);
      const { page, errors } = await openRoom(browsers[site].browser, base, room, name, { initScript, context });
      await clickJoin(page, name);
      people.push({ name, site, page, errors, id: await selfId(page) });
    }
    return people;
  }

  // 10 s: the WebSocket usually survives and ICE recovers by itself. 25 s:
  // the page's watchdog gives the WebSocket up, and the page resumes its
  // place on a new one and restarts ICE once the network is back.
  for (const seconds of [10, 25]) {
  test(`a participant whose network is cut for ${seconds} s comes back without rejoining, and nobody saw them leave`, { timeout: 180_000 }, async (t) => {
    const base = `http://${SERVER_V4}:${server.port}`;
    const people = await joinFrom(t, ['direct', 'direct', 'cut'], roomName('cut'), base);
    await decodeEachOther(people, 45_000, 'before the cut');
    const [p1, p2, p3] = people;
    const net = inet.namespaces.find((n) => n.endsWith('-net'));
    run('ip', ['-n', net, 'link', 'set', 'n-cut', 'down']);
    const cutAt = Date.now();
    await sleep(2_000);
    const during = (await receivedByParticipant(p1.page))[p3.id]?.video ?? 0;
    await sleep(seconds * 1000 - 2_500);
    const later = (await receivedByParticipant(p1.page))[p3.id]?.video ?? 0;
    await sleep(Math.max(0, seconds * 1000 - (Date.now() - cutAt)));
    run('ip', ['-n', net, 'link', 'set', 'n-cut', 'up']);
    console.log(`network of ${p3.name} cut for ${Date.now() - cutAt} ms`);
    assert.equal(later, during, `no video from ${p3.name} reached ${p1.name} while the link was down`);
    await decodeEachOther(people, 45_000, 'after the cut');
    assert.equal(await selfId(p3.page), p3.id, `${p3.name} is the same participant (no rejoin)`);
    const resumed = (await signalingLog(p3.page, { dir: 'out', type: 'resume' })).length;
    console.log(`${p3.name} ${resumed ? 'resumed on a new signaling connection' : 'kept its signaling connection'}; back in ${Date.now() - cutAt} ms after the cut began`);
    assert.equal(await p3.page.evaluate(() => document.body.dataset.state), 'joined');
    for (const p of [p1, p2]) {
      const left = (await signalingLog(p.page, { dir: 'in', type: 'participant_left' })).filter((e) => e.msg.id === p3.id);
      assert.deepEqual(left, [], `${p.name} never saw ${p3.name} leave`);
      const joined = (await signalingLog(p.page, { dir: 'in', type: 'participant_joined' })).filter((e) => e.msg.participant?.id === p3.id || e.msg.id === p3.id);
      assert.ok(joined.length <= 1, `${p.name} saw ${p3.name} join only once`);
    }
  });
  }

  for (const c of CASES) {
    test(c.name, { timeout: 120_000 }, async (t) => {
      const host = c.v6 ? `[${SERVER_V6}]` : SERVER_V4;
      const base = c.https ? `https://${host}` : `http://${host}:${server.port}`;
      const browserArgs = c.https ? ['--ignore-certificate-errors'] : undefined;
      const people = await joinFrom(t, c.sites, roomName('matrix'), base, c.initScript, browserArgs);
      await decodeEachOther(people, 45_000, 'in this network');
      const problems = [];
      const rows = [];
      for (const p of people) {
        const paths = await selectedPaths(p.page);
        rows.push(`${p.name}: ${pathName(paths.publishPc)} / ${pathName(paths.subscribePc)}`);
        for (const pc of ['publishPc', 'subscribePc']) {
          const wrong = paths[pc] ? c.expect(paths[pc]) : 'a selected pair';
          if (wrong) problems.push(`${p.name}'s ${pc} should use ${wrong}, got ${JSON.stringify(paths[pc])}`);
        }
      }
      if (c.sites.includes('noudp') && rows.some((r) => r.includes('ICE-TCP'))) {
        // The server counts the connections: the admin can see TCP in use.
        const metrics = await fetchInSite(sites.direct, `http://${SERVER_V4}:${server.port}/metrics`);
        const open = Number(/^parley_ice_tcp_connections (\d+)/m.exec(metrics)?.[1]);
        rows.push(`server: ${open} ICE-TCP connections`);
        if (!(open > 0)) problems.push(`the server reports ${open} ICE-TCP connections`);
      }
      matrix.push(`  ${c.name.padEnd(42)} ${rows.join('; ')}`);
      console.log(matrix.at(-1));
      assert.deepEqual(problems, []);
    });
  }
});
