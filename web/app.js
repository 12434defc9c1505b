// @ts-check
/**
 * Switchboard browser app: rooms, direct messages, who is online, and tic-tac-toe games,
 * built on the JS client module (reconnect, resume, request/response) served by the
 * gateway at /app/switchboard.js. Build-free ES module; no external resources.
 *
 * Game messages (see tictactoe.js): {"move": 0…8}, {"rematch": true}, {"text": "…"},
 * sent with `game.send` to `all`, so both players and every watcher get each one and
 * validate it with the same rules. Chat and DM messages are {"text": "…"}.
 */
import { SwitchboardClient, fetchDevToken } from '/app/switchboard.js';
import * as T from '/app/tictactoe.js';

// ------------------------------------------------------------------ small helpers

/** @param {string} id */
const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/**
 * Create an element. Attributes: `class`, `text`, `dataset`, `on<event>`, anything else
 * as an attribute (false/null/undefined skip it, true sets it empty).
 * @param {string} tag
 * @param {Record<string, any>} [attrs]
 * @param {...any} children
 * @returns {HTMLElement}
 */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
/**
 * An icon from the sprite in index.html.
 * @param {string} name
 * @param {string} [cls]
 */
function icon(name, cls) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  svg.setAttribute('aria-hidden', 'true');
  if (cls) svg.setAttribute('class', cls);
  const use = document.createElementNS(SVG_NS, 'use');
  use.setAttribute('href', `#i-${name}`);
  svg.append(use);
  return svg;
}

/** @param {string} s */
function hue(s) {
  let x = 0;
  for (const ch of s) x = (x * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return x % 360;
}

/** @param {string} name */
function initials(name) {
  const words = name.trim().split(/[\s._-]+/).filter(Boolean);
  const letters = words.length > 1 ? [words[0], words[1]] : [words[0] ?? '?'];
  return letters.map((w) => [...w][0] ?? '').join('').toUpperCase() || '?';
}

/**
 * @param {string} user
 * @param {string} [name]
 * @param {{online?: boolean, size?: 'sm'}} [opts]
 */
function avatar(user, name, opts = {}) {
  const el = h('span', { class: `avatar${opts.size ? ` ${opts.size}` : ''}${opts.online ? ' online' : ''}`, 'aria-hidden': 'true' });
  el.style.setProperty('--hue', String(hue(user)));
  el.textContent = initials(name || user);
  return el;
}

/** @param {number} ts */
function fmtTime(ts) {
  return new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

/** @param {number} ts */
function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth()}-${d.getDate()}`;
}

/** @param {number} ts */
function fmtDay(ts) {
  const now = new Date();
  if (dayKey(ts) === dayKey(now.getTime())) return 'Today';
  if (dayKey(ts) === dayKey(now.getTime() - 86400000)) return 'Yesterday';
  return new Date(ts).toLocaleDateString([], { weekday: 'long', month: 'long', day: 'numeric' });
}

/** @param {number} ms */
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Identifier rule of the gateway (PROTOCOL.md §1): printable ASCII, not path-like. */
const ID_RE = /^(?!.*(?:^|\/)\.{0,2}(?:\/|$))[A-Za-z0-9\-_.:@/+=#]{1,128}$/;
const GAME_ID_RE = /\bg-[0-9a-f]{32}\b/;

/**
 * A user id from a display name: "Ada Lovelace" → "ada-lovelace".
 * @param {string} name
 */
function slugify(name) {
  return name
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .trim()
    .toLowerCase()
    .replace(/\s+/g, '-')
    .replace(/[^a-z0-9\-_.]/g, '')
    .replace(/-{2,}/g, '-')
    .replace(/^[-.]+|[-.]+$/g, '')
    .slice(0, 40);
}

/** @param {any} err */
function errText(err) {
  if (!err) return 'unknown error';
  const code = err.code && err.code !== 'undefined' ? err.code : '';
  const msg = err.message || String(err);
  if (code === 'timeout') return 'no answer from the server (timed out)';
  if (code === 'not_connected' || code === 'disconnected') return 'not connected, try again in a moment';
  return msg;
}

// ------------------------------------------------------------------ state

/**
 * @typedef {{kind: 'msg', from: string, name: string, data: any, ts: number, seq?: number, mine?: boolean}
 *   | {kind: 'sys', text: string, ts: number, cls?: string}} Item
 * @typedef {{id: string, joined: boolean, joining: boolean, items: Item[], seqs: Set<number>,
 *   members: Map<string, string>, count: number, unread: number}} Room
 * @typedef {{id: string, name: string, items: Item[], seqs: Set<number>, unread: number}} Dm
 * @typedef {{room: string, role: 'player'|'watcher'|null, owner: string|null, opponent: string|null,
 *   started: boolean, msgs: Map<number, any>, closed: string|null, joined: boolean,
 *   pendingSeq: number, sending: boolean, seen: number, gap: boolean, restarted: boolean,
 *   base: number}} Game (`msgs` is keyed by `base + seq`: a game log that started again
 *   restarts its seqs, and its moves follow the earlier ones)
 */

const STORE_KEY = 'switchboard.app.v1';

const S = {
  /** @type {SwitchboardClient | null} */
  client: null,
  dev: false,
  /** Sign-in settings kept in sessionStorage (per tab): {user, name, token?, …}. */
  /** @type {any} */
  saved: null,
  me: { user: '', name: '' },
  replica: '',
  conn: 'idle',
  tab: 'chat',
  /** @type {{kind: 'room'|'dm', id: string} | null} */
  view: null,
  /** @type {Map<string, Room>} */
  rooms: new Map(),
  /** @type {Map<string, Dm>} */
  dms: new Map(),
  /** Known display names. @type {Map<string, string>} */
  names: new Map(),
  /** Online users (global `who`). @type {Map<string, string>} */
  online: new Map(),
  onlineCount: 0,
  feedOn: false,
  /** @type {{text: string, on: boolean, ts: number, fresh?: boolean}[]} */
  feed: [],
  /** @type {Map<string, Game>} */
  games: new Map(),
  /** @type {string | null} */
  activeGame: null,
  /** @type {{state: 'idle'|'joining'|'queued'|'matched', rating?: number, since?: number, opponent?: string, opponentRating?: number, room?: string, error?: string}} */
  rank: { state: 'idle' },
  rankToken: 0,
  started: false,
};

/** @param {string} user */
function nameOf(user) {
  if (!user) return '';
  if (user === S.me.user && S.me.name) return S.me.name;
  return S.names.get(user) ?? S.online.get(user) ?? user;
}

/**
 * @param {string} user
 * @param {string} [name]
 */
function learnName(user, name) {
  if (user && name) S.names.set(user, name);
}

// ------------------------------------------------------------------ persistence (per tab)

let saveTimer = 0;
function persist() {
  clearTimeout(saveTimer);
  saveTimer = window.setTimeout(persistNow, 200);
}

function persistNow() {
  if (!S.saved) return;
  const dms = {};
  for (const d of S.dms.values()) {
    dms[d.id] = { name: d.name, items: d.items.filter((i) => i.kind === 'msg').slice(-50) };
  }
  // The DM cursor and its epoch go together (both from the client once it has a cursor).
  const c = S.client;
  const dm =
    c && c.cursors.dm !== null
      ? { dmCursor: c.cursors.dm, dmEpoch: c.epochs.dm }
      : { dmCursor: S.saved.dmCursor ?? null, dmEpoch: S.saved.dmEpoch ?? null };
  const data = {
    ...S.saved,
    rooms: [...S.rooms.values()].filter((r) => r.joined || r.joining).map((r) => r.id),
    view: S.view,
    tab: S.tab,
    feed: S.feedOn,
    games: [...S.games.values()].filter((g) => g.joined && !g.closed && g.role).map((g) => ({ room: g.room, role: g.role })),
    activeGame: S.activeGame,
    ...dm,
    dms,
  };
  try {
    sessionStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch {
    /* storage full or blocked: not fatal */
  }
}

function loadSaved() {
  try {
    const raw = sessionStorage.getItem(STORE_KEY);
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

// ------------------------------------------------------------------ render scheduling

/** @type {Set<string>} */
const dirty = new Set();
let renderQueued = false;
/** @param {...string} parts */
function invalidate(...parts) {
  for (const p of parts) dirty.add(p);
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    const parts = [...dirty];
    dirty.clear();
    for (const p of parts) RENDER[p]?.();
  });
}

/** @type {Record<string, () => void>} */
const RENDER = {
  me: renderMe,
  rooms: renderRoomList,
  dms: renderDmList,
  online: renderOnline,
  feed: renderFeed,
  convo: renderConversation,
  members: renderMembers,
  games: renderGames,
  rank: renderRank,
  title: renderTitle,
};

// ------------------------------------------------------------------ toasts

/**
 * @param {string | Node} content
 * @param {'info'|'ok'|'warn'|'error'|'online'|'offline'} [kind]
 * @param {number} [timeoutMs]
 */
function toast(content, kind = 'info', timeoutMs = 4500) {
  const box = $('toasts');
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-testid': 'toast' }, content);
  box.append(el);
  while (box.children.length > 4) box.firstElementChild?.remove();
  setTimeout(() => {
    el.classList.add('leaving');
    setTimeout(() => el.remove(), 250);
  }, timeoutMs);
}

// ------------------------------------------------------------------ sign in

async function detectDevMode() {
  try {
    const res = await fetch('/dev/token?user=signin-probe', { cache: 'no-store' });
    return res.ok;
  } catch {
    return false;
  }
}

/** @param {string} [error] */
function showSignin(error) {
  $('app').hidden = true;
  $('signin').hidden = false;
  const dev = S.dev;
  $('signin-dev').hidden = !dev;
  $('signin-token').hidden = dev;
  $('signin-switch').hidden = !dev;
  $('signin-error').textContent = error ?? '';
  const saved = loadSaved();
  const nameInput = /** @type {HTMLInputElement} */ ($('signin-name'));
  if (saved?.name && !nameInput.value) nameInput.value = saved.name;
  updateIdHint();
  (dev ? nameInput : $('signin-token-input')).focus();
}

function updateIdHint() {
  const name = /** @type {HTMLInputElement} */ ($('signin-name')).value;
  const id = slugify(name);
  $('signin-id-hint').textContent = name.trim() ? (id ? `You'll be @${id}` : 'Use some letters or digits') : 'No password: pick a name and go.';
}

