use crate::ingest::profiles::testkit::*;
use crate::ingest::{IngestOptions, ingest};
use crate::lake::Lake;
use crate::model::Table;

fn rejects_by_line(lake: &Lake) -> Vec<(u64, Option<String>, String)> {
    let mut r: Vec<_> = lake
        .rejects()
        .unwrap()
        .into_iter()
        .map(|r| (r.line, r.column, r.reason))
        .collect();
    r.sort();
    r
}

/// The rejects as (line, column), sorted.
fn reject_columns(lake: &Lake) -> Vec<(u64, Option<String>)> {
    rejects_by_line(lake)
        .into_iter()
        .map(|(l, c, _)| (l, c))
        .collect()
}

#[test]
fn every_kind_of_broken_ticket_row_is_rejected_with_line_column_and_reason() {
    let (_dir, lake, reports) = ingest_fresh("generic", &[fixture("tickets_broken.csv")]);
    let r = &reports[0];
    assert_eq!(r.records, 9);
    let c = r.tables[&Table::Tickets];
    assert_eq!((c.read, c.stored, c.rejected, c.findings), (9, 3, 6, 1));
    let rejects = rejects_by_line(&lake);
    let cols: Vec<(u64, Option<&str>)> =
        rejects.iter().map(|(l, c, _)| (*l, c.as_deref())).collect();
    assert_eq!(
        cols,
        vec![
            (3, Some("ticket_id")), // missing id
            (4, Some("opened_at")), // missing timestamp
            (5, Some("opened_at")), // unparseable date
            (7, Some("category")),  // invalid UTF-8
            (8, None),              // too few fields
            (10, None),             // the file ends inside a quoted field
        ]
    );
    assert!(
        rejects[2]
            .2
            .contains("unparseable timestamp '02/30/2026 9am'")
    );
    assert!(rejects[3].2.contains("invalid UTF-8"));
    assert!(rejects[4].2.contains("expected 8 fields, found 5"));
    assert!(rejects[5].2.contains("truncated"));
    // T5 (line 6), resolved before it was opened, is kept: its contradiction is a finding.
    assert_eq!(
        findings(&lake),
        vec![(
            6,
            "T5".into(),
            "resolved_at".into(),
            "before_opened".into(),
            Some("2026-03-01T09:00:00Z".into())
        )]
    );
    // The BOM did not hide the first column; raw text is kept for every reject.
    assert_eq!(
        column(&lake, Table::Tickets, "ticket_id"),
        vec![Some("T1".into()), Some("T5".into()), Some("T8".into())]
    );
    assert!(lake.rejects().unwrap().iter().all(|r| !r.raw.is_empty()));
    assert!(
        lake.rejects()
            .unwrap()
            .iter()
            .all(|r| r.source_file.ends_with("tickets_broken.csv"))
    );
    assert_eq!(
        column(&lake, Table::Tickets, "channel"),
        vec![
            Some("chat".into()),
            Some("phone".into()),
            Some("phone".into())
        ]
    );
    assert_eq!(
        column(&lake, Table::Tickets, "priority"),
        vec![Some("2".into()), Some("3".into()), Some("1".into())]
    );
}

#[test]
fn ratings_on_every_scale_and_out_of_scale_rejects() {
    let (_dir, lake, reports) = ingest_fresh("generic", &[fixture("ratings_broken.csv")]);
    let c = reports[0].tables[&Table::Ratings];
    assert_eq!((c.read, c.stored, c.rejected), (10, 6, 4));
    let mut scores: Vec<(String, String)> = column(&lake, Table::Ratings, "rating_id")
        .into_iter()
        .zip(column(&lake, Table::Ratings, "score_5"))
        .map(|(i, s)| (i.unwrap(), s.unwrap()))
        .collect();
    scores.sort();
    let ten_seven = (1.0 + 6.0 * 4.0 / 9.0f64).to_string();
    assert_eq!(
        scores,
        vec![
            ("R1".into(), "5".into()),
            ("R10".into(), "4".into()),
            ("R2".into(), "5".into()),
            ("R3".into(), "3".into()),
            ("R4".into(), ten_seven),
            ("R5".into(), "1".into()),
        ]
    );
    let cols = reject_columns(&lake);
    assert_eq!(
        cols,
        vec![
            (7, Some("score_raw".into())),
            (8, Some("score_raw".into())),
            (9, Some("scale".into())),
            (10, Some("rated_at".into())),
        ]
    );
}

