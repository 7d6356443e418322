//! The data of every region and of earlier years: valid event by event in output order, each
//! police region with its own areas and volume, Stockholm's volume of the report's years the
//! same as without the other regions, and the default output untouched by the options.

use std::collections::{BTreeMap, HashMap, HashSet};

use gryning_domain::{validate, Body, Catalogue, StreamState, Subject};
use gryning_synth::{Options, DEFAULT_SEED, POLICE_REGION};

#[test]
fn every_region_from_2016_is_valid_and_has_each_regions_own_volume() {
    let catalogue = Catalogue::default_catalogue();
    let options = Options {
        every_region: true,
        first_year: 2016,
    };
    let events = gryning_synth::generate_with(DEFAULT_SEED, 1, &catalogue, options);
    let (first, last) = options.date_range();
    let mut streams: HashMap<Subject, StreamState> = HashMap::new();
    let mut ids = HashSet::new();
    // region → (year → cases), region → areas
    let mut cases: BTreeMap<String, BTreeMap<i32, u32>> = BTreeMap::new();
    let mut areas: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        validate::check_fields(e, &catalogue, last)
            .unwrap_or_else(|err| panic!("event {i} {e:?}: {err}"));
        assert!(e.occurred_on >= first, "event {i} before {first}");
        let state = streams.entry(e.subject).or_default();
        state
            .check(e)
            .unwrap_or_else(|err| panic!("event {i} {e:?}: {err}"));
        state.apply(e);
        assert!(ids.insert(e.event_id), "event id used twice");
        if let Body::CaseOpened {
            police_region,
            local_police_area,
            ..
        } = &e.body
        {
            *cases
                .entry(police_region.clone())
                .or_default()
                .entry(e.occurred_on.year())
                .or_default() += 1;
            areas
                .entry(police_region.clone())
                .or_default()
                .insert(local_police_area.clone());
        }
    }
    let names: Vec<&str> = cases.keys().map(String::as_str).collect();
    let mut expected = gryning_domain::POLICE_REGIONS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    let stockholm = &cases[POLICE_REGION];
    for (region, years) in &cases {
        assert_eq!(
            years.keys().copied().collect::<Vec<_>>(),
            vec![2016, 2017, 2018, 2019, 2020],
            "{region}"
        );
        // Volume grows towards the report's years, in every region.
        assert!(years[&2016] < years[&2019], "{region}: {years:?}");
        if region != POLICE_REGION {
            let share = f64::from(years[&2019]) / f64::from(stockholm[&2019]);
            assert!((0.3..0.95).contains(&share), "{region}: {share}");
        }
    }
    // Areas are the region's own.
    let all: Vec<&HashSet<String>> = areas.values().collect();
    for (i, a) in all.iter().enumerate() {
        assert!(a.len() >= 5);
        for b in &all[i + 1..] {
            assert!(a.is_disjoint(b));
        }
    }
}

#[test]
fn the_default_output_is_stockholms_report_years_whatever_the_options_add() {
    let catalogue = Catalogue::default_catalogue();
    let default = gryning_synth::generate(7, 1, &catalogue);
    assert_eq!(
        gryning_synth::generate_with(7, 1, &catalogue, Options::default()),
        default
    );
    assert!(default.iter().all(|e| match &e.body {
        Body::CaseOpened { police_region, .. } => police_region == POLICE_REGION,
        _ => true,
    }));
    assert!(Options {
        every_region: false,
        first_year: 2009
    }
    .check()
    .is_err());
    assert!(Options {
        every_region: true,
        first_year: 2020
    }
    .check()
    .is_err());
}
