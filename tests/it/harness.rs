//! One harness for every integration test: a real gateway on ephemeral ports with an
//! injected shutdown, and WebSocket/TCP clients (`switchboard::client`) that speak the
//! wire protocol.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchboard::app::{self, Listeners};
use switchboard::auth::{self, Claims};
use switchboard::client::{self, ClientError};
use switchboard::config::{Config, JwtAlg};
use switchboard::gateway::Gateway;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const SECRET: &str = "test-secret-of-reasonable-length";
pub const API_KEY: &str = "test-api-key";
/// How long a test waits for an expected frame before failing.
pub const WAIT: Duration = Duration::from_secs(5);

pub struct TestServer {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub gw: Arc<Gateway>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    pub async fn spawn() -> Self {
        Self::with(|_| {}).await
    }

    /// Starts a gateway with test defaults, adjusted by `tweak`.
    pub async fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            tcp_listen: Some("127.0.0.1:0".parse().expect("addr")),
            jwt_secret: Some(SECRET.into()),
            api_key: Some(API_KEY.into()),
            drain_timeout: Duration::from_secs(1),
            drain_delay: Some(Duration::ZERO),
            ..Config::default()
        };
        tweak(&mut config);
        let gw = Gateway::start(config).await.expect("valid test config");
        let listeners = Listeners::bind(&gw.config).await.expect("bind");
        let http = listeners.http.local_addr().expect("addr");
        let tcp = listeners
            .tcp
            .as_ref()
            .map(|l| l.local_addr().expect("addr"))
            .unwrap_or(http);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app::run(gw.clone(), listeners, async move {
            let _ = stopped.await;
        }));
        TestServer {
            http,
            tcp,
            gw,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Signals shutdown and waits for `run` to return; returns how long it took.
    pub async fn shutdown(&mut self) -> Duration {
        let started = Instant::now();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("run ok");
        }
        started.elapsed()
    }

    /// A WebSocket client that logged in as `user`, with the welcome consumed.
    pub async fn ws(&self, user: &str) -> Client {
        let mut c = self.ws_raw().await;
        c.login(&token(user)).await;
        c
    }

    pub async fn ws_raw(&self) -> Client {
        Client::connect(&format!("ws://{}/ws", self.http)).await
    }

    pub async fn tcp(&self, user: &str) -> Client {
        let mut c = self.tcp_raw().await;
        c.login(&token(user)).await;
        c
    }

    pub async fn tcp_raw(&self) -> Client {
        Client::connect(&format!("tcp://{}", self.tcp)).await
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

pub fn claims(user: &str) -> Claims {
    Claims {
        sub: user.into(),
        exp: switchboard::clock::unix_now() + 3600,
        name: Some(format!("{user} name")),
        rating: None,
        perms: Vec::new(),
        rooms: None,
        iss: None,
        aud: None,
    }
}

pub fn sign(claims: &Claims) -> String {
    auth::sign_hmac(JwtAlg::Hs256, SECRET.as_bytes(), claims).expect("sign")
}

pub fn token(user: &str) -> String {
    sign(&claims(user))
}

/// What a client observed next.
#[derive(Debug)]
pub enum Seen {
    Frame(Value),
    Closed(Option<u16>),
}

/// The protocol client the tests drive: `switchboard::client::Client` with every wait
/// bounded by `WAIT` and failures turned into test panics. It never answers TCP pings
/// by itself, so the idle-timeout tests can stay silent.
pub struct Client(client::Client);

impl Client {
    async fn connect(address: &str) -> Self {
        let options = client::Options::default()
            .timeout(Some(WAIT))
            .auto_pong(false);
        Client(
            client::Client::connect_with(address, options)
                .await
                .expect("connect"),
        )
    }

    /// Logs in and returns the `welcome` frame.
    pub async fn login(&mut self, token: &str) -> Value {
        let welcome = self
            .0
            .login_with(json!({"type": "login", "token": token}))
            .await
            .expect("welcome");
        json_of(&welcome)
    }

    /// Logs in with a login frame of the test's own (`dm_since`, ...); returns `welcome`.
    pub async fn login_frame(&mut self, login: Value) -> Value {
        let welcome = self.0.login_with(login).await.expect("welcome");
        json_of(&welcome)
    }

    pub async fn send(&mut self, frame: Value) {
        self.0.send(frame).await.expect("send");
    }

    pub async fn send_text(&mut self, text: &str) {
        self.0.send_text(text).await.expect("send");
    }

    /// A binary WebSocket message, or bytes written as they are on TCP.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.0.send_raw(bytes).await.expect("send");
    }

    /// Next frame (server pings skipped) or the close, within `wait`.
    pub async fn next_within(&mut self, wait: Duration) -> Option<Seen> {
        match self.0.recv_timeout(wait).await {
            Ok(frame) => Some(Seen::Frame(json_of(&frame))),
            Err(ClientError::Timeout) => None,
            Err(ClientError::Closed { code, .. }) => Some(Seen::Closed(code)),
            Err(_) if self.0.is_closed() => Some(Seen::Closed(None)),
            Err(err) => panic!("bad frame from the server: {err}"),
        }
    }

    /// Next frame; fails the test on close or timeout.
    pub async fn recv(&mut self) -> Value {
        match self.0.recv().await {
            Ok(frame) => json_of(&frame),
            Err(err) => panic!("expected a frame, got {err}"),
        }
    }

    /// Skips frames until one of type `ty` arrives.
    pub async fn recv_type(&mut self, ty: &str) -> Value {
        match self.0.recv_type(ty).await {
            Ok(frame) => json_of(&frame),
            Err(err) => panic!("expected a {ty} frame, got {err}"),
        }
    }

    /// Sends a request and returns the reply carrying its id (other frames are kept
    /// for later reads).
    pub async fn request(&mut self, frame: Value) -> Value {
        match self.0.request(&frame).await {
            Ok(reply) => json_of(&reply),
            Err(err) => panic!("expected a reply to {frame}, got {err}"),
        }
    }

    /// Reads until the connection closes; returns the close code.
    pub async fn closed(&mut self) -> Option<u16> {
        self.0
            .closed()
            .await
            .expect("connection did not close in time")
    }

    /// Asserts that no frame arrives for `wait`.
    pub async fn quiet(&mut self, wait: Duration) {
        if let Some(seen) = self.next_within(wait).await {
            panic!("expected silence, got {seen:?}");
        }
    }
}

