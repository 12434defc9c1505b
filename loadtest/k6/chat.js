// k6 chat load test: every virtual user logs in over WebSocket with an HS256 token it
// signs itself, joins one of ROOMS rooms, publishes every PUBLISH_MS and measures how
// long each room message takes to reach it (publisher clock = receiver clock: run on
// one host). Counts every frame type so lost or refused traffic shows up.
//
//   SWITCHBOARD_JWT_SECRET=bench SWITCHBOARD_RATE_LIMIT=1000 ./target/release/switchboard &
//   k6 run -e SECRET=bench -e URL=ws://127.0.0.1:8080/ws -e ROOMS=20 \
//     --vus 200 --duration 30s loadtest/k6/chat.js

import ws from 'k6/ws';
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';
import { check } from 'k6';
import { Counter, Trend } from 'k6/metrics';

const URL = __ENV.URL || 'ws://127.0.0.1:8080/ws';
const SECRET = __ENV.SECRET || 'bench';
const ROOMS = parseInt(__ENV.ROOMS || '20', 10);
const PUBLISH_MS = parseInt(__ENV.PUBLISH_MS || '1000', 10);
const SESSION_MS = parseInt(__ENV.SESSION_MS || '20000', 10);

const delivery = new Trend('sb_delivery_ms', true);
const received = new Counter('sb_messages_received');
const published = new Counter('sb_messages_published');
const errors = new Counter('sb_error_frames');

export const options = {
  thresholds: {
    sb_delivery_ms: ['p(95)<250'],
    sb_error_frames: ['count==0'],
    checks: ['rate>0.99'],
  },
};

function b64url(text) {
  return encoding.b64encode(text, 'rawurl');
}

function token(user) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const exp = Math.floor(Date.now() / 1000) + 3600;
  const body = b64url(JSON.stringify({ sub: user, name: user, exp: exp }));
  const signature = crypto.hmac('sha256', SECRET, `${header}.${body}`, 'base64rawurl');
  return `${header}.${body}.${signature}`;
}

export default function () {
  const user = `k6-${__VU}-${__ITER}`;
  const room = `k6-room-${__VU % ROOMS}`;
  const res = ws.connect(URL, {}, function (socket) {
    let joined = false;
    socket.on('open', function () {
      socket.send(JSON.stringify({ type: 'login', token: token(user) }));
    });
    socket.on('message', function (text) {
      const frame = JSON.parse(text);
      if (frame.type === 'welcome') {
        check(frame, { 'welcome names the user': (f) => f.user === user });
        socket.send(JSON.stringify({ type: 'join', room: room, id: 'join' }));
      } else if (frame.type === 'ok' && frame.id === 'join') {
        joined = true;
        socket.setInterval(function () {
          socket.send(JSON.stringify({
            type: 'publish', room: room, echo: false, data: { sent: Date.now() },
          }));
          published.add(1);
        }, PUBLISH_MS);
      } else if (frame.type === 'message') {
        received.add(1);
        delivery.add(Date.now() - frame.data.sent);
      } else if (frame.type === 'error') {
        errors.add(1);
      }
    });
    socket.setTimeout(function () {
      check(joined, { 'joined the room': (j) => j });
      socket.close();
    }, SESSION_MS);
  });
  check(res, { 'upgraded (101)': (r) => r && r.status === 101 });
}
