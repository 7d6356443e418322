//! Small hand-written histories per table, with the exact numbers the contract's definitions
//! give (each also checked against the naive recomputation by `Log::table`).

mod common;

use common::{f, i, t, Log};
use gryning_domain::{Gender, ProsecutionDecision, TreatmentOutcome};
use gryning_projections::{By, Cell, PeriodKind, TableName};

use Gender::{Female, Male};
use PeriodKind::{Quarter, Year};

fn flow_log() -> Log {
    let mut log = Log::default();
    log.open("2020-01-10", 1, "9365")
        .report("2020-01-15", 1, 11, "9365", Female)
        .report("2020-04-02", 1, 12, "4024", Female)
        .refer("2020-02-01", 1)
        // A second referral in the same quarter: the case still counts once in Q1.
        .refer("2020-03-15", 1)
        .refer("2020-05-01", 1)
        // The reclassifications move the crime's and the case's counts to the new codes.
        .reclassify("2020-06-01", 1, 11, "0418")
        .reclassify_case("2020-06-02", 1, "4012");
    log
}

#[test]
fn case_flow_moves_counts_on_reclassification_and_counts_a_case_once_per_period() {
    let log = flow_log();
    let q = log.table(TableName::CaseFlow, By::Code, Quarter);
    assert_eq!(
        q.columns,
        ["period", "code", "reported", "cases", "referred"]
    );
    assert_eq!(
        q.rows,
        vec![
            vec![t("2020-Q1"), t("0418"), i(1), i(0), i(0)],
            vec![t("2020-Q1"), t("4012"), i(0), i(1), i(1)],
            vec![t("2020-Q2"), t("4012"), i(0), i(0), i(1)],
            vec![t("2020-Q2"), t("4024"), i(1), i(0), i(0)],
        ]
    );
    // Referred in Q1 and Q2: once in the year.
    let y = log.table(TableName::CaseFlow, By::Code, Year);
    assert_eq!(
        y.rows,
        vec![
            vec![t("2020"), t("0418"), i(1), i(0), i(0)],
            vec![t("2020"), t("4012"), i(0), i(1), i(1)],
            vec![t("2020"), t("4024"), i(1), i(0), i(0)],
        ]
    );
    // 0418 is in two (overlapping) groups; rows follow the catalogue's group order.
    let g = log.table(TableName::CaseFlow, By::Group, Year);
    assert_eq!(g.columns[1], "group");
    assert_eq!(
        g.rows,
        vec![
            vec![t("2020"), t("Brott i nära relation"), i(0), i(1), i(1)],
            vec![t("2020"), t("Brott mot barn"), i(1), i(0), i(0)],
            vec![t("2020"), t("Sexualbrott"), i(1), i(0), i(0)],
            vec![
                t("2020"),
                t("Människohandel för sexuella ändamål"),
                i(1),
                i(0),
                i(0)
            ],
        ]
    );
}

#[test]
fn clearance_takes_the_last_decision_and_follows_reclassification() {
    let mut log = Log::default();
    log.open("2020-01-01", 1, "9365")
        .report("2020-01-02", 1, 1, "9365", Female)
        .report("2020-01-03", 1, 2, "9365", Male)
        .report("2020-01-04", 1, 3, "9365", Female)
        .close("2020-02-01", 1, &[1, 2])
        .refer("2020-03-01", 1)
        .decide("2020-03-02", 1, 3, ProsecutionDecision::WaiverOfProsecution)
        // Replaces crime 1's closure: handled moves from Q1 to Q3 and becomes cleared.
        .decide("2020-07-01", 1, 1, ProsecutionDecision::Indictment)
        // A reclassification after the decision moves the handled and cleared counts too.
        .reclassify("2020-08-01", 1, 1, "9381");
    let q = log.table(TableName::Clearance, By::Code, Quarter);
    assert_eq!(
        q.columns,
        [
            "period",
            "code",
            "victim_gender",
            "handled",
            "cleared",
            "percent"
        ]
    );
    assert_eq!(
        q.rows,
        vec![
            vec![t("2020-Q1"), t("9365"), t("ALL"), i(2), i(1), f(50.0)],
            vec![t("2020-Q1"), t("9365"), t("FEMALE"), i(1), i(1), f(100.0)],
            vec![t("2020-Q1"), t("9365"), t("MALE"), i(1), i(0), f(0.0)],
            vec![t("2020-Q3"), t("9381"), t("ALL"), i(1), i(1), f(100.0)],
            vec![t("2020-Q3"), t("9381"), t("FEMALE"), i(1), i(1), f(100.0)],
        ]
    );
    let g = log.table(TableName::Clearance, By::Group, Year);
    assert_eq!(
        g.rows,
        vec![
            vec![
                t("2020"),
                t("Brott i nära relation"),
                t("ALL"),
                i(3),
                i(2),
                f(100.0 * 2.0 / 3.0)
            ],
            vec![
                t("2020"),
                t("Brott i nära relation"),
                t("FEMALE"),
                i(2),
                i(2),
                f(100.0)
            ],
            vec![
                t("2020"),
                t("Brott i nära relation"),
                t("MALE"),
                i(1),
                i(0),
                f(0.0)
            ],
        ]
    );
    assert!(g.to_text().contains("66.7"), "{}", g.to_text());
}

