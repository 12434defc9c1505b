// Reconnect and resume across a gateway restart (SIGTERM drain and SIGKILL), and a drain
// that moves a client to another replica. Gateways share a private redis-server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startGateway, startRedis, makeClient, cleanup, until, freePort, waitReady } from '../support/harness.js';

const SECRET = 'js-client-test-secret';
const API_KEY = 'js-client-test-key';
let redis;
const procs = [];
const clients = [];

before(async () => {
  redis = await startRedis();
});
after(async () => {
  await cleanup(clients, procs, redis);
});

/** A gateway on the shared Redis (dev mode with a fixed secret, so tokens outlive it). */
async function gateway(opts = {}) {
  const g = await startGateway({
    port: opts.port,
    apiKey: opts.apiKey,
    ready: true,
    args: ['--jwt-secret', SECRET, '--redis-url', redis.url, '--drain-timeout', '2s', ...(opts.args ?? [])],
    env: { SWITCHBOARD_DRAIN_DELAY: '0s', ...(opts.env ?? {}) },
  });
  procs.push(g);
  return g;
}

function client(url, user, opts = {}) {
  const c = makeClient(url, user, opts);
  clients.push(c);
  return c;
}

/** Seqs of `message` events for a room, checked to be strictly increasing (no duplicate). */
function roomSeqs(c, room) {
  const seqs = c.of('message', (m) => m.room === room).map((m) => m.seq);
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1], `duplicate or out of order: ${seqs}`);
  return seqs;
}

/**
 * Two clients in a room and a game; the gateway of one is stopped with `signal` and a new
 * one started on the same port. Messages published meanwhile (by the other client and by
 * the HTTP API) arrive exactly once, with no gap.
 */
async function restartScenario(signal, { withGame = true } = {}) {
  const room = `ops-${signal}`;
  const pub = await gateway({ apiKey: API_KEY }); // stays up: alice and the HTTP API
  const port = await freePort();
  let gwA = await gateway({ port });
  const alice = client(pub.url, 'alice');
  // Bob fetches a fresh token from his own gateway before each attempt: while it is down
  // that fails too, and the client keeps retrying with back-off.
  const bob = client(gwA.url, 'bob', { reconnect: { minMs: 50, maxMs: 300 } });
  await alice.connect();
  const welcome1 = await bob.connect();
  await alice.join(room);
  await bob.join(room);
  const before = await alice.publish(room, 'before');
  let game, g1, g2, g3;
  if (withGame) {
    game = (await alice.gameCreate()).room;
    await bob.gameJoin(game);
    g1 = await alice.gameSend(game, 'move 1');
  }
  await until(() => roomSeqs(bob, room).length === 1 && bob.of('game.message').length === (withGame ? 1 : 0));

  const down = bob.waitFor('reconnecting', { timeoutMs: 5000 });
  const exit = await gwA.stop(signal);
  assert.equal(exit.signal ?? 'exit', signal === 'SIGKILL' ? 'SIGKILL' : 'exit', JSON.stringify(exit));
  const downEv = await down;
  if (signal === 'SIGTERM') {
    // Drain: a `reconnect` frame and close 1012 first.
    const rf = bob.of('reconnect');
    assert.equal(rf.length, 1);
    assert.equal(rf[0].reason, 'server draining');
    assert.ok(rf[0].after_ms >= 0 && rf[0].after_ms <= 2000);
    assert.equal(downEv.closeCode, 1012);
    assert.equal(downEv.closeReason, 'server draining');
  } else {
    assert.equal(bob.of('reconnect').length, 0);
    assert.equal(downEv.closeCode, 1006);
  }

  // While bob's gateway is down: room messages from alice and from the HTTP API, a DM
  // through the API, game messages.
  const missed = [];
  missed.push((await alice.publish(room, 'missed 1')).seq);
  missed.push((await pub.api('POST', `/api/v1/rooms/${room}/publish`, { data: 'api 1', from: 'ops' })).seq);
  missed.push((await alice.publish(room, { text: 'missed 2' })).seq);
  missed.push((await pub.api('POST', `/api/v1/rooms/${room}/publish`, { data: 'api 2' })).seq);
  const dm = await pub.api('POST', '/api/v1/users/bob/send', { data: 'dm while down', from: 'ops', name: 'Ops' });
  if (withGame) {
    g2 = await alice.gameSend(game, 'move 2');
    g3 = await alice.gameSend(game, 'for bob only', 'opponent');
  }

  const reopened = bob.waitFor('open', { timeoutMs: 8000 });
  gwA = await gateway({ port });
  const open = await reopened;
  assert.equal(open.resumed, true);
  assert.notEqual(open.welcome.replica, welcome1.replica, 'a new gateway process');

  assert.deepEqual(roomSeqs(bob, room), [before.seq, ...missed]);
  assert.deepEqual(
    bob.of('message', (m) => m.room === room).map((m) => m.data),
    ['before', 'missed 1', 'api 1', { text: 'missed 2' }, 'api 2'],
  );
  assert.deepEqual(bob.of('resume', (r) => r.kind === 'room'), [
    { kind: 'room', room, since: before.seq, recovered: true, replayed: 4 },
  ]);
  const directs = bob.of('direct');
  assert.equal(directs.length, 1);
  assert.equal(directs[0].seq, dm.seq);
  assert.equal(directs[0].from, 'ops');
  assert.deepEqual(bob.of('resume.failed').map((f) => [f.kind, f.error.code, f.error.message]), []);
  if (withGame) {
    assert.deepEqual(
      bob.of('game.message').map((m) => m.seq),
      [g1.seq, g2.seq, g3.seq],
    );
  }
  assert.deepEqual(bob.of('gap'), []);

  // Live again, both ways, exactly once.
  const live = await alice.publish(room, 'live');
  const back = await bob.publish(room, 'bob is back');
  await until(() => roomSeqs(bob, room).length === 7 && roomSeqs(alice, room).includes(back.seq));
  assert.deepEqual(roomSeqs(bob, room).slice(-2), [live.seq, back.seq]);
  if (withGame) assert.equal(typeof (await bob.gameSend(game, 'move 3')).seq, 'number');
  assert.equal(bob.stats.duplicatesDropped, 0);

  for (const c of [alice, bob]) c.close();
  await gwA.stop('SIGKILL');
  await pub.stop('SIGKILL');
}

