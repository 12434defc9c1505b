//! The real binary: help, the token command, startup validation and SIGTERM drain.

use crate::harness::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use switchboard::auth::Verifier;
use switchboard::config::Config;

const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A command with no SWITCHBOARD_* variables from the caller's environment.
fn gateway() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("SWITCHBOARD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

#[test]
fn help_documents_every_setting() {
    let out = gateway().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for var in [
        "SWITCHBOARD_LISTEN",
        "SWITCHBOARD_TCP_LISTEN",
        "SWITCHBOARD_JWT_SECRET",
        "SWITCHBOARD_JWT_PUBLIC_KEY_FILE",
        "SWITCHBOARD_JWT_ALG",
        "SWITCHBOARD_JWT_ISSUER",
        "SWITCHBOARD_JWT_AUDIENCE",
        "SWITCHBOARD_API_KEY",
        "SWITCHBOARD_REDIS_URL",
        "SWITCHBOARD_LOGIN_TIMEOUT",
        "SWITCHBOARD_IDLE_TIMEOUT",
        "SWITCHBOARD_MAX_FRAME_BYTES",
        "SWITCHBOARD_OUTBOUND_QUEUE",
        "SWITCHBOARD_RATE_LIMIT",
        "SWITCHBOARD_DUPLICATE_LOGIN",
        "SWITCHBOARD_DRAIN_TIMEOUT",
        "SWITCHBOARD_DRAIN_DELAY",
        "SWITCHBOARD_DEV",
        "SWITCHBOARD_ADMIN_LISTEN",
        "SWITCHBOARD_MAX_CONNECTIONS",
        "SWITCHBOARD_LOG_FORMAT",
    ] {
        assert!(help.contains(var), "--help lacks {var}");
    }
}

#[test]
fn token_command_mints_a_verifiable_token() {
    let out = gateway()
        .args([
            "token", "--sub", "alice", "--name", "Alice", "--secret", "s3", "--rating", "1700",
        ])
        .args(["--perm", "broadcast", "--room", "team-*", "--ttl", "2h"])
        .output()
        .expect("run");
    assert!(out.status.success());
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let config = Config {
        jwt_secret: Some("s3".into()),
        ..Config::default()
    };
    let id = Verifier::from_config(&config)
        .expect("verifier")
        .verify(&token)
        .expect("valid");
    assert_eq!(id.user.as_str(), "alice");
    assert_eq!((id.name.as_str(), id.rating), ("Alice", 1700));
    assert!(id.may("broadcast"));
    assert!(id.may_join("team-red") && !id.may_join("lobby"));
}

#[test]
fn invalid_settings_stop_startup_naming_the_setting() {
    for (var, value) in [
        ("SWITCHBOARD_OUTBOUND_QUEUE", "0"),
        ("SWITCHBOARD_LOGIN_TIMEOUT", "soon"),
        ("SWITCHBOARD_DUPLICATE_LOGIN", "sometimes"),
    ] {
        let out = gateway()
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .env(var, value)
            .output()
            .expect("run");
        assert!(!out.status.success(), "{var}={value} was accepted");
        let err = String::from_utf8_lossy(&out.stderr).to_lowercase();
        let flag = var
            .trim_start_matches("SWITCHBOARD_")
            .to_lowercase()
            .replace('_', "-");
        assert!(
            err.contains(&var.to_lowercase()) || err.contains(&flag),
            "{var}: {err}"
        );
    }
}

/// Runs the gateway with `env`, expects it to refuse to start, returns its stderr.
fn refused_start(env: &[(&str, &str)]) -> String {
    let mut cmd = gateway();
    cmd.env("SWITCHBOARD_LISTEN", "127.0.0.1:0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{env:?}: still running, expected a refusal");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(!status.success(), "{env:?} started");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("stderr");
    err
}

#[test]
fn half_production_config_refuses_to_start() {
    for env in [
        &[("SWITCHBOARD_API_KEY", "k")][..],
        &[("SWITCHBOARD_REDIS_URL", "redis://127.0.0.1:1")],
        &[("SWITCHBOARD_JWT_ALG", "RS256")],
        &[("SWITCHBOARD_JWT_ISSUER", "me")],
        &[("SWITCHBOARD_LISTEN", "0.0.0.0:0")],
    ] {
        let err = refused_start(env);
        assert!(
            err.contains("SWITCHBOARD_JWT_SECRET") && err.contains("SWITCHBOARD_DEV"),
            "{env:?}: {err}"
        );
        assert!(err.contains(env[0].0), "{env:?} not named: {err}");
    }
}

#[test]
fn explicit_dev_mode_accepts_one_as_true() {
    let mut child = gateway()
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_API_KEY", "k")
        .env("SWITCHBOARD_DEV", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_millis(500));
    let running = child.try_wait().expect("wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(running, "SWITCHBOARD_DEV=1 with an API key did not start");
}

#[test]
fn startup_errors_name_what_failed() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    for (setting, extra) in [
        ("SWITCHBOARD_LISTEN", None),
        ("SWITCHBOARD_ADMIN_LISTEN", Some("SWITCHBOARD_ADMIN_LISTEN")),
        ("SWITCHBOARD_TCP_LISTEN", Some("SWITCHBOARD_TCP_LISTEN")),
    ] {
        let mut env = vec![("SWITCHBOARD_JWT_SECRET", SECRET)];
        match extra {
            Some(var) => env.push((var, addr.as_str())),
            None => env.push(("SWITCHBOARD_LISTEN", addr.as_str())),
        }
        // The later entry wins for SWITCHBOARD_LISTEN (set to :0 by `refused_start`).
        let err = refused_start(&env);
        assert!(
            err.contains(setting) && err.contains(&addr),
            "{setting}: {err}"
        );
    }
    let err = refused_start(&[
        ("SWITCHBOARD_JWT_SECRET", SECRET),
        ("SWITCHBOARD_REDIS_URL", "http://redis:6379"),
    ]);
    assert!(err.contains("SWITCHBOARD_REDIS_URL"), "{err}");
}

#[tokio::test]
async fn sigterm_drains_and_exits_zero() {
    let mut gw = Running::start(&[("SWITCHBOARD_DRAIN_TIMEOUT", "1s"), ("RUST_LOG", "info")]);
    let addr = gw.addr.clone();
    let mut ws = switchboard::client::Client::connect(&format!("ws://{addr}/ws"))
        .await
        .expect("connect");
    ws.login(&token("alice")).await.expect("welcome");
    let started = Instant::now();
    gw.signal("-TERM");
    let mut got_reconnect = false;
    let close_code = loop {
        match ws.recv_timeout(WAIT).await {
            Ok(frame) if frame.kind() == "reconnect" => got_reconnect = true,
            Ok(_) => {}
            Err(err) => break err.close_code(),
        }
    };
    if !got_reconnect {
        let status = gw.child.wait();
        panic!(
            "no reconnect frame (close {close_code:?}); exit {status:?}; logs {}",
            gw.all_logs()
        );
    }
    assert_eq!(close_code, Some(1012));
    let exit = until("the gateway to exit", Duration::from_secs(5), async || {
        gw.child
            .try_wait()
            .expect("wait")
            .ok_or_else(|| "still running".to_owned())
    })
    .await;
    assert!(exit.success(), "exit status {exit}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sighup_reloads_keys_and_keeps_sessions() {
    use crate::keys::{sign_with, temp_dir};
    use jsonwebtoken::{Algorithm, EncodingKey};
    let dir = temp_dir();
    let file = dir.join("jwks.json");
    let jwks = |kid: &str, secret: &[u8]| {
        use base64::Engine;
        let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        serde_json::json!({"keys": [{"kty": "oct", "kid": kid, "k": k}]}).to_string()
    };
    std::fs::write(&file, jwks("old", b"old-secret-of-reasonable-length")).expect("write");
    let path = file.to_string_lossy().to_string();
    // File polling off: only the signal can reload.
    let mut gw = Running::start(&[
        ("SWITCHBOARD_JWT_JWKS_FILE", path.as_str()),
        ("SWITCHBOARD_JWT_RELOAD_INTERVAL", "0s"),
    ]);
    let url = format!("ws://{}/ws", gw.addr);
    let old = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"old-secret-of-reasonable-length"),
        Some("old"),
        "alice",
    );
    let mut alice = switchboard::client::Client::connect(&url)
        .await
        .expect("connect");
    alice.login(&old).await.expect("welcome");
    std::fs::write(&file, jwks("new", b"new-secret-of-reasonable-length")).expect("write");
    let new = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"new-secret-of-reasonable-length"),
        Some("new"),
        "bob",
    );
    gw.signal("-HUP");
    let reloaded = gw.wait_log("token keys reloaded").expect("reload logged");
    assert_eq!(reloaded["fields"]["trigger"], "SIGHUP");
    let mut bob = switchboard::client::Client::connect(&url)
        .await
        .expect("connect");
    bob.login(&new)
        .await
        .expect("new key accepted after SIGHUP");
    let mut again = switchboard::client::Client::connect(&url)
        .await
        .expect("connect");
    assert!(again.login(&old).await.is_err(), "old key still accepted");
    // The old session survived the reload, and the process is still up.
    alice
        .request(&serde_json::json!({"type": "ping", "id": 1}))
        .await
        .expect("pong");
    assert!(gw.child.try_wait().expect("wait").is_none());
    // A broken file on SIGHUP: error logged, old keys kept.
    std::fs::write(&file, "not json").expect("write");
    gw.signal("-HUP");
    let failed = gw
        .wait_log("token key reload failed, keeping the old keys")
        .expect("failure logged");
    assert_eq!(failed["level"], "ERROR");
    let mut carol = switchboard::client::Client::connect(&url)
        .await
        .expect("connect");
    carol.login(&new).await.expect("kept keys");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn failed_logins_and_api_calls_never_log_credentials() {
    use crate::keys::sign_with;
    use jsonwebtoken::{Algorithm, EncodingKey};
    let api_key = "api-key-that-must-never-be-logged-1f3a";
    // Trace level: the most a deployment could turn on.
    let mut gw = Running::start(&[
        ("SWITCHBOARD_API_KEY", api_key),
        ("SWITCHBOARD_TCP_LISTEN", "127.0.0.1:0"),
        ("RUST_LOG", "trace"),
    ]);
    let url = format!("ws://{}/ws", gw.addr);
    // A well-formed token with a wrong signature, an expired one and garbage.
    let wrong = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"not-the-gateway-secret"),
        Some("kid-9"),
        "mallory",
    );
    let mut expired = claims("mallory");
    expired.exp = switchboard::clock::unix_now() - 3600;
    let expired = sign(&expired);
    let garbage = "garbage-token-that-must-never-be-logged-77c1".to_owned();
    for token in [&wrong, &expired, &garbage] {
        let mut ws = switchboard::client::Client::connect(&url)
            .await
            .expect("connect");
        assert!(ws.login(token).await.is_err(), "token accepted");
    }
    // A wrong API key, then the right one on a failing call (bad body).
    let addr: std::net::SocketAddr = gw.addr.parse().expect("addr");
    let wrong_key = "wrong-api-key-that-must-never-be-logged-5be2";
    let (status, _) = http(addr, "GET", "/api/v1/online", Some(wrong_key), None).await;
    assert_eq!(status, 401);
    let (status, _) = http(
        addr,
        "POST",
        "/api/v1/broadcast",
        Some(api_key),
        Some("{not json"),
    )
    .await;
    assert_eq!(status, 400);
    let logs = gw.all_logs();
    assert!(
        logs.contains("login refused"),
        "the refusals were not logged at all: {logs}"
    );
    let signature = |t: &str| t.rsplit('.').next().unwrap_or_default().to_owned();
    for (what, secret) in [
        ("bad-signature token", wrong.clone()),
        ("its signature", signature(&wrong)),
        ("expired token", expired.clone()),
        ("its signature", signature(&expired)),
        ("garbage token", garbage),
        ("API key", api_key.to_owned()),
        ("wrong API key", wrong_key.to_owned()),
        ("JWT secret", SECRET.to_owned()),
    ] {
        if let Some(line) = logs.lines().find(|l| l.contains(&secret)) {
            panic!("the {what} is in the log: {line}");
        }
    }
}

#[test]
fn fd_soft_limit_is_raised_to_the_hard_limit_and_logged() {
    // From a shell whose soft limit is 256, with no settings but these.
    let mut child = Command::new("sh")
        .args(["-c", "ulimit -Sn 256 && exec \"$0\"", BIN])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_JWT_SECRET", SECRET)
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let line = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .take(20)
        .find(|l| l.contains("open file limit"));
    let _ = child.kill();
    let _ = child.wait();
    let v: serde_json::Value =
        serde_json::from_str(&line.expect("the limit is logged")).expect("json");
    let fields = &v["fields"];
    assert_eq!(fields["soft_before"], 256, "{v}");
    assert_eq!(fields["soft"], fields["hard"], "{v}");
}
