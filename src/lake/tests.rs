use datafusion::arrow::array::{Array, AsArray};

use super::parquet::{lake_properties, write_hidden, write_parquet};
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
    let data = part.join("data.parquet");
    let props = lake_properties(&old.schema());
    write_parquet(&data, old.schema(), [Ok(old)], props).unwrap();
    // Its manifest, a plain Parquet file then (as the side tables were until they became Delta
    // tables too).
    let entry = ManifestEntry {
        content_hash: "abc".into(),
        profile: "generic".into(),
        source_file: "interactions.csv".into(),
        ingested_at: t,
        records: 1,
        rows_stored: 1,
        rows_rejected: 0,
    };
    let manifest = side::manifest_batch(std::slice::from_ref(&entry));
    fs::create_dir_all(root.join("_manifest")).unwrap();
    let path = root.join("_manifest/data.parquet");
    let props = lake_properties(&manifest.schema());
    write_parquet(&path, manifest.schema(), [Ok(manifest)], props).unwrap();
    let refused = Lake::open(&root).unwrap_err().to_string();
    assert!(refused.contains("deskpulse --lake"), "{refused}");
    assert!(refused.ends_with("convert`"), "{refused}");
    let converted = Lake::convert(&root).unwrap();
    assert_eq!(converted, vec![("interactions", 1), ("_manifest", 1)]);
    let lake = Lake::open(&root).unwrap();
    assert_eq!(lake.row_count(Table::Interactions).unwrap(), 1);
    assert_eq!(lake.manifest().unwrap(), [entry]);

    let mut staging = lake.stage("s").unwrap();
    staging.push(interaction("new", t + 1, Some("en"))).unwrap();
    staging.commit(&lake).unwrap();
    // The new row is appended; compaction rewrites the old file in the current schema.
    assert_eq!(lake.files(Table::Interactions).unwrap().len(), 2);
    lake.compact(2, &lake.lock().unwrap()).unwrap();
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
        let month = f.partition().to_string();
        for b in f.read(Some(&["ticket_id", "status"])).unwrap() {
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
    let c = s.commit(&lake).unwrap();
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
    let c = s.commit(&lake).unwrap();
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
    s.commit(&lake).unwrap();
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
    s.commit(&lake).unwrap();
    let files = lake.files(Table::Tickets).unwrap();
    assert_eq!(files.len(), 2);
    assert!(files[0].rel().starts_with("tickets/month=2026-01/"));
    assert!(files[1].rel().starts_with("tickets/month=2026-02/"));
}

#[test]
fn a_ticket_that_moves_month_keeps_one_row_the_newest() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let (jan, feb) = (parse("2026-01-15T00:00:00Z"), parse("2026-02-15T00:00:00Z"));
    // March holds no moved ticket: the exact pass does not read its files, and its rows merge
    // as any partition's.
    let mar = parse("2026-03-15T00:00:00Z");
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
    s.push(ticket("T4", mar, 10, "mar")).unwrap();
    s.commit(&lake).unwrap();
    assert_eq!(
        where_is(&lake),
        [
            "month=2026-01 T1 jan",
            "month=2026-01 T3 jan-newer",
            "month=2026-02 T2 feb",
            "month=2026-03 T4 mar"
        ]
    );

    // Against the lake: T1 moves to February (newer), T2's January copy is older and loses,
    // T3's February copy ties with the lake's version and, as the later row, wins.
    let mut s = lake.stage("b").unwrap();
    s.push(ticket("T1", feb, 20, "moved")).unwrap();
    s.push(ticket("T2", jan, 5, "stale")).unwrap();
    s.push(ticket("T3", feb, 5, "tie")).unwrap();
    s.push(ticket("T4", mar, 20, "mar-newer")).unwrap();
    s.push(ticket("T5", mar, 10, "mar")).unwrap();
    s.commit(&lake).unwrap();
    assert_eq!(
        where_is(&lake),
        [
            "month=2026-02 T1 moved",
            "month=2026-02 T2 feb",
            "month=2026-02 T3 tie",
            "month=2026-03 T4 mar-newer",
            "month=2026-03 T5 mar"
        ]
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 5);
}

