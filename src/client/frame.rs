//! Inbound frames: the text as received, read just enough to route it (`type`),
//! with the `id`, the full JSON value or a typed [`ServerEvent`] parsed only when
//! asked for.
//!
//! A load generator that only counts messages never pays for a parse; a test or a
//! terminal client asks for [`Frame::value`] or [`Frame::event`].

use super::ClientError;
use super::event::{KINDS, ServerEvent};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;
use tokio_tungstenite::tungstenite::Utf8Bytes;

/// One frame from the server.
#[derive(Clone)]
pub struct Frame {
    text: Utf8Bytes,
    kind: Kind,
    /// Read on first use: only replies are ever asked for their id.
    id: OnceLock<Option<Value>>,
}

/// Where a frame's `type` is.
#[derive(Clone)]
enum Kind {
    /// In the text, between these byte offsets (the common case, no escapes).
    At(Range<usize>),
    /// Decoded by the full parse.
    Decoded(Box<str>),
}

/// The routing fields, read without building the rest of the document.
#[derive(Deserialize)]
struct Head {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    id: Option<Value>,
}

#[derive(Deserialize)]
struct IdOnly {
    #[serde(default)]
    id: Option<Value>,
}

/// The byte range of `<kind>` when `text` starts with `{"type":"<kind>"` and `<kind>`
/// has no escapes. The server writes the tag first, so this is every frame it sends.
fn leading_type(text: &str) -> Option<Range<usize>> {
    const PREFIX: &str = r#"{"type":""#;
    let rest = text.strip_prefix(PREFIX)?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then_some(PREFIX.len()..PREFIX.len() + end)
}

impl Frame {
    /// Reads a frame's `type`. A frame that starts with `{"type":"..."` is taken as
    /// one without further checks ([`value`](Frame::value) and
    /// [`event`](Frame::event) check the rest); any other text must be a JSON object
    /// with a string `type`.
    pub fn parse(text: impl Into<Utf8Bytes>) -> Result<Frame, ClientError> {
        let text = text.into();
        if let Some(at) = leading_type(text.as_str()) {
            return Ok(Frame {
                text,
                kind: Kind::At(at),
                id: OnceLock::new(),
            });
        }
        let head: Head = serde_json::from_str(text.as_str())
            .map_err(|err| ClientError::Protocol(format!("not a frame: {err}")))?;
        Ok(Frame {
            text,
            kind: Kind::Decoded(head.kind.into_boxed_str()),
            id: OnceLock::from(head.id),
        })
    }

    /// The frame's `type`: `"message"`, `"ok"`, `"game.started"`, ...
    pub fn kind(&self) -> &str {
        match &self.kind {
            Kind::At(at) => self.text.as_str().get(at.clone()).unwrap_or_default(),
            Kind::Decoded(kind) => kind,
        }
    }

    /// The request id a reply echoes, if any (`None` also for malformed JSON).
    pub fn id(&self) -> Option<&Value> {
        self.id
            .get_or_init(|| {
                serde_json::from_str::<IdOnly>(self.text())
                    .ok()
                    .and_then(|head| head.id)
            })
            .as_ref()
    }

    /// The JSON text exactly as received.
    pub fn text(&self) -> &str {
        self.text.as_str()
    }

    /// The whole frame as a JSON value.
    pub fn value(&self) -> Result<Value, ClientError> {
        serde_json::from_str(self.text()).map_err(|err| ClientError::Protocol(err.to_string()))
    }

    /// The frame as a typed event; a `type` this client does not know is
    /// [`ServerEvent::Unknown`].
    pub fn event(&self) -> Result<ServerEvent, ClientError> {
        if !KINDS.contains(&self.kind()) {
            return Ok(ServerEvent::Unknown(self.value()?));
        }
        let mut de = serde_json::Deserializer::from_str(self.text());
        ServerEvent::deserialize(&mut de)
            .and_then(|event| de.end().map(|()| event))
            .map_err(|err| ClientError::Protocol(format!("bad {} frame: {err}", self.kind())))
    }

