//! The `social-services` table: social services' work made visible. Child-welfare
//! notifications (`ChildWelfareNotified`, by the notification's date) per local police area of
//! the case, with the median days from the case's opening to the notification, and support
//! granted (`SupportGranted`, by its date) per kind × gender × age group.
//!
//! Every row is keyed by text cells (`period`, `service`, `local_police_area`, `gender`,
//! `age_group`), so the leading-text-cells rule that `Watch` and `diff` use to identify a row
//! holds: a notification row has `ALL` for gender and age group (notifications are not broken
//! down by them), a support row `ALL` for the area (support carries none).

use std::collections::BTreeMap;

use gryning_domain::Gender;

use crate::period::median_histogram;
use crate::state::Projections;
use crate::table::{Cell, Table, TableName};

/// The `service` of a row, in table order: the notification first, then the support kinds in
/// the order of `state::SUPPORT_KINDS`.
pub const SERVICES: [&str; 4] = [
    "CHILD_WELFARE_NOTIFICATION",
    "PROTECTED_HOUSING",
    "SUPPORT_TALKS",
    "OTHER_SUPPORT",
];

/// Age groups as the table names them, in the order of `state::AGE_GROUPS`.
pub const AGE_GROUP_NAMES: [&str; 3] = ["CHILD", "ADULT", "UNKNOWN"];

/// The text of "not broken down by this" in a key cell.
pub const ALL: &str = "ALL";

pub(crate) const COLUMNS: [&str; 7] = [
    "period",
    "service",
    "local_police_area",
    "gender",
    "age_group",
    "count",
    "median_days_to_notification",
];

/// A row's place: period, service (index in [`SERVICES`]), area (`ALL` for support), gender
/// and age group (indices; 3 for `ALL`, as on notification rows).
type Key = (i32, u8, String, u8, u8);

#[derive(Default)]
struct Sum {
    count: i64,
    days: BTreeMap<i32, u32>,
}

impl Projections {
    /// The rows of the quarters `period_of` maps to a period (those it maps to `None` are left
    /// out), each period labelled by `label`.
    pub(crate) fn social_rows(
        &self,
        period_of: impl Fn(i32) -> Option<i32>,
        label: impl Fn(i32) -> String,
        rows: &mut Vec<Vec<Cell>>,
    ) {
        let mut sums: BTreeMap<Key, Sum> = BTreeMap::new();
        for (&(quarter, area), tally) in &self.notifications {
            let Some(p) = period_of(quarter) else {
                continue;
            };
            let sum = sums
                .entry((p, 0, self.areas[area as usize].clone(), 3, 3))
                .or_default();
            sum.count += tally.count;
            for (&v, &n) in &tally.to_notification {
                *sum.days.entry(v).or_insert(0) += n;
            }
        }
        for (&(quarter, kind, gender, age), &n) in &self.support {
            let Some(p) = period_of(quarter) else {
                continue;
            };
            sums.entry((p, 1 + kind, ALL.to_string(), gender, age))
                .or_default()
                .count += n;
        }
        for ((p, service, area, gender, age), sum) in sums {
            if sum.count == 0 {
                continue;
            }
            let gender = match gender {
                3 => ALL,
                g => Gender::ALL[usize::from(g)].table_name(),
            };
            let age = match age {
                3 => ALL,
                a => AGE_GROUP_NAMES[usize::from(a)],
            };
            let median = if service == 0 {
                median_histogram(&sum.days).map_or(Cell::Null, Cell::Float)
            } else {
                Cell::Null
            };
            rows.push(vec![
                Cell::Text(label(p)),
                Cell::Text(SERVICES[usize::from(service)].to_string()),
                Cell::Text(area),
                Cell::Text(gender.to_string()),
                Cell::Text(age.to_string()),
                Cell::Int(sum.count),
                median,
            ]);
        }
    }

    pub(crate) fn social_table(&self, rows: Vec<Vec<Cell>>) -> Table {
        Table {
            name: TableName::SocialServices.name().to_string(),
            columns: COLUMNS.to_vec(),
            rows,
        }
    }
}