#[test]
fn the_manifest_and_the_rejects_are_committed_with_the_rows() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let e = ManifestEntry {
        content_hash: "abc".into(),
        profile: "generic".into(),
        source_file: "t.csv".into(),
        ingested_at: 0,
        records: 3,
        rows_stored: 0,
        rows_rejected: 1,
    };
    let jan = 1_768_435_200_000_000;
    let mut s = lake.stage("a").unwrap().with_manifest(e.clone());
    s.push(ticket("T1", jan, 1, "new")).unwrap();
    s.push(ticket("T2", jan, 1, "new")).unwrap();
    s.push_reject(crate::model::Reject {
        source_file: "t.csv".into(),
        line: 4,
        column: Some("opened_at".into()),
        reason: "missing opened_at".into(),
        raw: "T3,,".into(),
    })
    .unwrap();
    s.commit(&lake).unwrap();
    // One snapshot holds the rows, the reject and the manifest's entry, with the counts.
    assert_eq!(snapshot::versions(lake.store()).unwrap(), [1]);
    let first = snapshot::read(lake.store(), 1).unwrap();
    assert_eq!(first.operation.as_deref(), Some("ingest t.csv"));
    let m = lake.manifest().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!((m[0].rows_stored, m[0].rows_rejected), (2, 1));
    assert!(m[0].ingested_at > 0);
    assert_eq!(
        (m[0].content_hash.as_str(), m[0].profile.as_str()),
        ("abc", "generic")
    );
    assert_eq!(lake.rejects().unwrap()[0].line, 4);
    let before = lake.clone().at(At::Version(0));
    assert!(before.manifest().unwrap().is_empty());
    assert_eq!(before.reject_count().unwrap(), 0);
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
        s.commit(&lake).unwrap();
    }
    let files = lake.files(Table::Ratings).unwrap();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].partition(), "month=2026-03");
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
        s.commit(&lake).unwrap();
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
    assert!(s.commit(&first).is_err());
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
}

/// Commits one ticket opened in January 2026 per call.
/// Whether each file a merge adds is one of the staging's files, adopted as it is (the same
/// inode: a hard link), in the order the merge lists them.
/// Stages `tickets` (with a spill where one is `None`) as ingest `id`, commits them, and says
/// of each file the commit added whether it is a staged file taken as it is (same inode).
fn commit_adopted(lake: &Lake, id: &str, tickets: Vec<Option<Ticket>>) -> Vec<bool> {
    use std::os::unix::fs::MetadataExt;
    let ino = |f: &DataFile| fs::metadata(f.local_path().unwrap()).unwrap().ino();
    let mut s = lake.stage(id).unwrap();
    for t in tickets {
        match t {
            Some(t) => s.push(t).unwrap(),
            None => s.spill().unwrap(),
        }
    }
    let merged = s.prepare(lake).unwrap();
    let staged: Vec<u64> = s.staged_files().map(ino).collect();
    let adopted = merged
        .added_files()
        .map(|f| staged.contains(&ino(f)))
        .collect();
    s.finish(lake, merged).unwrap();
    adopted
}

#[test]
fn staged_files_become_data_files_unless_a_row_is_superseded_or_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let jan = 1_768_435_200_000_000; // 2026-01-15
    let feb = jan + 31 * 86_400_000_000;
    let t = |id, opened, updated, status| Some(ticket(id, opened, updated, status));
    // A new partition, distinct keys: the staged file is the data file.
    let new = vec![t("T1", jan, 1, "new"), t("T2", jan, 1, "new")];
    assert_eq!(commit_adopted(&lake, "a", new), [true]);
    // New keys in a partition the lake has: adopted too, beside the first file.
    assert_eq!(
        commit_adopted(&lake, "b", vec![t("T3", jan, 1, "new")]),
        [true]
    );
    assert_eq!(lake.files(Table::Tickets).unwrap().len(), 2);
    // A key staged twice: in two spills of a partition the lake has, and in one staged file
    // of a new partition (adoptable but for the repeated key). Each merged into a new file.
    let twice = vec![
        t("T4", jan, 1, "new"),
        t("T5", feb, 1, "new"),
        t("T5", feb, 2, "active"),
        None,
        t("T4", jan, 2, "active"),
    ];
    assert_eq!(commit_adopted(&lake, "c", twice), [false, false]);
    // A key the lake has: its file is rewritten and the staged row copied.
    let update = vec![t("T1", jan, 2, "resolved")];
    assert_eq!(commit_adopted(&lake, "d", update), [false]);
    assert_eq!(
        statuses(&lake),
        [
            ("T1".into(), "resolved".into()),
            ("T2".into(), "new".into()),
            ("T3".into(), "new".into()),
            ("T4".into(), "active".into()),
            ("T5".into(), "active".into())
        ]
    );
    // Each commit's files are whole data files in the lake once the staging is gone.
    assert!(!dir.path().join("_staging/a").exists());
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 5);
    // Adopted and merged files alike are in the lake's codec, Snappy, with dictionaries for
    // the columns whose values repeat, not for keys or instants; with statistics for ids and
    // instants (the passes prune by `ticket_id`), not for labels.
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    for f in lake.files(Table::Tickets).unwrap() {
        let file = std::fs::File::open(f.local_path().unwrap()).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        for group in reader.metadata().row_groups() {
            for column in group.columns() {
                assert_eq!(column.compression(), Compression::SNAPPY, "{}", f.rel());
                let dictionary = column.dictionary_page_offset().is_some();
                let range = column
                    .statistics()
                    .is_some_and(|s| s.min_bytes_opt().is_some());
                match column.column_path().string().as_str() {
                    "ticket_id" | "opened_at" | "updated_at" => assert!(!dictionary && range),
                    "status" | "channel" => assert!(dictionary && !range),
                    _ => {}
                }
            }
        }
    }
}

