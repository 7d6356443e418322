//! Rules that need no stream state: dates, catalogue codes, subject/body pairing and personal
//! identity numbers in free text. The lifecycle rules live in [`crate::lifecycle`].

use crate::{personnummer, Body, Catalogue, Date, Error, Event, Subject};

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
                    "unknown crime code: not in the crime-code catalogue in force (version {})",
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
            for (i, id) in crime_ids.iter().enumerate() {
                if crime_ids[..i].contains(id) {
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

/// Free text must be short and must not hold a personal identity or coordination number.
fn free_text(field: &str, text: &str) -> Result<(), Error> {
    if text.len() > MAX_TEXT_LEN {
        return Err(Error::invalid(
            field,
            format!("{}…", text.chars().take(40).collect::<String>()),
            format!("longer than {MAX_TEXT_LEN} bytes"),
        ));
    }
    if let Some(found) = personnummer::find(text) {
        // The number itself is never echoed back: errors end up in logs.
        let masked: String = found
            .chars()
            .map(|c| if c.is_ascii_digit() { '#' } else { c })
            .collect();
        return Err(Error::invalid(
            field,
            masked,
            "holds a Swedish personal identity or coordination number; events carry pseudonymous UUIDs only",
        ));
    }
    Ok(())
}
