// Shared pieces of the browser tests: a real `parley` process on loopback and
// Debian's Chromium with fake camera and microphone, driven by playwright-core.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { before, after } from 'node:test';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const PARLEY_BIN = process.env.PARLEY_BIN ?? join(ROOT, 'target', 'release', 'parley');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Starts `parley serve` on 127.0.0.1 with free ports and a fresh data directory.
 * Resolves once the server reports ready; `stop()` ends it by PID.
 * `options.wrap` runs it through another command (e.g. `ip netns exec NS`),
 * `options.http` listens elsewhere than 127.0.0.1 (`url` is then the
 * address the server printed, and `port` its port).
 * `options.dataDir` keeps the database in a given directory (left in place
 * by `stop()`), e.g. to start the same server again.
 * @param {string[]} [extraArgs]
 * @param {{wrap?: string[], http?: string, dataDir?: string}} [options]
 */
export async function startServer(extraArgs = [], { wrap = [], http = '127.0.0.1:0', dataDir: keptDir } = {}) {
  if (!existsSync(PARLEY_BIN)) {
    throw new Error(`${PARLEY_BIN} is missing: run \`cargo build --release\` first`);
  }
  const dataDir = keptDir ?? mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  const argv = [...wrap, PARLEY_BIN, 'serve', '--http', http, '--media-port', '0', '--turn-port', '0', '--data-dir', dataDir, ...extraArgs];
  const child = spawn(
    argv[0],
    argv.slice(1),
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } },
  );
  const log = [];
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley not ready in 20 s:\n${log.join('')}`)), 20_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log.push(chunk);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[parley] ${chunk}`);
      const m = /ready: (http:\/\/[0-9a-f.:[\]]+)/.exec(log.join(''));
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`parley exited with ${code}:\n${log.join('')}`));
    });
  });
  return {
    url,
    port: Number(/:(\d+)$/.exec(url)?.[1]),
    log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => {
          const t = setTimeout(() => {
            child.kill('SIGKILL');
            r(undefined);
          }, 5000);
          child.on('exit', () => {
            clearTimeout(t);
            r(undefined);
          });
        });
      }
      if (!keptDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Launches headless Chromium with fake media devices. playwright gives each
 * launch a fresh temporary profile (its own --user-data-dir).
 * `executablePath` runs another launcher (e.g. one that enters a network
 * namespace); `extraArgs` are added to the command line.
 * @param {{executablePath?: string, extraArgs?: string[]}} [options]
 */
export async function launchBrowser({ executablePath = CHROMIUM, extraArgs = [] } = {}) {
  const instance = await chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
      '--allow-loopback-in-peer-connection',
      ...extraArgs,
    ],
  });
  return {
    browser: instance,
    async close() {
      await instance.close();
    },
  };
}

/** A fresh room name nobody else uses. */
export function roomName(prefix) {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}

/**
 * Reports a page's uncaught errors and console errors on stderr, and keeps
 * them in the returned array so a test can assert there were none.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 * @returns {string[]}
 */
