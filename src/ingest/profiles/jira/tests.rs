use crate::ingest::profiles::testkit::*;
use crate::model::Table;
use crate::timeparse::TimeParser;

fn t(s: &str) -> String {
    TimeParser::default().parse(s).unwrap().to_string()
}

#[test]
fn issues_comments_and_ratings() {
    let (_dir, lake, reports) = ingest_fresh("jira", &[fixture("jira_issues.csv")]);
    let r = &reports[0];
    assert_eq!(r.records, 6);
    let tk = r.tables[&Table::Tickets];
    // SD-4 has no readable Created; SD-6, resolved before it was created, is kept with a finding.
    assert_eq!((tk.read, tk.stored, tk.rejected, tk.findings), (6, 5, 1, 1));
    let ra = r.tables[&Table::Ratings];
    // Rated: SD-1, SD-2; SD-5's 6 stars are refused; SD-3 and SD-6 nobody rated.
    assert_eq!((ra.read, ra.stored, ra.rejected, ra.unrated), (5, 2, 1, 2));
    // Descriptions of SD-1, SD-2, SD-3, SD-5, SD-6 and the comments of SD-1 (2) and SD-2 (1).
    let ia = r.tables[&Table::Interactions];
    assert_eq!((ia.read, ia.stored), (8, 8));

    let role = |id: &str| {
        value_of(
            &lake,
            Table::Interactions,
            "interaction_id",
            id,
            "actor_role",
        )
    };
    assert_eq!(role("SD-1#d"), Some("requester".into()));
    assert_eq!(role("SD-1#c1"), Some("agent".into()));
    assert_eq!(role("SD-1#c2"), Some("requester".into()));
    let body = |id: &str| value_of(&lake, Table::Interactions, "interaction_id", id, "body");
    assert_eq!(
        body("SD-2#c1").as_deref(),
        Some("We are looking into it; it may take a while.")
    );
    assert!(
        body("SD-2#d")
            .unwrap()
            .contains("\"always-on\" profile fails,\nagain")
    );

    let get = |col: &str, id: &str| value_of(&lake, Table::Tickets, "ticket_id", id, col);
    assert_eq!(get("opened_at", "SD-1"), Some(t("2026-03-02T09:15:00Z")));
    assert_eq!(
        get("first_response_at", "SD-1"),
        Some(t("2026-03-02T09:40:12.500Z"))
    );
    assert_eq!(get("channel", "SD-1"), Some("portal".into()));
    assert_eq!(get("channel", "SD-2"), Some("email".into()));
    assert_eq!(get("category", "SD-1"), Some("Get IT help".into()));
    assert_eq!(get("priority", "SD-5"), Some("4".into()));
    assert_eq!(get("resolved_at", "SD-3"), None);

    let mut scores = column(&lake, Table::Ratings, "score_5");
    scores.sort();
    assert_eq!(scores, vec![Some("1".into()), Some("4".into())]);

    let mut rejects = lake.rejects().unwrap();
    rejects.sort_by_key(|r| r.line);
    let summary: Vec<(u64, Option<&str>)> = rejects
        .iter()
        .map(|r| (r.line, r.column.as_deref()))
        .collect();
    // SD-2's description spans two lines, so SD-4 starts on line 6: Created is not a date;
    // SD-5 (line 7): 6 stars.
    assert_eq!(
        summary,
        vec![(6, Some("Created")), (7, Some("Satisfaction rating"))]
    );
    assert!(rejects[1].reason.contains("outside the five scale"));
    // SD-6 (line 8), resolved before it was created: kept, its contradiction a finding.
    assert_eq!(
        findings(&lake),
        vec![(
            8,
            "SD-6".into(),
            "resolved_at".into(),
            "before_opened".into(),
            Some("2026-03-11T09:00:00Z".into())
        )]
    );
    assert_eq!(get("resolved_at", "SD-6"), Some(t("2026-03-11T09:00:00Z")));
}

#[test]
fn an_unreadable_description_is_a_counted_reject_and_the_ticket_stays() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("jira.csv");
    let fixture = std::fs::read(fixture("jira_issues.csv")).unwrap();
    let good = "My laptop shows a black screen after the update.";
    let at = fixture
        .windows(good.len())
        .position(|w| w == good.as_bytes())
        .unwrap();
    let mut bytes = fixture[..at].to_vec();
    bytes.extend_from_slice(b"black \xff screen");
    bytes.extend_from_slice(&fixture[at + good.len()..]);
    std::fs::write(&file, bytes).unwrap();

    let (_dir, lake, reports) = ingest_fresh("jira", &[file]);
    let r = &reports[0];
    assert_eq!(r.tables[&Table::Tickets].stored, 5);
    let ia = r.tables[&Table::Interactions];
    assert_eq!((ia.read, ia.stored, ia.rejected), (8, 7, 1));
    let ids = column(&lake, Table::Interactions, "interaction_id");
    assert!(!ids.contains(&Some("SD-1#d".into())), "{ids:?}");
    assert!(ids.contains(&Some("SD-1#c1".into())), "{ids:?}");
    let reject = lake
        .rejects()
        .unwrap()
        .into_iter()
        .find(|r| r.column.as_deref() == Some("Description"))
        .expect("a reject for the description");
    assert_eq!(reject.line, 2);
    assert!(reject.reason.contains("UTF-8"), "{}", reject.reason);
}
