// k6 connect + login storm: CONNS users, PARALLEL at a time, spread over the gateways
// (URLS). Each iteration opens a WebSocket, logs in with its own HS256 token, times
// connect -> welcome, and closes. Fails on a regression: connect+login p99 above
// P99_MS, any failure, or fewer than MIN_RATE logins/s over the run.
//
//   loadtest/run.sh k6 loadtest/k6/connect.js
//   k6 run -e URLS=ws://127.0.0.1:8081/ws,ws://127.0.0.1:8082/ws -e SECRET=bench \
//     -e CONNS=5000 -e PARALLEL=100 loadtest/k6/connect.js
// k6 itself is the bottleneck well before the gateway (a JS VU per connection): use
// `loadtest/run.sh connect` for the connections/s figure; this script guards against a
// gross regression. Measured on a shared 2-core machine (both replicas, Redis and k6 on
// it): 1,862 logins/s, p99 78 ms; thresholds P99_MS=250 and MIN_RATE=600 leave ~3x.

import { WebSocket } from 'k6/experimental/websockets';
import { Counter, Rate, Trend } from 'k6/metrics';
import { env, send, token, urlFor } from './lib.js';

const CONNS = env('CONNS', 5000);
const PARALLEL = env('PARALLEL', 100);

const connectMs = new Trend('sb_connect_login_ms', true);
const loggedIn = new Counter('sb_logged_in');
const failures = new Counter('sb_connect_failures');
const loginRate = new Rate('sb_login_ok');

export const options = {
  summaryTrendStats: ['med', 'p(90)', 'p(95)', 'p(99)', 'max'],
  scenarios: {
    storm: { executor: 'shared-iterations', vus: PARALLEL, iterations: CONNS, maxDuration: '5m' },
  },
  thresholds: {
    sb_connect_login_ms: [`p(99)<${env('P99_MS', 250)}`],
    sb_connect_failures: ['count==0'],
    sb_login_ok: ['rate==1'],
    sb_logged_in: [`count==${CONNS}`, `rate>${env('MIN_RATE', 600)}`],
  },
};

export default function () {
  const i = (__VU - 1) * 1000000 + __ITER;
  const t0 = Date.now();
  const socket = new WebSocket(urlFor(i));
  let done = false;
  const fail = () => {
    if (!done) {
      done = true;
      failures.add(1);
      loginRate.add(false);
    }
  };
  const timer = setTimeout(() => { fail(); socket.close(); }, 10000);
  socket.onopen = () => send(socket, { type: 'login', token: token(`k6-c${i}`) });
  socket.onmessage = (event) => {
    const frame = JSON.parse(event.data);
    if (frame.type === 'welcome' && !done) {
      done = true;
      connectMs.add(Date.now() - t0);
      loggedIn.add(1);
      loginRate.add(true);
      clearTimeout(timer);
      socket.close();
    } else if (frame.type === 'error') {
      fail();
      clearTimeout(timer);
      socket.close();
    }
  };
  socket.onerror = () => {
    fail();
    clearTimeout(timer);
  };
}
