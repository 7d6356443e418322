//! A direct reader of the protobuf wire format of `gryning.v1.Event`, for stored events. It
//! borrows strings from the input instead of allocating them, which makes a replay's decoding
//! several times cheaper than a prost decode into owned messages. It follows protobuf's rules
//! for well-formed input (last value of a field wins; unknown fields inside a body message are
//! skipped) with one deliberate exception: a field of `gryning.v1.Event` itself that this
//! version does not know is an error, not skipped. New event types are added to `Event`'s
//! `body` oneof, so an unknown field there is most likely an event this version cannot read, and
//! folding the log without it would falsify every table after it. A known field with the wrong
//! wire type is an error too, in `Event` and in a body message; a body message that occurs
//! twice is merged, as protobuf merges a repeated message field; groups (wire types 3 and 4,
//! deprecated, never written by gryning) are refused. So the reader accepts nothing prost
//! refuses and reads what it accepts as prost does: the tests below and the fuzz target
//! `crates/proto/tests/fuzz.rs` check it on every event the generator produces and on noise.

use crate::convert::{BodyView, SubjectView, View};
use crate::pb;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("truncated at byte {0}")]
    Truncated(usize),
    #[error("malformed varint at byte {0}")]
    Varint(usize),
    #[error("unsupported wire type {wire_type} at byte {at}")]
    WireType { wire_type: u64, at: usize },
    #[error("field {field} is not valid UTF-8")]
    Utf8 { field: u64 },
    #[error("field number {field} of gryning.v1.Event is not known to this version (an event type or field added later); upgrade gryning to read this event")]
    UnknownField { field: u64 },
    #[error("field {field} of gryning.v1.Event has wire type {wire_type}, not the length-delimited type its definition says")]
    FieldType { field: u64, wire_type: u64 },
    #[error("invalid field key at byte {at} (field number 0, or beyond 2^29)")]
    Key { at: usize },
    #[error("field {field} of gryning.v1.Event is not a valid message: {message}")]
    Message { field: u64, message: String },
    #[error("field {field} of the body message has wire type {wire_type}, not the type its definition says")]
    BodyFieldType { field: u64, wire_type: u64 },
}

/// The field numbers of `gryning.v1.Event` this reader knows: event id, date, the subject
/// oneof and the body oneof (`proto/gryning/v1/events.proto`).
pub(crate) const EVENT_FIELDS: [u64; 20] = [
    1, 2, 3, 4, 5, 6, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 31, 32, 40, 41,
];

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// One field as read: its number and either a varint or a length-delimited slice.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// A fixed-size value, with its wire type (1 or 5).
    Other(u64),
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, at: 0 }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.at;
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .bytes
                .get(self.at)
                .ok_or(WireError::Truncated(self.at))?;
            self.at += 1;
            // The tenth byte holds the top bit of 64: anything more overflows, as prost says.
            if shift == 63 && byte > 1 {
                return Err(WireError::Varint(start));
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::Varint(start))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], WireError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(WireError::Truncated(self.at))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    /// The next field, or `None` at the end of the input.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, WireError> {
        if self.at == self.bytes.len() {
            return Ok(None);
        }
        let at = self.at;
        let key = self.varint()?;
        // A key is a u32 and field number 0 does not exist (protobuf's rules, as prost reads).
        if key > u64::from(u32::MAX) || key >> 3 == 0 {
            return Err(WireError::Key { at });
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Other(1)
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| WireError::Truncated(self.at))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Other(5)
            }
            wire_type => return Err(WireError::WireType { wire_type, at }),
        };
        Ok(Some((key >> 3, value)))
    }
}

fn text(field: u64, bytes: &[u8]) -> Result<&str, WireError> {
    std::str::from_utf8(bytes).map_err(|_| WireError::Utf8 { field })
}

/// The fields of a body message: strings and enums (varints) by field number 1–4, and every value of field 1 for the one repeated field (`InvestigationClosed.crime_ids`).
#[derive(Default)]
struct Fields<'a> {
    strings: [&'a str; 5],
    numbers: [i32; 5],
    repeated: Vec<&'a str>,
}

