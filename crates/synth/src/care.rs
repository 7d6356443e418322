//! Care events of one copy: Kriminalvården's treatment programmes against intimate-partner
//! violence (starts and ends planned so that the published starts, completions and year-end
//! continuations come out exactly) and social services' support decisions.

use gryning_domain::{
    AgeGroup, Body, Date, Event, Gender, Subject, SupportKind, TreatmentOutcome, Uuid,
};

use crate::plan::{ProgrammePlan, YEARS};
use crate::rng::Rng;

/// Kriminalvården's programmes for partner-violence offenders, most often IDAP.
const PROGRAMMES: &[(&str, u32)] = &[("IDAP", 7), ("ROS", 3)];

struct Programme {
    client: Uuid,
    start_year: i32,
    end: Option<(i32, TreatmentOutcome)>,
}

fn year_end(year: i32) -> Date {
    Date::from_ymd(year, 12, 31).expect("31 December exists")
}

/// Start and end dates: a programme that ends within its start year starts early enough to
/// last a few months (completions) or weeks (drop-outs).
fn dates(rng: &mut Rng, p: &Programme) -> (Date, Option<Date>) {
    let completed = matches!(p.end, Some((_, TreatmentOutcome::Completed)));
    let (duration_lo, duration_hi) = if completed { (100, 180) } else { (14, 90) };
    match p.end {
        Some((end_year, _)) if end_year == p.start_year => {
            let latest_start = if completed { 180 } else { 300 };
            let start = rng.day_in(p.start_year, 0, latest_start);
            (
                start,
                Some(
                    start
                        .add_days(rng.between(duration_lo, duration_hi))
                        .min(year_end(end_year)),
                ),
            )
        }
        Some((end_year, _)) => {
            let start = rng.day_in(p.start_year, 120, 365);
            let first_day = Date::from_ymd(end_year, 1, 1).expect("1 January exists");
            let end = start
                .add_days(rng.between(duration_lo, duration_hi))
                .max(first_day)
                .min(year_end(end_year));
            (start, Some(end))
        }
        None => (rng.day_in(p.start_year, 0, 365), None),
    }
}

pub(crate) fn care_events(rng: &mut Rng, plan: &ProgrammePlan, out: &mut Vec<Event>) {
    use TreatmentOutcome::{Completed, Discontinued};
    let [first, second] = YEARS;
    let mut programmes = Vec::new();
    let mut add =
        |rng: &mut Rng, count: u32, start_year: i32, end: Option<(i32, TreatmentOutcome)>| {
            for _ in 0..count {
                programmes.push(Programme {
                    client: rng.uuid(),
                    start_year,
                    end,
                });
            }
        };
    add(rng, plan.first_completed, first, Some((first, Completed)));
    add(
        rng,
        plan.first_discontinued,
        first,
        Some((first, Discontinued)),
    );
    add(
        rng,
        plan.carried_completed,
        first,
        Some((second, Completed)),
    );
    add(
        rng,
        plan.carried_discontinued,
        first,
        Some((second, Discontinued)),
    );
    add(rng, plan.carried_continuing, first, None);
    add(
        rng,
        plan.second_discontinued,
        second,
        Some((second, Discontinued)),
    );
    add(
        rng,
        plan.second_completed,
        second,
        Some((second, Completed)),
    );
    add(rng, plan.second_continuing, second, None);
    // Some who dropped out in the first year start again in the second: their second start is
    // in the same client stream, after the first programme ended.
    let dropped: Vec<Uuid> = programmes
        .iter()
        .filter(|p| p.start_year == first && p.end == Some((first, Discontinued)))
        .map(|p| p.client)
        .take(plan.restarts as usize)
        .collect();
    for (p, client) in programmes
        .iter_mut()
        .filter(|p| p.start_year == second)
        .zip(dropped)
    {
        p.client = client;
    }

    let names: Vec<u32> = PROGRAMMES.iter().map(|&(_, w)| w).collect();
    let mut programme_clients = Vec::new();
    for p in &programmes {
        let (start, end) = dates(rng, p);
        let programme = PROGRAMMES[rng.weighted(&names)].0.to_string();
        let subject = Subject::Client(p.client);
        out.push(Event {
            event_id: rng.uuid(),
            occurred_on: start,
            subject,
            body: Body::TreatmentProgrammeStarted { programme },
        });
        if let (Some(end), Some((_, outcome))) = (end, p.end) {
            out.push(Event {
                event_id: rng.uuid(),
                occurred_on: end,
                subject,
                body: Body::TreatmentProgrammeEnded { outcome },
            });
        }
        programme_clients.push((p.client, start));
    }

    // Social services: protected housing mostly for women and their children, support talks
    // mostly for men who use violence (some of them in a programme), other support mixed.
    for year in YEARS {
        for _ in 0..320 {
            let child = rng.chance(0.3);
            let gender = if child {
                if rng.chance(0.5) {
                    Gender::Female
                } else {
                    Gender::Male
                }
            } else if rng.chance(0.96) {
                Gender::Female
            } else {
                Gender::Male
            };
            let age_group = if child {
                AgeGroup::Child
            } else {
                AgeGroup::Adult
            };
            support(
                rng,
                year,
                None,
                SupportKind::ProtectedHousing,
                gender,
                age_group,
                out,
            );
        }
        for _ in 0..180 {
            let gender = if rng.chance(0.9) {
                Gender::Male
            } else {
                Gender::Female
            };
            support(
                rng,
                year,
                None,
                SupportKind::SupportTalks,
                gender,
                AgeGroup::Adult,
                out,
            );
        }
        for _ in 0..90 {
            let gender =
                [Gender::Female, Gender::Male, Gender::Unknown][rng.weighted(&[60, 30, 10])];
            let age_group =
                [AgeGroup::Adult, AgeGroup::Child, AgeGroup::Unknown][rng.weighted(&[75, 20, 5])];
            support(rng, year, None, SupportKind::Other, gender, age_group, out);
        }
        for &(client, start) in programme_clients
            .iter()
            .filter(|(_, s)| s.year() == year)
            .take(12)
        {
            support(
                rng,
                year,
                Some((client, start)),
                SupportKind::SupportTalks,
                Gender::Male,
                AgeGroup::Adult,
                out,
            );
        }
    }
}

/// One SupportGranted, for a new client or, dated on or after its start, a programme client.
fn support(
    rng: &mut Rng,
    year: i32,
    client: Option<(Uuid, Date)>,
    kind: SupportKind,
    gender: Gender,
    age_group: AgeGroup,
    out: &mut Vec<Event>,
) {
    let (client, date) = match client {
        Some((id, start)) => (id, start.add_days(rng.between(0, 60)).min(year_end(year))),
        None => (rng.uuid(), rng.day_in(year, 0, 365)),
    };
    out.push(Event {
        event_id: rng.uuid(),
        occurred_on: date,
        subject: Subject::Client(client),
        body: Body::SupportGranted {
            kind,
            gender,
            age_group,
        },
    });
}
