// Browser end-to-end test of the Switchboard web app in headless Chromium.
//
//   node e2e/app.e2e.mjs [path/to/switchboard]
//
// The binary is argument 1, else $SWITCHBOARD_BIN, else target/release/switchboard. It is
// copied to a temporary directory first (a rebuild during the run does not disturb it).
// The app is the one embedded in the binary, unless SWITCHBOARD_E2E_WEB_DIR names a web/
// directory to serve from disk (for developing the app without rebuilding).
//
// Scenario 1: one dev-mode gateway (in-memory backend). Scenario 2: two replicas sharing a
// private redis-server, each browser on a different replica, with a drain and restart of
// one replica in the middle of a game, and Redis restarted empty (stream epochs). Scenario 3: a gateway without dev mode (paste a
// token). Every wait is bounded; every process started here is killed at the end.
// Screenshots go to e2e/artifacts/; with SWITCHBOARD_E2E_SCREENSHOT=1 the mid-game one is
// also copied to docs/screenshot.png (the README's).
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, chmodSync, existsSync, mkdirSync, statSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..');
const ARTIFACTS = path.join(here, 'artifacts');
const SCREENSHOT = path.join(repo, 'docs', 'screenshot.png');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const WEB_DIR = process.env.SWITCHBOARD_E2E_WEB_DIR ? path.resolve(process.env.SWITCHBOARD_E2E_WEB_DIR) : null;
const BIN_SOURCE = path.resolve(process.argv[2] ?? process.env.SWITCHBOARD_BIN ?? path.join(repo, 'target/release/switchboard'));
// docs/screenshot.png (committed) is rewritten only when asked, so runs leave the tree clean.
const UPDATE_SCREENSHOT = process.env.SWITCHBOARD_E2E_SCREENSHOT === '1';
const STEP_TIMEOUT_MS = 30_000;
const RUN_TIMEOUT_MS = 240_000;
const WAIT_MS = 10_000; // default bound of every browser wait
const VIEWPORT = { width: 1280, height: 800 };

// ------------------------------------------------------------------ processes

/** @type {Set<import('node:child_process').ChildProcess>} */
const live = new Set();
let tmpDir = '';
/** @type {import('playwright-core').Browser | null} */
let browser = null;

function killAll() {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  live.clear();
}
process.on('exit', () => {
  killAll();
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.once(sig, () => process.exit(130));

function bin() {
  if (!existsSync(BIN_SOURCE)) throw new Error(`gateway binary not found: ${BIN_SOURCE}`);
  if (!tmpDir) tmpDir = mkdtempSync(path.join(os.tmpdir(), 'sb-e2e-'));
  const copy = path.join(tmpDir, 'switchboard');
  if (!existsSync(copy)) {
    copyFileSync(BIN_SOURCE, copy);
    chmodSync(copy, 0o755);
  }
  return copy;
}

/** A free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Poll until `fn` returns truthy; throws after `timeoutMs`.
 * @template T
 * @param {() => Promise<T> | T} fn
 * @param {{timeoutMs?: number, what?: string}} [opts]
 */
async function until(fn, { timeoutMs = WAIT_MS, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (let delay = 20; ; delay = Math.min(delay * 2, 250)) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${last})`);
    await sleep(delay);
  }
}

/**
 * @param {string} name
 * @param {string} file
 * @param {string[]} args
 * @param {Record<string, string>} [env]
 */
function startProcess(name, file, args, env = {}) {
  const clean = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...env };
  for (const k of Object.keys(clean)) if (k.startsWith('SWITCHBOARD_') && !(k in env)) delete clean[k];
  const child = spawn(file, args, { env: clean, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let log = '';
  const keep = (/** @type {Buffer} */ b) => {
    log += b.toString();
    if (log.length > 100_000) log = log.slice(-50_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return { child, name, exited, log: () => log };
}

/**
 * A gateway on 127.0.0.1:port (dev mode unless `dev: false`); resolves once /healthz answers.
 * @param {{port?: number, args?: string[], dev?: boolean}} [opts]
 */
async function startGateway(opts = {}) {
  const port = opts.port ?? (await freePort());
  const args = [...(opts.dev === false ? [] : ['--dev']), '--listen', `127.0.0.1:${port}`, '--drain-timeout', '1s', ...(opts.args ?? [])];
  if (WEB_DIR) args.push('--web-dir', WEB_DIR);
  const p = startProcess(`gateway:${port}`, bin(), args);
  let exited = null;
  p.exited.then((r) => (exited = r));
  const base = `http://127.0.0.1:${port}`;
  await until(
    async () => {
      if (exited) throw new Error(`gateway exited ${JSON.stringify(exited)}: ${p.log()}`);
      const res = await fetch(`${base}/healthz`).catch(() => null);
      return res?.ok;
    },
    { what: `gateway on ${port}` },
  ).catch((e) => {
    throw exited ? new Error(`gateway exited early ${JSON.stringify(exited)}: ${p.log()}`) : e;
  });
  return {
    port,
    base,
    log: p.log,
    /** Stop with a signal and wait for the exit (SIGKILL after 10 s). */
    async stop(signal = 'SIGTERM') {
      if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
      p.child.kill(signal);
      const t = setTimeout(() => p.child.kill('SIGKILL'), 10_000);
      const r = await p.exited;
      clearTimeout(t);
      return r;
    },
  };
}

/** A private redis-server (no persistence) on a free port; `restart()` brings it back empty. */
async function startRedis() {
  const port = await freePort();
  const launch = () => startProcess(`redis:${port}`, 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']);
  let p = launch();
  const up = () => until(
    () =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => resolve(false));
        s.on('connect', () => s.write('PING\r\n'));
        s.on('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
      }),
    { what: `redis on ${port}` },
  );
  await up();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      p.child.kill('SIGKILL');
      await p.exited;
    },
    /** Kill it and start an empty one on the same port (a restart without persistence). */
    async restart() {
      p.child.kill('SIGKILL');
      await p.exited;
      p = launch();
      await up();
    },
  };
}

