//! Small-cell suppression over a family of tables computed from one source (the live tables at
//! one position, or one publication).
//!
//! The rule (docs/contract.md, "Small-cell suppression"): with a threshold N, every count from 1
//! to N-1 is shown as `<N` (primary suppression). Then, so that no hidden count can be worked out
//! from the counts shown, more counts are hidden, shown as `..` (complementary suppression),
//! until no hidden count is determined by the shown counts and the linear relations between the
//! family's cells:
//! - a group's row is the sum of its member codes' rows (case-flow, clearance, progress);
//! - a clearance row for all victims is the sum of its rows per victim gender;
//! - in progress, `in_case` equals `reported` and `open` is `reported - decided`;
//! - in the live tables, a year's row is the sum of its quarters' rows (all counts but
//!   case-flow's `referred`, which counts a case once per period; care's `continuing` is the
//!   fourth quarter's), and care's `continuing` is the previous period's plus `started` minus
//!   `completed` and `discontinued`.
//!
//! A rate (clearance `percent`) over a hidden count is hidden, and a median of lead times
//! (progress) over a hidden count of crimes is hidden too; both are shown as `..`. Zero is
//! never hidden. The same family always gets the same hidden cells, so `gryning table` and the
//! report hide the same cells whichever table is asked for.
//!
//! Whether a hidden count is determined is decided exactly: the relations restricted to the
//! hidden cells are reduced (modulo the prime 2^61 - 1) and a hidden cell is determined when a
//! combination of relations involves it alone.

use std::collections::{BTreeMap, HashMap};

use gryning_projections::{By, Cell, PeriodKind, Table, TableName};

/// A table and what it is: which table, rows by code or group, per year or quarter.
#[derive(Clone, Debug, PartialEq)]
pub struct SourcedTable {
    pub name: TableName,
    pub by: By,
    pub period: PeriodKind,
    pub table: Table,
}

impl SourcedTable {
    /// `case-flow-group-year`: the table's options in a file or sheet name.
    pub fn key(&self) -> String {
        if self.name == TableName::Care {
            format!("{}-{}", self.name.name(), self.period.name())
        } else {
            format!(
                "{}-{}-{}",
                self.name.name(),
                self.by.name(),
                self.period.name()
            )
        }
    }
}

/// Where a family's tables come from, which decides which relations hold between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Live tables: every period from the first event's to the last, a missing row being zeros.
    Live,
    /// A publication: the quarter's rows and the year to date, nothing before them.
    Published,
}

/// The mark of a primary suppression with threshold `below`: `<5`.
pub fn primary_mark(below: u32) -> String {
    format!("<{below}")
}

/// The mark of a complementary suppression, and of a rate or median over a hidden count.
pub const COMPLEMENTARY_MARK: &str = "..";

/// Whether a cell is shown as a suppression mark (`<N` or `..`).
pub fn is_suppressed(cell: &Cell) -> bool {
    matches!(cell, Cell::Text(t) if t == COMPLEMENTARY_MARK || (t.starts_with('<') && t[1..].parse::<u32>().is_ok()))
}

/// What a suppression did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Suppressed {
    /// Counts from 1 to N-1.
    pub primary: usize,
    /// Counts hidden so that the primary ones cannot be worked out.
    pub complementary: usize,
    /// Rates and medians hidden because a count under them is.
    pub derived: usize,
}

/// A cell of the family: (table, row, column).
type At = (usize, usize, usize);

/// One linear relation: the sum of coefficient × cell is zero. A cell absent from the tables
/// (a row that is not there) is zero and left out.
type Relation = Vec<(At, i64)>;

/// Hidden cells (true: primary), and what picks a relation's next cell to hide.
type Hidden = BTreeMap<At, bool>;
type Partner<'a> = dyn Fn(&Relation, &Hidden) -> Option<At> + 'a;

/// The count columns of a table, by name.
fn count_columns(name: TableName) -> &'static [&'static str] {
    match name {
        TableName::CaseFlow => &["reported", "cases", "referred"],
        TableName::Clearance => &["handled", "cleared"],
        TableName::Progress => &[
            "reported", "in_case", "referred", "decided", "cleared", "open",
        ],
        TableName::Care => &[
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing",
        ],
        // Not in the report and refused by `--suppress-below`: their totals are not modelled.
        TableName::SocialServices | TableName::RegionComparison => &[],
    }
}

