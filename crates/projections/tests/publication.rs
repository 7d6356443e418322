//! Publications in the projections: a publication's quarter tables are the live quarter rows
//! (checked against the naive recomputation), publication events change no table, and the
//! diff's per-cell event counts agree with a brute-force recount that rebuilds the state from
//! scratch at every position after the publication.

use std::collections::BTreeMap;
use std::sync::Arc;

use gryning_domain::{Body, Catalogue, Event, Publication, PublishedCell, Quarter, Subject, Uuid};
use gryning_projections::diff::{changed_cells, count_changes};
use gryning_projections::publication::published_kinds;
use gryning_projections::{catch_up, naive, By, Cell, PeriodKind, Projections, PublishedPeriod};
use gryning_recording::{Recorder, Submission};
use gryning_store::EventStore;

const BEFORE: usize = 300;
const AFTER: usize = 120;

/// The first events of the scale-1 dataset, stored in a fresh embedded store.
async fn stored(dir: &std::path::Path, events: &[Event]) -> Arc<dyn EventStore> {
    let store: Arc<dyn EventStore> =
        Arc::new(gryning_store::sqlite::SqliteStore::open(dir).unwrap());
    let recorder = Recorder::new(Arc::clone(&store), Arc::new(Catalogue::default_catalogue()));
    for result in recorder
        .record_batch(events.iter().cloned().map(Submission::from).collect())
        .await
    {
        result.expect("a prefix of the dataset is valid");
    }
    store
}

/// Every measure cell of a publication's tables, by (table index, row key, column).
fn cells(p: &[gryning_domain::PublishedTable]) -> BTreeMap<(usize, String, usize), PublishedCell> {
    let mut out = BTreeMap::new();
    for (t, table) in p.iter().enumerate() {
        for row in &table.rows {
            let key: Vec<String> = row
                .iter()
                .map_while(|c| match c {
                    PublishedCell::Text(s) => Some(s.clone()),
                    _ => None,
                })
                .collect();
            for (c, cell) in row.iter().enumerate().skip(key.len()) {
                out.insert((t, key.join("/"), c), cell.clone());
            }
        }
    }
    out
}

fn zeroish(c: Option<&PublishedCell>) -> Option<&PublishedCell> {
    c.filter(|c| !matches!(c, PublishedCell::Int(0) | PublishedCell::Null))
}