fn json_of(frame: &client::Frame) -> Value {
    frame.value().expect("server sent JSON")
}

/// Minimal HTTP/1.1 client for the API tests: one request per connection.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let auth = key
        .map(|k| format!("Authorization: Bearer {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut raw),
    )
    .await
    .expect("http response in time")
    .expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, dechunk(&body))
}

/// Undoes chunked transfer encoding when the server used it.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    loop {
        let Some((size, after)) = rest.split_once("\r\n") else {
            return body.to_owned();
        };
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return body.to_owned();
        };
        if n == 0 {
            return out;
        }
        if after.len() < n {
            return body.to_owned();
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
}

/// Polls `check` until it holds or `WAIT` passes.
pub async fn eventually<F: FnMut() -> bool>(what: &str, mut check: F) {
    until(what, WAIT, async || {
        if check() { Ok(()) } else { Err(String::new()) }
    })
    .await
}

/// Polls the async `check` until it returns `Ok`, at most `within`; on timeout the test
/// fails naming `what` and the last `Err` seen. Polls start fast and slow down to
/// `within / 50`, so a check that sends requests does not flood the server.
pub async fn until<T>(
    what: &str,
    within: Duration,
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let started = Instant::now();
    let mut pause = Duration::from_millis(5);
    let slowest = (within / 50).max(Duration::from_millis(10));
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) => assert!(
                started.elapsed() < within,
                "timed out after {:?} waiting for {what}; last seen: {last}",
                started.elapsed()
            ),
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(slowest);
    }
}

/// A private redis-server on a free port, no persistence; killed on drop.
pub struct TestRedis {
    pub port: u16,
    child: Option<std::process::Child>,
}

impl TestRedis {
    /// A port found free may be taken by a parallel test before redis-server binds it:
    /// then the server exits at once and another port is tried.
    pub async fn start() -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut redis = TestRedis { port, child: None };
            if redis.try_start().await {
                return redis;
            }
        }
        panic!("redis-server did not start on any of five free ports");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Lets a paused server go on (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("redis running").id().to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts (again) on the same port and waits until it answers.
    pub async fn restart(&mut self) {
        assert!(
            self.try_start().await,
            "redis-server exited: port {} taken",
            self.port
        );
    }

    /// Starts on `self.port`; false if the server exited at once (port taken).
    async fn try_start(&mut self) -> bool {
        self.kill();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (see README)");
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)).await {
                let _ = s.write_all(b"PING\r\n").await;
                let mut buf = [0u8; 7];
                if let Ok(Ok(_)) = tokio::time::timeout(
                    Duration::from_millis(200),
                    tokio::io::AsyncReadExt::read_exact(&mut s, &mut buf),
                )
                .await
                    && &buf == b"+PONG\r\n"
                {
                    return true;
                }
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                self.child = None;
                return false;
            }
            assert!(Instant::now() < deadline, "redis-server did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A key prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("t{:08x}", rand::random::<u32>())
}

/// Test settings for a replica on `redis` under `prefix`.
pub fn on_redis(redis: &TestRedis, prefix: &str) -> impl FnOnce(&mut Config) + use<> {
    let url = redis.url();
    let prefix = prefix.to_owned();
    move |c: &mut Config| {
        c.redis_url = Some(url);
        c.redis_prefix = prefix;
        c.redis_timeout = Duration::from_millis(500);
        c.redis_probe_interval = Duration::from_millis(100);
    }
}

