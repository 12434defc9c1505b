//! Validated identifiers for rooms and users (cheap to clone), and the display-name rule.

use serde::{Deserialize, Deserializer, Serialize};
use std::{borrow::Borrow, fmt, sync::Arc};

/// Longest room or user id accepted, in bytes.
const MAX_NAME_LEN: usize = 128;

/// Ids become parts of Redis keys, channel names and URL paths, and users tell them
/// apart by eye, so they are restricted to printable ASCII without whitespace, globs or
/// the `{}` of Redis Cluster hash tags: no homoglyphs (a Cyrillic "а" in `admin`), no
/// invisible or bidi characters. `/` separates segments, and a path-like id (an empty,
/// `.` or `..` segment, as in `../../admin`) is refused.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'-' | b'_' | b'.' | b':' | b'@' | b'/' | b'+' | b'=' | b'#'
                )
        })
        && s.split('/').all(|seg| !matches!(seg, "" | "." | ".."))
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
                    // The value is not echoed: it may be huge or full of bidi tricks.
                    Err(format!(
                        concat!("invalid ", $what, ": 1-{} bytes of ASCII letters, digits and -_.:@/+=#, no empty, . or .. segment between /"),
                        MAX_NAME_LEN
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

/// Characters that change how the text around them renders without showing
/// themselves: bidi embeddings, overrides and isolates (a U+202E turns `evil` into
/// `live`), zero-width characters, the BOM and other invisible format characters.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' // soft hyphen
        | '\u{034F}' // combining grapheme joiner
        | '\u{061C}' // Arabic letter mark
        | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' // Mongolian selectors
        | '\u{200B}'..='\u{200F}' // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}' // bidi embeddings and overrides
        | '\u{2060}'..='\u{206F}' // word joiner, invisible operators, bidi isolates
        | '\u{FE00}'..='\u{FE0F}' // variation selectors
        | '\u{FEFF}' // BOM / zero-width no-break space
        | '\u{FFF9}'..='\u{FFFB}' // interlinear annotations
        | '\u{E0000}'..='\u{E007F}' // tags
    )
}

/// Cleans a display name: control and invisible characters (see `invisible`) removed,
/// NFC-normalized (one spelling per rendering), whitespace runs collapsed to one space
/// and trimmed, cut to `max_chars` characters. Cleaning twice changes nothing. May return "" (the caller decides).
pub fn clean_name(name: &str, max_chars: usize) -> String {
    use unicode_normalization::UnicodeNormalization;
    let mut out = String::with_capacity(name.len().min(max_chars * 4));
    let mut chars = 0;
    let mut space = false;
    // Removed before normalizing: an invisible character between a letter and an
    // accent would otherwise block their composition until a second cleaning.
    let visible = name
        .chars()
        .filter(|&c| (c.is_whitespace() || !c.is_control()) && !invisible(c));
    for c in visible.nfc() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if chars + usize::from(space) + 1 > max_chars {
            break;
        }
        if space {
            out.push(' ');
            chars += 1;
            space = false;
        }
        out.push(c);
        chars += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  Bob\u{7}  B. ", 64), "Bob B.");
        assert_eq!(clean_name("abcdef", 3), "abc");
        assert_eq!(clean_name("ab cdef", 3), "ab");
        assert_eq!(clean_name("evil\u{202E}txt.exe", 64), "eviltxt.exe");
        assert_eq!(clean_name("a\u{200B}d\u{FEFF}m\u{2066}in\0", 64), "admin");
        assert_eq!(clean_name("e\u{301}", 64), "\u{e9}", "NFC");
        assert_eq!(
            clean_name("e\u{200D}\u{301}", 64),
            "\u{e9}",
            "NFC after removal"
        );
        assert_eq!(clean_name("\u{200B}\u{202E} \t", 64), "");
        assert_eq!(clean_name("tab\there\nnew", 64), "tab here new");
    }

    #[test]
    fn ids_are_printable_ascii_and_not_path_like() {
        for ok in [
            "alice",
            "room-1",
            "team/alpha",
            "a.b",
            "x:y@z",
            "a..b",
            "g-0f",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in [
            "",
            long.as_str(),
            "\u{430}dmin", // Cyrillic а
            "caf\u{e9}",
            "a b",
            "a\0",
            "a\u{200B}b",
            "a\u{202E}b",
            "../../admin",
            "/etc",
            "a/",
            "a//b",
            "a/./b",
            "..",
            ".",
            "a{b}",
            "a*",
        ] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert!(valid_name(&"x".repeat(MAX_NAME_LEN)));
    }
}
name_type!(
    /// A client's id for one message (`msg_id`): a retry with the same id is stored
    /// once and answered with the first seq.
    MsgId,
    "message id"
);