function wireSignin() {
  $('signin-name').addEventListener('input', updateIdHint);
  $('signin-dev').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = /** @type {HTMLInputElement} */ ($('signin-name')).value.trim();
    const user = slugify(name);
    if (!user) {
      $('signin-error').textContent = 'Pick a name with at least one letter or digit.';
      return;
    }
    startSession({ user, name });
  });
  $('signin-token').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = /** @type {HTMLTextAreaElement} */ ($('signin-token-input')).value.trim();
    if (!token) return;
    startSession({ token });
  });
  $('signin-switch').addEventListener('click', () => {
    const toToken = $('signin-token').hidden;
    $('signin-token').hidden = !toToken;
    $('signin-dev').hidden = toToken;
    $('signin-switch').textContent = toToken ? 'Sign in with a name instead' : 'Sign in with a token instead';
    (toToken ? $('signin-token-input') : $('signin-name')).focus();
  });
}

/**
 * Connect as a user: dev mode ({user, name}: a token from /dev/token before every
 * connection) or a pasted token ({token}).
 * @param {any} cfg
 */
async function startSession(cfg) {
  S.saved = { ...cfg };
  S.me = { user: cfg.user ?? '', name: cfg.name ?? '' };
  const opts = {
    dmSince: typeof cfg.dmCursor === 'number' ? cfg.dmCursor : undefined,
    dmEpoch: typeof cfg.dmCursor === 'number' && typeof cfg.dmEpoch === 'string' ? cfg.dmEpoch : undefined,
    ...(cfg.token
      ? { token: cfg.token }
      : { getToken: () => fetchDevToken(location.origin, S.saved.user, S.saved.name || S.saved.user) }),
  };
  // `?debug` in the page URL logs every frame and the client's decisions to the console.
  const debug = new URLSearchParams(location.search).has('debug');
  const client = new SwitchboardClient(debug ? { ...opts, debug: (msg, detail) => console.debug('[switchboard]', msg, detail ?? '') } : opts);
  if (debug) client.on('frame', (f) => console.debug('[switchboard] <-', JSON.stringify(f)));
  S.client = client;
  restoreDms(cfg.dms);
  wireClient(client);
  $('signin').hidden = true;
  $('app').hidden = false;
  switchTab(cfg.tab === 'games' ? 'games' : 'chat', { focus: false });
  invalidate('me', 'rooms', 'dms', 'online', 'feed', 'convo', 'members', 'games', 'rank');
  try {
    await client.connect();
  } catch (err) {
    if (S.client !== client) return;
    const e = /** @type {any} */ (err);
    if (e?.code === 'unauthorized') {
      client.close();
      S.client = null;
      sessionStorage.removeItem(STORE_KEY);
      showSignin(`The gateway refused the token: ${e.message}`);
      return;
    }
    // Gave up for another reason (e.g. signed in elsewhere): the state shows it.
    return;
  }
  if (S.client !== client) return;
  await afterFirstLogin(cfg);
}

/** @param {any} cfg */
async function afterFirstLogin(cfg) {
  S.started = true;
  persist();
  const rooms = Array.isArray(cfg.rooms) ? cfg.rooms : ['lobby'];
  const view = cfg.view;
  const joins = rooms.map((r) => joinRoom(r, { focus: false, quiet: true }));
  if (view?.kind === 'dm') openDm(view.id, { focus: false });
  else if (view?.kind === 'room' && rooms.includes(view.id)) openView('room', view.id, { focus: false });
  else if (rooms.length) openView('room', rooms[0], { focus: S.tab === 'chat' });
  refreshWho();
  if (cfg.feed) setFeed(true).catch(() => {});
  for (const g of Array.isArray(cfg.games) ? cfg.games : []) {
    enterGame(g.room, g.role, { focus: g.room === cfg.activeGame, resume: true, switchTab: false }).catch(() => {});
  }
  if (cfg.activeGame) S.activeGame = cfg.activeGame;
  await Promise.allSettled(joins);
  invalidate('games');
}

function signOut() {
  const c = S.client;
  S.client = null;
  c?.close();
  sessionStorage.removeItem(STORE_KEY);
  location.reload();
}

// ------------------------------------------------------------------ client events

/** @param {SwitchboardClient} client */
function wireClient(client) {
  /** @param {string} type @param {(p: any, i?: any) => void} fn */
  const on = (type, fn) =>
    client.on(type, (p, i) => {
      if (S.client === client) fn(p, i);
    });

  on('state', onState);
  on('welcome', (w) => {
    S.me = { user: w.user, name: client.name ?? w.name };
    S.replica = w.replica;
    learnName(w.user, S.me.name);
    if (S.saved && !S.saved.user) S.saved.user = w.user;
    $('replica').textContent = `Signed in as @${w.user} · replica ${w.replica}`;
    $('replica').dataset.replica = w.replica;
    invalidate('me');
  });
  on('open', (ev) => {
    if (ev.resumed) {
      toast('Reconnected', 'ok', 2500);
      refreshWho();
      for (const r of S.rooms.values()) if (r.joined) refreshPresence(r.id);
    }
  });
  on('reconnect', () => toast('The server is restarting. Reconnecting you…', 'warn'));
  on('resume', (ev) => {
    if (ev.kind === 'room') refreshPresence(ev.room);
  });
  on('gap', (ev) => {
    if (ev.reset) return; // said by the `reset` handler below
    if (ev.kind === 'room') {
      const r = S.rooms.get(ev.room);
      if (r) addItem(r, 'room', { kind: 'sys', cls: 'warn', text: 'Some messages could not be recovered after the reconnect.', ts: Date.now() });
    } else if (ev.kind === 'game') {
      const g = S.games.get(ev.room);
      if (g) g.gap = true;
      invalidate('games');
    }
  });
  // A stream's log started again on the server (e.g. Redis restarted empty): its seqs
  // restart, so forget the seqs seen (they would hide the new messages) and say so; the
  // line also keeps the new messages after the earlier ones.
  on('reset', (ev) => {
    const ts = Date.now();
    if (ev.kind === 'room') {
      const r = S.rooms.get(ev.room);
      if (!r) return;
      r.seqs.clear();
      addItem(r, 'room', { kind: 'sys', cls: 'warn', text: 'History restarted on the server: messages from just before may be missing.', ts });
    } else if (ev.kind === 'dm') {
      for (const d of S.dms.values()) {
        d.seqs.clear();
        if (d.items.length) addItem(d, 'dm', { kind: 'sys', cls: 'warn', text: 'Message history restarted on the server: messages from just before may be missing.', ts });
      }
      persist();
    } else if (ev.kind === 'game') {
      const g = S.games.get(ev.room);
      if (!g) return;
      for (const k of g.msgs.keys()) if (k > g.base) g.base = k;
      g.restarted = true;
      invalidate('games');
    }
  });
  on('resume.failed', (ev) => {
    if (ev.kind === 'room') {
      const r = S.rooms.get(ev.room);
      if (r) r.joined = false;
      toast(`Could not rejoin #${ev.room}: ${errText(ev.error)}`, 'error');
      invalidate('rooms', 'convo');
    } else if (ev.kind === 'game') {
      const g = S.games.get(ev.room);
      if (g) {
        g.joined = false;
        g.closed = g.closed ?? 'unavailable';
      }
      toast(`Could not get back into the game: ${errText(ev.error)}`, 'error');
      invalidate('games');
    } else if (ev.kind === 'online') {
      S.feedOn = false;
      invalidate('feed');
    } else if (ev.kind === 'rank') {
      S.rank = { state: 'idle', error: errText(ev.error) };
      invalidate('rank');
    }
    persist();
  });
  on('error', (f) => toast(`Server: ${f.message}`, 'error'));

  on('message', onRoomMessage);
  on('direct', onDirect);
  on('member.joined', (f) => {
    learnName(f.user, f.name);
    const r = S.rooms.get(f.room);
    if (!r) return;
    r.members.set(f.user, f.name);
    r.count = f.count;
    addItem(r, 'room', { kind: 'sys', text: `${f.name} joined`, ts: Date.now() });
    invalidate('members', 'convo');
  });
  on('member.left', (f) => {
    const r = S.rooms.get(f.room);
    if (!r) return;
    r.members.delete(f.user);
    r.count = f.count;
    addItem(r, 'room', { kind: 'sys', text: `${f.name} left`, ts: Date.now() });
    invalidate('members', 'convo');
  });
  on('member.renamed', (f) => {
    // One frame per shared room: the old name is the one this room knew.
    const old = S.rooms.get(f.room)?.members.get(f.user) ?? nameOf(f.user);
    learnName(f.user, f.name);
    if (S.online.has(f.user)) S.online.set(f.user, f.name);
    const dm = S.dms.get(f.user);
    if (dm) dm.name = f.name;
    const r = S.rooms.get(f.room);
    if (r) {
      if (r.members.has(f.user)) r.members.set(f.user, f.name);
      if (old !== f.name) {
        const text = f.user === S.me.user ? `You are now ${f.name}` : `${old} is now ${f.name}`;
        addItem(r, 'room', { kind: 'sys', text, ts: Date.now() });
      }
    }
    invalidate('members', 'online', 'dms', 'convo', 'games');
  });
  on('online.changes', onOnlineChanges);

  on('game.started', (f) => {
    const g = gameModel(f.room);
    g.owner = f.owner;
    g.opponent = f.opponent;
    g.started = true;
    if (g.role === 'player') toast(`Game on: ${nameOf(f.owner)} vs ${nameOf(f.opponent)}`, 'ok');
    invalidate('games');
  });
  on('game.message', onGameMessage);
  on('game.closed', (f) => {
    const g = S.games.get(f.room);
    if (!g) return;
    g.closed = f.reason;
    g.joined = false;
    toast(`Game over: ${closedText(f.reason)}`, 'warn');
    invalidate('games');
    persist();
  });
  on('rank.matched', onRankMatched);
  on('rank.waiting', (f) => {
    if (S.rank.state !== 'queued') return;
    S.rank = { ...S.rank, queued: f.queued, window: f.window };
    invalidate('rank');
  });
  on('rank.timeout', (f) => {
    ++S.rankToken;
    const s = Math.round(f.waited_ms / 1000);
    S.rank = { state: 'idle', note: `No opponent found within ${s} s. Try again later.` };
    invalidate('rank');
  });
}