#[test]
fn care_counts_by_date_and_carries_continuing_programmes_over_the_year_end() {
    let mut log = Log::default();
    log.open("2019-10-01", 1, "9365")
        .contract_care("2019-10-05", 1)
        .start("2019-11-01", 1)
        .start("2019-12-01", 2)
        .end("2020-02-01", 1, TreatmentOutcome::Completed)
        .start("2020-03-01", 3)
        .end("2020-03-01", 3, TreatmentOutcome::Discontinued)
        // Only widens the span: the quarters up to Q4 show the programme still running.
        .support("2020-12-01", 4);
    let y = log.table(TableName::Care, By::Code, Year);
    assert_eq!(
        y.columns,
        [
            "period",
            "contract_care_proposed",
            "programmes_started",
            "programmes_completed",
            "programmes_discontinued",
            "programmes_continuing"
        ]
    );
    assert_eq!(
        y.rows,
        vec![
            vec![t("2019"), i(1), i(2), i(0), i(0), i(2)],
            vec![t("2020"), i(0), i(1), i(1), i(1), i(1)]
        ]
    );
    let q = log.table(TableName::Care, By::Code, Quarter);
    assert_eq!(
        q.rows,
        vec![
            vec![t("2019-Q4"), i(1), i(2), i(0), i(0), i(2)],
            vec![t("2020-Q1"), i(0), i(1), i(1), i(1), i(1)],
            vec![t("2020-Q2"), i(0), i(0), i(0), i(0), i(1)],
            vec![t("2020-Q3"), i(0), i(0), i(0), i(0), i(1)],
            vec![t("2020-Q4"), i(0), i(0), i(0), i(0), i(1)],
        ]
    );
}

#[test]
fn progress_funnel_and_exact_medians() {
    let mut log = Log::default();
    log.open("2020-01-01", 1, "9365")
        .report("2020-01-01", 1, 1, "9365", Female)
        .report("2020-01-03", 1, 2, "9365", Female)
        .report("2020-01-05", 1, 3, "9365", Female)
        .report("2020-01-11", 1, 4, "9365", Female)
        // Days to referral 20, 18, 16, 10: an even count, median (16 + 18) / 2.
        .refer("2020-01-21", 1)
        .decide("2020-03-01", 1, 1, ProsecutionDecision::Indictment)
        .decide("2020-03-11", 1, 2, ProsecutionDecision::NoProsecution)
        // A closure is decided but has no referral-to-decision lead time.
        .close("2020-02-01", 1, &[3])
        .report("2020-04-01", 1, 5, "9365", Male)
        .refer("2020-04-05", 1)
        .decide("2020-04-06", 1, 5, ProsecutionDecision::SummaryPenaltyOrder);
    let q = log.table(TableName::Progress, By::Code, Quarter);
    assert_eq!(
        q.columns,
        [
            "period",
            "code",
            "reported",
            "in_case",
            "referred",
            "decided",
            "cleared",
            "open",
            "median_days_to_referral",
            "median_days_to_decision"
        ]
    );
    assert_eq!(
        q.rows,
        vec![
            vec![
                t("2020-Q1"),
                t("9365"),
                i(4),
                i(4),
                i(4),
                i(3),
                i(1),
                i(1),
                f(17.0),
                f(45.0)
            ],
            vec![
                t("2020-Q2"),
                t("9365"),
                i(1),
                i(1),
                i(1),
                i(1),
                i(1),
                i(0),
                f(4.0),
                f(1.0)
            ],
        ]
    );
    let y = log.table(TableName::Progress, By::Code, Year);
    assert_eq!(
        y.rows,
        vec![vec![
            t("2020"),
            t("9365"),
            i(5),
            i(5),
            i(5),
            i(4),
            i(2),
            i(1),
            f(16.0),
            f(40.0)
        ]]
    );
}