/// What a body message's field 1–4 is: how the reader checks and keeps it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Not a field of this message: skipped, as protobuf skips unknown fields.
    Unknown,
    /// A string (length-delimited, UTF-8).
    Text,
    /// An enum (a varint).
    Number,
    /// A repeated string.
    Repeated,
}

use Slot::{Number as N, Repeated as R, Text as T, Unknown as U};

/// The layout of each body message by its field number in `Event` (`events.proto`).
fn layout(body: u64) -> [Slot; 5] {
    match body {
        10 => [U, T, T, T, U], // CaseOpened
        11 => [U, T, T, N, N], // CrimeReported
        12 => [U, T, T, U, U], // CrimeReclassified
        13 => [U, T, U, U, U], // CaseReclassified
        15 => [U, R, N, U, U], // InvestigationClosed
        16 => [U, T, N, U, U], // ProsecutionDecided
        30 => [U, T, U, U, U], // TreatmentProgrammeStarted
        31 => [U, N, U, U, U], // TreatmentProgrammeEnded
        32 => [U, N, N, N, U], // SupportGranted
        _ => [U; 5],           // the messages without fields
    }
}

/// Reads a body message into `out`, over what an earlier occurrence of the same body left
/// there: protobuf merges a message field that occurs twice (later values win, repeated
/// values append).
fn fields<'a>(bytes: &'a [u8], layout: [Slot; 5], out: &mut Fields<'a>) -> Result<(), WireError> {
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        let Some(n) = usize::try_from(number)
            .ok()
            .filter(|&n| (1..=4).contains(&n))
        else {
            continue;
        };
        match (layout[n], value) {
            (Slot::Unknown, _) => {}
            (Slot::Repeated, Value::Bytes(b)) => out.repeated.push(text(number, b)?),
            (Slot::Text, Value::Bytes(b)) => out.strings[n] = text(number, b)?,
            // Enums are int32 on the wire: the low 32 bits, as prost reads them.
            (Slot::Number, Value::Varint(v)) => out.numbers[n] = v as i32,
            (_, value) => {
                return Err(WireError::BodyFieldType {
                    field: number,
                    wire_type: match value {
                        Value::Varint(_) => 0,
                        Value::Bytes(_) => 2,
                        Value::Other(wire_type) => wire_type,
                    },
                })
            }
        }
    }
    Ok(())
}

