//! Calendar dates, and the Europe/Stockholm calendar that says which day "today" is.
//!
//! A `Date` is a day number (days since 1970-01-01, 4 bytes): the projections store it, order it
//! and subtract two of them for lead times without a calendar. Everything calendrical (which
//! dates exist, year, month, day, adding days, formatting) is jiff's. The time zone comes from
//! the IANA database compiled into the binary (jiff's bundled copy), never from the system's
//! tzdata, so a machine without tzdata, or with another version, keeps the same calendar.
//!
//! `parse` reads the fixed `YYYY-MM-DD` form itself and hands the three numbers to jiff, which
//! decides whether the date exists: it runs for every event on import and on every replay, and
//! jiff's general ISO 8601 parser took 2.0–2.4× as long (BENCHMARKS.md, "Dates"). For the same
//! reason the projections bucket day numbers by quarter with their own civil-from-days
//! (`gryning-projections`, `period::quarter_of_days`).

use std::fmt;
use std::sync::LazyLock;

use jiff::civil;
use jiff::tz::{TimeZone, TimeZoneDatabase};
use jiff::{SignedDuration, Timestamp};

/// The time zone whose calendar dates "today" and the services' stamps: where the agencies work.
pub const TIME_ZONE: &str = "Europe/Stockholm";

static STOCKHOLM: LazyLock<TimeZone> = LazyLock::new(|| {
    TimeZoneDatabase::bundled()
        .get(TIME_ZONE)
        .expect("the bundled time-zone database holds Europe/Stockholm")
});

/// Europe/Stockholm, from the time-zone database compiled into the binary.
pub fn stockholm() -> &'static TimeZone {
    &STOCKHOLM
}

const EPOCH: civil::Date = civil::date(1970, 1, 1);
const SECONDS_PER_DAY: i64 = 86_400;

/// A proleptic Gregorian calendar date between the years -9999 and 9999 (jiff's range).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

impl Date {
    /// The date `days` days after 1970-01-01; `None` outside the years -9999 to 9999.
    pub fn from_days(days: i32) -> Option<Date> {
        EPOCH
            .checked_add(SignedDuration::from_secs(i64::from(days) * SECONDS_PER_DAY))
            .ok()
            .map(Date::from_civil)
    }

    /// Days since 1970-01-01 (negative before).
    pub const fn days(self) -> i32 {
        self.0
    }

    pub fn from_civil(date: civil::Date) -> Date {
        // Within jiff's range a day number fits in an i32 many times over.
        Date((date.duration_since(EPOCH).as_secs() / SECONDS_PER_DAY) as i32)
    }

    pub fn to_civil(self) -> civil::Date {
        EPOCH
            .checked_add(SignedDuration::from_secs(
                i64::from(self.0) * SECONDS_PER_DAY,
            ))
            .expect("every Date is within jiff's range")
    }

