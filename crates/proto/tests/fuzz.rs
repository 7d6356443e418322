//! Fuzz targets of the decoders of untrusted bytes in `gryning-proto`, on the stable toolchain:
//! property-based fuzzing with proptest. Each target runs its seed corpus
//! (`tests/corpus/seeds/`) and then `GRYNING_FUZZ_CASES` generated inputs. Properties: no
//! panic; the stored-event reader (`decode_event`) accepts nothing prost refuses and reads
//! what it accepts as prost and `from_pb` do; `from_pb` accepts only what naive checks of each
//! field's form accept; every valid event round-trips through protobuf, the wire reader and
//! NDJSON; NDJSON errors are short and never show an identity number.

use gryning_domain::personnummer;
use gryning_proto::{
    decode_event, encode_event, from_pb, ndjson, pb, to_pb, DecodeError, WireError,
};
use proptest::prelude::*;
use prost::Message;

#[path = "../../../tests/support/fuzz.rs"]
mod support;

use support::{runner, seed_bytes, seed_strings};

// ---- strategies -------------------------------------------------------------------------------

fn uuid_text() -> impl Strategy<Value = String> {
    any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string())
}

/// Strings for any field: valid-looking values, near misses and noise.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => uuid_text(),
        1 => "[0-9a-fA-F\\-{}]{0,40}",
        1 => "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        1 => "[0-9]{0,6}",
        1 => "[0-9 +\\-./a-z\u{FF10}-\u{FF19}]{0,20}",
        1 => any::<String>(),
    ]
}

fn enum_number() -> impl Strategy<Value = i32> {
    prop_oneof![3 => 0..5i32, 1 => any::<i32>()]
}

fn body() -> impl Strategy<Value = pb::event::Body> {
    use pb::event::Body as B;
    prop_oneof![
        (any_text(), any_text(), any_text()).prop_map(|(a, b, c)| B::CaseOpened(pb::CaseOpened {
            lead_crime_code: a,
            police_region: b,
            local_police_area: c
        })),
        (any_text(), any_text(), enum_number(), enum_number()).prop_map(|(a, b, c, d)| {
            B::CrimeReported(pb::CrimeReported {
                crime_id: a,
                crime_code: b,
                victim_gender: c,
                victim_age_group: d,
            })
        }),
        (any_text(), any_text()).prop_map(|(a, b)| B::CrimeReclassified(pb::CrimeReclassified {
            crime_id: a,
            crime_code: b
        })),
        any_text().prop_map(|a| B::CaseReclassified(pb::CaseReclassified { lead_crime_code: a })),
        Just(B::CaseReferredToProsecutor(pb::CaseReferredToProsecutor {})),
        (prop::collection::vec(any_text(), 0..4), enum_number()).prop_map(|(ids, r)| {
            B::InvestigationClosed(pb::InvestigationClosed {
                crime_ids: ids,
                reason: r,
            })
        }),
        (any_text(), enum_number()).prop_map(|(a, d)| B::ProsecutionDecided(
            pb::ProsecutionDecided {
                crime_id: a,
                decision: d
            }
        )),
        Just(B::ContractCareProposed(pb::ContractCareProposed {})),
        Just(B::ChildWelfareNotified(pb::ChildWelfareNotified {})),
        any_text().prop_map(
            |p| B::TreatmentProgrammeStarted(pb::TreatmentProgrammeStarted { programme: p })
        ),
        enum_number()
            .prop_map(|o| B::TreatmentProgrammeEnded(pb::TreatmentProgrammeEnded { outcome: o })),
        (enum_number(), enum_number(), enum_number()).prop_map(|(k, g, a)| B::SupportGranted(
            pb::SupportGranted {
                kind: k,
                gender: g,
                age_group: a
            }
        )),
    ]
}

fn event() -> impl Strategy<Value = pb::Event> {
    (
        any_text(),
        prop_oneof![3 => "20[0-2][0-9]-0[1-9]-[0-2][1-9]", 1 => any_text()],
        prop::option::of((any::<bool>(), any_text())),
        prop::option::of(body()),
    )
        .prop_map(|(event_id, occurred_on, subject, body)| pb::Event {
            event_id,
            occurred_on,
            subject: subject.map(|(case, id)| {
                if case {
                    pb::event::Subject::CaseId(id)
                } else {
                    pb::event::Subject::ClientId(id)
                }
            }),
            body,
        })
}

