//! Parsing, validation and dev-mode rules of the settings.

use super::*;

fn parse(args: &[&str]) -> Result<Config, String> {
    let mut all = vec!["switchboard"];
    all.extend_from_slice(args);
    let cli = crate::cli::Cli::try_parse_from(all).map_err(|e| e.to_string())?;
    cli.config.validate()?;
    Ok(cli.config)
}

#[test]
fn defaults_ignore_the_environment() {
    let command = hermetic_command();
    assert!(command.get_arguments().count() > 40);
    assert!(command.get_arguments().all(|a| a.get_env().is_none()));
    let c = Config::default();
    assert!(c.validate().is_ok());
    assert_eq!(c.redis_url, None);
}

#[test]
fn defaults_are_valid() {
    let c = parse(&[]).expect("defaults");
    assert_eq!(c.listen_addr(), "127.0.0.1:8080".parse().expect("addr"));
    assert_eq!(c.drain_delay(), Duration::ZERO);
    assert_eq!(c.login_timeout, Duration::from_secs(5));
    assert_eq!(c.outbound_queue, 1024);
    assert!(c.dev_mode());
}

#[test]
fn bad_values_name_the_setting() {
    let err = parse(&["--login-timeout", "soon"]).expect_err("bad duration");
    assert!(err.contains("login-timeout"), "{err}");
    let err = parse(&["--outbound-queue", "0"]).expect_err("zero queue");
    assert!(err.contains("SWITCHBOARD_OUTBOUND_QUEUE"), "{err}");
    for teardowns in ["0", &usize::MAX.to_string()] {
        let err = parse(&["--max-teardowns", teardowns]).expect_err("teardowns");
        assert!(err.contains("SWITCHBOARD_MAX_TEARDOWNS"), "{err}");
    }
    for backlog in ["0", "65536"] {
        let err = parse(&["--listen-backlog", backlog]).expect_err("backlog");
        assert!(err.contains("SWITCHBOARD_LISTEN_BACKLOG"), "{err}");
    }
    let err = parse(&["--jwt-secret", "s", "--jwt-alg", "RS256"]).expect_err("alg");
    assert!(err.contains("SWITCHBOARD_JWT_ALG"), "{err}");
    let err = parse(&["--heartbeat", "90s"]).expect_err("idle<hb");
    assert!(err.contains("SWITCHBOARD_IDLE_TIMEOUT"), "{err}");
    let err =
        parse(&["--jwt-secret", "s", "--redis-url", "http://redis:6379"]).expect_err("scheme");
    assert!(err.contains("SWITCHBOARD_REDIS_URL"), "{err}");
}

#[test]
fn half_production_needs_a_key_or_explicit_dev_mode() {
    for args in [
        &["--api-key", "k"][..],
        &["--redis-url", "redis://127.0.0.1:6379"],
        &["--jwt-alg", "RS256"],
        &["--jwt-issuer", "me"],
        &["--jwt-audience", "us"],
        &["--listen", "0.0.0.0:8080"],
    ] {
        let err = parse(args).expect_err("half production");
        assert!(err.contains("SWITCHBOARD_JWT_SECRET"), "{args:?}: {err}");
        assert!(err.contains("SWITCHBOARD_DEV"), "{args:?}: {err}");
    }
    let err = parse(&["--dev", "--redis-url", "redis://127.0.0.1:6379"]).expect_err("no secret");
    assert!(err.contains("SWITCHBOARD_JWT_SECRET"), "{err}");
    let c = parse(&[
        "--dev",
        "--jwt-secret",
        "s",
        "--redis-url",
        "redis://127.0.0.1:6379",
    ])
    .expect("dev with a shared secret");
    assert!(c.dev_mode());
    assert!(
        parse(&["--listen", "127.0.0.1:9000"])
            .expect("local")
            .dev_mode()
    );
    assert!(parse(&["--dev", "--jwt-alg", "RS256"]).is_err());
    let c = parse(&["--jwt-secret", "s", "--api-key", "k"]).expect("production");
    assert!(!c.dev_mode());
    assert_eq!(c.listen_addr(), "0.0.0.0:8080".parse().expect("addr"));
    assert_eq!(c.drain_delay(), Duration::from_secs(5));
}

#[test]
fn named_secrets_are_checked_without_echoing_them() {
    let ok = parse(&["--jwt-secrets", "a:one, b:two:with-colon"]).expect("valid");
    let list = crate::auth::parse_named_secrets(ok.jwt_secrets.as_deref().unwrap_or_default())
        .expect("parsed");
    assert_eq!(list[1], ("b".to_owned(), "two:with-colon".to_owned()));
    assert!(!ok.dev_mode(), "named secrets are a key: not dev mode");
    for bad in ["nokid", "a:", ":s", "a:x,a:y", ","] {
        let err = parse(&["--jwt-secrets", bad]).expect_err(bad);
        assert!(err.contains("SWITCHBOARD_JWT_SECRETS"), "{bad}: {err}");
        assert!(!err.contains(":x") && !err.contains("nokid"), "{err}");
    }
    let jwks = parse(&["--jwt-jwks-file", "/etc/keys.json"]).expect("valid");
    assert!(!jwks.dev_mode());
    assert!(parse(&["--api-max-body-bytes", "0"]).is_err());
    assert!(parse(&["--api-timeout", "0s"]).is_err());
}

#[test]
fn a_renamed_setting_is_refused_by_name() {
    assert!(refuse_renamed(|_| false).is_ok());
    let err = refuse_renamed(|name| name == "SWITCHBOARD_IO_BUFFER_BYTES").expect_err("refused");
    assert!(err.contains("SWITCHBOARD_READ_BUFFER_BYTES"), "{err}");
}