/** @param {any} ev */
function onState(ev) {
  S.conn = ev.state;
  const el = $('conn');
  el.dataset.state = ev.state;
  const text = el.querySelector('.conn-text');
  const retry = $('conn-retry');
  let label = 'Offline';
  if (ev.state === 'connecting') label = 'Connecting…';
  else if (ev.state === 'open') label = 'Connected';
  else if (ev.state === 'reconnecting') {
    const secs = ev.delayMs ? Math.round(ev.delayMs / 1000) : 0;
    label = secs >= 1 ? `Reconnecting in ${secs}s…` : 'Reconnecting…';
  } else if (ev.state === 'closed') {
    const code = ev.closeCode;
    label =
      code === 4003
        ? 'Signed in elsewhere'
        : code === 4005
          ? 'Already connected elsewhere'
          : code === 4011
            ? 'Sign-in expired'
            : 'Disconnected';
  }
  if (text) text.textContent = label;
  el.title = ev.state === 'open' && S.replica ? `Connected to replica ${S.replica}` : label;
  retry.hidden = !(ev.state === 'reconnecting' || ev.state === 'closed');
  retry.textContent = ev.state === 'closed' ? 'Reconnect' : 'Retry now';
  if (ev.state === 'closed' && ev.error?.code === 'unauthorized' && S.started) {
    toast('Your sign-in was refused. Please sign in again.', 'error', 8000);
  } else if (ev.state === 'closed' && ev.closeCode === 4011 && S.started) {
    toast('Your token expired. Please sign in again with a new one.', 'error', 8000);
  }
}

// ------------------------------------------------------------------ rooms

/** @param {string} id @returns {Room} */
function roomModel(id) {
  let r = S.rooms.get(id);
  if (!r) {
    r = { id, joined: false, joining: false, items: [], seqs: new Set(), members: new Map(), count: 0, unread: 0 };
    S.rooms.set(id, r);
  }
  return r;
}

/**
 * Join a room with its retained history (`since: 0`).
 * @param {string} raw
 * @param {{focus?: boolean, quiet?: boolean}} [opts]
 */
