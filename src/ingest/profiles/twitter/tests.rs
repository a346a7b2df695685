use std::collections::HashMap;

use crate::ingest::profiles::testkit::*;
use crate::model::Table;

#[test]
fn threads_become_tickets_and_tweets_interactions() {
    let (_dir, lake, reports) = ingest_fresh("twitter", &[reference("twitter_support_sample.csv")]);
    let r = &reports[0];
    assert_eq!(r.records, 93);
    // 93 tweets; 25 start a thread and 2 answer a tweet missing from the sample: 27 threads.
    let i = r.tables[&Table::Interactions];
    assert_eq!((i.read, i.stored, i.rejected), (93, 93, 0));
    let t = r.tables[&Table::Tickets];
    assert_eq!((t.read, t.stored, t.rejected), (27, 27, 0));

    let roles = counts(&lake, Table::Interactions, "actor_role");
    assert_eq!(roles["requester"], 49);
    assert_eq!(roles["agent"], 44);
    assert_eq!(counts(&lake, Table::Tickets, "channel")["social"], 27);
    // 26 threads got a brand answer: they have a first response and an assignee.
    assert_eq!(
        column(&lake, Table::Tickets, "first_response_at")
            .iter()
            .flatten()
            .count(),
        26
    );
    assert_eq!(
        column(&lake, Table::Tickets, "assignee_id")
            .iter()
            .flatten()
            .count(),
        26
    );
}

#[test]
fn every_reply_lands_in_the_thread_of_the_tweet_it_answers() {
    let (_dir, lake, _) = ingest_fresh("twitter", &[reference("twitter_support_sample.csv")]);
    let ids = column(&lake, Table::Interactions, "interaction_id");
    let tickets = column(&lake, Table::Interactions, "ticket_id");
    let ticket_of: HashMap<String, String> = ids
        .into_iter()
        .zip(tickets)
        .map(|(i, t)| (i.unwrap(), t.unwrap()))
        .collect();
    let mut csv = csv::Reader::from_path(reference("twitter_support_sample.csv")).unwrap();
    let mut checked = 0;
    for rec in csv.records() {
        let rec = rec.unwrap();
        let (id, parent) = (&rec[0], rec[6].trim());
        if let Some(parent_ticket) = ticket_of.get(&format!("tw-{parent}")) {
            assert_eq!(&ticket_of[&format!("tw-{id}")], parent_ticket, "tweet {id}");
            checked += 1;
        }
    }
    assert_eq!(checked, 66);
}

const HEADER: &str =
    "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n";

/// A reply chain longer than any walk limit is one thread (a 10,000-step walk once made a
/// 30,000-tweet chain 20,000 tickets); a cycle in malformed data is one thread too.
#[test]
fn a_reply_chain_of_any_length_is_one_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("chain.csv");
    let mut csv = String::from(HEADER);
    for i in 1..=30_000u32 {
        let (author, inbound) = if i % 2 == 1 {
            ("42", "True")
        } else {
            ("Brand", "False")
        };
        let parent = if i == 1 {
            String::new()
        } else {
            (i - 1).to_string()
        };
        let (h, m, s) = (i / 3600, i / 60 % 60, i % 60);
        csv.push_str(&format!(
            "{i},{author},{inbound},Wed Oct 11 {h:02}:{m:02}:{s:02} +0000 2017,reply {i},,{parent}\n"
        ));
    }
    // Two tweets that answer each other: no top, one thread named after the earlier.
    csv.push_str("900001,7,True,Thu Oct 12 10:00:00 +0000 2017,loop a,,900002\n");
    csv.push_str("900002,Brand,False,Thu Oct 12 10:05:00 +0000 2017,loop b,,900001\n");
    std::fs::write(&file, csv).unwrap();
    let (_dir, lake, reports) = ingest_fresh("twitter", &[file]);
    let t = reports[0].tables[&Table::Tickets];
    assert_eq!((t.read, t.stored), (2, 2));
    let mut ids = column(&lake, Table::Tickets, "ticket_id");
    ids.sort();
    assert_eq!(ids, vec![Some("tw-1".into()), Some("tw-900001".into())]);
    assert_eq!(reports[0].tables[&Table::Interactions].stored, 30_002);
}

/// A row refused for a bad field keeps its text out of the lake, even when a valid row has the
/// same tweet id (the second pass found tweets by id and stored the refused row's text).
#[test]
fn a_refused_row_never_lends_its_text_to_a_valid_one() {
    let (_dir, file) = temp_file(
        "tweets.csv",
        format!(
            "{HEADER}5,42,True,Wed Oct 11 06:55:44 +0000 2017,the real tweet,,\n\
             5,42,maybe,Wed Oct 11 06:56:44 +0000 2017,EVIL TEXT,,\n"
        ),
    );
    let (_dir, lake, reports) = ingest_fresh("twitter", &[file]);
    let i = reports[0].tables[&Table::Interactions];
    assert_eq!((i.read, i.stored, i.rejected), (2, 1, 1));
    assert_eq!(
        column(&lake, Table::Interactions, "body"),
        vec![Some("the real tweet".into())]
    );
}
