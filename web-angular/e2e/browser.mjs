// The browser half of the end-to-end tests (tests/e2e/browser.rs runs it against real nodes):
// launches Debian's Chromium through playwright-core and drives the served app.
//
// Environment: BANTER_BASE_URL (the node), BANTER_CHROMIUM (the browser), BANTER_SCREENSHOTS (a folder
// outside the repo). The harness and this script talk over stdio: a line `@restart` asks the harness
// to kill -9 and restart the node (it answers `restarted` on stdin), `@feed` to start the replay
// feed server the node's source connects to (it answers `feed`).
import { createInterface } from 'node:readline';

import { png } from './png.mjs';
import { check, launch, need, register as signUp, screenshots, send, step, texts, watchErrors } from './support.mjs';

const base = need('BANTER_BASE_URL');
const shots = screenshots();
const stdinLines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();

/** Asks the harness for `what` (`restart`: kill -9 the node and start it again; `feed`: start the
 *  replay feed server); resolves once it answered. */
async function ask(what, answer) {
  console.log(`@${what}`);
  const { value, done } = await stdinLines.next();
  check(!done && value.trim() === answer, `the harness did @${what} (answered ${value})`);
}

async function shot(page, name) {
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
}

async function register(page, username) {
  await page.goto(`${base}/register`);
  await shot(page, `register-${page.viewportSize().width}`);
  await signUp(page, base, username);
}

