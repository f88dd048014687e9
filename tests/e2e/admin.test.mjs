// The admin console end to end, from an empty database: the first
// administrator is created through the setup link the server prints, signs
// out and in again, changes the STUN servers and the reactions, and a
// participant who joins afterwards gets both, without a restart. A reaction
// outside the new list is refused, and an invalid value is shown next to its
// field and not stored.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startServer, launchBrowser, newContext, joinRoom, watchPage, eventually, roomName, recordSignaling, signalingLog,
} from './harness.mjs';

const ADMIN = { login: 'admin@example.org', name: 'Ada Admin', password: 'correct horse battery staple' };
const STUN_URL = 'stun:stun.example.org:3478';
const REACTIONS = ['🎉', '🚀'];

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let chrome;

before(async () => {
  // Its own server: the setup link only exists while the database is empty.
  server = await startServer();
  chrome = await launchBrowser();
});

after(async () => {
  await chrome?.close();
  await server?.stop();
});

/**
 * Waits until the admin console has loaded.
 * @param {import('playwright-core').Page} page
 */
async function consoleReady(page) {
  await page.waitForFunction(() => document.body.dataset.state === 'ready', null, { timeout: 15_000 });
}

/**
 * Opens a page of the console through its navigation link.
 * @param {import('playwright-core').Page} page
 * @param {string} id
 */
async function openPage(page, id) {
  await page.click(`nav a[href="#${id}"]`);
  await page.waitForSelector(`#page-${id}:not([hidden])`, { timeout: 5000 });
}

/**
 * Saves a settings card and waits for "Saved".
 * @param {import('playwright-core').Page} page
 * @param {string} section
 */
async function saveSection(page, section) {
  const card = `[data-section="${section}"]`;
  await page.click(`${card} [data-action="save"]`);
  await page.waitForFunction(
    (sel) => {
      const status = document.querySelector(`${sel} .form-status`);
      const error = document.querySelector(`${sel} .card-form > .form-error`);
      return status?.textContent === 'Saved' || (error instanceof HTMLElement && !error.hidden);
    },
    card, { timeout: 10_000 });
  const error = await page.$eval(`${card} .card-form > .form-error`, (e) => (e instanceof HTMLElement && !e.hidden ? e.textContent : ''));
  assert.equal(error, '', `saving ${section} shows no error`);
}

/**
 * A settings section as the server has it, read with the page's session.
 * @param {import('playwright-core').Page} page
 * @param {string} section
 */
function storedSection(page, section) {
  return page.evaluate(async (s) => {
    const res = await fetch(`/api/v1/settings/${s}`, { credentials: 'same-origin' });
    return res.json();
  }, section);
}

/** Console errors that are not the expected refusals (a 401, a 422) logged by the browser. */
const unexpected = (errors) => errors.filter((e) => !/Failed to load resource: the server responded with a status of (401|422)/.test(e));

