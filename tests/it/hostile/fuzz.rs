//! Property tests of the frame decoder and of dispatch: arbitrary bytes and JSON (deep
//! nesting, huge numbers, wrong types, unknown fields) never panic and always get a
//! proper answer, straight through `parse_request` (fast, many cases) and through a
//! live gateway before and after login (bounded cases). `fuzz_long_run` is the bounded
//! fuzz pass `scripts/fuzz.sh` runs; `tests/corpus/` holds inputs every run replays.

use super::raw::{BINARY, Got, RawWs, TEXT};
use super::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use std::time::{Duration, Instant};
use switchboard::protocol::{RoomId, clean_name, parse_request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

const TYPES: &[&str] = &[
    "login",
    "join",
    "leave",
    "publish",
    "send",
    "broadcast",
    "presence",
    "who",
    "rename",
    "ping",
    "pong",
    "game.create",
    "game.join",
    "game.watch",
    "game.send",
    "game.leave",
    "game.close",
    "rank.join",
    "rank.leave",
    "online.watch",
    "online.unwatch",
    "sudo",
    "",
];
const FIELDS: &[&str] = &[
    "type",
    "id",
    "room",
    "since",
    "data",
    "echo",
    "to",
    "token",
    "dm_since",
    "name",
    "cursor",
    "limit",
    "users",
    "all",
    "__proto__",
];
const STRINGS: &[&str] = &[
    "lobby",
    "../../admin",
    "\u{430}dmin",
    "",
    "a\u{202E}b",
    "\u{200B}",
    "nul\0",
    "g-00",
    "a/./b",
    "team/alpha",
    "*",
    "{x}",
    "\u{FEFF}",
    "e\u{301}",
];
const NUMBERS: &[&str] = &[
    "1e400",
    "-1e400",
    "18446744073709551615",
    "18446744073709551616",
    "-1",
    "-9223372036854775809",
    "1e-400",
    "123456789012345678901234567890",
    "0.5",
    "-0",
    "7",
];
const CODES: &[&str] = &[
    "unauthorized",
    "bad_request",
    "too_large",
    "rate_limited",
    "forbidden",
    "not_found",
    "room_full",
    "conflict",
    "unavailable",
    "internal",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        prop::sample::select(TYPES).prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELDS).prop_map(String::from),
        1 => ".{0,10}",
    ]
}

/// An object that looks like a client frame: a known (or wrong) `type` and fields the
/// protocol uses, with values of any type.
fn frame_like() -> impl Strategy<Value = Value> {
    let ty = prop_oneof![
        4 => prop::sample::select(TYPES).prop_map(Value::from),
        1 => json_value(),
    ];
    (ty, prop::collection::btree_map(key(), json_value(), 0..6)).prop_map(|(ty, fields)| {
        let mut m: serde_json::Map<String, Value> = fields.into_iter().collect();
        m.insert("type".into(), ty);
        Value::Object(m)
    })
}

/// Text a client might send: frame-like JSON, any JSON, deep nesting, numbers no
/// integer type holds, mangled frames and arbitrary strings.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => frame_like().prop_map(|v| v.to_string()),
        2 => json_value().prop_map(|v| v.to_string()),
        1 => (1usize..3000, prop::sample::select(&["[", "{\"a\":", "{\"type\":"][..]))
            .prop_map(|(n, open)| {
                let close = if open == "[" { "]" } else { "}" };
                format!("{}1{}", open.repeat(n), close.repeat(n))
            }),
        1 => (prop::sample::select(NUMBERS), prop::sample::select(&["since", "limit", "id", "dm_since", "type"][..]))
            .prop_map(|(n, f)| format!(r#"{{"type":"join","room":"r","{f}":{n}}}"#)),
        2 => (frame_like(), any::<prop::sample::Index>(), ".{0,3}").prop_map(|(v, at, junk)| {
            let s = v.to_string();
            let cut = s.char_indices().map(|(i, _)| i).nth(at.index(s.chars().count().max(1))).unwrap_or(0);
            format!("{}{junk}", &s[..cut])
        }),
        1 => ".{0,64}",
    ]
}

/// Bytes a client might send: text, arbitrary bytes, or text with bytes flipped.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => text().prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => (text(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(t, at, b)| {
            let mut v = t.into_bytes();
            if !v.is_empty() {
                let i = at.index(v.len());
                v[i] = b;
            }
            v
        }),
    ]
}

