// Game rooms (friend play with a watcher), ranked matchmaking, and in-place resume of
// rooms, DMs and games after a dropped connection, against one dev-mode gateway.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SwitchboardError } from '../switchboard.js';
import { startGateway, makeClient, cleanup, until } from '../support/harness.js';

let gw;
const clients = [];
const client = (user, opts) => {
  const c = makeClient(opts?.url ?? gw.url, user, { tokenFrom: gw.url, ...opts });
  clients.push(c);
  return c;
};

before(async () => {
  gw = await startGateway();
});
after(async () => {
  await cleanup(clients, gw);
});

/** A URL callback that holds reconnects while `gate.closed` is true. */
function gatedUrl() {
  const gate = { closed: false, open: null, attempts: 0 };
  let release = () => {};
  gate.shut = () => {
    gate.closed = true;
    gate.open = new Promise((r) => (release = r));
  };
  gate.release = () => {
    gate.closed = false;
    release();
  };
  gate.url = async (ctx) => {
    gate.attempts += 1;
    if (gate.closed && ctx.attempt > 0) await gate.open;
    return gw.url;
  };
  return gate;
}

test('friend game: create, join, watch, send to all/opponent/watchers, close', { timeout: 15000 }, async () => {
  const alice = client('alice');
  const bob = client('bob');
  const wendy = client('wendy');
  const carl = client('carl');
  await Promise.all([alice.connect(), bob.connect(), wendy.connect(), carl.connect()]);

  const created = await alice.gameCreate();
  assert.equal(created.type, 'game.created');
  assert.match(created.room, /^g-[0-9a-f]{32}$/);
  assert.equal(created.owner, 'alice');
  const room = created.room;
  assert.deepEqual(alice.games, [{ room, role: 'player' }]);

  const startedA = alice.waitFor('game.started');
  const startedB = bob.waitFor('game.started');
  const joinOk = await bob.gameJoin(room);
  // The game log's epoch comes with the ok; the client keeps it for resuming.
  assert.equal(typeof joinOk.epoch, 'string');
  assert.ok(joinOk.epoch.length > 0);
  assert.deepEqual(
    { ...joinOk, id: 0 },
    { type: 'ok', id: 0, room, role: 'player', owner: 'alice', opponent: 'bob', started: true, epoch: joinOk.epoch },
  );
  assert.deepEqual(bob.epochs.games, { [room]: joinOk.epoch });
  assert.deepEqual(await startedA, { type: 'game.started', room, owner: 'alice', opponent: 'bob' });
  assert.deepEqual(await startedB, { type: 'game.started', room, owner: 'alice', opponent: 'bob' });

  const watchOk = await wendy.gameWatch(room);
  assert.equal(watchOk.role, 'watcher');
  assert.equal(watchOk.epoch, joinOk.epoch, 'one log, one epoch');
  assert.equal(watchOk.started, true);
  assert.deepEqual(wendy.games, [{ room, role: 'watcher' }]);

  await assert.rejects(wendy.gameSend(room, { move: 'd4' }), { code: 'forbidden', message: 'watchers cannot send' });
  await assert.rejects(carl.gameJoin(room), { code: 'room_full', message: 'game is full' });
  await assert.rejects(bob.gameJoin(room), { code: 'conflict' });
  await assert.rejects(alice.gameSend(room, 1, 'nobody'), { code: 'bad_request' });

  // to: all — everyone, including the sender after its ok.
  const all = [alice, bob, wendy].map((c) => c.waitFor('game.message', { filter: (m) => m.data?.move === 'e4' }));
  const s1 = await alice.gameSend(room, { move: 'e4' });
  for (const m of await Promise.all(all)) {
    assert.deepEqual(m, { type: 'game.message', room, from: 'alice', to: 'all', data: { move: 'e4' }, seq: s1.seq });
  }
  // to: opponent — only the other player.
  const toAlice = alice.waitFor('game.message', { filter: (m) => m.to === 'opponent' });
  const s2 = await bob.gameSend(room, { chat: 'good luck' }, 'opponent');
  assert.equal((await toAlice).seq, s2.seq);
  // to: watchers — only the watchers.
  const toWendy = wendy.waitFor('game.message', { filter: (m) => m.to === 'watchers' });
  const s3 = await alice.gameSend(room, { note: 'opening' }, 'watchers');
  assert.equal((await toWendy).seq, s3.seq);
  await Promise.all([alice.ping(), bob.ping(), wendy.ping()]);
  assert.deepEqual(
    bob.of('game.message').map((m) => m.seq),
    [s1.seq],
  );
  assert.deepEqual(
    wendy.of('game.message').map((m) => m.seq),
    [s1.seq, s3.seq],
  );
  assert.deepEqual(
    alice.of('game.message').map((m) => m.seq),
    [s1.seq, s2.seq],
  );

  // A late watcher replays what watchers may see.
  const late = client('lara');
  await late.connect();
  const lateOk = await late.gameWatch(room, { since: 0 });
  assert.equal(lateOk.recovered, true);
  assert.equal(lateOk.replayed, 2);
  assert.deepEqual(
    late.events.filter((e) => e.type === 'game.message').map((e) => [e.payload.seq, e.info.replay]),
    [
      [s1.seq, true],
      [s3.seq, true],
    ],
  );

  await assert.rejects(bob.gameClose(room), { code: 'forbidden', message: 'only the owner can close' });
  const closed = [alice, bob, wendy, late].map((c) => c.waitFor('game.closed'));
  const closeOk = await alice.gameClose(room);
  assert.equal(closeOk.room, room);
  for (const f of await Promise.all(closed)) assert.deepEqual(f, { type: 'game.closed', room, reason: 'closed' });
  for (const c of [alice, bob, wendy, late]) assert.deepEqual(c.games, []);
  await assert.rejects(wendy.gameWatch(room), { code: 'not_found', message: 'no such game' });
});

