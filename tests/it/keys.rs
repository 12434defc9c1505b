//! Token keys: several keys chosen by `kid` (HS secrets, a JWKS file with RSA, EC,
//! Ed25519 and `oct` keys), no algorithm confusion, and reload on file change.

use crate::harness::*;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;
use switchboard::config::JwtAlg;

/// A key file from tests/fixtures/jwt.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwt")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).expect("fixture")
}

/// Signs `claims(user)` with `alg`, `key` and an optional `kid`.
pub fn sign_with(alg: Algorithm, key: &EncodingKey, kid: Option<&str>, user: &str) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims(user), key).expect("sign")
}

fn hs(secret: &[u8]) -> EncodingKey {
    EncodingKey::from_secret(secret)
}

/// A fresh private directory for key files.
pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sb-keys-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A JWKS with one `oct` key.
fn oct_jwks(kid: &str, secret: &[u8]) -> String {
    use base64::Engine;
    let k = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    json!({"keys": [{"kty": "oct", "kid": kid, "alg": "HS256", "k": k}]}).to_string()
}

async fn accepted(s: &TestServer, token: &str) {
    for mut c in [s.ws_raw().await, s.tcp_raw().await] {
        c.login(token).await;
    }
}

/// Refused with `unauthorized` and 4001; returns the error message.
async fn refused(s: &TestServer, token: &str) -> String {
    let mut c = s.ws_raw().await;
    c.send(json!({"type": "login", "token": token})).await;
    let err = c.recv().await;
    assert_eq!(err["code"], "unauthorized", "{err}");
    assert_eq!(c.closed().await, Some(4001));
    err["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn kid_chooses_among_hs_secrets_and_jwks_keys() {
    let s = TestServer::with(|c| {
        c.jwt_secrets = Some("a:secret-for-kid-a,b:secret-for-kid-b".into());
        c.jwt_jwks_file = Some(fixture("jwks.json"));
    })
    .await;
    // The default key (SWITCHBOARD_JWT_SECRET) for tokens without kid.
    accepted(&s, &token("u0")).await;
    // Named HS secrets.
    accepted(
        &s,
        &sign_with(Algorithm::HS256, &hs(b"secret-for-kid-a"), Some("a"), "u1"),
    )
    .await;
    accepted(
        &s,
        &sign_with(Algorithm::HS256, &hs(b"secret-for-kid-b"), Some("b"), "u2"),
    )
    .await;
    // JWKS keys of every family.
    let rsa = EncodingKey::from_rsa_pem(&read("rsa_private.pem")).expect("rsa");
    accepted(&s, &sign_with(Algorithm::RS256, &rsa, Some("rsa-1"), "u3")).await;
    let ec = EncodingKey::from_ec_pem(&read("ec_private.pem")).expect("ec");
    accepted(&s, &sign_with(Algorithm::ES256, &ec, Some("ec-1"), "u4")).await;
    let ed = EncodingKey::from_ed_pem(&read("ed_private.pem")).expect("ed");
    accepted(&s, &sign_with(Algorithm::EdDSA, &ed, Some("ed-1"), "u5")).await;
    let oct = hs(b"jwks-hmac-secret-of-reasonable-length");
    accepted(&s, &sign_with(Algorithm::HS256, &oct, Some("hs-1"), "u6")).await;

    // A kid names exactly one key: another key's signature fails.
    let crossed = sign_with(Algorithm::HS256, &hs(b"secret-for-kid-b"), Some("a"), "x");
    assert_eq!(refused(&s, &crossed).await, "invalid token: bad signature");
    // No kid: only the default key is tried, never the named ones.
    let no_kid = sign_with(Algorithm::HS256, &hs(b"secret-for-kid-a"), None, "x");
    assert_eq!(refused(&s, &no_kid).await, "invalid token: bad signature");
    // An unknown kid is refused (not tried against the default key).
    let unknown = sign_with(Algorithm::HS256, &hs(SECRET.as_bytes()), Some("zz"), "x");
    assert_eq!(refused(&s, &unknown).await, "invalid token: unknown key id");
    // The EC key is pinned to ES256: an RSA signature under its kid fails on the algorithm.
    let wrong_family = sign_with(Algorithm::RS256, &rsa, Some("ec-1"), "x");
    assert_eq!(
        refused(&s, &wrong_family).await,
        "invalid token: algorithm not accepted"
    );
    assert_eq!(s.gw.verifier.key_count(), 7);
}

#[tokio::test]
async fn a_kid_on_the_only_key_still_works() {
    let s = TestServer::spawn().await;
    accepted(
        &s,
        &sign_with(Algorithm::HS256, &hs(SECRET.as_bytes()), Some("v1"), "u"),
    )
    .await;
}

#[tokio::test]
async fn no_algorithm_confusion_and_no_alg_none() {
    // Default key: an RSA public key file, RS256.
    let s = TestServer::with(|c| {
        c.jwt_secret = None;
        c.jwt_alg = JwtAlg::Rs256;
        c.jwt_public_key_file = Some(fixture("rsa_public.pem"));
        c.jwt_jwks_file = Some(fixture("jwks.json"));
    })
    .await;
    let rsa = EncodingKey::from_rsa_pem(&read("rsa_private.pem")).expect("rsa");
    accepted(&s, &sign_with(Algorithm::RS256, &rsa, None, "u1")).await;
    // The classic confusion: HS256 signed with the public key's PEM bytes as secret.
    let public_pem = read("rsa_public.pem");
    for kid in [None, Some("rsa-1")] {
        let forged = sign_with(Algorithm::HS256, &hs(&public_pem), kid, "mallory");
        assert_eq!(
            refused(&s, &forged).await,
            "invalid token: algorithm not accepted",
            "kid {kid:?}"
        );
    }
    // Also with the JWK's own modulus bytes, and the PS variant of the pinned RS256 key.
    let jwks: serde_json::Value = serde_json::from_slice(&read("jwks.json")).expect("jwks json");
    let n = jwks["keys"][0]["n"]
        .as_str()
        .expect("n")
        .as_bytes()
        .to_vec();
    let forged = sign_with(Algorithm::HS256, &hs(&n), Some("rsa-1"), "mallory");
    assert_eq!(
        refused(&s, &forged).await,
        "invalid token: algorithm not accepted"
    );
    let ps = sign_with(Algorithm::PS256, &rsa, Some("rsa-1"), "u");
    assert_eq!(
        refused(&s, &ps).await,
        "invalid token: algorithm not accepted"
    );
    // alg:none, with and without a kid.
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let body = b64(json!({"sub": "mallory", "exp": switchboard::clock::unix_now() + 60}));
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": "rsa-1"}),
        json!({"alg": "None", "kid": "hs-1"}),
    ] {
        let token = format!("{}.{body}.", b64(header.clone()));
        refused(&s, &token).await;
        let signed = format!("{}.{body}.c2ln", b64(header.clone()));
        refused(&s, &signed).await;
    }
}