#[tokio::test]
async fn diff_counts_agree_with_a_recount_from_scratch_and_quarter_rows_with_naive() {
    let catalogue = Catalogue::default_catalogue();
    let events: Vec<Event> = gryning_synth::generate(gryning_synth::DEFAULT_SEED, 1, &catalogue)
        .into_iter()
        .take(BEFORE + AFTER)
        .collect();
    let quarter = Quarter::of(events[BEFORE - 1].occurred_on);
    let dir = tempfile::tempdir().unwrap();
    let store = stored(dir.path(), &events).await;

    let mut at_publication = Projections::default();
    catch_up(
        &mut at_publication,
        store.as_ref(),
        Some(BEFORE as u64),
        |_| {},
    )
    .await
    .unwrap();
    let tables = at_publication.publish_tables(quarter, &catalogue);
    assert_eq!(tables.len(), published_kinds().len());
    // The quarter's rows are those of the naive quarter table.
    for ((name, by, period), table) in published_kinds().into_iter().zip(&tables) {
        if period != PublishedPeriod::Quarter {
            continue;
        }
        let expected: Vec<Vec<Cell>> = naive::table(
            &events[..BEFORE],
            name,
            by.unwrap_or(By::Code),
            PeriodKind::Quarter,
            &catalogue,
        )
        .rows
        .into_iter()
        .filter(|r| r[0] == Cell::Text(quarter.to_string()))
        .collect();
        let got: Vec<Vec<Cell>> = table
            .rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|c| match c {
                        PublishedCell::Text(t) => Cell::Text(t.clone()),
                        PublishedCell::Int(n) => Cell::Int(*n),
                        PublishedCell::Float(x) => Cell::Float(*x),
                        PublishedCell::Null => Cell::Null,
                    })
                    .collect()
            })
            .collect();
        assert_eq!(got, expected, "{} {by:?}", name.name());
    }
    let publication = Publication {
        quarter,
        revision: 1,
        position: BEFORE as u64,
        catalogue_version: catalogue.version().into(),
        catalogue_sha256: catalogue.content_sha256().into(),
        published_at: String::new(),
        principal: "test".into(),
        note: String::new(),
        automatic: false,
        tables: tables.clone(),
    };

    // The diff's counts from one replay…
    let head = (BEFORE + AFTER) as u64;
    let (counts, now) = count_changes(store.as_ref(), &publication, head, &catalogue)
        .await
        .unwrap();
    assert_eq!(now.position(), head);
    let changes = changed_cells(&tables, &now.publish_tables(quarter, &catalogue), &counts);
    assert!(!changes.is_empty(), "later events changed something");
    // …against a state rebuilt from the first event at every later position.
    let mut recount: BTreeMap<(usize, String, usize), u64> = BTreeMap::new();
    let mut previous = cells(&tables);
    for position in BEFORE as u64 + 1..=head {
        let mut state = Projections::default();
        catch_up(&mut state, store.as_ref(), Some(position), |_| {})
            .await
            .unwrap();
        let current = cells(&state.publish_tables(quarter, &catalogue));
        let keys: std::collections::BTreeSet<_> = previous.keys().chain(current.keys()).collect();
        for key in keys {
            if zeroish(previous.get(key)) != zeroish(current.get(key)) {
                *recount.entry(key.clone()).or_default() += 1;
            }
        }
        previous = current;
    }
    let last = previous;
    let first = cells(&tables);
    let mut expected = Vec::new();
    let mut keys: Vec<_> = first.keys().chain(last.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        if zeroish(first.get(&key)) != zeroish(last.get(&key)) {
            expected.push((
                key.1.clone(),
                tables[key.0].columns[key.2].clone(),
                recount[&key],
            ));
        }
    }
    let got: Vec<(String, String, u64)> = changes
        .iter()
        .map(|c| (c.row.join("/"), c.measure.clone(), c.events))
        .collect();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    assert_eq!(got_sorted, expected_sorted);
}

#[test]
fn a_publication_event_changes_no_table_and_is_indexed() {
    let catalogue = Catalogue::default_catalogue();
    let events = gryning_synth::generate(gryning_synth::DEFAULT_SEED, 1, &catalogue);
    let mut state = Projections::default();
    for (i, e) in events.iter().take(200).enumerate() {
        state.apply(i as u64 + 1, e);
    }
    let before: Vec<_> = gryning_projections::TableName::ALL
        .iter()
        .map(|&t| state.table(t, By::Code, PeriodKind::Quarter, &catalogue))
        .collect();
    let quarter = Quarter::parse("2019-Q1").unwrap();
    let publication = Event {
        event_id: Uuid::from_u128(7),
        // Dated years later: its date must not widen any table's periods.
        occurred_on: gryning_domain::Date::parse("2026-01-02").unwrap(),
        subject: Subject::Publication(quarter),
        body: Body::TablesPublished(Box::new(Publication {
            quarter,
            revision: 1,
            position: 200,
            catalogue_version: "2020.1".into(),
            catalogue_sha256: "0".repeat(64),
            published_at: String::new(),
            principal: "test".into(),
            note: "n".into(),
            automatic: true,
            tables: state.publish_tables(quarter, &catalogue),
        })),
    };
    state.apply(201, &publication);
    let after: Vec<_> = gryning_projections::TableName::ALL
        .iter()
        .map(|&t| state.table(t, By::Code, PeriodKind::Quarter, &catalogue))
        .collect();
    assert_eq!(before, after);
    let entry = state.publication(quarter, None).expect("indexed");
    assert_eq!(
        (
            entry.revision,
            entry.computed_at,
            entry.recorded_at,
            entry.automatic
        ),
        (1, 200, 201, true)
    );
    assert!(state.publication(quarter, Some(2)).is_none());
    // The naive recomputation ignores it too.
    let mut with: Vec<Event> = events.iter().take(200).cloned().collect();
    let without = with.clone();
    with.push(publication);
    for t in gryning_projections::TableName::ALL {
        assert_eq!(
            naive::table(&with, t, By::Group, PeriodKind::Year, &catalogue),
            naive::table(&without, t, By::Group, PeriodKind::Year, &catalogue)
        );
    }
}