const browser = await launch();
try {
  const suffix = Date.now().toString(36).slice(-6);
  const [aliceName, bobName] = [`alice_${suffix}`, `bob_${suffix}`];
  const alice = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const bob = await (await browser.newContext({ viewport: { width: 375, height: 812 }, isMobile: true, hasTouch: true })).newPage();
  watchErrors('alice', alice);
  watchErrors('bob', bob);

  step('the login page asks for a username and password, and refuses a wrong one next to the form');
  await alice.goto(`${base}/`);
  await alice.waitForURL('**/login?returnUrl=%2Frooms');
  await alice.fill('#username', 'nobody_here');
  await alice.fill('#password', 'wrong password');
  await alice.click('button[type=submit]');
  await alice.getByText('That username and password do not match.').waitFor();
  await shot(alice, 'login-1280');

  step('both register (bob with the keyboard only); the username check says a taken name is taken');
  await bob.goto(`${base}/register`);
  await shot(bob, 'register-375');
  await bob.locator('body').press('Tab'); // the skip link
  await bob.keyboard.press('Tab');
  await bob.locator('#username:focus').waitFor();
  await bob.keyboard.type(bobName);
  await bob.getByText('This username is free.').waitFor();
  await bob.keyboard.press('Tab');
  await bob.keyboard.press('Tab');
  await bob.locator('#password:focus').waitFor();
  await bob.keyboard.type('correct horse battery');
  await bob.keyboard.press('Enter');
  await bob.waitForURL('**/rooms');
  await alice.goto(`${base}/register`);
  await alice.fill('#username', bobName);
  await alice.locator('#username-error').waitFor();
  await register(alice, aliceName);

  step('alice finds bob and opens a DM; her message reaches bob live, unread in his list');
  await alice.fill('#people-search', bobName.slice(0, 6));
  await alice.getByRole('button', { name: new RegExp(bobName) }).click();
  await alice.waitForURL(/\/rooms\/\d+$/);
  const dmUrl = alice.url();
  // The room opens with the composer focused: the keyboard alone sends.
  await alice.locator('#composer:focus').waitFor();
  await alice.keyboard.type('hi bob');
  await alice.keyboard.press('Enter');
  await alice.locator('li[data-seq]', { hasText: 'hi bob' }).waitFor();
  const dmLink = bob.getByRole('link', { name: new RegExp(`${aliceName}, online, 1 unread`) });
  await dmLink.waitFor({ timeout: 15000 });
  await shot(bob, 'rooms-375');
  await dmLink.click();
  await bob.locator('li[data-seq]', { hasText: 'hi bob' }).waitFor();

  step('bob types: alice sees it; bob answers: alice sees it live, and that bob read hers');
  await bob.fill('#composer', 'hi al');
  await alice.getByText(`${bobName} is typing…`).waitFor();
  await send(bob, 'hi alice');
  await alice.locator('li[data-seq]', { hasText: 'hi alice' }).waitFor();
  await send(alice, 'how are you?');
  await alice.locator('li[data-seq]', { hasText: 'how are you?' }).getByText(`Seen by ${bobName}`).waitFor({ timeout: 15000 });
  await shot(alice, 'chat-1280');
  await shot(bob, 'chat-375');

  step('history: 70 more messages, then bob reloads and scrolls back to the first');
  for (let i = 1; i <= 70; i++) {
    await send(alice, `numbered ${i}`);
  }
  await alice.locator('li[data-seq]', { hasText: 'numbered 70' }).waitFor();
  await bob.goto(dmUrl);
  await bob.locator('li[data-seq]', { hasText: 'numbered 70' }).waitFor();
  check(!(await texts(bob)).includes('hi bob'), 'the first page holds only the newest messages');
  for (let i = 0; i < 20 && !(await bob.getByText('The beginning of the room.').isVisible()); i++) {
    await bob.locator('[aria-label=Messages]').evaluate((el) => el.scrollTo(0, 0));
    await bob.waitForTimeout(300);
  }
  const all = await texts(bob);
  check(all[0] === 'hi bob' && all.filter((t) => t === 'numbered 35').length === 1, `history scrolls back whole: ${all.slice(0, 3)}`);
  check(all.length === 73, `73 messages once each, got ${all.length}`);

  step('alice edits and deletes; bob sees both');
  const first = alice.locator('li[data-seq]', { hasText: 'how are you?' });
  await first.getByRole('button', { name: /Edit message/ }).click();
  await alice.locator('input[name=edit]').fill('how are you doing?');
  await alice.keyboard.press('Enter');
  await bob.locator('li[data-seq]', { hasText: 'how are you doing?' }).getByText('(edited)').waitFor();
  alice.once('dialog', (d) => d.accept());
  await alice.locator('li[data-seq]', { hasText: 'numbered 70' }).getByRole('button', { name: /Delete message/ }).click();
  await bob.getByText('This message was deleted.').waitFor();

  step('alice attaches an image: a progress bar, then bob sees it laid out at its size before it loads');
  await alice.goto(dmUrl);
  await alice.locator('#file-picker').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: png(640, 480) });
  await alice.getByRole('list', { name: 'Files for the next message' }).getByText('gradient.png').waitFor();
  await alice.getByRole('button', { name: 'Send', exact: true }).and(alice.locator(':enabled')).waitFor();
  await send(alice, 'a picture');
  const img = bob.locator('li[data-seq]', { hasText: 'a picture' }).getByRole('img', { name: 'gradient.png' });
  await img.waitFor({ timeout: 15000 });
  // 640 × 480 shown at most 320 px a side: its box is known from the frame, before the file loads.
  check((await img.getAttribute('width')) === '320' && (await img.getAttribute('height')) === '240', 'the image is laid out at 320 × 240');
  await bob.locator('img[data-loaded=true][alt="gradient.png"]').waitFor({ timeout: 15000 });
  await bob.waitForFunction(() => {
    const el = document.querySelector('img[data-loaded=true][alt="gradient.png"]');
    return el instanceof HTMLImageElement && el.complete && el.naturalWidth === 640;
  });
  // Bob was scrolled up in the history: the new message is offered, not forced into view.
  await bob.getByRole('button', { name: 'New messages ↓' }).click();
  const box = await img.boundingBox();
  check(box !== null && box.y >= 0 && box.y + box.height <= 812, `the image is in view after the jump: ${JSON.stringify(box)}`);
  await shot(bob, 'image-375');

  step('the earthquake feed: bob follows it; the map and the list show its events, and choosing one highlights both');
  await bob.goto(`${base}/rooms`);
  await bob.getByRole('button', { name: /Follow the .* feed/ }).click();
  await ask('feed', 'feed');
  await bob.waitForURL(/\/rooms\/\d+$/);
  const quakes = bob.getByRole('list', { name: 'Earthquakes, newest first' }).getByRole('button');
  await quakes.first().waitFor({ timeout: 30000 });
  const markers = bob.locator('bt-quake-map path.leaflet-interactive');
  await markers.first().waitFor({ timeout: 15000 });
  // Live: an event that arrives while the page is open joins the list and the map (the feed's
  // last new event comes ~20 s after it starts).
  const seen = await quakes.allInnerTexts();
  await bob.waitForFunction(
    (old) => [...document.querySelectorAll('[aria-label="Earthquakes, newest first"] button')].some((b) => !old.includes(b.innerText)),
    seen,
    { timeout: 40000 },
  );
  // One marker per listed event (read in one go: events keep arriving).
  await bob.waitForFunction(() => {
    const list = document.querySelectorAll('[aria-label="Earthquakes, newest first"] button').length;
    return list > 0 && document.querySelectorAll('bt-quake-map path.leaflet-interactive').length === list;
  });
  // Choose one by its text (the list reorders as events arrive): it is pressed, its marker drawn chosen.
  const label = (await quakes.last().innerText()).trim();
  await bob.getByRole('button', { name: label }).click();
  await bob.getByRole('button', { name: label, pressed: true }).waitFor();
  await bob.locator('bt-quake-map path.leaflet-interactive[stroke="#1e3a8a"]').waitFor();
  await shot(bob, 'feed-375');
  await bob.setViewportSize({ width: 1280, height: 800 });
  await markers.last().click({ force: true });
  await bob.locator('[aria-pressed=true]').waitFor();
  await shot(bob, 'feed-1280');
  await bob.setViewportSize({ width: 375, height: 812 });
  await bob.goto(dmUrl);

  step('the node is killed and restarted: both reconnect, and what was sent meanwhile arrives once');
  await ask('restart', 'restarted');
  await send(alice, 'sent across the restart');
  await bob.locator('li[data-seq]', { hasText: 'sent across the restart' }).waitFor({ timeout: 30000 });
  await send(bob, 'and back');
  await alice.locator('li[data-seq]', { hasText: 'and back' }).waitFor({ timeout: 30000 });
  const after = await texts(bob);
  check(after.filter((t) => t === 'sent across the restart').length === 1, 'no duplicate after the restart');
  check(!(await alice.getByText('Connection lost').isVisible()), 'the banner is gone once reconnected');
  await alice.getByRole('link', { name: new RegExp(`${bobName}, online`) }).waitFor({ timeout: 15000 });
  await shot(alice, 'after-restart-1280');

  step('profile: alice changes her display name and her picture');
  await alice.goto(`${base}/profile`);
  await alice.fill('#display-name', 'Alice A.');
  await alice.getByRole('button', { name: 'Save' }).click();
  await alice.getByRole('link', { name: 'Your profile' }).filter({ hasText: 'Alice A.' }).waitFor();
  await alice.locator('#avatar-picker').setInputFiles({ name: 'me.png', mimeType: 'image/png', buffer: png(96, 96) });
  await alice.getByRole('button', { name: 'Remove' }).waitFor({ timeout: 15000 });
  await alice.waitForFunction(() => {
    const img = document.querySelector('a[aria-label="Your profile"] img');
    return img instanceof HTMLImageElement && img.complete && img.naturalWidth === 96;
  });
  await shot(alice, 'profile-1280');
  console.log('ok');
} catch (e) {
  for (const [i, ctx] of browser.contexts().entries()) {
    for (const [j, page] of ctx.pages().entries()) {
      await page.screenshot({ path: `${shots}/failure-${i}-${j}.png` }).catch(() => {});
    }
  }
  throw e;
} finally {
  await browser.close();
  process.stdin.destroy();
}
