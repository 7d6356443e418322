//! Calendar quarters as publications name them: `2020-Q4`. A quarter runs from the first day
//! of its first month to the last day of its third, in the calendar of [`Date`].

use std::fmt;

use crate::Date;

/// A calendar quarter: a year and a quarter number 1 to 4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quarter {
    year: i32,
    number: u8,
}

/// Why a text is not a quarter.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuarterError {
    #[error("quarter {0:?}: must be YYYY-QN, a four-digit year, \"-Q\" and a quarter number 1 to 4, e.g. 2020-Q4")]
    Form(String),
    #[error("quarter {0:?}: a year has quarters 1 to 4")]
    Number(String),
}

impl Quarter {
    /// `number` is 1 to 4; `year` 1 to 9999.
    pub fn new(year: i32, number: u8) -> Option<Quarter> {
        ((1..=4).contains(&number) && (1..=9999).contains(&year))
            .then_some(Quarter { year, number })
    }

    /// Exactly `YYYY-QN`: four ASCII digits, `-Q`, one digit 1 to 4.
    pub fn parse(text: &str) -> Result<Quarter, QuarterError> {
        let b = text.as_bytes();
        let form = b.len() == 7
            && b[..4].iter().all(u8::is_ascii_digit)
            && &b[4..6] == b"-Q"
            && b[6].is_ascii_digit();
        if !form {
            return Err(QuarterError::Form(crate::echo(text)));
        }
        let year = b[..4]
            .iter()
            .fold(0i32, |n, &c| n * 10 + i32::from(c - b'0'));
        Quarter::new(year, b[6] - b'0').ok_or_else(|| QuarterError::Number(text.to_string()))
    }

    /// The quarter holding `date`.
    pub fn of(date: Date) -> Quarter {
        Quarter {
            year: date.year(),
            number: date.quarter() as u8,
        }
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn number(self) -> u8 {
        self.number
    }

    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, u32::from(self.number) * 3 - 2, 1).expect("a quarter's first day")
    }

    /// The last day of the quarter's third month (computed within the quarter's own year, so
    /// that 9999-Q4 has one: the day after it is past the calendar's end).
    pub fn last_day(self) -> Date {
        let day = if matches!(self.number, 1 | 4) { 31 } else { 30 };
        Date::from_ymd(self.year, u32::from(self.number) * 3, day).expect("a quarter's last day")
    }

    pub fn next(self) -> Quarter {
        if self.number == 4 {
            Quarter {
                year: self.year + 1,
                number: 1,
            }
        } else {
            Quarter {
                number: self.number + 1,
                ..self
            }
        }
    }

    pub fn previous(self) -> Quarter {
        if self.number == 1 {
            Quarter {
                year: self.year - 1,
                number: 4,
            }
        } else {
            Quarter {
                number: self.number - 1,
                ..self
            }
        }
    }

    /// The stream of this quarter's publications: `publication-2020-Q4`.
    pub fn stream_name(self) -> String {
        format!("publication-{self}")
    }
}

impl fmt::Display for Quarter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-Q{}", self.year, self.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_the_strict_form_and_knows_its_days() {
        let q = Quarter::parse("2020-Q4").unwrap();
        assert_eq!(q.to_string(), "2020-Q4");
        assert_eq!(q.first_day().to_string(), "2020-10-01");
        assert_eq!(q.last_day().to_string(), "2020-12-31");
        assert_eq!(q.next().to_string(), "2021-Q1");
        assert_eq!(q.next().previous(), q);
        assert_eq!(
            Quarter::parse("2020-Q1").unwrap().last_day().to_string(),
            "2020-03-31"
        );
        assert_eq!(
            Quarter::of(Date::parse("2020-05-17").unwrap()).to_string(),
            "2020-Q2"
        );
        assert_eq!(
            Quarter::parse("2020-Q5"),
            Err(QuarterError::Number("2020-Q5".into()))
        );
        for bad in [
            "2020Q4", "2020-q4", "20-Q4", "2020-Q44", " 2020-Q4", "", "2020-Q0x",
        ] {
            assert!(
                matches!(Quarter::parse(bad), Err(QuarterError::Form(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Quarter::parse("2020-Q0"),
            Err(QuarterError::Number(_))
        ));
        let e = Quarter::parse("2020Q4").unwrap_err().to_string();
        assert!(e.contains("YYYY-QN") && e.contains("2020Q4"), "{e}");
    }

    #[test]
    fn every_quarter_has_a_last_day_the_day_before_the_next() {
        for year in [1, 1900, 2000, 2023, 2024, 9998] {
            for number in 1..=4 {
                let q = Quarter::new(year, number).unwrap();
                assert_eq!(q.last_day(), q.next().first_day().add_days(-1), "{q}");
                assert_eq!(Quarter::of(q.last_day()), q);
            }
        }
        // The calendar ends with 9999: its last quarter has a last day all the same.
        let last = Quarter::parse("9999-Q4").unwrap();
        assert_eq!(last.last_day().to_string(), "9999-12-31");
    }
}
