//! `gryning catalog --version V` and `gryning catalog diff V1 V2`: the catalogue's versions,
//! as aligned text or JSON. The listing of one version's codes and groups is
//! `demo::render_catalogue`, shared with plain `gryning catalog`.

use anyhow::bail;
use gryning_domain::catalogue::{Diff, Target};
use gryning_domain::{Catalogue, CrimeCode};
use gryning_projections::{Cell, Table};

/// The catalogue as seen through one version (`recorded`, or absent: the one in force).
pub fn version(catalogue: &Catalogue, name: Option<&str>) -> anyhow::Result<Catalogue> {
    let Some(name) = name else {
        return Ok(catalogue.clone());
    };
    match catalogue.under(name) {
        Ok(view) => Ok(view),
        Err(e) => bail!("--version: {e}"),
    }
}

/// The lines about the versions that `render_catalogue` prints under its heading.
pub fn versions_text(catalogue: &Catalogue) -> String {
    let shown = catalogue.version();
    let mut out = String::new();
    let list: Vec<String> = catalogue
        .versions()
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let mut s = v.name().to_string();
            let mut about = Vec::new();
            if let Some(d) = v.effective() {
                about.push(format!("from {d}"));
            }
            if i + 1 == catalogue.versions().len() {
                about.push("in force".to_string());
            }
            if !about.is_empty() {
                s.push_str(&format!(" ({})", about.join(", ")));
            }
            s
        })
        .collect();
    out.push_str(&format!("versions: {}\n", list.join(", ")));
    if let Some(v) = catalogue.version_named(shown) {
        if let Some(note) = v.note() {
            out.push_str(&format!("note: {note}\n"));
        }
        let map: Vec<_> = v.map().collect();
        let back: Vec<_> = v.back().collect();
        if !map.is_empty() || !back.is_empty() {
            let rows = map
                .iter()
                .map(|(c, t)| ("map", *c, *t))
                .chain(back.iter().map(|(c, t)| ("back", *c, *t)))
                .map(|(kind, c, t)| {
                    vec![
                        Cell::Text(kind.to_string()),
                        Cell::Text(c.to_string()),
                        Cell::Text(t.describe()),
                    ]
                })
                .collect();
            out.push_str("\nMapping from the version before (map: its codes into this one; back: this one's new codes into it)\n\n");
            out.push_str(
                &Table {
                    name: "mapping".into(),
                    columns: vec!["direction", "code", "to"],
                    rows,
                }
                .to_text(),
            );
        }
    }
    out
}

pub fn versions_json(catalogue: &Catalogue) -> serde_json::Value {
    let shown = catalogue.version_named(catalogue.version());
    let entry = |kind: &str, c: CrimeCode, t: Target| serde_json::json!({"direction": kind, "code": c.to_string(), "to": target_json(t)});
    serde_json::json!({
        "versions": catalogue.versions().iter().map(|v| serde_json::json!({
            "name": v.name(),
            "effective": v.effective().map(|d| d.to_string()),
        })).collect::<Vec<_>>(),
        "in_force": catalogue.versions().last().map(|v| v.name()),
        "effective": shown.and_then(|v| v.effective()).map(|d| d.to_string()),
        "note": shown.and_then(|v| v.note()),
        "mapping": shown.map(|v| v.map().map(|(c, t)| entry("map", c, t))
            .chain(v.back().map(|(c, t)| entry("back", c, t))).collect::<Vec<_>>()).unwrap_or_default(),
    })
}

fn target_json(t: Target) -> serde_json::Value {
    match t {
        Target::Code(c) => serde_json::json!({"code": c.to_string()}),
        Target::ByVictimGender([f, m, u]) => serde_json::json!({
            "by": "victim_gender",
            "FEMALE": f.to_string(),
            "MALE": m.to_string(),
            "UNKNOWN": u.to_string(),
        }),
    }
}

fn codes_text(codes: &[CrimeCode]) -> String {
    if codes.is_empty() {
        return "-".to_string();
    }
    codes
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `gryning catalog diff FROM TO`.
pub fn diff(catalogue: &Catalogue, from: &str, to: &str, json: bool) -> anyhow::Result<String> {
    let d = match catalogue.diff(from, to) {
        Ok(d) => d,
        Err(e) => bail!("catalog diff: {e}"),
    };
    Ok(if json {
        serde_json::to_string_pretty(&diff_json(catalogue, &d)).expect("json") + "\n"
    } else {
        diff_text(catalogue, &d)
    })
}

fn text_of(catalogue: &Catalogue, code: CrimeCode) -> String {
    catalogue.text(code).unwrap_or("").to_string()
}

fn diff_json(catalogue: &Catalogue, d: &Diff) -> serde_json::Value {
    let code =
        |c: &CrimeCode| serde_json::json!({"code": c.to_string(), "text": text_of(catalogue, *c)});
    serde_json::json!({
        "from": d.from,
        "to": d.to,
        "added": d.added.iter().map(code).collect::<Vec<_>>(),
        "removed": d.removed.iter().map(code).collect::<Vec<_>>(),
        "mapped": d.mapped.iter().map(|(c, t)| serde_json::json!({
            "code": c.to_string(), "to": target_json(*t),
        })).collect::<Vec<_>>(),
        "groups": d.groups.iter().map(|g| serde_json::json!({
            "name": g.name,
            "in_from": g.in_from,
            "in_to": g.in_to,
            "added": g.added.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            "removed": g.removed.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn diff_text(catalogue: &Catalogue, d: &Diff) -> String {
    let mut out = format!(
        "Crime-code catalogue, version {} against {}\n\n",
        d.to, d.from
    );
    let list = |title: &str, codes: &[CrimeCode], out: &mut String| {
        out.push_str(&format!("{title} ({}):\n", codes.len()));
        if codes.is_empty() {
            out.push_str("  none\n\n");
            return;
        }
        let rows = codes
            .iter()
            .map(|c| {
                vec![
                    Cell::Text(c.to_string()),
                    Cell::Text(text_of(catalogue, *c)),
                ]
            })
            .collect();
        out.push_str(
            &Table {
                name: "codes".into(),
                columns: vec!["code", "text"],
                rows,
            }
            .to_text(),
        );
        out.push('\n');
    };
    list(&format!("codes added in {}", d.to), &d.added, &mut out);
    list(&format!("codes removed in {}", d.to), &d.removed, &mut out);
    out.push_str(&format!(
        "codes of {} counted under other codes in {} ({}):\n",
        d.from,
        d.to,
        d.mapped.len()
    ));
    if d.mapped.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows = d
            .mapped
            .iter()
            .map(|(c, t)| vec![Cell::Text(c.to_string()), Cell::Text(t.describe())])
            .collect();
        out.push_str(
            &Table {
                name: "mapped".into(),
                columns: vec!["code", "to"],
                rows,
            }
            .to_text(),
        );
    }
    out.push_str(&format!("\ngroups changed ({}):\n", d.groups.len()));
    if d.groups.is_empty() {
        out.push_str("  none\n");
    } else {
        let rows = d
            .groups
            .iter()
            .map(|g| {
                let name = match (g.in_from, g.in_to) {
                    (false, true) => format!("{} (new)", g.name),
                    (true, false) => format!("{} (gone)", g.name),
                    _ => g.name.clone(),
                };
                vec![
                    Cell::Text(name),
                    Cell::Text(codes_text(&g.added)),
                    Cell::Text(codes_text(&g.removed)),
                ]
            })
            .collect();
        out.push_str(
            &Table {
                name: "groups".into(),
                columns: vec!["group", "added", "removed"],
                rows,
            }
            .to_text(),
        );
    }
    out
}