/**
 * Say so when the app the binary serves is not the one in web/ (a binary built before
 * the last change to web/): the failures that follow are then about the old app.
 * @param {string} base
 */
async function warnIfStale(base) {
  if (WEB_DIR) return;
  for (const file of ['index.html', 'app.js', 'app.css', 'tictactoe.js']) {
    const served = await fetch(`${base}/app/${file}`).then((r) => r.text()).catch(() => '');
    const onDisk = readFileSync(path.join(repo, 'web', file), 'utf8');
    if (served !== onDisk) {
      console.log(`# WARNING: the binary serves a different web/${file} than the one on disk: rebuild it, or set SWITCHBOARD_E2E_WEB_DIR=web to test web/ as it is`);
      return;
    }
  }
}

// ------------------------------------------------------------------ browser helpers

/** Uncaught page errors, per scenario; any of them fails the scenario's last step. */
/** @type {string[]} */
let pageErrors = [];

/**
 * A fresh browser context signed in as `name` at `base`.
 * @param {string} base
 * @param {string} name
 */
async function signIn(base, name) {
  if (!browser) throw new Error('no browser');
  const context = await browser.newContext({ viewport: VIEWPORT, colorScheme: 'light' });
  context.setDefaultTimeout(WAIT_MS);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base }).catch(() => {});
  const page = await context.newPage();
  openPages.add({ name, page });
  page.on('pageerror', (e) => pageErrors.push(`[${name}] ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource|net::/.test(m.text())) {
      pageErrors.push(`[${name}] console: ${m.text()}`);
    }
  });
  await page.goto(`${base}/`);
  await page.getByTestId('signin-name').fill(name);
  await page.getByTestId('signin-submit').click();
  await page.locator('[data-testid=conn-state][data-state=open]').waitFor();
  await page.locator('[data-testid=me-name]', { hasText: name }).waitFor();
  return { page, context, name, user: name.toLowerCase() };
}

/** @typedef {Awaited<ReturnType<typeof signIn>>} User */

/**
 * Wait until a message with `text` shows in the open conversation.
 * @param {User} u
 * @param {string} text
 */
async function seeMessage(u, text) {
  await u.page.locator('[data-testid=messages] [data-testid=message]', { hasText: text }).first().waitFor();
}

/**
 * @param {User} u
 * @param {string} text
 */
async function say(u, text) {
  await u.page.getByTestId('composer-input').fill(text);
  await u.page.getByTestId('composer-input').press('Enter');
}

/**
 * @param {User} u
 * @param {string} room
 */
async function openRoom(u, room) {
  await u.page.getByTestId('tab-chat').click();
  await u.page.locator(`[data-testid=room-item][data-room="${room}"] .nav-link`).click();
  await u.page.locator('[data-testid=convo-title]', { hasText: room }).waitFor();
}

/**
 * @param {User} u
 * @param {string} text
 */
async function seeFeed(u, text) {
  await u.page.locator('[data-testid=feed] [data-testid=feed-line]', { hasText: text }).first().waitFor();
}

/**
 * The text of the game status line once its `data-state` is `state`.
 * @param {User} u
 * @param {string} state
 */
async function gameState(u, state) {
  const el = u.page.locator(`[data-testid=game-status][data-state="${state}"]`);
  await el.waitFor();
  return (await el.textContent()) ?? '';
}

/**
 * Play `cell` as `mover` (it must be their turn) and wait until every page shows it.
 * @param {User} mover
 * @param {number} cell
 * @param {'X'|'O'} mark
 * @param {User[]} everyone
 */
async function move(mover, cell, mark, everyone) {
  await mover.page.locator('[data-testid=game-status][data-state="your-turn"]').waitFor();
  await mover.page.locator(`[data-testid=cell-${cell}]:not([disabled])`).click();
  for (const u of everyone) await u.page.locator(`[data-testid=cell-${cell}][data-mark="${mark}"]`).waitFor();
}

/**
 * @param {User} u
 * @param {string} file
 */
async function shot(u, file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const p = path.join(ARTIFACTS, file);
  await u.page.screenshot({ path: p });
  return p;
}

/**
 * Create a game as `owner` and return its id.
 * @param {User} owner
 */
async function createGame(owner) {
  await owner.page.getByTestId('tab-games').click();
  await owner.page.getByTestId('game-create').click();
  const id = await until(async () => {
    const t = ((await owner.page.getByTestId('game-id').textContent()) ?? '').trim();
    return /^g-[0-9a-f]{32}$/.test(t) ? t : '';
  }, { what: 'the new game id' });
  await gameState(owner, 'waiting');
  return id;
}

/**
 * Join (`player`) or watch (`watcher`) a game by id through the form.
 * @param {User} u
 * @param {string} id
 * @param {'player'|'watcher'} role
 */
async function enterGame(u, id, role) {
  await u.page.getByTestId('tab-games').click();
  await u.page.getByTestId('game-id-input').fill(id);
  await u.page.getByTestId(role === 'player' ? 'game-join' : 'game-watch').click();
  await u.page.locator('[data-testid=game-id]', { hasText: id }).waitFor();
  await u.page.locator('[data-testid=game-role]', { hasText: role === 'player' ? 'Playing' : 'Watching' }).waitFor();
}

/** @param {User} u */
async function replicaOf(u) {
  return u.page.getByTestId('replica').getAttribute('data-replica');
}

// ------------------------------------------------------------------ a tiny runner

/** @type {{name: string, status: 'pass'|'fail'|'skip', ms: number, error?: string}[]} */
const results = [];

/**
 * Run the steps of a scenario in order. After a failure the rest are skipped (they
 * depend on the earlier ones). The cleanup always runs.
 * @param {string} title
 * @param {(step: (name: string, fn: () => Promise<void>) => void) => Promise<() => Promise<void>>} setup
 *   registers steps, returns a cleanup
 */
async function scenario(title, setup) {
  /** @type {{name: string, fn: () => Promise<void>}[]} */
  const steps = [];
  pageErrors = [];
  console.log(`# ${title}`);
  let cleanup = async () => {};
  let failed = false;
  try {
    cleanup = await setup((name, fn) => steps.push({ name, fn }));
  } catch (e) {
    failed = true;
    results.push({ name: `${title}: setup`, status: 'fail', ms: 0, error: String(e?.stack ?? e) });
    console.log(`not ok - ${title}: setup\n${indent(String(e?.stack ?? e))}`);
  }
  steps.push({
    name: 'no uncaught errors in the pages',
    fn: async () => {
      if (pageErrors.length) throw new Error(pageErrors.join('\n'));
    },
  });
  for (const s of steps) {
    const name = `${title}: ${s.name}`;
    if (failed) {
      results.push({ name, status: 'skip', ms: 0 });
      console.log(`ok - ${name} # SKIP after an earlier failure`);
      continue;
    }
    const t0 = Date.now();
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    try {
      await Promise.race([
        s.fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`step timed out after ${STEP_TIMEOUT_MS} ms`)), STEP_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      const ms = Date.now() - t0;
      results.push({ name, status: 'pass', ms });
      console.log(`ok - ${name} (${ms} ms)`);
    } catch (e) {
      clearTimeout(timer);
      failed = true;
      const ms = Date.now() - t0;
      await failureShots(`${title}-${s.name}`);
      results.push({ name, status: 'fail', ms, error: String(e?.stack ?? e) });
      console.log(`not ok - ${name} (${ms} ms)\n${indent(String(e?.stack ?? e))}`);
    }
  }
  try {
    await cleanup();
  } catch (e) {
    console.log(`# cleanup of ${title} failed: ${e}`);
  }
}

/** Every open page, for screenshots when a step fails. @type {Set<{name: string, page: import('playwright-core').Page}>} */
const openPages = new Set();

/** @param {string} label */
async function failureShots(label) {
  const slug = label.toLowerCase().replace(/[^a-z0-9]+/g, '-').slice(0, 60);
  mkdirSync(ARTIFACTS, { recursive: true });
  for (const { name, page } of openPages) {
    if (page.isClosed()) continue;
    await page.screenshot({ path: path.join(ARTIFACTS, `FAILED-${slug}-${name.toLowerCase()}.png`), timeout: 5000 }).catch(() => {});
  }
}

/** @param {string} s */
const indent = (s) =>
  s
    .split('\n')
    .slice(0, 25)
    .map((l) => `    ${l}`)
    .join('\n');

// ------------------------------------------------------------------ scenario 1: one gateway

async function singleGateway() {
  await scenario('one gateway', async (step) => {
    const gw = await startGateway();
    await warnIfStale(gw.base);
    /** @type {User[]} */
    const users = [];
    /** @type {Record<string, User>} */
    const u = {};

    step('sign in as Alice and Bob; the online feed shows Bob coming online', async () => {
      u.alice = await signIn(gw.base, 'Alice');
      users.push(u.alice);
      await u.alice.page.getByTestId('feed-toggle').click();
      await u.alice.page.locator('[data-testid=feed-toggle][aria-checked=true]').waitFor();
      await sleep(300); // the watch is registered before Bob arrives
      u.bob = await signIn(gw.base, 'Bob');
      users.push(u.bob);
      await seeFeed(u.alice, 'Bob is online');
      await u.alice.page.locator('[data-testid=toast]', { hasText: 'Bob is online' }).first().waitFor();
      await u.alice.page.locator('[data-testid=online-list] [data-testid=online-user][data-user=bob]').waitFor();
    });

    step('chat in the lobby: each sees the other, presence lists both', async () => {
      await u.alice.page.locator('[data-testid=convo-title]', { hasText: 'lobby' }).waitFor();
      await say(u.alice, 'Hi Bob, welcome to Switchboard!');
      await seeMessage(u.bob, 'Hi Bob, welcome to Switchboard!');
      await say(u.bob, 'Thanks Alice! Up for tic-tac-toe?');
      await seeMessage(u.alice, 'Thanks Alice! Up for tic-tac-toe?');
      await u.alice.page.locator('[data-testid=member-list] [data-testid=member][data-user=bob]').waitFor();
      await u.bob.page.locator('[data-testid=member-list] [data-testid=member][data-user=alice]').waitFor();
      // Names and times are shown.
      const meta = await u.bob.page.locator('[data-testid=message][data-from=alice] .meta').first().textContent();
      if (!/Alice/.test(meta ?? '') || !/\d{1,2}:\d{2}/.test(meta ?? '')) throw new Error(`message meta without name/time: ${meta}`);
    });

    step('history on join: a later member sees what was said before', async () => {
      await u.alice.page.getByTestId('join-input').fill('book-club');
      await u.alice.page.getByTestId('join-submit').click();
      await u.alice.page.locator('[data-testid=convo-title]', { hasText: 'book-club' }).waitFor();
      await say(u.alice, 'First! Chapter 3 tonight.');
      await seeMessage(u.alice, 'First! Chapter 3 tonight.');
      await u.bob.page.getByTestId('join-input').fill('#book-club');
      await u.bob.page.getByTestId('join-input').press('Enter');
      await u.bob.page.locator('[data-testid=convo-title]', { hasText: 'book-club' }).waitFor();
      await seeMessage(u.bob, 'First! Chapter 3 tonight.');
      await u.alice.page.locator('[data-testid=messages] [data-testid=sys]', { hasText: 'Bob joined' }).waitFor();
      await u.alice.page.locator('[data-testid=member-list] [data-testid=member][data-user=bob]').waitFor();
    });

    step('direct messages both ways', async () => {
      await u.alice.page.locator('[data-testid=online-list] [data-testid=online-user][data-user=bob] .nav-link').click();
      await u.alice.page.locator('[data-testid=convo-title]', { hasText: 'Bob' }).waitFor();
      await say(u.alice, 'psst, Bob: DM test');
      await seeMessage(u.alice, 'psst, Bob: DM test');
      const dm = u.bob.page.locator('[data-testid=dm-list] [data-testid=dm-item][data-user=alice]');
      await dm.locator('.unread-badge').waitFor();
      await dm.locator('.nav-link').click();
      await seeMessage(u.bob, 'psst, Bob: DM test');
      await say(u.bob, 'got it, Alice');
      await seeMessage(u.alice, 'got it, Alice');
    });

    step('rename: the room sees the new name', async () => {
      await openRoom(u.alice, 'book-club');
      await u.bob.page.getByTestId('me').click();
      await u.bob.page.getByTestId('rename-input').fill('Bobby');
      await u.bob.page.getByTestId('rename-save').click();
      await u.bob.page.locator('[data-testid=me-name]', { hasText: 'Bobby' }).waitFor();
      await u.alice.page.locator('[data-testid=member-list] [data-testid=member][data-user=bob]', { hasText: 'Bobby' }).waitFor();
      await u.alice.page.locator('[data-testid=messages] [data-testid=sys]', { hasText: 'Bob is now Bobby' }).waitFor();
    });

    step('a game: create, share the id, join by id, a watcher, play to a win', async () => {
      const id = await createGame(u.alice);
      await u.alice.page.getByTestId('copy-game-id').click();
      await u.alice.page.locator('[data-testid=copy-game-id]', { hasText: /Copied|Ctrl\+C/ }).waitFor();
      const copied = await u.alice.page.evaluate(() => navigator.clipboard.readText()).catch(() => null);
      if (copied !== null && copied !== id) throw new Error(`clipboard has ${copied}, expected ${id}`);

      await enterGame(u.bob, id, 'player');
      await gameState(u.alice, 'your-turn');
      await gameState(u.bob, 'their-turn');

      u.wendy = await signIn(gw.base, 'Wendy');
      users.push(u.wendy);
      await seeFeed(u.alice, 'Wendy is online');
      await enterGame(u.wendy, id, 'watcher');

      const all = [u.alice, u.bob, u.wendy];
      // Round 1 (Alice is X and starts): a draw.
      await move(u.alice, 4, 'X', all);
      await move(u.bob, 0, 'O', all);
      await move(u.alice, 2, 'X', all);
      await move(u.bob, 6, 'O', all);
      // Mid-game screenshot for the README: Alice to move, O threatening the left column.
      await gameState(u.alice, 'your-turn');
      await u.alice.page.getByTestId('game-say-input').fill('nice try ;)');
      await u.alice.page.getByTestId('game-say-input').press('Enter');
      await u.wendy.page.locator('[data-testid=game-log] li', { hasText: 'nice try' }).waitFor();
      await u.alice.page.mouse.move(0, 0);
      const mid = await shot(u.alice, 'one-gateway-mid-game.png');
      if (UPDATE_SCREENSHOT) copyFileSync(mid, SCREENSHOT);
      await shot(u.wendy, 'one-gateway-watcher-mid-game.png');
      // Bob's board is locked on Alice's turn.
      if (!(await u.bob.page.getByTestId('cell-8').isDisabled())) throw new Error("Bob's board is playable on Alice's turn");
      await move(u.alice, 3, 'X', all);
      await move(u.bob, 5, 'O', all);
      await move(u.alice, 8, 'X', all);
      await move(u.bob, 1, 'O', all);
      await move(u.alice, 7, 'X', all);
      for (const p of all) await gameState(p, 'draw');

      // Round 2 (Bob plays X and starts): a quick win for Bob, seen by the watcher.
      await u.bob.page.getByTestId('game-rematch').click();
      await gameState(u.bob, 'your-turn');
      await move(u.bob, 0, 'X', all);
      await move(u.alice, 3, 'O', all);
      await move(u.bob, 1, 'X', all);
      await move(u.alice, 4, 'O', all);
      await move(u.bob, 2, 'X', all);
      const bobText = await gameState(u.bob, 'won');
      const aliceText = await gameState(u.alice, 'lost');
      const wendyText = await gameState(u.wendy, 'over');
      if (!/You win/.test(bobText)) throw new Error(`Bob sees ${bobText}`);
      if (!/Bobby wins/.test(aliceText)) throw new Error(`Alice sees ${aliceText}`);
      if (!/Bobby wins/.test(wendyText)) throw new Error(`Wendy sees ${wendyText}`);
      await u.wendy.page.locator('[data-testid=score]', { hasText: '0 – 1' }).waitFor();
      for (const c of [0, 1, 2]) await u.wendy.page.locator(`[data-testid=cell-${c}].win`).waitFor();
      await shot(u.bob, 'one-gateway-bob-wins.png');
      await shot(u.wendy, 'one-gateway-watcher-result.png');
    });

    step('ranked: both queue, get matched and land in the same game', async () => {
      await u.alice.page.getByTestId('rank-find').click();
      await u.alice.page.locator('[data-testid=rank-status][data-state=queued]').waitFor();
      await u.bob.page.getByTestId('rank-find').click();
      for (const p of [u.alice, u.bob]) {
        await p.page.locator('[data-testid=rank-status][data-state=matched]').waitFor();
      }
      const ids = await Promise.all(
        [u.alice, u.bob].map((p) =>
          until(async () => {
            const t = ((await p.page.getByTestId('game-id').textContent()) ?? '').trim();
            const started = await p.page.locator('[data-testid=game-status][data-state=your-turn], [data-testid=game-status][data-state=their-turn]').count();
            return started ? t : '';
          }, { what: 'the ranked game to start' }),
        ),
      );
      if (ids[0] !== ids[1]) throw new Error(`different games: ${ids}`);
      // Alice queued first at an equal rating, so she owns the game and moves first.
      await gameState(u.alice, 'your-turn');
      await move(u.alice, 4, 'X', [u.alice, u.bob]);
      await shot(u.bob, 'one-gateway-ranked.png');
    });

    step('a reload resumes the session: rooms with history, DMs, the game board', async () => {
      const id = ((await u.bob.page.getByTestId('game-id').textContent()) ?? '').trim();
      await u.bob.page.reload();
      await u.bob.page.locator('[data-testid=conn-state][data-state=open]').waitFor();
      await u.bob.page.locator('[data-testid=me-name]', { hasText: 'Bobby' }).waitFor();
      // The ranked game is re-joined with since:0, so the board is rebuilt from its log.
      await u.bob.page.locator('[data-testid=game-id]', { hasText: id }).waitFor();
      await u.bob.page.locator('[data-testid=cell-4][data-mark="X"]').waitFor();
      await gameState(u.bob, 'your-turn');
      await move(u.bob, 0, 'O', [u.alice, u.bob]);
      await u.bob.page.getByTestId('tab-chat').click();
      await u.bob.page.locator('[data-testid=dm-list] [data-testid=dm-item][data-user=alice]').waitFor();
      await openRoom(u.bob, 'book-club');
      await seeMessage(u.bob, 'First! Chapter 3 tonight.');
      await u.bob.page.locator('[data-testid=member-list] [data-testid=member][data-user=alice]').waitFor();
    });

    step('a player leaving ends the game for the other', async () => {
      await u.bob.page.getByTestId('tab-games').click();
      await u.bob.page.getByTestId('game-leave').click();
      await u.bob.page.locator('[data-testid=game-leave]', { hasText: 'end the game' }).waitFor();
      await u.bob.page.getByTestId('game-leave').click();
      const text = await gameState(u.alice, 'closed');
      if (!/left/.test(text)) throw new Error(`Alice sees ${text}`);
    });

    step('the online feed shows a user going offline', async () => {
      await u.wendy.context.close();
      users.splice(users.indexOf(u.wendy), 1);
      await seeFeed(u.alice, 'Wendy went offline');
      await shot(u.alice, 'one-gateway-feed.png');
    });

    return async () => {
      for (const x of users) await x.context.close().catch(() => {});
      await gw.stop('SIGKILL');
    };
  });
}

// ------------------------------------------------------------------ scenario 2: two replicas

async function twoReplicas() {
  await scenario('two replicas sharing a Redis', async (step) => {
    const redis = await startRedis();
    const shared = ['--jwt-secret', 'e2e-secret', '--redis-url', redis.url];
    const gw1 = await startGateway({ args: shared });
    let gw2 = await startGateway({ args: shared });
    const gw2Port = gw2.port;
    /** @type {User[]} */
    const users = [];
    /** @type {Record<string, User>} */
    const u = {};
    let gameId = '';

    step('Alice on replica 1, Bob on replica 2; the feed crosses replicas', async () => {
      u.alice = await signIn(gw1.base, 'Alice');
      users.push(u.alice);
      await u.alice.page.getByTestId('feed-toggle').click();
      await u.alice.page.locator('[data-testid=feed-toggle][aria-checked=true]').waitFor();
      await sleep(300);
      u.bob = await signIn(gw2.base, 'Bob');
      users.push(u.bob);
      const [r1, r2] = [await replicaOf(u.alice), await replicaOf(u.bob)];
      if (!r1 || !r2 || r1 === r2) throw new Error(`expected two replicas, got ${r1} and ${r2}`);
      await seeFeed(u.alice, 'Bob is online');
    });

    step('chat and DMs across replicas', async () => {
      await say(u.alice, 'hello from replica one');
      await seeMessage(u.bob, 'hello from replica one');
      await say(u.bob, 'and hello from replica two');
      await seeMessage(u.alice, 'and hello from replica two');
      await u.bob.page.getByTestId('dm-input').fill('alice');
      await u.bob.page.getByTestId('dm-submit').click();
      await say(u.bob, 'a DM across replicas');
      await u.alice.page.locator('[data-testid=dm-list] [data-testid=dm-item][data-user=bob] .nav-link').click();
      await seeMessage(u.alice, 'a DM across replicas');
      await openRoom(u.alice, 'lobby');
      await openRoom(u.bob, 'lobby');
    });

    step('a game across replicas with a watcher on replica 1', async () => {
      gameId = await createGame(u.alice);
      await enterGame(u.bob, gameId, 'player');
      u.wendy = await signIn(gw1.base, 'Wendy');
      users.push(u.wendy);
      await enterGame(u.wendy, gameId, 'watcher');
      const all = [u.alice, u.bob, u.wendy];
      await move(u.alice, 0, 'X', all);
      await move(u.bob, 3, 'O', all);
      await gameState(u.alice, 'your-turn');
      await shot(u.alice, 'two-replicas-mid-game.png');
    });

    step('replica 2 drains and restarts: Bob reconnects, resumes the room and the game', async () => {
      await gw2.stop('SIGTERM');
      await u.bob.page.locator('[data-testid=conn-state][data-state=reconnecting]').waitFor();
      await shot(u.bob, 'two-replicas-reconnecting.png');
      // While Bob is away: a move in the game and a line in the lobby.
      await move(u.alice, 1, 'X', [u.alice, u.wendy]);
      await u.alice.page.getByTestId('tab-chat').click();
      await say(u.alice, 'said while Bob was away');
      await seeMessage(u.alice, 'said while Bob was away');
      gw2 = await startGateway({ port: gw2Port, args: shared });
      await u.bob.page.locator('[data-testid=conn-state][data-state=open]').waitFor({ timeout: 25_000 });
      // The game is resumed with `since`: the move made meanwhile shows up.
      await u.bob.page.locator('[data-testid=cell-1][data-mark="X"]').waitFor();
      await gameState(u.bob, 'your-turn');
      await openRoom(u.bob, 'lobby');
      await seeMessage(u.bob, 'said while Bob was away');
      await u.bob.page.getByTestId('tab-games').click();
      await u.alice.page.getByTestId('tab-games').click();
      const all = [u.alice, u.bob, u.wendy];
      await move(u.bob, 4, 'O', all);
      await move(u.alice, 2, 'X', all);
      const a = await gameState(u.alice, 'won');
      const b = await gameState(u.bob, 'lost');
      const w = await gameState(u.wendy, 'over');
      if (!/You win/.test(a) || !/Alice wins/.test(b) || !/Alice wins/.test(w)) throw new Error(`results: ${a} / ${b} / ${w}`);
      await shot(u.wendy, 'two-replicas-watcher-result.png');
    });

    step('ranked across replicas', async () => {
      await u.bob.page.getByTestId('rank-find').click();
      await u.bob.page.locator('[data-testid=rank-status][data-state=queued]').waitFor();
      await u.alice.page.getByTestId('rank-find').click();
      for (const p of [u.alice, u.bob]) await p.page.locator('[data-testid=rank-status][data-state=matched]').waitFor();
      await gameState(u.bob, 'your-turn');
      await gameState(u.alice, 'their-turn');
    });

    step('Redis restarts empty: the pages say the history restarted; chat and DMs go on', async () => {
      await redis.restart();
      // /readyz stays green for 3 probe intervals (1 s each) after a probe came back: wait
      // those out, so green means each replica's subscriber is back on the new Redis (a
      // message published before that reaches a replica only with the next one).
      await sleep(3500);
      for (const g of [gw1, gw2]) {
        await until(async () => (await fetch(`${g.base}/readyz`).catch(() => null))?.ok, { what: `replica ${g.port} ready again` });
      }
      await openRoom(u.alice, 'lobby');
      await openRoom(u.bob, 'lobby');
      // The new room log starts at seq 1, below every seq the pages have seen.
      const text = 'first words after the Redis restart';
      const mine = u.alice.page.locator('[data-testid=messages] [data-testid=message]', { hasText: text });
      const line = u.bob.page.locator('[data-testid=messages] [data-testid=message]', { hasText: text });
      // Said again only while Alice's own echo does not come (a publish refused while the
      // replicas reconnect to Redis).
      await until(
        async () => {
          if ((await mine.count()) > 0) return true;
          await say(u.alice, text);
          await sleep(2000);
          return (await mine.count()) > 0;
        },
        { timeoutMs: 20_000, what: 'a message after the Redis restart' },
      );
      await line.first().waitFor();
      await u.bob.page.locator('[data-testid=messages] [data-testid=sys]', { hasText: 'History restarted' }).waitFor();
      await u.alice.page.locator('[data-testid=messages] [data-testid=sys]', { hasText: 'History restarted' }).waitFor();
      await say(u.bob, 'and a second one');
      await seeMessage(u.alice, 'and a second one');
      const [said, shown] = [await mine.count(), await line.count()];
      if (shown !== said) throw new Error(`Alice said it ${said} times, Bob shows it ${shown} times`);
      // DMs: the new DM log restarts at seq 1 too (Alice's earlier DM from Bob had seq 1).
      await u.bob.page.locator('[data-testid=dm-list] [data-testid=dm-item][data-user=alice] .nav-link').click();
      await say(u.bob, 'a DM after the Redis restart');
      await u.alice.page.locator('[data-testid=dm-list] [data-testid=dm-item][data-user=bob] .nav-link').click();
      await seeMessage(u.alice, 'a DM after the Redis restart');
      await u.alice.page.locator('[data-testid=messages] [data-testid=sys]', { hasText: 'Message history restarted' }).waitFor();
      await shot(u.alice, 'two-replicas-redis-restarted.png');
    });

    return async () => {
      for (const x of users) await x.context.close().catch(() => {});
      await gw1.stop('SIGKILL');
      await gw2.stop('SIGKILL');
      await redis.stop();
    };
  });
}

// ------------------------------------------------------------------ scenario 3: no dev mode

async function tokenSignIn() {
  await scenario('sign in with a token (no dev mode)', async (step) => {
    const secret = 'e2e-token-secret';
    const gw = await startGateway({ dev: false, args: ['--jwt-secret', secret] });
    const mint = (/** @type {string[]} */ args) =>
      new Promise((resolve, reject) => {
        const p = startProcess('token', bin(), ['token', '--secret', secret, ...args]);
        p.exited.then((/** @type {any} */ r) => (r.code === 0 ? resolve(p.log().trim()) : reject(new Error(`token: ${p.log()}`))));
      });
    /** @type {import('playwright-core').BrowserContext | null} */
    let context = null;

    step('the app asks for a token, refuses a bad one, accepts a good one', async () => {
      if (!browser) throw new Error('no browser');
      context = await browser.newContext({ viewport: VIEWPORT });
      context.setDefaultTimeout(WAIT_MS);
      const page = await context.newPage();
      openPages.add({ name: 'Carol', page });
      page.on('pageerror', (e) => pageErrors.push(`[Carol] ${e.message}`));
      await page.goto(`${gw.base}/`);
      await page.getByTestId('signin-token').waitFor();
      if (await page.getByTestId('signin-name').isVisible()) throw new Error('dev sign-in shown without dev mode');
      await page.getByTestId('signin-token').fill('not-a-token');
      await page.getByTestId('signin-token-submit').click();
      await page.locator('[data-testid=signin-error]', { hasText: 'refused' }).waitFor();
      const token = /** @type {string} */ (await mint(['--sub', 'carol', '--name', 'Carol']));
      await page.getByTestId('signin-token').fill(token);
      await page.getByTestId('signin-token-submit').click();
      await page.locator('[data-testid=conn-state][data-state=open]').waitFor();
      await page.locator('[data-testid=me-name]', { hasText: 'Carol' }).waitFor();
      await page.getByTestId('composer-input').fill('signed in with a token');
      await page.getByTestId('composer-input').press('Enter');
      await page.locator('[data-testid=message]', { hasText: 'signed in with a token' }).waitFor();
      // A reload keeps the session (per tab) and shows the room's history again.
      await page.reload();
      await page.locator('[data-testid=conn-state][data-state=open]').waitFor();
      await page.locator('[data-testid=message]', { hasText: 'signed in with a token' }).waitFor();
    });

    return async () => {
      await /** @type {any} */ (context)?.close().catch(() => {});
      await gw.stop('SIGKILL');
    };
  });
}

// ------------------------------------------------------------------ main

async function main() {
  const t0 = Date.now();
  const watchdog = setTimeout(() => {
    console.log(`not ok - the whole run took longer than ${RUN_TIMEOUT_MS} ms; killing everything`);
    const passed = results.filter((r) => r.status === 'pass').length;
    console.log(`${passed} passed, ${results.length - passed + 1} failed`);
    killAll();
    process.exit(1);
  }, RUN_TIMEOUT_MS);
  console.log(`# Switchboard web app e2e: ${BIN_SOURCE}${WEB_DIR ? ` (app from ${WEB_DIR})` : ' (embedded app)'}, chromium ${CHROMIUM}`);
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
    await singleGateway();
    await twoReplicas();
    await tokenSignIn();
  } catch (e) {
    results.push({ name: 'run', status: 'fail', ms: 0, error: String(e?.stack ?? e) });
    console.log(`not ok - run\n${indent(String(e?.stack ?? e))}`);
  } finally {
    await browser?.close().catch(() => {});
    killAll();
    clearTimeout(watchdog);
  }
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  if (UPDATE_SCREENSHOT && existsSync(SCREENSHOT)) console.log(`# updated ${path.relative(repo, SCREENSHOT)} (${Math.round(statSync(SCREENSHOT).size / 1024)} KB)`);
  console.log(`# screenshots in ${path.relative(repo, ARTIFACTS)}/`);
  console.log(`# e2e took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
  process.exitCode = failed || skipped ? 1 : 0;
}

await main();
