use datafusion::arrow::array::{Array, AsArray};

use super::parquet::{lake_properties, write_hidden};
use super::*;
use crate::model::{Interaction, Micros, Rating, TableRow, Ticket};

#[test]
fn a_failed_or_abandoned_write_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.parquet");
    let tmp = dir.path().join(".f.parquet.tmp");
    let failed = write_hidden(&path, |mut file| {
        std::io::Write::write_all(&mut file, b"half a file")?;
        anyhow::bail!("the writer failed")
    });
    assert!(failed.is_err());
    assert!(!tmp.exists() && !path.exists());
    // Written, then dropped unpublished (another partition's merge failed).
    let hidden = write_hidden(&path, Ok).unwrap();
    assert!(tmp.exists());
    drop(hidden);
    assert!(!tmp.exists() && !path.exists());
    // Published: in place, and the temporary name is gone.
    write_atomic(&path, b"whole").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"whole");
    assert!(!tmp.exists());
}

fn interaction(id: &str, at: Micros, lang: Option<&str>) -> Interaction {
    Interaction {
        interaction_id: id.into(),
        ticket_id: "T1".into(),
        at,
        seq: None,
        actor_role: crate::model::ActorRole::Requester,
        actor_id: None,
        channel: crate::model::Channel::Email,
        is_public: true,
        body: Some("hello".into()),
        lang: lang.map(str::to_string),
        sentiment: None,
    }
}

#[test]
fn a_lake_of_the_layout_before_delta_is_refused_then_converted_and_merges_with_nulls() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lake");
    let t = 1_772_442_000_000_000; // 2026-03-02
    // An interactions file of an earlier deskpulse: no `lang` column.
    let full = Interaction::to_batch(&[interaction("old", t, None)]);
    let old = full
        .project(
            &(0..full.num_columns())
                .filter(|i| full.schema().field(*i).name() != "lang")
                .collect::<Vec<_>>(),
        )
        .unwrap();
    let part = root.join("interactions").join("month=2026-03");
    fs::create_dir_all(&part).unwrap();
    write_parquet_atomic(
        &part.join("data.parquet"),
        old.schema(),
        [Ok(old)],
        lake_properties(),
    )
    .unwrap();
    let refused = Lake::open(&root).unwrap_err().to_string();
    assert!(refused.contains("deskpulse --lake"), "{refused}");
    assert!(refused.ends_with("convert`"), "{refused}");
    let converted = Lake::convert(&root).unwrap();
    assert_eq!(converted, vec![(Table::Interactions, 1)]);
    let lake = Lake::open(&root).unwrap();
    assert_eq!(lake.row_count(Table::Interactions).unwrap(), 1);

    let mut staging = lake.stage("s").unwrap();
    staging.push(interaction("new", t + 1, Some("en"))).unwrap();
    staging.commit(&lake, "s").unwrap();
    let batches = lake.scan(Table::Interactions, None).unwrap();
    assert_eq!(batches[0].schema(), Table::Interactions.schema());
    let lang = batches[0].column_by_name("lang").unwrap();
    let ids = batches[0].column_by_name("interaction_id").unwrap();
    let got: Vec<(&str, Option<&str>)> = (0..batches[0].num_rows())
        .map(|i| {
            let l = lang.as_string::<i32>();
            (
                ids.as_string::<i32>().value(i),
                (!l.is_null(i)).then(|| l.value(i)),
            )
        })
        .collect();
    assert_eq!(got, vec![("old", None), ("new", Some("en"))]);
}

fn ticket(id: &str, opened: Micros, updated: Micros, status: &str) -> Ticket {
    Ticket {
        ticket_id: id.into(),
        source: "test".into(),
        opened_at: opened,
        updated_at: updated,
        status: Some(status.into()),
        ..Default::default()
    }
}