#[test]
fn ndjson_rejects_malformed_lines_and_keeps_the_rest() {
    let (_dir, lake, reports) = ingest_fresh("generic", &[fixture("interactions_broken.ndjson")]);
    let c = reports[0].tables[&Table::Interactions];
    assert_eq!(reports[0].records, 6);
    assert_eq!((c.read, c.stored, c.rejected), (6, 3, 3));
    let lines = reject_columns(&lake);
    assert_eq!(
        lines,
        vec![(4, Some("actor_role".into())), (5, None), (6, None)]
    );
}

#[test]
fn a_file_without_a_required_column_is_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let (reports, errors) = ingest(&lake, &[fixture("tickets_missing_column.csv")], &opts).unwrap();
    assert!(reports.is_empty());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].file.ends_with("tickets_missing_column.csv"));
    assert!(
        errors[0].message.contains("'opened_at'"),
        "{}",
        errors[0].message
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 0);
    assert!(lake.manifest().unwrap().is_empty());
    assert!(
        !dir.path()
            .join("_staging")
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    );
}

#[test]
fn an_unreadable_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path()).unwrap();
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let (_, errors) = ingest(&lake, &[dir.path().join("tickets_nowhere.csv")], &opts).unwrap();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].message.contains("cannot open"),
        "{}",
        errors[0].message
    );
}

#[test]
fn a_newer_version_replaces_the_older_and_an_older_one_does_not() {
    let (_dir, lake, _) = ingest_fresh("generic", &[fixture("tickets_v1.csv")]);
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let (reports, _) = ingest(&lake, &[fixture("tickets_v2.csv")], &opts).unwrap();
    let c = reports[0].tables[&Table::Tickets];
    // A is newer (replaces), B is older than the lake's (superseded), D is new.
    assert_eq!((c.read, c.stored, c.superseded, c.replaced), (3, 2, 1, 1));
    let mut rows: Vec<(String, String)> = column(&lake, Table::Tickets, "ticket_id")
        .into_iter()
        .zip(column(&lake, Table::Tickets, "status"))
        .map(|(i, s)| (i.unwrap(), s.unwrap()))
        .collect();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            ("A".into(), "resolved".into()),
            ("B".into(), "resolved".into()),
            ("C".into(), "new".into()),
            ("D".into(), "new".into()),
        ]
    );
}

#[test]
fn a_version_whose_opened_at_moved_to_another_month_keeps_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let header = "ticket_id,opened_at,updated_at,status,channel\n";
    let file = |name: &str, rows: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{header}{rows}")).unwrap();
        p
    };
    let rows = |lake: &Lake| {
        let mut r: Vec<(String, String)> = column(lake, Table::Tickets, "ticket_id")
            .into_iter()
            .zip(column(lake, Table::Tickets, "status"))
            .map(|(i, s)| (i.unwrap(), s.unwrap()))
            .collect();
        r.sort();
        r
    };
    // M is opened in January; its next version says February (the source corrected it), and
    // within that same file an older copy of N moves the other way.
    let v1 = file(
        "tickets_1.csv",
        "M,2026-01-31T23:00:00Z,2026-02-01T08:00:00Z,new,email\nN,2026-02-03T09:00:00Z,2026-02-05T09:00:00Z,resolved,chat\n",
    );
    ingest(&lake, &[v1], &opts).unwrap();
    let v2 = file(
        "tickets_2.csv",
        "M,2026-02-01T00:30:00Z,2026-02-02T08:00:00Z,resolved,email\nN,2026-01-30T09:00:00Z,2026-02-04T09:00:00Z,new,chat\n",
    );
    let (reports, _) = ingest(&lake, &[v2], &opts).unwrap();
    let c = reports[0].tables[&Table::Tickets];
    // M's newer version replaces the January row; N's older copy loses to the lake's row.
    assert_eq!((c.read, c.stored, c.superseded, c.replaced), (2, 1, 1, 1));
    assert_eq!(
        rows(&lake),
        vec![
            ("M".into(), "resolved".into()),
            ("N".into(), "resolved".into())
        ]
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2);
    let mut months: Vec<String> = lake
        .files(Table::Tickets)
        .unwrap()
        .iter()
        .map(|f| f.partition().to_string())
        .collect();
    // January lost its only row: its file is gone, not left empty. (February has two: N's file,
    // untouched, and M's new version, appended.)
    months.dedup();
    assert_eq!(months, ["month=2026-02"]);
    // Both versions in one file: the newer one's month wins there too.
    let v3 = file(
        "tickets_3.csv",
        "P,2026-03-31T22:00:00Z,2026-04-01T08:00:00Z,new,email\nP,2026-04-01T01:00:00Z,2026-04-02T08:00:00Z,resolved,email\n",
    );
    let (reports, _) = ingest(&lake, &[v3], &opts).unwrap();
    let c = reports[0].tables[&Table::Tickets];
    assert_eq!((c.read, c.stored, c.superseded), (2, 1, 1));
    assert_eq!(rows(&lake).len(), 3);
    assert!(rows(&lake).contains(&("P".into(), "resolved".into())));
}