fn commit_ticket(lake: &Lake, id: &str, updated: Micros, status: &str) {
    let jan = 1_768_435_200_000_000; // 2026-01-15
    let mut s = lake.stage(id).unwrap();
    s.push(ticket(id, jan, updated, status)).unwrap();
    s.commit(lake).unwrap();
}

#[test]
fn a_partition_staged_over_several_spills_is_one_file_of_a_row_group_per_spill() {
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let jan = 1_768_435_200_000_000; // 2026-01-15
    let t = |id| Some(ticket(id, jan, 1, "new"));
    let spills = vec![t("T1"), t("T2"), None, t("T3"), None, t("T4")];
    // One staged file, adopted as the partition's data file: no merge, no compaction.
    assert_eq!(commit_adopted(&lake, "a", spills), [true]);
    let files = lake.files(Table::Tickets).unwrap();
    assert_eq!(files.len(), 1);
    let file = std::fs::File::open(files[0].local_path().unwrap()).unwrap();
    let groups: Vec<i64> = SerializedFileReader::new(file)
        .unwrap()
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    assert_eq!(groups, [2, 1, 1]);
    assert_eq!(statuses(&lake).len(), 4);
}

#[test]
fn the_key_hashes_taken_while_spilling_are_those_of_the_staged_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let jan = 1_768_435_200_000_000; // 2026-01-15
    let feb = jan + 31 * 86_400_000_000;
    let mut s = lake.stage("hashes").unwrap();
    // Two months over two spills, a key staged twice, and interactions beside the tickets.
    for (id, at) in [("T1", jan), ("T2", feb), ("T3", jan)] {
        s.push(ticket(id, at, 1, "new")).unwrap();
        s.push(interaction(&format!("{id}-I"), at, None)).unwrap();
    }
    s.spill().unwrap();
    for (id, at) in [("T3", jan), ("T4", feb)] {
        s.push(ticket(id, at, 2, "open")).unwrap();
    }
    let merged = s.prepare(&lake).unwrap();
    let mut read = std::collections::BTreeMap::new();
    for ((table, part), files) in s.staged_parts() {
        let mut hashes: Vec<u64> = files
            .iter()
            .flat_map(|f| super::merge::key_hashes(f, *table).unwrap())
            .map(|h| h & !0xFFFF)
            .collect();
        hashes.sort_unstable();
        read.insert((*table, part.clone()), hashes);
    }
    assert_eq!(read.len(), 4);
    assert_eq!(
        read[&(Table::Tickets, "month=2026-01".to_string())].len(),
        3
    );
    assert_eq!(s.tagged_by_partition(), read);
    s.finish(&lake, merged).unwrap();
    assert_eq!(statuses(&lake).len(), 4);
}