#[tokio::test]
async fn keys_reload_on_file_change_without_dropping_sessions() {
    let dir = temp_dir();
    let file = dir.join("jwks.json");
    std::fs::write(&file, oct_jwks("k1", b"first-secret-of-reasonable-length")).expect("write");
    let s = TestServer::with(|c| {
        c.jwt_jwks_file = Some(file.clone());
        c.jwt_reload_interval = Duration::from_millis(50);
    })
    .await;
    let first = sign_with(
        Algorithm::HS256,
        &hs(b"first-secret-of-reasonable-length"),
        Some("k1"),
        "alice",
    );
    let mut alice = s.ws_raw().await;
    alice.login(&first).await;
    let mut tcp = s.tcp_raw().await;
    tcp.login(&first).await;

    // Rotate: k1 out, k2 in.
    std::fs::write(&file, oct_jwks("k2", b"second-secret-of-reasonable-length")).expect("write");
    let second = sign_with(
        Algorithm::HS256,
        &hs(b"second-secret-of-reasonable-length"),
        Some("k2"),
        "bob",
    );
    until("the new key to be in force", WAIT, async || {
        s.gw.verifier
            .verify(&second)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await;
    accepted(&s, &second).await;
    assert_eq!(refused(&s, &first).await, "invalid token: unknown key id");
    // Sessions logged in with the old key keep going.
    assert_eq!(
        alice.request(json!({"type": "ping", "id": 1})).await["type"],
        "pong"
    );
    assert_eq!(
        tcp.request(json!({"type": "ping", "id": 1})).await["type"],
        "pong"
    );

    // A broken file keeps the old keys, logs and counts the failure.
    let errors = || {
        s.gw.metrics
            .jwt_key_reloads
            .with_label_values(&["error"])
            .get()
    };
    let before = errors();
    std::fs::write(&file, "{\"keys\": [{\"kty\": \"oct\"}]}").expect("write");
    until("the failed reload to be counted", WAIT, async || {
        if errors() > before {
            Ok(())
        } else {
            Err("no error yet".to_owned())
        }
    })
    .await;
    accepted(&s, &second).await;
    assert_eq!(s.gw.metrics.jwt_key_reload_failed.get(), 1);
    assert!(
        s.gw.metrics
            .render()
            .contains("switchboard_jwt_key_reloads_total{result=\"ok\"} 1")
    );
    // Fixing the file clears the failure.
    std::fs::write(&file, oct_jwks("k3", b"third-secret-of-reasonable-length")).expect("write");
    until("the fixed file to load", WAIT, async || {
        match s.gw.metrics.jwt_key_reload_failed.get() {
            0 => Ok(()),
            n => Err(format!("still failed: {n}")),
        }
    })
    .await;
    assert_eq!(s.gw.metrics.jwt_keys.get(), 2, "k3 and the default key");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_key_files_are_refused_naming_the_problem() {
    use switchboard::auth::Verifier;
    use switchboard::config::Config;
    let dir = temp_dir();
    let rsa =
        serde_json::from_slice::<serde_json::Value>(&read("jwks.json")).expect("json")["keys"][0]
            .clone();
    let mut no_kid = rsa.clone();
    no_kid.as_object_mut().expect("object").remove("kid");
    let mut enc = rsa.clone();
    enc["use"] = json!("enc");
    let mut wrong_alg = rsa.clone();
    wrong_alg["alg"] = json!("ES256");
    let cases = [
        ("not json", "not a JWK set".to_owned()),
        (
            &*json!({"keys": [no_kid]}).to_string(),
            "every key needs a \"kid\"".to_owned(),
        ),
        (
            &*json!({"keys": [rsa.clone(), rsa.clone()]}).to_string(),
            "key id \"rsa-1\" is used twice".to_owned(),
        ),
        (
            &*json!({"keys": [enc]}).to_string(),
            "is for encryption".to_owned(),
        ),
        (
            &*json!({"keys": [wrong_alg]}).to_string(),
            "\"alg\" does not fit its key type".to_owned(),
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = dir.join(format!("bad-{i}.json"));
        std::fs::write(&file, text).expect("write");
        let config = Config {
            jwt_jwks_file: Some(file),
            ..Config::default()
        };
        let err = Verifier::from_config(&config)
            .err()
            .unwrap_or_else(|| panic!("{text} was accepted"));
        assert!(err.contains("SWITCHBOARD_JWT_JWKS_FILE"), "{err}");
        assert!(err.contains(expected.as_str()), "{expected}: {err}");
    }
    let missing = Config {
        jwt_jwks_file: Some(dir.join("missing.json")),
        ..Config::default()
    };
    let err = Verifier::from_config(&missing).err().expect("missing file");
    assert!(err.contains("cannot read"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