#[test]
fn a_mapping_file_loads_another_tools_export() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("export.csv");
    std::fs::write(
        &csv,
        "Ref;Raised;Medium;Area\nX-1;03.03.2026 14:05;Walk up;Printers\n".replace(';', ","),
    )
    .unwrap();
    let map = dir.path().join("map.toml");
    std::fs::write(
        &map,
        "table = \"tickets\"\nsource = \"otrs\"\ndate_formats = [\"%d.%m.%Y %H:%M\"]\ntimezone = \"Europe/Berlin\"\n\
         [tickets]\nticket_id = \"Ref\"\nopened_at = \"Raised\"\nchannel = \"Medium\"\ncategory = \"Area\"\n\
         [channels]\n\"Walk up\" = \"walk_in\"\n",
    )
    .unwrap();
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        profile: "generic".into(),
        mapping: Some(map),
        ..Default::default()
    };
    let (reports, errors) = ingest(&lake, &[csv], &opts).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(reports[0].tables[&Table::Tickets].stored, 1);
    assert_eq!(
        column(&lake, Table::Tickets, "channel"),
        vec![Some("walk_in".into())]
    );
    assert_eq!(
        column(&lake, Table::Tickets, "source"),
        vec![Some("otrs".into())]
    );
    // 14:05 in Berlin (winter, UTC+1) is 13:05 UTC.
    let want = crate::timeparse::TimeParser::default()
        .parse("2026-03-03T13:05:00Z")
        .unwrap();
    assert_eq!(
        column(&lake, Table::Tickets, "opened_at"),
        vec![Some(want.to_string())]
    );
}

#[test]
fn a_csv_of_several_chunks_keeps_file_order_lines_and_ties() {
    // 10,000 records: five chunks, converted on the pool up to four at once. Every thousandth lacks opened_at;
    // ticket DUP appears in the first, second and third chunk with the same update time, so
    // only file order decides which version stays (the last).
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("tickets.csv");
    let mut text = String::from("ticket_id,opened_at,updated_at,status\n");
    let mut bad_lines = Vec::new();
    for i in 0..10_000u64 {
        let line = i + 2;
        let row = match i {
            100 => "DUP,2026-03-01T09:00:00Z,2026-03-02T09:00:00Z,first".to_string(),
            5000 => "DUP,2026-03-01T09:00:00Z,2026-03-02T09:00:00Z,second".to_string(),
            9000 => "DUP,2026-03-01T09:00:00Z,2026-03-02T09:00:00Z,third".to_string(),
            _ if i % 1000 == 999 => {
                bad_lines.push(line);
                format!("T{i},,,open")
            }
            _ => format!("T{i},2026-03-01T09:00:00Z,,open"),
        };
        text.push_str(&row);
        text.push('\n');
    }
    std::fs::write(&csv, text).unwrap();
    let (_dir, lake, reports) = ingest_fresh("generic", &[csv]);
    let c = reports[0].tables[&Table::Tickets];
    assert_eq!(reports[0].records, 10_000);
    assert_eq!(
        (c.read, c.stored, c.superseded, c.rejected),
        (10_000, 9_988, 2, 10)
    );
    let rejects = rejects_by_line(&lake);
    assert_eq!(rejects.iter().map(|r| r.0).collect::<Vec<_>>(), bad_lines);
    assert!(rejects.iter().all(|r| r.1.as_deref() == Some("opened_at")));
    assert_eq!(
        value_of(&lake, Table::Tickets, "ticket_id", "DUP", "status"),
        Some("third".into())
    );
}

