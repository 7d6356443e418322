//! The mapping between the store's stream names and NATS subject tokens.
//!
//! A stream name is free text, but a subject token may not be empty nor hold `.`, `*`, `>` or
//! whitespace. Every stream therefore becomes exactly one token under the store's prefix, in an
//! escaping that is reversible and injective: `[A-Za-z0-9_-]` stay as they are, every other
//! byte of the UTF-8 name becomes `~` and two lower-case hex digits, and the empty name is the
//! lone token `~` (which no escaped name can be, since an escape always has two digits).

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SubjectError {
    #[error("subject {subject:?} is not under the prefix {prefix:?}")]
    OutsidePrefix { subject: String, prefix: String },
    #[error("subject token {token:?} is not a valid stream name escape")]
    BadEscape { token: String },
}

fn plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The single subject token for a stream name.
pub fn encode_token(stream: &str) -> String {
    if stream.is_empty() {
        return "~".to_owned();
    }
    let mut token = String::with_capacity(stream.len());
    for &b in stream.as_bytes() {
        if plain(b) {
            token.push(b as char);
        } else {
            token.push('~');
            token.push_str(&format!("{b:02x}"));
        }
    }
    token
}

/// The stream name a subject token stands for.
pub fn decode_token(token: &str) -> Result<String, SubjectError> {
    let bad = || SubjectError::BadEscape {
        token: token.to_owned(),
    };
    if token == "~" {
        return Ok(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'~' {
            let hex = token.get(i + 1..i + 3).ok_or_else(bad)?;
            let value = u8::from_str_radix(hex, 16).map_err(|_| bad())?;
            // Only the canonical form decodes, so that one name has one subject.
            if plain(value) || hex != format!("{value:02x}") {
                return Err(bad());
            }
            out.push(value);
            i += 3;
        } else if plain(b) {
            out.push(b);
            i += 1;
        } else {
            return Err(bad());
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The subject of a stream under `prefix` (for example `gryning.events`).
pub fn subject_for(prefix: &str, stream: &str) -> String {
    format!("{prefix}.{}", encode_token(stream))
}

/// The stream name of a subject under `prefix`.
pub fn stream_of(prefix: &str, subject: &str) -> Result<String, SubjectError> {
    subject
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('.'))
        .filter(|token| !token.contains('.'))
        .ok_or_else(|| SubjectError::OutsidePrefix {
            subject: subject.to_owned(),
            prefix: prefix.to_owned(),
        })
        .and_then(decode_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_stays_one_token() {
        for name in [
            "",
            "a",
            "case-3f1c",
            "case.3f1c",
            "x y",
            "*",
            ">",
            "~",
            "~7e",
            "åäö",
            "a.b.c",
            "client/19",
        ] {
            let subject = subject_for("gryning.events", name);
            let token = subject.strip_prefix("gryning.events.").unwrap();
            assert!(
                !token.is_empty() && token.bytes().all(|b| plain(b) || b == b'~'),
                "{name:?} gave the token {token:?}"
            );
            assert_eq!(stream_of("gryning.events", &subject).unwrap(), name);
        }
    }

    #[test]
    fn distinct_names_give_distinct_subjects() {
        assert_ne!(encode_token("~"), encode_token("~7e"));
        assert_ne!(encode_token(""), encode_token("~"));
        assert_ne!(encode_token("a.b"), encode_token("a~2eb"));
    }

    #[test]
    fn rejects_foreign_subjects_and_bad_escapes() {
        assert!(stream_of("gryning.events", "other.a").is_err());
        assert!(stream_of("gryning.events", "gryning.events.a.b").is_err());
        assert!(decode_token("~zz").is_err());
        assert!(
            decode_token("~61").is_err(),
            "a plain byte must not be escaped"
        );
        assert!(decode_token("~2E").is_err(), "escapes are lower case");
    }
}
