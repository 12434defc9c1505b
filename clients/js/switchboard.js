// @ts-check
/**
 * Switchboard client: one ES module for browsers and Node.js 20+, no build step and no
 * runtime dependencies. It speaks wire protocol v1 (docs/PROTOCOL.md) over WebSocket.
 *
 * - connect with a token or a token callback (called again before every reconnect);
 * - request/response by auto-assigned `id` with promises and timeouts;
 * - an event API per server frame type, plus connection `state` events;
 * - auto-reconnect with exponential backoff and jitter, honouring `reconnect {after_ms}`
 *   frames (drain) and the close-code rules of PROTOCOL.md §8;
 * - resume after a reconnect: `dm_since`, every joined room with `since`, every game
 *   (`game.join` / `game.watch` with `since`), the ranked queue, the `online.watch` and a
 *   `rename`; each cursor goes with its stream's `epoch` (`dm_epoch`), so a log that
 *   started again (`stream.reset`) is replayed from its start; frames are
 *   de-duplicated by `seq`, a gap (`recovered:false`) is reported as a `gap` event and a
 *   log that started again as a `reset` event;
 * - dead-connection detection: an application `ping` when nothing arrived for a while,
 *   and a reconnect when nothing answers it.
 *
 * Types live in switchboard.d.ts (and in the JSDoc below).
 *
 * @module switchboard
 */

/** Protocol version this module speaks. */
export const PROTOCOL_VERSION = 1;

/**
 * Error codes produced by the client itself (server codes are listed in PROTOCOL.md §8).
 * - `timeout`: no reply within the request timeout;
 * - `not_connected`: a request was made while the client is idle or closed;
 * - `disconnected`: the connection was lost before the reply came (the server may or may
 *   not have processed the request);
 * - `closed`: `close()` was called;
 * - `connect_failed`: the client gave up connecting (see `closed` state details);
 * - `protocol`: the server answered something this client did not expect.
 */
export const CLIENT_ERROR_CODES = Object.freeze([
  'timeout',
  'not_connected',
  'disconnected',
  'closed',
  'connect_failed',
  'protocol',
]);

/**
 * Close codes after which the client does not reconnect by itself (PROTOCOL.md §8).
 * 4001 is retried once with a fresh token when a `getToken` callback is configured; 4011
 * (token expired) is retried at once with `getToken`, and not at all with a fixed `token`
 * (call `refresh()` before the token's `exp` instead).
 */
export const NO_RETRY_CLOSE_CODES = Object.freeze([4001, 4003, 4005]);

/** An `error` frame from the gateway, or a client-side failure (see CLIENT_ERROR_CODES). */
export class SwitchboardError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{frame?: any, closeCode?: number, closeReason?: string, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message);
    this.name = 'SwitchboardError';
    /** @type {string} */
    this.code = code;
    /** The `error` frame, when the gateway sent one. */
    this.frame = extra.frame;
    /** The WebSocket close code, when the error ended a connection. */
    this.closeCode = extra.closeCode;
    this.closeReason = extra.closeReason;
    if (extra.cause !== undefined) this.cause = extra.cause;
  }
}

/**
 * Mint a token from a dev-mode gateway (`GET /dev/token`). Uses the global `fetch`.
 * @param {string} baseUrl e.g. `http://127.0.0.1:8080` (a `ws://…/ws` URL works too)
 * @param {string} user
 * @param {string} [name]
 * @returns {Promise<string>}
 */
export async function fetchDevToken(baseUrl, user, name) {
  const base = httpBase(baseUrl);
  const q = new URLSearchParams({ user });
  if (name !== undefined) q.set('name', name);
  const res = await fetch(`${base}/dev/token?${q}`);
  const text = await res.text();
  if (!res.ok) {
    let code = 'unavailable';
    let message = text;
    try {
      const body = JSON.parse(text);
      code = body.code ?? code;
      message = body.message ?? message;
    } catch {
      /* not JSON */
    }
    throw new SwitchboardError(code, `dev token: HTTP ${res.status}: ${message}`);
  }
  return text.trim();
}

/**
 * `ws://host:port/ws` → `http://host:port`; `http(s)://…` is kept (path dropped).
 * @param {string} url
 */
export function httpBase(url) {
  const u = new URL(url);
  const proto = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return `${proto}//${u.host}`;
}

/** Default WebSocket URL in a browser page served by the gateway: `ws(s)://<host>/ws`. */
function defaultUrl() {
  const loc = /** @type {any} */ (globalThis).location;
  if (loc && loc.host) return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
  return undefined;
}

/** Seen-seq bookkeeping for one stream (a room, a game, the DM inbox). */
class SeqTracker {
  /** @param {number|null} [max] */
  constructor(max = null) {
    /** Highest seq delivered (the resume cursor), or null if none is known. */
    this.max = max;
    /** Recently delivered or skipped seqs, for duplicate detection. */
    this.seen = new Set();
  }
  /** @param {number} seq */
  mark(seq) {
    this.seen.add(seq);
    if (this.seen.size > 1024) {
      const first = this.seen.values().next().value;
      this.seen.delete(first);
    }
  }
  /**
   * Records a delivered seq; false if it was delivered (or skipped) before.
   * @param {number} seq
   */
  accept(seq) {
    if (typeof seq !== 'number') return true;
    if (this.seen.has(seq)) return false;
    this.mark(seq);
    if (this.max === null || seq > this.max) this.max = seq;
    return true;
  }
  /** @param {number|null} [max] */
  reset(max = null) {
    this.max = max;
    this.seen.clear();
  }
}

const STATES = /** @type {const} */ (['idle', 'connecting', 'open', 'reconnecting', 'closed']);

/**
 * Resolve after `ms`, or earlier when `wake()` is called on the returned handle.
 * @param {number} ms
 */
function sleeper(ms) {
  /** @type {() => void} */
  let wake = () => {};
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  const promise = new Promise((resolve) => {
    timer = setTimeout(resolve, ms);
    wake = () => {
      clearTimeout(timer);
      resolve(undefined);
    };
  });
  return { promise, wake: () => wake() };
}

/**
 * @typedef {object} ReconnectOptions
 * @property {number} [minMs=500] first back-off delay
 * @property {number} [maxMs=30000] longest back-off delay
 * @property {number} [factor=2] growth per failed attempt
 * @property {number} [jitter=0.5] 0…1: each delay is reduced by up to this fraction at random
 * @property {number} [maxAttempts=Infinity] consecutive failed attempts before giving up
 */

/**
 * @typedef {object} HeartbeatOptions
 * @property {number} [intervalMs] send an application `ping` after this long without any
 *   inbound frame (default: the server's `heartbeat_s` from `welcome`)
 * @property {number} [timeoutMs=10000] declare the connection dead when nothing at all
 *   arrived within this long after that `ping`, and reconnect
 */

/**
 * @typedef {object} UrlContext
 * @property {number} attempt 0 for the first connection, then 1, 2, … per reconnect try
 * @property {string|undefined} previousUrl the URL of the last connection attempt
 * @property {string} reason `initial`, `drain`, `closed`, `error`, `heartbeat`, `login`
 * @property {number|undefined} closeCode the close code that ended the last connection
 */

/**
 * @typedef {object} ClientOptions
 * @property {string | string[] | ((ctx: UrlContext) => string | Promise<string>)} [url]
 *   WebSocket URL (`ws://host:8080/ws`). A list is tried in turn: each reconnect moves to
 *   the next entry (so a drained replica is left for another). A function is called before
 *   every attempt. Default in a browser page: `ws(s)://<page host>/ws`.
 * @property {string} [token] a JWT
 * @property {(ctx: {attempt: number, reason: string, url: string}) => string | Promise<string>} [getToken]
 *   called before every connection attempt (fresh token for each reconnect), with the URL
 *   about to be used
 * @property {any} [WebSocket] a WebSocket constructor (e.g. the `ws` package in Node 20);
 *   default `globalThis.WebSocket`
 * @property {ReconnectOptions | false} [reconnect] `false` disables reconnecting
 * @property {HeartbeatOptions | false} [heartbeat] `false` disables dead-connection detection
 * @property {number} [requestTimeoutMs=10000] default timeout of every request
 * @property {number} [connectTimeoutMs=10000] time for the socket to open and `welcome` to arrive
 * @property {number} [dmSince] last DM seq this device saw in an earlier run (sent as
 *   `dm_since` on the first login); later logins use the last DM seq received
 * @property {string} [dmEpoch] the epoch `dmSince` belongs to (`client.epochs.dm` of that
 *   run; sent as `dm_epoch`)
 * @property {boolean} [resume=true] re-join rooms and games, re-queue, re-apply `rename`
 *   after a reconnect
 * @property {(msg: string, detail?: any) => void} [debug] log hook
 */