/// Rates and medians and the counts they are taken over.
fn derived_columns(name: TableName) -> &'static [(&'static str, &'static [&'static str])] {
    match name {
        TableName::Clearance => &[("percent", &["handled", "cleared"])],
        TableName::Progress => &[
            ("median_days_to_referral", &["referred"]),
            ("median_days_to_decision", &["decided"]),
        ],
        _ => &[],
    }
}

fn column(table: &Table, name: &str) -> Option<usize> {
    table.columns.iter().position(|c| *c == name)
}

fn text(cell: &Cell) -> &str {
    match cell {
        Cell::Text(t) => t,
        _ => "",
    }
}

/// A row's key: period, code or group, victim gender (clearance), as text.
fn row_key(t: &SourcedTable, row: &[Cell]) -> (String, String, String) {
    let period = text(&row[0]).to_string();
    if t.name == TableName::Care {
        return (period, String::new(), String::new());
    }
    let gender = if t.name == TableName::Clearance {
        text(&row[2]).to_string()
    } else {
        String::new()
    };
    (period, text(&row[1]).to_string(), gender)
}

/// The period before a period label: `2019` for `2020`, `2019-Q4` for `2020-Q1`.
fn previous_period(label: &str) -> Option<String> {
    if let Ok(year) = label.parse::<i32>() {
        return Some(format!("{}", year - 1));
    }
    let (year, q) = label.split_once("-Q")?;
    let (year, q) = (year.parse::<i32>().ok()?, q.parse::<u8>().ok()?);
    Some(if q == 1 {
        format!("{:04}-Q4", year - 1)
    } else {
        format!("{year:04}-Q{}", q - 1)
    })
}

struct Family<'a> {
    tables: &'a [SourcedTable],
    /// Per table: row key → row index (ordered, so that the relations, and with them the cells
    /// chosen, are the same in every process).
    rows: Vec<BTreeMap<(String, String, String), usize>>,
}

impl Family<'_> {
    fn find(&self, spec: (TableName, By, PeriodKind)) -> Option<usize> {
        self.tables.iter().position(|t| {
            t.name == spec.0 && (t.name == TableName::Care || t.by == spec.1) && t.period == spec.2
        })
    }

    fn cell(&self, t: usize, key: &(String, String, String), col: &str) -> Option<At> {
        let row = *self.rows[t].get(key)?;
        Some((t, row, column(&self.tables[t].table, col)?))
    }
}