test('a player leaving ends the game with reason left', { timeout: 10000 }, async () => {
  const a = client('paula');
  const b = client('quinn');
  await Promise.all([a.connect(), b.connect()]);
  const { room } = await a.gameCreate();
  await b.gameJoin(room);
  const closedA = a.waitFor('game.closed');
  const closedB = b.waitFor('game.closed');
  assert.equal((await b.gameLeave(room)).room, room);
  assert.equal((await closedA).reason, 'left');
  assert.equal((await closedB).reason, 'left');
});

test('ranked match between two clients', { timeout: 10000 }, async () => {
  const carol = client('carol');
  const dave = client('dave');
  await Promise.all([carol.connect(), dave.connect()]);
  const mc = carol.waitFor('rank.matched');
  const md = dave.waitFor('rank.matched');
  const q1 = await carol.rankJoin();
  assert.deepEqual({ ...q1, id: 0, queued: 0 }, { type: 'rank.queued', id: 0, rating: 1500, queued: 0, max_wait_ms: 120000 });
  assert.ok(q1.queued >= 1);
  assert.equal(carol.rankQueued, true);
  await dave.rankJoin();
  const [fc, fd] = await Promise.all([mc, md]);
  assert.equal(fc.room, fd.room);
  assert.match(fc.room, /^g-[0-9a-f]{32}$/);
  assert.equal(fc.opponent, 'dave');
  assert.equal(fd.opponent, 'carol');
  assert.equal(fc.opponent_rating, 1500);
  assert.equal(carol.rankQueued, false);
  // The match is in carol's logged stream: its seq is her DM cursor now.
  assert.ok(fc.seq >= 1);
  assert.equal(carol.cursors.dm, fc.seq);

  const first = await carol.gameJoin(fc.room);
  assert.equal(first.started, false);
  const started = carol.waitFor('game.started');
  const second = await dave.gameJoin(fd.room);
  assert.equal(second.started, true);
  const s = await started;
  assert.deepEqual(new Set([s.owner, s.opponent]), new Set(['carol', 'dave']));

  // rank.leave is a plain ok, also when not queued.
  const ok = await carol.rankLeave();
  assert.deepEqual(Object.keys(ok).sort(), ['id', 'type']);
});

