//! The `freshdesk` profile: Freshdesk API v2 JSON of tickets, conversations and satisfaction
//! ratings, told apart by their fields or by the member of the page holding them
//! (`{"tickets": [...]}`); a page (an array), pages saved one after the other (an array of
//! pages, NDJSON of pages) or NDJSON of records. The `freshservice` profile reads Freshservice
//! through the same code, with its own `source` codes and its CSAT responses.
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
//!   A ticket viewed with `include=conversations` brings its own.
//! - A satisfaction rating is a rating of its `ratings.default_question` on the Freshdesk scale
//!   (103 … −103, see [`Scale::Freshdesk`]), with `feedback` as its comment.
//! - A Freshservice CSAT response (`{"csat_response": {...}}`) is a rating of
//!   `score.acquired_score` of `score.total_score` (see [`Scale::Points`]); the answers to the
//!   survey's other questions are its comment. The API answers it per ticket without naming the
//!   ticket, so the export must: `{"ticket_id": 42, "csat_response": {...}}`.

use anyhow::Result;
use chrono_tz::Tz;
use serde_json::Value;

use super::{builtin_id, builtin_mapping, push_description};
use crate::ingest::canonical::Col;
use crate::ingest::mapping::{self, Mapping};
use crate::ingest::reader::{Fault, JsonRow, Row};
use crate::ingest::{Input, Output, Profile, for_each_api_record};
use crate::model::{ActorRole, Channel, Interaction, Rating, Scale, Table, Ticket};

pub struct Freshdesk {
    name: &'static str,
    mapping: Mapping,
    tz: Option<Tz>,
}

/// The members of an API page that hold records.
const KEYS: &[&str] = &[
    "tickets",
    "ticket",
    "conversations",
    "satisfaction_ratings",
    "csat_response",
];

/// What a record of an export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ticket,
    Conversation,
    Rating,
    CsatResponse,
}

impl Kind {
    /// From the member of the page a record came from, else from its fields.
    fn of(row: &dyn Row, key: Option<&str>) -> Kind {
        let has = |c: &str| matches!(row.get(c), Ok(Some(_)));
        match key {
            Some("conversations") => Kind::Conversation,
            Some("satisfaction_ratings") => Kind::Rating,
            Some("csat_response") => Kind::CsatResponse,
            Some(_) => Kind::Ticket,
            None if has("ratings.default_question") || has("survey_id") => Kind::Rating,
            None if has("score") || has("overall_rating") => Kind::CsatResponse,
            None if has("ticket_id") && (has("incoming") || has("body_text")) => Kind::Conversation,
            None => Kind::Ticket,
        }
    }
}

/// The conversations a ticket viewed with `include=conversations` carries (none without); a
/// value that is not a list is an interaction reject, whether the ticket is kept or refused.
fn embedded(row: &dyn Row, out: &mut Output) -> Result<Vec<Value>> {
    let Ok(Some(json)) = row.get("conversations") else {
        return Ok(Vec::new());
    };
    if let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&json) {
        return Ok(items);
    }
    let fault = Fault::column("conversations", "not a list of conversations");
    out.reject(Table::Interactions, row.line(), fault, row.raw())?;
    Ok(Vec::new())
}

/// A refused ticket's conversations are refused with it, each counted as an interaction read
/// and rejected, so that the interactions' counts add up.
fn refuse_embedded_conversations(row: &dyn Row, ticket: &Fault, out: &mut Output) -> Result<()> {
    for item in embedded(row, out)? {
        let fault = Fault::new(
            ticket.column.as_deref(),
            format!("its ticket was refused: {}", ticket.reason),
        );
        out.reject(Table::Interactions, row.line(), fault, item.to_string())?;
    }
    Ok(())
}

impl Freshdesk {
    pub fn new(tz: Option<Tz>) -> Freshdesk {
        Freshdesk::with_mapping("freshdesk", include_str!("mapping.toml"), tz)
    }

    /// The profile of a Freshworks product: `name` and its mapping (its `source` codes).
    pub(super) fn with_mapping(name: &'static str, toml: &str, tz: Option<Tz>) -> Freshdesk {
        Freshdesk {
            name,
            mapping: builtin_mapping(toml, name, tz),
            tz,
        }
    }

