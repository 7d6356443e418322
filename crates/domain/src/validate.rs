//! Rules that need no stream state: dates, catalogue codes, subject/body pairing and personal
//! identity numbers in free text. The lifecycle rules live in [`crate::lifecycle`].

use crate::{
    personnummer, Body, Catalogue, Date, Error, Event, Publication, PublishedCell, Quarter, Subject,
};

/// Longest free-text field accepted, in bytes.
pub const MAX_TEXT_LEN: usize = 200;

/// Checks everything about `event` that does not depend on its stream's history. `today` is the
/// date in Europe/Stockholm (`Date::in_stockholm`), whatever the machine's time zone.
pub fn check_fields(event: &Event, catalogue: &Catalogue, today: Date) -> Result<(), Error> {
    if event.occurred_on > today {
        return Err(Error::invalid(
            "occurred_on",
            event.occurred_on.to_string(),
            format!(
                "must not be after today in the {} calendar ({today})",
                crate::date::TIME_ZONE
            ),
        ));
    }
    match (event.subject, &event.body) {
        (_, Body::StreamsErased(e)) => {
            // Its text fields first, as free text: a personal identity number in one is
            // refused naming that field, and never echoed.
            check_erasure_texts(e)?;
            return Err(Error::invalid(
                "streams_erased",
                event.body.type_name(),
                "StreamsErased (stream retention) is recorded only by gryning retain, in the transaction that erases the streams; it is never accepted from a client",
            ));
        }
        (Subject::Retention, _) => {
            return Err(Error::invalid(
                "streams_erased",
                event.body.type_name(),
                "StreamsErased (stream retention) is recorded only by gryning retain, in the transaction that erases the streams; it is never accepted from a client",
            ))
        }
        (Subject::Publication(quarter), Body::TablesPublished(p)) => {
            return check_publication(quarter, p, event.occurred_on)
        }
        (Subject::Publication(quarter), body) => {
            return Err(Error::invalid(
                "publication_quarter",
                quarter.to_string(),
                format!(
                    "{} is a case or care event; only TablesPublished names a publication quarter",
                    body.type_name()
                ),
            ))
        }
        (Subject::Case(id) | Subject::Client(id), Body::TablesPublished(_)) => {
            return Err(Error::invalid(
                if matches!(event.subject, Subject::Case(_)) {
                    "case_id"
                } else {
                    "client_id"
                },
                id.to_string(),
                "TablesPublished names a publication_quarter, not a case or a client",
            ))
        }
        _ => {}
    }
    match (event.subject, event.body.is_care()) {
        (Subject::Case(id), true) => {
            return Err(Error::invalid(
                "case_id",
                id.to_string(),
                format!(
                    "{} is a care event and names a client_id, not a case_id",
                    event.body.type_name()
                ),
            ))
        }
        (Subject::Client(id), false) => {
            return Err(Error::invalid(
                "client_id",
                id.to_string(),
                format!(
                    "{} is a case event and names a case_id, not a client_id",
                    event.body.type_name()
                ),
            ))
        }
        _ => {}
    }
    let code_known = |field: &str, code| {
        if catalogue.contains(code) {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                code.to_string(),
                format!(
                    "unknown crime code: not in the crime-code catalogue, in any of its versions (in force: version {})",
                    catalogue.version()
                ),
            ))
        }
    };
    match &event.body {
        Body::CaseOpened {
            lead_crime_code,
            police_region,
            local_police_area,
        } => {
            code_known("case_opened.lead_crime_code", *lead_crime_code)?;
            free_text("case_opened.police_region", police_region)?;
            free_text("case_opened.local_police_area", local_police_area)?;
        }
        Body::CrimeReported { crime_code, .. } => {
            code_known("crime_reported.crime_code", *crime_code)?
        }
        Body::CrimeReclassified { crime_code, .. } => {
            code_known("crime_reclassified.crime_code", *crime_code)?
        }
        Body::CaseReclassified { lead_crime_code } => {
            code_known("case_reclassified.lead_crime_code", *lead_crime_code)?
        }
        Body::InvestigationClosed { crime_ids, .. } => {
            if crime_ids.is_empty() {
                return Err(Error::invalid(
                    "investigation_closed.crime_ids",
                    "[]",
                    "must name at least one crime",
                ));
            }
            // A set, not a scan of the ids before each: a request may name 100,000 crimes.
            let mut seen = std::collections::HashSet::with_capacity(crime_ids.len());
            for id in crime_ids {
                if !seen.insert(id) {
                    return Err(Error::invalid(
                        "investigation_closed.crime_ids",
                        id.to_string(),
                        "names the same crime twice",
                    ));
                }
            }
        }
        Body::TreatmentProgrammeStarted { programme } => {
            free_text("treatment_programme_started.programme", programme)?;
            if programme.trim().is_empty() {
                return Err(Error::invalid(
                    "treatment_programme_started.programme",
                    programme.clone(),
                    "must name the programme",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// A publication: its quarter is the stream's and had ended before the publication's date; its
/// texts and table cells are free text (counts only: no identity number can hide in one).
fn check_publication(quarter: Quarter, p: &Publication, occurred_on: Date) -> Result<(), Error> {
    if p.quarter != quarter {
        return Err(Error::invalid(
            "tables_published.quarter",
            p.quarter.to_string(),
            format!("must be the event's publication_quarter ({quarter})"),
        ));
    }
    if quarter.last_day() >= occurred_on {
        return Err(Error::invalid(
            "tables_published.quarter",
            quarter.to_string(),
            format!(
                "the quarter has not ended: it ends on {}, and a quarter is published from the day after (occurred_on {occurred_on})",
                quarter.last_day()
            ),
        ));
    }
    if p.revision == 0 {
        return Err(Error::invalid(
            "tables_published.revision",
            "0",
            "revisions count from 1",
        ));
    }
    let sha = &p.catalogue_sha256;
    if sha.len() != 64
        || !sha
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(Error::invalid(
            "tables_published.catalogue_sha256",
            sha.clone(),
            "must be 64 lowercase hex digits (SHA-256 of the catalogue file)",
        ));
    }
    for (field, text) in [
        ("tables_published.catalogue_version", &p.catalogue_version),
        ("tables_published.published_at", &p.published_at),
        ("tables_published.principal", &p.principal),
        ("tables_published.note", &p.note),
    ] {
        free_text(field, text)?;
    }
    for (i, table) in p.tables.iter().enumerate() {
        let at = format!("tables_published.tables[{i}]");
        for (name, text) in [
            ("name", &table.name),
            ("by", &table.by),
            ("period", &table.period),
        ] {
            free_text(&format!("{at}.{name}"), text)?;
        }
        for (c, column) in table.columns.iter().enumerate() {
            free_text(&format!("{at}.columns[{c}]"), column)?;
        }
        for (r, row) in table.rows.iter().enumerate() {
            if row.len() != table.columns.len() {
                return Err(Error::invalid(
                    format!("{at}.rows[{r}]"),
                    row.len().to_string(),
                    format!(
                        "has {} cells for {} columns",
                        row.len(),
                        table.columns.len()
                    ),
                ));
            }
            for (c, cell) in row.iter().enumerate() {
                if let PublishedCell::Text(text) = cell {
                    free_text(&format!("{at}.rows[{r}].cells[{c}].text"), text)?;
                }
            }
        }
    }
    Ok(())
}

/// Free text must be short, must hold no control characters (nor the invisible characters that
/// reorder text) and must not hold a personal identity or coordination number. `field` names
/// it in the error. Public for the request fields outside an event that are kept as free text
/// (a publication's note).
/// The text fields of an aggregate of erased streams, each as free text.
fn check_erasure_texts(e: &crate::event::Erasure) -> Result<(), Error> {
    free_text("streams_erased.erased_at", &e.erased_at)?;
    free_text("streams_erased.principal", &e.principal)?;
    free_text("streams_erased.older_than", &e.older_than)?;
    let lists: [(&str, Vec<&String>); 4] = [
        (
            "cases_opened",
            e.cases_opened.iter().map(|c| &c.police_region).collect(),
        ),
        (
            "referrals",
            e.referrals.iter().map(|c| &c.police_region).collect(),
        ),
        (
            "crimes",
            e.crimes.iter().map(|c| &c.police_region).collect(),
        ),
        (
            "contract_care",
            e.contract_care.iter().map(|c| &c.police_region).collect(),
        ),
    ];
    for (list, regions) in lists {
        for (i, region) in regions.into_iter().enumerate() {
            free_text(&format!("streams_erased.{list}[{i}].police_region"), region)?;
        }
    }
    for (i, n) in e.notifications.iter().enumerate() {
        free_text(
            &format!("streams_erased.notifications[{i}].local_police_area"),
            &n.local_police_area,
        )?;
    }
    Ok(())
}

pub fn free_text(field: &str, text: &str) -> Result<(), Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            field,
            text,
            format!("longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    if let Some((at, c)) = text.char_indices().find(|&(_, c)| is_forbidden_in_text(c)) {
        return Err(Error::invalid(
            field,
            text,
            format!(
                "holds the control character U+{:04X} at byte {at}; free text is printable characters only",
                c as u32
            ),
        ));
    }
    if personnummer::find(text).is_some() {
        // `Error::invalid` masks the number: errors end up in logs.
        return Err(Error::invalid(
            field,
            text,
            "holds a Swedish personal identity or coordination number; events carry pseudonymous UUIDs only",
        ));
    }
    Ok(())
}

/// C0 and C1 control characters, DEL, and the format characters that change how text is shown
/// without being seen (bidirectional overrides and isolates, zero-width characters, BOM).
fn is_forbidden_in_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
        )
}
