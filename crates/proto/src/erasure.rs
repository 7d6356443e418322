//! `StreamsErased` ↔ [`Erasure`]: the aggregate a run of `gryning retain` records. Every count
//! keeps the form of the table key it adds to (quarters as `YYYY-QN`, codes as four digits).

use gryning_domain::{
    CrimeOutcome, Date, ErasedCare, ErasedCases, ErasedContractCare, ErasedCrimes,
    ErasedNotifications, ErasedReferrals, ErasedSupport, Erasure, Error, SupportKind,
};

use crate::convert::{age_group, code, gender, pb_age_group, pb_gender, quarter, required_enum};
use crate::pb;

fn support_kind(field: &str, raw: i32) -> Result<SupportKind, Error> {
    required_enum(field, raw, |k: pb::SupportKind| match k {
        pb::SupportKind::Unspecified => None,
        pb::SupportKind::ProtectedHousing => Some(SupportKind::ProtectedHousing),
        pb::SupportKind::SupportTalks => Some(SupportKind::SupportTalks),
        pb::SupportKind::Other => Some(SupportKind::Other),
    })
}

fn pb_support_kind(kind: SupportKind) -> i32 {
    (match kind {
        SupportKind::ProtectedHousing => pb::SupportKind::ProtectedHousing,
        SupportKind::SupportTalks => pb::SupportKind::SupportTalks,
        SupportKind::Other => pb::SupportKind::Other,
    }) as i32
}

pub(crate) fn from_pb(e: &pb::StreamsErased) -> Result<Erasure, Error> {
    let f = "streams_erased";
    let cutoff = if e.cutoff.is_empty() {
        None
    } else {
        Some(Date::parse(&e.cutoff).ok_or_else(|| {
            Error::invalid(
                "streams_erased.cutoff",
                &e.cutoff,
                "must be a calendar date written YYYY-MM-DD",
            )
        })?)
    };
    let span = match (e.first_quarter.as_str(), e.last_quarter.as_str()) {
        ("", "") => None,
        (first, last) => Some((
            quarter("streams_erased.first_quarter", first)?,
            quarter("streams_erased.last_quarter", last)?,
        )),
    };
    let mut out = Erasure {
        run: e.run,
        erased_at: e.erased_at.clone(),
        principal: e.principal.clone(),
        older_than: e.older_than.clone(),
        cutoff,
        cases: e.cases,
        clients: e.clients,
        events: e.events,
        span,
        ..Erasure::default()
    };
    for (i, c) in e.cases_opened.iter().enumerate() {
        out.cases_opened.push(ErasedCases {
            quarter: quarter(&format!("{f}.cases_opened[{i}].quarter"), &c.quarter)?,
            police_region: c.police_region.clone(),
            lead_crime_code: code(
                &format!("{f}.cases_opened[{i}].lead_crime_code"),
                &c.lead_crime_code,
            )?,
            count: c.count,
        });
    }
    for (i, r) in e.referrals.iter().enumerate() {
        out.referrals.push(ErasedReferrals {
            quarter: quarter(&format!("{f}.referrals[{i}].quarter"), &r.quarter)?,
            police_region: r.police_region.clone(),
            lead_crime_code: code(
                &format!("{f}.referrals[{i}].lead_crime_code"),
                &r.lead_crime_code,
            )?,
            first_in_year: r.first_in_year,
            count: r.count,
        });
    }
    for (i, c) in e.crimes.iter().enumerate() {
        let outcome = required_enum(
            &format!("{f}.crimes[{i}].outcome"),
            c.outcome,
            |o: pb::CrimeOutcome| match o {
                pb::CrimeOutcome::Unspecified => None,
                pb::CrimeOutcome::Undecided => Some(CrimeOutcome::Undecided),
                pb::CrimeOutcome::Closed => Some(CrimeOutcome::Closed),
                pb::CrimeOutcome::NotCleared => Some(CrimeOutcome::NotCleared),
                pb::CrimeOutcome::Cleared => Some(CrimeOutcome::Cleared),
            },
        )?;
        let decided_quarter = if c.decided_quarter.is_empty() {
            None
        } else {
            Some(quarter(
                &format!("{f}.crimes[{i}].decided_quarter"),
                &c.decided_quarter,
            )?)
        };
        if decided_quarter.is_none() != (outcome == CrimeOutcome::Undecided) {
            return Err(Error::invalid(
                format!("{f}.crimes[{i}].decided_quarter"),
                &c.decided_quarter,
                "is set exactly when the outcome is a decision",
            ));
        }
        out.crimes.push(ErasedCrimes {
            reported_quarter: quarter(
                &format!("{f}.crimes[{i}].reported_quarter"),
                &c.reported_quarter,
            )?,
            police_region: c.police_region.clone(),
            crime_code: code(&format!("{f}.crimes[{i}].crime_code"), &c.crime_code)?,
            victim_gender: gender(&format!("{f}.crimes[{i}].victim_gender"), c.victim_gender)?,
            outcome,
            decided_quarter,
            days_to_referral: c.days_to_referral,
            days_to_decision: c.days_to_decision,
            count: c.count,
        });
    }
    for (i, c) in e.care.iter().enumerate() {
        out.care.push(ErasedCare {
            quarter: quarter(&format!("{f}.care[{i}].quarter"), &c.quarter)?,
            proposed: c.proposed,
            started: c.started,
            completed: c.completed,
            discontinued: c.discontinued,
        });
    }
    for (i, c) in e.contract_care.iter().enumerate() {
        out.contract_care.push(ErasedContractCare {
            quarter: quarter(&format!("{f}.contract_care[{i}].quarter"), &c.quarter)?,
            police_region: c.police_region.clone(),
            count: c.count,
        });
    }
    for (i, n) in e.notifications.iter().enumerate() {
        out.notifications.push(ErasedNotifications {
            quarter: quarter(&format!("{f}.notifications[{i}].quarter"), &n.quarter)?,
            local_police_area: n.local_police_area.clone(),
            days_from_opening: n.days_from_opening,
            count: n.count,
        });
    }
    for (i, s) in e.support.iter().enumerate() {
        out.support.push(ErasedSupport {
            quarter: quarter(&format!("{f}.support[{i}].quarter"), &s.quarter)?,
            kind: support_kind(&format!("{f}.support[{i}].kind"), s.kind)?,
            gender: gender(&format!("{f}.support[{i}].gender"), s.gender)?,
            age_group: age_group(&format!("{f}.support[{i}].age_group"), s.age_group)?,
            count: s.count,
        });
    }
    Ok(out)
}

