// One-to-one calls between two signed-in users in separate browser
// contexts: ringing with the caller's name, answering into a shared room
// where both decode each other's video, hanging up, declining,
// do-not-disturb, and answering on one of two open tabs.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  eventually, launchBrowser, receivedByParticipant, signedInContext, signedInUsers, sleep, startServer,
} from './harness.mjs';

const ADA = { login: 'ada@example.org', password: 'ada passphrase 11', name: 'Ada Lovelace' };
const BEN = { login: 'ben@example.org', password: 'ben passphrase 22', name: 'Ben Okri' };

/**
 * Opens the home page of a signed-in context and waits for the buddy list.
 * @param {import('playwright-core').BrowserContext} context
 * @param {string} url
 */
async function home(context, url) {
  const page = await context.newPage();
  page.on('pageerror', (e) => console.error(`[home] ${e.message}`));
  await page.goto(`${url}/`);
  await page.waitForFunction(() => document.body.dataset.people === 'ready', null, { timeout: 15_000 });
  return page;
}

/** Waits until `page` shows `name` with `status` in its buddy list. */
async function buddyStatus(page, name, status) {
  await eventually(() => page.evaluate(({ name, status }) => [...document.querySelectorAll('#buddy-list li')]
    .some((li) => li.textContent?.includes(name) && li.getAttribute('data-status') === status), { name, status }),
  10_000, `${name} to show as ${status}`);
}

/** Clicks the video-call button of `name` in the buddy list. */
async function callFrom(page, name) {
  await page.click(`#buddy-list li:has-text("${name}") button.call-video`);
}

/** Whether the incoming-call notification is open. */
const ringing = (page) => page.evaluate(() => /** @type {HTMLDialogElement} */ (document.getElementById('incoming-call')).open);

