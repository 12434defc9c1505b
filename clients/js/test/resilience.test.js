// Reconnect rules on a single node (in-memory backend): a restart that starts every log
// again (a new epoch), a dead connection found by the heartbeat, close codes
// 4003/4004/4005, and the online feed across a reconnect.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, makeClient, cleanup, until, freePort, sleep } from '../support/harness.js';

const procs = [];
const clients = [];
after(async () => {
  await cleanup(clients, procs);
});
async function gateway(opts = {}) {
  const g = await startGateway(opts);
  procs.push(g);
  return g;
}
function client(url, user, opts) {
  const c = makeClient(url, user, opts);
  clients.push(c);
  return c;
}

test('in-memory gateway restarted: the client resumes with its old epochs and gets the new log, not silence', { timeout: 15000 }, async () => {
  const port = await freePort();
  let gw = await gateway({ port, args: ['--drain-timeout', '1s'] });
  // Bob's reconnects wait at this gate until the new process has messages for him.
  let release = () => {};
  const gate = new Promise((r) => (release = r));
  let gated = false;
  const alice = client(gw.url, 'alice');
  const bob = client(gw.url, 'bob', {
    client: {
      url: async (ctx) => {
        if (gated && ctx.attempt > 0) await gate;
        return gw.url;
      },
    },
  });
  await alice.connect();
  const welcome = await bob.connect();
  await alice.join('r');
  const joined = await bob.join('r');
  for (let i = 1; i <= 3; i++) await alice.publish('r', `old ${i}`);
  await alice.send('bob', 'dm 1');
  await alice.send('bob', 'dm 2');
  await until(() => bob.of('message').length === 3 && bob.of('direct').length === 2);
  assert.deepEqual(bob.cursors, { dm: 2, rooms: { r: 3 }, games: {} });
  const old = { dm: welcome.dm_epoch, room: joined.epoch };
  assert.deepEqual(bob.epochs, { dm: old.dm, rooms: { r: old.room }, games: {} });

  gated = true;
  const aliceBack = alice.waitFor('open', { filter: (o) => o.resumed, timeoutMs: 8000 });
  await gw.stop('SIGTERM');
  // A new process: new random dev secret (getToken fetches a fresh token), new logs.
  gw = await gateway({ port });
  await aliceBack;
  // While bob is still away: two messages in the new log (seqs 1 and 2, below bob's
  // cursor 3) and a DM (seq 1, below his dm cursor 2).
  const n1 = await alice.publish('r', 'new 1');
  const n2 = await alice.publish('r', 'new 2');
  assert.deepEqual([n1.seq, n2.seq], [1, 2]);
  await alice.send('bob', 'dm after restart');

  const bobBack = bob.waitFor('open', { filter: (o) => o.resumed, timeoutMs: 8000 });
  release();
  await bobBack;
  // The resume sent the old epochs: the gateway said stream.reset and replayed its log.
  assert.deepEqual(
    bob.of('message').map((m) => [m.seq, m.data]),
    [
      [1, 'old 1'],
      [2, 'old 2'],
      [3, 'old 3'],
      [1, 'new 1'],
      [2, 'new 2'],
    ],
  );
  assert.deepEqual(
    bob.of('direct').map((d) => [d.seq, d.data]),
    [
      [1, 'dm 1'],
      [2, 'dm 2'],
      [1, 'dm after restart'],
    ],
  );
  const resets = bob.of('reset');
  assert.equal(resets.length, 2, JSON.stringify(resets));
  const roomReset = resets.find((r) => r.kind === 'room');
  const dmReset = resets.find((r) => r.kind === 'dm');
  assert.deepEqual(roomReset, { kind: 'room', room: 'r', epoch: roomReset.epoch, previousEpoch: old.room, since: 3 });
  assert.deepEqual(dmReset, { kind: 'dm', epoch: dmReset.epoch, previousEpoch: old.dm, since: 2 });
  assert.notEqual(roomReset.epoch, old.room);
  assert.notEqual(dmReset.epoch, old.dm);
  assert.deepEqual(bob.of('resume'), [{ kind: 'room', room: 'r', since: 3, recovered: false, replayed: 2 }]);
  // One gap per reset (the resume's recovered:false is the same event).
  assert.deepEqual(bob.of('gap').map((g) => [g.kind, g.reset]).sort(), [
    ['dm', true],
    ['room', true],
  ]);
  assert.deepEqual(bob.cursors, { dm: 1, rooms: { r: 2 }, games: {} });
  assert.deepEqual(bob.epochs, { dm: dmReset.epoch, rooms: { r: roomReset.epoch }, games: {} });

  // Live again, exactly once.
  const n3 = await alice.publish('r', 'new 3');
  await alice.send('bob', 'dm live');
  await until(() => bob.of('message').length === 6 && bob.of('direct').length === 4, { what: 'live messages' });
  const last = bob.of('message').at(-1);
  assert.deepEqual([last.seq, last.data], [n3.seq, 'new 3']);
  assert.equal(bob.of('direct').at(-1).seq, 2);
  assert.equal(bob.stats.duplicatesDropped, 0);
  assert.equal(bob.of('reset').length, 2);
});

