//! Answers a table from the state: sums the per-(quarter, code) counts into the asked periods
//! and codes or groups, merges lead-time histograms for the medians, and lays out the rows.
//! [`crate::naive`] computes the same tables another way, with its own grouping and layout.

use std::collections::BTreeMap;

use gryning_domain::{Catalogue, CrimeCode, Gender, UnknownRegion};

use crate::period::{label, median_histogram, percent};
use crate::state::{Projections, Tally};
use crate::table::{By, Cell, PeriodKind, Table, TableName};

/// The values of one (period, code or group) row, however they were computed.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Counts {
    pub reported: i64,
    pub cases: i64,
    pub referred_cases: i64,
    /// Per gender, in `Gender::ALL` order.
    pub handled: [i64; 3],
    pub cleared: [i64; 3],
    pub cohort_referred: i64,
    pub cohort_decided: i64,
    pub cohort_cleared: i64,
    pub median_to_referral: Option<f64>,
    pub median_to_decision: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CareCounts {
    pub proposed: i64,
    pub started: i64,
    pub completed: i64,
    pub discontinued: i64,
    pub continuing: i64,
}

pub(crate) fn columns(name: TableName, by: By) -> Vec<&'static str> {
    let key = by.name();
    match name {
        TableName::CaseFlow => vec!["period", key, "reported", "cases", "referred"],
        TableName::Clearance => vec![
            "period",
            key,
            "victim_gender",
            "handled",
            "cleared",
            "percent",
        ],
        TableName::Care => vec![
            "period",
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing",
        ],
        TableName::RegionComparison => crate::comparison::columns(by),
        TableName::Progress => vec![
            "period",
            key,
            "reported",
            "in_case",
            "referred",
            "decided",
            "cleared",
            "open",
            "median_days_to_referral",
            "median_days_to_decision",
        ],
        TableName::SocialServices => crate::social::COLUMNS.to_vec(),
    }
}

/// The text of a row key: the four-digit code, or the group's name.
pub(crate) fn key_label(by: By, key: u32, catalogue: &Catalogue) -> String {
    match by {
        By::Code => format!("{:04}", key),
        By::Group => catalogue.groups()[key as usize].name.clone(),
    }
}

/// Row keys a crime code counts under: itself, or each group holding it (groups may overlap).
pub(crate) fn keys_of(by: By, code: u16, catalogue: &Catalogue) -> Vec<u32> {
    match by {
        By::Code => vec![u32::from(code)],
        By::Group => CrimeCode::from_number(code)
            .map(|c| catalogue.groups_of(c).iter().map(|&g| g as u32).collect())
            .unwrap_or_default(),
    }
}