    /// The `Rejected` error for an `error` frame.
    pub(super) fn rejection(&self) -> ClientError {
        match self.event() {
            Ok(ServerEvent::Error { code, message, .. }) => ClientError::Rejected { code, message },
            Ok(_) => ClientError::Protocol(format!("expected an error frame, got {}", self.kind())),
            Err(err) => err,
        }
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.text())
    }
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Frame").field(&self.text()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_type_and_id_and_keeps_the_text() {
        let text = r#"{"type":"ok","id":"r1","seq":4}"#;
        let f = Frame::parse(text).expect("frame");
        assert_eq!((f.kind(), f.id()), ("ok", Some(&json!("r1"))));
        assert_eq!(f.text(), text);
        assert_eq!(f.value().expect("json")["seq"], 4);
        let f = Frame::parse(r#"{"id":null,"type":"pong"}"#).expect("frame");
        assert_eq!(f.id(), None);
        for bad in ["", "{oops", "[1]", r#"{"no":"type"}"#, r#"{"type":5}"#] {
            assert!(
                matches!(Frame::parse(bad), Err(ClientError::Protocol(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn fast_and_full_reads_agree() {
        let samples = [
            r#"{"type":"ok","id":"r1","seq":4}"#,
            r#"{"type":"presence","id":{"a":[1]},"room":"x","members":[],"count":0}"#,
            r#"{"type":"message","room":"l","from":"a","name":"A","data":{"id":5,"type":"x"},"seq":1,"ts":2}"#,
            r#"{"type":"pong"}"#,
        ];
        for text in samples {
            let fast = Frame::parse(text).expect("frame");
            assert!(matches!(fast.kind, Kind::At(_)), "{text}");
            let head: Head = serde_json::from_str(text).expect("head");
            assert_eq!(fast.kind(), head.kind);
            assert_eq!(fast.id(), head.id.as_ref());
        }
        // Not first, spaced or escaped: the full parse.
        for (text, kind) in [
            (r#"{"id":1,"type":"ok"}"#, "ok"),
            (r#"{ "type": "ok" }"#, "ok"),
            (r#"{"type":"a\"b"}"#, "a\"b"),
        ] {
            let f = Frame::parse(text).expect("frame");
            assert!(matches!(f.kind, Kind::Decoded(_)), "{text}");
            assert_eq!(f.kind(), kind);
        }
        assert_eq!(
            Frame::parse(r#"{"id":1,"type":"ok"}"#).expect("frame").id(),
            Some(&json!(1))
        );
        // The fast path leaves checking the rest to `value` and `event`.
        let broken = Frame::parse(r#"{"type":"message","room":"#).expect("frame");
        assert_eq!(broken.kind(), "message");
        assert!(broken.value().is_err());
        assert!(broken.event().is_err());
        assert_eq!(broken.id(), None);
    }

    #[test]
    fn unknown_types_are_kept_and_bad_known_ones_fail() {
        let text = r#"{"type":"future.thing","x":[1,2]}"#;
        let f = Frame::parse(text).expect("frame");
        assert_eq!(
            f.event().expect("event"),
            ServerEvent::Unknown(json!({"type": "future.thing", "x": [1, 2]}))
        );
        let via_serde: ServerEvent = serde_json::from_str(text).expect("event");
        assert!(matches!(via_serde, ServerEvent::Unknown(_)));
        let extra = Frame::parse(r#"{"type":"pong","id":1,"new_field":true}"#).expect("frame");
        assert_eq!(
            extra.event().expect("event"),
            ServerEvent::Pong { id: Some(json!(1)) }
        );
        let broken = Frame::parse(r#"{"type":"message","room":"lobby"}"#).expect("frame");
        assert!(matches!(broken.event(), Err(ClientError::Protocol(_))));
    }

    #[test]
    fn error_frames_become_rejections() {
        let f = Frame::parse(r#"{"type":"error","code":"not_found","message":"no such game"}"#)
            .expect("frame");
        assert!(matches!(
            f.rejection(),
            ClientError::Rejected { code, message } if code == "not_found" && message == "no such game"
        ));
    }
}
