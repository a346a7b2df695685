use crate::ingest::profiles::testkit::*;
use crate::model::Table;
use crate::timeparse::TimeParser;

fn t(s: &str) -> String {
    TimeParser::default().parse(s).unwrap().to_string()
}

#[test]
fn a_tickets_page_gives_tickets_with_their_codes_named_and_descriptions() {
    let (_dir, lake, reports) = ingest_fresh("freshdesk", &[fixture("freshdesk_tickets.json")]);
    let r = &reports[0];
    assert_eq!(r.records, 6);
    let tk = r.tables[&Table::Tickets];
    assert_eq!((tk.read, tk.stored, tk.rejected), (6, 4, 2));
    // Descriptions of 101 and 103; 102's is blank and 104's null.
    assert_eq!(r.tables[&Table::Interactions].stored, 2);

    let lake = &lake;
    let at =
        |col: &'static str| move |id: &str| value_of(lake, Table::Tickets, "ticket_id", id, col);
    let status = at("status");
    assert_eq!(status("101").as_deref(), Some("resolved"));
    assert_eq!(status("102").as_deref(), Some("closed"));
    assert_eq!(status("103").as_deref(), Some("open"));
    assert_eq!(
        status("104").as_deref(),
        Some("6"),
        "a custom status keeps its code"
    );
    // Freshdesk's 4 (urgent) is the canonical 1; 1 (low) is 4.
    let (priority, named) = (at("priority"), at("priority_raw"));
    assert_eq!(
        (priority("101"), named("101")),
        (Some("1".into()), Some("urgent".into()))
    );
    assert_eq!(
        (priority("102"), named("102")),
        (Some("4".into()), Some("low".into()))
    );
    assert_eq!(priority("103").as_deref(), Some("3"));
    assert_eq!(priority("104").as_deref(), Some("2"));
    let channel = at("channel");
    assert_eq!(channel("101").as_deref(), Some("portal"));
    assert_eq!(channel("102").as_deref(), Some("chat"));
    assert_eq!(channel("103").as_deref(), Some("bot"));
    assert_eq!(channel("104").as_deref(), Some("other"));
    assert_eq!(at("channel_raw")("104").as_deref(), Some("99"));
    // `stats` times; without stats, a closed ticket's resolution is its last update.
    assert_eq!(
        at("first_response_at")("101"),
        Some(t("2026-03-02T09:40:00Z"))
    );
    assert_eq!(at("resolved_at")("101"), Some(t("2026-03-02T15:00:00Z")));
    assert_eq!(at("resolved_at")("102"), Some(t("2026-03-04T08:00:00Z")));
    assert_eq!(at("resolved_at")("103"), None);
    let reopens = at("reopen_count");
    assert_eq!(reopens("101").as_deref(), Some("0"));
    assert_eq!(reopens("103").as_deref(), Some("1"));
    assert_eq!(reopens("102"), None, "no stats: unknown");
    let (category, group) = (at("category"), at("assignment_group"));
    assert_eq!(category("101").as_deref(), Some("Incident"));
    assert_eq!(category("102").as_deref(), Some("Hardware"));
    assert_eq!(group("101").as_deref(), Some("5000"));
    assert_eq!(at("assignee_id")("103").as_deref(), Some("7002"));
    let body = |id: &str| value_of(lake, Table::Interactions, "interaction_id", id, "body");
    assert_eq!(
        body("103#d").as_deref(),
        Some("Password reset link expired.")
    );
    // The refused records, with their reasons.
    let rejects = lake.rejects().unwrap();
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["missing opened_at", "'7' is not a priority (1–4)"]
    );
}

#[test]
fn conversations_are_interactions_by_direction_and_privacy() {
    let files = [fixture("freshdesk_conversations.json")];
    let (_dir, lake, reports) = ingest_fresh("freshdesk", &files);
    let c = reports[0].tables[&Table::Interactions];
    assert_eq!((c.read, c.stored, c.rejected), (5, 4, 1));
    let lake = &lake;
    let at = |col: &'static str| {
        move |id: &str| value_of(lake, Table::Interactions, "interaction_id", id, col)
    };
    let (role, public, channel) = (at("actor_role"), at("is_public"), at("channel"));
    assert_eq!(role("2001").as_deref(), Some("requester"));
    assert_eq!(role("2002").as_deref(), Some("agent"));
    assert_eq!(public("2003").as_deref(), Some("false"), "a private note");
    assert_eq!(public("2002").as_deref(), Some("true"));
    assert_eq!(channel("2001").as_deref(), Some("email"));
    assert_eq!(channel("2004").as_deref(), Some("phone"));
    assert_eq!(at("ticket_id")("2004").as_deref(), Some("103"));
    assert_eq!(at("actor_id")("2002").as_deref(), Some("7001"));
    assert_eq!(
        at("body")("2002").as_deref(),
        Some("We pushed a new VPN profile; please reconnect.")
    );
    let rejects = lake.rejects().unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].column.as_deref(), Some("incoming"));
    assert_eq!(rejects[0].reason, "'maybe' is not true or false");
}

#[test]
fn satisfaction_ratings_map_the_happy_scale_onto_five_points() {
    let files = [fixture("freshdesk_satisfaction_ratings.json")];
    let (_dir, lake, reports) = ingest_fresh("freshdesk", &files);
    let c = reports[0].tables[&Table::Ratings];
    // 3005 answered only a custom question: unrated, not an error.
    assert_eq!((c.read, c.stored, c.rejected, c.unrated), (5, 3, 1, 1));
    let lake = &lake;
    let at =
        |col: &'static str| move |id: &str| value_of(lake, Table::Ratings, "rating_id", id, col);
    let score = at("score_5");
    assert_eq!(score("3001").as_deref(), Some("5"));
    assert_eq!(score("3002").as_deref(), Some("2"));
    assert_eq!(score("3003").as_deref(), Some("3"));
    assert_eq!(at("scale")("3001").as_deref(), Some("freshdesk"));
    assert_eq!(at("score_raw")("3002").as_deref(), Some("-101"));
    assert_eq!(
        at("comment")("3001").as_deref(),
        Some("Fixed within the day, thanks")
    );
    assert_eq!(at("comment")("3003"), None);
    assert_eq!(at("requester_id")("3002").as_deref(), Some("9002"));
    assert_eq!(at("rated_at")("3002"), Some(t("2026-03-04T09:30:00Z")));
    let rejects = lake.rejects().unwrap();
    assert_eq!(rejects.len(), 1);
    assert!(
        rejects[0]
            .reason
            .contains("'5' is not a Freshdesk survey answer"),
        "{rejects:?}"
    );
}

#[test]
fn wrapped_pages_and_ndjson_read_alike() {
    let page = std::fs::read_to_string(fixture("freshdesk_conversations.json")).unwrap();
    let (_d1, wrapped) = temp_file("c.json", format!("{{\"conversations\": {page}}}"));
    let values: Vec<serde_json::Value> = serde_json::from_str(&page).unwrap();
    let lines: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let (_d2, ndjson) = temp_file("c.ndjson", lines.join("\n"));
    for file in [wrapped, ndjson] {
        let (_dir, _lake, reports) = ingest_fresh("freshdesk", &[file]);
        let c = reports[0].tables[&Table::Interactions];
        assert_eq!((c.read, c.stored, c.rejected), (5, 4, 1));
    }
}