async function joinRoom(raw, opts = {}) {
  const { focus = true } = opts;
  const id = raw.trim().replace(/^#/, '');
  if (!ID_RE.test(id)) {
    toast('Room names use letters, digits and - _ . : @ / + = # (no spaces).', 'error');
    return;
  }
  const client = S.client;
  if (!client) return;
  const existing = S.rooms.get(id);
  if (existing && (existing.joined || existing.joining)) {
    if (focus) openView('room', id);
    return;
  }
  const r = roomModel(id);
  r.joining = true;
  if (focus) openView('room', id);
  invalidate('rooms');
  try {
    await client.join(id, { since: 0 });
    if (S.client !== client) return;
    r.joined = true;
    r.joining = false;
    await refreshPresence(id);
  } catch (err) {
    r.joining = false;
    if (!r.joined) {
      S.rooms.delete(id);
      if (S.view?.kind === 'room' && S.view.id === id) openFirstView();
    }
    if (S.client === client) toast(`Could not join #${id}: ${errText(err)}`, 'error');
  }
  invalidate('rooms', 'convo', 'members');
  persist();
}

/** @param {string} id */
async function leaveRoom(id) {
  const client = S.client;
  if (!client) return;
  S.rooms.delete(id);
  if (S.view?.kind === 'room' && S.view.id === id) openFirstView();
  invalidate('rooms', 'convo', 'members');
  persist();
  try {
    await client.leave(id);
  } catch (err) {
    const e = /** @type {any} */ (err);
    if (e?.code !== 'not_found') toast(`Leaving #${id}: ${errText(err)}`, 'error');
  }
}

/** @param {string} id */
async function refreshPresence(id) {
  const client = S.client;
  if (!client) return;
  try {
    const p = await client.presence(id);
    const r = S.rooms.get(id);
    if (!r) return;
    r.members = new Map(p.members.map((/** @type {any} */ m) => [m.user, m.name]));
    for (const m of p.members) learnName(m.user, m.name);
    r.count = p.count;
    invalidate('members', 'convo', 'rooms');
  } catch {
    /* presence is a nicety; the next member event or refresh fixes it */
  }
}

/** @param {any} f @param {any} info */
function onRoomMessage(f, info) {
  const r = S.rooms.get(f.room);
  if (!r) return;
  if (typeof f.seq === 'number') {
    if (r.seqs.has(f.seq)) return;
    r.seqs.add(f.seq);
  }
  learnName(f.from, f.name);
  addItem(r, 'room', { kind: 'msg', from: f.from, name: f.name, data: f.data, ts: f.ts, seq: f.seq, mine: f.from === S.me.user }, info?.replay);
}

/**
 * Add a message or a system line to a room or DM, in seq order, and show it.
 * @param {Room | Dm} model
 * @param {'room'|'dm'} kind
 * @param {Item} item
 * @param {boolean} [replay]
 */
function addItem(model, kind, item, replay = false) {
  const items = model.items;
  let at = items.length;
  if (item.kind === 'msg' && typeof item.seq === 'number') {
    // Keep room messages in seq order (a replay may come after a live message).
    while (at > 0) {
      const prev = items[at - 1];
      if (prev.kind === 'msg' && typeof prev.seq === 'number' && prev.seq > item.seq) at--;
      else break;
    }
  }
  items.splice(at, 0, item);
  if (items.length > 500) items.splice(0, items.length - 500);
  const active = S.view && S.view.kind === kind && S.view.id === model.id;
  if (active) {
    if (at === items.length - 1) appendItemNode(item, items[at - 1]);
    else invalidate('convo');
  } else if (item.kind === 'msg' && !item.mine && !replay) {
    model.unread += 1;
    invalidate(kind === 'room' ? 'rooms' : 'dms', 'title');
  }
  if (kind === 'dm') persist();
}

// ------------------------------------------------------------------ direct messages

/** @param {string} id @param {string} [name] @returns {Dm} */
function dmModel(id, name) {
  let d = S.dms.get(id);
  if (!d) {
    d = { id, name: name || nameOf(id), items: [], seqs: new Set(), unread: 0 };
    S.dms.set(id, d);
    invalidate('dms');
  } else if (name) {
    d.name = name;
  }
  return d;
}

/** @param {any} saved */
function restoreDms(saved) {
  if (!saved || typeof saved !== 'object') return;
  for (const [id, v] of Object.entries(saved)) {
    const d = dmModel(id, /** @type {any} */ (v).name);
    for (const it of /** @type {any} */ (v).items ?? []) {
      d.items.push(it);
      if (typeof it.seq === 'number' && !it.mine) d.seqs.add(it.seq);
    }
  }
}

/** @param {any} f */
function onDirect(f) {
  learnName(f.from, f.name);
  const d = dmModel(f.from, f.name);
  if (typeof f.seq === 'number') {
    if (d.seqs.has(f.seq)) return;
    d.seqs.add(f.seq);
  }
  // DM seqs are the recipient's; a DM to yourself arrives from yourself.
  const item = { kind: /** @type {const} */ ('msg'), from: f.from, name: f.name, data: f.data, ts: f.ts, seq: undefined, mine: false };
  addItem(d, 'dm', item);
  if (!(S.view?.kind === 'dm' && S.view.id === f.from) && f.from !== S.me.user) {
    toast(h('span', {}, h('b', { text: f.name }), ': ', previewText(f.data)), 'info', 3500);
  }
  invalidate('dms', 'title');
}

/**
 * Open (or start) a conversation with a user.
 * @param {string} raw
 * @param {{focus?: boolean}} [opts]
 */
function openDm(raw, opts = {}) {
  const id = raw.trim().replace(/^@/, '');
  if (!ID_RE.test(id)) {
    toast('That is not a valid user id.', 'error');
    return;
  }
  dmModel(id);
  openView('dm', id, opts);
  persist();
}

/** @param {any} data */
function previewText(data) {
  if (typeof data === 'string') return data;
  if (data && typeof data.text === 'string') return data.text;
  return JSON.stringify(data);
}

// ------------------------------------------------------------------ conversation view

/**
 * @param {'room'|'dm'} kind
 * @param {string} id
 * @param {{focus?: boolean}} [opts]
 */
function openView(kind, id, opts = {}) {
  S.view = { kind, id };
  const model = kind === 'room' ? S.rooms.get(id) : S.dms.get(id);
  if (model) model.unread = 0;
  closeMenu();
  if (S.tab !== 'chat' && opts.focus !== false) switchTab('chat');
  invalidate('rooms', 'dms', 'convo', 'members', 'title');
  persist();
  if (opts.focus !== false) queueMicrotask(() => /** @type {HTMLTextAreaElement} */ ($('composer-input')).focus());
}

function openFirstView() {
  const first = [...S.rooms.values()].find((r) => r.joined || r.joining);
  if (first) S.view = { kind: 'room', id: first.id };
  else {
    const dm = S.dms.values().next().value;
    S.view = dm ? { kind: 'dm', id: dm.id } : null;
  }
  invalidate('rooms', 'dms', 'convo', 'members');
}

function currentModel() {
  if (!S.view) return null;
  return S.view.kind === 'room' ? S.rooms.get(S.view.id) ?? null : S.dms.get(S.view.id) ?? null;
}

function renderConversation() {
  const v = S.view;
  const model = currentModel();
  const list = $('messages');
  const input = /** @type {HTMLTextAreaElement} */ ($('composer-input'));
  const send = /** @type {HTMLButtonElement} */ ($('composer-send'));
  const empty = $('convo-empty');
  list.replaceChildren();
  $('leave-btn').hidden = !(v?.kind === 'room');
  $('members-btn').hidden = !(v?.kind === 'room');
  $('chat-view').classList.toggle('no-members', v?.kind !== 'room');
  $('members').hidden = v?.kind !== 'room';
  const iconUse = $('convo-icon').querySelector('use');
  if (!v || !model) {
    $('convo-name').textContent = 'Welcome';
    $('convo-sub').textContent = '';
    iconUse?.setAttribute('href', '#i-chat');
    input.disabled = true;
    send.disabled = true;
    input.placeholder = 'Join a room to start chatting';
    empty.hidden = false;
    empty.replaceChildren(h('h2', { text: 'Nothing open' }), h('p', { text: 'Join a room on the left, or pick someone who is online to send a direct message.' }));
    return;
  }
  if (v.kind === 'room') {
    const r = /** @type {Room} */ (model);
    iconUse?.setAttribute('href', '#i-hash');
    $('convo-name').textContent = r.id;
    $('convo-sub').textContent = r.joining && !r.joined ? 'joining…' : `${r.count || r.members.size} here`;
    input.placeholder = `Message #${r.id}`;
    $('members-btn-count').textContent = String(r.count || r.members.size);
  } else {
    const d = /** @type {Dm} */ (model);
    iconUse?.setAttribute('href', '#i-at');
    $('convo-name').textContent = d.id === S.me.user ? `${d.name} (you)` : d.name;
    $('convo-sub').textContent = S.online.has(d.id) ? `@${d.id} · online` : `@${d.id} · offline`;
    input.placeholder = `Message ${d.name}`;
  }
  // A room can take messages once joined (publishing needs the membership).
  const waiting = v.kind === 'room' && !(/** @type {Room} */ (model).joined);
  input.disabled = waiting;
  send.disabled = waiting;
  /** @type {Item | undefined} */
  let prev;
  for (const it of model.items) {
    appendItemNode(it, prev, false);
    prev = it;
  }
  empty.hidden = model.items.length > 0;
  if (!empty.hidden) {
    empty.replaceChildren(
      h('h2', { text: v.kind === 'room' ? `Welcome to #${v.id}` : `Say hi to ${nameOf(v.id)}` }),
      h('p', { text: v.kind === 'room' ? 'No messages yet. The room keeps its recent history for newcomers.' : 'Direct messages wait for people who are offline.' }),
    );
  }
  const wrap = /** @type {HTMLElement} */ (list.parentElement);
  wrap.scrollTop = wrap.scrollHeight;
}

/**
 * @param {Item} it
 * @param {Item | undefined} prev
 * @param {boolean} [live] scroll when the user is at the bottom
 */
function appendItemNode(it, prev, live = true) {
  const list = $('messages');
  const wrap = /** @type {HTMLElement} */ (list.parentElement);
  const atBottom = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 120;
  $('convo-empty').hidden = true;
  if (it.kind === 'msg' && (!prev || dayKey(prev.ts) !== dayKey(it.ts))) {
    list.append(h('li', { class: 'day', 'aria-hidden': 'true', text: fmtDay(it.ts) }));
  }
  /** @type {HTMLElement} */
  let node;
  if (it.kind === 'sys') {
    node = h('li', { class: `sys${it.cls ? ` ${it.cls}` : ''}`, 'data-testid': 'sys' }, h('span', { text: it.text }), h('time', { datetime: new Date(it.ts).toISOString(), text: fmtTime(it.ts) }));
  } else {
    const cont = prev && prev.kind === 'msg' && prev.from === it.from && it.ts - prev.ts < 5 * 60000 && dayKey(prev.ts) === dayKey(it.ts);
    node = messageNode(it, !!cont);
  }
  if (live && S.tab === 'chat') node.classList.add('new');
  list.append(node);
  if (live && (atBottom || (it.kind === 'msg' && it.mine))) wrap.scrollTop = wrap.scrollHeight;
}

/**
 * @param {Extract<Item, {kind: 'msg'}>} it
 * @param {boolean} cont
 */
function messageNode(it, cont) {
  const data = it.data;
  /** @type {Node} */
  let body;
  let text = '';
  if (typeof data === 'string') text = data;
  else if (data && typeof data === 'object' && typeof data.text === 'string') text = data.text;
  if (text) body = h('div', { class: 'text', text });
  else body = h('code', { class: 'json', text: JSON.stringify(data) });
  const gameId = it.mine ? undefined : text.match(GAME_ID_RE)?.[0];
  const actions = gameId
    ? h(
        'div',
        { class: 'invite-actions' },
        h('button', { type: 'button', class: 'btn small', 'data-testid': 'invite-join', onclick: () => enterGameFromUi(gameId, 'player') }, icon('grid'), 'Join game'),
        h('button', { type: 'button', class: 'btn btn-ghost small', 'data-testid': 'invite-watch', onclick: () => enterGameFromUi(gameId, 'watcher') }, icon('eye'), 'Watch'),
      )
    : null;
  const full = new Date(it.ts).toLocaleString();
  return h(
    'li',
    { class: `msg${cont ? ' cont' : ''}${it.mine ? ' mine' : ''}`, 'data-testid': 'message', 'data-from': it.from, 'data-seq': it.seq },
    avatar(it.from, it.name),
    h(
      'div',
      { class: 'body' },
      h('div', { class: 'meta' }, h('span', { class: 'name', text: it.name || it.from }), h('span', { class: 'handle', text: `@${it.from}` }), h('time', { datetime: new Date(it.ts).toISOString(), title: full, text: fmtTime(it.ts) })),
      body,
      actions,
    ),
  );
}

function wireComposer() {
  const input = /** @type {HTMLTextAreaElement} */ ($('composer-input'));
  const grow = () => {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
  };
  input.addEventListener('input', grow);
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      $('composer').requestSubmit();
    }
  });
  $('composer').addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    const v = S.view;
    const client = S.client;
    if (!text || !v || !client) return;
    input.value = '';
    grow();
    try {
      if (v.kind === 'room') {
        await client.publish(v.id, { text });
      } else {
        const ok = await client.send(v.id, { text });
        if (v.id !== S.me.user) {
          const d = dmModel(v.id);
          addItem(d, 'dm', { kind: 'msg', from: S.me.user, name: S.me.name, data: { text }, ts: Date.now(), mine: true });
          void ok;
        }
      }
    } catch (err) {
      if (!input.value) input.value = text;
      grow();
      toast(`Not sent: ${errText(err)}`, 'error');
    }
  });
}

