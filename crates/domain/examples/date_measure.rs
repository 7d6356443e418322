//! The per-event date work, jiff against hand-written calendar code, in the same run:
//!
//!     cargo run --release -p gryning-domain --example date_measure [DATES]
//!
//! Parsing `occurred_on` runs for every event on import and in the wire reader on every replay;
//! the projections turn a day number into its quarter several times per event. Over DATES
//! dates (default 1,000,000, spread over 2019–2021 like the data) it times, best of five passes:
//!
//! - parse: `Date::parse` (the fixed form read by hand, the calendar checked and the day number
//!   computed by jiff) against jiff's ISO 8601 parser and `strptime` (after the same form check,
//!   so each accepts exactly `YYYY-MM-DD`), and against the former hand-written parser
//!   (Howard Hinnant's days-from-civil, kept here as the baseline);
//! - bucket: day number → year × 4 + quarter with `Date` (jiff) against the hand-written
//!   civil-from-days that `gryning-projections` keeps for it (`period::quarter_of_days`, the
//!   same algorithm as the copy here).

use std::hint::black_box;
use std::time::Instant;

use gryning_domain::Date;
use jiff::civil;
use jiff::fmt::temporal::DateTimeParser;

fn main() {
    let count: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("DATES must be a number"))
        .unwrap_or(1_000_000);
    let start = Date::parse("2019-01-01").unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let days: Vec<i32> = (0..count)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            start.add_days((seed % 1096) as i32).days()
        })
        .collect();
    let texts: Vec<String> = days
        .iter()
        .map(|&d| Date::from_days(d).unwrap().to_string())
        .collect();

    // Every variant must agree before any is timed.
    for (text, &day) in texts.iter().zip(&days) {
        assert_eq!(Date::parse(text).map(Date::days), Some(day));
        assert_eq!(jiff_temporal(text), Some(day));
        assert_eq!(jiff_strptime(text), Some(day));
        assert_eq!(hand::parse(text), Some(day));
        assert_eq!(hand::quarter_of_days(day), jiff_quarter_of_days(day));
    }

    println!("{count} dates, ns per date (best of 5 passes)");
    let parse = [
        (
            "parse: Date::parse (form by hand, calendar by jiff)",
            time(&texts, |t| Date::parse(t).map(Date::days)),
        ),
        (
            "parse: jiff DateTimeParser::parse_date",
            time(&texts, |t| jiff_temporal(t)),
        ),
        (
            "parse: jiff civil::Date::strptime",
            time(&texts, |t| jiff_strptime(t)),
        ),
        (
            "parse: hand-written (baseline)",
            time(&texts, |t| hand::parse(t)),
        ),
    ];
    let bucket = [
        (
            "bucket: Date::from_days(d).ymd() (jiff)",
            time(&days, |&d| Some(jiff_quarter_of_days(d))),
        ),
        (
            "bucket: hand-written civil-from-days (baseline)",
            time(&days, |&d| Some(hand::quarter_of_days(d))),
        ),
    ];
    for (name, ns) in parse.iter().chain(&bucket) {
        println!("{ns:>8.1}  {name}");
    }
}

/// Best of five passes, in nanoseconds per item.
fn time<T>(items: &[T], f: impl Fn(&T) -> Option<i32>) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            let mut sum = 0i64;
            for item in items {
                sum += i64::from(f(black_box(item)).unwrap_or(0));
            }
            black_box(sum);
            started.elapsed().as_nanos() as f64 / items.len() as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn exact_form(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

static PARSER: DateTimeParser = DateTimeParser::new();

fn jiff_temporal(text: &str) -> Option<i32> {
    exact_form(text)
        .then(|| PARSER.parse_date(text).ok())
        .flatten()
        .map(|d| Date::from_civil(d).days())
}

fn jiff_strptime(text: &str) -> Option<i32> {
    exact_form(text)
        .then(|| civil::Date::strptime("%Y-%m-%d", text).ok())
        .flatten()
        .map(|d| Date::from_civil(d).days())
}

fn jiff_quarter_of_days(days: i32) -> i32 {
    let (year, month, _) = Date::from_days(days).unwrap().ymd();
    year * 4 + ((month - 1) / 3) as i32
}

/// The hand-written calendar code `Date` used before jiff, after Howard Hinnant's
/// public-domain date algorithms (`quarter_of_days` is what the projections still use).
mod hand {
    pub fn parse(text: &str) -> Option<i32> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let num = |range: std::ops::Range<usize>| -> Option<u32> {
            let mut n = 0u32;
            for &c in &b[range] {
                if !c.is_ascii_digit() {
                    return None;
                }
                n = n * 10 + u32::from(c - b'0');
            }
            Some(n)
        };
        let (year, month, day) = (num(0..4)? as i32, num(5..7)?, num(8..10)?);
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(days_from_civil(year, month, day))
    }

    pub fn quarter_of_days(days: i32) -> i32 {
        let (year, month, _) = civil_from_days(days);
        year * 4 + ((month - 1) / 3) as i32
    }

    fn days_in_month(year: i32, month: u32) -> u32 {
        match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            _ => 28,
        }
    }

    fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
        let y = if month <= 2 { year - 1 } else { year };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = month as i32;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i32 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    fn civil_from_days(days: i32) -> (i32, u32, u32) {
        let z = days + 719_468;
        let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }
}
