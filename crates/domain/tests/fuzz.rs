//! Fuzz targets of the domain's validators, on the stable toolchain: property-based fuzzing
//! with proptest, each target first running its seed corpus (`tests/corpus/seeds/`, one JSON
//! string per line) and then `GRYNING_FUZZ_CASES` generated inputs (a default tuned to keep
//! the whole suite's fuzzing within seconds). Properties: no panic, and no input accepted that
//! a naive oracle rejects (`Date::parse` against jiff, identity-number detection against a
//! plain Luhn scan of digit runs, `echo` never showing a detectable number, `check_fields`
//! never letting through control characters or identity numbers).

use gryning_domain::validate::{check_fields, MAX_TEXT_LEN};
use gryning_domain::{
    echo, personnummer, Body, Catalogue, CrimeCode, Date, Event, Subject, Uuid, ECHO_CHARS,
};
use proptest::prelude::*;

#[path = "../../../tests/support/fuzz.rs"]
mod support;

use support::{runner, seed_strings as seeds};

// ---- Date::parse against jiff ----------------------------------------------------------------

/// What `Date::parse` must answer: the fixed `YYYY-MM-DD` shape, and a date jiff says exists.
fn date_oracle(text: &str) -> Option<jiff::civil::Date> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        });
    if !shape {
        return None;
    }
    text.parse::<jiff::civil::Date>().ok()
}

fn check_date(text: &str) {
    let parsed = Date::parse(text);
    assert_eq!(
        parsed.map(Date::to_civil),
        date_oracle(text),
        "Date::parse({text:?})"
    );
    if let Some(date) = parsed {
        assert_eq!(
            date.to_string(),
            text,
            "a parsed date prints as it was written"
        );
    }
}

fn date_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        (0..10_000u32, 0..100u32, 0..100u32).prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}")),
        "[0-9+\\-/: T０-９]{0,12}",
        any::<String>(),
    ]
}

#[test]
fn date_parse_agrees_with_jiff() {
    for seed in seeds("dates") {
        check_date(&seed);
    }
    runner(1000)
        .run(&date_text(), |text| {
            check_date(&text);
            Ok(())
        })
        .unwrap();
}

// ---- personal identity numbers against a naive Luhn scan --------------------------------------

/// The Luhn check digit of nine digits, computed from the right as the algorithm is usually
/// written (an independent form of the detector's).
fn luhn_digit(nine: &[u8]) -> u8 {
    let sum: u32 = nine
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let v = u32::from(d) * if i % 2 == 0 { 2 } else { 1 };
            if v > 9 {
                v - 9
            } else {
                v
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// Whether 10 or 12 ASCII-valued digits are a personal identity or coordination number.
fn naive_valid(digits: &[u8]) -> bool {
    let ten = match digits.len() {
        10 => digits,
        12 => &digits[2..],
        _ => return false,
    };
    let month = ten[2] * 10 + ten[3];
    let day = ten[4] * 10 + ten[5];
    let day = if day > 60 { day - 60 } else { day };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if digits.len() == 12 {
        let year = i16::from(digits[0]) * 1000
            + i16::from(digits[1]) * 100
            + i16::from(ten[0]) * 10
            + i16::from(ten[1]);
        if !(1800..=2099).contains(&year)
            || jiff::civil::Date::new(year, month as i8, day as i8).is_err()
        {
            return false;
        }
    }
    luhn_digit(&ten[..9]) == ten[9]
}

/// The digit value of a character in the scripts the detector promises (ASCII, full-width,
/// Arabic-Indic, extended Arabic-Indic).
fn digit_value(c: char) -> Option<u8> {
    for zero in ['0', '\u{FF10}', '\u{0660}', '\u{06F0}'] {
        let offset = (c as u32).wrapping_sub(zero as u32);
        if offset < 10 {
            return Some(offset as u8);
        }
    }
    None
}

/// Every maximal run of ASCII digits that is a valid number on its own.
fn naive_runs(text: &str) -> Vec<&str> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| naive_valid(&run.bytes().map(|b| b - b'0').collect::<Vec<_>>()))
        .collect()
}

