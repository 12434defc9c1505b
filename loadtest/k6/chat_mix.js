// k6 chat mix: USERS users spread over the gateways (URLS) and ROOMS rooms, each for
// SESSION_S seconds: a room message every PUBLISH_MS, a direct message to a random
// other user every DM_MS, and alternately `who` (the online list) or its room's
// `presence` every WHO_MS. Times room and direct deliveries (sender clock = receiver
// clock: one host) and who/presence round trips. Fails on a regression: p99 of any
// kind above P99_MS, any error frame, a user that did not log in and join.
//
//   loadtest/run.sh k6 loadtest/k6/chat_mix.js
//   k6 run -e URLS=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws -e SECRET=bench \
//     -e USERS=200 -e SESSION_S=30 loadtest/k6/chat_mix.js
// (chat.js is the simpler room-only test on one gateway.)
// Measured on a shared 2-core machine (both replicas, Redis and k6 on it): p99 3-5 ms
// for every kind, max 10 ms; P99_MS=50 leaves a 10x margin for a noisy machine.

import { WebSocket } from 'k6/experimental/websockets';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';
import { env, send, token, urlFor } from './lib.js';

const USERS = env('USERS', 200);
const ROOMS = env('ROOMS', 20);
const SESSION_S = env('SESSION_S', 30);
const PUBLISH_MS = env('PUBLISH_MS', 2000);
const DM_MS = env('DM_MS', 5000);
const WHO_MS = env('WHO_MS', 5000);
const P99 = env('P99_MS', 50);

const roomMs = new Trend('sb_room_ms', true);
const dmMs = new Trend('sb_dm_ms', true);
const whoMs = new Trend('sb_who_ms', true);
const presenceMs = new Trend('sb_presence_ms', true);
const roomN = new Counter('sb_room_received');
const dmN = new Counter('sb_dm_received');
const whoN = new Counter('sb_who_received');
const presenceN = new Counter('sb_presence_received');
const errors = new Counter('sb_error_frames');
const sent = new Counter('sb_frames_sent');

export const options = {
  summaryTrendStats: ['med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  scenarios: {
    users: { executor: 'per-vu-iterations', vus: USERS, iterations: 1, maxDuration: `${SESSION_S + 30}s` },
  },
  thresholds: {
    sb_room_ms: [`p(99)<${P99}`],
    sb_room_received: ['count>0'],
    sb_dm_ms: [`p(99)<${P99}`],
    sb_dm_received: ['count>0'],
    sb_who_ms: [`p(99)<${P99}`],
    sb_who_received: ['count>0'],
    sb_presence_ms: [`p(99)<${P99}`],
    sb_presence_received: ['count>0'],
    sb_error_frames: ['count==0'],
    checks: ['rate==1'],
  },
};

export default function () {
  const me = `k6m-${__VU}`;
  const room = `k6m-room-${__VU % ROOMS}`;
  const socket = new WebSocket(urlFor(__VU));
  let joined = false;
  let asks = 0;
  const timers = [];
  let stopped = false;
  const every = (period, fn) => {
    setTimeout(() => {
      if (!stopped) timers.push(setInterval(fn, period));
    }, Math.random() * period);
  };
  socket.onopen = () => send(socket, { type: 'login', token: token(me) });
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    switch (frame.type) {
      case 'welcome':
        send(socket, { type: 'join', room: room, id: 'join' });
        break;
      case 'ok':
        if (frame.id === 'join') {
          joined = true;
          // Each timer starts at a random phase, so users do not all send at once.
          every(PUBLISH_MS, () => {
            send(socket, { type: 'publish', room: room, echo: false, data: { sent: Date.now() } });
            sent.add(1);
          });
          every(DM_MS, () => {
            // Another user than this one (a DM to oneself comes back).
            const other = 1 + ((__VU + Math.floor(Math.random() * (USERS - 1))) % USERS);
            send(socket, { type: 'send', to: `k6m-${other}`, data: { sent: Date.now() } });
            sent.add(1);
          });
          every(WHO_MS, () => {
            asks += 1;
            if (asks % 2 === 1) send(socket, { type: 'who', id: `w:${Date.now()}` });
            else send(socket, { type: 'presence', room: room, id: `p:${Date.now()}` });
            sent.add(1);
          });
        }
        break;
      case 'message':
        roomMs.add(Date.now() - frame.data.sent);
        roomN.add(1);
        break;
      case 'direct':
        dmMs.add(Date.now() - frame.data.sent);
        dmN.add(1);
        break;
      case 'who':
        whoMs.add(Date.now() - parseInt(frame.id.slice(2), 10));
        whoN.add(1);
        break;
      case 'presence':
        presenceMs.add(Date.now() - parseInt(frame.id.slice(2), 10));
        presenceN.add(1);
        break;
      case 'error':
        errors.add(1);
        break;
    }
  };
  setTimeout(() => {
    stopped = true;
    timers.forEach((t) => clearInterval(t));
    // Let deliveries in flight land before closing.
    setTimeout(() => socket.close(), 1000);
  }, SESSION_S * 1000);
  socket.onclose = () => check(joined, { 'logged in and joined': (j) => j });
}
