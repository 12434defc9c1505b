// Requests, events and error mapping against one dev-mode gateway (in-memory backend).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SwitchboardClient, SwitchboardError, fetchDevToken } from '../switchboard.js';
import { startGateway, makeClient, cleanup, until } from '../support/harness.js';

let gw;
const clients = [];
const client = (user, opts) => {
  const c = makeClient(gw.url, user, opts);
  clients.push(c);
  return c;
};

before(async () => {
  gw = await startGateway();
});
after(async () => {
  await cleanup(clients, gw);
});

test('login resolves with welcome; state events; close', { timeout: 10000 }, async () => {
  const a = client('alice');
  const states = [];
  a.on('state', (s) => states.push(s.state));
  assert.equal(a.state, 'idle');
  const welcome = await a.connect();
  assert.equal(welcome.type, 'welcome');
  assert.equal(welcome.user, 'alice');
  assert.equal(welcome.name, 'Alice');
  assert.match(welcome.session, /^[0-9a-f]{6}-\d+$/);
  assert.equal(welcome.replica, welcome.session.split('-')[0]);
  assert.equal(welcome.heartbeat_s, 25);
  assert.equal(a.state, 'open');
  assert.equal(a.user, 'alice');
  assert.deepEqual(states, ['connecting', 'open']);
  // connect() again while open is the same promise.
  assert.equal(await a.connect(), welcome);
  const rtt = await a.ping();
  assert.ok(rtt >= 0 && rtt < 1000);
  a.close();
  assert.equal(a.state, 'closed');
  assert.deepEqual(states, ['connecting', 'open', 'closed']);
  await assert.rejects(a.ping(), (e) => e instanceof SwitchboardError && e.code === 'not_connected');
});

test('join, publish and receive between two clients; member events; echo', { timeout: 10000 }, async () => {
  const a = client('alice');
  const b = client('bob');
  await a.connect();
  await b.connect();
  const okA = await a.join('lobby');
  assert.equal(okA.type, 'ok');
  assert.equal(okA.room, 'lobby');
  assert.equal(typeof okA.id, 'number');
  assert.equal('recovered' in okA, false);
  const joined = a.waitFor('member.joined', { filter: (f) => f.user === 'bob' });
  const okB = await b.join('lobby');
  assert.equal(okB.room, 'lobby');
  assert.deepEqual(await joined, { type: 'member.joined', room: 'lobby', user: 'bob', name: 'Bob', count: 2 });
  assert.deepEqual(a.rooms, ['lobby']);

  const got = b.waitFor('message', { filter: (m) => m.data?.text === 'hi bob' });
  const echo = a.waitFor('message', { filter: (m) => m.data?.text === 'hi bob' });
  const ok = await a.publish('lobby', { text: 'hi bob' });
  assert.equal(ok.type, 'ok');
  assert.equal(typeof ok.seq, 'number');
  const m = await got;
  assert.equal(m.room, 'lobby');
  assert.equal(m.from, 'alice');
  assert.equal(m.name, 'Alice');
  assert.equal(m.seq, ok.seq);
  assert.equal(typeof m.ts, 'number');
  assert.equal((await echo).seq, ok.seq);

  // echo:false skips all of the sender's sessions.
  // Wait from before the publish: bob's copy may arrive before alice's `ok`.
  const quiet = b.waitFor('message', { filter: (x) => x.data === 'quiet' });
  const ok2 = await a.publish('lobby', 'quiet', { echo: false });
  assert.equal((await quiet).seq, ok2.seq);
  await a.ping(); // anything queued for alice has arrived by now
  assert.equal(a.of('message', (x) => x.seq === ok2.seq).length, 0);
  assert.equal(a.cursors.rooms.lobby, ok.seq);
  assert.equal(b.cursors.rooms.lobby, ok2.seq);

  // Join with since replays before the ok, flagged as replay.
  const c = client('carol');
  await c.connect();
  const replayOk = await c.join('lobby', { since: 0 });
  assert.equal(replayOk.recovered, true);
  assert.equal(replayOk.replayed, 2);
  const replayed = c.events.filter((e) => e.type === 'message');
  assert.deepEqual(
    replayed.map((e) => [e.payload.seq, e.info.replay]),
    [
      [ok.seq, true],
      [ok2.seq, true],
    ],
  );

  const left = a.waitFor('member.left', { filter: (f) => f.user === 'bob' });
  const okLeave = await b.leave('lobby');
  assert.equal(okLeave.room, 'lobby');
  assert.equal((await left).count, 2);
  assert.deepEqual(b.rooms, []);
});