pub(crate) fn to_pb(e: &Erasure) -> pb::StreamsErased {
    pb::StreamsErased {
        run: e.run,
        erased_at: e.erased_at.clone(),
        principal: e.principal.clone(),
        older_than: e.older_than.clone(),
        cutoff: e.cutoff.map(|d| d.to_string()).unwrap_or_default(),
        cases: e.cases,
        clients: e.clients,
        events: e.events,
        first_quarter: e.span.map(|s| s.0.to_string()).unwrap_or_default(),
        last_quarter: e.span.map(|s| s.1.to_string()).unwrap_or_default(),
        cases_opened: e
            .cases_opened
            .iter()
            .map(|c| pb::ErasedCases {
                quarter: c.quarter.to_string(),
                police_region: c.police_region.clone(),
                lead_crime_code: c.lead_crime_code.to_string(),
                count: c.count,
            })
            .collect(),
        referrals: e
            .referrals
            .iter()
            .map(|r| pb::ErasedReferrals {
                quarter: r.quarter.to_string(),
                police_region: r.police_region.clone(),
                lead_crime_code: r.lead_crime_code.to_string(),
                first_in_year: r.first_in_year,
                count: r.count,
            })
            .collect(),
        crimes: e
            .crimes
            .iter()
            .map(|c| pb::ErasedCrimes {
                reported_quarter: c.reported_quarter.to_string(),
                police_region: c.police_region.clone(),
                crime_code: c.crime_code.to_string(),
                victim_gender: pb_gender(c.victim_gender),
                outcome: (match c.outcome {
                    CrimeOutcome::Undecided => pb::CrimeOutcome::Undecided,
                    CrimeOutcome::Closed => pb::CrimeOutcome::Closed,
                    CrimeOutcome::NotCleared => pb::CrimeOutcome::NotCleared,
                    CrimeOutcome::Cleared => pb::CrimeOutcome::Cleared,
                }) as i32,
                decided_quarter: c.decided_quarter.map(|q| q.to_string()).unwrap_or_default(),
                days_to_referral: c.days_to_referral,
                days_to_decision: c.days_to_decision,
                count: c.count,
            })
            .collect(),
        care: e
            .care
            .iter()
            .map(|c| pb::ErasedCare {
                quarter: c.quarter.to_string(),
                proposed: c.proposed,
                started: c.started,
                completed: c.completed,
                discontinued: c.discontinued,
            })
            .collect(),
        contract_care: e
            .contract_care
            .iter()
            .map(|c| pb::ErasedContractCare {
                quarter: c.quarter.to_string(),
                police_region: c.police_region.clone(),
                count: c.count,
            })
            .collect(),
        notifications: e
            .notifications
            .iter()
            .map(|n| pb::ErasedNotifications {
                quarter: n.quarter.to_string(),
                local_police_area: n.local_police_area.clone(),
                days_from_opening: n.days_from_opening,
                count: n.count,
            })
            .collect(),
        support: e
            .support
            .iter()
            .map(|s| pb::ErasedSupport {
                quarter: s.quarter.to_string(),
                kind: pb_support_kind(s.kind),
                gender: pb_gender(s.gender),
                age_group: pb_age_group(s.age_group),
                count: s.count,
            })
            .collect(),
    }
}

/// One line saying what a run of retention erased and what its aggregate holds, for the
/// audit trail and `gryning retain`'s report: counts only.
pub fn erasure_summary(e: &Erasure) -> String {
    let sum = |f: fn(&ErasedCare) -> u64| e.care.iter().map(f).sum::<u64>();
    format!(
        "run {}: erased {} cases and {} client records ({} events) older than {}{}; aggregate: {} cases opened, {} case referrals, {} crimes reported, {} crimes decided, {} contract-care proposals, {} programmes started, {} ended, {} child-welfare notifications, {} support grants",
        e.run,
        e.cases,
        e.clients,
        e.events,
        e.older_than,
        e.cutoff
            .map(|d| format!(" (last event before {d})"))
            .unwrap_or_default(),
        e.cases_opened.iter().map(|c| c.count).sum::<u64>(),
        e.referrals.iter().map(|c| c.count).sum::<u64>(),
        e.crime_count(),
        e.crimes
            .iter()
            .filter(|c| c.outcome != CrimeOutcome::Undecided)
            .map(|c| c.count)
            .sum::<u64>(),
        sum(|c| c.proposed),
        sum(|c| c.started),
        sum(|c| c.completed + c.discontinued),
        e.notifications.iter().map(|c| c.count).sum::<u64>(),
        e.support.iter().map(|c| c.count).sum::<u64>(),
    )
}