/// The decoder's contract for one input: no panic; a reason on failure; the `id`
/// echoed whenever the frame is a JSON object with a readable `id`.
fn decode_property(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(()); // the transports refuse these before parsing
    };
    match parse_request(text) {
        Ok(request) => {
            prop_assert!(!request.frame.kind().is_empty());
            let v: Value =
                serde_json::from_str(text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(
                v["type"].is_string(),
                "accepted a non-string type: {}",
                text
            );
        }
        Err((id, message)) => {
            prop_assert!(!message.is_empty());
            // Checked on canonical objects (no duplicate keys, which make the id
            // unreadable); a null id is no id.
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text)
                && serde_json::to_string(&v).ok().as_deref() == Some(text)
            {
                let expected = v.get("id").filter(|id| !id.is_null());
                prop_assert_eq!(id.as_ref(), expected, "id not echoed for {}", text);
            }
        }
    }
    Ok(())
}

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

proptest! {
    #![proptest_config(cases(2000))]

    #[test]
    fn decoder_never_panics_on_text(t in text()) {
        decode_property(t.as_bytes())?;
    }

    #[test]
    fn decoder_never_panics_on_bytes(b in bytes()) {
        decode_property(&b)?;
    }

    #[test]
    fn names_clean_to_a_fixed_point(s in prop_oneof![".{0,80}", prop::sample::select(STRINGS).prop_map(String::from)], max in 1usize..80) {
        let once = clean_name(&s, max);
        prop_assert!(once.chars().count() <= max);
        prop_assert!(!once.chars().any(|c| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200B}'..='\u{200F}' | '\u{FEFF}')), "{:?}", once);
        prop_assert_eq!(once.trim(), once.as_str());
        prop_assert_eq!(clean_name(&once, max), once.clone());
    }

    #[test]
    fn valid_ids_are_printable_ascii_and_not_path_like(s in prop_oneof![".{0,20}", "[a-z./]{0,12}", prop::sample::select(STRINGS).prop_map(String::from)]) {
        if RoomId::new(&s).is_ok() {
            prop_assert!(s.bytes().all(|b| b.is_ascii_graphic()), "{:?}", s);
            prop_assert!(s.split('/').all(|seg| !matches!(seg, "" | "." | "..")), "{:?}", s);
        }
    }
}

/// A live gateway with one logged-in client per transport, driven case by case.
struct Live {
    server: TestServer,
    ws: RawWs,
    tcp: (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf),
    probe: u64,
}

async fn tcp_login(
    server: &TestServer,
    user: &str,
) -> (Lines<BufReader<OwnedReadHalf>>, OwnedWriteHalf) {
    let (read, mut write) = TcpStream::connect(server.tcp)
        .await
        .expect("connect")
        .into_split();
    let mut lines = BufReader::new(read).lines();
    let login = json!({"type": "login", "token": token(user)});
    write
        .write_all(format!("{login}\n").as_bytes())
        .await
        .expect("write");
    let welcome = tokio::time::timeout(WAIT, lines.next_line()).await;
    assert!(
        matches!(&welcome, Ok(Ok(Some(l))) if l.contains("welcome")),
        "{welcome:?}"
    );
    (lines, write)
}

impl Live {
    async fn start() -> Self {
        let server = TestServer::with(|c| {
            c.rate_limit = 1e6;
            c.rate_burst = 1e6;
            c.login_timeout = Duration::from_secs(2);
        })
        .await;
        let ws = RawWs::login(server.http, "fuzz-ws").await;
        let tcp = tcp_login(&server, "fuzz-tcp").await;
        Live {
            server,
            ws,
            tcp,
            probe: 0,
        }
    }

    /// One input after login on both transports, then a ping that must be answered:
    /// in between only proper frames, errors with known codes, and no close.
    async fn after_login(&mut self, input: &[u8]) -> Result<(), String> {
        self.probe += 1;
        let probe = format!("probe-{}", self.probe);
        let ping = json!({"type": "ping", "id": probe}).to_string();
        match std::str::from_utf8(input) {
            Ok(text) => self.ws.text(text).await,
            Err(_) => self.ws.frame(true, 0, BINARY, input).await,
        }
        self.ws.text(&ping).await;
        loop {
            match self.ws.next().await {
                Got::Text(v) if v["id"] == probe.as_str() && v["type"] == "pong" => break,
                Got::Text(v) => check_frame(&v)?,
                Got::Ping | Got::Pong => {}
                other => {
                    return Err(format!(
                        "ws: {other:?} after {:?}",
                        String::from_utf8_lossy(input)
                    ));
                }
            }
        }
        let mut line: Vec<u8> = input.iter().copied().filter(|b| *b != b'\n').collect();
        line.push(b'\n');
        line.extend_from_slice(ping.as_bytes());
        line.push(b'\n');
        let (lines, write) = &mut self.tcp;
        write.write_all(&line).await.map_err(|e| e.to_string())?;
        loop {
            let next = tokio::time::timeout(WAIT, lines.next_line()).await;
            let Ok(Ok(Some(l))) = next else {
                return Err(format!(
                    "tcp: {next:?} after {:?}",
                    String::from_utf8_lossy(input)
                ));
            };
            let v: Value = serde_json::from_str(&l).map_err(|e| format!("{e}: {l}"))?;
            if v["id"] == probe.as_str() && v["type"] == "pong" {
                return Ok(());
            }
            if v["type"] == "close" {
                return Err(format!("tcp closed: {v}"));
            }
            check_frame(&v)?;
        }
    }

    /// One input as the first frame of a new WebSocket: 4001 after `unauthorized`.
    async fn before_login(&mut self, input: &[u8]) -> Result<(), String> {
        let mut ws = RawWs::connect(self.server.http).await;
        ws.frame(true, 0, TEXT, input).await;
        let (code, texts) = ws.close_code().await;
        if code != Some(4001) || texts.len() != 1 || texts[0]["code"] != "unauthorized" {
            return Err(format!("before login: {code:?} {texts:?}"));
        }
        Ok(())
    }
}

fn check_frame(v: &Value) -> Result<(), String> {
    match v["type"].as_str() {
        Some("error") if CODES.contains(&v["code"].as_str().unwrap_or("")) => Ok(()),
        Some("error") | Some("close") | None => Err(format!("bad frame {v}")),
        Some(_) => Ok(()),
    }
}

/// Runs `input` through a live gateway; a failure names the input. The gateway sits in
/// a cell because proptest's runner takes a `Fn`; it is taken out for each case.
fn live_property(
    rt: &tokio::runtime::Runtime,
    cell: &std::cell::RefCell<Option<Live>>,
    input: &[u8],
) -> Result<(), TestCaseError> {
    let mut live = cell.take().expect("the live gateway");
    let result = rt.block_on(async {
        live.after_login(input).await?;
        live.before_login(input).await
    });
    cell.replace(Some(live));
    result.map_err(TestCaseError::fail)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn live_gateway_answers_arbitrary_frames_before_and_after_login() {
    let log = ErrorLog::capture();
    let rt = runtime();
    let live = std::cell::RefCell::new(Some(rt.block_on(Live::start())));
    let mut runner = TestRunner::new(cases(48));
    let result = runner.run(&bytes(), |input| live_property(&rt, &live, &input));
    if let Err(err) = result {
        panic!("{err}");
    }
    let live = live.take().expect("live");
    rt.block_on(still_serving(&live.server));
    log.assert_none();
}

fn corpus_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(corpus_dir())
        .expect("tests/corpus")
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).expect("read"),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn corpus_replays_cleanly() {
    let rt = runtime();
    let live = std::cell::RefCell::new(Some(rt.block_on(Live::start())));
    let files = corpus();
    assert!(files.len() >= 10, "the committed corpus is missing");
    for (name, input) in files {
        if let Err(e) = decode_property(&input).and_then(|()| live_property(&rt, &live, &input)) {
            panic!("corpus {name}: {e}");
        }
    }
}

/// Saves a failing input to the corpus (so every later run replays it) and fails.
fn keep_and_fail<T: std::fmt::Debug>(
    what: &str,
    err: TestError<T>,
    input: impl FnOnce(&T) -> Vec<u8>,
) -> ! {
    if let TestError::Fail(_, value) = &err {
        let bytes = input(value);
        let hash = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
        });
        let path = corpus_dir().join(format!("found-{hash:016x}"));
        let _ = std::fs::write(&path, &bytes);
        eprintln!("saved the failing input to {}", path.display());
    }
    panic!("{what}: {err}");
}