/// Every linear relation between the family's count cells.
fn relations(
    tables: &[SourcedTable],
    groups: &[(String, Vec<String>)],
    source: Source,
) -> Vec<Relation> {
    let family = Family {
        tables,
        rows: tables
            .iter()
            .map(|t| {
                t.table
                    .rows
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (row_key(t, r), i))
                    .collect()
            })
            .collect(),
    };
    let mut out = Vec::new();
    for (ti, t) in tables.iter().enumerate() {
        let counts = count_columns(t.name);
        // A group's row is the sum of its codes' rows.
        if t.by == By::Group && t.name != TableName::Care {
            if let Some(ci) = family.find((t.name, By::Code, t.period)) {
                for (key, &ri) in &family.rows[ti] {
                    let Some((_, codes)) = groups.iter().find(|(g, _)| *g == key.1) else {
                        continue;
                    };
                    for &col in counts {
                        let Some(j) = column(&t.table, col) else {
                            continue;
                        };
                        let mut r = vec![((ti, ri, j), 1)];
                        for code in codes {
                            let k = (key.0.clone(), code.clone(), key.2.clone());
                            if let Some(at) = family.cell(ci, &k, col) {
                                r.push((at, -1));
                            }
                        }
                        out.push(r);
                    }
                }
            }
        }
        for (key, &ri) in &family.rows[ti] {
            let at = |col: &str| column(&t.table, col).map(|j| (ti, ri, j));
            match t.name {
                // All victims = the sum over victim genders.
                TableName::Clearance if key.2 == "ALL" => {
                    for col in ["handled", "cleared"] {
                        let mut r = vec![(at(col).expect("clearance column"), 1)];
                        for g in ["FEMALE", "MALE", "UNKNOWN"] {
                            let k = (key.0.clone(), key.1.clone(), g.to_string());
                            if let Some(a) = family.cell(ti, &k, col) {
                                r.push((a, -1));
                            }
                        }
                        out.push(r);
                    }
                }
                TableName::Progress => {
                    let (rep, in_case, dec, open) =
                        (at("reported"), at("in_case"), at("decided"), at("open"));
                    if let (Some(rep), Some(in_case), Some(dec), Some(open)) =
                        (rep, in_case, dec, open)
                    {
                        out.push(vec![(in_case, 1), (rep, -1)]);
                        out.push(vec![(open, 1), (rep, -1), (dec, 1)]);
                    }
                }
                TableName::Care if source == Source::Live => {
                    // continuing = previous continuing + started - completed - discontinued.
                    let mut r = vec![
                        (at("programmes_continuing").expect("care column"), 1),
                        (at("programmes_started").expect("care column"), -1),
                        (at("programmes_completed").expect("care column"), 1),
                        (at("programmes_discontinued").expect("care column"), 1),
                    ];
                    if let Some(prev) = previous_period(&key.0) {
                        let k = (prev, String::new(), String::new());
                        if let Some(a) = family.cell(ti, &k, "programmes_continuing") {
                            r.push((a, -1));
                        }
                    }
                    out.push(r);
                }
                _ => {}
            }
            // A year is the sum of its quarters.
            if source == Source::Live && t.period == PeriodKind::Year {
                if let Some(qi) = family.find((t.name, t.by, PeriodKind::Quarter)) {
                    for &col in counts {
                        if t.name == TableName::CaseFlow && col == "referred" {
                            continue;
                        }
                        let Some(a) = at(col) else { continue };
                        let mut r = vec![(a, 1)];
                        let quarters: Vec<u8> = if col == "programmes_continuing" {
                            vec![4]
                        } else {
                            vec![1, 2, 3, 4]
                        };
                        for q in quarters {
                            let k = (format!("{}-Q{q}", key.0), key.1.clone(), key.2.clone());
                            if let Some(b) = family.cell(qi, &k, col) {
                                r.push((b, -1));
                            }
                        }
                        out.push(r);
                    }
                }
            }
        }
    }
    out
}

fn int(cell: &Cell) -> Option<i64> {
    match cell {
        Cell::Int(n) => Some(*n),
        _ => None,
    }
}

/// Hides the family's small counts, the counts that would give them away and the rates and
/// medians over hidden counts, in place. `groups` are the catalogue's groups with their codes'
/// four-digit texts. A threshold below 2 hides nothing.
pub fn suppress(
    tables: &mut [SourcedTable],
    groups: &[(String, Vec<String>)],
    source: Source,
    below: u32,
) -> Suppressed {
    let mut done = Suppressed::default();
    if below < 2 {
        return done;
    }
    let limit = i64::from(below);
    let relations = relations(tables, groups, source);
    // Which relations each cell is in.
    let mut of_cell: HashMap<At, Vec<usize>> = HashMap::new();
    for (i, r) in relations.iter().enumerate() {
        for &(at, _) in r {
            of_cell.entry(at).or_default().push(i);
        }
    }
    let value = |at: At| -> i64 { int(&tables[at.0].table.rows[at.1][at.2]).unwrap_or(0) };
    // Hidden cells: true for primary, false for complementary.
    let mut hidden: BTreeMap<At, bool> = BTreeMap::new();
    for (ti, t) in tables.iter().enumerate() {
        for &col in count_columns(t.name) {
            let Some(j) = column(&t.table, col) else {
                continue;
            };
            for (ri, row) in t.table.rows.iter().enumerate() {
                if let Some(n) = int(&row[j]) {
                    if (1..limit).contains(&n) {
                        hidden.insert((ti, ri, j), true);
                    }
                }
            }
        }
    }
    // The cell to hide with relation `r`'s hidden ones: its smallest shown non-zero count.
    let partner = |r: &Relation, hidden: &BTreeMap<At, bool>| -> Option<At> {
        r.iter()
            .map(|&(at, _)| at)
            .filter(|at| !hidden.contains_key(at) && value(*at) != 0)
            .min_by_key(|&at| (value(at), at))
    };
    let hide_partner = |r: &Relation, hidden: &mut BTreeMap<At, bool>| -> bool {
        match partner(r, hidden) {
            Some(at) => {
                hidden.insert(at, false);
                true
            }
            None => false,
        }
    };
    loop {
        // No relation with exactly one hidden cell (which it would give away).
        let mut changed = true;
        while changed {
            changed = false;
            for r in &relations {
                let n = r.iter().filter(|(at, _)| hidden.contains_key(at)).count();
                if n == 1 && hide_partner(r, &mut hidden) {
                    changed = true;
                }
            }
        }
        // Then exactly: a hidden cell that combinations of relations still pin down.
        // A determined cell's own relations may have no shown cell left: then the nearest
        // relations reached through other hidden cells give the partner.
        let determined = determined(&relations, &hidden);
        if determined.is_empty() {
            break;
        }
        let mut more = false;
        for at in determined {
            if hidden_neighbour(at, &relations, &of_cell, &hidden, &partner)
                .is_some_and(|p| hidden.insert(p, false).is_none())
            {
                more = true;
            }
        }
        if !more {
            break;
        }
    }
    for (&(ti, ri, j), &primary) in &hidden {
        tables[ti].table.rows[ri][j] = Cell::Text(if primary {
            done.primary += 1;
            primary_mark(below)
        } else {
            done.complementary += 1;
            COMPLEMENTARY_MARK.to_string()
        });
    }
    for t in tables.iter_mut() {
        for &(col, over) in derived_columns(t.name) {
            let Some(j) = column(&t.table, col) else {
                continue;
            };
            let over: Vec<usize> = over.iter().filter_map(|c| column(&t.table, c)).collect();
            for row in &mut t.table.rows {
                if over.iter().any(|&k| is_suppressed(&row[k])) && !is_suppressed(&row[j]) {
                    row[j] = Cell::Text(COMPLEMENTARY_MARK.to_string());
                    done.derived += 1;
                }
            }
        }
    }
    done
}