/// Protobuf-shaped noise: a sequence of fields with any number, wire type and content,
/// including nested body messages made of fields too.
fn wire_bytes() -> impl Strategy<Value = Vec<u8>> {
    let field_number = prop_oneof![
        4 => prop::sample::select(vec![1u64, 2, 3, 4, 10, 11, 12, 13, 14, 15, 16, 17, 18, 30, 31, 32]),
        1 => 0..40u64,
        1 => any::<u32>().prop_map(u64::from),
    ];
    let inner = prop::collection::vec(
        (0..6u64, 0..6u64, prop::collection::vec(any::<u8>(), 0..12)),
        0..6,
    )
    .prop_map(|fields| {
        let mut out = Vec::new();
        for (number, wire_type, payload) in fields {
            put_field(&mut out, number, wire_type, &payload);
        }
        out
    });
    let payload = prop_oneof![
        inner,
        prop::collection::vec(any::<u8>(), 0..16),
        uuid_text().prop_map(String::into_bytes),
    ];
    prop::collection::vec((field_number, 0..8u64, payload), 0..8).prop_map(|fields| {
        let mut out = Vec::new();
        for (number, wire_type, payload) in fields {
            put_field(&mut out, number, wire_type, &payload);
        }
        out
    })
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// One field: its key, then a value of its wire type made from `payload`.
fn put_field(out: &mut Vec<u8>, number: u64, wire_type: u64, payload: &[u8]) {
    put_varint(out, (number << 3) | (wire_type & 7));
    match wire_type & 7 {
        0 => put_varint(
            out,
            payload
                .iter()
                .fold(0u64, |n, &b| n.wrapping_mul(251).wrapping_add(u64::from(b))),
        ),
        1 => out.extend(payload.iter().copied().chain([0; 8]).take(8)),
        5 => out.extend(payload.iter().copied().chain([0; 4]).take(4)),
        2 => {
            put_varint(out, payload.len() as u64);
            out.extend_from_slice(payload);
        }
        _ => out.extend_from_slice(payload),
    }
}

// ---- the stored-event reader against prost ----------------------------------------------------

fn check_wire(bytes: &[u8]) {
    let prost = pb::Event::decode(bytes);
    match (prost, decode_event(bytes)) {
        (Ok(message), Ok(event)) => assert_eq!(
            from_pb(message).as_ref(),
            Ok(&event),
            "{bytes:02x?}: prost and from_pb read another event"
        ),
        (Ok(message), Err(DecodeError::Invalid(e))) => assert_eq!(
            from_pb(message).map_err(|e| e.to_string()),
            Err(e.to_string()),
            "{bytes:02x?}"
        ),
        // A field of `Event` this version does not know is refused (docs/contract.md), and
        // groups, deprecated and never written, are refused where prost would skip them.
        (Ok(_), Err(DecodeError::Protobuf(WireError::UnknownField { .. })))
        | (
            Ok(_),
            Err(DecodeError::Protobuf(WireError::WireType {
                wire_type: 3 | 4, ..
            })),
        ) => {}
        (Ok(message), Err(e)) => {
            panic!("{bytes:02x?}: prost reads {message:?} but the stored-event reader says {e}")
        }
        (Err(e), Ok(event)) => {
            panic!(
                "{bytes:02x?}: prost refuses it ({e}) but the stored-event reader reads {event:?}"
            )
        }
        (Err(_), Err(_)) => {}
    }
}

#[test]
fn the_stored_event_reader_accepts_nothing_prost_refuses() {
    for seed in seed_bytes("wire") {
        check_wire(&seed);
    }
    runner(4000)
        .run(&wire_bytes(), |bytes| {
            check_wire(&bytes);
            Ok(())
        })
        .unwrap();
    runner(2000)
        .run(&prop::collection::vec(any::<u8>(), 0..64), |bytes| {
            check_wire(&bytes);
            Ok(())
        })
        .unwrap();
    // Valid encodings, cut and with bytes changed.
    let mutated = (
        event(),
        any::<usize>(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    );
    runner(3000)
        .run(&mutated, |(event, cut, edits)| {
            let mut bytes = event.encode_to_vec();
            check_wire(&bytes);
            for (at, b) in edits {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = b;
                }
            }
            check_wire(&bytes);
            bytes.truncate(cut % (bytes.len() + 1));
            check_wire(&bytes);
            Ok(())
        })
        .unwrap();
}

// ---- from_pb against naive checks of each field ------------------------------------------------

fn naive_uuid(text: &str) -> bool {
    let t = text.strip_prefix("urn:uuid:").unwrap_or(text);
    let t = t
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(t);
    let hex: String = if t.len() == 36 {
        if [8, 13, 18, 23].iter().any(|&i| t.as_bytes()[i] != b'-') {
            return false;
        }
        t.chars().filter(|&c| c != '-').collect()
    } else {
        t.to_string()
    };
    hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit())
}

