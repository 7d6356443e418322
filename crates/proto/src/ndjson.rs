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
    serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))
}

/// Writes an event as one NDJSON line, without the line break.
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
}
