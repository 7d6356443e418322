//! The report's Swedish words: column labels, table titles and victim genders, in the terms of
//! Länsstyrelsen Stockholm's *Regional lägesrapport* (anmälda brott, inkomna ärenden, ärenden
//! redovisade till åklagare, handlagda brott, personuppklaringsprocent, kontraktsvård).

use gryning_projections::{By, PeriodKind, TableName};

use crate::SourcedTable;

/// The Swedish label of a table's column.
pub fn column(table: TableName, column: &str) -> &'static str {
    match (table, column) {
        (_, "period") => "Period",
        (_, "code") => "Brottskod",
        (_, "group") => "Brottskodsgrupp",
        (TableName::CaseFlow, "reported") => "Anmälda brott",
        (TableName::CaseFlow, "cases") => "Inkomna ärenden",
        (TableName::CaseFlow, "referred") => "Ärenden redovisade till åklagare",
        (_, "victim_gender") => "Brottsoffrets kön",
        (_, "handled") => "Handlagda brott",
        (TableName::Clearance | TableName::RegionComparison, "cleared") => "Personuppklarade brott",
        (_, "region") => "Polisregion",
        (_, "median_percent") => "Medianen av regionernas personuppklaringsprocent",
        (_, "regions_in_median") => "Regioner i medianen",
        (_, "verdict") => "Bedömning",
        (_, "percent") => "Personuppklaringsprocent",
        (_, "contract_care_proposed") => "Föreslagen kontraktsvård",
        (_, "programmes_started") => "Påbörjade behandlingsprogram",
        (_, "programmes_completed") => "Genomförda behandlingsprogram",
        (_, "programmes_discontinued") => "Avbrutna behandlingsprogram",
        (_, "programmes_continuing") => "Pågående vid periodens slut",
        (TableName::Progress, "reported") => "Anmälda brott",
        (_, "in_case") => "I ett ärende",
        (TableName::Progress, "referred") => "Redovisade till åklagare",
        (_, "decided") => "Beslutade",
        (TableName::Progress, "cleared") => "Personuppklarade",
        (_, "open") => "Öppna (balans)",
        (_, "median_days_to_referral") => "Mediantid till redovisning (dagar)",
        (_, "median_days_to_decision") => "Mediantid från redovisning till beslut (dagar)",
        _ => "Värde",
    }
}

/// The Swedish word for a victim gender as the tables name it.
pub fn gender(name: &str) -> &'static str {
    match name {
        "ALL" => "Alla",
        "FEMALE" => "Kvinnor",
        "MALE" => "Män",
        "UNKNOWN" => "Okänt kön",
        _ => "Okänt",
    }
}

/// The Swedish words for a verdict of `region-comparison` (`above`, `in line`, `below`); a
/// suppression mark or anything else as it is.
pub fn verdict(name: &str) -> &str {
    match name {
        "above" => "över medianen",
        "in line" => "i linje med medianen",
        "below" => "under medianen",
        other => other,
    }
}

/// A table's Swedish title, e.g. "Ärendeflöde per brottskodsgrupp och år".
pub fn title(t: &SourcedTable) -> String {
    let what = match t.name {
        TableName::CaseFlow => "Ärendeflöde",
        TableName::Clearance => "Personuppklaring",
        TableName::Care => "Kriminalvårdens kontraktsvård och behandlingsprogram",
        TableName::Progress => "Kedjan per brott",
        TableName::SocialServices => "Socialtjänstens arbete",
        TableName::RegionComparison => "Polisregionerna mot medianen",
    };
    let by = match (t.name, t.by) {
        (TableName::Care | TableName::SocialServices, _) => "",
        (_, By::Code) => " per brottskod",
        (_, By::Group) => " per brottskodsgrupp",
    };
    let period = match t.period {
        PeriodKind::Year => "år",
        PeriodKind::Quarter => "kvartal",
    };
    if matches!(t.name, TableName::Care | TableName::SocialServices) {
        format!("{what}, per {period}")
    } else {
        format!("{what}{by} och {period}")
    }
}

/// A sheet name for a table (at most 31 characters, none of `[]:*?/\`), unique per key.
pub fn sheet(t: &SourcedTable, suffix: &str) -> String {
    let what = match t.name {
        TableName::CaseFlow => "Ärendeflöde",
        TableName::Clearance => "Personuppklaring",
        TableName::Care => "Kriminalvården",
        TableName::Progress => "Kedjan",
        TableName::SocialServices => "Socialtjänsten",
        TableName::RegionComparison => "Regionerna",
    };
    let by = match (t.name, t.by) {
        (TableName::Care | TableName::SocialServices, _) => "",
        (_, By::Code) => " kod",
        (_, By::Group) => " grupp",
    };
    let period = match t.period {
        PeriodKind::Year => " år",
        PeriodKind::Quarter => " kvartal",
    };
    let mut name = format!("{what}{by}{period}{suffix}");
    while name.chars().count() > 31 {
        name.pop();
    }
    name
}