/// Every stored ticket as (month partition, ticket_id, status), sorted.
fn located_statuses(lake: &Lake) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for f in lake.files(Table::Tickets).unwrap() {
        let month = f.parent().unwrap().file_name().unwrap().to_string_lossy();
        for b in read_parquet(&f, Some(&["ticket_id", "status"])).unwrap() {
            let id = b.column(0).as_string::<i32>();
            let st = b.column(1).as_string::<i32>();
            for i in 0..b.num_rows() {
                out.push((
                    month.to_string(),
                    id.value(i).to_string(),
                    st.value(i).to_string(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn statuses(lake: &Lake) -> Vec<(String, String)> {
    let mut out: Vec<_> = located_statuses(lake)
        .into_iter()
        .map(|(_, id, status)| (id, status))
        .collect();
    out.sort();
    out
}

#[test]
fn newer_versions_replace_older_ones_and_ties_go_to_the_later_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let mut s = lake.stage("a").unwrap();
    s.push(ticket("T1", 0, 10, "new")).unwrap();
    s.push(ticket("T1", 0, 30, "resolved")).unwrap();
    s.push(ticket("T1", 0, 20, "active")).unwrap();
    s.push(ticket("T2", 0, 5, "new")).unwrap();
    let c = s.commit(&lake, "t").unwrap();
    assert_eq!(
        c[&Table::Tickets],
        CommitCounts {
            stored: 2,
            superseded: 2,
            replaced: 0
        }
    );
    assert_eq!(
        statuses(&lake),
        vec![
            ("T1".into(), "resolved".into()),
            ("T2".into(), "new".into())
        ]
    );

    let mut s = lake.stage("b").unwrap();
    s.push(ticket("T1", 0, 25, "stale")).unwrap(); // older than the lake's: loses
    s.push(ticket("T2", 0, 5, "tie")).unwrap(); // same version: the later row wins
    let c = s.commit(&lake, "t").unwrap();
    assert_eq!(
        c[&Table::Tickets],
        CommitCounts {
            stored: 1,
            superseded: 1,
            replaced: 1
        }
    );
    assert_eq!(
        statuses(&lake),
        vec![
            ("T1".into(), "resolved".into()),
            ("T2".into(), "tie".into())
        ]
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
}

#[test]
fn spilled_rows_merge_like_buffered_ones() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let mut s = lake.stage("a").unwrap();
    s.push(ticket("T1", 0, 10, "first")).unwrap();
    s.spill().unwrap();
    s.push(ticket("T1", 0, 10, "second")).unwrap();
    s.commit(&lake, "t").unwrap();
    assert_eq!(statuses(&lake), vec![("T1".into(), "second".into())]);
    assert!(!dir.path().join("_staging/a").exists());
}

#[test]
fn partitions_by_month_of_the_partition_column() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let jan = crate::timeparse::TimeParser::default()
        .parse("2026-01-31T23:00:00Z")
        .unwrap();
    let feb = crate::timeparse::TimeParser::default()
        .parse("2026-02-01T00:00:00Z")
        .unwrap();
    let mut s = lake.stage("a").unwrap();
    s.push(ticket("T1", jan, feb, "x")).unwrap();
    s.push(ticket("T2", feb, feb, "x")).unwrap();
    s.commit(&lake, "t").unwrap();
    let files = lake.files(Table::Tickets).unwrap();
    assert_eq!(files.len(), 2);
    assert!(
        files[0]
            .parent()
            .unwrap()
            .ends_with("tickets/month=2026-01")
    );
    assert!(
        files[1]
            .parent()
            .unwrap()
            .ends_with("tickets/month=2026-02")
    );
}

#[test]
fn a_ticket_that_moves_month_keeps_one_row_the_newest() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let (jan, feb) = (parse("2026-01-15T00:00:00Z"), parse("2026-02-15T00:00:00Z"));
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let where_is = |lake: &Lake| {
        let rows = located_statuses(lake).into_iter();
        rows.map(|(m, id, st)| format!("{m} {id} {st}"))
            .collect::<Vec<_>>()
    };
    let mut s = lake.stage("a").unwrap();
    s.push(ticket("T1", jan, 10, "jan")).unwrap();
    s.push(ticket("T2", feb, 10, "feb")).unwrap();
    // Within one batch: the newer version (January's) wins over February's.
    s.push(ticket("T3", jan, 5, "jan-newer")).unwrap();
    s.push(ticket("T3", feb, 3, "feb-older")).unwrap();
    s.commit(&lake, "t").unwrap();
    assert_eq!(
        where_is(&lake),
        [
            "month=2026-01 T1 jan",
            "month=2026-01 T3 jan-newer",
            "month=2026-02 T2 feb"
        ]
    );

    // Against the lake: T1 moves to February (newer), T2's January copy is older and loses,
    // T3's February copy ties with the lake's version and, as the later row, wins.
    let mut s = lake.stage("b").unwrap();
    s.push(ticket("T1", feb, 20, "moved")).unwrap();
    s.push(ticket("T2", jan, 5, "stale")).unwrap();
    s.push(ticket("T3", feb, 5, "tie")).unwrap();
    s.commit(&lake, "t").unwrap();
    assert_eq!(
        where_is(&lake),
        [
            "month=2026-02 T1 moved",
            "month=2026-02 T2 feb",
            "month=2026-02 T3 tie"
        ]
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 3);
}

#[test]
fn manifest_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let e = ManifestEntry {
        content_hash: "abc".into(),
        profile: "generic".into(),
        source_file: "t.csv".into(),
        ingested_at: 7,
        records: 3,
        rows_stored: 2,
        rows_rejected: 1,
    };
    lake.record_ingest(e.clone()).unwrap();
    assert_eq!(lake.manifest().unwrap(), vec![e]);
    assert!(lake.already_ingested("abc", "generic").unwrap());
    assert!(!lake.already_ingested("abc", "servicenow").unwrap());
}

#[test]
fn a_rating_sent_again_in_a_later_month_is_one_row_the_last_ingested() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let rating = |at: &str, score: f64| Rating {
        rating_id: "R1".into(),
        ticket_id: "T1".into(),
        interaction_id: None,
        requester_id: None,
        rated_at: parse(at),
        channel: None,
        score_raw: score.to_string(),
        scale: crate::model::Scale::Five,
        score_5: score,
        comment: None,
        lang: None,
        sentiment: None,
    };
    for (name, at, score) in [
        ("a", "2026-01-20T10:00:00Z", 2.0),
        ("b", "2026-03-02T09:00:00Z", 5.0),
    ] {
        let mut s = lake.stage(name).unwrap();
        s.push(rating(at, score)).unwrap();
        s.commit(&lake, name).unwrap();
    }
    let files = lake.files(Table::Ratings).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].parent().unwrap().ends_with("month=2026-03"));
    let b = lake.scan(Table::Ratings, Some(&["score_5"])).unwrap();
    let scores: Vec<f64> = b
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(scores, vec![5.0]);
}

#[test]
fn readers_keep_their_snapshot_and_time_travel_reads_an_earlier_one() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let commit = |name: &str, id: &str| {
        let mut s = lake.stage(name).unwrap();
        s.push(ticket(id, parse("2026-01-15T00:00:00Z"), 1, "new"))
            .unwrap();
        s.commit(&lake, name).unwrap();
    };
    commit("a", "T1");
    let pinned = lake.pinned().unwrap();
    commit("b", "T2");
    assert_eq!(pinned.row_count(Table::Tickets).unwrap(), 1);
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
    let first = lake.clone().at(At::Version(1));
    assert_eq!(first.row_count(Table::Tickets).unwrap(), 1);
    // History is read, never written.
    let mut s = first.stage("c").unwrap();
    s.push(ticket("T3", 0, 1, "x")).unwrap();
    assert!(s.commit(&first, "c").is_err());
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
}