test('resume after a dropped connection: rooms, DMs and games exactly once', { timeout: 15000 }, async () => {
  const gate = gatedUrl();
  const alice = client('ann');
  const bob = client('ben', { url: gate.url });
  const wendy = client('wes', { url: gate.url });
  await Promise.all([alice.connect(), bob.connect(), wendy.connect()]);
  await alice.join('den');
  await bob.join('den');
  const before = await alice.publish('den', 'before');
  await until(() => bob.of('message').length === 1);
  const { room } = await alice.gameCreate();
  await bob.gameJoin(room);
  await wendy.gameWatch(room);
  const g1 = await alice.gameSend(room, 'm1');
  await until(() => bob.of('game.message').length === 1 && wendy.of('game.message').length === 1);
  await bob.rename('Benjamin');

  // Drop both; hold their reconnects while alice carries on.
  gate.shut();
  const away = [bob, wendy].map((c) => c.waitFor('reconnecting'));
  bob.reconnectNow();
  wendy.reconnectNow();
  await Promise.all(away);
  await until(async () => (await alice.presence('den')).count === 1, { what: 'ben gone from den' });
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await alice.publish('den', `missed ${i}`)).seq);
  await alice.send('ben', 'dm while away');
  const g2 = await alice.gameSend(room, 'm2');
  const g3 = await alice.gameSend(room, 'for ben', 'opponent');
  const g4 = await alice.gameSend(room, 'for watchers', 'watchers');

  const resumed = [bob, wendy].map((c) => c.waitFor('open'));
  gate.release();
  const [openB] = await Promise.all(resumed);
  assert.equal(openB.resumed, true);

  // Room: the missed messages once, as replay, then live ones.
  assert.deepEqual(
    bob.of('message').map((m) => m.seq),
    [before.seq, ...missed],
  );
  const roomResume = bob.of('resume').find((r) => r.kind === 'room');
  assert.deepEqual(roomResume, { kind: 'room', room: 'den', since: before.seq, recovered: true, replayed: 3 });
  assert.equal(bob.of('direct').length, 1);
  assert.equal(bob.of('direct')[0].data, 'dm while away');
  // Game: the player gets all + opponent; the watcher gets all + watchers.
  assert.deepEqual(
    bob.of('game.message').map((m) => m.seq),
    [g1.seq, g2.seq, g3.seq],
  );
  assert.deepEqual(
    wendy.of('game.message').map((m) => m.seq),
    [g1.seq, g2.seq, g4.seq],
  );
  assert.equal(bob.of('gap').length, 0);
  assert.equal(wendy.of('gap').length, 0);
  // Same logs, same epochs: no reset.
  assert.deepEqual([...bob.of('reset'), ...wendy.of('reset')], []);
  assert.equal(wendy.epochs.games[room], bob.epochs.games[room]);
  assert.equal(typeof bob.epochs.rooms.den, 'string');
  // The rename was re-applied.
  assert.equal((await alice.presence('den')).members.find((m) => m.user === 'ben').name, 'Benjamin');

  // Live traffic continues, exactly once.
  const live = await alice.publish('den', 'live');
  const g5 = await alice.gameSend(room, 'm5');
  await until(() => bob.of('message').length === 5 && bob.of('game.message').length === 4);
  await until(() => wendy.of('game.message').length === 4);
  assert.equal(bob.of('message').at(-1).seq, live.seq);
  assert.equal(bob.of('game.message').at(-1).seq, g5.seq);
  assert.equal(bob.stats.duplicatesDropped, 0);
  // The player can still send.
  assert.equal(typeof (await bob.gameSend(room, 'back')).seq, 'number');
});

test('requests made while reconnecting are sent after the resume', { timeout: 10000 }, async () => {
  const gate = gatedUrl();
  const a = client('nora', { url: gate.url });
  await a.connect();
  await a.join('queue-room');
  gate.shut();
  const away = a.waitFor('reconnecting');
  a.reconnectNow();
  await away;
  const pub = a.publish('queue-room', 'sent later');
  gate.release();
  const ok = await pub;
  assert.equal(typeof ok.seq, 'number');
  assert.equal(a.state, 'open');
});

test('a request in flight when the connection drops rejects with disconnected', { timeout: 10000 }, async () => {
  const a = client('otto');
  await a.connect();
  const p = a.request({ type: 'pong' }, { timeoutMs: 5000 }); // never answered
  a.reconnectNow();
  await assert.rejects(p, (e) => e instanceof SwitchboardError && e.code === 'disconnected');
  await a.waitFor('open');
});

test('a ranked wait reports its status, then times out', { timeout: 10000 }, async () => {
  const short = await startGateway({
    env: { SWITCHBOARD_RANK_MAX_WAIT: '1500ms', SWITCHBOARD_RANK_STATUS_INTERVAL: '400ms' },
  });
  try {
    const lone = makeClient(short.url, 'lone', { tokenFrom: short.url });
    clients.push(lone);
    await lone.connect();
    const timedOut = lone.waitFor('rank.timeout', { timeoutMs: 5000 });
    const q = await lone.rankJoin();
    assert.equal(q.max_wait_ms, 1500);
    const t = await timedOut;
    assert.ok(t.waited_ms >= 1400, JSON.stringify(t));
    const waiting = lone.of('rank.waiting');
    assert.ok(waiting.length >= 2, JSON.stringify(waiting));
    assert.ok(waiting.every((w) => w.window >= 100 && w.queued >= 0), JSON.stringify(waiting));
    assert.equal(lone.rankQueued, false);
  } finally {
    await cleanup(short);
  }
});