/// Two replicas on a fresh Redis under one prefix.
pub async fn pair() -> (TestRedis, TestServer, TestServer) {
    pair_with(|_| {}).await
}

pub async fn pair_with(
    tweak: impl Fn(&mut switchboard::config::Config) + Clone,
) -> (TestRedis, TestServer, TestServer) {
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let t1 = tweak.clone();
    let a = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        t1(c);
    })
    .await;
    let b = TestServer::with(|c| {
        on_redis(&redis, &prefix)(c);
        tweak(c);
    })
    .await;
    wait_ready(&a).await;
    wait_ready(&b).await;
    (redis, a, b)
}

pub async fn wait_ready(s: &TestServer) {
    readyz_becomes(s, 200).await;
}

pub async fn readyz_becomes(s: &TestServer, want: u16) {
    until("readyz", WAIT, async || {
        match http(s.http, "GET", "/readyz", None, None).await {
            (status, _) if status == want => Ok(()),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await
}

/// A gateway as a real process on `redis` under `prefix` (so `kill -9` leaves it no
/// chance to clean up), with `env` on top.
pub fn gateway_process(redis: &TestRedis, prefix: &str, env: &[(&str, &str)]) -> Running {
    let url = redis.url();
    let mut all = vec![
        ("SWITCHBOARD_REDIS_URL", url.as_str()),
        ("SWITCHBOARD_REDIS_PREFIX", prefix),
        ("RUST_LOG", "info"),
    ];
    all.extend_from_slice(env);
    Running::start(&all)
}

/// A gateway binary running with JSON logs on loopback ports; every log line (stdout
/// and stderr) is kept for the test to read. Killed on drop.
pub struct Running {
    pub child: std::process::Child,
    pub addr: String,
    lines: std::sync::mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Running {
    /// Starts the binary with `env` on top of a JWT secret, JSON logs and RUST_LOG=debug.
    pub fn start(env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        cmd.env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env("SWITCHBOARD_JWT_SECRET", SECRET)
            .env("SWITCHBOARD_DRAIN_DELAY", "0s")
            .env("SWITCHBOARD_LOG_FORMAT", "json")
            .env("RUST_LOG", "debug");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx2.send(line);
            }
        });
        let mut running = Running {
            child,
            addr: String::new(),
            lines,
            seen: Vec::new(),
        };
        running.addr = running
            .wait_log("switchboard listening")
            .and_then(|v| v["fields"]["addr"].as_str().map(str::to_owned))
            .expect("gateway logs its address");
        running
    }

    /// Waits (up to WAIT) for a JSON log line with this message; keeps every line read.
    pub fn wait_log(&mut self, message: &str) -> Option<Value> {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                break;
            };
            self.seen.push(line.clone());
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && v["fields"]["message"] == message
            {
                return Some(v);
            }
        }
        None
    }

    /// Every line logged so far (waits briefly for the pipe to catch up).
    pub fn all_logs(&mut self) -> String {
        std::thread::sleep(Duration::from_millis(300));
        self.seen.extend(self.lines.try_iter());
        self.seen.join("\n")
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A three-node Redis Cluster (no replicas, no persistence) in a private directory.
pub struct TestRedisCluster {
    pub ports: Vec<u16>,
    nodes: Vec<std::process::Child>,
    dir: std::path::PathBuf,
}

impl TestRedisCluster {
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("sb-cluster-{}", unique_prefix()));
        std::fs::create_dir_all(&dir).expect("cluster dir");
        let mut ports = Vec::new();
        while ports.len() < 3 {
            // Each node also needs its cluster bus port (+10000) free.
            let port = 20_000 + rand::random::<u16>() % 10_000;
            let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
            if !ports.contains(&port) && free(port) && free(port + 10_000) {
                ports.push(port);
            }
        }
        let mut nodes = Vec::new();
        for port in &ports {
            let child = std::process::Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .arg("--dir")
                .arg(&dir)
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("redis-server");
            nodes.push(child);
        }
        let cluster = TestRedisCluster { ports, nodes, dir };
        for port in &cluster.ports {
            let deadline = Instant::now() + WAIT;
            while TcpStream::connect(("127.0.0.1", *port)).await.is_err() {
                assert!(Instant::now() < deadline, "cluster node did not start");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let addrs: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let out = std::process::Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli");
        assert!(
            out.status.success(),
            "cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let info = std::process::Command::new("redis-cli")
                .args(["-p", &cluster.ports[0].to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "cluster never became ok");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster
    }

    pub fn url(&self) -> String {
        format!("redis-cluster://127.0.0.1:{}", self.ports[0])
    }
}

impl Drop for TestRedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
