//! NDJSON interchange: one `gryning.v1.Event` per line in the proto3 canonical JSON mapping
//! (lowerCamelCase names, enum values by name; the original snake_case names are accepted too).

use crate::pb;

/// The longest line accepted, in bytes (without its line break).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("line is {len} bytes; the limit is {MAX_LINE_BYTES} bytes (64 KiB) per event")]
    TooLong { len: usize },
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("not a gryning.v1.Event in proto3 JSON: {0}")]
    Json(String),
}

/// Parses one line into a protobuf event (form only; field rules come after, in `from_pb`).
pub fn parse_line(line: &[u8]) -> Result<pb::Event, LineError> {
    if line.len() > MAX_LINE_BYTES {
        return Err(LineError::TooLong { len: line.len() });
    }
    let text = std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?;
    serde_json::from_str(text).map_err(|e| {
        let mut message = mask_quoted(&e.to_string());
        // A value of the wrong type or out of range: name the field whose value it is.
        if e.classify() == serde_json::error::Category::Data {
            if let Some(key) = key_before(text, e.column()) {
                message = format!("field {}: {message}", gryning_domain::echo(key));
            }
        }
        LineError::Json(message)
    })
}

/// The name of the last `"key":` in `text` before byte column `column` (1-based, as JSON
/// errors count): the field whose value the parser was reading there.
fn key_before(text: &str, column: usize) -> Option<&str> {
    let before = text.get(..column.min(text.len()))?;
    let colon = before.rfind("\":")?;
    let start = before[..colon].rfind('"')? + 1;
    Some(&before[start..colon])
}

/// A JSON error message with every value it quotes from the line (an unknown field's name, an
/// unknown enum value, a string of the wrong type) cut to a short, masked prefix
/// (`gryning_domain::echo`), as every other rejection shows values: the parser quotes them
/// whole, so a 60 KB value or a personal identity number would otherwise reach the output.
fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut rest = message;
    while let Some(open) = rest.find(['`', '"']) {
        let quote = rest[open..].chars().next().expect("found");
        out.push_str(&rest[..=open]);
        let inside = &rest[open + 1..];
        // The closing quote: the next one not escaped by a backslash.
        let mut escaped = false;
        let close = inside.char_indices().find_map(|(i, c)| {
            let end = c == quote && !escaped;
            escaped = c == '\\' && !escaped;
            end.then_some(i)
        });
        let Some(close) = close else {
            out.push_str(&gryning_domain::echo(inside));
            return out;
        };
        out.push_str(&gryning_domain::echo(&inside[..close]));
        out.push(quote);
        rest = &inside[close + 1..];
    }
    out.push_str(rest);
    out
}

/// Writes an event as one NDJSON line, without the line break. The event comes from `to_pb`
/// or `parse_line`; an enum number outside the proto (which neither produces) cannot be
/// written by name and panics.
pub fn to_line(event: &pb::Event) -> String {
    serde_json::to_string(event).expect("protobuf events always serialize")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_contract_example_in_both_namings() {
        let camel = r#"{"eventId":"6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d","occurredOn":"2020-03-02","caseId":"9b2e0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c1d","crimeReported":{"crimeId":"a41d0000-0000-4000-8000-000000000001","crimeCode":"4024","victimGender":"GENDER_FEMALE","victimAgeGroup":"AGE_GROUP_ADULT"}}"#;
        let snake = r#"{"event_id":"6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d","occurred_on":"2020-03-02","case_id":"9b2e0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c1d","crime_reported":{"crime_id":"a41d0000-0000-4000-8000-000000000001","crime_code":"4024","victim_gender":"GENDER_FEMALE","victim_age_group":"AGE_GROUP_ADULT"}}"#;
        let a = parse_line(camel.as_bytes()).unwrap();
        let b = parse_line(snake.as_bytes()).unwrap();
        assert_eq!(a, b);
        assert_eq!(to_line(&a), camel);
    }

    #[test]
    fn values_quoted_by_json_errors_are_short_and_masked() {
        // A made-up test number with a correct Luhn digit, as an enum value and a field name.
        let err = parse_line(br#"{"eventId":"x","caseOpened":{"leadCrimeCode":1},"occurredOn":"2020-01-01","caseId":"c","crimeReported":{"victimGender":"19811218-9876"}}"#)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("9876"), "{err}");
        let long = format!(r#"{{"{}":1}}"#, "y".repeat(60_000));
        let err = parse_line(long.as_bytes()).unwrap_err().to_string();
        assert!(
            err.len() < 1_000 && err.contains("unknown field"),
            "{} bytes",
            err.len()
        );
        assert_eq!(mask_quoted("a `b` \"c\\\"d\" e"), "a `b` \"c\\\"d\" e");
    }
}
