//! A direct reader of the protobuf wire format of `gryning.v1.Event`, for stored events. It
//! borrows strings from the input instead of allocating them, which makes a replay's decoding
//! several times cheaper than a prost decode into owned messages. It follows protobuf's rules
//! for well-formed input (unknown fields skipped, last value of a field wins); a test checks
//! that it agrees with prost on every event the generator produces and never panics on noise.

use crate::convert::{BodyView, SubjectView, View};

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
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

/// One field as read: its number and either a varint or a length-delimited slice.
enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Other,
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
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                self.take(8)?;
                Value::Other
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| WireError::Truncated(self.at))?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Other
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

fn fields(bytes: &[u8], repeated_first: bool) -> Result<Fields<'_>, WireError> {
    let mut out = Fields::default();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        let slot = usize::try_from(number)
            .ok()
            .filter(|&n| (1..=4).contains(&n));
        match (slot, value) {
            (Some(1), Value::Bytes(b)) if repeated_first => out.repeated.push(text(number, b)?),
            (Some(n), Value::Bytes(b)) => out.strings[n] = text(number, b)?,
            // Enums are int32 on the wire: the low 32 bits, as prost reads them.
            (Some(n), Value::Varint(v)) => out.numbers[n] = v as i32,
            _ => {}
        }
    }
    Ok(out)
}

/// Reads an encoded `gryning.v1.Event` into a view borrowing from `bytes`.
pub(crate) fn read_event(bytes: &[u8]) -> Result<View<'_>, WireError> {
    let mut view = View::default();
    let mut reader = Reader::new(bytes);
    while let Some((number, value)) = reader.field()? {
        let Value::Bytes(b) = value else { continue };
        let body = |repeated| fields(b, repeated);
        match number {
            1 => view.event_id = text(number, b)?,
            2 => view.occurred_on = text(number, b)?,
            3 => view.subject = Some(SubjectView::Case(text(number, b)?)),
            4 => view.subject = Some(SubjectView::Client(text(number, b)?)),
            10 => {
                let f = body(false)?;
                view.body = Some(BodyView::CaseOpened {
                    lead_crime_code: f.strings[1],
                    police_region: f.strings[2],
                    local_police_area: f.strings[3],
                })
            }
            11 => {
                let f = body(false)?;
                view.body = Some(BodyView::CrimeReported {
                    crime_id: f.strings[1],
                    crime_code: f.strings[2],
                    victim_gender: f.numbers[3],
                    victim_age_group: f.numbers[4],
                })
            }
            12 => {
                let f = body(false)?;
                view.body = Some(BodyView::CrimeReclassified {
                    crime_id: f.strings[1],
                    crime_code: f.strings[2],
                })
            }
            13 => {
                view.body = Some(BodyView::CaseReclassified {
                    lead_crime_code: body(false)?.strings[1],
                })
            }
            14 => view.body = Some(BodyView::CaseReferredToProsecutor),
            15 => {
                let f = body(true)?;
                view.body = Some(BodyView::InvestigationClosed {
                    crime_ids: f.repeated,
                    reason: f.numbers[2],
                })
            }
            16 => {
                let f = body(false)?;
                view.body = Some(BodyView::ProsecutionDecided {
                    crime_id: f.strings[1],
                    decision: f.numbers[2],
                })
            }
            17 => view.body = Some(BodyView::ContractCareProposed),
            18 => view.body = Some(BodyView::ChildWelfareNotified),
            30 => {
                view.body = Some(BodyView::TreatmentProgrammeStarted {
                    programme: body(false)?.strings[1],
                })
            }
            31 => {
                view.body = Some(BodyView::TreatmentProgrammeEnded {
                    outcome: body(false)?.numbers[1],
                })
            }
            32 => {
                let f = body(false)?;
                view.body = Some(BodyView::SupportGranted {
                    kind: f.numbers[1],
                    gender: f.numbers[2],
                    age_group: f.numbers[3],
                })
            }
            _ => {}
        }
    }
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
            (Ok(_), Err(e)) => panic!("prost reads {bytes:?} but the direct reader says {e}"),
            // prost refuses some input the reader tolerates (e.g. field number zero); such bytes
            // are never stored, and the field rules still judge the view.
            (Err(_), _) => {}
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
}
