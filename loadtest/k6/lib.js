// Shared by the k6 scripts here: HS256 tokens signed with SECRET (like chat.js), the
// gateways to spread users over (URLS, comma separated; run.sh sets it to both
// replicas), and small helpers.
import crypto from 'k6/crypto';
import encoding from 'k6/encoding';

export const SECRET = __ENV.SECRET || 'bench';
export const URLS = (__ENV.URLS || __ENV.URL || 'ws://127.0.0.1:8080/ws').split(',');

export function env(name, fallback) {
  return parseInt(__ENV[name] || String(fallback), 10);
}

/// The gateway for user number `i` (round robin over URLS).
export function urlFor(i) {
  return URLS[i % URLS.length];
}

function b64url(text) {
  return encoding.b64encode(text, 'rawurl');
}

/// An HS256 token for `user`; `extra` adds claims (e.g. `{ rating: 1510 }`).
export function token(user, extra) {
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const claims = Object.assign({ sub: user, name: user, exp: Math.floor(Date.now() / 1000) + 3600 }, extra || {});
  const body = b64url(JSON.stringify(claims));
  const signature = crypto.hmac('sha256', SECRET, `${header}.${body}`, 'base64rawurl');
  return `${header}.${body}.${signature}`;
}

export function send(socket, frame) {
  socket.send(JSON.stringify(frame));
}
