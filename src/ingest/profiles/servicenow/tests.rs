use crate::ingest::profiles::testkit::*;
use crate::model::Table;

const FILE: &str = "servicenow_incident_events_sample.csv";

#[test]
fn the_reference_sample_collapses_to_one_ticket_per_incident() {
    let (_dir, lake, reports) = ingest_fresh("servicenow", &[reference(FILE)]);
    let r = &reports[0];
    assert_eq!(r.records, 14_422);
    let t = r.tables[&Table::Tickets];
    // 14,422 events of 2,491 incidents: the latest update of each is stored, the rest superseded.
    assert_eq!(
        (t.read, t.stored, t.superseded, t.rejected),
        (14_422, 2_491, 11_931, 0)
    );
    assert_eq!(lake.row_count(Table::Tickets).unwrap(), 2_491);
    // An event export with an `opened_at` column: every version agrees on it.
    assert_eq!(t.opened_changed, 0);

    // Channels from contact_type (final versions: 2,472 Phone, 11 Self service, 7 Email, 1 Direct opening).
    let ch = counts(&lake, Table::Tickets, "channel");
    assert_eq!(ch["phone"], 2_472);
    assert_eq!(ch["portal"], 11);
    assert_eq!(ch["email"], 7);
    assert_eq!(ch["other"], 1);

    // Totals of the latest versions, computed from the CSV independently (latest sys_updated_at,
    // ties to the later row): 2,512 reassignments and 37 reopens.
    assert_eq!(sum(&lake, Table::Tickets, "reassignment_count"), 2_512);
    assert_eq!(sum(&lake, Table::Tickets, "reopen_count"), 37);
    let pri = counts(&lake, Table::Tickets, "priority");
    assert_eq!(pri.values().sum::<usize>(), 2_491);
    assert!(!pri.contains_key("<null>"));
    assert_eq!(counts(&lake, Table::Tickets, "source")["servicenow"], 2_491);
    // `?` reads as empty: no ticket has the literal text.
    assert!(!counts(&lake, Table::Tickets, "issue_key").contains_key("?"));
}

#[test]
fn re_ingesting_the_same_file_changes_nothing() {
    let (_dir, lake, _) = ingest_fresh("servicenow", &[reference(FILE)]);
    let before = column(&lake, Table::Tickets, "updated_at");
    let opts = crate::ingest::IngestOptions {
        profile: "servicenow".into(),
        ..Default::default()
    };
    let (reports, errors) = crate::ingest::ingest(&lake, &[reference(FILE)], &opts).unwrap();
    assert!(errors.is_empty());
    assert!(reports[0].skipped);
    assert_eq!(column(&lake, Table::Tickets, "updated_at"), before);
    assert_eq!(lake.manifest().unwrap().len(), 1);
}
