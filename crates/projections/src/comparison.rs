//! The `region-comparison` table: each police region's person-clearance rate beside the median
//! of the regions' rates ("medianvärdet i riket"), with a verdict.
//!
//! The rule: for one (period, code or group, victim gender), the regions with at least
//! [`MIN_HANDLED`] handled crimes make up the comparison; their median rate is the country's
//! median, given when at least [`MIN_REGIONS`] regions qualify. A qualifying region is `above`
//! when its rate is more than [`MARGIN_POINTS`] percentage points over the median, `below` when
//! more than that under it, and `in line` otherwise. A region below [`MIN_HANDLED`] is listed
//! with its counts, gets no verdict and is not in the median.
//!
//! [`Projections::region_comparison`] returns the rows typed, for reports that draw a region
//! against the median; the table renderer lays the same rows out as cells.

use std::collections::BTreeMap;

use gryning_domain::{Catalogue, Gender, UnknownRegion, POLICE_REGIONS};

use crate::period::label;
use crate::query::{key_label, Regions};
use crate::state::Projections;
use crate::table::{By, Cell, PeriodKind, Table, TableName};

/// Fewest handled crimes for a region to get a verdict and count in the median.
pub const MIN_HANDLED: i64 = 10;
/// Fewest qualifying regions for a median (and so for any verdict).
pub const MIN_REGIONS: usize = 3;
/// How far, in percentage points, a rate may lie from the median and still be `in line`.
pub const MARGIN_POINTS: f64 = 2.0;

/// How a region's rate stands against the median of the regions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verdict {
    Above,
    InLine,
    Below,
}

impl Verdict {
    /// `above`, `in line` or `below`, as the table shows it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Above => "above",
            Verdict::InLine => "in line",
            Verdict::Below => "below",
        }
    }

    /// The verdict for `percent` against `median` under the contract's rule.
    pub fn of(percent: f64, median: f64) -> Verdict {
        if percent > median + MARGIN_POINTS {
            Verdict::Above
        } else if percent < median - MARGIN_POINTS {
            Verdict::Below
        } else {
            Verdict::InLine
        }
    }
}

/// One row of `region-comparison`: one region in one (period, code or group, victim gender).
#[derive(Clone, Debug, PartialEq)]
pub struct RegionComparisonRow {
    /// `2019`, or `2019-Q3`.
    pub period: String,
    /// The four-digit code or the group's name.
    pub key: String,
    /// `ALL`, `FEMALE`, `MALE` or `UNKNOWN`.
    pub victim_gender: &'static str,
    pub region: String,
    pub handled: i64,
    pub cleared: i64,
    /// 100 × cleared ÷ handled, unrounded (rows exist only where something was handled).
    pub percent: f64,
    /// The median of the qualifying regions' rates; `None` below [`MIN_REGIONS`] of them.
    pub median_percent: Option<f64>,
    /// How many regions qualify for the median.
    pub regions_in_median: usize,
    /// `None` when the region handled fewer than [`MIN_HANDLED`] crimes or there is no median.
    pub verdict: Option<Verdict>,
}

/// The table's columns, rows by `by` (code or group).
pub fn columns(by: By) -> Vec<&'static str> {
    vec![
        "period",
        by.name(),
        "victim_gender",
        "region",
        "handled",
        "cleared",
        "percent",
        "median_percent",
        "regions_in_median",
        "verdict",
    ]
}

/// The rows as a table of cells.
pub(crate) fn table(by: By, rows: &[RegionComparisonRow]) -> Table {
    Table {
        name: TableName::RegionComparison.name().to_string(),
        columns: columns(by),
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    Cell::Text(r.period.clone()),
                    Cell::Text(r.key.clone()),
                    Cell::Text(r.victim_gender.to_string()),
                    Cell::Text(r.region.clone()),
                    Cell::Int(r.handled),
                    Cell::Int(r.cleared),
                    Cell::Float(r.percent),
                    r.median_percent.map_or(Cell::Null, Cell::Float),
                    Cell::Int(r.regions_in_median as i64),
                    r.verdict
                        .map_or(Cell::Null, |v| Cell::Text(v.name().to_string())),
                ]
            })
            .collect(),
    }
}

