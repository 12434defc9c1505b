//! Validated identifiers for rooms and users (cheap to clone), and the display-name rule.

use serde::{Deserialize, Deserializer, Serialize};
use std::{borrow::Borrow, fmt, sync::Arc};

/// Longest room or user id accepted, in bytes.
const MAX_NAME_LEN: usize = 128;

/// Ids become parts of Redis keys and channel names, so they are restricted to a
/// printable set without whitespace, globs or the `{}` of Redis Cluster hash tags.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.chars().all(|c| {
            c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@' | '/' | '+' | '=' | '#')
        })
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            pub fn new(s: &str) -> Result<Self, String> {
                if valid_name(s) {
                    Ok(Self(Arc::from(s)))
                } else {
                    Err(format!(
                        concat!("invalid ", $what, " {:?}: 1-{} bytes of letters, digits and -_.:@/+=#"),
                        s, MAX_NAME_LEN
                    ))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::new(&s).map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

name_type!(
    /// A room (chat channel) name.
    RoomId,
    "room"
);
name_type!(
    /// A user id: the JWT `sub` claim.
    UserId,
    "user id"
);

impl UserId {
    /// Sender of messages pushed through the HTTP API without a `from`.
    pub fn server() -> Self {
        UserId(Arc::from("server"))
    }
}

/// Trims a display name, drops control characters and caps its length.
pub fn clean_name(name: &str, max_chars: usize) -> String {
    name.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Bob\u{7}  B. ", 64), "Bob  B.");
        assert_eq!(clean_name("abcdef", 3), "abc");
    }
}
name_type!(
    /// A client's id for one message (`msg_id`): a retry with the same id is stored
    /// once and answered with the first seq.
    MsgId,
    "message id"
);