test('direct messages, offline delivery with dm_since, send to self', { timeout: 10000 }, async () => {
  const a = client('dana');
  const b = client('erin');
  await a.connect();
  await b.connect();
  const got = b.waitFor('direct');
  const ok = await a.send('erin', { text: 'psst' });
  assert.equal(ok.seq, 1);
  assert.deepEqual(
    { ...(await got), ts: 0 },
    { type: 'direct', from: 'dana', name: 'Dana', data: { text: 'psst' }, seq: 1, ts: 0 },
  );
  assert.equal(b.cursors.dm, 1);

  // Offline: kept in the inbox and delivered right after welcome to a new client that
  // passes its last DM seq.
  b.close();
  await a.send('erin', 'while you were out');
  const b2 = client('erin', { client: { dmSince: 1 } });
  const direct = b2.waitFor('direct');
  await b2.connect();
  const d = await direct;
  assert.equal(d.seq, 2);
  assert.equal(d.data, 'while you were out');
  const self = a.waitFor('direct', { filter: (f) => f.from === 'dana' });
  await a.send('dana', 'note to self');
  assert.equal((await self).data, 'note to self');
});

test('presence, who with paging, rename with member.renamed', { timeout: 10000 }, async () => {
  const a = client('frank');
  const b = client('gina');
  await a.connect();
  await b.connect();
  await a.join('plaza');
  await b.join('plaza');
  const p = await a.presence('plaza');
  assert.equal(p.type, 'presence');
  assert.equal(p.room, 'plaza');
  assert.equal(p.count, 2);
  assert.deepEqual(p.members, [
    { user: 'frank', name: 'Frank' },
    { user: 'gina', name: 'Gina' },
  ]);
  const page = await a.who({ limit: 1 });
  assert.equal(page.type, 'who');
  assert.equal(page.users.length, 1);
  assert.ok(page.count >= 2);
  assert.ok(page.next);
  const all = await a.whoAll({ limit: 1 });
  assert.equal(all.length, page.count);
  assert.ok(all.some((u) => u.user === 'gina'));

  const renamed = a.waitFor('member.renamed', { filter: (f) => f.user === 'gina' });
  const own = b.waitFor('member.renamed');
  const ok = await b.rename('  Gina B.  ');
  assert.equal(ok.name, 'Gina B.');
  assert.equal(b.name, 'Gina B.');
  assert.deepEqual(await renamed, { type: 'member.renamed', room: 'plaza', user: 'gina', name: 'Gina B.' });
  assert.equal((await own).name, 'Gina B.');
  const p2 = await a.presence('plaza');
  assert.deepEqual(p2.members[1], { user: 'gina', name: 'Gina B.' });
  await assert.rejects(b.rename('   '), { code: 'bad_request' });
});

test('broadcast reaches every session, including the sender', { timeout: 10000 }, async () => {
  const a = client('hank');
  const b = client('iris');
  await a.connect();
  await b.connect();
  const both = Promise.all([
    a.waitFor('broadcast', { filter: (f) => f.data === 'all hands' }),
    b.waitFor('broadcast', { filter: (f) => f.data === 'all hands' }),
  ]);
  const ok = await a.broadcast('all hands');
  assert.deepEqual(Object.keys(ok).sort(), ['id', 'type']);
  const [fa, fb] = await both;
  assert.equal(fa.from, 'hank');
  assert.equal(fb.name, 'Hank');
});

