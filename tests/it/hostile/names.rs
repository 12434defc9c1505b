//! Identities and names: homoglyphs, invisible and bidi characters, NUL, empty and huge
//! values, path-like room names; over both transports and the HTTP API.

use super::*;

/// A token with subject `sub` is refused with 4001 on both transports.
async fn subject_refused(sub: &str) {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut claims = claims("x");
    claims.sub = sub.to_owned();
    let token = sign(&claims);
    for mut c in [server.ws_raw().await, server.tcp_raw().await] {
        c.send(json!({"type": "login", "token": token, "id": "l"}))
            .await;
        let err = expect_error(&mut c, "unauthorized").await;
        assert_eq!(
            err["message"], "token subject is not a valid user id",
            "{err}"
        );
        assert_eq!(c.closed().await, Some(4001));
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn homoglyph_subject_is_refused() {
    // "аdmin" with a Cyrillic а renders like `admin`.
    subject_refused("\u{430}dmin").await;
}

#[tokio::test]
async fn subject_with_nul_rtl_or_zero_width_is_refused() {
    subject_refused("adm\0in").await;
    subject_refused("admin\u{202E}").await;
    subject_refused("ad\u{200B}min").await;
}

#[tokio::test]
async fn empty_huge_and_path_like_subjects_are_refused() {
    subject_refused("").await;
    subject_refused(&"u".repeat(129)).await;
    subject_refused("../admin").await;
}

/// Logs in over WebSocket with display name `name`; returns the name in `welcome`.
async fn welcome_name(server: &TestServer, user: &str, name: &str) -> String {
    let mut claims = claims(user);
    claims.name = Some(name.to_owned());
    let mut c = server.ws_raw().await;
    let welcome = c.login(&sign(&claims)).await;
    welcome["name"].as_str().expect("name").to_owned()
}

#[tokio::test]
async fn display_names_lose_bidi_zero_width_and_control_characters() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    assert_eq!(
        welcome_name(&server, "a", "evil\u{202E}gpj.exe").await,
        "evilgpj.exe"
    );
    assert_eq!(
        welcome_name(&server, "b", "B\u{200B}o\u{FEFF}b\0\u{7}").await,
        "Bob"
    );
    assert_eq!(
        welcome_name(&server, "c", "e\u{301}mile").await,
        "\u{e9}mile",
        "NFC"
    );
    assert_eq!(
        welcome_name(&server, "d", "  two   spaces ").await,
        "two spaces"
    );
    // Nothing visible left: the user id stands in.
    assert_eq!(welcome_name(&server, "e", "\u{202E}\u{200B} ").await, "e");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn huge_display_name_is_cut() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let name = welcome_name(&server, "a", &"\u{e9}".repeat(10_000)).await;
    assert_eq!(name.chars().count(), 64);
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn rename_is_cleaned_and_an_invisible_one_refused() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    for mut c in [server.ws("mallory").await, server.tcp("mallory2").await] {
        let ok = c
            .request(json!({"type": "rename", "name": "Ad\u{202E}min\0"}))
            .await;
        assert_eq!(ok["name"], "Admin", "{ok}");
        let err = c
            .request(json!({"type": "rename", "name": "\u{200B}\u{2066}\u{FEFF}"}))
            .await;
        is_error(&err, "bad_request");
        let err = c.request(json!({"type": "rename", "name": ""})).await;
        is_error(&err, "bad_request");
    }
    still_serving(&server).await;
    log.assert_none();
}

/// `join` of each room is a `bad_request` on both transports.
async fn rooms_refused(rooms: &[&str]) {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    for mut c in [server.ws("mallory").await, server.tcp("mallory2").await] {
        for room in rooms {
            let err = c.request(json!({"type": "join", "room": room})).await;
            is_error(&err, "bad_request");
        }
        assert_eq!(
            c.request(json!({"type": "join", "room": "fine"})).await["type"],
            "ok"
        );
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn empty_and_huge_room_names_are_bad_request() {
    rooms_refused(&["", &"r".repeat(129), &"r".repeat(10_000)]).await;
}

#[tokio::test]
async fn path_like_room_names_are_bad_request() {
    rooms_refused(&[
        "../../admin",
        "/etc/passwd",
        "a/../b",
        "a//b",
        "a/",
        ".",
        "..",
    ])
    .await;
}

#[tokio::test]
async fn unicode_room_names_are_bad_request() {
    rooms_refused(&[
        "\u{430}dmin",
        "lobby\u{200B}",
        "lobby\u{202E}",
        "lob\0by",
        "caf\u{e9}",
    ])
    .await;
}

#[tokio::test]
async fn unicode_recipient_is_bad_request() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    let mut c = server.ws("mallory").await;
    let err = c
        .request(json!({"type": "send", "to": "\u{430}dmin", "data": "hi"}))
        .await;
    is_error(&err, "bad_request");
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn http_api_refuses_path_like_and_unicode_ids() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    for path in [
        "/api/v1/rooms/..%2F..%2Fadmin/publish",
        "/api/v1/rooms/%2E%2E/publish",
        "/api/v1/rooms/lobby%E2%80%8B/publish",
        "/api/v1/users/%D0%B0dmin/send",
        "/api/v1/users/a%00b/send",
    ] {
        let (status, body) = http(
            server.http,
            "POST",
            path,
            Some(API_KEY),
            Some(r#"{"data":1}"#),
        )
        .await;
        assert_eq!(status, 400, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(body["code"], "bad_request", "{path}: {body}");
        assert!(
            !body["message"].as_str().unwrap_or("").contains("admin\""),
            "{body}"
        );
    }
    still_serving(&server).await;
    log.assert_none();
}

#[tokio::test]
async fn huge_rename_is_cut_on_both_transports() {
    let log = ErrorLog::capture();
    let server = TestServer::spawn().await;
    for mut c in [server.ws("mallory").await, server.tcp("mallory2").await] {
        let ok = c
            .request(json!({"type": "rename", "name": "\u{202E}n".repeat(10_000)}))
            .await;
        assert_eq!(ok["name"], "n".repeat(64), "{ok}");
    }
    still_serving(&server).await;
    log.assert_none();
}