/// Handled and cleared crimes per victim gender, in `Gender::ALL` order.
type PerGender = ([i64; 3], [i64; 3]);

/// The median of unsorted values; the mean of the two middle ones for an even count.
fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    (n > 0).then(|| (values[(n - 1) / 2] + values[n / 2]) / 2.0)
}

/// A region's place in the rows: the police regions in their order, then other names.
fn region_rank(name: &str) -> (usize, &str) {
    (
        POLICE_REGIONS
            .iter()
            .position(|r| *r == name)
            .unwrap_or(POLICE_REGIONS.len()),
        name,
    )
}

impl Projections {
    /// The `region-comparison` rows, typed: by code or group, per year or quarter, for every
    /// victim gender and region; `region` (named as [`Projections::region_table`] takes it)
    /// keeps only that region's rows, the median still being the country's.
    pub fn region_comparison(
        &self,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
        region: Option<&str>,
    ) -> Result<Vec<RegionComparisonRow>, UnknownRegion> {
        let regions = self.regions_named(region)?;
        Ok(self.comparison_rows(by, period, catalogue, regions))
    }

    pub(crate) fn comparison_rows(
        &self,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
        shown: Regions,
    ) -> Vec<RegionComparisonRow> {
        let is_year = period == PeriodKind::Year;
        // (period, key) → region → (handled, cleared) per gender.
        let mut handled: BTreeMap<(i32, u32), BTreeMap<u16, PerGender>> = BTreeMap::new();
        for region in 0..self.regions.len() as u16 {
            for (key, sum) in self.sums(by, period, catalogue, Regions::One(Some(region))) {
                let c = &sum.counts;
                if c.handled.iter().any(|&n| n != 0) {
                    handled
                        .entry(key)
                        .or_default()
                        .insert(region, (c.handled, c.cleared));
                }
            }
        }
        let mut rows = Vec::new();
        for ((p, key), by_region) in handled {
            let period_label = label(is_year, p);
            let key_text = key_label(by, key, catalogue);
            let mut order: Vec<u16> = by_region.keys().copied().collect();
            order.sort_by_key(|&r| region_rank(&self.regions[r as usize]));
            let lines = std::iter::once("ALL")
                .chain(Gender::ALL.iter().map(|g| g.table_name()))
                .enumerate();
            for (line, gender) in lines {
                let count = |(h, c): &([i64; 3], [i64; 3])| -> (i64, i64) {
                    if line == 0 {
                        (h.iter().sum(), c.iter().sum())
                    } else {
                        (h[line - 1], c[line - 1])
                    }
                };
                let mut qualifying: Vec<f64> = by_region
                    .values()
                    .map(count)
                    .filter(|&(h, _)| h >= MIN_HANDLED)
                    .map(|(h, c)| 100.0 * c as f64 / h as f64)
                    .collect();
                let regions_in_median = qualifying.len();
                let median_percent = if regions_in_median >= MIN_REGIONS {
                    median(&mut qualifying)
                } else {
                    None
                };
                for &region in &order {
                    let (h, c) = count(&by_region[&region]);
                    if h == 0 || !shown.holds(region) {
                        continue;
                    }
                    let percent = 100.0 * c as f64 / h as f64;
                    rows.push(RegionComparisonRow {
                        period: period_label.clone(),
                        key: key_text.clone(),
                        victim_gender: gender,
                        region: self.regions[region as usize].clone(),
                        handled: h,
                        cleared: c,
                        percent,
                        median_percent,
                        regions_in_median,
                        verdict: median_percent
                            .filter(|_| h >= MIN_HANDLED)
                            .map(|m| Verdict::of(percent, m)),
                    });
                }
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verdict_rule_has_a_two_point_margin_either_way() {
        assert_eq!(Verdict::of(12.0, 10.0), Verdict::InLine);
        assert_eq!(Verdict::of(12.01, 10.0), Verdict::Above);
        assert_eq!(Verdict::of(8.0, 10.0), Verdict::InLine);
        assert_eq!(Verdict::of(7.99, 10.0), Verdict::Below);
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
