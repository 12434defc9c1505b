// Client logic against a scripted fake WebSocket: cases a real gateway produces only
// rarely (a live frame overtaking a resume's ok after a seq reset, a duplicate after a
// replay), the drain and close-code rules, and the .d.ts matching the module.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { SwitchboardClient } from '../switchboard.js';

class FakeSocket {
  static all = [];
  static waiters = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.onopen = this.onmessage = this.onerror = this.onclose = null;
    FakeSocket.all.push(this);
    const w = FakeSocket.waiters.shift();
    if (w) w(this);
  }
  static next() {
    return new Promise((resolve) => FakeSocket.waiters.push(resolve));
  }
  send(text) {
    this.sent.push(JSON.parse(text));
  }
  close(code = 1000, reason = '') {
    this.serverClose(code, reason);
  }
  // Test side.
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  push(frame) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  serverClose(code, reason = '') {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  last(type) {
    return [...this.sent].reverse().find((f) => f.type === type);
  }
  async waitSent(type, n = 1) {
    for (let i = 0; i < 200; i++) {
      const found = this.sent.filter((f) => f.type === type);
      if (found.length >= n) return found[n - 1];
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no ${type} frame sent`);
  }
}

const welcome = (n = 1) => ({ type: 'welcome', user: 'u', name: 'U', session: `abcdef-${n}`, replica: 'abcdef', heartbeat_s: 25 });

/** A client on a fake socket, logged in. */
async function loggedIn(opts = {}) {
  const c = new SwitchboardClient({
    url: 'ws://fake/ws',
    token: 't',
    WebSocket: FakeSocket,
    reconnect: { minMs: 10, maxMs: 20 },
    heartbeat: false,
    ...opts,
  });
  const sock = FakeSocket.next();
  const connected = c.connect();
  const ws = await sock;
  ws.open();
  const login = await ws.waitSent('login');
  assert.equal(login.token, 't');
  ws.push(welcome());
  await connected;
  return { c, ws };
}

test('a live message with a low seq that overtakes the ok of a reset resume is kept', async () => {
  // A gateway without epochs (no `epoch` in its replies, no `stream.reset`).
  const { c, ws } = await loggedIn();
  const got = [];
  const gaps = [];
  c.on('message', (m, info) => got.push([m.seq, info.replay]));
  c.on('gap', (g) => gaps.push(g));
  const joined = c.join('r', { since: 5 });
  const req = await ws.waitSent('join');
  assert.equal(req.since, 5);
  // The gateway restarted: its room seq is back at 1; a live message arrives before the ok.
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 'new', seq: 1, ts: 1 });
  assert.deepEqual(got, []); // held until the ok decides
  ws.push({ type: 'ok', id: req.id, room: 'r', recovered: false, replayed: 0 });
  await joined;
  assert.deepEqual(got, [[1, false]]);
  assert.deepEqual(gaps, [{ kind: 'room', room: 'r', since: 5, replayed: 0 }]);
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 'next', seq: 2, ts: 2 });
  assert.deepEqual(got.at(-1), [2, false]);
  c.close();
});

test('duplicates by seq are dropped; held duplicates too when the resume recovered', async () => {
  const { c, ws } = await loggedIn();
  const got = [];
  c.on('message', (m, info) => got.push([m.seq, info.replay]));
  const joined = c.join('r', { since: 3 });
  const req = await ws.waitSent('join');
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 4, seq: 4, ts: 1 });
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 3, seq: 3, ts: 1 }); // at the cursor
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 5, seq: 5, ts: 1 });
  ws.push({ type: 'ok', id: req.id, room: 'r', recovered: true, replayed: 2 });
  await joined;
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 5, seq: 5, ts: 1 }); // again
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 6, seq: 6, ts: 1 });
  assert.deepEqual(got, [
    [4, true],
    [5, true],
    [6, false],
  ]);
  assert.equal(c.stats.duplicatesDropped, 2);
  assert.equal(c.cursors.rooms.r, 6);
  c.close();
});

test('own echo:false messages are not delivered from a later replay', async () => {
  const { c, ws } = await loggedIn();
  const got = [];
  c.on('message', (m) => got.push(m.seq));
  const j = c.join('r');
  ws.push({ type: 'ok', id: (await ws.waitSent('join')).id, room: 'r' });
  await j;
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 1, seq: 1, ts: 1 });
  const p = c.publish('r', 'mine', { echo: false });
  ws.push({ type: 'ok', id: (await ws.waitSent('publish')).id, seq: 2 });
  assert.equal((await p).seq, 2);
  // Connection lost; the resume replays from 1: seq 2 is our own, seq 3 is new.
  const sock = FakeSocket.next();
  ws.serverClose(1006);
  const ws2 = await sock;
  ws2.open();
  await ws2.waitSent('login');
  ws2.push(welcome(2));
  const rejoin = await ws2.waitSent('join');
  assert.deepEqual({ ...rejoin, id: 0 }, { type: 'join', room: 'r', since: 1, id: 0 });
  ws2.push({ type: 'message', room: 'r', from: 'u', name: 'U', data: 'mine', seq: 2, ts: 1 });
  ws2.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 3, seq: 3, ts: 1 });
  ws2.push({ type: 'ok', id: rejoin.id, room: 'r', recovered: true, replayed: 2 });
  await c.waitFor('open');
  assert.deepEqual(got, [1, 3]);
  c.close();
});

test('drain: waits after_ms, moves to the next URL, logs in with dm_since, resumes', async () => {
  const c = new SwitchboardClient({
    url: ['ws://a/ws', 'ws://b/ws'],
    getToken: ({ url }) => `token-for-${url}`,
    WebSocket: FakeSocket,
    reconnect: { minMs: 10, maxMs: 20 },
    heartbeat: false,
  });
  let sock = FakeSocket.next();
  const connected = c.connect();
  const a = await sock;
  assert.equal(a.url, 'ws://a/ws');
  a.open();
  assert.equal((await a.waitSent('login')).token, 'token-for-ws://a/ws');
  a.push(welcome());
  await connected;
  a.push({ type: 'direct', from: 'x', name: 'X', data: 'hi', seq: 7, ts: 1 });
  const g = c.gameWatch('g-1');
  a.push({ type: 'ok', id: (await a.waitSent('game.watch')).id, room: 'g-1', role: 'watcher', owner: 'o', started: false });
  await g;

  sock = FakeSocket.next();
  const t0 = Date.now();
  a.push({ type: 'reconnect', reason: 'server draining', after_ms: 120 });
  a.serverClose(1012, 'server draining');
  assert.equal(c.state, 'open'); // the loop notices on the next tick
  const b = await sock;
  assert.ok(Date.now() - t0 >= 100, `waited ${Date.now() - t0} ms`);
  assert.equal(b.url, 'ws://b/ws');
  b.open();
  const login = await b.waitSent('login');
  assert.equal(login.token, 'token-for-ws://b/ws');
  assert.equal(login.dm_since, 7);
  b.push(welcome(2));
  const watch = await b.waitSent('game.watch');
  assert.deepEqual({ ...watch, id: 0 }, { type: 'game.watch', room: 'g-1', since: 0, id: 0 });
  b.push({ type: 'ok', id: watch.id, room: 'g-1', role: 'watcher', owner: 'o', started: false, recovered: true, replayed: 0 });
  const open = await c.waitFor('open');
  assert.equal(open.resumed, true);
  assert.equal(c.url, 'ws://b/ws');
  c.close();
});

test('close codes: 4002 retries at once, 4005 gives up, 4001 with a static token gives up', async () => {
  {
    const { c, ws } = await loggedIn();
    const states = [];
    c.on('reconnecting', (s) => states.push(s));
    const sock = FakeSocket.next();
    ws.serverClose(4002, 'login timeout');
    await sock;
    assert.equal(states[0].delayMs, 0);
    c.close();
  }
  {
    const { c, ws } = await loggedIn();
    const closed = c.waitFor('closed');
    ws.serverClose(4005, 'already connected');
    const ev = await closed;
    assert.equal(ev.closeCode, 4005);
    assert.equal(c.state, 'closed');
  }
  {
    const c = new SwitchboardClient({ url: 'ws://fake/ws', token: 'bad', WebSocket: FakeSocket, heartbeat: false });
    const sock = FakeSocket.next();
    const p = c.connect();
    const ws = await sock;
    ws.open();
    const login = await ws.waitSent('login');
    ws.push({ type: 'error', id: login.id, code: 'unauthorized', message: 'invalid token: malformed' });
    ws.serverClose(4001, 'unauthorized');
    await assert.rejects(p, { code: 'unauthorized', closeCode: 4001, message: 'invalid token: malformed' });
  }
});

test('uncorrelated error frames are emitted as error events', async () => {
  const { c, ws } = await loggedIn();
  const errors = [];
  c.on('error', (e) => errors.push(e));
  ws.push({ type: 'error', code: 'rate_limited', message: 'too many frames, slow down' });
  assert.deepEqual(errors, [{ type: 'error', code: 'rate_limited', message: 'too many frames, slow down' }]);
  c.close();
});

test('unsubscribe and once', async () => {
  const { c, ws } = await loggedIn();
  let n = 0;
  let m = 0;
  const off = c.on('broadcast', () => n++);
  c.once('broadcast', () => m++);
  const b = { type: 'broadcast', from: 'x', name: 'X', data: 1, ts: 1 };
  ws.push(b);
  off();
  ws.push(b);
  assert.equal(n, 1);
  assert.equal(m, 1);
  c.close();
});

test('switchboard.d.ts declares every public method of the module', () => {
  const dts = readFileSync(new URL('../switchboard.d.ts', import.meta.url), 'utf8');
  const body = dts.slice(dts.indexOf('export declare class SwitchboardClient'));
  const declared = new Set([...body.matchAll(/^  (?:readonly )?([a-zA-Z]+)[(<:?]/gm)].map((x) => x[1]));
  const proto = SwitchboardClient.prototype;
  const publicNames = Object.getOwnPropertyNames(proto).filter((k) => k !== 'constructor' && !k.startsWith('_'));
  for (const name of publicNames) assert.ok(declared.has(name), `${name} missing from switchboard.d.ts`);
  for (const name of declared) {
    if (name === 'constructor' || name === 'requestTimeoutMs' || name === 'connectTimeoutMs' || name === 'RESUME_CONCURRENCY' || name === 'STABLE_MS') continue;
    assert.ok(publicNames.includes(name), `${name} declared but not implemented`);
  }
});

test('epochs: resumes send them; a stream.reset during a resume does not drop the replay', async () => {
  const { c, ws } = await loggedIn();
  const got = [];
  const resets = [];
  const gaps = [];
  c.on('message', (m, info) => got.push([m.seq, m.data, info.replay]));
  c.on('reset', (r) => resets.push(r));
  c.on('gap', (g) => gaps.push(g));
  const j = c.join('r');
  ws.push({ type: 'ok', id: (await ws.waitSent('join')).id, room: 'r', epoch: 'E1' });
  await j;
  for (let seq = 1; seq <= 5; seq++) ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: `old ${seq}`, seq, ts: 1 });
  assert.deepEqual(c.epochs, { dm: null, rooms: { r: 'E1' }, games: {} });

  // Reconnect: the resume carries the cursor and its epoch.
  const sock = FakeSocket.next();
  ws.serverClose(1006);
  const ws2 = await sock;
  ws2.open();
  await ws2.waitSent('login');
  ws2.push(welcome(2));
  const rejoin = await ws2.waitSent('join');
  assert.deepEqual({ ...rejoin, id: 0 }, { type: 'join', room: 'r', since: 5, epoch: 'E1', id: 0 });
  // An old-log frame at the cursor is held (a duplicate), then the log started again:
  // reset, the new log from seq 1 (all at or below the old cursor 5), the ok.
  ws2.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 'old 5', seq: 5, ts: 1 });
  ws2.push({ type: 'stream.reset', stream: 'room', room: 'r', epoch: 'E2' });
  for (let seq = 1; seq <= 3; seq++) ws2.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: `new ${seq}`, seq, ts: 2 });
  ws2.push({ type: 'ok', id: rejoin.id, room: 'r', recovered: false, replayed: 3, epoch: 'E2' });
  await c.waitFor('open');
  assert.deepEqual(got.slice(5), [
    [1, 'new 1', true],
    [2, 'new 2', true],
    [3, 'new 3', true],
  ]);
  assert.deepEqual(resets, [{ kind: 'room', room: 'r', epoch: 'E2', previousEpoch: 'E1', since: 5 }]);
  assert.deepEqual(gaps, [{ kind: 'room', room: 'r', since: 5, reset: true, epoch: 'E2' }]);
  assert.deepEqual(c.cursors.rooms, { r: 3 });
  assert.deepEqual(c.epochs.rooms, { r: 'E2' });
  // Live and replayed overlap in the new epoch is still dropped.
  ws2.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 'new 3', seq: 3, ts: 2 });
  ws2.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 'new 4', seq: 4, ts: 2 });
  assert.deepEqual(got.at(-1), [4, 'new 4', false]);
  assert.equal(got.length, 9);
  assert.equal(c.stats.duplicatesDropped, 2); // the held old 5 and the live new 3
  c.close();
});

test('epochs: a live stream.reset lets the lower seqs through, for rooms, games and DMs', async () => {
  const { c, ws } = await loggedIn();
  const got = [];
  const resets = [];
  c.on('message', (m) => got.push(['room', m.seq]));
  c.on('game.message', (m) => got.push(['game', m.seq]));
  c.on('direct', (d) => got.push(['dm', d.seq]));
  c.on('reset', (r) => resets.push(r));
  const j = c.join('r');
  ws.push({ type: 'ok', id: (await ws.waitSent('join')).id, room: 'r', epoch: 'R1' });
  await j;
  const g = c.gameWatch('g-1');
  ws.push({ type: 'ok', id: (await ws.waitSent('game.watch')).id, room: 'g-1', role: 'watcher', owner: 'o', started: true, epoch: 'G1' });
  await g;
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 1, seq: 7, ts: 1 });
  ws.push({ type: 'game.message', room: 'g-1', from: 'o', to: 'all', data: 1, seq: 4 });
  ws.push({ type: 'direct', from: 'x', name: 'X', data: 1, seq: 9, ts: 1 });
  // Redis restarted empty.
  ws.push({ type: 'stream.reset', stream: 'room', room: 'r', epoch: 'R2' });
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 2, seq: 1, ts: 1 });
  ws.push({ type: 'stream.reset', stream: 'game', room: 'g-1', epoch: 'G2' });
  ws.push({ type: 'game.message', room: 'g-1', from: 'o', to: 'all', data: 2, seq: 1 });
  ws.push({ type: 'stream.reset', stream: 'dm', epoch: 'D2' });
  ws.push({ type: 'direct', from: 'x', name: 'X', data: 2, seq: 1, ts: 1 });
  assert.deepEqual(got, [
    ['room', 7],
    ['game', 4],
    ['dm', 9],
    ['room', 1],
    ['game', 1],
    ['dm', 1],
  ]);
  assert.deepEqual(resets, [
    { kind: 'room', room: 'r', epoch: 'R2', previousEpoch: 'R1', since: 7 },
    { kind: 'game', room: 'g-1', epoch: 'G2', previousEpoch: 'G1', since: 4 },
    { kind: 'dm', epoch: 'D2', previousEpoch: null, since: 9 },
  ]);
  assert.deepEqual(c.cursors, { dm: 1, rooms: { r: 1 }, games: { 'g-1': 1 } });
  assert.deepEqual(c.epochs, { dm: 'D2', rooms: { r: 'R2' }, games: { 'g-1': 'G2' } });

  // The next login and resumes carry the new epochs.
  const sock = FakeSocket.next();
  ws.serverClose(1006);
  const ws2 = await sock;
  ws2.open();
  const login = await ws2.waitSent('login');
  assert.deepEqual([login.dm_since, login.dm_epoch], [1, 'D2']);
  ws2.push({ ...welcome(2), dm_epoch: 'D2' });
  const rejoin = await ws2.waitSent('join');
  const rewatch = await ws2.waitSent('game.watch');
  assert.deepEqual([rejoin.since, rejoin.epoch], [1, 'R2']);
  assert.deepEqual([rewatch.since, rewatch.epoch], [1, 'G2']);
  c.close();
});

test('epochs: the welcome dm_epoch is kept; the dmEpoch option goes with dmSince', async () => {
  const first = await loggedIn({ dmSince: 4, dmEpoch: 'D1' });
  const login = first.ws.last('login');
  assert.deepEqual([login.dm_since, login.dm_epoch], [4, 'D1']);
  first.c.close();

  // No DM cursor yet: the welcome's epoch is adopted for the next login.
  const { c, ws } = await loggedIn();
  assert.equal(ws.last('login').dm_epoch, undefined);
  assert.equal(c.epochs.dm, null); // the plain welcome() has no dm_epoch
  const sock = FakeSocket.next();
  ws.serverClose(1006);
  const ws2 = await sock;
  ws2.open();
  await ws2.waitSent('login');
  ws2.push({ ...welcome(2), dm_epoch: 'D7' });
  await c.waitFor('open');
  assert.equal(c.epochs.dm, 'D7');
  ws2.push({ type: 'direct', from: 'x', name: 'X', data: 1, seq: 1, ts: 1 });
  const sock3 = FakeSocket.next();
  ws2.serverClose(1006);
  const ws3 = await sock3;
  ws3.open();
  const login3 = await ws3.waitSent('login');
  assert.deepEqual([login3.dm_since, login3.dm_epoch], [1, 'D7']);
  c.close();
});

test('epochs: a join ok with another epoch than the known one resets the cursor', async () => {
  const { c, ws } = await loggedIn();
  const got = [];
  const resets = [];
  c.on('message', (m) => got.push(m.seq));
  c.on('reset', (r) => resets.push(r));
  const j = c.join('r');
  ws.push({ type: 'ok', id: (await ws.waitSent('join')).id, room: 'r', epoch: 'E1' });
  await j;
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 1, seq: 2, ts: 1 });
  // Joined again without since: the gateway moved this session to the new log silently.
  const j2 = c.join('r');
  ws.push({ type: 'ok', id: (await ws.waitSent('join', 2)).id, room: 'r', epoch: 'E2' });
  await j2;
  ws.push({ type: 'message', room: 'r', from: 'x', name: 'X', data: 2, seq: 1, ts: 1 });
  assert.deepEqual(got, [2, 1]);
  assert.deepEqual(resets, [{ kind: 'room', room: 'r', epoch: 'E2', previousEpoch: 'E1', since: 2 }]);
  c.close();
});