fn naive_code(text: &str) -> bool {
    text.len() == 4 && text.bytes().all(|b| b.is_ascii_digit())
}

fn naive_date(text: &str) -> bool {
    text.len() == 10
        && text.as_bytes()[4] == b'-'
        && text.as_bytes()[7] == b'-'
        && text.parse::<jiff::civil::Date>().is_ok()
}

fn check_from_pb(message: pb::Event) {
    use pb::event::Body as B;
    let Ok(event) = from_pb(message.clone()) else {
        return;
    };
    assert!(naive_uuid(&message.event_id), "{message:?}");
    assert!(naive_date(&message.occurred_on), "{message:?}");
    match message.subject.as_ref().expect("accepted with a subject") {
        pb::event::Subject::CaseId(id) | pb::event::Subject::ClientId(id) => {
            assert!(naive_uuid(id), "{message:?}")
        }
        pb::event::Subject::PublicationQuarter(q) => {
            // `YYYY-QN`, N from 1 to 4.
            let b = q.as_bytes();
            assert!(
                b.len() == 7
                    && b[..4].iter().all(u8::is_ascii_digit)
                    && &b[4..6] == b"-Q"
                    && (b'1'..=b'4').contains(&b[6]),
                "{message:?}"
            )
        }
        pb::event::Subject::RetentionStream(r) => assert_eq!(r, "retention", "{message:?}"),
    }
    let enum_ok = |n: i32, max: i32| (1..=max).contains(&n);
    let ok = match message.body.as_ref().expect("accepted with a body") {
        B::CaseOpened(b) => naive_code(&b.lead_crime_code),
        B::CrimeReported(b) => {
            naive_uuid(&b.crime_id)
                && naive_code(&b.crime_code)
                && enum_ok(b.victim_gender, 3)
                && enum_ok(b.victim_age_group, 3)
        }
        B::CrimeReclassified(b) => naive_uuid(&b.crime_id) && naive_code(&b.crime_code),
        B::CaseReclassified(b) => naive_code(&b.lead_crime_code),
        B::InvestigationClosed(b) => {
            b.crime_ids.iter().all(|i| naive_uuid(i)) && enum_ok(b.reason, 4)
        }
        B::ProsecutionDecided(b) => naive_uuid(&b.crime_id) && enum_ok(b.decision, 4),
        B::TreatmentProgrammeEnded(b) => enum_ok(b.outcome, 2),
        B::SupportGranted(b) => {
            enum_ok(b.kind, 3) && enum_ok(b.gender, 3) && enum_ok(b.age_group, 3)
        }
        _ => true,
    };
    assert!(ok, "from_pb accepted {message:?}");
    // A converted event round-trips: protobuf, the stored encoding and NDJSON.
    let back = to_pb(&event);
    assert_eq!(from_pb(back.clone()).as_ref(), Ok(&event));
    assert_eq!(decode_event(&encode_event(&event)).unwrap(), event);
    let line = ndjson::to_line(&back);
    assert_eq!(
        ndjson::parse_line(line.as_bytes()).as_ref(),
        Ok(&back),
        "{line}"
    );
}