test('heartbeat: a silent connection is detected and replaced', { timeout: 15000 }, async () => {
  const gw = await gateway();
  const c = client(gw.url, 'hb', {
    client: { heartbeat: { intervalMs: 200, timeoutMs: 400 }, connectTimeoutMs: 500 },
  });
  await c.connect();
  await c.join('quiet');
  // Idle but alive: the client pings and the gateway answers; no reconnect.
  await sleep(900);
  assert.equal(c.state, 'open');
  assert.equal(c.stats.reconnects, 0);
  assert.ok(c.stats.framesOut >= 4, `pings sent: ${c.stats.framesOut}`);

  const down = c.waitFor('reconnecting', { timeoutMs: 3000 });
  gw.signal('SIGSTOP');
  try {
    const ev = await down;
    assert.equal(ev.closeReason, 'heartbeat timeout');
    await sleep(700); // attempts against the frozen process time out
  } finally {
    gw.signal('SIGCONT');
  }
  const open = await c.waitFor('open', { timeoutMs: 5000 });
  assert.equal(open.resumed, true);
  assert.deepEqual(c.of('resume').map((r) => r.room), ['quiet']);
});

test('duplicate login, reject policy: conflict and close 4005, not retried', { timeout: 10000 }, async () => {
  const gw = await gateway({ args: ['--duplicate-login', 'reject'] });
  const first = client(gw.url, 'solo');
  await first.connect();
  const second = client(gw.url, 'solo');
  await assert.rejects(second.connect(), (e) => {
    assert.equal(e.code, 'conflict');
    assert.equal(e.closeCode, 4005);
    assert.equal(e.message, 'user already has a session (duplicate logins are rejected)');
    return true;
  });
  assert.equal(second.state, 'closed');
  assert.equal(second.stats.connections, 1);
  assert.equal(first.state, 'open');
});

test('duplicate login, kick policy: the older client is closed with 4003 and stays closed', { timeout: 10000 }, async () => {
  const gw = await gateway({ args: ['--duplicate-login', 'kick'] });
  const older = client(gw.url, 'kicked');
  await older.connect();
  const closed = older.waitFor('closed');
  const newer = client(gw.url, 'kicked');
  await newer.connect();
  const ev = await closed;
  assert.equal(ev.closeCode, 4003);
  assert.equal(ev.closeReason, 'replaced by a newer login');
  await sleep(300);
  assert.equal(older.state, 'closed');
  assert.equal(older.stats.connections, 1);
  assert.equal(newer.state, 'open');
});

test('API disconnect (4004): reconnect after a back-off and resume', { timeout: 10000 }, async () => {
  const gw = await gateway({ apiKey: 'k' });
  const c = client(gw.url, 'dis');
  await c.connect();
  await c.join('stay');
  const down = c.waitFor('reconnecting');
  const up = c.waitFor('open', { filter: (o) => o.resumed });
  await gw.api('POST', '/api/v1/users/dis/disconnect');
  const ev = await down;
  assert.equal(ev.closeCode, 4004);
  assert.ok(ev.delayMs > 0);
  await up;
  assert.deepEqual(c.rooms, ['stay']);
  assert.equal((await gw.api('GET', '/api/v1/rooms/stay/presence')).count, 1);
});

test('online feed: watch all or a list, changes coalesced, the watch survives a reconnect', { timeout: 15000 }, async () => {
  const gw = await gateway({ args: ['--online-feed-interval', '100ms'] });
  const watcher = client(gw.url, 'wanda');
  const friend = client(gw.url, 'fred');
  await watcher.connect();
  await assert.rejects(watcher.onlineWatch([]), { code: 'bad_request' });
  assert.equal((await watcher.onlineWatch('all')).type, 'ok');
  assert.deepEqual(watcher.onlineWatching, { all: true });

  const seen = (pred) =>
    watcher.waitFor('online.changes', { filter: pred, timeoutMs: 3000 });
  let change = seen((f) => f.online.some((u) => u.user === 'fred'));
  await friend.connect();
  const on = await change;
  assert.deepEqual(on.online.find((u) => u.user === 'fred'), { user: 'fred', name: 'Fred' });
  assert.equal(on.dropped, 0);
  change = seen((f) => f.offline.includes('fred'));
  friend.close();
  await change;

  // A friends list: only the listed users appear.
  await watcher.onlineWatch(['gus']);
  assert.deepEqual(watcher.onlineWatching, { users: ['gus'] });
  const stranger = client(gw.url, 'sam');
  await stranger.connect();
  // The watch is re-sent after a reconnect.
  const up = watcher.waitFor('open', { filter: (o) => o.resumed });
  watcher.reconnectNow();
  await up;
  change = seen((f) => f.online.some((u) => u.user === 'gus'));
  const gus = client(gw.url, 'gus');
  await gus.connect();
  await change;
  for (const f of watcher.of('online.changes')) {
    assert.ok(!f.online.some((u) => u.user === 'sam'), `unwatched user reported: ${JSON.stringify(f)}`);
  }
  await watcher.onlineUnwatch();
  assert.equal(watcher.onlineWatching, null);
});
