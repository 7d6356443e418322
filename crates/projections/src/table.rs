//! A computed table and its three renderings (JSON, CSV, aligned text), plus the names of the
//! tables and of their `--by` and `--period` options.

use std::fmt::Write as _;

/// Which table to compute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableName {
    CaseFlow,
    Clearance,
    Care,
    Progress,
    /// Social services' work: child-welfare notifications and support granted.
    SocialServices,
    /// Each region's clearance rate against the median of the regions (`comparison.rs`).
    RegionComparison,
}

impl TableName {
    /// Every table; a new one goes last, so a publication's tables keep their order.
    pub const ALL: [TableName; 6] = [
        TableName::CaseFlow,
        TableName::Clearance,
        TableName::Care,
        TableName::Progress,
        TableName::SocialServices,
        TableName::RegionComparison,
    ];

    /// The name used on the command line and in the API: `case-flow`, `clearance`, `care`,
    /// `progress`, `social-services`, `region-comparison`.
    pub fn name(self) -> &'static str {
        match self {
            TableName::CaseFlow => "case-flow",
            TableName::Clearance => "clearance",
            TableName::Care => "care",
            TableName::Progress => "progress",
            TableName::RegionComparison => "region-comparison",
            TableName::SocialServices => "social-services",
        }
    }

    /// Whether the table has rows per crime code or group (`--by`); `care` and
    /// `social-services` have neither.
    pub fn has_codes(self) -> bool {
        !matches!(self, TableName::Care | TableName::SocialServices)
    }

    /// The names of every table, for messages: `case-flow, clearance, …`.
    pub fn list() -> String {
        TableName::ALL.map(TableName::name).join(", ")
    }

    pub fn parse(text: &str) -> Option<TableName> {
        TableName::ALL.into_iter().find(|t| t.name() == text)
    }

    /// The names of every table, for messages: `case-flow, clearance, …`.
    pub fn names() -> String {
        TableName::ALL.map(TableName::name).join(", ")
    }
}

/// Rows per crime code, or per catalogue group (summing its member codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum By {
    Code,
    Group,
}

impl By {
    pub const ALL: [By; 2] = [By::Code, By::Group];

    pub fn name(self) -> &'static str {
        match self {
            By::Code => "code",
            By::Group => "group",
        }
    }

    pub fn parse(text: &str) -> Option<By> {
        By::ALL.into_iter().find(|b| b.name() == text)
    }
}

/// Rows per calendar year or per calendar quarter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeriodKind {
    Year,
    Quarter,
}

impl PeriodKind {
    pub const ALL: [PeriodKind; 2] = [PeriodKind::Year, PeriodKind::Quarter];

    pub fn name(self) -> &'static str {
        match self {
            PeriodKind::Year => "year",
            PeriodKind::Quarter => "quarter",
        }
    }

    pub fn parse(text: &str) -> Option<PeriodKind> {
        PeriodKind::ALL.into_iter().find(|p| p.name() == text)
    }
}

/// One value of a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Int(i64),
    Float(f64),
    Null,
}