/**
 * A Switchboard connection that survives reconnects.
 *
 * Events (`on(type, handler)` returns an unsubscribe function):
 * - every server frame type (`message`, `direct`, `broadcast`, `member.joined`,
 *   `member.left`, `member.renamed`, `online.changes`, `game.started`, `game.message`, `game.closed`,
 *   `rank.matched`, `welcome`, `reconnect`, …): handler(frame, info). Replies to this
 *   client's requests (`ok`, `error`, `presence`, `who`, `pong`, `game.created`,
 *   `rank.queued` with a known `id`) settle the request's promise instead; uncorrelated
 *   `error` frames (e.g. `rate_limited`) are emitted as `error`.
 * - `frame`: every frame received, before any processing.
 * - `state`: {state, previous, …} on every change; also emitted under the state's own name
 *   (`connecting`, `open`, `reconnecting`, `closed`).
 * - `resume`: {kind:'room'|'game', room, since, recovered, replayed} after each re-join.
 * - `gap`: {kind:'room'|'game'|'dm', room?, since, replayed?} when the gateway could not
 *   fill a gap (`recovered:false`, or a DM seq lower than `dm_since`); also right after
 *   every `reset`, as {kind, room?, since, reset: true, epoch}.
 * - `reset`: {kind:'room'|'game'|'dm', room?, epoch, previousEpoch, since} when a stream's
 *   log started again under a new epoch (`stream.reset`, e.g. Redis restarted empty): its
 *   cursor starts over at seq 0 of `epoch`, the messages that follow (a replay of the new
 *   log, or live ones) have low seqs again and are delivered, and messages of the old log
 *   this client had not received may be lost. `since` is the old cursor.
 * - `resume.failed`: {kind, room?, error} when a room, game, ranked queue entry or online
 *   watch could not be resumed (it is then no longer tracked).
 */
export class SwitchboardClient {
  /** @param {ClientOptions} [options] */
  constructor(options = {}) {
    const url = options.url ?? defaultUrl();
    if (!url) throw new TypeError('SwitchboardClient: `url` is required outside a browser page');
    if (options.token === undefined && typeof options.getToken !== 'function') {
      throw new TypeError('SwitchboardClient: give `token` or `getToken`');
    }
    const WS = options.WebSocket ?? /** @type {any} */ (globalThis).WebSocket;
    if (typeof WS !== 'function') {
      throw new TypeError(
        'SwitchboardClient: no WebSocket implementation; pass { WebSocket } (e.g. the `ws` package in Node 20)',
      );
    }
    this._WS = WS;
    this._url = url;
    this._token = options.token;
    this._getToken = options.getToken;
    this._reconnect =
      options.reconnect === false
        ? null
        : {
            minMs: 500,
            maxMs: 30000,
            factor: 2,
            jitter: 0.5,
            maxAttempts: Infinity,
            ...(options.reconnect ?? {}),
          };
    this._heartbeat =
      options.heartbeat === false ? null : { intervalMs: undefined, timeoutMs: 10000, ...(options.heartbeat ?? {}) };
    this.requestTimeoutMs = options.requestTimeoutMs ?? 10000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10000;
    this._resumeEnabled = options.resume !== false;
    this._debug = options.debug;
    this._initialDmSince = options.dmSince;
    this._initialDmEpoch = options.dmEpoch;

    /** @type {Map<string, Set<Function>>} */
    this._handlers = new Map();
    /** @type {(typeof STATES)[number]} */
    this._state = 'idle';
    this._nextId = 1;
    this._runId = 0;
    this._closedByUser = false;
    this._urlIndex = 0;
    this._resetSession();
    /** @type {((w: any) => void) | undefined} */
    this._connectResolve = undefined;
    /** @type {((e: any) => void) | undefined} */
    this._connectReject = undefined;
    /** @type {(() => void) | undefined} */
    this._wakeSleep = undefined;
    /** @type {(() => void) | undefined} */
    this._onlineListener = undefined;
  }

  // ---------------------------------------------------------------- public state

