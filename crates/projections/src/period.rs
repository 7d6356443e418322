//! Calendar buckets and the small numeric helpers of the incremental state and its queries.
//! The naive recomputation has its own (it must not share what it checks).

use std::collections::BTreeMap;

/// Quarters are numbered `year * 4 + (quarter - 1)`, so they order like dates and a year is
/// `q.div_euclid(4)`.
///
/// This runs several times per event on every replay, so it keeps a hand-written
/// civil-from-days (Howard Hinnant's public-domain algorithm) instead of `Date::ymd`: jiff's
/// day number → date took 2.9–3.1× as long in the same run (BENCHMARKS.md, "Dates"). A test checks
/// it against jiff for every day of four centuries.
pub(crate) fn quarter_of_days(days: i32) -> i32 {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    // The month counted from March (0 = March … 11 = February).
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i32::from(month <= 2);
    year * 4 + (month - 1) / 3
}

/// "2020" for a year, "2020-Q1" for a quarter number.
pub(crate) fn label(is_year: bool, period: i32) -> String {
    if is_year {
        format!("{period}")
    } else {
        format!("{}-Q{}", period.div_euclid(4), period.rem_euclid(4) + 1)
    }
}

/// 100 × cleared ÷ handled, unrounded; `None` when nothing was handled.
pub(crate) fn percent(cleared: i64, handled: i64) -> Option<f64> {
    (handled != 0).then(|| 100.0 * cleared as f64 / handled as f64)
}

/// The median of values sorted ascending; the mean of the two middle ones for an even count.
/// What [`median_histogram`] is checked against.
#[cfg(test)]
fn median_sorted(values: &[i32]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    Some(middle(values[(n - 1) / 2], values[n / 2]))
}

/// The same median from a histogram of value → count.
pub(crate) fn median_histogram(hist: &BTreeMap<i32, u32>) -> Option<f64> {
    let n: u64 = hist.values().map(|&c| u64::from(c)).sum();
    if n == 0 {
        return None;
    }
    let (lo_rank, hi_rank) = ((n - 1) / 2, n / 2);
    let (mut lo, mut seen) = (None, 0u64);
    for (&value, &count) in hist {
        seen += u64::from(count);
        if lo.is_none() && seen > lo_rank {
            lo = Some(value);
        }
        if seen > hi_rank {
            return Some(middle(lo.unwrap_or(value), value));
        }
    }
    None
}

fn middle(a: i32, b: i32) -> f64 {
    (f64::from(a) + f64::from(b)) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use gryning_domain::Date;

    fn quarter_of(date: Date) -> i32 {
        quarter_of_days(date.days())
    }

    #[test]
    fn medians_agree_and_average_the_middle_pair() {
        for values in [
            vec![5],
            vec![1, 2],
            vec![1, 2, 3, 10],
            vec![-3, -3, 4, 4, 4, 9],
            vec![],
        ] {
            let mut hist = BTreeMap::new();
            for &v in &values {
                *hist.entry(v).or_insert(0) += 1;
            }
            assert_eq!(
                median_sorted(&values),
                median_histogram(&hist),
                "{values:?}"
            );
        }
        assert_eq!(median_sorted(&[1, 2, 3, 10]), Some(2.5));
        assert_eq!(median_sorted(&[-3, -3, 4, 4, 4, 9]), Some(4.0));
    }

    #[test]
    fn quarter_of_days_agrees_with_jiff_for_four_centuries() {
        for days in -200_000..200_000 {
            let (year, month, _) = Date::from_days(days).unwrap().ymd();
            let expected = year * 4 + ((month - 1) / 3) as i32;
            assert_eq!(quarter_of_days(days), expected, "day {days}");
        }
    }

    #[test]
    fn quarters_and_labels() {
        let q = quarter_of(Date::parse("2020-05-17").unwrap());
        assert_eq!(label(false, q), "2020-Q2");
        assert_eq!(q.div_euclid(4), 2020);
        assert_eq!(label(true, 2020), "2020");
        assert_eq!(
            quarter_of(Date::parse("2019-12-31").unwrap()) + 1,
            quarter_of(Date::parse("2020-01-01").unwrap())
        );
    }
}
