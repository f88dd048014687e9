// Shared pieces of the browser tests: a real `parley` process on loopback and
// Debian's Chromium with fake camera and microphone, driven by playwright-core.

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';

const ROOT = resolve(import.meta.dirname, '..', '..');
export const PARLEY_BIN = process.env.PARLEY_BIN ?? join(ROOT, 'target', 'release', 'parley');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/**
 * Starts `parley serve` on 127.0.0.1 with free ports and a fresh data directory.
 * Resolves once the server reports ready; `stop()` ends it by PID.
 */
export async function startServer() {
  if (!existsSync(PARLEY_BIN)) {
    throw new Error(`${PARLEY_BIN} is missing: run \`cargo build --release\` first`);
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'parley-e2e-'));
  const child = spawn(
    PARLEY_BIN,
    ['serve', '--http', '127.0.0.1:0', '--media-port', '0', '--data-dir', dataDir],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info' } },
  );
  const log = [];
  const url = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error(`parley not ready in 20 s:\n${log.join('')}`)), 20_000);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log.push(chunk);
      if (process.env.E2E_VERBOSE) process.stderr.write(`[parley] ${chunk}`);
      const m = /ready: (http:\/\/[0-9.:]+)/.exec(log.join(''));
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
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * Launches headless Chromium with fake media devices. playwright gives each
 * launch a fresh temporary profile (its own --user-data-dir).
 */
export async function launchBrowser() {
  const instance = await chromium.launch({
    executablePath: CHROMIUM,
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
 * Opens the room page in a new context, sets the display name and joins.
 * @param {import('playwright-core').Browser} browser
 */
export async function joinRoom(browser, baseUrl, room, name, { initScript } = {}) {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  if (initScript) await context.addInitScript(initScript);
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[${name}] page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || process.env.E2E_VERBOSE) console.error(`[${name}] ${m.type()}: ${m.text()}`);
  });
  await page.goto(`${baseUrl}/r/${room}`);
  await page.fill('#name', name);
  await page.click('#join');
  await page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 20_000 });
  return { context, page, name };
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
