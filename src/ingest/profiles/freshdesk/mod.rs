//! The `freshdesk` profile: Freshdesk API v2 JSON, pages (arrays) or NDJSON of objects, of
//! tickets, conversations and satisfaction ratings, told apart by their fields (a wrapper such
//! as `{"tickets": [...]}` names them too).
//!
//! - A ticket gives a ticket and its `description_text` as the requester's opening message.
//!   `status` 2–5 become open, pending, resolved, closed (a custom status keeps its code);
//!   `priority` 1–4 (low … urgent) becomes the canonical 4–1; with `include=stats` the first
//!   response, resolution and closing times come from `stats`, and a `stats.reopened_at` counts
//!   one reopen (Freshdesk keeps only the last, so it is a lower bound). Without `stats`, a
//!   resolved or closed ticket's `resolved_at` falls back to its `updated_at` (an upper bound).
//! - A conversation is an interaction: `incoming` from the requester, else from an agent;
//!   `private` notes are not public. Its channel comes from its `source` (0 reply, 2 note and
//!   8 forwarded: email; 5 tweet, 7 Facebook post: social; 9 phone; 6 survey feedback: portal).
//! - A satisfaction rating is a rating of its `ratings.default_question` on the Freshdesk scale
//!   (103 … −103, see [`Scale::Freshdesk`]), with `feedback` as its comment.

use anyhow::Result;
use chrono_tz::Tz;

use super::{builtin_id, builtin_mapping, push_description};
use crate::ingest::mapping::{self, Mapping};
use crate::ingest::reader::{Fault, Row};
use crate::ingest::{Input, Output, Profile, for_each_record};
use crate::model::{ActorRole, Channel, Interaction, Rating, Scale, Table, Ticket};

pub struct Freshdesk {
    mapping: Mapping,
    tz: Option<Tz>,
}

/// What a record of an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ticket,
    Conversation,
    Rating,
}

impl Kind {
    /// From the array a record came from, else from its fields.
    fn of(row: &dyn Row, key: Option<&str>) -> Kind {
        let has = |c: &str| matches!(row.get(c), Ok(Some(_)));
        match key {
            Some("conversations") => Kind::Conversation,
            Some("satisfaction_ratings") => Kind::Rating,
            Some(_) => Kind::Ticket,
            None if has("ratings.default_question") || has("survey_id") => Kind::Rating,
            None if has("ticket_id") && (has("incoming") || has("body_text")) => Kind::Conversation,
            None => Kind::Ticket,
        }
    }
}

impl Freshdesk {
    pub fn new(tz: Option<Tz>) -> Freshdesk {
        Freshdesk {
            mapping: builtin_mapping(include_str!("mapping.toml"), "freshdesk", tz),
            tz,
        }
    }

    fn ticket(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Tickets);
        let ticket = mapping::ticket(&r).and_then(|mut t| {
            t.status = code(row, "status")?.map(|c| status(&c));
            if let Some(c) = code(row, "priority")? {
                let (rank, name) = priority(&c).ok_or_else(|| {
                    Fault::column(
                        "priority",
                        format!("'{c}' is not a Freshdesk priority (1–4)"),
                    )
                })?;
                (t.priority, t.priority_raw) = (Some(rank), Some(name.to_string()));
            }
            let stats = matches!(row.get("stats"), Ok(Some(_)));
            if stats {
                let reopened = matches!(row.get("stats.reopened_at"), Ok(Some(_)));
                t.reopen_count = Some(i32::from(reopened));
            } else if t.resolved_at.is_none()
                && matches!(t.status.as_deref(), Some("resolved") | Some("closed"))
            {
                t.resolved_at = Some(t.updated_at);
            }
            Ok(t)
        });
        let Ok(t) = ticket else {
            return out.emit::<Ticket>(row, ticket);
        };
        push_description(&t, row, "description_text", out)?;
        out.push(row.line(), t)
    }

    fn conversation(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Interactions);
        let interaction = (|| {
            let incoming = flag(row, "incoming")?.unwrap_or(false);
            let private = flag(row, "private")?.unwrap_or(false);
            Ok(Interaction {
                interaction_id: r.required_text("interaction_id")?,
                ticket_id: r.required_text("ticket_id")?,
                at: r.required_time("at")?,
                seq: None,
                actor_role: if incoming {
                    ActorRole::Requester
                } else {
                    ActorRole::Agent
                },
                actor_id: r.text("actor_id")?,
                channel: code(row, "source")?.map_or(Channel::Email, |c| conversation_channel(&c)),
                is_public: !private,
                body: row.get("body_text")?.map(|b| b.into_owned()),
                lang: None,
                sentiment: None,
            })
        })();
        out.emit::<Interaction>(row, interaction)
    }

    fn rating(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Ratings);
        out.emit::<Rating>(row, mapping::rating(&r, Scale::Freshdesk))
    }
}

/// A numeric code field as text (`"4"`), absent when null.
fn code(row: &dyn Row, column: &str) -> Result<Option<String>, Fault> {
    Ok(row.get(column)?.map(|c| c.trim().to_string()))
}

fn flag(row: &dyn Row, column: &str) -> Result<Option<bool>, Fault> {
    match row.get(column)?.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(Fault::column(
            column,
            format!("'{other}' is not true or false"),
        )),
    }
}

/// Freshdesk's status codes; a custom status keeps its code.
fn status(code: &str) -> String {
    match code {
        "2" => "open",
        "3" => "pending",
        "4" => "resolved",
        "5" => "closed",
        other => other,
    }
    .to_string()
}

/// Freshdesk's priority (1 low … 4 urgent) as the canonical rank (1 most urgent) and its name.
fn priority(code: &str) -> Option<(i32, &'static str)> {
    match code {
        "1" => Some((4, "low")),
        "2" => Some((3, "medium")),
        "3" => Some((2, "high")),
        "4" => Some((1, "urgent")),
        _ => None,
    }
}

/// A conversation's channel from its `source` code.
fn conversation_channel(code: &str) -> Channel {
    match code {
        "0" | "2" | "8" => Channel::Email,
        "5" | "7" => Channel::Social,
        "9" => Channel::Phone,
        "6" => Channel::Portal,
        _ => Channel::Other,
    }
}

impl Profile for Freshdesk {
    fn id(&self) -> String {
        builtin_id("freshdesk", self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        for_each_record(
            input,
            out,
            |_| Err("the freshdesk profile reads the API's JSON, not CSV".into()),
            |k| matches!(k, "tickets" | "conversations" | "satisfaction_ratings"),
            |k| match k {
                Some("conversations") => Table::Interactions,
                Some("satisfaction_ratings") => Table::Ratings,
                _ => Table::Tickets,
            },
            |row, key, out| match Kind::of(row, key) {
                Kind::Ticket => self.ticket(row, out),
                Kind::Conversation => self.conversation(row, out),
                Kind::Rating => self.rating(row, out),
            },
        )
    }
}

#[cfg(test)]
mod tests;