    /// `None` when the month or the day does not exist.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        let date = civil::Date::new(
            i16::try_from(year).ok()?,
            i8::try_from(month).ok()?,
            i8::try_from(day).ok()?,
        )
        .ok()?;
        Some(Date::from_civil(date))
    }

    /// Parses `YYYY-MM-DD` exactly (four-digit year, two-digit month and day) into a date that
    /// exists.
    pub fn parse(text: &str) -> Option<Date> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let number = |digits: &[u8]| -> Option<i16> {
            digits.iter().try_fold(0i16, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + i16::from(c - b'0'))
            })
        };
        let date = civil::Date::new(
            number(&b[0..4])?,
            number(&b[5..7])? as i8,
            number(&b[8..10])? as i8,
        )
        .ok()?;
        Some(Date::from_civil(date))
    }

    /// The calendar date in Europe/Stockholm at the instant `now`.
    pub fn in_stockholm(now: Timestamp) -> Date {
        Date::from_civil(stockholm().to_datetime(now).date())
    }

    pub fn ymd(self) -> (i32, u32, u32) {
        let date = self.to_civil();
        (
            i32::from(date.year()),
            date.month() as u32,
            date.day() as u32,
        )
    }

    pub fn year(self) -> i32 {
        i32::from(self.to_civil().year())
    }

    /// 1 to 4.
    pub fn quarter(self) -> u32 {
        (self.to_civil().month() as u32 - 1) / 3 + 1
    }

    /// The date `days` days later (earlier when negative).
    ///
    /// # Panics
    /// When the result is outside the years -9999 to 9999, as integer overflow would.
    pub fn add_days(self, days: i32) -> Date {
        let date = self
            .to_civil()
            .checked_add(SignedDuration::from_secs(i64::from(days) * SECONDS_PER_DAY))
            .expect("a date within the years -9999 to 9999");
        Date::from_civil(date)
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_civil(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_day_of_four_centuries() {
        for days in -200_000..200_000 {
            let date = Date::from_days(days).expect("within jiff's range");
            assert_eq!(date.days(), days);
            let (y, m, d) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, d), Some(date));
            assert_eq!(
                Date::parse(&date.to_string()).filter(|_| (0..=9999).contains(&y)),
                (0..=9999).contains(&y).then_some(date)
            );
        }
    }

    #[test]
    fn day_numbers_count_from_1970() {
        assert_eq!(Date::parse("1970-01-01").map(Date::days), Some(0));
        assert_eq!(Date::parse("1969-12-31").map(Date::days), Some(-1));
        assert_eq!(Date::parse("2020-12-02").map(Date::days), Some(18_598));
        assert_eq!(Date::from_days(i32::MAX), None);
        assert_eq!(Date::from_ymd(10_000, 1, 1), None);
        assert_eq!(
            Date::parse("2020-02-28").unwrap().add_days(1).to_string(),
            "2020-02-29"
        );
        assert_eq!(
            Date::parse("2021-01-01").unwrap().add_days(-1).to_string(),
            "2020-12-31"
        );
    }

    #[test]
    fn parse_rejects_malformed_and_impossible_dates() {
        for bad in [
            "2020-02-30",
            "2019-02-29",
            "2020-13-01",
            "2020-00-10",
            "2020-01-00",
            "2020-01-32",
            "20-01-01",
            "2020/01/01",
            "2020-1-01",
            "2020-01-01 ",
            "+020-01-01",
            "2020-+1-01",
            "20200101",
            "2020-01-01T00:00",
            "",
        ] {
            assert_eq!(Date::parse(bad), None, "{bad}");
        }
        assert_eq!(
            Date::parse("2020-02-29").map(|d| d.to_string()),
            Some("2020-02-29".into())
        );
        assert_eq!(Date::parse("2020-05-17").unwrap().quarter(), 2);
        assert_eq!(Date::parse("2020-12-31").unwrap().quarter(), 4);
        assert_eq!(Date::parse("2020-01-01").unwrap().quarter(), 1);
    }

    fn instant(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    /// Runs its checks, then runs again in a copy of this test binary whose `TZDIR` is an empty
    /// directory and whose `TZ` names another zone: the calendar must come out the same.
    #[test]
    fn stockholm_calendar_needs_no_system_tzdata() {
        // 00:30 on 2 December in Stockholm (UTC+1) is still 1 December in UTC.
        assert_eq!(
            Date::in_stockholm(instant("2020-12-01T23:30:00Z")).to_string(),
            "2020-12-02"
        );
        assert_eq!(
            Date::in_stockholm(instant("2020-12-01T22:59:59Z")).to_string(),
            "2020-12-01"
        );
        // Summer time (UTC+2): 00:30 on 15 June is 22:30 on 14 June in UTC.
        assert_eq!(
            Date::in_stockholm(instant("2020-06-14T22:30:00Z")).to_string(),
            "2020-06-15"
        );
        assert_eq!(
            Date::in_stockholm(instant("2020-06-14T21:59:59Z")).to_string(),
            "2020-06-14"
        );
        assert_eq!(stockholm().iana_name(), Some(TIME_ZONE));

        if std::env::var_os("NO_TZDATA_CHILD").is_some() {
            return;
        }
        let empty = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "date::tests::stockholm_calendar_needs_no_system_tzdata",
            ])
            .env("NO_TZDATA_CHILD", "1")
            .env("TZDIR", empty.path())
            .env("TZ", "America/New_York")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success() && stdout.contains("1 passed"),
            "the Stockholm calendar must not depend on the system's tzdata (TZDIR={}): {stdout}{}",
            empty.path().display(),
            String::from_utf8_lossy(&child.stderr)
        );
    }
}
