// What the browser tests share: Debian's Chromium driven by playwright-core
// (a fresh profile per run), a tiny test runner that screenshots failures,
// and the "N passed, N failed" line launch.py reads. Not a test itself
// (launch.py runs only tests/browser/*.mjs).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SHOTS = process.env.SCREENSHOT_DIR || 'test-output/screenshots';

// Opens the browser; returns { page, test, expect, shot, pageErrors, finish }.
export async function browser(defaultTimeout) {
  mkdirSync(SHOTS, { recursive: true });
  const profile = mkdtempSync(join(tmpdir(), 'roost-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    ignoreHTTPSErrors: true, // the test server's certificate is self-signed
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  const pageErrors = [];
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on('pageerror', (e) => pageErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(m.text()); });
  page.setDefaultTimeout(defaultTimeout);

  let passed = 0, failed = 0;
  async function test(name, fn) {
    try {
      await fn();
      passed++;
      console.log(`ok - ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL - ${name}: ${e && e.stack ? e.stack : e}`);
      await page.screenshot({ path: join(SHOTS, `fail-${name.replace(/\W+/g, '-')}.png`), fullPage: true }).catch(() => {});
    }
  }
  function expect(cond, msg) { if (!cond) throw new Error(msg); }
  async function shot(name) {
    await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
  }
  // Closes the browser, prints the summary and exits; before() runs first.
  async function finish(before) {
    await ctx.close();
    rmSync(profile, { recursive: true, force: true });
    if (before) before();
    console.log(`${passed} passed, ${failed} failed`);
    process.exit(failed ? 1 : 0);
  }
  return { page, test, expect, shot, pageErrors, finish };
}
