//! The `freshservice` profile: Freshservice API v2 JSON of tickets, conversations and CSAT
//! responses. Freshservice's records have Freshdesk's fields, so the `freshdesk` profile's code
//! reads them (see [`super::freshdesk`]); what differs is in `mapping.toml`: the ticket `source`
//! codes (4 is chat, not a forum; 9 a walk-up; 10 Slack, 15 MS Teams). A CSAT response is a
//! rating of `score.acquired_score` of `score.total_score` on the points scale (of 4: poor 1,
//! fair 2, good 4, excellent 5), saved with the id of its ticket, which the API leaves out:
//! `{"ticket_id": 42, "csat_response": {...}}`.

use chrono_tz::Tz;

use super::freshdesk::Freshdesk;

pub fn new(tz: Option<Tz>) -> Freshdesk {
    Freshdesk::with_mapping("freshservice", include_str!("mapping.toml"), tz)
}

#[cfg(test)]
mod tests;
