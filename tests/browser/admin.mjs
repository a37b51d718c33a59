// Browser test of the admin UI: Debian's Chromium driven by playwright-core
// against a roost started by launch.py (ROOST_URL, ROOST_ADMIN,
// ROOST_PASSWORD). Prints "N passed, N failed" last; writes the new
// account's credentials to ROOST_HANDOFF for launch.py's mail step.
import { writeFileSync } from 'node:fs';
import { browser } from './lib/harness.mjs';

const URL = process.env.ROOST_URL;
const ADMIN = process.env.ROOST_ADMIN;
const PASSWORD = process.env.ROOST_PASSWORD;
const suffix = Math.random().toString(36).slice(2, 8);
const DOMAIN = `web-${suffix}.example`;
const USER = `clerk@${DOMAIN}`;
const USER_PASSWORD = `pw-${suffix}-Secret`;

const { page, test, expect, shot, pageErrors, finish } = await browser(15000);
async function go(hash, heading) {
  await page.click(`nav a[href="${hash}"]`);
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

await test('sign-in page shows labelled fields and refuses a wrong password', async () => {
  await page.goto(URL + '/');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await shot('signin');
  await page.getByLabel('Mail address').fill(ADMIN);
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('wrong address or password').waitFor();
});

await test('an administrator signs in and sees the dashboard', async () => {
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  await page.locator('svg.chart').waitFor();
  expect(await page.locator('.figure').count() >= 6, 'status figures shown');
  await shot('dashboard');
});

await test('add a domain and see its DNS records', async () => {
  await go('#/domains', 'Domains');
  await page.getByRole('button', { name: 'Add domain' }).click();
  await page.locator('.field .error', { hasText: 'name is required' }).waitFor();
  await page.getByLabel('Domain name').fill(DOMAIN);
  await page.getByRole('button', { name: 'Add domain' }).click();
  await page.getByRole('heading', { name: `DNS records for ${DOMAIN}` }).waitFor();
  const zone = await page.locator('textarea.zone').inputValue();
  expect(zone.includes(`${DOMAIN}. IN MX 10 `), 'MX record in zone: ' + zone);
  expect(zone.includes('v=spf1'), 'SPF record');
  const dkim = zone.split('\n').find((l) => l.includes('._domainkey.'));
  const strings = (dkim || '').match(/"[^"]*"/g) || [];
  expect(strings.length >= 2 && strings.every((s) => s.length - 2 <= 255),
    'DKIM record in strings of at most 255 bytes: ' + dkim);
  expect(zone.includes(`_dmarc.${DOMAIN}. IN TXT "v=DMARC1; p=none;`), 'DMARC record');
  await shot('domains-dns');
  await page.getByRole('button', { name: 'Add domain' }).click(); // again: exists
  await page.getByLabel('Domain name').fill(DOMAIN);
  await page.getByRole('button', { name: 'Add domain' }).click();
  await page.locator('.field .error', { hasText: 'exists' }).waitFor();
});

await test('add an account, with errors beside the fields first', async () => {
  await go('#/accounts', 'Accounts');
  await page.getByLabel('Mail address').fill(`clerk@unknown-${suffix}.example`);
  await page.getByLabel('Password', { exact: true }).fill(USER_PASSWORD);
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.locator('.field .error', { hasText: 'domain' }).waitFor();
  await page.getByLabel('Mail address').fill(USER);
  await page.getByLabel('Full name').fill('Carla Clerk');
  await page.getByLabel('Quota').fill('bad');
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.locator('.field .error', { hasText: 'quota_bytes' }).waitFor();
  await page.getByLabel('Quota').fill('1G');
  await page.getByRole('button', { name: 'Add account' }).click();
  await page.getByText(`Account ${USER} added`).waitFor();
  await page.getByLabel('Search').fill('carla');
  await page.locator('#accounts-list td', { hasText: USER }).waitFor();
  await page.locator('#accounts-list .count', { hasText: '1–1 of 1' }).waitFor();
  await shot('accounts');
});

await test('edit an account in a dialog, keyboard only', async () => {
  await page.getByRole('button', { name: `Edit ${USER}` }).focus();
  await page.keyboard.press('Enter');
  await page.getByRole('dialog').waitFor();
  await page.getByRole('dialog').getByLabel('Full name').fill('Carla M. Clerk');
  await page.keyboard.press('Enter');
  await page.locator('#accounts-list td', { hasText: 'Carla M. Clerk' }).waitFor();
});

await test('aliases and lists: add, then the remove asks for confirmation', async () => {
  await go('#/aliases', 'Aliases & lists');
  await page.getByLabel('Address').fill(`team@${DOMAIN}`);
  await page.getByLabel('Delivers to').fill(`${USER}, someone@remote.example`);
  await page.getByRole('button', { name: 'Add', exact: true }).click();
  await page.locator('#aliases-list li', { hasText: 'someone@remote.example' }).waitFor();
  await shot('aliases');
  await page.getByRole('button', { name: `Remove team@${DOMAIN}` }).click();
  await page.getByRole('dialog').getByLabel('Name to confirm').fill('wrong');
  await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
  await page.getByRole('dialog').getByText(`type team@${DOMAIN} exactly`).waitFor();
  await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
  await page.locator('#aliases-list li', { hasText: 'someone@remote.example' }).waitFor();
});

await test('queue and my account screens', async () => {
  await go('#/queue', 'Queue');
  await shot('queue');
  await go('#/me', 'My account');
  await page.getByText(ADMIN, { exact: true }).first().waitFor();
  await shot('me');
});

await test('phone-sized screen', async () => {
  await page.setViewportSize({ width: 375, height: 740 });
  await go('#/accounts', 'Accounts');
  await page.locator('#accounts-list td', { hasText: USER }).first().waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, 'no sideways scrolling at phone width, overflow ' + overflow);
  await shot('accounts-phone');
  await go('#/dashboard', 'Dashboard');
  await shot('dashboard-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

await test('sign out, then the new account sees only its own page', async () => {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out.').waitFor();
  const r = await page.evaluate(async () => (await fetch('/api/v1/status')).status);
  expect(r === 401, 'status after sign-out answers 401, got ' + r);
  await page.getByLabel('Mail address').fill(USER);
  await page.getByLabel('Password').fill(USER_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'My account' }).waitFor();
  expect(await page.locator('nav a[href="#/accounts"]').isVisible() === false, 'no admin screens for a user');
  const s = await page.evaluate(async () => (await fetch('/api/v1/accounts')).status);
  expect(s === 403, 'accounts API refused to a user, got ' + s);
  await shot('me-user');
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.getByText('You are signed out.').waitFor();
});

await test('no errors in the page console', async () => {
  // Chromium logs the 4xx answers the test provoked on purpose as failed loads.
  const real = pageErrors.filter((e) => !/server responded with a status of 4\d\d/.test(e));
  expect(real.length === 0, real.join('\n'));
});

await finish(() => {
  if (process.env.ROOST_HANDOFF)
    writeFileSync(process.env.ROOST_HANDOFF, JSON.stringify({ user: USER, password: USER_PASSWORD, domain: DOMAIN }));
});