#[test]
fn a_ratings_row_without_a_score_is_unrated_not_rejected() {
    let (_dir, file) = temp_file(
        "ratings.csv",
        "rating_id,ticket_id,rated_at,score_raw,comment\n\
         R1,T1,2026-03-02T11:00:00Z,4,Fine\n\
         T2,T2,,,\n\
         R3,T3,2026-03-02T11:00:00Z,,\n\
         R4,,2026-03-02T11:00:00Z,5,no ticket\n\
         ,T5,,,\n",
    );
    let (_dir, lake, reports) = ingest_fresh("generic", &[file]);
    let c = reports[0].tables[&Table::Ratings];
    // Lines 3, 4 and 6 have no score: tickets nobody rated, whatever else they lack (line 3 has
    // no date, line 6 no key). Line 5 has a score and no ticket: a reject.
    assert_eq!((c.read, c.stored, c.rejected, c.unrated), (5, 1, 1, 3));
    assert!(c.balances());
    let rejects = rejects_by_line(&lake);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].0, 5);
    assert_eq!(rejects[0].1.as_deref(), Some("ticket_id"));
    let summary = reports[0].to_string();
    assert!(summary.contains("unrated 3"), "{summary}");
}

#[test]
fn one_file_read_through_two_mappings_keeps_the_rejects_and_findings_of_both() {
    let (dir, file) = temp_file(
        "export.csv",
        "id,opened,resolved,score\n\
         A,2026-03-02T10:00:00Z,2026-03-02T09:00:00Z,5\n\
         B,,,\n\
         C,2026-03-02T10:00:00Z,2026-03-02T11:00:00Z,9\n",
    );
    let map = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let tickets = map(
        "tickets.toml",
        "table = \"tickets\"\n[tickets]\nticket_id = \"id\"\nopened_at = \"opened\"\nresolved_at = \"resolved\"\n",
    );
    let ratings = map(
        "ratings.toml",
        "table = \"ratings\"\n[ratings]\nrating_id = \"id\"\nticket_id = \"id\"\nrated_at = \"resolved\"\nscore_raw = \"score\"\n",
    );
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    for mapping in [tickets, ratings] {
        let opts = IngestOptions {
            profile: "generic".into(),
            mapping: Some(mapping),
            ..Default::default()
        };
        let (_, errors) = ingest(&lake, std::slice::from_ref(&file), &opts).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
    }
    // Tickets: B has no opened time (a reject), A was resolved before it was opened (a finding).
    // Ratings: B is unrated, C's 9 is off the five scale (a reject).
    let lines = reject_columns(&lake);
    assert_eq!(
        lines,
        vec![(3, Some("opened".into())), (4, Some("score".into()))]
    );
    assert_eq!(findings(&lake).len(), 1);
}

#[test]
fn a_header_that_repeats_a_column_read_as_one_value_is_refused_naming_it() {
    let (dir, file) = temp_file(
        "tickets.csv",
        "ticket_id,opened_at,status,status\nT1,2026-03-02T09:00:00Z,new,resolved\n",
    );
    let lake = Lake::open(dir.path().join("lake")).unwrap();
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let (reports, errors) = ingest(&lake, &[file], &opts).unwrap();
    assert!(reports.is_empty());
    assert!(
        errors[0]
            .message
            .contains("column 'status' appears 2 times in the header"),
        "{}",
        errors[0].message
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 0);
}

#[test]
fn text_after_a_json_array_is_a_reject_not_ignored() {
    let (_dir, file) = temp_file(
        "tickets.json",
        "[{\"ticket_id\": \"T1\", \"opened_at\": \"2026-03-02T09:00:00Z\"}]\n\
         {\"ticket_id\": \"T2\", \"opened_at\": \"2026-03-02T09:00:00Z\"}\n",
    );
    let (_dir, lake, reports) = ingest_fresh("generic", &[file]);
    let c = reports[0].tables[&Table::Tickets];
    assert_eq!((c.read, c.stored, c.rejected), (2, 1, 1));
    let rejects = rejects_by_line(&lake);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].0, 2);
    assert!(
        rejects[0].2.contains("after the end of the JSON array"),
        "{rejects:?}"
    );
    assert_eq!(
        column(&lake, Table::Tickets, "ticket_id"),
        vec![Some("T1".into())]
    );
}