/// The partner to hide for a determined cell `at`: the smallest shown non-zero count of the
/// relations nearest to it, going out from `at` through relations and the hidden cells in them.
fn hidden_neighbour(
    at: At,
    relations: &[Relation],
    of_cell: &HashMap<At, Vec<usize>>,
    hidden: &BTreeMap<At, bool>,
    partner: &Partner<'_>,
) -> Option<At> {
    let mut seen_cells: std::collections::HashSet<At> = [at].into_iter().collect();
    let mut seen_relations = std::collections::HashSet::new();
    let mut layer = vec![at];
    while !layer.is_empty() {
        let mut next = Vec::new();
        let mut found: Option<At> = None;
        for cell in &layer {
            for &ri in of_cell.get(cell).into_iter().flatten() {
                if !seen_relations.insert(ri) {
                    continue;
                }
                if let Some(p) = partner(&relations[ri], hidden) {
                    found = Some(found.map_or(p, |f: At| f.min(p)));
                }
                for &(c, _) in &relations[ri] {
                    if hidden.contains_key(&c) && seen_cells.insert(c) {
                        next.push(c);
                    }
                }
            }
        }
        if found.is_some() {
            return found;
        }
        layer = next;
    }
    None
}

const P: u64 = (1 << 61) - 1;

fn mul(a: u64, b: u64) -> u64 {
    ((u128::from(a) * u128::from(b)) % u128::from(P)) as u64
}

fn pow(mut a: u64, mut e: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mul(r, a);
        }
        a = mul(a, a);
        e >>= 1;
    }
    r
}

fn residue(c: i64) -> u64 {
    c.rem_euclid(P as i64) as u64
}