    fn ticket(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Tickets);
        let ticket = mapping::ticket(&r).and_then(|mut t| {
            t.status = code(row, "status")?.map(|c| status(&c));
            if let Some(c) = code(row, "priority")? {
                let (rank, name) = priority(&c).ok_or_else(|| {
                    Fault::column("priority", format!("'{c}' is not a priority (1–4)"))
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
        let t = match ticket {
            Ok(t) => t,
            Err(fault) => {
                refuse_embedded_conversations(row, &fault, out)?;
                return out.reject(Table::Tickets, row.line(), fault, row.raw());
            }
        };
        push_description(&t, row, "description_text", out)?;
        self.embedded_conversations(&t, row, out)?;
        out.push(row.line(), t)
    }

    /// A ticket viewed with `include=conversations` carries its conversations: interactions of
    /// the ticket (one without a `ticket_id` is given the ticket's).
    fn embedded_conversations(&self, t: &Ticket, row: &dyn Row, out: &mut Output) -> Result<()> {
        for mut item in embedded(row, out)? {
            if let Some(fields) = item.as_object_mut() {
                fields
                    .entry("ticket_id")
                    .or_insert_with(|| Value::from(t.ticket_id.as_str()));
            }
            let raw = item.to_string();
            let conversation = JsonRow {
                value: &item,
                line: row.line(),
                raw: raw.as_bytes(),
            };
            self.conversation(&conversation, out)?;
        }
        Ok(())
    }

    fn conversation(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Interactions);
        let interaction = (|| {
            let incoming = flag(row, "incoming")?.unwrap_or(false);
            let private = flag(row, "private")?.unwrap_or(false);
            Ok(Interaction {
                interaction_id: r.required_text(Col::InteractionId)?,
                ticket_id: r.required_text(Col::TicketId)?,
                at: r.required_time(Col::At)?,
                seq: None,
                actor_role: if incoming {
                    ActorRole::Requester
                } else {
                    ActorRole::Agent
                },
                actor_id: r.text(Col::ActorId)?,
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

    fn csat_response(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Ratings);
        let rating = (|| {
            let (acquired, total) = (
                code(row, "score.acquired_score")?,
                code(row, "score.total_score")?,
            );
            let (Some(acquired), Some(total)) = (acquired, total) else {
                return Err(Fault::unrated("score.acquired_score"));
            };
            let score_raw = format!("{acquired}/{total}");
            let score_5 = Scale::Points
                .score_5(&score_raw)
                .map_err(|e| Fault::column("score.acquired_score", e.0))?;
            let ticket_id = r.text(Col::TicketId)?.ok_or_else(|| {
                Fault::column(
                    "ticket_id",
                    "a csat_response does not name its ticket: export it as \
                     {\"ticket_id\": <id>, \"csat_response\": {...}}",
                )
            })?;
            Ok(Rating {
                rating_id: r.required_text(Col::RatingId)?,
                ticket_id,
                interaction_id: None,
                requester_id: None,
                rated_at: r.required_time(Col::RatedAt)?,
                channel: None,
                score_raw,
                scale: Scale::Points,
                score_5,
                comment: survey_comment(row)?,
                lang: None,
                sentiment: None,
            })
        })();
        out.emit::<Rating>(row, rating)
    }
}

/// The answers to a CSAT survey's questions after the first (the rating), one per line.
fn survey_comment(row: &dyn Row) -> Result<Option<String>, Fault> {
    let column = "questionnaire_responses";
    let Some(json) = row.get(column)? else {
        return Ok(None);
    };
    let bad = || Fault::column(column, "not a list of questions and answers");
    let questions: Vec<Value> = serde_json::from_str(&json).map_err(|_| bad())?;
    let mut answers = Vec::new();
    for q in questions.iter().skip(1) {
        for a in q
            .get("answers")
            .and_then(|a| a.as_array())
            .ok_or_else(bad)?
        {
            match a.get("answer_text").and_then(|t| t.as_str()).map(str::trim) {
                Some(text) if !text.is_empty() => answers.push(text),
                _ => {}
            }
        }
    }
    Ok((!answers.is_empty()).then(|| answers.join("\n")))
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
        builtin_id(self.name, self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        for_each_api_record(
            input,
            out,
            self.name,
            KEYS,
            |k| match k {
                Some("conversations") => Table::Interactions,
                Some("satisfaction_ratings" | "csat_response") => Table::Ratings,
                _ => Table::Tickets,
            },
            |row, key, out| match Kind::of(row, key) {
                Kind::Ticket => self.ticket(row, out),
                Kind::Conversation => self.conversation(row, out),
                Kind::Rating => self.rating(row, out),
                Kind::CsatResponse => self.csat_response(row, out),
            },
        )
    }
}

#[cfg(test)]
mod tests;