#[test]
fn from_pb_accepts_only_well_formed_fields_and_round_trips() {
    runner(6000)
        .run(&event(), |message| {
            check_from_pb(message);
            Ok(())
        })
        .unwrap();
}

// ---- the NDJSON line parser --------------------------------------------------------------------

fn check_line(line: &[u8]) {
    match ndjson::parse_line(line) {
        Ok(message) => {
            let again = ndjson::to_line(&message);
            assert_eq!(
                ndjson::parse_line(again.as_bytes()).as_ref(),
                Ok(&message),
                "{again}"
            );
        }
        Err(e) => {
            let text = e.to_string();
            assert!(text.len() < 1_500, "{} bytes: {}", text.len(), &text[..300]);
            assert_eq!(
                personnummer::find(&text),
                None,
                "the error of {:?} shows an identity number: {text}",
                String::from_utf8_lossy(line)
            );
        }
    }
}

/// `event` with every enum number brought into its enum's range: the JSON mapping writes enums
/// by name, so only those serialize (`ndjson::to_line` takes events from `to_pb` or
/// `parse_line`, which never hold another).
fn in_enum_range(mut event: pb::Event) -> pb::Event {
    use pb::event::Body as B;
    let fit = |n: &mut i32, max: i32| *n = n.rem_euclid(max + 1);
    match event.body.as_mut() {
        Some(B::CrimeReported(b)) => {
            fit(&mut b.victim_gender, 3);
            fit(&mut b.victim_age_group, 3);
        }
        Some(B::InvestigationClosed(b)) => fit(&mut b.reason, 4),
        Some(B::ProsecutionDecided(b)) => fit(&mut b.decision, 4),
        Some(B::TreatmentProgrammeEnded(b)) => fit(&mut b.outcome, 2),
        Some(B::SupportGranted(b)) => {
            fit(&mut b.kind, 3);
            fit(&mut b.gender, 3);
            fit(&mut b.age_group, 3);
        }
        _ => {}
    }
    event
}

#[test]
fn ndjson_lines_parse_without_panics_and_errors_stay_short_and_masked() {
    for seed in seed_strings("ndjson") {
        check_line(seed.as_bytes());
    }
    runner(3000)
        .run(&prop::collection::vec(any::<u8>(), 0..80), |bytes| {
            check_line(&bytes);
            Ok(())
        })
        .unwrap();
    // Valid lines with a value replaced by a hostile one, and with bytes changed.
    let hostile = prop_oneof![
        Just("19811218-9876".to_string()),
        Just(
            "\u{ff18}\u{ff11}\u{ff11}\u{ff12}\u{ff11}\u{ff18}-\u{ff19}\u{ff18}\u{ff17}\u{ff16}"
                .to_string()
        ),
        (1..3000usize).prop_map(|n| "y".repeat(n)),
        any::<String>(),
    ];
    let mutated = (
        event(),
        hostile,
        any::<usize>(),
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..3),
    );
    runner(3000)
        .run(&mutated, |(event, value, which, edits)| {
            let line = ndjson::to_line(&in_enum_range(event));
            check_line(line.as_bytes());
            // The hostile value as a key and as the value of the which-th string. A spot is
            // found by its text, `":"`, which a string ending in an escaped quote and a colon
            // also shows (`\":"`): there no string follows, and the line is checked as it is.
            let quoted = serde_json::to_string(&value).unwrap();
            let spots: Vec<usize> = line.match_indices("\":\"").map(|(i, _)| i + 2).collect();
            let mut text = line.clone();
            if !spots.is_empty() {
                let at = spots[which % spots.len()];
                if let Some(close) = text[at + 1..].find('"') {
                    text.replace_range(at..at + 1 + close + 1, &quoted);
                }
            }
            check_line(text.as_bytes());
            check_line(format!("{{{quoted}:1}}").as_bytes());
            let mut bytes = line.into_bytes();
            for (at, b) in edits {
                let at = at % bytes.len();
                bytes[at] = b;
            }
            check_line(&bytes);
            Ok(())
        })
        .unwrap();
}