test('reconnect and resume across a gateway restart: SIGTERM (drain)', { timeout: 20000 }, async () => {
  await restartScenario('SIGTERM');
});

test('reconnect and resume across a gateway restart: SIGKILL (rooms and DMs)', { timeout: 20000 }, async () => {
  await restartScenario('SIGKILL', { withGame: false });
});

// Gateway bug (reported with the JS client): when the replica holding a player's seat is
// killed, the seat is never marked away in Redis, so the player's `game.join` answers
// `conflict` "you are already in this game" until the game expires (game_ttl = 1 h).
// Kept as a TODO so it shows in the output without failing the run; drop `todo` once fixed.
test(
  'reconnect and resume across a gateway restart: SIGKILL with a game seat',
  { timeout: 20000 },
  async () => {
    await restartScenario('SIGKILL', { withGame: true });
  },
);

test('drain moves the client to another replica from its URL list', { timeout: 20000 }, async () => {
  const gwA = await gateway();
  const gwB = await gateway();
  const alice = client(gwB.url, 'amy');
  const bob = client([gwA.url, gwB.url], 'bo');
  await alice.connect();
  await bob.connect();
  assert.equal(bob.url, gwA.url);
  await alice.join('hall');
  await bob.join('hall');
  const first = await alice.publish('hall', 'one');
  await until(() => bob.of('message').length === 1);

  const reconnectFrame = bob.waitFor('reconnect', { timeoutMs: 5000 });
  const reopened = bob.waitFor('open', { timeoutMs: 8000 });
  gwA.signal('SIGTERM');
  const rf = await reconnectFrame;
  assert.equal(rf.reason, 'server draining');
  assert.equal(typeof rf.after_ms, 'number');
  // Published after bob was told to go, before he is back.
  const during = await alice.publish('hall', 'two');
  const open = await reopened;
  assert.equal(bob.url, gwB.url);
  assert.equal(open.url, gwB.url);
  const states = bob.of('state').map((s) => s.state);
  assert.deepEqual(states.slice(-2), ['reconnecting', 'open']);
  const after = await alice.publish('hall', 'three');
  await until(() => bob.of('message').length === 3);
  assert.deepEqual(
    bob.of('message').map((m) => m.seq),
    [first.seq, during.seq, after.seq],
  );
  assert.deepEqual(bob.of('gap'), []);
  const exit = await gwA.exited;
  assert.equal(exit.code, 0);
});

/** `message` events of a room (seqs restart after a reset: not checked to increase). */
const inRoom = (c, room) => c.of('message', (m) => m.room === room);

const ready = (g) => waitReady(g);