// ------------------------------------------------------------------ sidebar lists

function renderRoomList() {
  const list = $('room-list');
  list.replaceChildren(
    ...[...S.rooms.values()].map((r) => {
      const active = S.view?.kind === 'room' && S.view.id === r.id;
      return h(
        'li',
        { class: `nav-item${active ? ' active' : ''}${r.unread ? ' unread' : ''}`, 'data-testid': 'room-item', 'data-room': r.id },
        h(
          'button',
          { type: 'button', class: 'nav-link', 'aria-current': active ? 'page' : false, onclick: () => openView('room', r.id) },
          icon('hash'),
          h('span', { class: 'label', text: r.id }),
          r.joining && !r.joined ? h('span', { class: 'sub', text: '…' }) : null,
          r.unread ? h('span', { class: 'unread-badge', 'aria-label': `${r.unread} unread`, text: String(r.unread) }) : null,
        ),
        h('button', { type: 'button', class: 'icon-btn item-action', 'aria-label': `Leave #${r.id}`, title: 'Leave', 'data-testid': 'room-leave', onclick: () => leaveRoom(r.id) }, icon('x')),
      );
    }),
  );
}

function renderDmList() {
  const list = $('dm-list');
  list.replaceChildren(
    ...[...S.dms.values()].map((d) => {
      const active = S.view?.kind === 'dm' && S.view.id === d.id;
      return h(
        'li',
        { class: `nav-item${active ? ' active' : ''}${d.unread ? ' unread' : ''}`, 'data-testid': 'dm-item', 'data-user': d.id },
        h(
          'button',
          { type: 'button', class: 'nav-link', 'aria-current': active ? 'page' : false, onclick: () => openView('dm', d.id) },
          avatar(d.id, d.name, { size: 'sm', online: S.online.has(d.id) }),
          h('span', { class: 'label', text: d.id === S.me.user ? `${d.name} (you)` : d.name }),
          d.unread ? h('span', { class: 'unread-badge', 'aria-label': `${d.unread} unread`, text: String(d.unread) }) : null,
        ),
      );
    }),
  );
}

/**
 * @param {string} user
 * @param {string} name
 * @param {string} testid
 */
function personItem(user, name, testid) {
  const me = user === S.me.user;
  return h(
    'li',
    { class: 'nav-item', 'data-testid': testid, 'data-user': user },
    h(
      'button',
      { type: 'button', class: 'nav-link', title: me ? 'You' : `Message ${name} (@${user})`, onclick: () => openDm(user) },
      avatar(user, name, { size: 'sm', online: true }),
      h('span', { class: 'label', text: name }),
      me ? h('span', { class: 'you', text: 'you' }) : null,
    ),
  );
}

function renderOnline() {
  const users = [...S.online.entries()].sort((a, b) => (a[0] === S.me.user ? -1 : b[0] === S.me.user ? 1 : a[1].localeCompare(b[1])));
  $('online-list').replaceChildren(...users.map(([u, n]) => personItem(u, n, 'online-user')));
  $('online-count').textContent = String(S.onlineCount || users.length);
  $('online-ids').replaceChildren(...users.filter(([u]) => u !== S.me.user).map(([u, n]) => h('option', { value: u, label: n })));
  renderInviteOptions();
  if (S.view?.kind === 'dm') invalidate('convo');
}