fn check_detection(text: &str) {
    let found = personnummer::find(text);
    if let Some(run) = naive_runs(text).first() {
        assert!(
            found.is_some(),
            "personnummer::find misses {run:?} in {text:?}"
        );
    }
    if let Some(hit) = found {
        assert!(text.contains(hit));
        let digits: Vec<u8> = hit.chars().filter_map(digit_value).collect();
        assert!(
            naive_valid(&digits),
            "personnummer::find({text:?}) = {hit:?}, whose digits are not a valid number"
        );
        let first = hit.chars().next().unwrap();
        let last = hit.chars().last().unwrap();
        assert!(
            digit_value(first).is_some() && digit_value(last).is_some(),
            "{hit:?} in {text:?} starts and ends with a digit"
        );
    }
}

/// A valid number written in one of the promised forms.
fn written_number() -> impl Strategy<Value = String> {
    (
        1900..2100i32,
        1..=12u32,
        1..=28u32,
        any::<bool>(),
        0..1000u32,
        any::<bool>(),
        prop::sample::select(vec![
            "", "-", "+", "\u{2013}", "\u{2212}", " ", "\u{a0}", ".", "/", " - ",
        ]),
        prop::sample::select(vec!['0', '\u{FF10}', '\u{0660}']),
    )
        .prop_map(
            |(year, month, day, coordination, serial, century, sep, zero)| {
                let day = if coordination { day + 60 } else { day };
                let mut digits: Vec<u8> = format!("{:02}{month:02}{day:02}{serial:03}", year % 100)
                    .bytes()
                    .map(|b| b - b'0')
                    .collect();
                digits.push(luhn_digit(&digits));
                let head = if century {
                    format!("{:02}", year / 100)
                } else {
                    String::new()
                };
                let script = |d: &[u8]| -> String {
                    d.iter()
                        .map(|&d| char::from_u32(zero as u32 + u32::from(d)).unwrap())
                        .collect()
                };
                let head_digits: Vec<u8> = head.bytes().map(|b| b - b'0').collect();
                format!(
                    "{}{}{sep}{}",
                    script(&head_digits),
                    script(&digits[..6]),
                    script(&digits[6..])
                )
            },
        )
}

/// Text with digits, separators and letters in every script the detector reads.
fn noisy_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[0-9 +\\-./a-z]{0,40}",
        "[0-9]{8,14}",
        "[0-9\u{FF10}-\u{FF19} \u{2013}\u{a0}-]{0,30}",
        any::<String>(),
    ]
}

#[test]
fn personnummer_detection_agrees_with_a_naive_luhn_scan() {
    for seed in seeds("identity_numbers") {
        check_detection(&seed);
    }
    for seed in seeds("identity_numbers_found") {
        assert!(
            personnummer::find(&seed).is_some(),
            "seed {seed:?} must be detected"
        );
        check_detection(&seed);
    }
    runner(1000)
        .run(&noisy_text(), |text| {
            check_detection(&text);
            Ok(())
        })
        .unwrap();
    let embedded = ("[a-zåäö ,:]{0,20}", written_number(), "[a-zåäö ,:]{0,20}");
    runner(1000)
        .run(&embedded, |(before, number, after)| {
            let text = format!("{before}{number}{after}");
            assert_eq!(
                personnummer::find(&text),
                Some(number.as_str()),
                "in {text:?}"
            );
            check_detection(&text);
            Ok(())
        })
        .unwrap();
}

// ---- echo -------------------------------------------------------------------------------------

fn check_echo(value: &str) {
    let shown = echo(value);
    assert!(
        shown.chars().count() <= ECHO_CHARS + 1,
        "echo({value:?}) = {shown:?} is too long"
    );
    assert_eq!(
        personnummer::find(&shown),
        None,
        "echo({value:?}) = {shown:?} shows an identity number"
    );
    let window: String = value.chars().take(64).collect();
    if personnummer::find(&window).is_some() {
        assert!(
            !shown.chars().any(|c| c.is_numeric()),
            "echo({value:?}) = {shown:?} shows digits beside an identity number"
        );
    } else if !shown.chars().any(|c| c == '#') {
        let prefix = shown.strip_suffix('…').unwrap_or(&shown);
        assert!(value.starts_with(prefix), "echo({value:?}) = {shown:?}");
    }
}

#[test]
fn echo_is_short_and_never_shows_an_identity_number() {
    for seed in seeds("echo") {
        check_echo(&seed);
    }
    let text = prop_oneof![
        noisy_text(),
        ("[a-z ]{0,60}", written_number(), "[0-9a-z ]{0,60}")
            .prop_map(|(a, n, b)| format!("{a}{n}{b}")),
    ];
    runner(1000)
        .run(&text, |value| {
            check_echo(&value);
            Ok(())
        })
        .unwrap();
}

