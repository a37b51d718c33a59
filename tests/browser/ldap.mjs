// Browser test of the LDAP screen: Debian's Chromium driven by
// playwright-core against the roost launch.py started (ROOST_URL,
// ROOST_ADMIN, ROOST_PASSWORD) and, when slapd is installed, a real slapd
// of tests/integration/ldap_fixture.py (ROOST_LDAP_URL, ROOST_LDAP_BIND_DN,
// ROOST_LDAP_BIND_PW, ROOST_LDAP_BASE, ROOST_LDAP_DOMAIN, ROOST_LDAP_CA). Without it the
// test points at a closed port and expects the failure report.
// Prints "N passed, N failed" last.
import { browser } from './lib/harness.mjs';

const URL = process.env.ROOST_URL;
const LDAP = process.env.ROOST_LDAP_URL || '';
const CLOSED = process.env.ROOST_LDAP_CLOSED_URL || 'ldap://127.0.0.1:9';

const { page, test, expect, shot, pageErrors, finish } = await browser(20000);
const report = () => page.locator('#ldap-report');

await test('an administrator opens the LDAP screen from the menu', async () => {
  await page.goto(URL + '/');
  await page.getByLabel('Mail address').fill(process.env.ROOST_ADMIN);
  await page.getByLabel('Password').fill(process.env.ROOST_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Dashboard' }).waitFor();
  await page.click('nav a[href="#/ldap"]');
  await page.getByRole('heading', { level: 1, name: 'LDAP directory' }).waitFor();
  await page.getByText('LDAP is off').waitFor();
  expect(await page.getByLabel('Server URLs').inputValue() === '', 'no URL yet');
  await shot('ldap');
});

await test('a bad URL is refused beside its field', async () => {
  await page.getByLabel('Server URLs').fill('http://directory.example');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.locator('.field .error', { hasText: 'ldap:// or ldaps://' }).waitFor();
  expect(await page.getByLabel('Server URLs').getAttribute('aria-invalid') === 'true', 'field marked invalid');
});

await test('an unreachable server: Test connection shows the failure report', async () => {
  await page.getByLabel('Server URLs').fill(CLOSED);
  await page.getByLabel('Timeout (seconds)').fill('2');
  await page.getByRole('button', { name: 'Test connection' }).click();
  await report().getByText('Test failed').waitFor();
  await page.getByText('LDAP is on').waitFor();
  await shot('ldap-test-failed');
});

if (LDAP) {
  await test('a real directory: settings saved, password never shown, the user found', async () => {
    await page.getByLabel('Apply a preset').selectOption('openldap');
    await page.getByLabel('Server URLs').fill(LDAP);
    await page.getByLabel('CA certificate file').fill(process.env.ROOST_LDAP_CA);
    await page.getByLabel('Service account DN').fill(process.env.ROOST_LDAP_BIND_DN);
    await page.getByLabel('Service account password').fill(process.env.ROOST_LDAP_BIND_PW);
    await page.getByLabel('Base DN of users').fill(process.env.ROOST_LDAP_BASE);
    await page.getByLabel('Domains served from LDAP').fill(process.env.ROOST_LDAP_DOMAIN);
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('LDAP settings saved').waitFor();
    expect(await page.getByLabel('Service account password').inputValue() === '', 'password field emptied');
    await page.getByText('Stored: set.').waitFor();
    // Keyboard only: the login field, then Enter submits the test.
    await page.getByLabel('Login to look up (optional)').focus();
    await page.keyboard.type('alice');
    await page.keyboard.press('Enter');
    await report().getByText('Connection OK').waitFor();
    const text = await report().textContent();
    expect(text.includes('dn: uid=alice,'), 'the report names the user: ' + text);
    const body = await page.evaluate(async () => (await fetch('/api/v1/ldap')).text());
    expect(!body.includes(process.env.ROOST_LDAP_BIND_PW || 'x'.repeat(40)), 'password not in the API');
    expect(body.includes('"bind_password": "set"') || body.includes('"bind_password":"set"'), 'password shown as set');
    await shot('ldap-test-ok');
  });
}

await test('Sync now shows the result', async () => {
  await page.getByRole('button', { name: 'Sync now' }).click();
  await page.locator('#ldap-sync-result', { hasText: LDAP ? /Checked \d+ accounts/ : /Checked \d+ accounts|Sync failed/ }).waitFor();
});

await test('phone-sized LDAP screen', async () => {
  await page.setViewportSize({ width: 375, height: 740 });
  await page.reload();
  await page.getByRole('heading', { level: 1, name: 'LDAP directory' }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow <= 1, 'no sideways scrolling at phone width, overflow ' + overflow);
  await shot('ldap-phone');
  await page.setViewportSize({ width: 1280, height: 900 });
});

await test('turning LDAP off again', async () => {
  await page.getByLabel('Server URLs').fill('');
  await page.getByRole('button', { name: 'Save settings' }).click();
  await page.getByText('LDAP is off').waitFor();
});

await test('no errors in the LDAP page console', async () => {
  const real = pageErrors.filter((e) => !/server responded with a status of [45]\d\d/.test(e));
  expect(real.length === 0, real.join('\n'));
});

await finish();