#[test]
fn past_the_open_file_limit_a_partition_goes_on_in_a_new_staged_file() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let jan_2000 = 946_684_800_000_000;
    let month = |m: usize| jan_2000 + (m as i64) * 31 * 86_400_000_000;
    // One more month than files may stay open: the last month's file is finished.
    let months = super::staging::MAX_OPEN_STAGED_FILES + 1;
    let mut s = lake.stage("many").unwrap();
    let spill = |s: &mut Staging, prefix: &str, months: &[usize]| {
        for &m in months {
            s.push(ticket(&format!("{prefix}{m:03}"), month(m), 1, "new"))
                .unwrap();
        }
        s.spill().unwrap();
        s.staged_files().count()
    };
    let all: Vec<usize> = (0..months).collect();
    assert_eq!(spill(&mut s, "T", &all), months);
    // The second month's file is still open: its row goes on in it.
    assert_eq!(spill(&mut s, "U", &[1]), months);
    // Only the last month, whose file was finished, starts a new one.
    assert_eq!(spill(&mut s, "V", &all), months + 1);
    s.commit(&lake).unwrap();
    assert_eq!(
        lake.row_count(Table::Tickets).unwrap(),
        2 * months as u64 + 1
    );
    // The last month's two small staged files were merged into one.
    assert_eq!(lake.files(Table::Tickets).unwrap().len(), months);
}

#[test]
fn new_keys_are_appended_and_an_update_rewrites_only_the_file_holding_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    commit_ticket(&lake, "T1", 1, "new");
    let first = lake.files(Table::Tickets).unwrap();
    commit_ticket(&lake, "T2", 1, "new");
    let second = lake.files(Table::Tickets).unwrap();
    assert_eq!(second.len(), 2);
    assert!(second.contains(&first[0]), "T1's file was rewritten");
    commit_ticket(&lake, "T1", 2, "resolved");
    let third = lake.files(Table::Tickets).unwrap();
    assert_eq!(third.len(), 2);
    assert!(!third.contains(&first[0]), "T1's old file is still read");
    let t2 = second.iter().find(|f| **f != first[0]).unwrap();
    assert!(third.contains(t2), "T2's file was rewritten");
    assert_eq!(
        statuses(&lake),
        [
            ("T1".into(), "resolved".into()),
            ("T2".into(), "new".into())
        ]
    );
}

#[test]
fn a_commit_compacts_a_partition_of_many_small_files() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    for i in 0..AUTO_COMPACT_FILES {
        commit_ticket(&lake, &format!("T{i:02}"), 1, "new");
    }
    // The commit that made the 16th file compacted them: one file, every row.
    assert_eq!(lake.files(Table::Tickets).unwrap().len(), 1);
    commit_ticket(&lake, "T99", 1, "new");
    assert_eq!(lake.files(Table::Tickets).unwrap().len(), 2);
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 17);
    // Compaction changed no data: its snapshot reads what the one before it did.
    let versions = snapshot::versions(lake.store()).unwrap();
    let compacted = versions[AUTO_COMPACT_FILES];
    let before = lake.clone().at(At::Version(compacted - 1));
    let after = lake.clone().at(At::Version(compacted));
    assert_eq!(statuses(&before), statuses(&after));
    assert_eq!(after.files(Table::Tickets).unwrap().len(), 1);
    let compaction = snapshot::read(lake.store(), compacted).unwrap();
    assert_eq!(compaction.operation.as_deref(), Some("compact"));
}

#[test]
fn compact_keeps_the_rows_and_clean_up_keeps_what_retained_snapshots_read() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    for i in 1..=5 {
        commit_ticket(&lake, &format!("T{i}"), 1, "new");
    }
    commit_ticket(&lake, "T1", 2, "resolved");
    let rows = statuses(&lake);
    let lock = lake.lock().unwrap();
    let done = lake.compact(2, &lock).unwrap();
    assert_eq!(
        done,
        [Compacted {
            table: "tickets",
            partition: "month=2026-01".into(),
            files: 5,
            rows: 5
        }]
    );
    assert_eq!(lake.files(Table::Tickets).unwrap().len(), 1);
    assert_eq!(statuses(&lake), rows);
    assert_eq!(
        snapshot::versions(lake.store()).unwrap(),
        (1..=7).collect::<Vec<_>>()
    );

    // Keep everything since snapshot 3: 1 and 2 expire, 3 and later stay readable with
    // their files (the first T1 file, which snapshot 3 reads, too).
    let third = snapshot::read(lake.store(), 3).unwrap();
    let c = lake.clean_up(0, third.committed_at, &lock).unwrap();
    assert_eq!(
        (c.oldest_kept, c.snapshots_expired, c.files_deleted),
        (3, 2, 0)
    );
    assert!(
        lake.clone()
            .at(At::Version(2))
            .files(Table::Tickets)
            .is_err()
    );
    let at3 = lake.clone().at(At::Version(3));
    assert_eq!(at3.row_count(Table::Tickets).unwrap(), 3);
    assert_eq!(statuses(&at3)[0], ("T1".into(), "new".into()));

    // Keep nothing but the newest: the six files compaction and the update replaced go.
    let later = chrono::Utc::now().timestamp_micros() + 1_000_000;
    let c = lake.clean_up(0, later, &lock).unwrap();
    assert_eq!(
        (c.oldest_kept, c.snapshots_expired, c.files_deleted),
        (7, 4, 6)
    );
    assert_eq!(snapshot::versions(lake.store()).unwrap(), [7]);
    assert_eq!(statuses(&lake), rows);
    let on_disk = walk_parquet(&lake.store().path_of("tickets").unwrap());
    assert_eq!(on_disk, local_paths(lake.files(Table::Tickets).unwrap()));
    drop(lock);
    // Writes go on from the newest version.
    commit_ticket(&lake, "T6", 1, "new");
    assert_eq!(lake.snapshot().unwrap().version, 8);
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 6);
}