  /** Connection state: `idle`, `connecting`, `open`, `reconnecting` or `closed`. */
  get state() {
    return this._state;
  }
  /** The last `welcome` frame, or null before the first login. */
  get welcome() {
    return this._welcome;
  }
  /** The logged-in user id (from `welcome`). */
  get user() {
    return this._welcome?.user ?? null;
  }
  /** The display name: from `welcome`, or the last successful `rename`. */
  get name() {
    return this._renamed ?? this._welcome?.name ?? null;
  }
  /** The URL of the current (or last) connection. */
  get url() {
    return this._currentUrl ?? null;
  }
  /** Rooms this client is in (re-joined after every reconnect). */
  get rooms() {
    return [...this._rooms.values()].filter((r) => r.joined).map((r) => r.room);
  }
  /** Games this client plays or watches: [{room, role}]. */
  get games() {
    return [...this._games.values()].filter((g) => g.joined).map((g) => ({ room: g.room, role: g.role }));
  }
  /** The current `online.watch` (`{all: true}` or `{users}`), or null. */
  get onlineWatching() {
    const w = this._onlineWatch;
    return w && 'users' in w ? { users: [...w.users] } : w;
  }
  /** Whether this client put its user in the ranked queue and no match came yet. */
  get rankQueued() {
    return this._rankQueued;
  }
  /**
   * Resume cursors: the highest seq seen per stream. Persist them (e.g. localStorage) to
   * resume across page reloads: `dm` is accepted back as the `dmSince` option.
   */
  get cursors() {
    /** @type {{dm: number|null, rooms: Record<string, number|null>, games: Record<string, number|null>}} */
    const c = { dm: this._dm.max, rooms: {}, games: {} };
    for (const r of this._rooms.values()) if (r.joined) c.rooms[r.room] = r.tracker.max;
    for (const g of this._games.values()) if (g.joined) c.games[g.room] = g.tracker.max;
    return c;
  }
  /**
   * The epoch of each stream's cursor (from `ok` replies, `welcome` and `stream.reset`),
   * null where the gateway sent none. Persist them with `cursors`: `dm` is accepted back
   * as the `dmEpoch` option, a room's as `join(room, {since, epoch})`.
   */
  get epochs() {
    /** @type {{dm: string|null, rooms: Record<string, string|null>, games: Record<string, string|null>}} */
    const e = { dm: this._dmEpoch, rooms: {}, games: {} };
    for (const r of this._rooms.values()) if (r.joined) e.rooms[r.room] = r.epoch;
    for (const g of this._games.values()) if (g.joined) e.games[g.room] = g.epoch;
    return e;
  }
  /** Counters: frames in/out, duplicates dropped, reconnects. */
  get stats() {
    return { ...this._stats };
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribe to an event; returns the unsubscribe function.
   * @param {string} type a server frame type, `frame`, `state`, a state name, `resume`,
   *   `gap`, `reset` or `resume.failed`
   * @param {(payload: any, info?: any) => void} handler
   * @returns {() => void}
   */
  on(type, handler) {
    let set = this._handlers.get(type);
    if (!set) this._handlers.set(type, (set = new Set()));
    // Wrap so the same function can be subscribed twice and removed independently.
    const entry = (/** @type {any} */ p, /** @type {any} */ i) => handler(p, i);
    set.add(entry);
    return () => {
      set.delete(entry);
    };
  }

  /**
   * Subscribe for one event only; returns the unsubscribe function.
   * @param {string} type
   * @param {(payload: any, info?: any) => void} handler
   */
  once(type, handler) {
    const off = this.on(type, (p, i) => {
      off();
      handler(p, i);
    });
    return off;
  }

  /**
   * Wait for the next event of a type that passes `filter`.
   * @param {string} type
   * @param {{filter?: (payload: any, info?: any) => boolean, timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  waitFor(type, opts = {}) {
    const { filter, timeoutMs = this.requestTimeoutMs } = opts;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new SwitchboardError('timeout', `no ${type} event within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on(type, (p, i) => {
        let pass = true;
        try {
          pass = filter ? filter(p, i) : true;
        } catch (e) {
          clearTimeout(timer);
          off();
          reject(e);
          return;
        }
        if (pass) {
          clearTimeout(timer);
          off();
          resolve(p);
        }
      });
    });
  }

  /**
   * @param {string} type
   * @param {any} payload
   * @param {any} [info]
   */
  _emit(type, payload, info) {
    const set = this._handlers.get(type);
    if (!set || set.size === 0) return;
    for (const h of [...set]) {
      try {
        h(payload, info);
      } catch (err) {
        const report = /** @type {any} */ (globalThis).reportError;
        if (typeof report === 'function') report(err);
        else console.error('switchboard: event handler threw', err);
      }
    }
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Connect and log in. Resolves with the first `welcome`. Transient failures are retried
   * (see `reconnect`); the promise rejects when the client gives up (a no-retry close code,
   * `maxAttempts`, or `close()`). Calling it again while connecting or open returns the
   * same promise.
   * @returns {Promise<any>}
   */
  connect() {
    if (this._connectPromise && this._state !== 'closed') return this._connectPromise;
    this._closedByUser = false;
    const runId = ++this._runId;
    this._connectPromise = new Promise((resolve, reject) => {
      this._connectResolve = resolve;
      this._connectReject = reject;
    });
    // The caller may ignore the promise and use events; do not leave it unhandled.
    this._connectPromise.catch(() => {});
    this._installOnlineListener();
    void this._run(runId);
    return this._connectPromise;
  }

  /**
   * Close the connection for good (code 1000) and stop reconnecting. Pending requests are
   * rejected with `closed`. Tracked rooms and games are forgotten; a later `connect()`
   * starts a fresh session.
   */
  close() {
    this._closedByUser = true;
    this._runId++;
    this._wakeSleep?.();
    const conn = this._conn;
    if (conn) this._dropConn(conn, 1000, 'bye', { byUser: true });
    this._rejectAll(new SwitchboardError('closed', 'client closed'));
    this._removeOnlineListener();
    if (this._state !== 'closed' && this._state !== 'idle') {
      this._setState('closed', { reason: 'client closed' });
    }
    this._settleConnect(new SwitchboardError('closed', 'client closed'));
    // An intentional end: forget the session (a later connect() starts afresh).
    this._resetSession();
  }

  /**
   * Drop the current connection now and reconnect at once (e.g. after the app noticed a
   * network change), or cut short a back-off wait.
   */
  reconnectNow() {
    const conn = this._conn;
    if (conn) this._dropConn(conn, 4000, 'client reconnect', { reason: 'manual' });
    else this._wakeSleep?.();
  }

  /** Session state: set up by the constructor, cleared when a session ends for good. */
  _resetSession() {
    /** @type {any} */
    this._welcome = null;
    /** @type {Map<string, RoomState>} */
    this._rooms = new Map();
    /** @type {Map<string, GameState>} */
    this._games = new Map();
    this._dm = new SeqTracker(this._initialDmSince ?? null);
    /** @type {string|null} epoch of the DM cursor */
    this._dmEpoch = this._initialDmSince !== undefined ? (this._initialDmEpoch ?? null) : null;
    this._rankQueued = false;
    /** @type {{all: true} | {users: string[]} | null} the `online.watch` to re-send on resume */
    this._onlineWatch = null;
    /** @type {string|null} */
    this._renamed = null;
    /** @type {Map<any, Pending>} */
    this._pending = new Map();
    /** @type {Pending[]} */
    this._queue = [];
    this._stats = { framesIn: 0, framesOut: 0, duplicatesDropped: 0, reconnects: 0, connections: 0 };
    /** @type {Conn|null} */
    this._conn = null;
    /** @type {string|undefined} */
    this._currentUrl = undefined;
    /** @type {Promise<any>|undefined} */
    this._connectPromise = undefined;
    this._everOpen = false;
  }

  /**
   * @param {(typeof STATES)[number]} state
   * @param {object} [detail]
   */
  _setState(state, detail = {}) {
    const previous = this._state;
    this._state = state;
    const ev = { state, previous, ...detail };
    this._log(`state ${previous} -> ${state}`, detail);
    this._emit('state', ev);
    this._emit(state, ev);
  }

  /** @param {string} msg @param {any} [detail] */
  _log(msg, detail) {
    if (this._debug) this._debug(msg, detail);
  }

  /** @param {any} [err] @param {any} [welcome] */
  _settleConnect(err, welcome) {
    const resolve = this._connectResolve;
    const reject = this._connectReject;
    this._connectResolve = this._connectReject = undefined;
    if (err) reject?.(err);
    else resolve?.(welcome);
  }

  _installOnlineListener() {
    const g = /** @type {any} */ (globalThis);
    if (this._onlineListener || typeof g.addEventListener !== 'function' || typeof g.window !== 'object') return;
    this._onlineListener = () => this._wakeSleep?.();
    g.addEventListener('online', this._onlineListener);
  }

  _removeOnlineListener() {
    const g = /** @type {any} */ (globalThis);
    if (this._onlineListener && typeof g.removeEventListener === 'function') {
      g.removeEventListener('online', this._onlineListener);
    }
    this._onlineListener = undefined;
  }

  /**
   * The connect / reconnect loop. One runs per `connect()`.
   * @param {number} runId
   */
  async _run(runId) {
    let attempt = 0; // consecutive failures
    let authFailures = 0;
    /** @type {UrlContext} */
    let ctx = { attempt: 0, previousUrl: undefined, reason: 'initial', closeCode: undefined };
    this._setState(this._everOpen ? 'reconnecting' : 'connecting', { attempt: 0 });
    const stale = () => this._closedByUser || runId !== this._runId;
    for (;;) {
      if (stale()) return;
      /** @type {{code?: number, reason?: string, error?: any, drainAfterMs?: number, why: string, opened?: boolean, stable?: boolean, fatal?: boolean}} */
      let outcome;
      try {
        const url = await this._pickUrl(ctx);
        const token = await this._pickToken(ctx, url);
        if (stale()) return;
        outcome = await this._session(url, token);
      } catch (err) {
        outcome = { error: err, why: 'error' };
      }
      if (stale()) return;
      // A connection that held for a while resets the back-off; one that is closed right
      // after its welcome does not (no tight loop against a failing server).
      if (outcome.stable) {
        attempt = 0;
        authFailures = 0;
      }
      attempt += 1;
      const code = outcome.code;
      if (code === 4001) authFailures += 1;

      // Decide whether and when to try again (PROTOCOL.md §8).
      let retry = !!this._reconnect && !outcome.fatal;
      if (code === 4003 || code === 4005) retry = false;
      if (code === 4001 && (!this._getToken || authFailures > 1)) retry = false;
      if (code === 4011 && !this._getToken) retry = false;
      if (this._reconnect && attempt >= this._reconnect.maxAttempts) retry = false;
      if (!retry) {
        const loginErr = outcome.error instanceof SwitchboardError && outcome.error.frame ? outcome.error : undefined;
        const err =
          loginErr ??
          new SwitchboardError(
            'connect_failed',
            `gave up: ${outcome.error?.message ?? `connection closed (${code ?? 'no close code'}${outcome.reason ? ` ${outcome.reason}` : ''})`}`,
            { closeCode: code, closeReason: outcome.reason, cause: outcome.error },
          );
        if (err.closeCode === undefined && code !== undefined) {
          err.closeCode = code;
          err.closeReason = outcome.reason;
        }
        this._rejectAll(new SwitchboardError('disconnected', 'connection closed'));
        this._removeOnlineListener();
        this._setState('closed', { closeCode: code, closeReason: outcome.reason, error: err });
        this._settleConnect(err);
        return;
      }
      let delay;
      if (outcome.drainAfterMs !== undefined) delay = outcome.drainAfterMs;
      else if (outcome.why === 'manual') delay = 0;
      else if ((code === 4002 || code === 4010 || code === 4011 || code === 1000) && attempt === 1) delay = 0;
      else delay = this._backoff(attempt);
      ctx = {
        attempt,
        previousUrl: this._currentUrl,
        reason: outcome.drainAfterMs !== undefined || code === 1012 ? 'drain' : outcome.why,
        closeCode: code,
      };
      this._stats.reconnects += 1;
      this._setState(this._everOpen ? 'reconnecting' : 'connecting', {
        attempt,
        delayMs: delay,
        closeCode: code,
        closeReason: outcome.reason,
        error: outcome.error,
      });
      // Requests in flight on the dead connection cannot be answered any more.
      this._rejectPending(new SwitchboardError('disconnected', 'connection lost before the reply', { closeCode: code }));
      const s = sleeper(delay);
      this._wakeSleep = s.wake;
      await s.promise;
      this._wakeSleep = undefined;
    }
  }

  /** How long a connection must last to reset the back-off. */
  static STABLE_MS = 2000;

  /** @param {number} attempt */
  _backoff(attempt) {
    const r = /** @type {Required<ReconnectOptions>} */ (this._reconnect);
    const base = Math.min(r.maxMs, r.minMs * Math.pow(r.factor, Math.max(0, attempt - 1)));
    const jitter = Math.min(1, Math.max(0, r.jitter));
    return Math.round(base * (1 - jitter * Math.random()));
  }

  /** @param {UrlContext} ctx */
  async _pickUrl(ctx) {
    const u = this._url;
    if (typeof u === 'function') return await u(ctx);
    if (Array.isArray(u)) {
      if (u.length === 0) throw new TypeError('SwitchboardClient: empty url list');
      if (ctx.attempt > 0) this._urlIndex = (this._urlIndex + 1) % u.length;
      return u[this._urlIndex];
    }
    return u;
  }

  /**
   * @param {UrlContext} ctx
   * @param {string} url
   */
  async _pickToken(ctx, url) {
    if (!this._getToken) return /** @type {string} */ (this._token);
    /** @type {ReturnType<typeof setTimeout> | undefined} */
    let timer;
    const limit = new Promise((_, reject) => {
      timer = setTimeout(
        () => reject(new SwitchboardError('timeout', `getToken took longer than ${this.connectTimeoutMs} ms`)),
        this.connectTimeoutMs,
      );
    });
    try {
      const token = await Promise.race([this._getToken({ attempt: ctx.attempt, reason: ctx.reason, url }), limit]);
      if (typeof token !== 'string' || token === '') throw new TypeError('getToken must return a non-empty string');
      return token;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One connection from open to close. Resolves with how it ended.
   * @param {string} url
   * @param {string} token
   */
  async _session(url, token) {
    this._currentUrl = url;
    this._stats.connections += 1;
    /** @type {Conn} */
    let conn;
    try {
      conn = this._openConn(url);
    } catch (err) {
      // A malformed URL: retrying cannot help.
      return { error: err, why: 'error', fatal: true };
    }
    try {
      const welcome = await this._login(conn, token);
      this._welcome = welcome;
      this._emit('welcome', welcome);
      if (this._everOpen && this._resumeEnabled) await this._resume(conn);
      if (conn.ended) return await conn.closed;
      const resumed = this._everOpen;
      this._everOpen = true;
      conn.opened = true;
      conn.openedAt = Date.now();
      this._startHeartbeat(conn);
      this._setState('open', { welcome, url, resumed });
      this._settleConnect(undefined, welcome);
      this._flushQueue(conn);
    } catch (err) {
      if (!conn.ended) {
        // A login error is followed by the server's close; give it a moment to arrive.
        const closeSoon = setTimeout(() => this._dropConn(conn, 4000, 'login failed', { reason: 'login' }), 1000);
        const res = await conn.closed;
        clearTimeout(closeSoon);
        return { ...res, error: err, opened: false };
      }
      const res = await conn.closed;
      return { ...res, error: err, opened: false };
    }
    const res = await conn.closed;
    return { ...res, opened: true, stable: Date.now() - (conn.openedAt ?? 0) >= SwitchboardClient.STABLE_MS };
  }

  /**
   * @param {string} url
   * @returns {Conn}
   */
  _openConn(url) {
    /** @type {any} */
    const ws = new this._WS(url);
    try {
      ws.binaryType = 'arraybuffer';
    } catch {
      /* not settable */
    }
    /** @type {(v: any) => void} */
    let resolveClosed = () => {};
    /** @type {Conn} */
    const conn = {
      ws,
      url,
      ended: false,
      opened: false,
      lastRx: Date.now(),
      closed: new Promise((r) => (resolveClosed = r)),
      finish: (/** @type {any} */ info) => {
        if (conn.ended) return;
        conn.ended = true;
        if (conn.heartbeatTimer) clearInterval(conn.heartbeatTimer);
        if (conn.drainTimer) clearTimeout(conn.drainTimer);
        if (this._conn === conn) this._conn = null;
        ws.onopen = ws.onmessage = ws.onclose = null;
        // `ws` (Node) may still report an aborted handshake: keep a listener so it is not
        // an unhandled 'error' event.
        ws.onerror = () => {};
        resolveClosed(info);
      },
      drainAfterMs: undefined,
      drainAt: 0,
      openWaiter: undefined,
      loginWaiter: undefined,
      dmSinceSent: undefined,
      dmEpochSent: undefined,
      dmFirst: true,
    };
    this._conn = conn;
    ws.onopen = () => conn.openWaiter?.resolve();
    ws.onerror = (/** @type {any} */ ev) => {
      conn.lastError = ev?.error ?? ev?.message ?? ev;
    };
    ws.onclose = (/** @type {any} */ ev) => {
      const code = ev?.code;
      const reason = ev?.reason;
      /** @type {any} */
      const info = { code, reason, why: 'closed' };
      if (conn.drainAfterMs !== undefined || code === 1012) {
        info.why = 'drain';
        if (conn.drainAfterMs !== undefined) {
          info.drainAfterMs = Math.max(0, conn.drainAt + conn.drainAfterMs - Date.now());
        }
      }
      const err =
        conn.loginError ??
        new SwitchboardError('disconnected', `connection closed (${code}${reason ? ` ${reason}` : ''})`, {
          closeCode: code,
          closeReason: reason,
          cause: conn.lastError,
        });
      if (conn.loginError && conn.loginError.closeCode === undefined) {
        conn.loginError.closeCode = code;
        conn.loginError.closeReason = reason;
      }
      conn.openWaiter?.reject(err);
      conn.loginWaiter?.reject(err);
      conn.finish(info);
    };
    ws.onmessage = (/** @type {any} */ ev) => this._onRaw(conn, ev.data);
    return conn;
  }

  /**
   * Abandon a connection without waiting for the close handshake.
   * @param {Conn} conn
   * @param {number} code
   * @param {string} reason
   * @param {{byUser?: boolean, reason?: string, immediate?: boolean}} [opts]
   */
  _dropConn(conn, code, reason, opts = {}) {
    if (conn.ended) return;
    const ws = conn.ws;
    try {
      if (typeof ws.terminate === 'function' && !opts.byUser) ws.terminate();
      else ws.close(code, reason);
      if (opts.byUser && typeof ws.terminate === 'function') {
        // Node (`ws`): do not keep the process alive waiting for the close handshake.
        const t = setTimeout(() => {
          if (ws.readyState !== 3) ws.terminate();
        }, 1000);
        /** @type {any} */ (t).unref?.();
      }
    } catch {
      try {
        ws.close();
      } catch {
        /* already closed */
      }
    }
    const err = new SwitchboardError(opts.byUser ? 'closed' : 'disconnected', reason, { closeCode: code });
    conn.openWaiter?.reject(err);
    conn.loginWaiter?.reject(err);
    conn.finish({ code, reason, why: opts.reason ?? 'closed', byUser: !!opts.byUser });
  }

  /**
   * Wait for the socket to open, send `login`, wait for `welcome`.
   * @param {Conn} conn
   * @param {string} token
   */
  async _login(conn, token) {
    const deadline = setTimeout(
      () => this._dropConn(conn, 4000, 'connect timeout', { reason: 'error' }),
      this.connectTimeoutMs,
    );
    try {
      await new Promise((resolve, reject) => {
        conn.openWaiter = { resolve, reject };
        if (conn.ws.readyState === 1) resolve(undefined);
      });
      conn.openWaiter = undefined;
      const id = this._nextId++;
      /** @type {any} */
      const login = { type: 'login', token, id };
      const dmSince = this._dm.max;
      if (dmSince !== null && dmSince !== undefined) {
        login.dm_since = dmSince;
        if (this._dmEpoch) login.dm_epoch = this._dmEpoch;
      }
      conn.dmSinceSent = login.dm_since;
      conn.dmEpochSent = login.dm_epoch;
      conn.dmFirst = true;
      conn.loginId = id;
      const welcome = await new Promise((resolve, reject) => {
        conn.loginWaiter = { resolve, reject };
        this._write(conn, login);
      });
      conn.loginWaiter = undefined;
      return welcome;
    } finally {
      clearTimeout(deadline);
    }
  }

  /**
   * Re-apply the rename, re-join rooms and games, re-queue, after a reconnect. At most
   * RESUME_CONCURRENCY requests are in flight, well inside the gateway's rate burst.
   * @param {Conn} conn
   */
  async _resume(conn) {
    if (this._renamed && this._welcome?.name !== this._renamed) {
      const name = this._renamed;
      // First, so that re-joins announce the current name.
      await this._request(conn, { type: 'rename', name }).catch((err) => {
        this._log('rename on resume failed', err);
      });
    }
    /** @type {(() => Promise<any>)[]} */
    const jobs = [];
    for (const st of [...this._rooms.values()]) {
      if (st.joined) jobs.push(() => this._resumeOne(conn, 'room', st));
    }
    for (const g of [...this._games.values()]) {
      if (g.joined) jobs.push(() => this._resumeOne(conn, 'game', g));
    }
    if (this._onlineWatch) {
      const watch = this._onlineWatch;
      jobs.push(() =>
        this._request(conn, { type: 'online.watch', ...watch }).catch((err) => {
          if (err?.code === 'disconnected' || conn.ended) return;
          this._onlineWatch = null;
          this._emit('resume.failed', { kind: 'online', error: err });
        }),
      );
    }
    if (this._rankQueued) {
      jobs.push(async () => {
        try {
          // A match made while we were away is replayed right after the welcome, before
          // any reply: after this round trip we know whether one came.
          await this._request(conn, { type: 'ping' });
          if (this._rankQueued) await this._request(conn, { type: 'rank.join' });
        } catch (err) {
          this._rankQueued = false;
          this._emit('resume.failed', { kind: 'rank', error: err });
        }
      });
    }
    let next = 0;
    const worker = async () => {
      while (next < jobs.length && !conn.ended) await jobs[next++]();
    };
    await Promise.all(Array.from({ length: Math.min(SwitchboardClient.RESUME_CONCURRENCY, jobs.length) }, worker));
  }

  /** Re-join requests in flight at once during a resume. */
  static RESUME_CONCURRENCY = 32;

  /**
   * @param {Conn} conn
   * @param {'room'|'game'} kind
   * @param {RoomState|GameState} st
   */
  async _resumeOne(conn, kind, st) {
    // A game seat stays held until the gateway notices the old session ended, and a
    // backend hiccup answers `unavailable`: both are worth a few more tries.
    for (let tryNo = 1; ; tryNo++) {
      if (conn.ended) return;
      const since = st.tracker.max ?? 0;
      /** @type {any} */
      const frame =
        kind === 'room'
          ? { type: 'join', room: st.room, since }
          : { type: /** @type {GameState} */ (st).role === 'watcher' ? 'game.watch' : 'game.join', room: st.room, since };
      if (st.epoch) frame.epoch = st.epoch;
      try {
        st.pending = { since, reset: false };
        const ok = await this._request(conn, frame);
        this._onJoinOk(kind, st, since, ok);
        this._emit('resume', { kind, room: st.room, since, recovered: ok.recovered, replayed: ok.replayed });
        return;
      } catch (err) {
        st.pending = null;
        st.held = [];
        const code = /** @type {any} */ (err)?.code;
        if (code === 'disconnected' || code === 'closed' || conn.ended) return; // next reconnect tries again
        const retriable = code === 'unavailable' || code === 'timeout' || (kind === 'game' && code === 'conflict');
        if (retriable && tryNo < 5) {
          await new Promise((r) => setTimeout(r, 250 * tryNo));
          continue;
        }
        if (kind === 'room') this._rooms.delete(st.room);
        else this._games.delete(st.room);
        this._emit('resume.failed', { kind, room: st.room, error: err });
        return;
      }
    }
  }

  // ---------------------------------------------------------------- inbound

  /**
   * @param {Conn} conn
   * @param {any} data
   */
  _onRaw(conn, data) {
    if (conn.ended) return;
    conn.lastRx = Date.now();
    let text = data;
    if (typeof text !== 'string') {
      try {
        text = new TextDecoder().decode(data);
      } catch {
        return;
      }
    }
    /** @type {any} */
    let f;
    try {
      f = JSON.parse(text);
    } catch {
      this._log('unparsable frame', text);
      return;
    }
    if (!f || typeof f !== 'object' || typeof f.type !== 'string') return;
    this._stats.framesIn += 1;
    this._emit('frame', f);
    this._onFrame(conn, f);
  }

  /**
   * @param {Conn} conn
   * @param {any} f
   */
  _onFrame(conn, f) {
    // Login phase: `welcome` or the `error` that refuses the login.
    if (conn.loginWaiter) {
      if (f.type === 'welcome') {
        this._onWelcome(conn, f);
        conn.loginWaiter.resolve(f);
        conn.loginWaiter = undefined;
        return;
      }
      if (f.type === 'error') {
        const err = new SwitchboardError(f.code, f.message, { frame: f });
        conn.loginError = err;
        conn.loginWaiter.reject(err);
        conn.loginWaiter = undefined;
        return;
      }
      if (f.type === 'reconnect') {
        conn.drainAfterMs = typeof f.after_ms === 'number' ? f.after_ms : 0;
        conn.drainAt = Date.now();
        this._emit('reconnect', f);
        return;
      }
    }

    // Replies to requests.
    if (f.id !== undefined && this._pending.has(f.id)) {
      const p = /** @type {Pending} */ (this._pending.get(f.id));
      this._pending.delete(f.id);
      clearTimeout(p.timer);
      if (f.type === 'error') p.reject(new SwitchboardError(f.code, f.message, { frame: f }));
      else p.resolve(f);
      return;
    }

    switch (f.type) {
      case 'message':
        return this._onStreamMessage('room', f);
      case 'game.message':
        return this._onStreamMessage('game', f);
      case 'direct':
        return this._onDirect(conn, f);
      case 'stream.reset':
        this._emit(f.type, f);
        return this._onStreamReset(conn, f);
      case 'game.closed': {
        this._games.delete(f.room);
        this._emit(f.type, f);
        return;
      }
      case 'rank.matched':
        // Logged in the user's stream with the DMs (same seqs): replayed at login.
        return this._onDirect(conn, f);
      case 'rank.timeout':
        this._rankQueued = false;
        this._emit(f.type, f);
        return;
      case 'reconnect': {
        // Drain: a close 1012 follows; reconnect after `after_ms` (§9).
        const afterMs = typeof f.after_ms === 'number' ? f.after_ms : 0;
        conn.drainAfterMs = afterMs;
        conn.drainAt = Date.now();
        this._emit(f.type, f);
        // If the close does not come, leave anyway once the wait is over.
        if (conn.drainTimer) clearTimeout(conn.drainTimer);
        conn.drainTimer = setTimeout(() => this._dropConn(conn, 4000, 'drain', { reason: 'drain' }), afterMs + 5000);
        return;
      }
      case 'ping':
        // TCP-style heartbeat; harmless to answer on WebSocket too.
        this._write(conn, { type: 'pong' });
        this._emit(f.type, f);
        return;
      default:
        this._emit(f.type, f);
    }
  }

  /**
   * Room `message` or `game.message`: dedupe by seq, hold frames that may be duplicates
   * while a `since` join is in flight.
   * @param {'room'|'game'} kind
   * @param {any} f
   */
  _onStreamMessage(kind, f) {
    const st = kind === 'room' ? this._rooms.get(f.room) : this._games.get(f.room);
    const type = kind === 'room' ? 'message' : 'game.message';
    if (!st) {
      this._emit(type, f, { replay: false });
      return;
    }
    if (st.pending && typeof f.seq === 'number' && f.seq <= st.pending.since) {
      // At or below the cursor we sent: either a duplicate or, if the gateway's seqs
      // restarted, a new message. The join's `ok` decides (`_onJoinOk`).
      st.held.push(f);
      return;
    }
    if (!st.tracker.accept(f.seq)) {
      this._stats.duplicatesDropped += 1;
      return;
    }
    this._emit(type, f, { replay: !!st.pending });
  }

  /**
   * A frame of the user's logged stream: `direct` or `rank.matched` (one seq space).
   * @param {Conn} conn
   * @param {any} f
   */
  _onDirect(conn, f) {
    if (typeof f.seq === 'number') {
      if (conn.dmFirst) {
        conn.dmFirst = false;
        if (conn.dmSinceSent !== undefined && f.seq <= conn.dmSinceSent) {
          // The gateway's DM seqs restarted and it did not say so with a `stream.reset`
          // (a gateway without epochs, e.g. a single-node restart): §5 clamp.
          this._dm.reset(null);
          this._emit('gap', { kind: 'dm', since: conn.dmSinceSent, seq: f.seq });
        }
      }
      if (!this._dm.accept(f.seq)) {
        this._stats.duplicatesDropped += 1;
        return;
      }
    }
    if (f.type === 'rank.matched') this._rankQueued = false;
    this._emit(f.type, f);
  }

  /**
   * `welcome`: learn the DM log's epoch. When this login sent `dm_epoch`, a different
   * epoch is announced by the `stream.reset` that follows.
   * @param {Conn} conn
   * @param {any} w
   */
  _onWelcome(conn, w) {
    const epoch = w.dm_epoch;
    if (typeof epoch !== 'string' || !epoch) return;
    if (conn.dmEpochSent !== undefined) {
      // An epoch-aware gateway says `stream.reset` when the DM seqs restart.
      conn.dmFirst = false;
      return;
    }
    this._dmEpoch = epoch;
  }

  /**
   * `stream.reset`: the stream's log started again under a new epoch. Its cursor starts
   * over at seq 0, so the lower seqs that follow (a replay or live frames) are delivered.
   * @param {Conn} conn
   * @param {any} f
   */
  _onStreamReset(conn, f) {
    const epoch = typeof f.epoch === 'string' ? f.epoch : null;
    if (f.stream === 'dm') {
      conn.dmFirst = false; // announced: no need to guess from the first DM's seq
      const since = this._dm.max ?? 0;
      const previousEpoch = conn.dmEpochSent ?? this._dmEpoch;
      conn.dmEpochSent = undefined;
      this._dm.reset(0);
      this._dmEpoch = epoch;
      this._emit('reset', { kind: 'dm', epoch, previousEpoch, since });
      this._emit('gap', { kind: 'dm', since, reset: true, epoch });
      return;
    }
    const kind = f.stream === 'game' ? 'game' : 'room';
    const st = kind === 'room' ? this._rooms.get(f.room) : this._games.get(f.room);
    if (!st) {
      this._emit('reset', { kind, room: f.room, epoch, previousEpoch: null, since: 0 });
      return;
    }
    this._resetStream(kind, st, epoch);
  }

  /**
   * Starts a room's or game's cursor over at seq 0 of `epoch`; emits `reset` and `gap`.
   * @param {'room'|'game'} kind
   * @param {RoomState|GameState} st
   * @param {string|null} epoch
   */
  _resetStream(kind, st, epoch) {
    const pending = st.pending;
    const since = pending ? pending.since : (st.tracker.max ?? 0);
    const previousEpoch = st.epoch;
    st.tracker.reset(0);
    st.epoch = epoch;
    if (pending) {
      // A resume in flight: what was held is from the old log (at or below the cursor
      // sent: seen already); the replay that follows is the new log from seq 1.
      this._stats.duplicatesDropped += st.held.length;
      st.held = [];
      pending.since = 0;
      pending.reset = true;
    }
    this._emit('reset', { kind, room: st.room, epoch, previousEpoch, since });
    this._emit('gap', { kind, room: st.room, since, reset: true, epoch });
  }

  /**
   * Bookkeeping when a `join` / `game.join` / `game.watch` succeeds.
   * @param {'room'|'game'} kind
   * @param {RoomState|GameState} st
   * @param {number|undefined} since
   * @param {any} ok
   */
  _onJoinOk(kind, st, since, ok) {
    st.joined = true;
    if (kind === 'game' && ok.role) /** @type {GameState} */ (st).role = ok.role;
    const held = st.held;
    const wasReset = !!st.pending?.reset;
    st.held = [];
    st.pending = null;
    if (typeof ok.epoch === 'string' && ok.epoch) {
      if (st.epoch && st.epoch !== ok.epoch && !wasReset) {
        // The log started again and the gateway moved this session's cursor without a
        // `stream.reset` (a join without `since`): the same as one.
        this._resetStream(kind, st, ok.epoch);
      }
      st.epoch = ok.epoch;
    }
    if (since === undefined) return;
    if (wasReset) {
      // `reset` and `gap` were emitted at the `stream.reset`; the new log was replayed.
      this._stats.duplicatesDropped += held.length;
      return;
    }
    const type = kind === 'room' ? 'message' : 'game.message';
    if (ok.recovered === false) {
      if (ok.replayed === 0) {
        // `since` was ahead of the gateway (its seqs restarted): clamp as §5 says, and
        // deliver what arrived meanwhile.
        st.tracker.reset(null);
        for (const f of held) {
          if (st.tracker.accept(f.seq)) this._emit(type, f, { replay: false });
        }
      } else {
        this._stats.duplicatesDropped += held.length;
      }
      this._emit('gap', { kind, room: st.room, since, replayed: ok.replayed });
    } else {
      this._stats.duplicatesDropped += held.length;
    }
  }

  // ---------------------------------------------------------------- outbound

  /**
   * @param {Conn} conn
   * @param {any} frame
   */
  _write(conn, frame) {
    conn.ws.send(JSON.stringify(frame));
    this._stats.framesOut += 1;
  }

  /**
   * A request on a given connection (used by resume); no queueing.
   * @param {Conn} conn
   * @param {any} frame
   * @param {number} [timeoutMs]
   * @returns {Promise<any>}
   */
  _request(conn, frame, timeoutMs = this.requestTimeoutMs) {
    return new Promise((resolve, reject) => {
      /** @type {Pending} */
      const p = { frame: { ...frame, id: this._nextId++ }, resolve, reject, timer: undefined, conn };
      this._arm(p, timeoutMs);
      this._sendPending(conn, p);
    });
  }

  /**
   * @param {Pending} p
   * @param {number} timeoutMs
   */
  _arm(p, timeoutMs) {
    p.timer = setTimeout(() => {
      this._pending.delete(p.frame.id);
      const i = this._queue.indexOf(p);
      if (i >= 0) this._queue.splice(i, 1);
      p.reject(new SwitchboardError('timeout', `no reply to ${p.frame.type} within ${timeoutMs} ms`));
    }, timeoutMs);
  }

  /**
   * @param {Conn} conn
   * @param {Pending} p
   */
  _sendPending(conn, p) {
    this._pending.set(p.frame.id, p);
    p.conn = conn;
    try {
      this._write(conn, p.frame);
    } catch (err) {
      this._pending.delete(p.frame.id);
      clearTimeout(p.timer);
      p.reject(new SwitchboardError('disconnected', 'send failed', { cause: err }));
    }
  }

  /** @param {Conn} conn */
  _flushQueue(conn) {
    const q = this._queue;
    this._queue = [];
    for (const p of q) this._sendPending(conn, p);
  }

  /** @param {SwitchboardError} err */
  _rejectPending(err) {
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const p of pending) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /** @param {SwitchboardError} err */
  _rejectAll(err) {
    this._rejectPending(err);
    const q = this._queue;
    this._queue = [];
    for (const p of q) {
      clearTimeout(p.timer);
      p.reject(err);
    }
  }

  /**
   * Send any client frame and wait for its reply (`ok`, `presence`, `who`, `pong`,
   * `game.created`, `rank.queued`); an `error` reply rejects with SwitchboardError.
   * While the client is (re)connecting the request waits for the connection, within its
   * timeout. An `id` is assigned.
   * @param {{type: string, [k: string]: any}} frame
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<any>}
   */
  request(frame, opts = {}) {
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    return new Promise((resolve, reject) => {
      if (this._state === 'idle' || this._state === 'closed') {
        reject(new SwitchboardError('not_connected', `not connected (state ${this._state})`));
        return;
      }
      /** @type {Pending} */
      const p = { frame: { ...frame, id: this._nextId++ }, resolve, reject, timer: undefined, conn: undefined };
      this._arm(p, timeoutMs);
      const conn = this._conn;
      if (this._state === 'open' && conn && conn.opened && !conn.ended) this._sendPending(conn, p);
      else this._queue.push(p);
    });
  }

  /**
   * @param {Conn} conn
   */
  _startHeartbeat(conn) {
    const hb = this._heartbeat;
    if (!hb) return;
    const intervalMs = hb.intervalMs ?? Math.max(1, this._welcome?.heartbeat_s ?? 25) * 1000;
    const timeoutMs = hb.timeoutMs ?? 10000;
    let pingSentAt = 0;
    const tick = Math.max(50, Math.min(intervalMs, timeoutMs) / 4);
    conn.heartbeatTimer = setInterval(() => {
      if (conn.ended) return;
      const now = Date.now();
      const waiting = pingSentAt > conn.lastRx; // our ping has no answer (nor anything else) yet
      if (waiting && now - pingSentAt >= timeoutMs) {
        this._log('heartbeat timeout', { idle: now - conn.lastRx });
        this._dropConn(conn, 4000, 'heartbeat timeout', { reason: 'heartbeat' });
        return;
      }
      if (!waiting && now - conn.lastRx >= intervalMs) {
        pingSentAt = now;
        this._request(conn, { type: 'ping' }, timeoutMs).catch(() => {});
      }
    }, tick);
  }

  // ---------------------------------------------------------------- protocol methods

  /**
   * Join a room. With `since`, missed messages are replayed (as `message` events with
   * `info.replay`) before the promise resolves with `ok {room, recovered, replayed, epoch}`.
   * `epoch` is the epoch `since` belongs to (default: the one this client knows for the
   * room); when the room's log started again since, a `reset` event comes first and the
   * whole new log is replayed. The room is re-joined automatically after every reconnect.
   * @param {string} room
   * @param {{since?: number, epoch?: string, timeoutMs?: number}} [opts]
   */
  async join(room, opts = {}) {
    const { since } = opts;
    let st = this._rooms.get(room);
    const fresh = !st;
    if (!st) {
      st = { room, joined: false, tracker: new SeqTracker(), epoch: null, pending: null, held: [] };
      this._rooms.set(room, st);
    }
    /** @type {any} */
    const frame = { type: 'join', room };
    if (since !== undefined) this._sinceRequest(st, frame, since, opts.epoch);
    try {
      const ok = await this.request(frame, opts);
      this._onJoinOk('room', st, since, ok);
      return ok;
    } catch (err) {
      st.pending = null;
      st.held = [];
      if (fresh && !st.joined) this._rooms.delete(room);
      throw err;
    }
  }

  /**
   * Sets up a join / game.join / game.watch with `since` (and its epoch).
   * @param {RoomState|GameState} st
   * @param {any} frame
   * @param {number} since
   * @param {string|undefined} epoch
   */
  _sinceRequest(st, frame, since, epoch) {
    frame.since = since;
    if (epoch) st.epoch = epoch;
    if (st.epoch) frame.epoch = st.epoch;
    // The app asks for everything after `since`, even what it saw before.
    st.tracker.reset(since);
    st.pending = { since, reset: false };
    st.held = [];
  }

  /**
   * Leave a room; resolves with `ok {room}`.
   * @param {string} room
   * @param {{timeoutMs?: number}} [opts]
   */
  async leave(room, opts = {}) {
    // Stop tracking at once: whatever happens to the request, do not re-join it later.
    this._rooms.delete(room);
    return this.request({ type: 'leave', room }, opts);
  }

  /**
   * Publish to a joined room; resolves with `ok {seq}`. With `echo:false` this user's
   * sessions do not get the message back.
   * @param {string} room
   * @param {any} data any JSON value
   * @param {{echo?: boolean, timeoutMs?: number}} [opts]
   */
  async publish(room, data, opts = {}) {
    /** @type {any} */
    const frame = { type: 'publish', room, data: data === undefined ? null : data };
    if (opts.echo !== undefined) frame.echo = opts.echo;
    const ok = await this.request(frame, opts);
    if (opts.echo === false && typeof ok.seq === 'number') {
      // Never delivered live; do not deliver it from a later replay either.
      this._rooms.get(room)?.tracker.mark(ok.seq);
    }
    return ok;
  }

  /**
   * Direct message to a user (all their sessions; kept if offline). Resolves with
   * `ok {seq}` (the recipient's DM seq).
   * @param {string} user
   * @param {any} data
   * @param {{timeoutMs?: number}} [opts]
   */
  send(user, data, opts = {}) {
    return this.request({ type: 'send', to: user, data: data === undefined ? null : data }, opts);
  }

  /**
   * Members of a room; resolves with the `presence` frame `{room, members, count}`.
   * @param {string} room
   * @param {{timeoutMs?: number}} [opts]
   */
  presence(room, opts = {}) {
    return this.request({ type: 'presence', room }, opts);
  }

  /**
   * One page of online users; resolves with the `who` frame `{users, count, next?}`.
   * @param {{cursor?: string, limit?: number, timeoutMs?: number}} [opts]
   */
  who(opts = {}) {
    /** @type {any} */
    const frame = { type: 'who' };
    if (opts.cursor !== undefined) frame.cursor = opts.cursor;
    if (opts.limit !== undefined) frame.limit = opts.limit;
    return this.request(frame, opts);
  }

  /**
   * Every online user, following `next` cursors.
   * @param {{limit?: number, timeoutMs?: number}} [opts]
   * @returns {Promise<{user: string, name: string}[]>}
   */
  async whoAll(opts = {}) {
    /** @type {{user: string, name: string}[]} */
    const users = [];
    /** @type {string|undefined} */
    let cursor;
    for (let i = 0; i < 100000; i++) {
      const page = await this.who({ ...opts, cursor });
      users.push(...page.users);
      if (!page.next) break;
      cursor = page.next;
    }
    return users;
  }

  /**
   * Change the display name; resolves with `ok {name}` (the cleaned name). The name is
   * re-applied after a reconnect.
   * @param {string} name
   * @param {{timeoutMs?: number}} [opts]
   */
  async rename(name, opts = {}) {
    const ok = await this.request({ type: 'rename', name }, opts);
    this._renamed = ok.name ?? name;
    return ok;
  }

  /**
   * Hand the gateway a newer token for the same user before the current one expires
   * (else the session closes with 4011). Resolves with `ok {exp}`; rejects with
   * `forbidden` for another user's token or `unauthorized` for an invalid one (the
   * session then keeps its old expiry). A fixed `token` option is replaced by this one
   * for later reconnects.
   * @param {string} token
   * @param {{timeoutMs?: number}} [opts]
   */
  async refresh(token, opts = {}) {
    const ok = await this.request({ type: 'refresh', token }, opts);
    if (!this._getToken) this._token = token;
    return ok;
  }

  /**
   * Broadcast to every session (needs the `broadcast` permission); resolves with `ok`.
   * @param {any} data
   * @param {{timeoutMs?: number}} [opts]
   */
  broadcast(data, opts = {}) {
    return this.request({ type: 'broadcast', data: data === undefined ? null : data }, opts);
  }

  /**
   * Round trip to the gateway; resolves with the time in milliseconds.
   * @param {{timeoutMs?: number}} [opts]
   * @returns {Promise<number>}
   */
  async ping(opts = {}) {
    const t0 = Date.now();
    await this.request({ type: 'ping' }, opts);
    return Date.now() - t0;
  }

  /**
   * Watch who comes online and goes offline: `'all'` (everyone) or a list of user ids
   * (e.g. a friends list). `online.changes` events follow, at most one per feed interval.
   * Sending it again replaces the watch; it is re-sent after every reconnect (the feed is
   * not replayed: refresh with `who` after a reconnect). Resolves with `ok`.
   * @param {'all' | string[] | {all: true} | {users: string[]}} target
   * @param {{timeoutMs?: number}} [opts]
   */
  async onlineWatch(target, opts = {}) {
    /** @type {{all: true} | {users: string[]}} */
    let watch;
    if (target === 'all') watch = { all: true };
    else if (Array.isArray(target)) watch = { users: [...target] };
    else if (target && typeof target === 'object' && ('all' in target || 'users' in target)) {
      watch = 'users' in target && Array.isArray(target.users) ? { users: [...target.users] } : { all: true };
    } else throw new TypeError("onlineWatch: give 'all' or an array of user ids");
    const ok = await this.request({ type: 'online.watch', ...watch }, opts);
    this._onlineWatch = watch;
    return ok;
  }

  /**
   * Stop the `online.changes` feed; resolves with `ok`.
   * @param {{timeoutMs?: number}} [opts]
   */
  async onlineUnwatch(opts = {}) {
    this._onlineWatch = null;
    return this.request({ type: 'online.unwatch' }, opts);
  }

  /**
   * Create a game; resolves with `game.created {room, owner}`. This session holds the
   * first seat.
   * @param {{timeoutMs?: number}} [opts]
   */
  async gameCreate(opts = {}) {
    const created = await this.request({ type: 'game.create' }, opts);
    this._games.set(created.room, {
      room: created.room,
      role: 'player',
      joined: true,
      tracker: new SeqTracker(0),
      // Older gateways send no epoch: then it is learnt from a later `ok` or `stream.reset`.
      epoch: created.epoch ?? null,
      pending: null,
      held: [],
    });
    return created;
  }

  /**
   * Take a seat in a game (or take yours back); resolves with
   * `ok {room, role, owner, opponent?, started, recovered?, replayed?, epoch?}`. `since`
   * and `epoch` work as in `join`.
   * @param {string} room
   * @param {{since?: number, epoch?: string, timeoutMs?: number}} [opts]
   */
  gameJoin(room, opts = {}) {
    return this._gameEnter('game.join', room, opts);
  }

  /**
   * Watch a game; resolves like `gameJoin` with `role:"watcher"`.
   * @param {string} room
   * @param {{since?: number, epoch?: string, timeoutMs?: number}} [opts]
   */
  gameWatch(room, opts = {}) {
    return this._gameEnter('game.watch', room, opts);
  }

  /**
   * @param {'game.join'|'game.watch'} type
   * @param {string} room
   * @param {{since?: number, epoch?: string, timeoutMs?: number}} opts
   */
  async _gameEnter(type, room, opts) {
    const { since } = opts;
    let g = this._games.get(room);
    const fresh = !g;
    if (!g) {
      g = {
        room,
        role: type === 'game.watch' ? 'watcher' : 'player',
        joined: false,
        tracker: new SeqTracker(),
        epoch: null,
        pending: null,
        held: [],
      };
      this._games.set(room, g);
    }
    /** @type {any} */
    const frame = { type, room };
    if (since !== undefined) this._sinceRequest(g, frame, since, opts.epoch);
    try {
      const ok = await this.request(frame, opts);
      this._onJoinOk('game', g, since, ok);
      return ok;
    } catch (err) {
      g.pending = null;
      g.held = [];
      if (fresh && !g.joined) this._games.delete(room);
      throw err;
    }
  }

  /**
   * Send in a game you play; resolves with `ok {seq}`.
   * @param {string} room
   * @param {any} data
   * @param {'all'|'opponent'|'watchers'} [to='all']
   * @param {{timeoutMs?: number}} [opts]
   */
  async gameSend(room, data, to = 'all', opts = {}) {
    const ok = await this.request({ type: 'game.send', room, to, data: data === undefined ? null : data }, opts);
    if (to !== 'all' && typeof ok.seq === 'number') this._games.get(room)?.tracker.mark(ok.seq);
    return ok;
  }

  /**
   * Leave a game (a player's leave ends it for everyone); resolves with `ok {room}`.
   * @param {string} room
   * @param {{timeoutMs?: number}} [opts]
   */
  async gameLeave(room, opts = {}) {
    this._games.delete(room);
    return this.request({ type: 'game.leave', room }, opts);
  }

  /**
   * Close a game you own; resolves with `ok {room}`.
   * @param {string} room
   * @param {{timeoutMs?: number}} [opts]
   */
  gameClose(room, opts = {}) {
    return this.request({ type: 'game.close', room }, opts);
  }

  /**
   * Queue for a ranked match; resolves with `rank.queued {rating}`. A `rank.matched` event
   * follows when a match is found. The user is queued again after a reconnect.
   * @param {{timeoutMs?: number}} [opts]
   */
  async rankJoin(opts = {}) {
    const q = await this.request({ type: 'rank.join' }, opts);
    this._rankQueued = true;
    return q;
  }

  /**
   * Leave the ranked queue; resolves with `ok`.
   * @param {{timeoutMs?: number}} [opts]
   */
  async rankLeave(opts = {}) {
    const ok = await this.request({ type: 'rank.leave' }, opts);
    this._rankQueued = false;
    return ok;
  }
}

/**
 * @typedef {object} Pending
 * @property {any} frame
 * @property {(v: any) => void} resolve
 * @property {(e: any) => void} reject
 * @property {ReturnType<typeof setTimeout> | undefined} timer
 * @property {Conn | undefined} conn
 */

/**
 * @typedef {object} RoomState
 * @property {string} room
 * @property {boolean} joined
 * @property {SeqTracker} tracker
 * @property {string|null} epoch the epoch of the tracker's cursor (null: unknown)
 * @property {{since: number, reset: boolean} | null} pending a `since` join in flight
 *   (`reset`: a `stream.reset` came during it)
 * @property {any[]} held frames at or below `pending.since`, decided by the join's ok
 */

/**
 * @typedef {RoomState & {role: 'player'|'watcher'}} GameState
 */

/**
 * @typedef {object} Conn
 * @property {any} ws
 * @property {string} url
 * @property {boolean} ended
 * @property {boolean} opened
 * @property {number} lastRx
 * @property {Promise<any>} closed
 * @property {(info: any) => void} finish
 * @property {number|undefined} drainAfterMs
 * @property {number} drainAt
 * @property {{resolve: (v?: any) => void, reject: (e: any) => void} | undefined} openWaiter
 * @property {{resolve: (v?: any) => void, reject: (e: any) => void} | undefined} loginWaiter
 * @property {number|undefined} dmSinceSent
 * @property {string|undefined} dmEpochSent
 * @property {boolean} dmFirst
 * @property {any} [loginId]
 * @property {SwitchboardError} [loginError]
 * @property {any} [lastError]
 * @property {ReturnType<typeof setInterval>} [heartbeatTimer]
 * @property {ReturnType<typeof setTimeout>} [drainTimer]
 * @property {number} [openedAt]
 */

export default SwitchboardClient;
