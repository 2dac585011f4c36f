// What the browser scripts share: settings from the harness, Chromium's launch, steps and checks,
// and the app's common gestures.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

/** Chromium's flags on these machines (docs/ARCHITECTURE.md): no sandbox as root, no network of its own. */
export const CHROMIUM_FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'];

/** A variable the harness sets. */
export function need(name) {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set`);
  }
  return v;
}

/** The screenshots' folder, made if missing. */
export function screenshots() {
  const dir = need('BANTER_SCREENSHOTS');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function launch() {
  return chromium.launch({ executablePath: need('BANTER_CHROMIUM'), args: CHROMIUM_FLAGS });
}

export function step(what) {
  console.log(`step: ${what}`);
}

export function check(cond, what) {
  if (!cond) {
    throw new Error(`check failed: ${what}`);
  }
}

/** Prints the page's errors (uncaught, and console errors) under `name`. */
export function watchErrors(name, page) {
  page.on('pageerror', (e) => console.log(`${name} pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`${name} console: ${m.text()}`));
}

/** Signs up on the node at `base` and lands on the room list. */
export async function register(page, base, username) {
  await page.goto(`${base}/register`);
  await page.fill('#username', username);
  await page.getByText('This username is free.').waitFor();
  await page.fill('#password', 'correct horse battery');
  await page.click('button[type=submit]');
  await page.waitForURL('**/rooms');
}

/** Sends a message from the open room's composer. */
export async function send(page, text) {
  await page.fill('#composer', text);
  await page.keyboard.press('Enter');
}

/** Texts of the messages on screen, in order. */
export function texts(page) {
  return page.locator('[role=log] li[data-seq] p.whitespace-pre-wrap').allInnerTexts();
}
