// Token expiry while connected (close 4011) and refresh(), against a gateway with a
// known HMAC secret and no leeway, so the test can mint short-lived tokens.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { SwitchboardError } from '../switchboard.js';
import { startGateway, makeClient, cleanup, until, sleep } from '../support/harness.js';

const SECRET = 'js-expiry-test-secret-of-reasonable-length';
let gw;
const clients = [];

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
/** An HS256 token for `sub` that expires `secs` from now. */
function mint(sub, secs) {
  const head = b64({ alg: 'HS256', typ: 'JWT' });
  const body = b64({ sub, exp: Math.floor(Date.now() / 1000) + secs });
  const sig = createHmac('sha256', SECRET).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

before(async () => {
  gw = await startGateway({ env: { SWITCHBOARD_JWT_SECRET: SECRET, SWITCHBOARD_JWT_LEEWAY: '0s' } });
});
after(async () => {
  await cleanup(clients, gw);
});

test('refresh() extends the session past the first token', { timeout: 15000 }, async () => {
  const a = makeClient(gw.url, 'alice', { token: mint('alice', 2) });
  clients.push(a);
  await a.connect();
  const fresh = mint('alice', 3600);
  const ok = await a.refresh(fresh);
  assert.equal(ok.type, 'ok');
  assert.ok(ok.exp > Date.now() / 1000 + 3000);
  await sleep(3000);
  assert.equal(a.state, 'open');
  assert.ok((await a.ping()) >= 0);
  await assert.rejects(
    a.refresh(mint('mallory', 3600)),
    (e) => e instanceof SwitchboardError && e.code === 'forbidden',
  );
});

test('an expired token closes with 4011 and a fixed token is not retried', { timeout: 15000 }, async () => {
  const b = makeClient(gw.url, 'bob', { token: mint('bob', 1) });
  clients.push(b);
  await b.connect();
  await until(() => b.state === 'closed', { timeoutMs: 5000, what: 'close after exp' });
  const closed = b.of('state', (s) => s.state === 'closed')[0];
  assert.equal(closed.closeCode, 4011);
  const err = b.of('error')[0];
  assert.equal(err?.code, 'token_expired');
});