/// The local paths of a local lake's files, sorted.
fn local_paths(files: Vec<DataFile>) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = files.iter().map(|f| f.local_path().unwrap()).collect();
    out.sort();
    out
}

fn walk_parquet(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_parquet(&p));
        } else if p.extension().is_some_and(|x| x == "parquet") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn a_writer_that_merged_while_another_committed_commits_without_losing_or_doubling_a_row() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let feb = parse("2026-02-15T00:00:00Z");
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    commit_ticket(&lake, "T1", 1, "new");

    // A merges an update of T1; B commits a new ticket meanwhile: no conflict, A's merge holds.
    let mut a = lake.stage("a").unwrap();
    a.push(ticket("T1", 1_768_435_200_000_000, 2, "active"))
        .unwrap();
    let merged = a.prepare(&lake).unwrap();
    commit_ticket(&lake, "T2", 1, "new");
    a.finish(&lake, merged).unwrap();
    assert_eq!(
        statuses(&lake),
        [("T1".into(), "active".into()), ("T2".into(), "new".into())]
    );

    // C merges T1 again; D commits a newer T1 that rewrote the file C replaces: C merges again
    // and loses to D's newer version.
    let mut c = lake.stage("c").unwrap();
    c.push(ticket("T1", 1_768_435_200_000_000, 3, "stale"))
        .unwrap();
    let merged = c.prepare(&lake).unwrap();
    commit_ticket(&lake, "T1", 4, "resolved");
    let counts = c.finish(&lake, merged).unwrap();
    assert_eq!(counts[&Table::Tickets].superseded, 1);
    assert_eq!(
        statuses(&lake),
        [
            ("T1".into(), "resolved".into()),
            ("T2".into(), "new".into())
        ]
    );

    // E merges T2 in January; F commits T2 moved to February (a file E never read): E's key is
    // in F's new file, so E merges again, and T2 is one row, the newer.
    let mut e = lake.stage("e").unwrap();
    e.push(ticket("T2", 1_768_435_200_000_000, 5, "january"))
        .unwrap();
    let merged = e.prepare(&lake).unwrap();
    let mut f = lake.stage("f").unwrap();
    f.push(ticket("T2", feb, 6, "february")).unwrap();
    f.commit(&lake).unwrap();
    e.finish(&lake, merged).unwrap();
    assert_eq!(
        located_statuses(&lake),
        [
            ("month=2026-01".into(), "T1".into(), "resolved".into()),
            ("month=2026-02".into(), "T2".into(), "february".into())
        ]
    );
    // The merges that lost were deleted (every file on disk is in a version); staging left
    // nothing behind.
    let committed = local_paths(delta::added_since(lake.store(), "tickets", 0).unwrap());
    let on_disk = walk_parquet(&lake.store().path_of("tickets").unwrap());
    assert!(on_disk.iter().all(|f| committed.contains(f)), "{on_disk:?}");
    assert_eq!(
        fs::read_dir(dir.path().join("_staging")).unwrap().count(),
        0
    );
}

mod concurrent_writers {
    use super::*;
    use proptest::prelude::*;

    /// A row a writer stages: key (T0..T3), month (January or February) and version; versions
    /// are made unique, so each key has one right answer, whatever order writers commit in.
    type Row = (u8, bool, i64);