/// An event log (one row per change) read as if it were one row per ticket, with the time of
/// each change mapped to `opened_at`: the lake keeps each ticket's latest row, so it must say so.
#[test]
fn a_ticket_whose_rows_disagree_on_opened_at_is_a_finding_once() {
    let body = "ticket_id,opened_at,updated_at,status\n\
                T1,2026-03-02T09:00:00Z,2026-03-02T09:00:00Z,new\n\
                T2,2026-03-02T09:30:00Z,2026-03-02T09:30:00Z,new\n\
                T1,2026-03-02T10:00:00Z,2026-03-02T10:00:00Z,active\n\
                T1,2026-03-03T08:00:00Z,2026-03-03T08:00:00Z,resolved\n\
                T2,2026-03-02T09:30:00Z,2026-03-02T11:00:00Z,resolved\n";
    let (_d, path) = temp_file("tickets_events.csv", body);
    let (_dir, lake, reports) = ingest_fresh("generic", &[path]);
    let c = reports[0].tables[&Table::Tickets];
    assert_eq!((c.read, c.stored, c.superseded), (5, 2, 3));
    // T1's second row is the first to disagree; T2's rows agree.
    assert_eq!((c.opened_changed, c.findings), (1, 1));
    assert_eq!(
        findings(&lake),
        [(
            4,
            "T1".to_string(),
            "opened_at".to_string(),
            "opened_at_changed".to_string(),
            Some("2026-03-02T10:00:00Z (an earlier row: 2026-03-02T09:00:00Z)".to_string())
        )]
    );
    let shown = reports[0].to_string();
    assert!(
        shown.contains("warning: 1 tickets have rows with different opened_at"),
        "{shown}"
    );
}

#[test]
fn an_input_is_known_by_its_blake3_hash_and_by_the_sha256_recorded_before_blake3() {
    use crate::ingest::{content_hash, sha256_hex};
    use crate::lake::ManifestEntry;
    // The published BLAKE3 hash of no bytes.
    let (_e, empty) = temp_file("empty.csv", "");
    assert_eq!(
        content_hash(&empty).unwrap(),
        "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    let (_d, file) = temp_file(
        "tickets.csv",
        "ticket_id,opened_at\nT1,2026-01-05T10:00:00Z\n",
    );
    let (_other_dir, other) = temp_file(
        "tickets.csv",
        "ticket_id,opened_at\nT2,2026-01-05T10:00:00Z\n",
    );
    let (_l, lake, _) = ingest_fresh("generic", std::slice::from_ref(&file));
    let recorded = lake.manifest().unwrap().remove(0);
    assert_eq!(recorded.content_hash, content_hash(&file).unwrap());
    let opts = IngestOptions {
        profile: "generic".into(),
        ..Default::default()
    };
    let again = |lake: &Lake| ingest(lake, std::slice::from_ref(&file), &opts).unwrap().0;
    assert!(again(&lake)[0].skipped);
    // A lake kept from before BLAKE3 records the SHA-256 in hex: the same content is still
    // known (and another content with a recorded SHA-256 is not taken for it).
    for path in [&other, &file] {
        let dir = tempfile::tempdir().unwrap();
        let old = Lake::open(dir.path()).unwrap();
        let entry = ManifestEntry {
            content_hash: sha256_hex(path).unwrap(),
            ..recorded.clone()
        };
        assert_eq!(entry.content_hash.len(), 64);
        let before = old.stage("before").unwrap().with_manifest(entry);
        before.commit(&old).unwrap();
        assert_eq!(again(&old)[0].skipped, path == &file, "{}", path.display());
    }
}

#[test]
fn chunks_converted_out_of_order_are_staged_in_file_order() {
    let mut order = super::InOrder::new();
    let (done, finished) = std::sync::mpsc::channel();
    let sent: Vec<usize> = (0..4).map(|_| order.next_number()).collect();
    assert_eq!((sent, order.in_flight()), (vec![0, 1, 2, 3], 4));
    let mut staged = Vec::new();
    for seq in [2, 0, 3, 1] {
        done.send((seq, Ok(seq * 10))).unwrap();
        order
            .wait(&finished, |c| {
                staged.push(c);
                Ok(())
            })
            .unwrap();
        let expect: &[usize] = match seq {
            2 => &[],
            0 => &[0],
            3 => &[0],
            _ => &[0, 10, 20, 30],
        };
        assert_eq!(staged, expect, "after chunk {seq}");
    }
    assert_eq!(order.in_flight(), 0);
    assert_eq!(order.next_number(), 4);
}
