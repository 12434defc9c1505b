// Test helpers: real gateway and redis-server processes on free loopback ports.
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, chmodSync, existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { SwitchboardClient, fetchDevToken } from '../switchboard.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const jsRoot = path.resolve(here, '..');

/**
 * The gateway binary: SWITCHBOARD_BIN (a relative path is taken from the current
 * directory), else ../../target/release/switchboard relative to clients/js.
 */
export const BIN_SOURCE = process.env.SWITCHBOARD_BIN
  ? path.resolve(process.env.SWITCHBOARD_BIN)
  : path.resolve(jsRoot, '../../target/release/switchboard');

let binCopy;
let tmpDir;
/** A private copy of the binary (it may be rebuilt while the tests run). */
function bin() {
  if (binCopy) return binCopy;
  if (!existsSync(BIN_SOURCE)) {
    throw new Error(`gateway binary not found: ${BIN_SOURCE} (set SWITCHBOARD_BIN)`);
  }
  tmpDir = mkdtempSync(path.join(os.tmpdir(), 'sb-js-test-'));
  binCopy = path.join(tmpDir, 'switchboard');
  copyFileSync(BIN_SOURCE, binCopy);
  chmodSync(binCopy, 0o755);
  return binCopy;
}

/** Every process started here, killed at exit whatever happens. */
const live = new Set();
process.on('exit', () => {
  for (const p of live) {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  if (tmpDir) rmSync(tmpDir, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(sig, () => process.exit(130)); // runs the 'exit' handler above
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns truthy, or throw after `timeoutMs`. */
export async function until(fn, { timeoutMs = 5000, stepMs = 20, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${last})`);
    await sleep(stepMs);
  }
}

function track(child, name) {
  live.add(child);
  let log = '';
  const keep = (b) => {
    log += b.toString();
    if (log.length > 200_000) log = log.slice(-100_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      live.delete(child);
      resolve({ code, signal });
    });
  });
  return { exited, log: () => log, name };
}

/**
 * Start a gateway. Resolves once `/healthz` (or `/readyz` with `ready: true`) answers.
 * @param {{port?: number, args?: string[], env?: Record<string,string>, ready?: boolean, apiKey?: string}} [opts]
 */
export async function startGateway(opts = {}) {
  const port = opts.port ?? (await freePort());
  const args = ['--dev', '--listen', `127.0.0.1:${port}`, ...(opts.args ?? [])];
  if (opts.apiKey) args.push('--api-key', opts.apiKey);
  const env = { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...(opts.env ?? {}) };
  // The gateway reads SWITCHBOARD_* from the environment: do not inherit stray ones.
  for (const k of Object.keys(env)) if (k.startsWith('SWITCHBOARD_') && !(opts.env && k in opts.env)) delete env[k];
  const child = spawn(bin(), args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const t = track(child, `gateway:${port}`);
  const http = `http://127.0.0.1:${port}`;
  const probe = opts.ready ? '/readyz' : '/healthz';
  let exitedEarly = null;
  t.exited.then((r) => (exitedEarly = r));
  await until(
    async () => {
      if (exitedEarly) throw new Error(`gateway exited: ${JSON.stringify(exitedEarly)}\n${t.log()}`);
      const res = await fetch(http + probe).catch(() => null);
      return res && res.ok;
    },
    { timeoutMs: 10000, what: `gateway on ${port}` },
  ).catch((e) => {
    if (exitedEarly) throw new Error(`gateway exited early ${JSON.stringify(exitedEarly)}: ${t.log()}`);
    throw e;
  });
  const gw = {
    port,
    http,
    url: `ws://127.0.0.1:${port}/ws`,
    pid: child.pid,
    exited: t.exited,
    log: t.log,
    apiKey: opts.apiKey,
    token: (user, name) => fetchDevToken(http, user, name),
    /** Send a signal and wait for the process to exit. */
    async stop(signal = 'SIGTERM', timeoutMs = 10000) {
      if (child.exitCode !== null || child.signalCode !== null) return t.exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const r = await t.exited;
      clearTimeout(timer);
      return r;
    },
    signal(sig) {
      child.kill(sig);
    },
    /** POST to the HTTP API with the API key. */
    async api(method, pathname, body) {
      const res = await fetch(http + pathname, {
        method,
        headers: { authorization: `Bearer ${opts.apiKey}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let json;
      try {
        json = JSON.parse(text);
      } catch {
        json = text;
      }
      if (!res.ok) throw new Error(`API ${method} ${pathname}: ${res.status} ${text}`);
      return json;
    },
  };
  return gw;
}

/** Resolves once a redis-server answers PING on `port`. */
function redisUp(port) {
  return until(
    () =>
      new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        s.on('connect', () => {
          s.write('PING\r\n');
        });
        s.on('data', (d) => {
          s.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
        s.on('error', () => resolve(false));
      }),
    { timeoutMs: 10000, what: `redis on ${port}` },
  );
}

/**
 * Start a private redis-server (no persistence) on a free port. `restart()` kills it and
 * starts an empty one on the same port (what a Redis restart without persistence does).
 */
export async function startRedis() {
  const port = await freePort();
  const spawnRedis = () => {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { child, t: track(child, `redis:${port}`) };
  };
  let proc = spawnRedis();
  await redisUp(port);
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    /** The pid of the current redis-server process. */
    get pid() {
      return proc.child.pid;
    },
    /** Send a signal (e.g. SIGSTOP / SIGCONT to stall it). */
    signal(sig) {
      proc.child.kill(sig);
    },
    async stop() {
      const { child, t } = proc;
      if (child.exitCode !== null || child.signalCode !== null) return t.exited;
      child.kill('SIGKILL');
      return t.exited;
    },
    /** Kill it, then start an empty one on the same port; resolves once it answers. */
    async restart() {
      await redis.stop();
      proc = spawnRedis();
      await redisUp(port);
    },
  };
  return redis;
}

/** Resolves once the gateway answers /readyz with 200 (its Redis connections are back). */
export async function waitReady(g, timeoutMs = 10000) {
  await until(async () => (await fetch(`${g.http}/readyz`).catch(() => null))?.ok, { timeoutMs, what: `${g.url} ready` });
}

/** Resident set size of a process in bytes (VmRSS of /proc/PID/status), or null. */
export function rssBytes(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * A client for tests: the `ws` package, fast reconnects, short timeouts, and a log of
 * every event it emitted.
 */
export function makeClient(url, user, opts = {}) {
  const client = new SwitchboardClient({
    url,
    WebSocket,
    getToken: opts.token ? undefined : (ctx) => fetchDevToken(opts.tokenFrom ?? ctx.url, user, opts.name ?? cap(user)),
    token: opts.token,
    reconnect: { minMs: 50, maxMs: 400, jitter: 0.5, ...(opts.reconnect ?? {}) },
    requestTimeoutMs: 3000,
    connectTimeoutMs: 3000,
    ...opts.client,
  });
  client.events = [];
  for (const type of [
    'message',
    'direct',
    'broadcast',
    'member.joined',
    'member.left',
    'member.renamed',
    'online.changes',
    'game.started',
    'game.message',
    'game.closed',
    'rank.matched',
    'rank.waiting',
    'rank.timeout',
    'reconnect',
    'error',
    'state',
    'resume',
    'gap',
    'reset',
    'resume.failed',
    'welcome',
  ]) {
    client.on(type, (payload, info) => client.events.push({ type, payload, info }));
  }
  client.of = (type, filter = () => true) => client.events.filter((e) => e.type === type && filter(e.payload)).map((e) => e.payload);
  return client;
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

/** Close every client and stop every process given, ignoring errors. */
export async function cleanup(...things) {
  for (const t of things.flat()) {
    if (!t) continue;
    try {
      if (typeof t.close === 'function' && !t.stop) t.close();
      else if (typeof t.stop === 'function') await t.stop('SIGKILL');
    } catch {
      /* ignore */
    }
  }
}
