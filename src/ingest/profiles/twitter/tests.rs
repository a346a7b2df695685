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