fn text(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn float(x: Option<f64>) -> Cell {
    x.map_or(Cell::Null, Cell::Float)
}

/// Appends the rows of one (period, key) for a per-code table; a row only when a count is non-zero.
pub(crate) fn push_rows(
    name: TableName,
    period: &str,
    key: &str,
    c: &Counts,
    rows: &mut Vec<Vec<Cell>>,
) {
    match name {
        TableName::CaseFlow => {
            if c.reported != 0 || c.cases != 0 || c.referred_cases != 0 {
                rows.push(vec![
                    text(period),
                    text(key),
                    Cell::Int(c.reported),
                    Cell::Int(c.cases),
                    Cell::Int(c.referred_cases),
                ]);
            }
        }
        TableName::Clearance => {
            let all = (c.handled.iter().sum::<i64>(), c.cleared.iter().sum::<i64>());
            let genders = Gender::ALL
                .iter()
                .enumerate()
                .map(|(i, g)| (g.table_name(), c.handled[i], c.cleared[i]));
            for (gender, handled, cleared) in std::iter::once(("ALL", all.0, all.1)).chain(genders)
            {
                if handled != 0 || cleared != 0 {
                    rows.push(vec![
                        text(period),
                        text(key),
                        text(gender),
                        Cell::Int(handled),
                        Cell::Int(cleared),
                        float(percent(cleared, handled)),
                    ]);
                }
            }
        }
        TableName::Progress => {
            let open = c.reported - c.cohort_decided;
            if c.reported != 0
                || c.cohort_referred != 0
                || c.cohort_decided != 0
                || c.cohort_cleared != 0
                || open != 0
            {
                rows.push(vec![
                    text(period),
                    text(key),
                    Cell::Int(c.reported),
                    // Under the contract a crime is reported into an opened case, so every
                    // reported crime is in a case; the column keeps the funnel's step visible.
                    Cell::Int(c.reported),
                    Cell::Int(c.cohort_referred),
                    Cell::Int(c.cohort_decided),
                    Cell::Int(c.cohort_cleared),
                    Cell::Int(open),
                    float(c.median_to_referral),
                    float(c.median_to_decision),
                ]);
            }
        }
        TableName::Care | TableName::SocialServices | TableName::RegionComparison => {
            unreachable!("care and social-services have no code or group rows; region-comparison has its own")
        }
    }
}

pub(crate) fn push_care_row(period: &str, c: &CareCounts, rows: &mut Vec<Vec<Cell>>) {
    if [
        c.proposed,
        c.started,
        c.completed,
        c.discontinued,
        c.continuing,
    ]
    .iter()
    .any(|&n| n != 0)
    {
        rows.push(vec![
            text(period),
            Cell::Int(c.proposed),
            Cell::Int(c.started),
            Cell::Int(c.completed),
            Cell::Int(c.discontinued),
            Cell::Int(c.continuing),
        ]);
    }
}

/// Sums of tallies with merged histograms, before medians are taken.
#[derive(Default)]
pub(crate) struct Sum {
    pub counts: Counts,
    pub to_referral: BTreeMap<i32, u32>,
    pub to_decision: BTreeMap<i32, u32>,
}

impl Sum {
    pub(crate) fn add(&mut self, t: &Tally, with_referred_cases: bool) {
        let c = &mut self.counts;
        c.reported += t.reported;
        c.cases += t.cases;
        if with_referred_cases {
            c.referred_cases += t.referred_cases;
        }
        for g in 0..3 {
            c.handled[g] += t.handled[g];
            c.cleared[g] += t.cleared[g];
        }
        c.cohort_referred += t.cohort_referred;
        c.cohort_decided += t.cohort_decided;
        c.cohort_cleared += t.cohort_cleared;
        for (&v, &n) in &t.to_referral {
            *self.to_referral.entry(v).or_insert(0) += n;
        }
        for (&v, &n) in &t.to_decision {
            *self.to_decision.entry(v).or_insert(0) += n;
        }
    }
}

/// Which cases a query counts: every region's, or one region's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Regions {
    All,
    /// A region by its index; `None` for a region named rightly that no stored case is in
    /// (every count of it is zero).
    One(Option<u16>),
}

impl Regions {
    pub(crate) fn holds(self, region: u16) -> bool {
        match self {
            Regions::All => true,
            Regions::One(wanted) => wanted == Some(region),
        }
    }
}

impl Projections {
    /// Computes a table from the state as it stands, every region together.
    pub fn table(
        &self,
        name: TableName,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
    ) -> Table {
        self.table_of(name, by, period, catalogue, Regions::All)
    }

    /// [`Projections::table`] for one police region (`None`: every region together). The region
    /// is named as [`gryning_domain::region::resolve_region`] accepts: a police region, full or
    /// short, in any case, or a region name of the stored cases.
    pub fn region_table(
        &self,
        name: TableName,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
        region: Option<&str>,
    ) -> Result<Table, UnknownRegion> {
        let regions = self.regions_named(region)?;
        Ok(self.table_of(name, by, period, catalogue, regions))
    }

    /// The region a query names, resolved against the police regions and the stored ones.
    pub fn resolve_region(&self, given: &str) -> Result<String, UnknownRegion> {
        gryning_domain::resolve_region(given, self.regions())
    }

    pub(crate) fn regions_named(&self, region: Option<&str>) -> Result<Regions, UnknownRegion> {
        let Some(given) = region else {
            return Ok(Regions::All);
        };
        let name = self.resolve_region(given)?;
        Ok(Regions::One(self.region_ids.get(name.as_str()).copied()))
    }