test('error frames map to SwitchboardError with the exact code', { timeout: 10000 }, async () => {
  const a = client('jack');
  await a.connect();
  const isErr = (code, msg) => (e) => {
    assert.ok(e instanceof SwitchboardError, `not a SwitchboardError: ${e}`);
    assert.equal(e.code, code);
    if (msg) assert.equal(e.message, msg);
    assert.equal(e.frame.type, 'error');
    assert.equal(e.frame.code, code);
    return true;
  };
  await assert.rejects(a.publish('not-joined', 'x'), isErr('forbidden', 'join the room before publishing'));
  await assert.rejects(a.publish('bad room', 'x'), isErr('bad_request'));
  await assert.rejects(a.join('no*globs'), isErr('bad_request'));
  await assert.rejects(a.leave('nowhere'), isErr('not_found', 'not in that room'));
  await assert.rejects(a.send('', 'x'), isErr('bad_request'));
  await assert.rejects(a.gameJoin('g-00000000000000000000000000000000'), isErr('not_found', 'no such game'));
  await assert.rejects(a.gameLeave('g-00000000000000000000000000000000'), isErr('not_found', 'not in that game'));
  await assert.rejects(a.request({ type: 'jion', room: 'lobby' }), isErr('bad_request'));
  // The failed join is not tracked for resume.
  assert.deepEqual(a.rooms, []);
  // A frame the gateway does not answer (`pong`) times out.
  const t0 = Date.now();
  await assert.rejects(a.request({ type: 'pong' }, { timeoutMs: 200 }), (e) => {
    assert.ok(e instanceof SwitchboardError);
    assert.equal(e.code, 'timeout');
    return true;
  });
  assert.ok(Date.now() - t0 >= 190);
  // The connection is still fine.
  assert.ok((await a.ping()) >= 0);
});

test('a refused token: connect rejects with unauthorized/4001 and does not retry', { timeout: 10000 }, async () => {
  const c = makeClient(gw.url, 'x', { token: 'not-a-jwt' });
  clients.push(c);
  await assert.rejects(c.connect(), (e) => {
    assert.ok(e instanceof SwitchboardError);
    assert.equal(e.code, 'unauthorized');
    assert.equal(e.closeCode, 4001);
    assert.match(e.message, /invalid token/);
    return true;
  });
  assert.equal(c.state, 'closed');
  assert.equal(c.stats.connections, 1);

  // With getToken, 4001 is retried once with a fresh token, then given up.
  let calls = 0;
  const d = new SwitchboardClient({
    url: gw.url,
    WebSocket,
    getToken: () => {
      calls += 1;
      return 'still-bad';
    },
    reconnect: { minMs: 10, maxMs: 20 },
  });
  clients.push(d);
  await assert.rejects(d.connect(), { code: 'unauthorized', closeCode: 4001 });
  assert.equal(calls, 2);

  // A bad token first, a good one on the retry: connected.
  let n = 0;
  const e = new SwitchboardClient({
    url: gw.url,
    WebSocket,
    getToken: async () => (n++ === 0 ? 'expired' : fetchDevToken(gw.http, 'kate')),
    reconnect: { minMs: 10, maxMs: 20 },
  });
  clients.push(e);
  assert.equal((await e.connect()).user, 'kate');
});

test('no WebSocket implementation: a clear TypeError', () => {
  if (globalThis.WebSocket) return; // Node 22+ has one
  assert.throws(() => new SwitchboardClient({ url: gw.url, token: 't' }), /WebSocket/);
});

test('requests made while connecting wait for the connection', { timeout: 10000 }, async () => {
  const a = client('liam');
  const p = a.connect();
  const pong = a.ping(); // queued until open
  await p;
  assert.ok((await pong) >= 0);
});

test('gave up after maxAttempts against a closed port', { timeout: 10000 }, async () => {
  const c = makeClient('ws://127.0.0.1:1/ws', 'x', { token: 't', reconnect: { maxAttempts: 3, minMs: 10, maxMs: 20 } });
  clients.push(c);
  const states = [];
  c.on('state', (s) => states.push(s.state));
  await assert.rejects(c.connect(), (e) => {
    assert.equal(e.code, 'connect_failed');
    return true;
  });
  assert.equal(c.stats.connections, 3);
  assert.deepEqual(states, ['connecting', 'connecting', 'connecting', 'closed']);
});

test('stats count frames', { timeout: 5000 }, async () => {
  const a = client('mona');
  await a.connect();
  await a.ping();
  await until(() => a.stats.framesIn >= 2);
  assert.ok(a.stats.framesOut >= 2);
});