#[test]
fn progress_keeps_the_sign_of_late_dated_referrals_and_null_medians() {
    let mut log = Log::default();
    log.open("2021-05-01", 1, "4024")
        .report("2021-05-10", 1, 1, "4024", Female)
        .refer("2021-05-01", 1)
        .open("2021-05-01", 2, "4024")
        .report("2021-05-03", 2, 1, "4024", Female);
    let q = log.table(TableName::Progress, By::Code, Quarter);
    // Case 2 reuses crime id 1 (ids are unique per case only) and is never referred.
    assert_eq!(
        q.rows,
        vec![vec![
            t("2021-Q2"),
            t("4024"),
            i(2),
            i(2),
            i(1),
            i(0),
            i(0),
            i(2),
            f(-9.0),
            Cell::Null
        ]]
    );
    assert!(
        q.to_json().contains("\"median_days_to_decision\":null"),
        "{}",
        q.to_json()
    );
}

#[test]
fn an_empty_log_has_no_rows() {
    let log = Log::default();
    for name in TableName::ALL {
        assert!(log.table(name, By::Code, Year).rows.is_empty());
    }
}

/// Social services at scale 1 of the generator: the Farsta/Skärholmen pilot notifies far more
/// often than any other local police area, every support kind is granted, and the notification
/// rows agree with the naive recomputation.
#[test]
fn social_services_show_the_pilot_areas_at_scale_one() {
    let catalogue = gryning_domain::Catalogue::default_catalogue();
    let events = gryning_synth::generate(gryning_synth::DEFAULT_SEED, 1, &catalogue);
    let mut state = gryning_projections::Projections::new();
    for (n, e) in events.iter().enumerate() {
        state.apply(n as u64 + 1, e);
    }
    let table = state.table(TableName::SocialServices, By::Code, Year, &catalogue);
    assert_eq!(
        table,
        gryning_projections::naive::table(
            &events,
            TableName::SocialServices,
            By::Code,
            Year,
            &catalogue
        )
    );
    for year in ["2019", "2020"] {
        let text = |c: &Cell| match c {
            Cell::Text(t) => t.clone(),
            other => panic!("{other:?}"),
        };
        let count = |c: &Cell| match c {
            Cell::Int(n) => *n,
            other => panic!("{other:?}"),
        };
        let rows: Vec<&Vec<Cell>> = table.rows.iter().filter(|r| text(&r[0]) == year).collect();
        let notified: Vec<(String, i64)> = rows
            .iter()
            .filter(|r| text(&r[1]) == "CHILD_WELFARE_NOTIFICATION")
            .map(|r| (text(&r[2]), count(&r[5])))
            .collect();
        let pilot = |a: &str| a == "Farsta" || a == "Skärholmen";
        let least_pilot = notified.iter().filter(|(a, _)| pilot(a)).map(|x| x.1).min();
        let most_other = notified
            .iter()
            .filter(|(a, _)| !pilot(a))
            .map(|x| x.1)
            .max();
        assert!(notified.len() >= 10, "{year}: {notified:?}");
        assert!(
            least_pilot.unwrap() > most_other.unwrap(),
            "{year}: {notified:?}"
        );
        for service in ["PROTECTED_HOUSING", "SUPPORT_TALKS", "OTHER_SUPPORT"] {
            let granted: i64 = rows
                .iter()
                .filter(|r| text(&r[1]) == service)
                .map(|r| count(&r[5]))
                .sum();
            assert!(granted >= 50, "{year} {service}: {granted}");
        }
    }
}