function renderMembers() {
  const r = S.view?.kind === 'room' ? S.rooms.get(S.view.id) : null;
  if (!r) {
    $('member-list').replaceChildren();
    $('members-count').textContent = '0';
    return;
  }
  const members = [...r.members.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  $('member-list').replaceChildren(...members.map(([u, n]) => personItem(u, n, 'member')));
  $('members-count').textContent = String(r.count || members.length);
  $('members-btn-count').textContent = String(r.count || members.length);
  $('convo-sub').textContent = r.joining && !r.joined ? 'joining…' : `${r.count || members.length} here`;
}

function renderMe() {
  $('me-name').textContent = S.me.name || S.me.user;
  $('me-id').textContent = S.me.user ? `@${S.me.user}` : '';
  const av = $('me-avatar');
  av.style.setProperty('--hue', String(hue(S.me.user || 'me')));
  av.textContent = initials(S.me.name || S.me.user || '?');
}

function renderTitle() {
  let n = 0;
  for (const r of S.rooms.values()) n += r.unread;
  for (const d of S.dms.values()) n += d.unread;
  document.title = n ? `(${n}) Switchboard` : 'Switchboard';
}

// ------------------------------------------------------------------ who is online

let whoTimer = 0;
async function refreshWho() {
  const client = S.client;
  if (!client) return;
  try {
    const users = await client.whoAll();
    if (S.client !== client) return;
    S.online = new Map(users.map((u) => [u.user, u.name]));
    for (const u of users) learnName(u.user, u.name);
    S.onlineCount = users.length;
    invalidate('online', 'dms', 'games');
  } catch {
    /* refreshed again later */
  }
  clearTimeout(whoTimer);
  // Without the online feed, poll now and then; with it, the feed keeps the list fresh.
  whoTimer = window.setTimeout(refreshWho, S.feedOn ? 60000 : 15000);
}

/** @param {boolean} on */
async function setFeed(on) {
  const client = S.client;
  if (!client) return;
  const btn = $('feed-toggle');
  btn.setAttribute('aria-checked', String(on));
  try {
    if (on) await client.onlineWatch('all');
    else await client.onlineUnwatch();
    S.feedOn = on;
    if (on) refreshWho();
  } catch (err) {
    S.feedOn = !on;
    toast(`Online alerts: ${errText(err)}`, 'error');
  }
  persist();
  invalidate('feed');
}

/** @param {any} f */
function onOnlineChanges(f) {
  const ts = Date.now();
  /** @type {{text: string, on: boolean}[]} */
  const lines = [];
  for (const u of f.online ?? []) {
    learnName(u.user, u.name);
    S.online.set(u.user, u.name);
    if (u.user !== S.me.user) lines.push({ text: `${u.name} is online`, on: true });
  }
  for (const id of f.offline ?? []) {
    const name = nameOf(id);
    S.online.delete(id);
    if (id !== S.me.user) lines.push({ text: `${name} went offline`, on: false });
  }
  S.onlineCount = S.online.size;
  if (f.dropped) {
    lines.push({ text: `…and ${f.dropped} more came or went`, on: true });
    refreshWho();
  }
  for (const l of lines) S.feed.unshift({ ...l, ts, fresh: true });
  S.feed.splice(30);
  if (lines.length > 3) {
    const ons = lines.filter((l) => l.on).length;
    toast(`${ons} came online, ${lines.length - ons} went offline`, 'info');
  } else {
    for (const l of lines) toast(l.text, l.on ? 'online' : 'offline', 3500);
  }
  invalidate('feed', 'online', 'dms');
}

function renderFeed() {
  $('feed-toggle').setAttribute('aria-checked', String(S.feedOn));
  $('feed').replaceChildren(
    ...S.feed.map((l) => {
      const m = l.text.match(/^(.*?) (is online|went offline|came or went)$/);
      return h(
        'li',
        { class: `${l.on ? 'on' : 'off'}${l.fresh ? ' new' : ''}`, 'data-testid': 'feed-line' },
        m ? h('span', {}, h('b', { text: m[1] }), ` ${m[2]}`) : h('span', { text: l.text }),
        h('time', { text: fmtTime(l.ts) }),
      );
    }),
  );
  for (const l of S.feed) l.fresh = false;
  $('feed-empty').hidden = S.feed.length > 0;
  $('feed-empty').innerHTML = S.feedOn ? 'Listening… you will see people come and go here.' : 'Turn on <b>Online alerts</b> to see who comes and goes.';
}

// ------------------------------------------------------------------ games

/** @param {string} room @returns {Game} */
function gameModel(room) {
  let g = S.games.get(room);
  if (!g) {
    g = { room, role: null, owner: null, opponent: null, started: false, msgs: new Map(), closed: null, joined: false, pendingSeq: 0, sending: false, seen: 0, gap: false, restarted: false, base: 0 };
    S.games.set(room, g);
  }
  return g;
}

/** @param {Game} g */
function derive(g) {
  if (!g.owner) return null;
  return T.replay({ owner: g.owner, opponent: g.opponent }, g.msgs.values());
}

/** @param {string} reason */
function closedText(reason) {
  if (reason === 'left') return 'a player left';
  if (reason === 'closed') return 'closed by its owner';
  if (reason === 'abandoned') return 'a player did not come back';
  if (reason === 'unavailable') return 'could not reconnect to it';
  return reason;
}

/**
 * What to tell this user about a game: `state` drives the styling (and the e2e test).
 * @param {Game} g
 * @param {T.Match | null} match
 */
function gameStatus(g, match) {
  const me = S.me.user;
  if (!match) return { state: 'loading', text: 'Loading the game…' };
  const o = T.outcome(match.board);
  const myMark = g.role === 'player' ? T.markOf(match, me) : null;
  if (o.state === 'won') {
    const w = T.playerFor(match, o.winner) ?? '';
    if (myMark) return w === me ? { state: 'won', text: 'You win!' } : { state: 'lost', text: `${nameOf(w)} wins` };
    return { state: 'over', text: `${nameOf(w)} wins (${o.winner})` };
  }
  if (o.state === 'draw') return { state: 'draw', text: "It's a draw" };
  if (g.closed) return { state: 'closed', text: `Game over: ${closedText(g.closed)}` };
  if (!match.opponent) {
    return g.role === 'player'
      ? { state: 'waiting', text: 'Waiting for an opponent. Share the game id!' }
      : { state: 'waiting', text: 'Waiting for a second player' };
  }
  if (!g.started && match.moves.length === 0) {
    const other = g.role === 'player' ? (me === match.owner ? match.opponent : match.owner) : match.opponent;
    return { state: 'waiting', text: `Waiting for ${nameOf(other ?? '')} to join` };
  }
  const turnUser = T.playerFor(match, o.turn) ?? '';
  if (myMark) {
    return turnUser === me
      ? { state: 'your-turn', text: `Your turn: you play ${myMark}` }
      : { state: 'their-turn', text: `${nameOf(turnUser)}'s turn (${o.turn})` };
  }
  return { state: 'their-turn', text: `${nameOf(turnUser)} to move (${o.turn})` };
}

/**
 * Create a game: this session takes the first seat (X in the first round).
 */
async function createGame() {
  const client = S.client;
  if (!client) return;
  setGameError('');
  const btn = /** @type {HTMLButtonElement} */ ($('game-create'));
  btn.disabled = true;
  try {
    const created = await client.gameCreate();
    const g = gameModel(created.room);
    Object.assign(g, { role: 'player', owner: created.owner, joined: true, closed: null });
    openGame(created.room);
    persist();
  } catch (err) {
    setGameError(`Could not create a game: ${errText(err)}`);
  } finally {
    btn.disabled = false;
  }
}

/** @param {string} text @param {Node} [extra] */
function setGameError(text, extra) {
  const el = $('game-error');
  el.replaceChildren(text, ...(extra ? [' ', extra] : []));
}

/**
 * @param {string} room
 * @param {'player'|'watcher'} role
 */
function enterGameFromUi(room, role) {
  switchTab('games');
  /** @type {HTMLInputElement} */ ($('game-id-input')).value = room;
  enterGame(room, role).catch(() => {});
}

/**
 * Take a seat (`game.join`) or watch (`game.watch`) with the whole log (`since: 0`), so
 * the board is rebuilt from every move so far.
 * @param {string} raw
 * @param {'player'|'watcher'} role
 * @param {{focus?: boolean, resume?: boolean, switchTab?: boolean}} [opts]
 */
async function enterGame(raw, role, opts = {}) {
  const { focus = true, resume = false } = opts;
  const open = () => openGame(room, { switchTab: opts.switchTab !== false });
  const client = S.client;
  if (!client) return;
  const room = raw.trim();
  setGameError('');
  if (!ID_RE.test(room)) {
    setGameError('Paste a game id like g-1f2e….');
    return;
  }
  const existing = S.games.get(room);
  if (existing && existing.joined && !existing.closed) {
    if (focus) open();
    return;
  }
  if (existing) S.games.delete(room);
  const g = gameModel(room);
  g.role = role;
  if (focus) open();
  invalidate('games');
  try {
    /** @type {any} */
    let ok;
    for (let attempt = 1; ; attempt++) {
      try {
        ok = role === 'watcher' ? await client.gameWatch(room, { since: 0 }) : await client.gameJoin(room, { since: 0 });
        break;
      } catch (err) {
        // After a page reload the old session may still hold the seat for a moment.
        if (resume && /** @type {any} */ (err)?.code === 'conflict' && attempt < 6) {
          await sleep(400 * attempt);
          continue;
        }
        throw err;
      }
    }
    if (S.client !== client) return;
    Object.assign(g, { role: ok.role, owner: ok.owner, opponent: ok.opponent ?? null, started: !!ok.started, joined: true, closed: null });
    if (ok.recovered === false) g.gap = true;
  } catch (err) {
    if (S.games.get(room) === g && !g.joined) S.games.delete(room);
    if (S.activeGame === room && !S.games.has(room)) S.activeGame = null;
    const e = /** @type {any} */ (err);
    if (e?.code === 'room_full' && role === 'player') {
      setGameError('That game already has two players.', h('button', { type: 'button', class: 'link', onclick: () => enterGame(room, 'watcher') }, 'Watch it instead'));
    } else if (e?.code === 'not_found') {
      setGameError('No such game: it may have ended, or the id is mistyped.');
    } else if (e?.code === 'conflict') {
      setGameError('You are already in that game (maybe in another tab).');
    } else {
      setGameError(`Could not ${role === 'watcher' ? 'watch' : 'join'}: ${errText(err)}`);
    }
  }
  invalidate('games');
  persist();
}

/**
 * @param {string} room
 * @param {{switchTab?: boolean}} [opts]
 */
function openGame(room, opts = {}) {
  S.activeGame = room;
  const g = S.games.get(room);
  if (g) g.seen = g.msgs.size;
  if (S.tab !== 'games' && opts.switchTab !== false) switchTab('games', { focus: false });
  invalidate('games');
  persist();
}

/** @param {any} f @param {any} info */
function onGameMessage(f, info) {
  const g = gameModel(f.room);
  const key = g.base + f.seq;
  if (g.msgs.has(key)) return;
  g.msgs.set(key, g.base ? { ...f, seq: key } : f);
  if (S.tab === 'games' && S.activeGame === f.room) g.seen = g.msgs.size;
  else if (!info?.replay && f.from !== S.me.user) {
    const d = T.parseMessage(f.data);
    if (d.kind === 'text') toast(h('span', {}, h('b', { text: nameOf(f.from) }), ' in a game: ', d.text), 'info');
  }
  invalidate('games');
}

/** @param {number} cell */
async function playCell(cell) {
  const client = S.client;
  const g = S.activeGame ? S.games.get(S.activeGame) : null;
  if (!client || !g || g.role !== 'player' || g.closed || g.sending) return;
  const d = derive(g);
  if (!d) return;
  const mark = T.markOf(d.match, S.me.user);
  if (!mark || T.illegalReason(d.match.board, cell, mark)) return;
  g.sending = true;
  invalidate('games');
  try {
    const ok = await client.gameSend(g.room, T.moveMessage(cell), 'all');
    // The move shows once its echo (to `all`) arrives; until then the board stays locked.
    if (!g.msgs.has(g.base + ok.seq)) g.pendingSeq = g.base + ok.seq;
  } catch (err) {
    toast(`Move not sent: ${errText(err)}`, 'error');
  } finally {
    g.sending = false;
    invalidate('games');
  }
}

async function rematch() {
  const client = S.client;
  const g = S.activeGame ? S.games.get(S.activeGame) : null;
  if (!client || !g || g.role !== 'player') return;
  try {
    await client.gameSend(g.room, T.rematchMessage(), 'all');
  } catch (err) {
    toast(`Could not start a new round: ${errText(err)}`, 'error');
  }
}

let leaveArmed = '';
async function leaveGame() {
  const client = S.client;
  const g = S.activeGame ? S.games.get(S.activeGame) : null;
  if (!client || !g) return;
  if (!g.joined || g.closed) {
    S.games.delete(g.room);
    S.activeGame = null;
    invalidate('games');
    persist();
    return;
  }
  if (g.role === 'player' && leaveArmed !== g.room) {
    // Two steps: a player's leave ends the game for everyone.
    leaveArmed = g.room;
    invalidate('games');
    setTimeout(() => {
      if (leaveArmed === g.room) {
        leaveArmed = '';
        invalidate('games');
      }
    }, 4000);
    return;
  }
  leaveArmed = '';
  try {
    await client.gameLeave(g.room);
  } catch (err) {
    const e = /** @type {any} */ (err);
    if (e?.code !== 'not_found') toast(`Leaving the game: ${errText(err)}`, 'error');
  }
  S.games.delete(g.room);
  S.activeGame = null;
  invalidate('games');
  persist();
}

/** @param {string} text */
async function sayInGame(text) {
  const client = S.client;
  const g = S.activeGame ? S.games.get(S.activeGame) : null;
  if (!client || !g || !text) return;
  if (g.role !== 'player') {
    toast('Watchers cannot talk in the game; use a room or a DM.', 'warn');
    return;
  }
  try {
    await client.gameSend(g.room, { text }, 'all');
  } catch (err) {
    toast(`Not sent: ${errText(err)}`, 'error');
  }
}

function renderGames() {
  renderGameList();
  renderGame();
  const attention = [...S.games.values()].some((g) => g !== S.games.get(S.activeGame ?? '') && g.msgs.size > g.seen) || (S.tab !== 'games' && [...S.games.values()].some((g) => g.msgs.size > g.seen));
  /** @type {HTMLElement} */ ($('tab-games').querySelector('.dot')).hidden = !attention;
}

function renderGameList() {
  const games = [...S.games.values()];
  $('game-list-empty').hidden = games.length > 0;
  $('game-list').replaceChildren(
    ...games.map((g) => {
      const d = derive(g);
      const st = gameStatus(g, d?.match ?? null);
      const active = S.activeGame === g.room;
      const owner = g.owner ? nameOf(g.owner) : '…';
      const opp = (d?.match.opponent ?? g.opponent) ? nameOf(/** @type {string} */ (d?.match.opponent ?? g.opponent)) : '?';
      return h(
        'li',
        { class: `nav-item game-list-item${active ? ' active' : ''}${st.state === 'your-turn' ? ' your-turn' : ''}`, 'data-testid': 'game-item', 'data-room': g.room },
        h(
          'button',
          { type: 'button', class: 'nav-link', onclick: () => openGame(g.room) },
          h('span', { class: 'top' }, icon(g.role === 'watcher' ? 'eye' : 'grid'), h('span', { class: 'vs', text: `${owner} vs ${opp}` })),
          h('span', { class: 'state', text: st.text }),
        ),
      );
    }),
  );
}

/**
 * @param {'X'|'O'} mark
 */
function markIcon(mark) {
  return icon(mark === 'X' ? 'x' : 'o', 'mark');
}

/** What the board showed last, to animate only new marks. */
let boardShown = { room: '', marks: /** @type {(string|null)[]} */ (Array(9).fill(null)) };

function renderGame() {
  const g = S.activeGame ? S.games.get(S.activeGame) : null;
  $('game-empty').hidden = !!g;
  $('game').hidden = !g;
  if (!g) return;
  if (S.tab === 'games') g.seen = g.msgs.size;
  const d = derive(g);
  const match = d?.match ?? null;
  $('game-id').textContent = g.room;
  const roleEl = $('game-role');
  roleEl.textContent = g.role === 'watcher' ? 'Watching' : g.role === 'player' ? 'Playing' : '';
  roleEl.className = `role-badge${g.role === 'watcher' ? ' watching' : ''}`;

  // Invite: only while the second seat is free.
  const canInvite = g.role === 'player' && !g.closed && !(match?.opponent ?? g.opponent);
  $('invite-form').hidden = !canInvite;
  if (canInvite) renderInviteOptions();

  // Players, with their marks in the current round.
  const st = gameStatus(g, match);
  const o = match ? T.outcome(match.board) : null;
  const toMove = o && o.state === 'playing' && match?.opponent && (g.started || match.moves.length) && !g.closed ? T.playerFor(match, o.turn) : null;
  /**
   * @param {string | null} user
   * @param {'left'|'right'} side
   */
  const playerCard = (user, side) => {
    const mark = match && user ? T.markOf(match, user) : side === 'left' ? 'X' : 'O';
    const cls = `player ${side} mark-${(mark ?? 'x').toLowerCase()}${user && user === toMove ? ' to-move' : ''}${user ? '' : ' empty'}`;
    return h(
      'div',
      { class: cls, 'data-testid': `player-${side}`, 'data-user': user ?? '' },
      markIcon(mark ?? 'X'),
      h('div', { class: 'who' }, h('b', { text: user ? nameOf(user) : 'Open seat' }), h('span', { text: user ? `@${user}${user === S.me.user ? ' · you' : ''}` : 'waiting for a player' })),
    );
  };
  const score = match?.score ?? { owner: 0, opponent: 0, draws: 0 };
  $('players').replaceChildren(
    playerCard(g.owner, 'left'),
    h('div', { class: 'score', 'data-testid': 'score' }, `${score.owner} – ${score.opponent}`, h('small', { text: score.draws ? `${score.draws} draw${score.draws > 1 ? 's' : ''}` : `round ${(match?.round ?? 0) + 1}` })),
    playerCard(match?.opponent ?? g.opponent, 'right'),
  );

  const status = $('game-status');
  status.textContent = st.text;
  status.dataset.state = st.state;

  // Board.
  const board = $('board');
  const myMark = match && g.role === 'player' ? T.markOf(match, S.me.user) : null;
  const waitingEcho = g.pendingSeq > 0 && !g.msgs.has(g.pendingSeq);
  const canPlay = !!(match && myMark && !g.closed && !g.sending && !waitingEcho && st.state === 'your-turn');
  const winLine = o && o.state === 'won' ? o.line : [];
  const last = match?.moves.at(-1);
  board.classList.toggle('over', !!o && o.state !== 'playing');
  board.setAttribute('aria-disabled', String(!canPlay));
  // The cells are kept (focus stays put); a mark that just appeared pops in.
  const same = boardShown.room === g.room;
  if (board.children.length !== 9) {
    board.replaceChildren(
      ...Array.from({ length: 9 }, (_, i) => h('button', { type: 'button', 'data-testid': `cell-${i}`, onclick: () => playCell(i) })),
    );
  }
  for (let i = 0; i < 9; i++) {
    const v = match?.board[i] ?? null;
    const cell = /** @type {HTMLButtonElement} */ (board.children[i]);
    const playable = canPlay && v === null;
    const fresh = same && v !== null && boardShown.marks[i] === null;
    cell.className = `cell${v ? ` ${v.toLowerCase()}` : ''}${playable ? ' playable' : ''}${winLine.includes(i) ? ' win' : ''}${last === i ? ' last' : ''}${fresh ? ' fresh' : ''}`;
    cell.setAttribute('aria-label', `${T.cellName(i)}: ${v ?? 'empty'}${playable ? ', play here' : ''}`);
    cell.dataset.mark = v ?? '';
    cell.disabled = !playable;
    const want = v ? v : playable && myMark ? `ghost-${myMark}` : '';
    if (cell.dataset.shows !== want) {
      cell.dataset.shows = want;
      cell.replaceChildren(...(v ? [icon(v === 'X' ? 'x' : 'o')] : playable && myMark ? [icon(myMark === 'X' ? 'x' : 'o', 'ghost')] : []));
    }
  }
  boardShown = { room: g.room, marks: match ? match.board.slice() : Array(9).fill(null) };

  // Actions.
  const roundOver = !!o && o.state !== 'playing';
  $('game-rematch').hidden = !(g.role === 'player' && roundOver && !g.closed);
  const leave = $('game-leave');
  const armed = leaveArmed === g.room && g.role === 'player' && g.joined && !g.closed;
  leave.textContent = !g.joined || g.closed ? 'Remove from list' : g.role === 'watcher' ? 'Stop watching' : armed ? 'Leave and end the game?' : 'Leave game';
  leave.classList.toggle('danger', armed);
  $('game-say').hidden = g.role !== 'player' || !!g.closed;

  // Log.
  const log = $('game-log');
  /** @type {HTMLElement[]} */
  const lines = [];
  let n = 0;
  let round = 0;
  if (g.gap) lines.push(h('li', { class: 'sys' }, 'Some earlier moves are no longer available.'));
  if (g.restarted) lines.push(h('li', { class: 'sys', 'data-testid': 'game-restarted' }, 'The game history restarted on the server: moves from just before may be missing.'));
  for (const ev of d?.events ?? []) {
    if (ev.kind === 'move') {
      n += 1;
      lines.push(h('li', { 'data-testid': 'game-log-move' }, h('span', { class: 'n', text: `${n}.` }), h('span', {}, h('b', { text: nameOf(ev.from) }), ` played ${ev.mark} at ${T.cellName(/** @type {number} */ (ev.cell))}`)));
      const oc = ev.outcome;
      if (oc && oc.state === 'won') lines.push(h('li', { class: 'result' }, h('span', { class: 'n' }), h('span', {}, h('b', { text: `${nameOf(T.playerFor({ ...match, round }, oc.winner) ?? '')} wins` }), ` (${oc.line.map(T.cellName).join(' ')})`)));
      if (oc && oc.state === 'draw') lines.push(h('li', { class: 'result' }, h('span', { class: 'n' }), h('b', { text: 'Draw' })));
    } else if (ev.kind === 'rematch') {
      round += 1;
      n = 0;
      lines.push(h('li', { class: 'sys' }, h('span', { class: 'n' }), h('span', { text: `Round ${round + 1}: ${nameOf(ev.from)} asked for a rematch` })));
    } else if (ev.kind === 'text') {
      lines.push(h('li', { class: 'chat' }, h('span', { class: 'n' }), h('span', {}, h('b', { text: `${nameOf(ev.from)}: ` }), /** @type {string} */ (ev.text))));
    } else if (ev.kind === 'ignored' && ev.reason !== 'duplicate' && ev.reason !== 'not a tic-tac-toe message') {
      lines.push(h('li', { class: 'sys', 'data-testid': 'game-log-ignored' }, h('span', { class: 'n' }), h('span', { text: `Ignored a move by ${nameOf(ev.from)}: ${ev.reason}` })));
    }
  }
  if (!lines.length) lines.push(h('li', { class: 'sys' }, h('span', { text: 'No moves yet. X moves first.' })));
  log.replaceChildren(...lines);
  log.scrollTop = log.scrollHeight;
}

function renderInviteOptions() {
  const sel = /** @type {HTMLSelectElement} */ ($('invite-to'));
  const prev = sel.value;
  const users = [...S.online.entries()].filter(([u]) => u !== S.me.user);
  sel.replaceChildren(
    h('option', { value: '', text: users.length ? 'Invite someone…' : 'Nobody else online' }),
    ...users.map(([u, n]) => h('option', { value: u, text: `${n} (@${u})` })),
  );
  if (users.some(([u]) => u === prev)) sel.value = prev;
}

// ------------------------------------------------------------------ ranked

let rankTicker = 0;
async function rankFind() {
  const client = S.client;
  if (!client) return;
  const token = ++S.rankToken;
  S.rank = { state: 'joining' };
  invalidate('rank');
  try {
    const q = await client.rankJoin();
    if (S.rankToken !== token || S.rank.state === 'matched') return;
    S.rank = { state: 'queued', rating: q.rating, since: Date.now(), queued: q.queued };
  } catch (err) {
    if (S.rankToken === token) S.rank = { state: 'idle', error: errText(err) };
  }
  invalidate('rank');
}

async function rankCancel() {
  const client = S.client;
  if (!client) return;
  ++S.rankToken;
  S.rank = { state: 'idle' };
  invalidate('rank');
  try {
    await client.rankLeave();
  } catch (err) {
    toast(`Leaving the queue: ${errText(err)}`, 'error');
  }
}

/** @param {any} f */
function onRankMatched(f) {
  ++S.rankToken;
  S.rank = { state: 'matched', opponent: f.opponent, opponentRating: f.opponent_rating, room: f.room };
  invalidate('rank');
  toast(`Matched with ${nameOf(f.opponent)} (${f.opponent_rating})`, 'ok');
  enterGame(f.room, 'player').catch(() => {});
}

function renderRank() {
  const el = $('rank-status');
  const btn = /** @type {HTMLButtonElement} */ ($('rank-btn'));
  const label = /** @type {HTMLElement} */ (btn.querySelector('span'));
  const r = S.rank;
  el.dataset.state = r.state;
  clearInterval(rankTicker);
  btn.disabled = r.state === 'joining';
  if (r.state === 'queued') {
    const tick = () => {
      const s = Math.floor((Date.now() - (r.since ?? Date.now())) / 1000);
      const queue = r.queued ? ` · ${r.queued} in queue` : '';
      const accepting = r.window ? ` · accepting ±${r.window}` : '';
      el.textContent = `Searching for an opponent… ${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')} · your rating ${r.rating}${queue}${accepting}`;
    };
    tick();
    rankTicker = window.setInterval(tick, 1000);
    label.textContent = 'Cancel search';
    btn.dataset.testid = 'rank-cancel';
    btn.classList.replace('btn-accent', 'btn');
  } else {
    btn.dataset.testid = 'rank-find';
    btn.classList.add('btn-accent');
    if (r.state === 'joining') {
      el.textContent = 'Joining the queue…';
      label.textContent = 'Find ranked match';
    } else if (r.state === 'matched') {
      el.textContent = `Matched with ${nameOf(r.opponent ?? '')} (rating ${r.opponentRating})`;
      label.textContent = 'Find another match';
    } else {
      el.textContent = r.error
        ? `Could not queue: ${r.error}`
        : (r.note ?? 'Get paired with a player of your rating.');
      label.textContent = 'Find ranked match';
    }
  }
}

// ------------------------------------------------------------------ chrome: tabs, menu, rename

/**
 * @param {'chat'|'games'} tab
 * @param {{focus?: boolean}} [opts]
 */
function switchTab(tab, opts = {}) {
  S.tab = tab;
  for (const [name, panel] of /** @type {const} */ ([
    ['chat', 'chat-view'],
    ['games', 'games-view'],
  ])) {
    const t = $(`tab-${name}`);
    const on = name === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(panel).hidden = !on;
    if (on && opts.focus) t.focus();
  }
  if (tab === 'chat') {
    const m = currentModel();
    if (m) m.unread = 0;
    invalidate('rooms', 'dms', 'title');
  }
  invalidate('games');
  persist();
}

function closeMenu() {
  $('sidebar').classList.remove('open');
  $('scrim').hidden = true;
  $('menu-btn').setAttribute('aria-expanded', 'false');
}

function wireChrome() {
  $('tab-chat').addEventListener('click', () => switchTab('chat'));
  $('tab-games').addEventListener('click', () => switchTab('games'));
  $('tab-chat').parentElement?.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      e.preventDefault();
      switchTab(S.tab === 'chat' ? 'games' : 'chat', { focus: true });
    }
  });
  $('menu-btn').addEventListener('click', () => {
    const open = !$('sidebar').classList.contains('open');
    $('sidebar').classList.toggle('open', open);
    $('scrim').hidden = !open;
    $('menu-btn').setAttribute('aria-expanded', String(open));
  });
  $('scrim').addEventListener('click', closeMenu);
  $('members-btn').addEventListener('click', () => {
    const open = !$('members').classList.contains('open');
    $('members').classList.toggle('open', open);
    $('members-btn').setAttribute('aria-expanded', String(open));
  });
  $('conn-retry').addEventListener('click', () => {
    const c = S.client;
    if (!c) return;
    if (c.state === 'closed') {
      c.connect().catch(() => {});
    } else c.reconnectNow();
  });
  $('feed-toggle').addEventListener('click', () => setFeed(!S.feedOn));
  $('who-refresh').addEventListener('click', () => refreshWho());
  $('signout-btn').addEventListener('click', signOut);
  $('join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($('join-input'));
    const v = input.value.trim();
    if (!v) return;
    input.value = '';
    joinRoom(v);
  });
  $('dm-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = /** @type {HTMLInputElement} */ ($('dm-input'));
    const v = input.value.trim();
    if (!v) return;
    input.value = '';
    openDm(v);
  });
  $('leave-btn').addEventListener('click', () => {
    if (S.view?.kind === 'room') leaveRoom(S.view.id);
  });

  // Rename.
  const dialog = /** @type {HTMLDialogElement} */ ($('rename-dialog'));
  const input = /** @type {HTMLInputElement} */ ($('rename-input'));
  $('me-btn').addEventListener('click', () => {
    input.value = S.me.name;
    $('rename-error').textContent = '';
    dialog.showModal();
    input.select();
  });
  $('rename-cancel').addEventListener('click', () => dialog.close());
  $('rename-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const client = S.client;
    const name = input.value.trim();
    if (!client || !name) return;
    try {
      const ok = await client.rename(name);
      S.me.name = ok.name;
      learnName(S.me.user, ok.name);
      if (S.online.has(S.me.user)) S.online.set(S.me.user, ok.name);
      if (S.saved) S.saved.name = ok.name;
      persist();
      dialog.close();
      toast(`You are now ${ok.name}`, 'ok', 2500);
      invalidate('me', 'online', 'members', 'games');
    } catch (err) {
      $('rename-error').textContent = errText(err);
    }
  });

  // Games.
  $('game-create').addEventListener('click', createGame);
  $('game-join-form').addEventListener('submit', (e) => {
    e.preventDefault();
    enterGame(/** @type {HTMLInputElement} */ ($('game-id-input')).value, 'player');
  });
  $('game-watch').addEventListener('click', () => enterGame(/** @type {HTMLInputElement} */ ($('game-id-input')).value, 'watcher'));
  $('game-copy').addEventListener('click', copyGameId);
  $('game-rematch').addEventListener('click', rematch);
  $('game-leave').addEventListener('click', leaveGame);
  $('rank-btn').addEventListener('click', () => (S.rank.state === 'queued' ? rankCancel() : rankFind()));
  $('game-say').addEventListener('submit', (e) => {
    e.preventDefault();
    const el = /** @type {HTMLInputElement} */ ($('game-say-input'));
    const text = el.value.trim();
    el.value = '';
    sayInGame(text);
  });
  $('invite-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const to = /** @type {HTMLSelectElement} */ ($('invite-to')).value;
    const room = S.activeGame;
    if (!to || !room || !S.client) return;
    try {
      await S.client.send(to, { text: `Play tic-tac-toe with me! Game id: ${room}` });
      const d = dmModel(to);
      addItem(d, 'dm', { kind: 'msg', from: S.me.user, name: S.me.name, data: { text: `Play tic-tac-toe with me! Game id: ${room}` }, ts: Date.now(), mine: true });
      toast(`Invite sent to ${nameOf(to)}`, 'ok', 2500);
    } catch (err) {
      toast(`Invite not sent: ${errText(err)}`, 'error');
    }
  });

  window.addEventListener('pagehide', persistNow);
}

async function copyGameId() {
  const id = $('game-id').textContent ?? '';
  const label = /** @type {HTMLElement} */ ($('game-copy').querySelector('span'));
  let ok = false;
  try {
    await navigator.clipboard.writeText(id);
    ok = true;
  } catch {
    // No clipboard permission (e.g. not a secure context): select the text instead.
    const range = document.createRange();
    range.selectNodeContents($('game-id'));
    const sel = window.getSelection();
    sel?.removeAllRanges();
    sel?.addRange(range);
    ok = document.execCommand?.('copy') ?? false;
  }
  label.textContent = ok ? 'Copied!' : 'Press Ctrl+C';
  setTimeout(() => (label.textContent = 'Copy id'), 1500);
}

// ------------------------------------------------------------------ boot

async function boot() {
  wireSignin();
  wireChrome();
  wireComposer();
  S.dev = await detectDevMode();
  const saved = loadSaved();
  if (saved && (saved.token || (S.dev && saved.user))) startSession(saved);
  else showSignin();
}

boot();