test('one-to-one calls ring, connect, end, and are declined with a reason', { timeout: 240_000 }, async (t) => {
  const server = await startServer();
  const chrome = await launchBrowser();
  t.after(async () => {
    await chrome.close();
    await server.stop();
  });
  const [adaCookie, benCookie] = await signedInUsers(server, [ADA, BEN]);
  const adaContext = await signedInContext(chrome.browser, server, adaCookie);
  const benContext = await signedInContext(chrome.browser, server, benCookie);
  const ada = await home(adaContext, server.url);
  const ben = await home(benContext, server.url);
  await buddyStatus(ada, BEN.name, 'available');

  await t.test('Ada calls Ben; Ben answers; both decode each other; Ada hangs up', async () => {
    await callFrom(ada, BEN.name);
    await eventually(() => ringing(ben), 10_000, "Ben's page to ring");
    assert.equal(await ben.textContent('#incoming-name'), ADA.name);
    assert.equal(await ben.textContent('#incoming-kind'), 'Video call');
    assert.match(await ada.textContent('#outgoing-status'), /Ringing Ben Okri/);
    await ben.click('#incoming-answer');
    for (const page of [ada, ben]) {
      await page.waitForURL(/\/r\/call-[0-9a-f]+$/, { timeout: 10_000 });
      await page.waitForFunction(() => document.body.dataset.state === 'joined', null, { timeout: 20_000 });
    }
    assert.equal(new URL(ada.url()).pathname, new URL(ben.url()).pathname, 'both in the same room');
    const adaId = await ada.evaluate(() => /** @type {any} */ (window).parley.selfId);
    const benId = await ben.evaluate(() => /** @type {any} */ (window).parley.selfId);
    await eventually(async () => (await receivedByParticipant(ada))[benId]?.video > 10, 20_000, 'Ada to decode Ben');
    await eventually(async () => (await receivedByParticipant(ben))[adaId]?.video > 10, 20_000, 'Ben to decode Ada');
    await ada.click('#leave');
    for (const page of [ada, ben]) {
      await eventually(() => page.evaluate(() => document.body.dataset.state === 'left'
        && document.getElementById('ended-title')?.textContent === 'Call ended'), 10_000, 'the call to end on both pages');
    }
    assert.match(await ben.textContent('#ended-detail'), /hung up/);
    await ada.goto(`${server.url}/`);
    await ben.goto(`${server.url}/`);
    for (const page of [ada, ben]) await page.waitForFunction(() => document.body.dataset.people === 'ready', null, { timeout: 15_000 });
    // The call is in both histories, with both names.
    for (const page of [ada, ben]) {
      await eventually(async () => {
        const text = await page.evaluate(() => document.querySelector('#history-list li')?.textContent ?? '');
        if (/Call/.test(text) && text.includes(ADA.name) && text.includes(BEN.name)) return text;
        await page.reload();
        await page.waitForFunction(() => document.body.dataset.people === 'ready', null, { timeout: 15_000 });
        return null;
      }, 15_000, 'the call in the history');
    }
  });

  await t.test('Ben declines: Ada is told "declined"', async () => {
    await buddyStatus(ada, BEN.name, 'available');
    await callFrom(ada, BEN.name);
    await eventually(() => ringing(ben), 10_000, "Ben's page to ring");
    await ben.click('#incoming-decline');
    await eventually(async () => /declined/.test(await ada.textContent('#call-notice') ?? ''), 10_000, 'Ada to be told');
    assert.equal(await ringing(ben), false);
  });

  await t.test('Ben on do-not-disturb: Ada is told, and Ben never rings', async () => {
    await ben.selectOption('#my-status', 'dnd');
    await buddyStatus(ada, BEN.name, 'dnd');
    await ben.evaluate(() => {
      /** @type {any} */ (window).__rang = false;
      document.getElementById('incoming-call')?.addEventListener('toggle', () => { /** @type {any} */ (window).__rang = true; });
    });
    await callFrom(ada, BEN.name);
    await eventually(async () => /not want to be disturbed/.test(await ada.textContent('#call-notice') ?? ''), 10_000, 'Ada to be told');
    await sleep(1_000);
    assert.equal(await ben.evaluate(() => /** @type {any} */ (window).__rang), false, "Ben's page rang");
    await ben.selectOption('#my-status', 'available');
    await buddyStatus(ada, BEN.name, 'available');
  });

  await t.test('Ben has two tabs: answering in one stops the other ringing', async () => {
    const ben2 = await home(benContext, server.url);
    await callFrom(ada, BEN.name);
    await eventually(async () => (await ringing(ben)) && (await ringing(ben2)), 10_000, 'both tabs to ring');
    await ben2.click('#incoming-answer');
    await eventually(async () => !(await ringing(ben)), 5_000, 'the other tab to stop ringing');
    assert.equal(await ben.evaluate(() => document.body.dataset.callEnded), 'answered_elsewhere');
    await ben2.waitForURL(/\/r\/call-/, { timeout: 10_000 });
    await ada.waitForURL(/\/r\/call-/, { timeout: 10_000 });
  });

  await t.test('Ada schedules a conference from the home page; Ben sees the invitation', async () => {
    await ada.goto(`${server.url}/`);
    await ada.waitForFunction(() => document.body.dataset.people === 'ready', null, { timeout: 15_000 });
    await ada.click('#schedule-summary');
    await ada.fill('#conf-title', 'Planning <b>2030</b>');
    await ada.fill('#conf-start', '2030-01-15T10:00');
    await ada.fill('#conf-tz', 'Europe/Lisbon');
    await ada.fill('#conf-invitees', 'ben@example.org, not-an-address');
    await ada.click('#schedule-submit');
    await eventually(async () => /not an e-mail address/.test(await ada.textContent('#schedule-error') ?? ''), 5_000,
      'the bad address to be named');
    await ada.fill('#conf-invitees', 'ben@example.org');
    await ada.click('#schedule-submit');
    await eventually(async () => (await ada.textContent('#conference-list') ?? '').includes('Planning <b>2030</b>'), 5_000,
      'the conference in Ada\'s list');
    await ben.goto(`${server.url}/`);
    await ben.waitForFunction(() => document.body.dataset.people === 'ready', null, { timeout: 15_000 });
    await eventually(async () => {
      const text = await ben.textContent('#conference-list') ?? '';
      return text.includes('Planning <b>2030</b>') && text.includes(`Invited by ${ADA.name}`);
    }, 10_000, 'the invitation on Ben\'s home page');
    assert.equal(await ben.evaluate(() => document.querySelector('#conference-list b')), null, 'the title is text');
  });
});
