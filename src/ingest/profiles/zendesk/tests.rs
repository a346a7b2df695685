use crate::ingest::profiles::testkit::*;
use crate::model::Table;
use crate::timeparse::TimeParser;

fn t(s: &str) -> String {
    TimeParser::default().parse(s).unwrap().to_string()
}

#[test]
fn tickets_page_gives_tickets_descriptions_and_answered_ratings() {
    let (_dir, lake, reports) = ingest_fresh("zendesk", &[fixture("zendesk_tickets.json")]);
    let r = &reports[0];
    assert_eq!(r.records, 5);
    let tk = r.tables[&Table::Tickets];
    assert_eq!((tk.read, tk.stored, tk.rejected), (5, 4, 1));
    // good + bad are ratings; offered and unoffered are not ratings and not rejects.
    let ra = r.tables[&Table::Ratings];
    assert_eq!((ra.read, ra.stored, ra.offered, ra.rejected), (4, 2, 2, 0));
    assert_eq!(r.tables[&Table::Interactions].stored, 3);

    let lake = &lake;
    let at =
        |col: &'static str| move |id: &str| value_of(lake, Table::Tickets, "ticket_id", id, col);
    assert_eq!(at("resolved_at")("35436"), Some(t("2026-03-02T15:30:00Z")));
    assert_eq!(
        at("first_response_at")("35436"),
        Some(t("2026-03-02T09:45:00Z"))
    );
    assert_eq!(at("reassignment_count")("35436"), Some("1".into()));
    assert_eq!(at("issue_key")("35436"), Some("9873764".into()));
    // No metric_set: a closed ticket's resolution falls back to its update time.
    assert_eq!(at("resolved_at")("35437"), Some(t("2026-03-04T08:00:00Z")));
    assert_eq!(at("resolved_at")("35439"), None);
    assert_eq!(at("survey_offered")("35438"), Some("true".into()));
    assert_eq!(at("survey_offered")("35439"), Some("false".into()));
    let channels = at("channel");
    assert_eq!(channels("35436"), Some("portal".into()));
    assert_eq!(channels("35437"), Some("email".into()));
    assert_eq!(channels("35438"), Some("messaging".into()));
    assert_eq!(channels("35439"), Some("phone".into()));
    assert_eq!(at("priority")("35439"), Some("1".into()));
    // The description is the requester's opening message; a blank one gives none.
    let body = |id: &str| value_of(lake, Table::Interactions, "interaction_id", id, "body");
    assert_eq!(
        body("35436#d").as_deref(),
        Some("The printer on floor 3 is smoking. Please help, this is urgent!")
    );
    assert_eq!(
        value_of(
            lake,
            Table::Interactions,
            "interaction_id",
            "35436#d",
            "actor_role"
        )
        .as_deref(),
        Some("requester")
    );
    let ids = column(lake, Table::Interactions, "interaction_id");
    assert!(!ids.contains(&Some("35439#d".into())), "{ids:?}");

    let rejects = lake.rejects().unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].column.as_deref(), Some("created_at"));
    assert!(rejects[0].raw.contains("35440"));
}

#[test]
fn the_ratings_api_adds_exact_times_and_replaces_embedded_ratings() {
    let (_dir, lake, reports) = ingest_fresh(
        "zendesk",
        &[
            fixture("zendesk_tickets.json"),
            fixture("zendesk_satisfaction_ratings.json"),
        ],
    );
    let ra = reports[1].tables[&Table::Ratings];
    assert_eq!((ra.read, ra.stored, ra.offered, ra.rejected), (4, 2, 1, 1));
    // The same two ratings, once each, now with the API's times.
    assert_eq!(lake.row_count(Table::Ratings).unwrap(), 2);
    let mut rated = column(&lake, Table::Ratings, "rated_at");
    rated.sort();
    assert_eq!(
        rated,
        vec![
            Some(t("2026-03-02T16:02:00Z")),
            Some(t("2026-03-03T09:45:00Z"))
        ]
    );
    assert_eq!(
        counts(&lake, Table::Ratings, "score_5"),
        [("1".to_string(), 1), ("5".to_string(), 1)].into()
    );
    let bad = lake
        .rejects()
        .unwrap()
        .into_iter()
        .find(|r| r.raw.contains("meh"))
        .unwrap();
    assert_eq!(bad.column.as_deref(), Some("score"));
    assert_eq!(bad.line, 36); // where its object starts
}
