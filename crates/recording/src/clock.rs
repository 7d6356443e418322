//! Where "now" comes from. The recorder judges "not after today" by the calendar date in
//! Europe/Stockholm at `now` (`Date::in_stockholm`), and the services stamp `recorded_at` from
//! the same clock; tests fix the instant to check the calendar's edges.

use gryning_domain::date::stockholm;
use gryning_domain::Date;
use jiff::Timestamp;

/// The system clock, or a fixed instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    #[default]
    System,
    Fixed(Timestamp),
}

impl Clock {
    /// Noon in Stockholm on `date`: a fixed clock for tests that care about the day only.
    pub fn noon_on(date: Date) -> Clock {
        let noon = date.to_civil().at(12, 0, 0, 0);
        let instant = stockholm()
            .to_ambiguous_timestamp(noon)
            .compatible()
            .expect("noon exists on every date within jiff's range");
        Clock::Fixed(instant)
    }

    pub fn now(self) -> Timestamp {
        match self {
            Clock::System => Timestamp::now(),
            Clock::Fixed(instant) => instant,
        }
    }

    /// Today's date in Europe/Stockholm.
    pub fn today(self) -> Date {
        Date::in_stockholm(self.now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noon_on_a_date_is_that_date_in_stockholm() {
        for text in ["2020-12-02", "2020-06-15", "2021-03-28", "2021-10-31"] {
            let date = Date::parse(text).unwrap();
            assert_eq!(Clock::noon_on(date).today(), date, "{text}");
        }
        let winter = Clock::noon_on(Date::parse("2020-12-02").unwrap()).now();
        assert_eq!(winter.to_string(), "2020-12-02T11:00:00Z");
        let summer = Clock::noon_on(Date::parse("2020-06-15").unwrap()).now();
        assert_eq!(summer.to_string(), "2020-06-15T10:00:00Z");
    }
}