    fn writers() -> impl Strategy<Value = (Vec<Vec<Row>>, Vec<usize>)> {
        let row = (0u8..4, any::<bool>(), 0i64..1_000);
        let writer = prop::collection::vec(row, 1..4);
        prop::collection::vec(writer, 2..5).prop_flat_map(|ws| {
            // A schedule: each writer appears twice, first to merge, then to commit.
            let n = ws.len();
            let order = Just((0..n).chain(0..n).collect::<Vec<_>>()).prop_shuffle();
            (Just(ws), order)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Writers merge and commit in any interleaving: every key is one row, the newest
        /// version, in that version's month; no file is left that no version names.
        #[test]
        fn any_interleaving_of_writers_keeps_one_row_per_key_the_newest((ws, order) in writers()) {
            let (jan, feb) = (1_768_435_200_000_000, 1_771_113_600_000_000);
            let dir = tempfile::tempdir().unwrap();
            let lake = Lake::open(dir.path()).unwrap();
            let mut expected: std::collections::BTreeMap<String, (i64, String, String)> =
                Default::default();
            let mut stagings: Vec<Option<Staging>> = Vec::new();
            for (w, rows) in ws.iter().enumerate() {
                let mut s = lake.stage(&format!("w{w}")).unwrap();
                for (r, (key, february, version)) in rows.iter().enumerate() {
                    let version = version * 100 + (w * 10 + r) as i64; // unique
                    let (key, status) = (format!("T{key}"), format!("w{w}r{r}"));
                    let (opened, month) = if *february { (feb, "month=2026-02") } else { (jan, "month=2026-01") };
                    s.push(ticket(&key, opened, version, &status)).unwrap();
                    let e = expected.entry(key).or_insert((i64::MIN, String::new(), String::new()));
                    if version > e.0 {
                        *e = (version, month.to_string(), status);
                    }
                }
                stagings.push(Some(s));
            }
            let mut merged: Vec<Option<crate::lake::staging::Merged>> = (0..ws.len()).map(|_| None).collect();
            for w in order {
                match merged[w].take() {
                    None => merged[w] = Some(stagings[w].as_mut().unwrap().prepare(&lake).unwrap()),
                    Some(m) => {
                        stagings[w].take().unwrap().finish(&lake, m).unwrap();
                    }
                }
            }
            let want: Vec<(String, String, String)> = expected
                .into_iter()
                .map(|(key, (_, month, status))| (month, key, status))
                .collect();
            let mut got = located_statuses(&lake);
            got.sort_by(|a, b| a.1.cmp(&b.1));
            let mut want = want;
            want.sort_by(|a, b| a.1.cmp(&b.1));
            prop_assert_eq!(got, want);
            let committed = local_paths(delta::added_since(lake.store(), "tickets", 0).unwrap());
            let on_disk = walk_parquet(&lake.store().path_of("tickets").unwrap());
            prop_assert!(on_disk.iter().all(|f| committed.contains(f)));
        }
    }
}

#[test]
fn clean_up_leaves_alone_what_a_running_writer_is_writing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    commit_ticket(&lake, "T1", 1, "new");
    // A writer has merged (its new file is on disk, named by no version) and a second one is
    // still staging; a third crashed and left its staging behind.
    let mut merging = lake.stage("merging").unwrap();
    merging
        .push(ticket("T2", 1_768_435_200_000_000, 1, "new"))
        .unwrap();
    let merged = merging.prepare(&lake).unwrap();
    let staging = lake.stage("staging").unwrap();
    let crashed = dir.path().join("_staging/crashed");
    fs::create_dir_all(&crashed).unwrap();
    fs::write(crashed.join("part-000000.parquet"), b"half").unwrap();
    fs::write(dir.path().join("_staging/crashed.lock"), b"").unwrap(); // its lock died with it
    let later = chrono::Utc::now().timestamp_micros() + 1_000_000;
    {
        let lock = lake.lock().unwrap();
        let c = lake.clean_up(0, later, &lock).unwrap();
        assert_eq!(
            c.files_deleted, 0,
            "the merge's file is an hour from being an orphan"
        );
        assert_eq!(
            c.staging_deleted, 1,
            "only the crashed writer's staging goes"
        );
    }
    assert!(!crashed.exists() && !dir.path().join("_staging/crashed.lock").exists());
    merging.finish(&lake, merged).unwrap();
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
    staging.abort().unwrap();
    assert_eq!(
        fs::read_dir(dir.path().join("_staging")).unwrap().count(),
        0
    );
}

/// Rows converted to batches off the staging thread land as rows pushed one by one do: in their
/// months, in push order (a tie between two versions of a key goes to the later), with their
/// findings, and the opening of each ticket row known with its key.
#[test]
fn rows_staged_as_batches_commit_as_rows_pushed_one_by_one() {
    let parse = |s: &str| crate::timeparse::TimeParser::default().parse(s).unwrap();
    let (jan, feb) = (parse("2026-01-15T00:00:00Z"), parse("2026-02-15T00:00:00Z"));
    let future = parse("2099-01-01T00:00:00Z");
    let now = parse("2026-03-01T00:00:00Z");
    let rows = vec![
        ticket("T1", jan, 10, "first"),
        ticket("T2", feb, 10, "feb"),
        ticket("T1", jan, 10, "tie-later"),
        ticket("T3", jan, future, "from-the-future"),
    ];
    let batched = Batched::new(rows, &[2, 3, 4, 5], "t.csv", now);
    assert_eq!((batched.rows(), batched.findings()), (4, 1));
    let opened: Vec<(u64, Micros, u64)> =
        batched.opened().map(|o| (o.hash, o.at, o.line)).collect();
    assert_eq!(
        opened,
        [
            (key_hash("T1"), jan, 2),
            (key_hash("T2"), feb, 3),
            (key_hash("T1"), jan, 4),
            (key_hash("T3"), jan, 5)
        ]
    );
    let keys: Vec<String> = batched.opened().map(|o| batched.opened_key(o)).collect();
    assert_eq!(keys, ["T1", "T2", "T1", "T3"]);

    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let mut s = lake.stage("a").unwrap();
    // A row pushed before the batch and one after: the batch's tie wins over the first, the
    // row pushed after wins over the batch's.
    s.push(ticket("T2", feb, 10, "before")).unwrap();
    s.push_batched(batched).unwrap();
    s.push(ticket("T3", jan, future, "after")).unwrap();
    s.commit(&lake).unwrap();
    let stored: Vec<String> = located_statuses(&lake)
        .into_iter()
        .map(|(m, id, st)| format!("{m} {id} {st}"))
        .collect();
    assert_eq!(
        stored,
        [
            "month=2026-01 T1 tie-later",
            "month=2026-01 T3 after",
            "month=2026-02 T2 feb"
        ]
    );
    assert_eq!(lake.finding_count().unwrap(), 1);
    let findings = lake.side_files("_findings").unwrap()[0].read(None).unwrap();
    let key = findings[0]
        .column_by_name("key")
        .unwrap()
        .as_string::<i32>();
    let line = findings[0].column_by_name("line").unwrap();
    let line = line.as_primitive::<datafusion::arrow::datatypes::UInt64Type>();
    assert_eq!((key.value(0), line.value(0)), ("T3", 5));
}

/// Annotated in batches, a text gets its language and score; a row without text keeps what it
/// had (a stream's row may carry its own).
#[test]
fn batches_are_annotated_and_rows_without_text_keep_their_language() {
    let mut silent = interaction("silent", 1, Some("de"));
    silent.body = None;
    silent.sentiment = Some(0.5);
    let mut batches = vec![
        Interaction::to_batch(&[interaction("a", 1, None), silent]),
        Interaction::to_batch(&[interaction("b", 2, None)]),
    ];
    let languages = crate::sentiment::lang::ScoredLanguages::default();
    crate::sentiment::lang::annotate(&mut batches, Table::Interactions, &languages);
    let got: Vec<(String, Option<String>, Option<f64>)> = batches
        .iter()
        .flat_map(|b| {
            let ids = b
                .column_by_name("interaction_id")
                .unwrap()
                .as_string::<i32>();
            let lang = b.column_by_name("lang").unwrap().as_string::<i32>();
            let score = b
                .column_by_name("sentiment")
                .unwrap()
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>();
            (0..b.num_rows())
                .map(|i| {
                    (
                        ids.value(i).to_string(),
                        lang.is_valid(i).then(|| lang.value(i).to_string()),
                        score.is_valid(i).then(|| score.value(i)),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let hello = crate::sentiment::compound("hello");
    assert_eq!(
        got,
        [
            ("a".into(), Some("en".into()), Some(hello)),
            ("silent".into(), Some("de".into()), Some(0.5)),
            ("b".into(), Some("en".into()), Some(hello)),
        ]
    );
}