/// The hidden cells that the relations determine from the shown cells: reduces the relations'
/// hidden parts to row echelon form and returns each cell that some reduced row holds alone.
fn determined(relations: &[Relation], hidden: &BTreeMap<At, bool>) -> Vec<At> {
    let index: HashMap<At, usize> = hidden.keys().enumerate().map(|(i, &a)| (a, i)).collect();
    let cells: Vec<At> = hidden.keys().copied().collect();
    // Sparse rows over the hidden cells.
    let mut rows: Vec<BTreeMap<usize, u64>> = relations
        .iter()
        .map(|r| {
            let mut row = BTreeMap::new();
            for &(at, c) in r {
                if let Some(&i) = index.get(&at) {
                    let e = row.entry(i).or_insert(0u64);
                    *e = (*e + residue(c)) % P;
                }
            }
            row.retain(|_, v| *v != 0);
            row
        })
        .filter(|row| !row.is_empty())
        .collect();
    // Gauss–Jordan elimination, pivoting on each column in turn.
    let mut pivots: Vec<BTreeMap<usize, u64>> = Vec::new();
    let mut by_column: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        for &c in row.keys() {
            by_column.entry(c).or_default().push(i);
        }
    }
    let mut used = vec![false; rows.len()];
    for col in 0..cells.len() {
        let Some(&p) = by_column
            .get(&col)
            .into_iter()
            .flatten()
            .find(|&&i| !used[i] && rows[i].get(&col).is_some_and(|v| *v != 0))
        else {
            continue;
        };
        used[p] = true;
        let inv = pow(rows[p][&col], P - 2);
        let pivot: BTreeMap<usize, u64> = rows[p].iter().map(|(&c, &v)| (c, mul(v, inv))).collect();
        rows[p] = pivot.clone();
        let holders: Vec<usize> = by_column
            .get(&col)
            .into_iter()
            .flatten()
            .copied()
            .filter(|&i| i != p)
            .collect();
        for i in holders {
            let Some(&f) = rows[i].get(&col) else {
                continue;
            };
            if f == 0 {
                continue;
            }
            for (&c, &v) in &pivot {
                let e = rows[i].entry(c).or_insert(0);
                *e = (*e + P - mul(f, v)) % P;
                if *e != 0 {
                    let list = by_column.entry(c).or_default();
                    if !list.contains(&i) {
                        list.push(i);
                    }
                }
            }
            rows[i].retain(|_, v| *v != 0);
        }
        pivots.push(pivot);
    }
    let _ = pivots;
    rows.iter()
        .filter(|row| row.len() == 1)
        .map(|row| cells[*row.keys().next().expect("one cell")])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(rows: &[(&str, &str, i64, i64, i64)], by: By) -> SourcedTable {
        SourcedTable {
            name: TableName::CaseFlow,
            by,
            period: PeriodKind::Year,
            table: Table {
                name: "case-flow".into(),
                columns: vec!["period", by.name(), "reported", "cases", "referred"],
                rows: rows
                    .iter()
                    .map(|&(p, k, a, b, c)| {
                        vec![
                            Cell::Text(p.into()),
                            Cell::Text(k.into()),
                            Cell::Int(a),
                            Cell::Int(b),
                            Cell::Int(c),
                        ]
                    })
                    .collect(),
            },
        }
    }

    #[test]
    fn a_small_code_under_a_shown_group_takes_a_partner_with_it() {
        let mut tables = vec![
            flow(
                &[("2020", "0001", 3, 10, 0), ("2020", "0002", 40, 30, 20)],
                By::Code,
            ),
            flow(&[("2020", "G", 43, 40, 20)], By::Group),
        ];
        let groups = vec![("G".to_string(), vec!["0001".into(), "0002".into()])];
        let done = suppress(&mut tables, &groups, Source::Live, 5);
        assert_eq!(done.primary, 1);
        let code = &tables[0].table.rows;
        assert_eq!(code[0][2], Cell::Text("<5".into()));
        // 43 - 40 would give 3 away: 40 (or the group's 43) is hidden too.
        assert!(is_suppressed(&code[1][2]) || is_suppressed(&tables[1].table.rows[0][2]));
        assert_eq!(code[0][3], Cell::Int(10));
        assert_eq!(code[0][4], Cell::Int(0), "zero is never hidden");
    }

    #[test]
    fn determined_finds_a_cell_pinned_by_two_relations() {
        // x + y = shown, x - y = shown: both are pinned although each relation hides two.
        let (x, y) = ((0, 0, 0), (0, 0, 1));
        let relations = vec![
            vec![(x, 1), (y, 1), ((0, 0, 2), 1)],
            vec![(x, 1), (y, -1), ((0, 0, 3), 1)],
        ];
        let hidden: BTreeMap<At, bool> = [(x, true), (y, true)].into_iter().collect();
        let mut got = determined(&relations, &hidden);
        got.sort();
        assert_eq!(got, vec![x, y]);
        let only_sum = vec![relations[0].clone()];
        assert!(determined(&only_sum, &hidden).is_empty());
    }

    #[test]
    fn previous_periods() {
        assert_eq!(previous_period("2020").as_deref(), Some("2019"));
        assert_eq!(previous_period("2020-Q1").as_deref(), Some("2019-Q4"));
        assert_eq!(previous_period("2020-Q3").as_deref(), Some("2020-Q2"));
    }
}