/// The bounded fuzz pass: `SWITCHBOARD_FUZZ_SECS` (60) of fresh random cases through the
/// decoder and the live gateway, in rounds with new seeds. Run by `scripts/fuzz.sh`.
#[test]
#[ignore = "long: run by scripts/fuzz.sh"]
fn fuzz_long_run() {
    let secs: u64 = std::env::var("SWITCHBOARD_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let log = ErrorLog::capture();
    let rt = runtime();
    let live = std::cell::RefCell::new(Some(rt.block_on(Live::start())));
    let (mut decoded, mut lived, mut rounds) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline {
        rounds += 1;
        if let Err(e) = TestRunner::new(cases(1000)).run(&bytes(), |b| decode_property(&b)) {
            keep_and_fail("decoder", e, Clone::clone);
        }
        decoded += 1000;
        if let Err(e) = TestRunner::new(cases(40)).run(&bytes(), |b| live_property(&rt, &live, &b))
        {
            keep_and_fail("live gateway", e, Clone::clone);
        }
        lived += 40;
    }
    let live = live.take().expect("live");
    rt.block_on(still_serving(&live.server));
    log.assert_none();
    println!(
        "fuzz: {rounds} rounds, {decoded} decoder cases, {lived} live cases in {secs} s, no failure"
    );
}