/// The view of body `number` (a field number of `Event`'s body oneof) read into `f`.
fn body_view(number: u64, f: Fields<'_>) -> BodyView<'_> {
    match number {
        10 => BodyView::CaseOpened {
            lead_crime_code: f.strings[1],
            police_region: f.strings[2],
            local_police_area: f.strings[3],
        },
        11 => BodyView::CrimeReported {
            crime_id: f.strings[1],
            crime_code: f.strings[2],
            victim_gender: f.numbers[3],
            victim_age_group: f.numbers[4],
        },
        12 => BodyView::CrimeReclassified {
            crime_id: f.strings[1],
            crime_code: f.strings[2],
        },
        13 => BodyView::CaseReclassified {
            lead_crime_code: f.strings[1],
        },
        14 => BodyView::CaseReferredToProsecutor,
        15 => BodyView::InvestigationClosed {
            crime_ids: f.repeated,
            reason: f.numbers[2],
        },
        16 => BodyView::ProsecutionDecided {
            crime_id: f.strings[1],
            decision: f.numbers[2],
        },
        17 => BodyView::ContractCareProposed,
        18 => BodyView::ChildWelfareNotified,
        30 => BodyView::TreatmentProgrammeStarted {
            programme: f.strings[1],
        },
        31 => BodyView::TreatmentProgrammeEnded {
            outcome: f.numbers[1],
        },
        _ => BodyView::SupportGranted {
            kind: f.numbers[1],
            gender: f.numbers[2],
            age_group: f.numbers[3],
        },
    }
}

/// Reads an encoded `gryning.v1.Event` into a view borrowing from `bytes`.
pub(crate) fn read_event(bytes: &[u8]) -> Result<View<'_>, WireError> {
    let mut view = View::default();
    let mut body: Option<(u64, Fields<'_>)> = None;
    let mut published: Option<pb::TablesPublished> = None;
    let mut erased: Option<pb::StreamsErased> = None;
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        // Every field of `Event` is a string or a message: length-delimited.
        let b = match value {
            Value::Bytes(b) => b,
            _ if !EVENT_FIELDS.contains(&number) => {
                return Err(WireError::UnknownField { field: number })
            }
            Value::Varint(_) => {
                return Err(WireError::FieldType {
                    field: number,
                    wire_type: 0,
                })
            }
            Value::Other(wire_type) => {
                return Err(WireError::FieldType {
                    field: number,
                    wire_type,
                })
            }
        };
        match number {
            1 => view.event_id = text(number, b)?,
            2 => view.occurred_on = text(number, b)?,
            3 => view.subject = Some(SubjectView::Case(text(number, b)?)),
            4 => view.subject = Some(SubjectView::Client(text(number, b)?)),
            5 => view.subject = Some(SubjectView::Publication(text(number, b)?)),
            6 => view.subject = Some(SubjectView::Retention(text(number, b)?)),
            // A publication is rare and nested; prost reads it (merging a repeated occurrence,
            // skipping unknown fields).
            40 => {
                body = None;
                erased = None;
                prost::Message::merge(published.get_or_insert_with(Default::default), b).map_err(
                    |e| WireError::Message {
                        field: number,
                        message: e.to_string(),
                    },
                )?;
            }
            // A run of retention, rare and nested like a publication.
            41 => {
                body = None;
                published = None;
                prost::Message::merge(erased.get_or_insert_with(Default::default), b).map_err(
                    |e| WireError::Message {
                        field: number,
                        message: e.to_string(),
                    },
                )?;
            }
            10..=18 | 30..=32 => {
                published = None;
                erased = None;
                // The same body again merges into the first; another body replaces it.
                if body.as_ref().is_none_or(|(current, _)| *current != number) {
                    body = Some((number, Fields::default()));
                }
                let (_, f) = body.as_mut().expect("set above");
                fields(b, layout(number), f)?;
            }
            _ => return Err(WireError::UnknownField { field: number }),
        }
    }
    view.body = match (published, erased) {
        (Some(p), _) => Some(BodyView::TablesPublished(std::borrow::Cow::Owned(p))),
        (None, Some(e)) => Some(BodyView::StreamsErased(std::borrow::Cow::Owned(e))),
        (None, None) => body.map(|(number, f)| body_view(number, f)),
    };
    Ok(view)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::{convert, pb};

    /// prost and the direct reader agree on `bytes`, and neither panics.
    fn agree(bytes: &[u8]) {
        match (pb::Event::decode(bytes), read_event(bytes)) {
            (Ok(message), Ok(view)) => assert_eq!(
                convert::from_pb(message).map_err(|e| e.to_string()),
                convert::from_view(view).map_err(|e| e.to_string()),
                "{bytes:?}"
            ),
            // prost skips every unknown field; the reader refuses one of `Event` itself.
            (Ok(_), Err(WireError::UnknownField { field })) => {
                assert!(!EVENT_FIELDS.contains(&field), "{bytes:?}")
            }
            // Groups are deprecated and never written: refused, where prost skips an unknown one.
            (
                Ok(_),
                Err(WireError::WireType {
                    wire_type: 3 | 4, ..
                }),
            ) => {}
            (Ok(_), Err(e)) => panic!("prost reads {bytes:?} but the direct reader says {e}"),
            (Err(e), Ok(view)) => {
                panic!("prost refuses {bytes:?} ({e}) but the direct reader reads {view:?}")
            }
            (Err(_), Err(_)) => {}
        }
    }

    #[test]
    fn agrees_with_prost_on_truncated_and_noisy_input() {
        let event = pb::Event {
            event_id: "6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d".into(),
            occurred_on: "2020-03-02".into(),
            subject: Some(pb::event::Subject::CaseId(
                "9b2e0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c1d".into(),
            )),
            body: Some(pb::event::Body::InvestigationClosed(
                pb::InvestigationClosed {
                    crime_ids: vec![
                        "a41d0000-0000-4000-8000-000000000001".into(),
                        "a41d0000-0000-4000-8000-000000000002".into(),
                    ],
                    reason: 2,
                },
            )),
        }
        .encode_to_vec();
        assert!(read_event(&event).is_ok());
        for end in 0..=event.len() {
            agree(&event[..end]);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000 {
            let mut bytes = if round % 2 == 0 {
                event.clone()
            } else {
                Vec::new()
            };
            for _ in 0..(state % 8) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                if bytes.is_empty() || state.is_multiple_of(3) {
                    bytes.push(state as u8);
                } else {
                    let at = (state >> 8) as usize % bytes.len();
                    bytes[at] = (state >> 16) as u8;
                }
            }
            agree(&bytes);
        }
    }

    fn sample() -> pb::Event {
        pb::Event {
            event_id: "6f1c2a0e-3b7d-4c55-9a8e-1d2f3a4b5c6d".into(),
            occurred_on: "2020-03-02".into(),
            subject: Some(pb::event::Subject::CaseId(
                "9b2e0c1d-2e3f-4a5b-8c7d-6e5f4a3b2c1d".into(),
            )),
            body: Some(pb::event::Body::CaseOpened(pb::CaseOpened {
                lead_crime_code: "4024".into(),
                police_region: "Polisregion Stockholm".into(),
                local_police_area: "Farsta".into(),
            })),
        }
    }

    /// Field 19 of `Event`, length-delimited, an empty message: a body this version lacks.
    const UNKNOWN_BODY: [u8; 3] = [0x9a, 0x01, 0x00];

    #[test]
    fn an_unknown_event_body_is_an_error_not_a_skipped_field() {
        let mut no_body = sample();
        no_body.body = None;
        let mut alone = no_body.encode_to_vec();
        alone.extend_from_slice(&UNKNOWN_BODY);
        // prost skips it, and would hand on an event without a body.
        assert_eq!(pb::Event::decode(alone.as_slice()).unwrap().body, None);
        assert_eq!(
            read_event(&alone),
            Err(WireError::UnknownField { field: 19 })
        );
        // After a known body, protobuf's "last one wins" would make the unknown body the event;
        // skipping it would read the known one instead.
        let mut after_known = sample().encode_to_vec();
        after_known.extend_from_slice(&UNKNOWN_BODY);
        assert_eq!(
            read_event(&after_known),
            Err(WireError::UnknownField { field: 19 })
        );
        let message = crate::decode_event(&after_known).unwrap_err().to_string();
        assert!(message.contains("field number 19"), "{message}");
        // A field number outside the body oneof is refused the same way (field 7, a string).
        let mut plain = sample().encode_to_vec();
        plain.extend_from_slice(&[0x3a, 0x01, b'x']);
        assert_eq!(
            read_event(&plain),
            Err(WireError::UnknownField { field: 7 })
        );
    }

    #[test]
    fn a_known_event_field_with_another_wire_type_is_an_error() {
        let mut bytes = sample().encode_to_vec();
        // Field 10 (`case_opened`) as a varint.
        bytes.extend_from_slice(&[0x50, 0x01]);
        assert_eq!(
            read_event(&bytes),
            Err(WireError::FieldType {
                field: 10,
                wire_type: 0
            })
        );
        assert!(pb::Event::decode(bytes.as_slice()).is_err());
    }

    #[test]
    fn an_unknown_field_inside_a_body_is_skipped() {
        let mut event = sample();
        let expected = convert::from_pb(event.clone()).unwrap();
        let pb::event::Body::CaseOpened(body) = event.body.take().unwrap() else {
            unreachable!()
        };
        let mut body = body.encode_to_vec();
        // Field 9 of `CaseOpened`, a string.
        body.extend_from_slice(&[0x4a, 0x01, b'x']);
        let mut bytes = event.encode_to_vec();
        bytes.push(0x52); // field 10, length-delimited
        bytes.push(u8::try_from(body.len()).unwrap());
        bytes.extend_from_slice(&body);
        assert_eq!(crate::decode_event(&bytes).unwrap(), expected);
    }

    #[test]
    fn the_known_event_fields_are_those_of_the_proto() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let event = set
            .file
            .iter()
            .filter(|f| f.package() == "gryning.v1")
            .flat_map(|f| &f.message_type)
            .find(|m| m.name() == "Event")
            .expect("gryning.v1.Event in the descriptor set");
        let mut numbers: Vec<u64> = event
            .field
            .iter()
            .map(|f| u64::try_from(f.number()).unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, EVENT_FIELDS);
    }
}