// ---- validate::check_fields -------------------------------------------------------------------

/// The characters free text may not hold, written out independently of the validator.
fn naive_forbidden(c: char) -> bool {
    let n = c as u32;
    n < 0x20
        || (0x7f..=0x9f).contains(&n)
        || (0x200b..=0x200f).contains(&n)
        || (0x202a..=0x202e).contains(&n)
        || (0x2060..=0x2069).contains(&n)
        || n == 0xfeff
}

fn free_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-zåäöÅÄÖ \\-]{0,30}",
        noisy_text(),
        ("[a-z ]{0,10}", written_number(), "[a-z ]{0,10}")
            .prop_map(|(a, n, b)| format!("{a}{n}{b}")),
        "[\u{0}-\u{3f}\u{7f}-\u{a0}\u{200b}-\u{200f}\u{202a}-\u{202e}\u{feff}a-z]{0,20}",
        (1..400usize).prop_map(|n| "x".repeat(n)),
    ]
}

fn check_event(event: &Event, today: Date) {
    let catalogue = Catalogue::default_catalogue();
    let result = check_fields(event, &catalogue, today);
    let texts: Vec<&str> = match &event.body {
        Body::CaseOpened {
            police_region,
            local_police_area,
            ..
        } => vec![police_region, local_police_area],
        Body::TreatmentProgrammeStarted { programme } => vec![programme],
        _ => vec![],
    };
    match result {
        Ok(()) => {
            assert!(event.occurred_on <= today, "{event:?}");
            for text in texts {
                assert!(text.len() <= MAX_TEXT_LEN, "accepted {} bytes", text.len());
                assert!(
                    !text.chars().any(naive_forbidden),
                    "accepted a control character in {text:?}"
                );
                assert!(
                    naive_runs(text).is_empty() && personnummer::find(text).is_none(),
                    "accepted an identity number in {text:?}"
                );
            }
        }
        Err(err) => {
            assert!(!err.field().is_empty(), "{err}");
            assert!(
                err.to_string().len() < 400,
                "{} bytes: {err}",
                err.to_string().len()
            );
        }
    }
}

fn event() -> impl Strategy<Value = (Event, Date)> {
    let today = Date::parse("2020-12-02").unwrap();
    let date = (-400..10i32).prop_map(move |d| today.add_days(d));
    let code = prop::sample::select(vec![4024u16, 9365, 418, 1, 9999]);
    let body = prop_oneof![
        (code.clone(), free_text(), free_text()).prop_map(|(c, a, b)| Body::CaseOpened {
            lead_crime_code: CrimeCode::from_number(c).unwrap(),
            police_region: a,
            local_police_area: b,
        }),
        free_text().prop_map(|programme| Body::TreatmentProgrammeStarted { programme }),
        (prop::collection::vec(0..4u128, 0..6)).prop_map(|ids| Body::InvestigationClosed {
            crime_ids: ids.into_iter().map(Uuid::from_u128).collect(),
            reason: gryning_domain::ClosureReason::Other,
        }),
        code.prop_map(|c| Body::CaseReclassified {
            lead_crime_code: CrimeCode::from_number(c).unwrap(),
        }),
    ];
    (date, any::<bool>(), body).prop_map(move |(occurred_on, client, body)| {
        let id = Uuid::from_u128(7);
        (
            Event {
                event_id: Uuid::from_u128(1),
                occurred_on,
                subject: if client {
                    Subject::Client(id)
                } else {
                    Subject::Case(id)
                },
                body,
            },
            today,
        )
    })
}

#[test]
fn check_fields_never_accepts_what_the_naive_rules_refuse() {
    let today = Date::parse("2020-12-02").unwrap();
    for seed in seeds("free_text") {
        for body in [
            Body::CaseOpened {
                lead_crime_code: CrimeCode::parse("4024").unwrap(),
                police_region: seed.clone(),
                local_police_area: String::new(),
            },
            Body::TreatmentProgrammeStarted {
                programme: seed.clone(),
            },
        ] {
            let subject = if body.is_care() {
                Subject::Client(Uuid::from_u128(7))
            } else {
                Subject::Case(Uuid::from_u128(7))
            };
            let event = Event {
                event_id: Uuid::from_u128(1),
                occurred_on: today,
                subject,
                body,
            };
            check_event(&event, today);
        }
    }
    runner(1000)
        .run(&event(), |(event, today)| {
            check_event(&event, today);
            Ok(())
        })
        .unwrap();
}
