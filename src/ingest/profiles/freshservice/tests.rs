use crate::ingest::profiles::testkit::*;
use crate::model::Table;
use crate::timeparse::TimeParser;

fn t(s: &str) -> String {
    TimeParser::default().parse(s).unwrap().to_string()
}

#[test]
fn a_tickets_page_gives_tickets_with_freshservice_sources() {
    let files = [fixture("freshservice_tickets.json")];
    let (_dir, lake, reports) = ingest_fresh("freshservice", &files);
    let r = &reports[0];
    assert_eq!(r.records, 6);
    let tk = r.tables[&Table::Tickets];
    assert_eq!((tk.read, tk.stored, tk.rejected), (6, 4, 2));
    // Descriptions of 201 and 203; 202's is blank and 204's null.
    assert_eq!(r.tables[&Table::Interactions].stored, 2);

    let lake = &lake;
    let at =
        |col: &'static str| move |id: &str| value_of(lake, Table::Tickets, "ticket_id", id, col);
    // Freshservice's codes, not Freshdesk's: 4 is chat (a forum on Freshdesk), 9 a walk-up,
    // 10 Slack; a custom source keeps its code.
    let channel = at("channel");
    assert_eq!(channel("201").as_deref(), Some("chat"));
    assert_eq!(channel("202").as_deref(), Some("walk_in"));
    assert_eq!(channel("203").as_deref(), Some("messaging"));
    assert_eq!(channel("204").as_deref(), Some("other"));
    assert_eq!(at("channel_raw")("204").as_deref(), Some("1001"));
    let status = at("status");
    assert_eq!(status("201").as_deref(), Some("resolved"));
    assert_eq!(status("202").as_deref(), Some("closed"));
    assert_eq!(status("203").as_deref(), Some("open"));
    assert_eq!(
        status("204").as_deref(),
        Some("6"),
        "a custom status keeps its code"
    );
    let (priority, named) = (at("priority"), at("priority_raw"));
    assert_eq!(
        (priority("201"), named("201")),
        (Some("2".into()), Some("high".into()))
    );
    assert_eq!(priority("202").as_deref(), Some("4"));
    assert_eq!(priority("204").as_deref(), Some("1"));
    // `include=stats` times; without stats, a closed ticket's resolution is its last update.
    assert_eq!(
        at("first_response_at")("201"),
        Some(t("2026-03-02T09:40:00Z"))
    );
    assert_eq!(at("resolved_at")("201"), Some(t("2026-03-02T15:00:00Z")));
    assert_eq!(at("resolved_at")("202"), Some(t("2026-03-04T08:00:00Z")));
    assert_eq!(at("resolved_at")("203"), None);
    let reopens = at("reopen_count");
    assert_eq!(reopens("201").as_deref(), Some("0"));
    assert_eq!(reopens("203").as_deref(), Some("1"));
    assert_eq!(reopens("202"), None, "no stats: unknown");
    let category = at("category");
    assert_eq!(category("201").as_deref(), Some("Network"));
    assert_eq!(
        category("203").as_deref(),
        Some("Service Request"),
        "no category: the type"
    );
    assert_eq!(at("subcategory")("201").as_deref(), Some("VPN"));
    assert_eq!(at("assignment_group")("202").as_deref(), Some("6001"));
    assert_eq!(at("assignee_id")("203").as_deref(), Some("8002"));
    assert_eq!(at("source")("201").as_deref(), Some("freshservice"));
    let rejects = lake.rejects().unwrap();
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["missing opened_at", "'9' is not a priority (1–4)"]
    );
}

#[test]
fn conversations_are_interactions_by_direction_and_privacy() {
    let files = [fixture("freshservice_conversations.json")];
    let (_dir, lake, reports) = ingest_fresh("freshservice", &files);
    let c = reports[0].tables[&Table::Interactions];
    assert_eq!((c.read, c.stored, c.rejected), (4, 3, 1));
    let lake = &lake;
    let at = |col: &'static str| {
        move |id: &str| value_of(lake, Table::Interactions, "interaction_id", id, col)
    };
    assert_eq!(at("actor_role")("5001").as_deref(), Some("requester"));
    assert_eq!(at("actor_role")("5002").as_deref(), Some("agent"));
    assert_eq!(at("is_public")("5002").as_deref(), Some("true"));
    assert_eq!(at("is_public")("5003").as_deref(), Some("false"), "a note");
    assert_eq!(at("actor_id")("5002").as_deref(), Some("8001"));
    assert_eq!(at("ticket_id")("5003").as_deref(), Some("201"));
    assert_eq!(
        at("body")("5001").as_deref(),
        Some("It dropped again at 10:00.")
    );
    let rejects = lake.rejects().unwrap();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].column.as_deref(), Some("incoming"));
    assert_eq!(rejects[0].reason, "'yes' is not true or false");
}

