//! Where the login token comes from: `--token` / `SWITCHBOARD_TOKEN`, or a dev-mode
//! gateway's `GET /dev/token` (a tiny HTTP/1.1 GET, enough for that one endpoint).

use crate::cli::ChatArgs;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// A dev token is a few hundred bytes; anything much bigger is not one.
const MAX_RESPONSE: u64 = 64 * 1024;

/// The token to log in with, or why there is none.
pub(crate) async fn resolve(args: &ChatArgs) -> Result<String, String> {
    if let Some(user) = &args.dev_user {
        let base = match &args.http {
            Some(base) => base.clone(),
            None => http_base(&args.url).ok_or_else(|| {
                format!(
                    "--dev-user needs --http http://host:port to fetch a token for {}",
                    args.url
                )
            })?,
        };
        return dev_token(&base, user, args.name.as_deref()).await;
    }
    match args.token.as_deref().map(str::trim) {
        Some(token) if !token.is_empty() => Ok(token.to_owned()),
        _ => Err(
            "no token: pass --token T (or set SWITCHBOARD_TOKEN), or --dev-user NAME \
                  against a dev-mode gateway"
                .to_owned(),
        ),
    }
}

/// `http://host:port` for a `ws://host:port/path` URL; `None` for TCP addresses.
pub(crate) fn http_base(url: &str) -> Option<String> {
    let rest = url.strip_prefix("ws://")?;
    let host = rest.split(['/', '?']).next().filter(|h| !h.is_empty())?;
    Some(format!("http://{host}"))
}

/// `(host:port, path prefix)` of an `http://` base URL.
fn split_base(base: &str) -> Result<(String, String), String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("--http must be an http:// URL, got {base:?}"))?;
    let (host, path) = match rest.find('/') {
        Some(at) => (&rest[..at], rest[at..].trim_end_matches('/')),
        None => (rest, ""),
    };
    if host.is_empty() {
        return Err(format!("no host in {base:?}"));
    }
    let authority = if host
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        host.to_owned()
    } else {
        format!("{host}:80")
    };
    Ok((authority, path.to_owned()))
}

/// Percent-encodes a query value.
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

async fn dev_token(base: &str, user: &str, name: Option<&str>) -> Result<String, String> {
    let (authority, prefix) = split_base(base)?;
    let mut path = format!("{prefix}/dev/token?user={}", encode(user));
    if let Some(name) = name {
        path.push_str(&format!("&name={}", encode(name)));
    }
    let url = format!("http://{authority}{path}");
    let response = tokio::time::timeout(HTTP_TIMEOUT, get(&authority, &path))
        .await
        .map_err(|_| format!("GET {url}: timed out"))?
        .map_err(|err| format!("GET {url}: {err}"))?;
    let (status, body) =
        parse_response(&response).ok_or_else(|| format!("GET {url}: not an HTTP response"))?;
    match status {
        200 => {
            let token = body.trim();
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err(format!("GET {url}: the answer is not a token"));
            }
            Ok(token.to_owned())
        }
        404 => Err(format!(
            "GET {url}: 404; the gateway is not in dev mode, pass --token instead"
        )),
        status => Err(format!("GET {url}: HTTP {status}: {}", body.trim())),
    }
}

async fn get(authority: &str, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.take(MAX_RESPONSE).read_to_end(&mut response).await?;
    Ok(response)
}

/// Status and body (de-chunked when needed) of a whole HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut rest: &str) -> Option<String> {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n")?;
        let size = usize::from_str_radix(size.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.push_str(after.get(..size)?);
        rest = after.get(size..)?.trim_start_matches("\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_base_from_the_websocket_url() {
        assert_eq!(
            http_base("ws://127.0.0.1:8080/ws").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            http_base("ws://chat.example/ws?x=1").as_deref(),
            Some("http://chat.example")
        );
        assert_eq!(http_base("tcp://127.0.0.1:7070"), None);
        assert_eq!(http_base("ws:///ws"), None);
        assert_eq!(
            split_base("http://h:8080/").ok(),
            Some(("h:8080".to_owned(), String::new()))
        );
        assert_eq!(
            split_base("http://h/gw").ok(),
            Some(("h:80".to_owned(), "/gw".to_owned()))
        );
        assert!(split_base("https://h").is_err());
        assert_eq!(encode("Alice B./ü"), "Alice%20B.%2F%C3%BC");
    }

    #[test]
    fn responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nabc.d";
        assert_eq!(parse_response(plain), Some((200, "abc.d".to_owned())));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\n.d\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((200, "abc.d".to_owned())));
        let missing = b"HTTP/1.1 404 Not Found\r\n\r\n{\"code\":\"not_found\"}";
        assert_eq!(parse_response(missing).map(|(s, _)| s), Some(404));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[tokio::test]
    async fn tokens_from_flags() {
        use clap::Parser;
        let parse = |argv: &[&str]| match crate::cli::Cli::try_parse_from(argv) {
            Ok(crate::cli::Cli {
                command: Some(crate::cli::Command::Chat(args)),
                ..
            }) => args,
            other => panic!("{argv:?}: {other:?}"),
        };
        let args = parse(&["switchboard", "chat", "--token", " t0k "]);
        assert_eq!(resolve(&args).await.as_deref(), Ok("t0k"));
        let args = parse(&[
            "switchboard",
            "chat",
            "--url",
            "tcp://h:7070",
            "--dev-user",
            "al",
        ]);
        let err = resolve(&args).await.expect_err("needs --http");
        assert!(err.contains("--http"), "{err}");
    }
}