/// A computed table: named columns and rows of cells in column order.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    /// A JSON array of row objects keyed by column name, one row per line; numbers are JSON
    /// numbers, the period and the code are strings, a missing median or percent is `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::from("[");
        for (i, row) in self.rows.iter().enumerate() {
            out.push_str(if i == 0 { "\n  {" } else { ",\n  {" });
            for (j, (column, cell)) in self.columns.iter().zip(row).enumerate() {
                if j > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::from(*column).to_string());
                out.push(':');
                match cell {
                    Cell::Text(text) => {
                        out.push_str(&serde_json::Value::from(text.as_str()).to_string())
                    }
                    Cell::Int(n) => {
                        let _ = write!(out, "{n}");
                    }
                    // serde_json writes the shortest text that reads back as the same f64.
                    Cell::Float(x) => out.push_str(&serde_json::Value::from(*x).to_string()),
                    Cell::Null => out.push_str("null"),
                }
            }
            out.push('}');
        }
        out.push_str(if self.rows.is_empty() { "]\n" } else { "\n]\n" });
        out
    }

    /// CSV after RFC 4180: a header line, CRLF line ends, and a field quoted (quotes doubled)
    /// when it holds a comma, a quote or a line break. A null is an empty field.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, fields: &mut dyn Iterator<Item = String>| {
            for (i, field) in fields.enumerate() {
                if i > 0 {
                    out.push(',');
                }
                if field.contains([',', '"', '\r', '\n']) {
                    out.push('"');
                    out.push_str(&field.replace('"', "\"\""));
                    out.push('"');
                } else {
                    out.push_str(&field);
                }
            }
            out.push_str("\r\n");
        };
        line(&mut out, &mut self.columns.iter().map(|c| c.to_string()));
        for row in &self.rows {
            line(
                &mut out,
                &mut row.iter().map(|cell| match cell {
                    Cell::Text(text) => text.clone(),
                    Cell::Int(n) => n.to_string(),
                    Cell::Float(x) => x.to_string(),
                    Cell::Null => String::new(),
                }),
            );
        }
        out
    }

    /// Aligned columns for people: numbers right-aligned, text left-aligned, floats (percents,
    /// medians) with one decimal, a missing value as `-`.
    pub fn to_text(&self) -> String {
        let texts: Vec<Vec<(String, bool)>> = self
            .rows
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| match cell {
                        Cell::Text(text) => (text.clone(), false),
                        Cell::Int(n) => (n.to_string(), true),
                        Cell::Float(x) => (format!("{x:.1}"), true),
                        Cell::Null => ("-".to_string(), true),
                    })
                    .collect()
            })
            .collect();
        // A column is numeric when its first row's value is: headers follow their values.
        let numeric: Vec<bool> = (0..self.columns.len())
            .map(|j| {
                texts
                    .first()
                    .is_some_and(|row| row.get(j).is_some_and(|c| c.1))
            })
            .collect();
        let mut widths: Vec<usize> = self.columns.iter().map(|c| c.chars().count()).collect();
        for row in &texts {
            for (j, (text, _)) in row.iter().enumerate() {
                widths[j] = widths[j].max(text.chars().count());
            }
        }
        let mut out = String::new();
        let mut line = |cells: &mut dyn Iterator<Item = (&str, bool)>| {
            let mut text = String::new();
            for (j, (cell, right)) in cells.enumerate() {
                if j > 0 {
                    text.push_str("  ");
                }
                let pad = widths[j].saturating_sub(cell.chars().count());
                if right {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&mut self.columns.iter().zip(&numeric).map(|(c, &n)| (*c, n)));
        for row in &texts {
            line(&mut row.iter().map(|(t, n)| (t.as_str(), *n)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        Table {
            name: "clearance".into(),
            columns: vec!["period", "group", "handled", "percent"],
            rows: vec![
                vec![
                    Cell::Text("2020".into()),
                    Cell::Text("Brott i nära relation".into()),
                    Cell::Int(3),
                    Cell::Float(100.0 / 3.0),
                ],
                vec![
                    Cell::Text("2021".into()),
                    Cell::Text("a \"b\", c".into()),
                    Cell::Int(12),
                    Cell::Null,
                ],
            ],
        }
    }

    #[test]
    fn json_is_an_array_of_row_objects() {
        let value: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(value[0]["period"], "2020");
        assert_eq!(value[0]["handled"], 3);
        assert_eq!(value[0]["percent"].as_f64(), Some(100.0 / 3.0));
        assert!(value[1]["percent"].is_null());
        let empty = Table {
            rows: vec![],
            ..sample()
        };
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&empty.to_json()).unwrap(),
            serde_json::json!([])
        );
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        let csv = sample().to_csv();
        assert_eq!(
            csv,
            "period,group,handled,percent\r\n2020,Brott i nära relation,3,33.333333333333336\r\n2021,\"a \"\"b\"\", c\",12,\r\n"
        );
    }

    #[test]
    fn text_aligns_numbers_right_and_text_left() {
        let text = sample().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "period  group                  handled  percent");
        assert_eq!(lines[1], "2020    Brott i nära relation        3     33.3");
        assert_eq!(
            lines[2],
            "2021    a \"b\", c                    12        -"
        );
    }

    #[test]
    fn names_round_trip() {
        for t in TableName::ALL {
            assert_eq!(TableName::parse(t.name()), Some(t));
        }
        assert_eq!(By::parse("group"), Some(By::Group));
        assert_eq!(PeriodKind::parse("quarter"), Some(PeriodKind::Quarter));
        assert_eq!(TableName::parse("nope"), None);
    }
}