#[test]
fn csat_responses_are_points_ratings_of_the_ticket_they_were_saved_with() {
    let files = [fixture("freshservice_csat_responses.ndjson")];
    let (_dir, lake, reports) = ingest_fresh("freshservice", &files);
    let c = reports[0].tables[&Table::Ratings];
    // 7004 has no score: unrated; 7005 names no ticket and 7006 is 6 of 4: refused.
    assert_eq!((c.read, c.stored, c.rejected, c.unrated), (6, 3, 2, 1));
    let lake = &lake;
    let at =
        |col: &'static str| move |id: &str| value_of(lake, Table::Ratings, "rating_id", id, col);
    let score = at("score_5");
    // Of 4 points: good (3) is a satisfied 4, fair (2) a dissatisfied 2, poor (1) a 1.
    assert_eq!(score("7001").as_deref(), Some("4"));
    assert_eq!(score("7002").as_deref(), Some("1"));
    assert_eq!(score("7003").as_deref(), Some("2"));
    assert_eq!(at("score_raw")("7001").as_deref(), Some("3/4"));
    assert_eq!(at("scale")("7001").as_deref(), Some("points"));
    assert_eq!(at("ticket_id")("7003").as_deref(), Some("203"));
    assert_eq!(at("rated_at")("7001"), Some(t("2026-03-02T16:00:00Z")));
    // The answers after the rating question are the comment; a blank answer is none.
    assert_eq!(at("comment")("7001").as_deref(), Some("Quick fix, thanks"));
    assert_eq!(at("comment")("7002"), None);
    let rejects = lake.rejects().unwrap();
    let found: Vec<(Option<&str>, &str)> = rejects
        .iter()
        .map(|r| (r.column.as_deref(), r.reason.as_str()))
        .collect();
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].0, Some("ticket_id"));
    assert!(found[0].1.contains("does not name its ticket"), "{found:?}");
    assert_eq!(found[1].0, Some("score.acquired_score"));
    assert!(found[1].1.contains("'6/4' is not k/n points"), "{found:?}");
}

/// Pages saved as they came give the same tickets as one page: an array of pages, NDJSON of
/// pages, and single `GET /tickets/[id]` answers.
#[test]
fn pages_saved_as_they_came_read_like_one_page() {
    let page: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("freshservice_tickets.json")).unwrap(),
    )
    .unwrap();
    let tickets = page["tickets"].as_array().unwrap().clone();
    let wrap = |items: &[serde_json::Value]| serde_json::json!({ "tickets": items }).to_string();
    let array_of_pages = format!("[{}, {}]", wrap(&tickets[..4]), wrap(&tickets[4..]));
    let ndjson_of_pages = format!("{}\n{}\n", wrap(&tickets[..2]), wrap(&tickets[2..]));
    let singles: String = tickets
        .iter()
        .map(|t| format!("{}\n", serde_json::json!({ "ticket": t })))
        .collect();
    let expected = {
        let (_dir, lake, _) = ingest_fresh("freshservice", &[fixture("freshservice_tickets.json")]);
        (
            column(&lake, Table::Tickets, "channel"),
            column(&lake, Table::Tickets, "resolved_at"),
        )
    };
    for (name, text) in [
        ("pages.json", array_of_pages),
        ("pages.ndjson", ndjson_of_pages),
        ("singles.ndjson", singles),
    ] {
        let (_d, file) = temp_file(name, text);
        let (_dir, lake, reports) = ingest_fresh("freshservice", &[file]);
        let tk = reports[0].tables[&Table::Tickets];
        assert_eq!((tk.read, tk.stored, tk.rejected), (6, 4, 2), "{name}");
        let got = (
            column(&lake, Table::Tickets, "channel"),
            column(&lake, Table::Tickets, "resolved_at"),
        );
        assert_eq!(got, expected, "{name}");
    }
    // What is in a page but not a record is a counted reject with its text.
    let (_d, file) = temp_file("odd.ndjson", "{\"tickets\": [7, {\"id\": 9}]}\n");
    let (_dir, lake, reports) = ingest_fresh("freshservice", &[file]);
    assert_eq!(reports[0].tables[&Table::Tickets].rejected, 2);
    let rejects = lake.rejects().unwrap();
    let scalar = rejects
        .iter()
        .find(|r| r.raw == "7")
        .expect("the scalar is refused");
    assert_eq!(
        (scalar.line, scalar.reason.as_str()),
        (1, "record is not a JSON object")
    );
    // One answer saved alone as a JSON file, with the ticket it belongs to.
    let one = serde_json::json!({
        "ticket_id": 201,
        "csat_response": {"id": 7001, "created_at": "2026-03-02T16:00:00Z",
                          "score": {"acquired_score": 4, "total_score": 4}}
    });
    let (_d, file) = temp_file("csat.json", one.to_string());
    let (_dir, lake, reports) = ingest_fresh("freshservice", &[file]);
    assert_eq!(reports[0].tables[&Table::Ratings].stored, 1);
    assert_eq!(
        value_of(&lake, Table::Ratings, "rating_id", "7001", "score_5").as_deref(),
        Some("5")
    );
}

