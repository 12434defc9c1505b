//! Wire protocol v1: the client and server frames, identifiers and error codes.
//!
//! This is the only module that knows JSON field names of the client protocol.
//! Frames are JSON objects tagged by `"type"`; over TCP one object per line.

mod client;
pub mod close;
mod error;
mod game;
mod ids;
mod server;

pub use client::{ClientFrame, Request, parse_request};
pub use error::{ErrorCode, Reply};
pub use game::{GameRole, GameTarget};
pub use ids::{MsgId, RoomId, UserId, clean_name};
pub use server::{Encoded, Member, OkDetail, ServerFrame, StreamKind};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn parses_frames_with_ids() {
        let r = parse_request(r#"{"type":"publish","id":7,"room":"lobby","data":{"x":1}}"#)
            .expect("valid");
        assert_eq!(r.id, Some(Value::from(7)));
        match r.frame {
            ClientFrame::Publish { room, echo, .. } => {
                assert_eq!(room.as_str(), "lobby");
                assert!(echo);
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_unknown_type_but_keeps_id() {
        let (id, msg) = parse_request(r#"{"type":"nope","id":"a"}"#).expect_err("invalid");
        assert_eq!(id, Some(Value::from("a")));
        assert!(msg.contains("unknown variant"), "{msg}");
    }

    #[test]
    fn tags_must_be_strings() {
        for text in [
            r#"{"type":7}"#,
            r#"{"type" : -0 , "id":1}"#,
            r#"{"typ\u0065":7}"#,
            r#"{"type":0,"token":"x"}"#,
        ] {
            assert!(parse_request(text).is_err(), "{text}");
        }
        // A numeric "type" deeper down is data, not a tag.
        assert!(parse_request(r#"{"type":"publish","room":"r","data":{"type":7}}"#).is_ok());
    }

    #[test]
    fn rejects_bad_room_names() {
        assert!(parse_request(r#"{"type":"join","room":""}"#).is_err());
        assert!(parse_request(r#"{"type":"join","room":"a{b}"}"#).is_err());
        assert!(parse_request(r#"{"type":"join","room":5}"#).is_err());
    }

    #[test]
    fn golden_server_frames() {
        let data = serde_json::json!({"t":"hi"});
        let f = ServerFrame::Message {
            room: "lobby",
            from: "alice",
            name: "Alice",
            data: &data,
            seq: 3,
            ts: 1000,
        };
        assert_eq!(
            f.encode().as_str(),
            r#"{"type":"message","room":"lobby","from":"alice","name":"Alice","data":{"t":"hi"},"seq":3,"ts":1000}"#
        );
        let id = Value::from(1);
        let ok = ServerFrame::Ok {
            id: Some(&id),
            detail: OkDetail::Seq {
                seq: 9,
                duplicate: false,
            },
        };
        assert_eq!(ok.encode().as_str(), r#"{"type":"ok","id":1,"seq":9}"#);
        let ok = ServerFrame::Ok {
            id: None,
            detail: OkDetail::None {},
        };
        assert_eq!(ok.encode().as_str(), r#"{"type":"ok"}"#);
        let err = ServerFrame::Error {
            id: None,
            code: ErrorCode::RateLimited,
            message: "slow down",
        };
        assert_eq!(
            err.encode().as_str(),
            r#"{"type":"error","code":"rate_limited","message":"slow down"}"#
        );
    }
}
