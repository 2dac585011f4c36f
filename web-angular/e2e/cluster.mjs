// The web app on two nodes of a cluster (tests/e2e/cluster/browser.rs): alice's browser on the
// first node (BANTER_BASE_URL), bob's on the second (BANTER_BASE_URL_2).
import { check, launch, need, register, screenshots, send, step, texts, watchErrors } from './support.mjs';

const [baseA, baseB] = [need('BANTER_BASE_URL'), need('BANTER_BASE_URL_2')];
const shots = screenshots();

const browser = await launch();
try {
  const suffix = Date.now().toString(36).slice(-6);
  const [aliceName, bobName] = [`alice_${suffix}`, `bob_${suffix}`];
  const alice = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const bob = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  watchErrors('alice', alice);
  watchErrors('bob', bob);

  step('alice registers on the first node, bob on the second');
  await register(alice, baseA, aliceName);
  await register(bob, baseB, bobName);

  step('alice opens a DM with bob; they chat both ways live across the nodes');
  await alice.fill('#people-search', bobName);
  await alice.getByRole('button', { name: new RegExp(bobName) }).click();
  await alice.waitForURL(/\/rooms\/\d+$/);
  const room = new URL(alice.url()).pathname;
  await send(alice, 'hello from node one');
  await bob.getByRole('link', { name: new RegExp(`${aliceName}.*1 unread`) }).click({ timeout: 20000 });
  await bob.locator('li[data-seq]', { hasText: 'hello from node one' }).waitFor();
  await send(bob, 'hello from node two');
  await alice.locator('li[data-seq]', { hasText: 'hello from node two' }).waitFor({ timeout: 20000 });
  for (let i = 1; i <= 5; i++) {
    await send(i % 2 ? alice : bob, `turn ${i}`);
  }
  await alice.locator('li[data-seq]', { hasText: 'turn 5' }).waitFor({ timeout: 20000 });
  await bob.locator('li[data-seq]', { hasText: 'turn 5' }).waitFor({ timeout: 20000 });

  step('both see one conversation in one order; bob reloads and it is whole');
  const want = ['hello from node one', 'hello from node two', 'turn 1', 'turn 2', 'turn 3', 'turn 4', 'turn 5'];
  for (const page of [alice, bob]) {
    await page.waitForFunction((n) => document.querySelectorAll('[role=log] li[data-seq]').length === n, want.length);
  }
  // Sends from two nodes at once may interleave either way; the room gives one order to both.
  const seenA = await texts(alice);
  check(JSON.stringify([...seenA].sort()) === JSON.stringify([...want].sort()), `alice has each message once: ${seenA}`);
  check(JSON.stringify(await texts(bob)) === JSON.stringify(seenA), `bob's order is alice's: ${await texts(bob)}`);
  await bob.goto(`${baseB}${room}`);
  await bob.locator('li[data-seq]', { hasText: 'turn 5' }).waitFor();
  await bob.waitForFunction((n) => document.querySelectorAll('[role=log] li[data-seq]').length === n, want.length);
  check(JSON.stringify(await texts(bob)) === JSON.stringify(seenA), `bob's history after a reload: ${await texts(bob)}`);

  step('alice edits on the first node; bob sees it on the second');
  await alice.locator('li[data-seq]', { hasText: 'hello from node one' }).getByRole('button', { name: /Edit message/ }).click();
  await alice.locator('input[name=edit]').fill('hello again from node one');
  await alice.keyboard.press('Enter');
  await bob.locator('li[data-seq]', { hasText: 'hello again from node one' }).getByText('(edited)').waitFor({ timeout: 20000 });
  await alice.screenshot({ path: `${shots}/cluster-alice-1280.png` });
  await bob.screenshot({ path: `${shots}/cluster-bob-1280.png` });
  console.log('ok');
} finally {
  await browser.close();
}