/// A ticket viewed with `include=conversations` brings its conversations as its interactions.
#[test]
fn a_ticket_viewed_with_its_conversations_gives_both() {
    let view = serde_json::json!({"ticket": {
        "id": 301, "source": 3, "status": 2, "priority": 2, "requester_id": 9201,
        "created_at": "2026-03-09T09:00:00Z", "updated_at": "2026-03-09T10:00:00Z",
        "description_text": "Printer jammed.",
        "conversations": [
            {"id": 6001, "user_id": 8001, "body_text": "On my way.", "incoming": false,
             "private": false, "source": 0, "created_at": "2026-03-09T09:10:00Z"},
            {"id": 6002, "user_id": 9201, "body_text": "Thanks!", "incoming": true,
             "private": false, "source": 0, "created_at": "2026-03-09T09:30:00Z"},
            {"id": 6003, "user_id": 9201, "incoming": true, "private": false, "source": 0}
        ]
    }});
    let (_d, file) = temp_file("view.json", view.to_string());
    let (_dir, lake, reports) = ingest_fresh("freshservice", &[file]);
    let r = &reports[0];
    assert_eq!(r.records, 1);
    assert_eq!(r.tables[&Table::Tickets].stored, 1);
    // The description and two conversations; the third has no time.
    let i = r.tables[&Table::Interactions];
    assert_eq!((i.read, i.stored, i.rejected), (4, 3, 1));
    let at = |id: &str, col| value_of(&lake, Table::Interactions, "interaction_id", id, col);
    assert_eq!(at("6001", "ticket_id").as_deref(), Some("301"));
    assert_eq!(at("6001", "actor_role").as_deref(), Some("agent"));
    assert_eq!(at("6002", "actor_role").as_deref(), Some("requester"));
    assert_eq!(
        value_of(&lake, Table::Tickets, "ticket_id", "301", "channel").as_deref(),
        Some("phone")
    );
}

/// A refused ticket's conversations are refused with it, counted and kept in the rejects.
#[test]
fn a_refused_ticket_viewed_with_its_conversations_refuses_them_too() {
    let view = serde_json::json!({"ticket": {
        "id": 302, "source": 3, "status": 2, "priority": 9, "requester_id": 9201,
        "created_at": "2026-03-09T09:00:00Z", "updated_at": "2026-03-09T10:00:00Z",
        "conversations": [
            {"id": 6011, "user_id": 8001, "body_text": "On my way.", "incoming": false,
             "private": false, "source": 0, "created_at": "2026-03-09T09:10:00Z"},
            {"id": 6012, "user_id": 9201, "body_text": "Thanks!", "incoming": true,
             "private": false, "source": 0, "created_at": "2026-03-09T09:30:00Z"}
        ]
    }});
    let (_d, file) = temp_file("view.json", view.to_string());
    let (_dir, lake, reports) = ingest_fresh("freshservice", &[file]);
    let r = &reports[0];
    let t = r.tables[&Table::Tickets];
    assert_eq!((t.read, t.stored, t.rejected), (1, 0, 1));
    let i = r.tables[&Table::Interactions];
    assert_eq!((i.read, i.stored, i.rejected), (2, 0, 2));
    let rejects = lake.rejects().unwrap();
    assert_eq!(rejects.len(), 3);
    let conversation = rejects.iter().find(|r| r.raw.contains("6012")).unwrap();
    assert_eq!(conversation.column.as_deref(), Some("priority"));
    assert_eq!(
        conversation.reason,
        "its ticket was refused: '9' is not a priority (1–4)"
    );
    assert!(
        !conversation.raw.contains("6011"),
        "one reject per conversation"
    );
}

#[test]
fn conversations_that_are_not_a_list_are_one_interaction_reject_kept_ticket_or_refused() {
    let ticket = |id: u32, priority: u32| {
        serde_json::json!({"ticket": {
            "id": id, "source": 3, "status": 2, "priority": priority, "requester_id": 9201,
            "created_at": "2026-03-09T09:00:00Z", "updated_at": "2026-03-09T10:00:00Z",
            "conversations": "see the portal"
        }})
        .to_string()
    };
    let (_k, kept) = temp_file("kept.json", ticket(303, 2));
    let (_r, refused) = temp_file("refused.json", ticket(304, 9));
    let (_dir, lake, reports) = ingest_fresh("freshservice", &[kept, refused]);
    for (r, tickets) in reports.iter().zip([(1, 1, 0), (1, 0, 1)]) {
        let t = r.tables[&Table::Tickets];
        assert_eq!((t.read, t.stored, t.rejected), tickets);
        let i = r.tables[&Table::Interactions];
        assert_eq!((i.read, i.stored, i.rejected), (1, 0, 1));
    }
    let rejects = lake.rejects().unwrap();
    let not_a_list: Vec<_> = rejects
        .iter()
        .filter(|r| r.reason == "not a list of conversations")
        .collect();
    assert_eq!(not_a_list.len(), 2, "{rejects:?}");
    assert!(
        not_a_list
            .iter()
            .all(|r| r.column.as_deref() == Some("conversations"))
    );
}