export function watchPage(page, name) {
  /** @type {string[]} */
  const errors = [];
  page.on('pageerror', (e) => {
    errors.push(`page error: ${e.message}`);
    console.error(`[${name}] page error: ${e.message}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
    if (m.type() === 'error' || process.env.E2E_VERBOSE) console.error(`[${name}] ${m.type()}: ${m.text()}`);
  });
  return errors;
}

/**
 * The web client the binary embedded at build time is what the tests use.
 * With `E2E_WEB_FROM_DISK=1`, the pages instead load `/assets/…` from the
 * working tree's `web/`, to try a client change before the binary is rebuilt.
 */
const WEB_FROM_DISK = process.env.E2E_WEB_FROM_DISK ? join(ROOT, 'web') : null;
const CONTENT_TYPES = { js: 'text/javascript', css: 'text/css', svg: 'image/svg+xml', html: 'text/html' };

/**
 * A new browser context (a fresh profile: own storage, own permissions) with
 * camera and microphone allowed.
 * @param {import('playwright-core').Browser} browser
 */
export async function newContext(browser) {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  if (WEB_FROM_DISK) {
    const webDir = WEB_FROM_DISK;
    await context.route('**/assets/**', (route) => {
      const path = new URL(route.request().url()).pathname.slice('/assets/'.length);
      const file = join(webDir, path);
      if (path.split('/').includes('..') || !existsSync(file)) return route.continue();
      const ext = path.split('.').pop() ?? '';
      return route.fulfill({ body: readFileSync(file), contentType: CONTENT_TYPES[ext] ?? 'application/octet-stream' });
    });
  }
  return context;
}

/**
 * Opens the room page in a new browser context (or `options.context`) and
 * waits on the pre-join screen until the camera and microphone were asked
 * for (`window.parley.media` is set once the preview is rendered).
 * @param {import('playwright-core').Browser} browser
 * @param {string} baseUrl
 * @param {string} room
 * @param {string} name used for log lines only
 * @param {{initScript?: string | Function, context?: import('playwright-core').BrowserContext}} [options]
 */
export async function openRoom(browser, baseUrl, room, name, { initScript, context } = {}) {
  const ctx = context ?? await newContext(browser);
  if (initScript) await ctx.addInitScript(initScript);
  const page = await ctx.newPage();
  const errors = watchPage(page, name);
  await page.goto(`${baseUrl}/r/${room}`);
  await waitForPrejoin(page);
  return { context: ctx, page, name, errors };
}

/**
 * Waits until the page shows the pre-join screen with its local media opened.
 * @param {import('playwright-core').Page} page
 */
export async function waitForPrejoin(page) {
  await page.waitForFunction(
    // @ts-ignore — test hook
    () => document.body.dataset.state === 'prejoin' && window.parley?.media != null,
    null, { timeout: 20_000 });
}

/**
 * Types `name` (if given) and clicks Join, then waits to be in the call.
 * @param {import('playwright-core').Page} page
 * @param {string} [name]
 */
export async function clickJoin(page, name) {
  if (name !== undefined) await page.fill('#name', name);
  await page.click('#join');
  await page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 20_000 });
}

/**
 * Opens the room page in a new context, sets the display name and joins.
 * @param {import('playwright-core').Browser} browser
 */
export async function joinRoom(browser, baseUrl, room, name, { initScript } = {}) {
  const joined = await openRoom(browser, baseUrl, room, name, { initScript });
  await clickJoin(joined.page, name);
  return joined;
}

/**
 * What a page receives, per publishing participant: video frames decoded and
 * audio packets received, read from `getStats()` of the subscribe connection.
 * m-lines are attributed to participants through the `a=msid` stream ids the
 * server writes into its offers.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, {video: number, audio: number}>>}
 */
export async function receivedByParticipant(page) {
  return page.evaluate(async () => {
    /** @type {RTCPeerConnection | undefined} */
    // @ts-ignore — the client exposes its session for tests and debugging.
    const pc = window.parley?.session?.subscribePc;
    /** @type {Record<string, {video: number, audio: number}>} */
    const out = {};
    if (!pc || !pc.remoteDescription) return out;
    const owner = new Map();
    for (const section of pc.remoteDescription.sdp.split(/\r\nm=/).slice(1)) {
      const mid = /\r\na=mid:(\S+)/.exec(section)?.[1];
      const msid = /\r\na=msid:(\S+)/.exec(section)?.[1];
      if (mid && msid) owner.set(mid, msid);
    }
    for (const t of pc.getTransceivers()) {
      if (!t.mid || t.currentDirection === 'stopped') continue;
      const who = owner.get(t.mid);
      if (!who) continue;
      const entry = (out[who] ??= { video: 0, audio: 0 });
      const stats = await t.receiver.getStats();
      stats.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        if (s.kind === 'video') entry.video += s.framesDecoded ?? 0;
        if (s.kind === 'audio') entry.audio += s.packetsReceived ?? 0;
      });
    }
    return out;
  });
}

/**
 * Waits until every page decodes more than 10 new video frames from every
 * other page (participant ids read afresh, so rejoined pages count), each
 * within `ms`.
 * @param {Array<{name: string, site?: string, page: import('playwright-core').Page}>} people
 * @param {number} ms
 * @param {string} what for the failure message, e.g. "after the cut"
 */
export async function decodeEachOther(people, ms, what) {
  const ids = await Promise.all(people.map((p) => selfId(p.page)));
  for (const [i, p] of people.entries()) {
    const others = ids.filter((_, j) => j !== i);
    const before = await receivedByParticipant(p.page);
    await eventually(async () => {
      const got = await receivedByParticipant(p.page);
      return others.every((o) => (got[o]?.video ?? 0) > (before[o]?.video ?? 0) + 10);
    }, ms, `${p.name}${p.site ? ` (${p.site})` : ''} to decode the others' video ${what}`);
  }
}

/** The participant id a page's tile for `name` carries. */
export async function participantIdByName(page, name) {
  return page.evaluate((wanted) => {
    for (const tile of document.querySelectorAll('.tile[data-participant-id]')) {
      if (tile.textContent?.includes(wanted)) return tile.getAttribute('data-participant-id');
    }
    return null;
  }, name);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(check, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await check();
    if (last) return last;
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${JSON.stringify(last)}`);
}

/**
 * How a page shows participant `id`'s tile: whether it exists, its mic and
 * camera state, and whether the video or the avatar is what is visible.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 */
export async function tileState(page, id) {
  return page.evaluate((wanted) => {
    const tile = document.querySelector(`.tile[data-participant-id="${wanted}"]`);
    if (!(tile instanceof HTMLElement)) return null;
    const avatar = tile.querySelector('.avatar');
    return {
      name: tile.querySelector('.tile-name')?.textContent ?? '',
      micOff: tile.classList.contains('mic-off'),
      cameraOff: tile.classList.contains('camera-off'),
      mic: tile.dataset.mic,
      camera: tile.dataset.camera,
      showVideo: tile.classList.contains('show-video'),
      avatarVisible: avatar ? getComputedStyle(avatar).display !== 'none' : false,
    };
  }, id);
}

/** Whether a toggle button shows "on" (`aria-pressed="true"`). */
export async function isPressed(page, selector) {
  return (await page.getAttribute(selector, 'aria-pressed')) === 'true';
}

/**
 * An init script that records every signaling message in `window.__signaling`
 * as `{dir: 'in' | 'out', at, msg}`, to explain failures.
 */
export function recordSignaling() {
  const NativeWebSocket = window.WebSocket;
  /** @type {Array<{dir: string, at: number, msg: any}>} */
  const log = [];
  Object.defineProperty(window, '__signaling', { value: log });
  const keep = (dir, data) => {
    try {
      const msg = JSON.parse(data);
      log.push({ dir, at: Date.now(), msg });
    } catch {
      log.push({ dir, at: Date.now(), msg: String(data) });
    }
  };
  class RecordingWebSocket extends NativeWebSocket {
    constructor(...args) {
      // @ts-ignore
      super(...args);
      this.addEventListener('message', (e) => keep('in', e.data));
    }
    send(data) {
      keep('out', data);
      super.send(data);
    }
  }
  window.WebSocket = RecordingWebSocket;
}

/**
 * The recorded signaling messages of a page (see {@link recordSignaling}),
 * optionally only those matching `filter` ({dir, type, pc}).
 * @param {import('playwright-core').Page} page
 */
export async function signalingLog(page, { dir, type, pc } = {}) {
  return page.evaluate(({ dir, type, pc }) =>
    // @ts-ignore
    (window.__signaling ?? []).filter((e) =>
      (!dir || e.dir === dir) && (!type || e.msg?.type === type) && (!pc || e.msg?.pc === pc)),
  { dir, type, pc });
}

/**
 * Video per simulcast layer from a page's publish connection: one entry per
 * outbound-rtp video stream, keyed by `rid` ('' without simulcast).
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, {rid: string, bytesSent: number, frameWidth?: number, frameHeight?: number, active?: boolean, framesEncoded?: number, qualityLimitationReason?: string}>>}
 */
export async function publishedVideoByRid(page) {
  return page.evaluate(async () => {
    // @ts-ignore — test hook
    const pc = window.parley?.session?.publishPc;
    /** @type {Record<string, any>} */
    const out = {};
    if (!pc) return out;
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type !== 'outbound-rtp' || s.kind !== 'video') return;
      const rid = s.rid ?? '';
      out[rid] = {
        rid,
        bytesSent: s.bytesSent ?? 0,
        frameWidth: s.frameWidth,
        frameHeight: s.frameHeight,
        active: s.active,
        framesEncoded: s.framesEncoded,
        qualityLimitationReason: s.qualityLimitationReason,
      };
    });
    return out;
  });
}

/**
 * The video streams a page receives from participant `id` on its subscribe
 * connection: one entry per live m-line the server attributed to `id`, each
 * with the inbound-rtp streams it carries.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 */
export async function receivedVideoFrom(page, id) {
  return page.evaluate(async (wanted) => {
    // @ts-ignore — test hook
    const pc = window.parley?.session?.subscribePc;
    /** @type {Array<{mid: string, inbound: Array<{ssrc: number, framesDecoded: number, frameWidth?: number, frameHeight?: number}>}>} */
    const out = [];
    if (!pc || !pc.remoteDescription) return out;
    const owner = new Map();
    for (const section of pc.remoteDescription.sdp.split(/\r\nm=/).slice(1)) {
      const mid = /\r\na=mid:(\S+)/.exec(section)?.[1];
      const msid = /\r\na=msid:(\S+)/.exec(section)?.[1];
      if (mid && msid) owner.set(mid, msid);
    }
    for (const t of pc.getTransceivers()) {
      if (!t.mid || t.currentDirection === 'stopped' || t.receiver.track.kind !== 'video') continue;
      if (owner.get(t.mid) !== wanted) continue;
      /** @type {Array<any>} */
      const inbound = [];
      (await t.receiver.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          inbound.push({ ssrc: s.ssrc, framesDecoded: s.framesDecoded ?? 0, frameWidth: s.frameWidth, frameHeight: s.frameHeight });
        }
      });
      out.push({ mid: t.mid, inbound });
    }
    return out;
  }, id);
}

/**
 * The transceivers of a page's subscribe connection that still receive: not
 * stopped, direction recvonly/sendrecv, and a live track. Also returns the
 * signaling state and each m-line's port from the remote description.
 * @param {import('playwright-core').Page} page
 */
export async function subscribeState(page) {
  return page.evaluate(() => {
    // @ts-ignore — test hook
    const pc = window.parley?.session?.subscribePc;
    if (!pc) return null;
    const transceivers = pc.getTransceivers().map((t) => ({
      mid: t.mid,
      kind: t.receiver.track.kind,
      direction: t.direction,
      currentDirection: t.currentDirection,
      trackState: t.receiver.track.readyState,
    }));
    const mlines = (pc.remoteDescription?.sdp ?? '').split('\r\n').filter((l) => l.startsWith('m='));
    return {
      signalingState: pc.signalingState,
      connectionState: pc.connectionState,
      transceivers,
      receiving: transceivers.filter((t) => t.currentDirection !== 'stopped'
        && (t.currentDirection === 'recvonly' || t.currentDirection === 'sendrecv')
        && t.trackState === 'live'),
      mlines,
    };
  });
}

/**
 * Registers one server and one browser for a whole test file (started before
 * its first test, stopped after its last) and returns them.
 * @returns {{server: Awaited<ReturnType<typeof startServer>>, chrome: Awaited<ReturnType<typeof launchBrowser>>}}
 */
export function sharedServerAndBrowser() {
  const shared = /** @type {any} */ ({});
  before(async () => {
    shared.server = await startServer();
    shared.chrome = await launchBrowser();
  });
  after(async () => {
    await shared.chrome?.close();
    await shared.server?.stop();
  });
  return shared;
}

/** The participant id a joined page has. */
export const selfId = (page) => page.evaluate(() => /** @type {any} */ (window).parley.selfId);

/**
 * The selected candidate pair of both connections: local type and relay protocol.
 * @param {import('playwright-core').Page} page
 */
export async function selectedPaths(page) {
  return page.evaluate(async () => {
    const out = {};
    // @ts-ignore
    const session = window.parley?.session;
    for (const name of ['publishPc', 'subscribePc']) {
      const pc = session?.[name];
      if (!pc) continue;
      const stats = await pc.getStats();
      let pair;
      stats.forEach((s) => {
        if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
      });
      const local = pair && stats.get(pair.localCandidateId);
      out[name] = local
        ? { type: local.candidateType, relayProtocol: local.relayProtocol, protocol: local.protocol, address: local.address }
        : null;
    }
    return out;
  });
}

/**
 * Creates the first administrator through the setup link the server printed
 * and returns an API caller signed in as them (session cookie and CSRF token).
 * @param {{url: string, log: string[]}} server
 */
export async function adminApi(server) {
  // The link is logged just after the ready line, maybe in a later chunk.
  let token;
  for (let i = 0; i < 100 && !token; i++) {
    token = /\/setup#token=(\S+)/.exec(server.log.join(''))?.[1];
    if (!token) await sleep(50);
  }
  if (!token) throw new Error('no setup link in the server log within 5 s');
  const setup = await fetch(`${server.url}/api/v1/setup`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token, login: 'admin@example.org', password: 'correct horse battery' }),
  });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.status} ${await setup.text()}`);
  const cookie = (setup.headers.get('set-cookie') ?? '').split(';')[0];
  const { csrf_token: csrf } = await setup.json();
  /**
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   */
  return async function call(method, path, body) {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { cookie, 'x-csrf-token': csrf, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
}

/**
 * Signs in through the API and returns the session cookie (`name=value`).
 * @param {{url: string}} server
 * @param {string} login
 * @param {string} password
 */
export async function signIn(server, login, password) {
  const res = await fetch(`${server.url}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ login, password }),
  });
  if (!res.ok) throw new Error(`sign-in of ${login} failed: ${res.status} ${await res.text()}`);
  return (res.headers.get('set-cookie') ?? '').split(';')[0];
}

/**
 * A new browser context signed in with `cookie` (from {@link signIn}).
 * @param {import('playwright-core').Browser} browser
 * @param {{url: string}} server
 * @param {string} cookie
 */
export async function signedInContext(browser, server, cookie) {
  const context = await newContext(browser);
  const at = cookie.indexOf('=');
  await context.addCookies([{ name: cookie.slice(0, at), value: cookie.slice(at + 1), url: server.url }]);
  return context;
}

/**
 * Creates the first administrator and then `users` (`{login, password, name}`),
 * and signs each in; returns their session cookies, in order.
 * @param {{url: string, log: string[]}} server
 * @param {Array<{login: string, password: string, name: string}>} users
 */
export async function signedInUsers(server, users) {
  const api = await adminApi(server);
  const cookies = [];
  for (const u of users) {
    const res = await api('POST', '/api/v1/users', { login: u.login, password: u.password, display_name: u.name });
    if (res.status !== 201) throw new Error(`creating ${u.login}: ${res.status} ${JSON.stringify(res.body)}`);
    cookies.push(await signIn(server, u.login, u.password));
  }
  return cookies;
}