    fn table_of(
        &self,
        name: TableName,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
        regions: Regions,
    ) -> Table {
        if name == TableName::RegionComparison {
            let rows = self.comparison_rows(by, period, catalogue, regions);
            return crate::comparison::table(by, &rows);
        }
        let columns = columns(name, by);
        let is_year = period == PeriodKind::Year;
        let mut rows = Vec::new();
        if name == TableName::SocialServices {
            let period_of = |quarter: i32| {
                Some(if is_year {
                    quarter.div_euclid(4)
                } else {
                    quarter
                })
            };
            self.social_rows(period_of, |p| label(is_year, p), &mut rows);
            return self.social_table(rows);
        }
        if name == TableName::Care {
            self.care_rows(is_year, regions, &mut rows);
        } else {
            for ((p, key), mut sum) in self.sums(by, period, catalogue, regions) {
                sum.counts.median_to_referral = median_histogram(&sum.to_referral);
                sum.counts.median_to_decision = median_histogram(&sum.to_decision);
                push_rows(
                    name,
                    &label(is_year, p),
                    &key_label(by, key, catalogue),
                    &sum.counts,
                    &mut rows,
                );
            }
        }
        Table {
            name: name.name().to_string(),
            columns,
            rows,
        }
    }

    /// The per-(period, key) sums of the cases of `regions`.
    pub(crate) fn sums(
        &self,
        by: By,
        period: PeriodKind,
        catalogue: &Catalogue,
        regions: Regions,
    ) -> BTreeMap<(i32, u32), Sum> {
        let is_year = period == PeriodKind::Year;
        let period_of = |quarter: i32| {
            if is_year {
                quarter.div_euclid(4)
            } else {
                quarter
            }
        };
        // Under a classification the counts are those of the crimes and cases read through it.
        let classified;
        let (tallies, referred_by_year) = if catalogue.classification().is_some() {
            classified = self.classified_counts(catalogue);
            (&classified.0, &classified.1)
        } else {
            (&self.tallies, &self.referred_by_year)
        };
        let mut sums: BTreeMap<(i32, u32), Sum> = BTreeMap::new();
        for (&(quarter, region, code), tally) in tallies {
            if !regions.holds(region) {
                continue;
            }
            for key in keys_of(by, code, catalogue) {
                sums.entry((period_of(quarter), key))
                    .or_default()
                    .add(tally, !is_year);
            }
        }
        if is_year {
            for (&(year, region, code), &n) in referred_by_year {
                if !regions.holds(region) {
                    continue;
                }
                for key in keys_of(by, code, catalogue) {
                    sums.entry((year, key)).or_default().counts.referred_cases += n;
                }
            }
        }
        sums
    }

    fn care_rows(&self, is_year: bool, regions: Regions, rows: &mut Vec<Vec<Cell>>) {
        let Some((first, last)) = self.span else {
            return;
        };
        let (first, last) = (
            crate::period::quarter_of_days(first),
            crate::period::quarter_of_days(last),
        );
        let (first, last) = if is_year {
            (first.div_euclid(4), last.div_euclid(4))
        } else {
            (first, last)
        };
        let (mut started, mut ended) = (0i64, 0i64);
        for p in first..=last {
            let quarters = if is_year { p * 4..p * 4 + 4 } else { p..p + 1 };
            if regions != Regions::All {
                // Treatment programmes are client events, which carry no region: one region's
                // care row counts its cases' contract-care proposals and leaves them out.
                let proposed: i64 = quarters
                    .map(|q| match regions {
                        Regions::One(Some(region)) => {
                            self.contract_care.get(&(q, region)).copied().unwrap_or(0)
                        }
                        _ => 0,
                    })
                    .sum();
                if proposed != 0 {
                    rows.push(vec![
                        Cell::Text(label(is_year, p)),
                        Cell::Int(proposed),
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                        Cell::Null,
                    ]);
                }
                continue;
            }
            let mut c = CareCounts::default();
            for tally in self.care.range(quarters).map(|(_, t)| t) {
                c.proposed += tally.proposed;
                c.started += tally.started;
                c.completed += tally.completed;
                c.discontinued += tally.discontinued;
            }
            // An end is never dated before its start, so running totals give what is running
            // at the period's last day.
            started += c.started;
            ended += c.completed + c.discontinued;
            c.continuing = started - ended;
            push_care_row(&label(is_year, p), &c, rows);
        }
    }
}
