// Fault tests (issue 12, "Faults"): real gateway processes on a private redis-server, the
// JS client's own reconnect and resume logic, steady traffic with `msg_id` retries.
//   1. rolling restart of three replicas (SIGTERM drain), one by one;
//   2. Redis killed mid-traffic and restarted empty;
//   3. Redis stalled with SIGSTOP.
// Each prints one JSON line of measurements (prefixed `FAULTS `).
import { test, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import {
  startGateway,
  startRedis,
  makeClient,
  cleanup,
  until,
  freePort,
  sleep,
  waitReady,
  rssBytes,
} from '../support/harness.js';

const SECRET = 'js-client-test-secret';
const procs = [];
const clients = [];
const redises = [];
const allPublishers = [];

// A failed test leaves no traffic running into the next one.
afterEach(() => {
  for (const p of allPublishers) p.abort();
});
after(async () => {
  await cleanup(clients, procs, redises);
});

/**
 * A gateway on `redis` (dev mode, fixed secret so tokens outlive a replica). The inbound
 * rate limit is raised: a test's retries must not be turned into `rate_limited` / 4008.
 */
async function gateway(redis, { port, env = {}, args = [] } = {}) {
  const g = await startGateway({
    port,
    ready: true,
    args: ['--jwt-secret', SECRET, '--redis-url', redis.url, '--drain-timeout', '2s', '--redis-probe-interval', '100ms', ...args],
    env: { SWITCHBOARD_DRAIN_DELAY: '0s', SWITCHBOARD_RATE_LIMIT: '1000', SWITCHBOARD_RATE_BURST: '2000', ...env },
  });
  g.dead = null;
  g.exited.then((r) => (g.dead = r));
  procs.push(g);
  return g;
}

async function redisServer() {
  const r = await startRedis();
  redises.push(r);
  return r;
}

/** A test client that also logs when each state change happened. */
function client(urls, user, opts = {}) {
  const c = makeClient(urls, user, opts);
  c.stateLog = [];
  c.on('state', (s) => c.stateLog.push({ state: s.state, t: Date.now(), url: c.url }));
  clients.push(c);
  return c;
}

/** Rotate a list so that client `i` starts on replica `i mod n`. */
const rotate = (list, i) => list.map((_, k) => list[(i + k) % list.length]);

/** Two replicas on `redis`; `n` users (`<prefix>0..`) and one publisher per replica
 * (`pubNames`), spread over both, connected and in `room` from its start. */
async function twoReplicaRoom(redis, env, room, n, prefix, pubNames) {
  const gws = [await gateway(redis, { env }), await gateway(redis, { env })];
  const urls = gws.map((g) => g.url);
  const users = [];
  for (let i = 0; i < n; i++) users.push(client(rotate(urls, i), `${prefix}${i}`));
  const pubs = pubNames.map((name, k) => client(rotate(urls, k), name));
  await Promise.all([...users, ...pubs].map((c) => c.connect()));
  await Promise.all([...users, ...pubs].map((c) => c.join(room, { since: 0 })));
  return { gws, urls, users, pubs };
}

/**
 * Steady traffic with safe retries: every `intervalMs` a new message (room publish or DM,
 * chosen by `frameFor(n)`) with a fresh `msg_id`, retried with the same `msg_id` on any
 * error until acknowledged. At most `concurrency` messages are in flight.
 * Records every attempt (start, end, outcome) and every acknowledgement.
 */
function steadyPublisher(c, { name, intervalMs, frameFor, concurrency = 1, retryMs = 100, timeoutMs = 5000 }) {
  const acks = new Map(); // msg_id -> {seq, frame, start (of the acked attempt), at, duplicate}
  const attempts = []; // {id, start, end, code}
  const errors = {}; // error code -> count
  let stopped = false;
  let giveUpAt = Infinity;
  const inFlight = new Set();
  const unacked = new Set();

  async function one(id, frame) {
    unacked.add(id);
    for (;;) {
      const start = Date.now();
      try {
        const ok = await c.request({ ...frame, msg_id: id }, { timeoutMs });
        const end = Date.now();
        attempts.push({ id, start, end, code: 'ok' });
        acks.set(id, { seq: ok.seq, frame, start, at: end, duplicate: !!ok.duplicate });
        unacked.delete(id);
        return;
      } catch (err) {
        const end = Date.now();
        const code = err?.code ?? String(err);
        attempts.push({ id, start, end, code });
        errors[code] = (errors[code] ?? 0) + 1;
        if (Date.now() > giveUpAt) return;
        await sleep(retryMs);
      }
    }
  }

  const done = (async () => {
    // A steady rate: after a stall (a message retried for a while) no burst to catch up.
    let next = Date.now();
    for (let n = 0; !stopped; n++) {
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
      next = Math.max(next + intervalMs, Date.now());
      if (stopped) break;
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      const id = `${name}-${n}`;
      const p = one(id, frameFor(n));
      inFlight.add(p);
      p.finally(() => inFlight.delete(p));
    }
    await Promise.all(inFlight);
  })();

  const handle = {
    acks,
    attempts,
    errors,
    unacked,
    /** Stop at once, acknowledged or not (cleanup after a failure). */
    abort() {
      stopped = true;
      giveUpAt = 0;
    },
    /** Stop starting messages; wait (at most `graceMs`) for those in flight to be acknowledged. */
    async stop(graceMs = 10000) {
      stopped = true;
      giveUpAt = Date.now() + graceMs;
      await done;
    },
  };
  allPublishers.push(handle);
  return handle;
}

/** Acknowledged messages of a kind: [{id, seq, ...}] (room: `publish`, dm: `send` to `user`). */
function acked(pubs, pred) {
  const out = [];
  for (const p of pubs) for (const [id, a] of p.acks) if (pred(a.frame)) out.push({ id, ...a });
  return out;
}

/** Room `message` events (`data.id` is the msg_id the publisher used). */
const roomMsgs = (c, room) => c.of('message', (m) => m.room === room);

/** Checks received frames: no `msg_id` twice (also across epochs, where seqs start again). */
function assertNoDuplicates(frames, who) {
  const ids = frames.map((f) => f.data?.id);
  const seen = new Set();
  const dups = ids.filter((id) => (seen.has(id) ? true : (seen.add(id), false)));
  assert.deepEqual(dups, [], `${who}: messages received twice`);
}

// ---------------------------------------------------------------------------------------

test('rolling restart of three replicas under steady traffic: every acknowledged message exactly once', { timeout: 60000 }, async () => {
  const redis = await redisServer();
  const ports = [await freePort(), await freePort(), await freePort()];
  // A drain tells each client to come back after a random `after_ms` of up to 2 s
  // (PROTOCOL §9) and closes it: at 50 messages/s a client can miss ~100 + its reconnect
  // time, past the default history of 100 (it would get `recovered:false`, a gap). This
  // test is about the drain, not about the history size: keep 500.
  const env = { SWITCHBOARD_HISTORY_SIZE: '500', SWITCHBOARD_REPLAY_LIMIT: '500' };
  const gws = [];
  for (const port of ports) gws.push(await gateway(redis, { port, env }));
  const urls = gws.map((g) => g.url);
  const room = 'rolling';
  const N = 12;
  const dmUsers = ['u0', 'u1', 'u2', 'u3'];

  const users = [];
  for (let i = 0; i < N; i++) users.push(client(rotate(urls, i), `u${i}`));
  const pubClient = client(rotate(urls, 1), 'pub');
  await Promise.all([...users, pubClient].map((c) => c.connect()));
  await Promise.all(users.map((c) => c.join(room, { since: 0 })));
  await pubClient.join(room, { since: 0 });

  // 50 room messages/s; every 5th tick also a DM to one of dmUsers (10 DMs/s).
  const pubRoom = steadyPublisher(pubClient, {
    name: 'r',
    intervalMs: 20,
    frameFor: (n) => ({ type: 'publish', room, data: { id: `r-${n}` } }),
  });
  const pubDm = steadyPublisher(pubClient, {
    name: 'd',
    intervalMs: 100,
    frameFor: (n) => ({ type: 'send', to: dmUsers[n % dmUsers.length], data: { id: `d-${n}` } }),
  });
  await sleep(1000);

  const storms = [];
  const tStart = Date.now();
  for (let i = 0; i < gws.length; i++) {
    const g = gws[i];
    const affected = users.filter((c) => c.state === 'open' && c.url === g.url);
    const t0 = Date.now();
    const exit = await g.stop('SIGTERM');
    assert.equal(exit.code, 0, `replica ${i} drained and exited cleanly: ${JSON.stringify(exit)}`);
    const stoppedMs = Date.now() - t0;
    gws[i] = await gateway(redis, { port: ports[i], env });
    // All of its clients reconnected (to another replica of their list) and resumed.
    await until(() => affected.every((c) => c.state === 'open' && c.stateLog.some((s) => s.state === 'open' && s.t > t0)), {
      timeoutMs: 15000,
      what: `clients of replica ${i} reconnected`,
    });
    const lastOpen = Math.max(t0, ...affected.map((c) => c.stateLog.filter((s) => s.state === 'open' && s.t > t0).at(-1).t));
    storms.push({ replica: i, clients: affected.length, reconnected_ms: lastOpen - t0, exited_ms: stoppedMs, at: t0 - tStart });
    await sleep(300);
  }
  await sleep(1000);
  await pubRoom.stop();
  await pubDm.stop();
  assert.deepEqual([...pubRoom.unacked, ...pubDm.unacked], [], 'every message was acknowledged in the end');

  const roomAcks = acked([pubRoom], () => true).sort((a, b) => a.seq - b.seq);
  const dmAcks = acked([pubDm], () => true);
  assert.ok(roomAcks.length > 200, `traffic ran (${roomAcks.length} room messages)`);
  // One seq per msg_id: retries were not stored twice; the room log has no hole.
  assert.deepEqual(
    roomAcks.map((a) => a.seq),
    roomAcks.map((_, k) => k + 1),
    'room seqs 1..n, one per acknowledged msg_id',
  );

  const expectRoom = roomAcks.map((a) => [a.seq, a.id]);
  await until(() => users.every((c) => roomMsgs(c, room).length >= expectRoom.length), {
    timeoutMs: 10000,
    what: 'every client has every room message',
  }).catch(() => {});
  for (const c of users) {
    const got = roomMsgs(c, room);
    assertNoDuplicates(got, c.user);
    const gotSeqs = new Set(got.map((m) => m.seq));
    const missing = expectRoom.filter(([seq]) => !gotSeqs.has(seq)).map(([seq]) => seq);
    assert.deepEqual(
      got.map((m) => [m.seq, m.data.id]),
      expectRoom,
      `${c.user}: every acknowledged room message exactly once, in order; missing seqs ${JSON.stringify(missing)}; ` +
        `states ${JSON.stringify(c.stateLog.map((s) => [s.state, s.t - tStart, String(s.url).slice(-6)]))}; ` +
        `resumes ${JSON.stringify(c.of('resume'))}; storms ${JSON.stringify(storms)}; stats ${JSON.stringify(c.stats)}; ` +
        `acks of missing ${JSON.stringify(roomAcks.filter((a) => missing.includes(a.seq)).map((a) => [a.seq, a.start - tStart, a.at - tStart, a.duplicate]))}`,
    );
    const mine = dmAcks.filter((a) => a.frame.to === c.user).sort((a, b) => a.seq - b.seq);
    const dms = c.of('direct');
    assertNoDuplicates(dms, `${c.user} DMs`);
    assert.deepEqual(
      dms.map((d) => [d.seq, d.data.id]),
      mine.map((a) => [a.seq, a.id]),
      `${c.user}: every acknowledged DM exactly once`,
    );
    if (dmUsers.includes(c.user)) assert.ok(mine.length > 5);
    assert.equal(c.state, 'open', `${c.user} ends connected`);
    assert.deepEqual(c.of('gap'), [], `${c.user}: no gap`);
    assert.deepEqual(c.of('reset'), [], `${c.user}: no reset`);
    assert.deepEqual(c.of('resume.failed'), [], `${c.user}: every resume worked`);
  }
  const retried = (p) => p.attempts.filter((a) => a.code !== 'ok').length;
  console.log(
    'FAULTS ' +
      JSON.stringify({
        test: 'rolling_restart',
        clients: N,
        room_messages: roomAcks.length,
        dms: dmAcks.length,
        failed_attempts_retried: retried(pubRoom) + retried(pubDm),
        retry_errors: { ...pubRoom.errors, ...Object.fromEntries(Object.entries(pubDm.errors).map(([k, v]) => [`dm_${k}`, v])) },
        duplicate_acks: [...pubRoom.acks.values(), ...pubDm.acks.values()].filter((a) => a.duplicate).length,
        storms,
        max_reconnect_storm_ms: Math.max(...storms.map((s) => s.reconnected_ms)),
      }),
  );
  assert.ok(storms.every((s) => s.clients > 0), `each replica had clients: ${JSON.stringify(storms)}`);
});

// ---------------------------------------------------------------------------------------

test('Redis killed mid-traffic and restarted empty: no crash, self-recovery, nothing silently lost', { timeout: 60000 }, async () => {
  const redis = await redisServer();
  const env = { SWITCHBOARD_REDIS_TIMEOUT: '500ms' };
  const room = 'kill';
  const N = 8;
  const dmUsers = ['k0', 'k1', 'k2'];
  const { gws, users, pubs } = await twoReplicaRoom(redis, env, room, N, 'k', ['pa', 'pb']);

  const publishers = [
    ...pubs.map((c, k) =>
      steadyPublisher(c, {
        name: `r${k}`,
        intervalMs: 40,
        retryMs: 100,
        frameFor: (n) => ({ type: 'publish', room, data: { id: `r${k}-${n}` } }),
      }),
    ),
    steadyPublisher(pubs[0], {
      name: 'd',
      intervalMs: 100,
      retryMs: 100,
      frameFor: (n) => ({ type: 'send', to: dmUsers[n % dmUsers.length], data: { id: `d-${n}` } }),
    }),
  ];
  await sleep(1500);

  const tKill = Date.now();
  await redis.stop(); // SIGKILL, nothing persisted
  await sleep(1500);
  await redis.restart(); // an empty redis-server on the same port
  const tUp = Date.now();
  // Presence comes back by itself (measured here; the bound is the todo test below).
  let presenceMs = null;
  const presenceWatch = (async () => {
    while (presenceMs === null && Date.now() - tUp < 18000) {
      const p = await users[0].presence(room, { timeoutMs: 1000 }).catch(() => null);
      if (p && p.count === N + pubs.length) presenceMs = Date.now() - tUp;
      else await sleep(100);
    }
  })();
  await sleep(3000);
  for (const p of publishers) await p.stop();
  assert.deepEqual(
    publishers.flatMap((p) => [...p.unacked]),
    [],
    'every message was acknowledged in the end',
  );
  await presenceWatch;
  // Eventually, by itself (today at the next periodic refresh, presence_ttl / 3 = 15 s:
  // see the todo test below for the bound it should meet).
  assert.notEqual(presenceMs, null, 'presence came back within 18 s of the restart');

  // Both replicas report ready again by themselves.
  for (const g of gws) await waitReady(g, 5000);
  // Gateways never crashed.
  for (const g of gws) assert.equal(g.dead, null, `gateway ${g.url} still running: ${g.log().slice(-2000)}`);

  const roomAcks = acked(publishers, (f) => f.type === 'publish');
  const dmAcks = acked(publishers, (f) => f.type === 'send');
  const isAfter = (a) => a.at > tUp;
  const roomAfter = roomAcks.filter(isAfter);
  const roomBefore = roomAcks.filter((a) => !isAfter(a));
  assert.ok(roomBefore.length > 20 && roomAfter.length > 20, `traffic on both sides: ${roomBefore.length} / ${roomAfter.length}`);

  await until(
    () =>
      users.every((c) => {
        const ids = new Set(roomMsgs(c, room).map((m) => m.data.id));
        return roomAfter.every((a) => ids.has(a.id));
      }),
    { timeoutMs: 10000, what: 'every client has every message acknowledged after the restart' },
  ).catch(() => {});

  const report = [];
  for (const c of users) {
    assert.equal(c.state, 'open', `${c.user} ends connected`);
    const streams = [
      { kind: 'room', got: roomMsgs(c, room), before: roomBefore, after: roomAfter },
      {
        kind: 'dm',
        got: c.of('direct'),
        before: dmAcks.filter((a) => a.frame.to === c.user && !isAfter(a)),
        after: dmAcks.filter((a) => a.frame.to === c.user && isAfter(a)),
      },
    ];
    const row = { user: c.user };
    for (const s of streams) {
      assertNoDuplicates(s.got, `${c.user} ${s.kind}`);
      const ids = new Set(s.got.map((m) => m.data.id));
      const missingAfter = s.after.filter((a) => !ids.has(a.id)).map((a) => a.id);
      // On failure the gateways' warnings go with it: a lost message is a race to explain.
      const logs = () => gws.map((g) => `--- ${g.url}\n${g.log().slice(-4000)}`).join('\n');
      if (missingAfter.length > 0) assert.fail(`${c.user} ${s.kind}: acknowledged after the restart and not received: ${missingAfter}\n${logs()}`);
      const missingBefore = s.before.filter((a) => !ids.has(a.id)).map((a) => a.id);
      const reported = [...c.of('reset'), ...c.of('gap')].filter((e) => e.kind === s.kind);
      if (missingBefore.length > 0) {
        assert.ok(
          reported.length > 0,
          `${c.user} ${s.kind}: ${missingBefore.length} messages acknowledged before the kill neither received nor reported by reset/gap: ${missingBefore.slice(0, 10)}`,
        );
      }
      row[s.kind] = { received: s.got.length, before: s.before.length, after: s.after.length, lost_reported: missingBefore.length, resets: c.of('reset').filter((e) => e.kind === s.kind).length };
    }
    report.push(row);
  }
  const attempts = publishers.flatMap((p) => p.attempts);
  const failedDuring = attempts.filter((a) => a.code !== 'ok' && a.start >= tKill && a.start <= tUp);
  console.log(
    'FAULTS ' +
      JSON.stringify({
        test: 'redis_restart_empty',
        down_ms: tUp - tKill,
        presence_back_ms: presenceMs,
        room_acked_before: roomBefore.length,
        room_acked_after: roomAfter.length,
        dms: dmAcks.length,
        refused_while_down: failedDuring.length,
        max_refusal_ms: Math.max(0, ...failedDuring.map((a) => a.end - a.start)),
        errors: Object.assign({}, ...publishers.map((p) => p.errors)),
        per_client: report,
      }),
  );
});

// Gateway bug: after Redis comes back (empty or not), the presence refresh that the
// command connection's reconnect wakes runs while the backend is still "failing fast"
// (the flag set by the timeouts during the outage is cleared by the probe ~1 ms later), so
// every call of it fails ("presence refresh incomplete"), and presence stays empty until
// the next periodic refresh, presence_ttl / 3 = 15 s later (measured 12-14 s). The
// subscriber's catch-up of logged topics fails the same way ("catch-up after reconnect
// failed"). Issue 12 asks for about a second. Drop `todo` once fixed.
test(
  'Redis restarted empty: presence comes back within about a second',
  { timeout: 30000 },
  async () => {
    const redis = await redisServer();
    const env = { SWITCHBOARD_REDIS_TIMEOUT: '500ms' };
    const gws = [await gateway(redis, { env }), await gateway(redis, { env })];
    const room = 'present';
    const users = [0, 1, 2, 3].map((i) => client(rotate(gws.map((g) => g.url), i), `p${i}`));
    await Promise.all(users.map((c) => c.connect()));
    await Promise.all(users.map((c) => c.join(room)));
    assert.equal((await users[0].presence(room)).count, 4);
    await redis.stop();
    await sleep(1500);
    await redis.restart();
    const tUp = Date.now();
    let last;
    await until(
      async () => {
        last = await users[0].presence(room, { timeoutMs: 1000 }).catch((e) => e.code);
        return last?.count === 4;
      },
      { timeoutMs: 3000, stepMs: 100, what: 'all 4 members listed again' },
    ).catch((e) => {
      throw new Error(`${e.message}: after ${Date.now() - tUp} ms presence is ${JSON.stringify(last)}`);
    });
    console.log('FAULTS ' + JSON.stringify({ test: 'presence_after_redis_restart', presence_back_ms: Date.now() - tUp }));
  },
);

// ---------------------------------------------------------------------------------------

test('Redis stalled with SIGSTOP: prompt unavailable, nothing hangs, no duplicate from retries, memory bounded', { timeout: 60000 }, async () => {
  const redis = await redisServer();
  const TIMEOUT_MS = 500;
  const BOUND_MS = TIMEOUT_MS + 1000; // the Redis timeout and a margin for a loaded machine
  const STALL_MS = 3500;
  const env = { SWITCHBOARD_REDIS_TIMEOUT: `${TIMEOUT_MS}ms` };
  const room = 'stall';
  const { gws, users, pubs } = await twoReplicaRoom(redis, env, room, 6, 's', ['qa', 'qb']);

  // Several requests in flight per connection: those queued behind the first must not
  // wait longer than the timeout either.
  const publishers = [
    ...pubs.map((c, k) =>
      steadyPublisher(c, {
        name: `q${k}`,
        intervalMs: 40,
        concurrency: 8,
        retryMs: 200,
        timeoutMs: 10000,
        frameFor: (n) => ({ type: 'publish', room, data: { id: `q${k}-${n}` } }),
      }),
    ),
    steadyPublisher(pubs[0], {
      name: 'd',
      intervalMs: 100,
      concurrency: 4,
      retryMs: 200,
      timeoutMs: 10000,
      frameFor: (n) => ({ type: 'send', to: users[n % 2].user, data: { id: `d-${n}` } }),
    }),
  ];
  // Reads too: `presence` every 100 ms.
  const reads = [];
  let reading = true;
  const reader = (async () => {
    while (reading) {
      const start = Date.now();
      const code = await users[2].presence(room, { timeoutMs: 10000 }).then(
        () => 'ok',
        (e) => e.code,
      );
      reads.push({ start, end: Date.now(), code });
      await sleep(100);
    }
  })();

  await sleep(1500);
  const rssBefore = gws.map((g) => rssBytes(g.pid));
  const tStop = Date.now();
  redis.signal('SIGSTOP');
  await sleep(STALL_MS);
  redis.signal('SIGCONT');
  const tCont = Date.now();
  // Traffic resumes: a fresh publish is acknowledged soon after.
  await until(() => publishers[0].attempts.some((a) => a.code === 'ok' && a.start > tCont), {
    timeoutMs: 5000,
    what: 'publishes acknowledged again after SIGCONT',
  });
  const resumedMs = Math.min(...publishers[0].attempts.filter((a) => a.code === 'ok' && a.start > tCont).map((a) => a.end)) - tCont;
  await sleep(2000);
  reading = false;
  await reader;
  for (const p of publishers) await p.stop();
  assert.deepEqual(
    publishers.flatMap((p) => [...p.unacked]),
    [],
    'every message was acknowledged in the end',
  );
  await sleep(500);
  const rssAfter = gws.map((g) => rssBytes(g.pid));
  for (const g of gws) assert.equal(g.dead, null, `gateway ${g.url} still running`);

  // Every request was answered within the bound, during the stall too.
  const all = [...publishers.flatMap((p) => p.attempts), ...reads];
  const during = all.filter((a) => a.end > tStop && a.start < tCont);
  const refused = during.filter((a) => a.code !== 'ok');
  const slow = all.filter((a) => a.end - a.start > BOUND_MS);
  const codes = {};
  for (const a of during) codes[a.code] = (codes[a.code] ?? 0) + 1;
  const maxDuring = Math.max(0, ...during.map((a) => a.end - a.start));

  // Every acknowledged message exactly once at every receiver; retries stored nothing twice.
  const roomAcks = acked(publishers, (f) => f.type === 'publish').sort((a, b) => a.seq - b.seq);
  const dmAcks = acked(publishers, (f) => f.type === 'send');
  await until(() => users.every((c) => roomMsgs(c, room).length >= roomAcks.length), {
    timeoutMs: 10000,
    what: 'every room message delivered',
  }).catch(() => {});
  const lateStored = roomAcks.filter((a) => a.duplicate).length;

  console.log(
    'FAULTS ' +
      JSON.stringify({
        test: 'redis_stall',
        stall_ms: tCont - tStop,
        redis_timeout_ms: TIMEOUT_MS,
        requests_during_stall: during.length,
        refused_during_stall: refused.length,
        codes_during_stall: codes,
        max_latency_during_stall_ms: maxDuring,
        over_bound: slow.length,
        first_ack_after_sigcont_ms: resumedMs,
        room_messages: roomAcks.length,
        dms: dmAcks.length,
        retries_answered_duplicate: lateStored,
        rss_before: rssBefore,
        rss_after: rssAfter,
      }),
  );

  assert.ok(refused.length > 10, `requests were refused during the stall (${refused.length})`);
  assert.deepEqual(Object.keys(codes).filter((c) => c !== 'ok' && c !== 'unavailable'), [], `only unavailable: ${JSON.stringify(codes)}`);
  assert.deepEqual(
    slow.map((a) => [a.id ?? 'presence', a.code, a.end - a.start, a.start - tStop]),
    [],
    `every request answered within ${BOUND_MS} ms`,
  );
  assert.deepEqual(
    roomAcks.map((a) => a.seq),
    roomAcks.map((_, k) => k + 1),
    'room seqs 1..n, one per acknowledged msg_id (a retry is not stored twice)',
  );
  for (const c of users) {
    const got = roomMsgs(c, room);
    assertNoDuplicates(got, c.user);
    assert.deepEqual(
      got.map((m) => [m.seq, m.data.id]),
      roomAcks.map((a) => [a.seq, a.id]),
      `${c.user}: every acknowledged room message exactly once`,
    );
    const mine = dmAcks.filter((a) => a.frame.to === c.user).sort((a, b) => a.seq - b.seq);
    const dms = c.of('direct');
    assertNoDuplicates(dms, `${c.user} DMs`);
    assert.deepEqual(
      dms.map((d) => [d.seq, d.data.id]),
      mine.map((a) => [a.seq, a.id]),
      `${c.user}: every acknowledged DM exactly once`,
    );
    assert.equal(c.state, 'open');
    assert.deepEqual(c.of('gap'), [], `${c.user}: no gap`);
  }
  for (let i = 0; i < gws.length; i++) {
    assert.ok(rssBefore[i] && rssAfter[i], 'RSS readable');
    assert.ok(
      rssAfter[i] < 2 * rssBefore[i] + 20 * 1024 * 1024,
      `gateway ${i} RSS ${rssBefore[i]} -> ${rssAfter[i]} bytes stays bounded`,
    );
  }
});
