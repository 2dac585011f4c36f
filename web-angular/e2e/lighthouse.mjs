// Lighthouse (issue #22's budgets) on the served app, in Debian's Chromium: the login page and the
// chat view of a signed-in user (tests/e2e/browser.rs runs it against a real node). Prints each
// page's scores, writes them to $BANTER_REPORTS/lighthouse.json, and fails below the targets:
// accessibility ≥ 95, best practices ≥ 95, performance ≥ 90 (Lighthouse's default mobile profile:
// a mid-range phone on a throttled network, simulated).
import lighthouse from 'lighthouse';
import { chromium } from 'playwright-core';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM_FLAGS, need } from './support.mjs';

const TARGETS = { performance: 90, accessibility: 95, 'best-practices': 95 };
const base = need('BANTER_BASE_URL');
const reports = need('BANTER_REPORTS');
mkdirSync(reports, { recursive: true });

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

const port = await freePort();
// A persistent context is the browser's default one, which the tabs Lighthouse opens share: the
// session stored in it signs them in.
const profile = mkdtempSync(join(tmpdir(), 'banter-lighthouse-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: need('BANTER_CHROMIUM'),
  headless: true,
  args: [...CHROMIUM_FLAGS, `--remote-debugging-port=${port}`],
});
const results = {};
let failed = false;
try {
  // A signed-in user with a room of a few messages.
  const page = await context.newPage();
  const user = `lh_${Date.now().toString(36).slice(-8)}`;
  await page.goto(`${base}/register`);
  await page.fill('#username', user);
  await page.fill('#password', 'correct horse battery');
  await page.click('button[type=submit]');
  await page.waitForURL('**/rooms');
  await page.fill('#new-room', 'Lighthouse');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.waitForURL(/\/rooms\/\d+$/);
  const chatUrl = page.url();
  for (const text of ['Good morning!', 'The budgets are in the angular.json.', 'And the scores are printed.']) {
    await page.fill('#composer', text);
    await page.keyboard.press('Enter');
    await page.locator('li[data-seq]', { hasText: text }).waitFor();
  }
  const session = await page.evaluate(() => localStorage.getItem('banter.session'));
  // Signed out for the login page (its storage is reset by Lighthouse anyway)...
  await page.evaluate(() => localStorage.removeItem('banter.session'));

  const pages = [
    ['login', `${base}/login`, null],
    ['chat', chatUrl, session],
  ];
  for (const [name, url, session] of pages) {
    if (session) {
      // ...and signed in for the chat view: Lighthouse keeps the origin's storage with
      // disableStorageReset (its cache is cleared all the same).
      await page.evaluate((s) => localStorage.setItem('banter.session', s), session);
    }
    const run = await lighthouse(url, {
      port,
      output: 'json',
      logLevel: 'error',
      onlyCategories: Object.keys(TARGETS),
      disableStorageReset: session !== null,
    });
    const lhr = run?.lhr;
    if (!lhr) {
      throw new Error(`lighthouse gave no result for ${name}`);
    }
    if (lhr.runtimeError) {
      throw new Error(`lighthouse on ${name}: ${lhr.runtimeError.code} ${lhr.runtimeError.message}`);
    }
    if (lhr.finalDisplayedUrl !== url) {
      throw new Error(`lighthouse on ${name} measured ${lhr.finalDisplayedUrl}, not ${url}`);
    }
    const scores = Object.fromEntries(Object.keys(TARGETS).map((c) => [c, Math.round((lhr.categories[c]?.score ?? 0) * 100)]));
    results[name] = { url: lhr.finalDisplayedUrl, scores };
    console.log(`lighthouse ${name}: ${Object.entries(scores).map(([c, s]) => `${c} ${s}`).join(', ')}`);
    for (const [c, min] of Object.entries(TARGETS)) {
      if (scores[c] < min) {
        failed = true;
        const audits = Object.values(lhr.audits)
          .filter((a) => a.score !== null && a.score < 0.9 && lhr.categories[c]?.auditRefs.some((r) => r.id === a.id && r.weight > 0))
          .map((a) => {
            const nodes = (a.details?.items ?? []).slice(0, 3).map((i) => i.node?.snippet).filter(Boolean);
            return `  ${a.id}: ${a.score} ${a.displayValue ?? ''}${nodes.map((n) => `\n    ${n}`).join('')}`;
          });
        console.log(`${name}: ${c} ${scores[c]} is below ${min}:\n${audits.join('\n')}`);
      }
    }
  }
  writeFileSync(`${reports}/lighthouse.json`, JSON.stringify(results, null, 2));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(failed ? 'below target' : 'ok');
process.exit(failed ? 1 : 0);
