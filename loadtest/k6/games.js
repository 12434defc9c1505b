// k6 games: FRIEND_PAIRS virtual users each play friend games back to back for
// DURATION (two sockets per user, on different gateways: create, join, MOVES moves
// alternating, the owner closes), and RANKED_PAIRS virtual users each queue two
// players of close ratings for ranked play and play the match they get (join, wait for
// `game.started`, 3 moves each, the owner leaves after the opponent's 3). Times each
// move (sender to opponent) and the wait for a ranked match. Fails on a regression: any
// failed game or match, any error frame, no game or match at all, move p99 above
// P99_MS, or a match wait p99 above MATCH_P99_MS.
//
//   loadtest/run.sh k6 loadtest/k6/games.js
//   k6 run -e URLS=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws -e SECRET=bench \
//     -e FRIEND_PAIRS=20 -e RANKED_PAIRS=10 -e DURATION=30s loadtest/k6/games.js
// Measured on a shared 2-core machine (both replicas, Redis and k6 on it), 30 s: 950
// friend games, 139 ranked games, move p99 3 ms (max 13), match wait p99 1.15 s (the
// matcher waits rank_settle = 1 s); P99_MS=50 and MATCH_P99_MS=3000 leave the margin.

import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Trend } from 'k6/metrics';
import { env, send, token, URLS } from './lib.js';

const FRIEND_PAIRS = env('FRIEND_PAIRS', 20);
const RANKED_PAIRS = env('RANKED_PAIRS', 10);
const DURATION = __ENV.DURATION || '30s';
const MOVES = env('MOVES', 6);
// One round must finish within this, or it counts as failed.
const ROUND_MS = env('ROUND_MS', 20000);

const moveMs = new Trend('sb_move_ms', true);
const matchMs = new Trend('sb_match_wait_ms', true);
const games = new Counter('sb_games');
const gameFailures = new Counter('sb_game_failures');
const ranked = new Counter('sb_ranked_games');
const rankedFailures = new Counter('sb_ranked_failures');
const errors = new Counter('sb_error_frames');

export const options = {
  summaryTrendStats: ['med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  scenarios: {
    friends: { executor: 'constant-vus', vus: FRIEND_PAIRS, duration: DURATION, exec: 'friendGame' },
    ranked: { executor: 'constant-vus', vus: RANKED_PAIRS, duration: DURATION, exec: 'rankedPair' },
  },
  thresholds: {
    sb_games: ['count>0'],
    sb_game_failures: ['count==0'],
    sb_ranked_games: ['count>0'],
    sb_ranked_failures: ['count==0'],
    sb_error_frames: ['count==0'],
    sb_move_ms: [`p(99)<${env('P99_MS', 50)}`],
    sb_match_wait_ms: [`p(99)<${env('MATCH_P99_MS', 3000)}`],
  },
};

function sleepMs(lo, hi) {
  return lo + Math.floor(Math.random() * (hi - lo));
}

/// A friend game between `ga<VU>` (first gateway) and `gb<VU>` (the next one).
export function friendGame() {
  const a = new WebSocket(URLS[__VU % URLS.length]);
  const b = new WebSocket(URLS[(__VU + 1) % URLS.length]);
  const state = { welcomed: 0, room: null, moves: 0, closed: 0, over: false };
  const finish = (ok) => {
    if (state.over) return;
    state.over = true;
    clearTimeout(timer);
    (ok ? games : gameFailures).add(1);
    a.close();
    b.close();
  };
  const timer = setTimeout(() => finish(false), ROUND_MS);
  const move = (from) => {
    send(from, { type: 'game.send', room: state.room, to: 'opponent', data: { move: state.moves, sent: Date.now() } });
  };
  const ready = () => {
    state.welcomed += 1;
    if (state.welcomed === 2) send(a, { type: 'game.create', id: 'create' });
  };
  a.onopen = () => send(a, { type: 'login', token: token(`ga${__VU}`) });
  b.onopen = () => send(b, { type: 'login', token: token(`gb${__VU}`) });
  const common = (frame, other) => {
    if (frame.type === 'welcome') ready();
    else if (frame.type === 'error') {
      errors.add(1);
      finish(false);
    } else if (frame.type === 'game.message') {
      moveMs.add(Date.now() - frame.data.sent);
      state.moves += 1;
      if (state.moves < MOVES) setTimeout(() => move(other), sleepMs(50, 200));
      else send(a, { type: 'game.close', room: state.room, id: 'close' });
    } else if (frame.type === 'game.closed') {
      state.closed += 1;
      if (state.closed === 2) finish(true);
    }
  };
  a.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === 'game.created') {
      state.room = frame.room;
      send(b, { type: 'game.join', room: state.room, id: 'join' });
    } else common(frame, a);
  };
  b.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === 'ok' && frame.id === 'join') move(a);
    else common(frame, b);
  };
}

/// Two players `rk<VU>a` / `rk<VU>b` (ratings 10 apart, on different gateways) queue for
/// ranked play; each plays the match it gets, whoever the opponent.
export function rankedPair() {
  const base = 1000 + __VU * 40;
  player(`rk${__VU}a`, base, URLS[__VU % URLS.length]);
  player(`rk${__VU}b`, base + 10, URLS[(__VU + 1) % URLS.length]);
}

function player(me, rating, url) {
  const socket = new WebSocket(url);
  const st = { queuedAt: 0, room: null, owner: null, got: 0, over: false };
  const finish = (ok) => {
    if (st.over) return;
    st.over = true;
    clearTimeout(timer);
    // Each match is counted once, by its owner; a failure by whoever sees it.
    if (!ok) rankedFailures.add(1);
    else if (st.owner === me) ranked.add(1);
    socket.close();
  };
  const timer = setTimeout(() => finish(false), ROUND_MS);
  socket.onopen = () => send(socket, { type: 'login', token: token(me, { rating: rating }) });
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    switch (frame.type) {
      case 'welcome':
        st.queuedAt = Date.now();
        send(socket, { type: 'rank.join', id: 'queue' });
        break;
      case 'rank.matched':
        matchMs.add(Date.now() - st.queuedAt);
        st.room = frame.room;
        send(socket, { type: 'game.join', room: st.room, id: 'join' });
        break;
      case 'ok':
        if (frame.id === 'join') st.owner = frame.owner;
        break;
      case 'game.started':
        for (let m = 0; m < 3; m++) {
          setTimeout(() => send(socket, { type: 'game.send', room: st.room, to: 'opponent', data: { move: m, sent: Date.now() } }), sleepMs(20, 200) + m * 200);
        }
        break;
      case 'game.message':
        moveMs.add(Date.now() - frame.data.sent);
        st.got += 1;
        if (st.got === 3 && st.owner === me) {
          // Let the own last move leave first.
          setTimeout(() => send(socket, { type: 'game.leave', room: st.room, id: 'leave' }), 700);
        }
        break;
      case 'game.closed':
        finish(true);
        break;
      case 'rank.timeout':
        finish(false);
        break;
      case 'error':
        errors.add(1);
        finish(false);
        break;
    }
  };
}