test('an administrator set up from an empty database changes ICE and reactions live', { timeout: 150_000 }, async (t) => {
  const context = await newContext(chrome.browser);
  const others = [];
  t.after(async () => {
    for (const c of others) await c.close().catch(() => {});
    await context.close().catch(() => {});
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors = watchPage(page, 'admin');

  await t.test('the setup link creates the first administrator', async () => {
    const link = await eventually(
      () => /(http:\/\/\S+\/setup#token=[^\s"]+)/.exec(server.log.join(''))?.[1],
      10_000, 'the setup link in the server log');
    await page.goto(link);
    await page.waitForFunction(() => document.body.dataset.state === 'form', null, { timeout: 10_000 });
    assert.equal(new URL(page.url()).hash, '', 'the token is taken off the address bar');

    await page.fill('#setup-login', ADMIN.login);
    await page.fill('#setup-display-name', ADMIN.name);
    await page.fill('#setup-password', ADMIN.password);
    await page.fill('#setup-repeat', `${ADMIN.password}!`);
    await page.click('#setup-submit');
    await page.waitForSelector('#setup-repeat[aria-invalid="true"]', { timeout: 5000 });

    await page.fill('#setup-repeat', ADMIN.password);
    await page.click('#setup-submit');
    await page.waitForURL(/\/admin$/, { timeout: 15_000 });
    await consoleReady(page);
    assert.match(await page.textContent('#user-name') ?? '', /Ada Admin \(admin@example\.org\)/);

    // The link is used up.
    const again = await page.evaluate(async () => (await fetch('/api/v1/setup')).json());
    assert.deepEqual(again, { needed: false });
  });

  await t.test('signing out and in again through /login', async () => {
    await page.click('#sign-out');
    await page.waitForURL(/\/login$/, { timeout: 10_000 });

    // The console sends visitors who are not signed in to the sign-in page, and back.
    await page.goto(`${server.url}/admin#connection`);
    await page.waitForURL(/\/login\?next=/, { timeout: 10_000 });
    assert.equal(new URL(page.url()).searchParams.get('next'), '/admin#connection');

    await page.fill('#login', ADMIN.login);
    await page.fill('#password', 'not the password');
    await page.click('#sign-in');
    await page.waitForSelector('#login-error:not([hidden])', { timeout: 10_000 });
    assert.match(await page.textContent('#login-error') ?? '', /wrong login or password/i);

    await page.fill('#password', ADMIN.password);
    await page.click('#sign-in');
    await page.waitForURL(/\/admin#connection$/, { timeout: 15_000 });
    await consoleReady(page);
    await page.waitForSelector('#page-connection:not([hidden])', { timeout: 5000 });
  });

  await t.test('a STUN server added on the Connection & ICE page is saved', async () => {
    await openPage(page, 'connection');
    const card = '[data-section="stun"]';
    await page.click(`${card} [data-action="add"]`);
    await page.fill(`${card} [data-field="servers[0]"]`, STUN_URL);
    await saveSection(page, 'stun');
    const stored = await storedSection(page, 'stun');
    assert.deepEqual(stored, { builtin: true, servers: [STUN_URL] });
    // The form shows what was stored.
    assert.equal(await page.inputValue(`${card} [data-field="servers[0]"]`), STUN_URL);
  });

  await t.test('the reactions are changed to 🎉 and 🚀', async () => {
    await openPage(page, 'reactions');
    const card = '[data-section="reactions"]';
    const rows = () => page.$$eval(`${card} .list-row`, (r) => r.length);
    assert.ok(await rows() > REACTIONS.length, 'the default list is longer');
    while (await rows() > REACTIONS.length) await page.click(`${card} [data-action="remove"]`);
    await page.fill(`${card} [data-field="allowed[0]"]`, REACTIONS[0]);
    await page.fill(`${card} [data-field="allowed[1]"]`, REACTIONS[1]);
    await saveSection(page, 'reactions');
    assert.deepEqual(await storedSection(page, 'reactions'), { allowed: REACTIONS });
  });

  await t.test('an invalid member limit is shown next to its field and not stored', async () => {
    await openPage(page, 'rooms');
    const input = '[data-section="rooms"] [data-field="max_members"]';
    const before = await page.inputValue(input);
    assert.equal(before, '20');
    await page.fill(input, '61');
    await page.click('[data-section="rooms"] [data-action="save"]');
    await page.waitForSelector(`${input}[aria-invalid="true"]`, { timeout: 10_000 });
    // The message is the one next to the field, tied to it for screen readers.
    const message = await page.$eval(input, (el) => {
      const ids = (el.getAttribute('aria-describedby') ?? '').split(' ');
      const notes = ids.map((id) => document.getElementById(id)).filter((n) => n?.classList.contains('field-error'));
      const sameField = notes.every((n) => n?.closest('.field') === el.closest('.field'));
      return sameField ? notes.map((n) => n?.textContent).join(' ') : 'not next to the field';
    });
    assert.match(message, /\b2\b/);
    assert.match(message, /\b60\b/);
    assert.equal(await page.textContent('[data-section="rooms"] .form-status'), '', 'no "Saved"');

    assert.equal((await storedSection(page, 'rooms')).max_members, 20, 'nothing was stored');
    await page.reload();
    await consoleReady(page);
    await page.waitForSelector('#page-rooms:not([hidden])', { timeout: 5000 });
    assert.equal(await page.inputValue(input), '20', 'the old value is back after a reload');
  });

  const room = roomName('admin');

  await t.test('a participant who joins afterwards gets the new STUN server and reactions', async () => {
    const grace = await joinRoom(chrome.browser, server.url, room, 'Grace', { initScript: recordSignaling });
    others.push(grace.context);
    const [joined] = await eventually(
      () => signalingLog(grace.page, { dir: 'in', type: 'joined' }).then((l) => (l.length ? l : null)),
      10_000, 'the joined message');
    const urls = joined.msg.ice_servers.flatMap((s) => [].concat(s.urls));
    assert.ok(urls.includes(STUN_URL), `ice_servers include ${STUN_URL}: ${JSON.stringify(urls)}`);
    assert.deepEqual(joined.msg.reactions, REACTIONS);
    assert.deepEqual(unexpected(grace.errors), []);
  });

  await t.test('a reaction outside the list is refused', async () => {
    // A plain WebSocket client, in a page of the server's origin.
    const probe = await context.newPage();
    await probe.goto(`${server.url}/`);
    const got = await probe.evaluate(({ room }) => new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${location.host}/ws`);
      const seen = [];
      const timer = setTimeout(() => {
        ws.close();
        reject(new Error(`no answer in 10 s: ${JSON.stringify(seen)}`));
      }, 10_000);
      ws.onmessage = (event) => {
        const msg = JSON.parse(event.data);
        seen.push(msg);
        if (msg.type === 'joined') {
          ws.send(JSON.stringify({ type: 'reaction', emoji: '👍' }));
        } else if (msg.type === 'error' && msg.code === 'reaction_not_allowed') {
          // An allowed one still goes through (everyone, the sender too, gets it).
          ws.send(JSON.stringify({ type: 'reaction', emoji: '🚀' }));
        } else if (msg.type === 'reaction' || msg.type === 'error') {
          clearTimeout(timer);
          ws.close();
          resolve(seen);
        }
      };
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', version: 1, room, name: 'Linus', mic: false, camera: false }));
      ws.onerror = () => reject(new Error('the WebSocket failed'));
    }), { room });
    const refused = got.find((m) => m.type === 'error');
    assert.equal(refused?.code, 'reaction_not_allowed', JSON.stringify(got));
    const echoed = got.find((m) => m.type === 'reaction');
    assert.equal(echoed?.emoji, '🚀', JSON.stringify(got));
    await probe.close();
  });

  assert.deepEqual(unexpected(errors), [], 'the console logged no errors');
});