/** Retries a request the gateway refuses while Redis is away (`unavailable`). */
async function retrying(fn) {
  let last;
  for (let i = 0; i < 100; i++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw last;
}

test('Redis restarted empty: connected clients get a reset and every later message exactly once', { timeout: 30000 }, async () => {
  // A Redis of its own: this test restarts it.
  const own = await startRedis();
  const onOwn = async () => {
    const g = await startGateway({
      ready: true,
      // A fast probe: /readyz stays green for 3 probe intervals after the last probe
      // came back, so a short interval lets it tell the subscriber is back (below).
      args: ['--jwt-secret', SECRET, '--redis-url', own.url, '--redis-probe-interval', '100ms'],
      env: { SWITCHBOARD_DRAIN_DELAY: '0s' },
    });
    procs.push(g);
    return g;
  };
  try {
    const [gwA, gwB] = [await onOwn(), await onOwn()];
    const room = 'epochs';
    const alice = client(gwA.url, 'alice');
    const bob = client(gwB.url, 'bob'); // on the other replica: fan-out through Redis
    await alice.connect();
    const welcome = await bob.connect();
    const oldDmEpoch = welcome.dm_epoch;
    assert.equal(typeof oldDmEpoch, 'string');
    await alice.join(room);
    const joined = await bob.join(room);
    const oldEpoch = joined.epoch;
    assert.equal(typeof oldEpoch, 'string');
    assert.deepEqual(bob.epochs, { dm: oldDmEpoch, rooms: { [room]: oldEpoch }, games: {} });
    for (let i = 1; i <= 3; i++) await alice.publish(room, `before ${i}`);
    await alice.send('bob', 'dm before 1');
    await alice.send('bob', 'dm before 2');
    await until(() => inRoom(bob, room).length === 3 && bob.of('direct').length === 2, { what: 'messages before' });
    assert.deepEqual(bob.cursors, { dm: 2, rooms: { [room]: 3 }, games: {} });

    await own.restart();
    // Wait until each replica's own probe came back through the new Redis, i.e. its
    // subscriber re-subscribed everything: a message published before that reaches a
    // replica only when a later message on the topic reveals the gap (ARCHITECTURE.md,
    // Outages). Older probes are stale after 3 intervals (300 ms).
    await new Promise((r) => setTimeout(r, 400));
    await ready(gwA);
    await ready(gwB);
    // Published after the restart (a refused publish is not published: retried).
    const first = await retrying(() => alice.publish(room, 'after 1'));
    assert.equal(first.seq, 1, 'the new log starts at 1, below bob cursor (3)');
    const after = [first.seq];
    for (let i = 2; i <= 4; i++) after.push((await alice.publish(room, `after ${i}`)).seq);
    const dm = await retrying(() => alice.send('bob', 'dm after'));
    assert.equal(dm.seq, 1);

    await until(() => inRoom(bob, room).length === 7 && bob.of('direct').length === 3, {
      timeoutMs: 8000,
      what: 'messages after the restart',
    }).catch((e) => {
      throw new Error(`${e.message}: bob has ${JSON.stringify(bob.events.filter((x) => ['message', 'direct', 'reset', 'state'].includes(x.type)).map((x) => [x.type, x.payload.seq ?? x.payload.state ?? x.payload.kind, x.payload.data]))}`);
    });
    const texts = bob.of('message', (m) => m.room === room).map((m) => m.data);
    assert.deepEqual(texts, ['before 1', 'before 2', 'before 3', 'after 1', 'after 2', 'after 3', 'after 4']);
    assert.deepEqual(
      bob.of('message', (m) => m.room === room).map((m) => m.seq),
      [1, 2, 3, ...after],
    );
    assert.deepEqual(
      bob.of('direct').map((d) => [d.seq, d.data]),
      [
        [1, 'dm before 1'],
        [2, 'dm before 2'],
        [1, 'dm after'],
      ],
    );
    // One reset per stream, with the old cursor and both epochs.
    const resets = bob.of('reset');
    const roomReset = resets.find((r) => r.kind === 'room');
    const dmReset = resets.find((r) => r.kind === 'dm');
    assert.equal(resets.length, 2, JSON.stringify(resets));
    assert.deepEqual(roomReset, { kind: 'room', room, epoch: roomReset.epoch, previousEpoch: oldEpoch, since: 3 });
    assert.deepEqual(dmReset, { kind: 'dm', epoch: dmReset.epoch, previousEpoch: oldDmEpoch, since: 2 });
    assert.notEqual(roomReset.epoch, oldEpoch);
    assert.notEqual(dmReset.epoch, oldDmEpoch);
    // `gap` follows each reset, marked as such.
    assert.deepEqual(
      bob.of('gap').map((g) => [g.kind, g.reset, g.since]).sort(),
      [
        ['dm', true, 2],
        ['room', true, 3],
      ],
    );
    assert.deepEqual(bob.epochs, { dm: dmReset.epoch, rooms: { [room]: roomReset.epoch }, games: {} });
    assert.deepEqual(bob.cursors, { dm: 1, rooms: { [room]: 4 }, games: {} });
    assert.equal(bob.stats.duplicatesDropped, 0);

    // A reconnect now resumes within the new epoch: no second reset, nothing twice.
    const back = bob.waitFor('open', { filter: (o) => o.resumed, timeoutMs: 8000 });
    bob.reconnectNow();
    await back;
    const live = await alice.publish(room, 'live');
    await until(() => inRoom(bob, room).length === 8, { what: 'live message' });
    assert.equal(bob.of('message').at(-1).seq, live.seq);
    assert.deepEqual(bob.of('resume').at(-1), { kind: 'room', room, since: 4, recovered: true, replayed: 0 });
    assert.equal(bob.of('reset').length, 2);
    assert.equal(bob.of('direct').length, 3);
    assert.equal(bob.stats.duplicatesDropped, 0);
  } finally {
    await own.stop();
  }
});
