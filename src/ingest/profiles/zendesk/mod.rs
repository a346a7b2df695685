//! The `zendesk` profile: Tickets API and Satisfaction Ratings API JSON (pages, arrays or NDJSON).
//!
//! A ticket object gives a ticket, its `description` as the requester's first interaction, and,
//! when its embedded `satisfaction_rating` was answered (good/bad), a rating; `offered` and
//! `unoffered` only set `survey_offered`. Timing comes from `metric_set` when the export includes
//! it (`solved_at`, `reply_time_in_minutes`, `reopens`, `group_stations`); without it, a solved or
//! closed ticket's `resolved_at` falls back to its `updated_at` (an upper bound). A rating embedded
//! in a ticket carries no time of its own and takes the ticket's `updated_at`; the Satisfaction
//! Ratings API gives the exact time and, having the same id, replaces it.

use anyhow::Result;
use chrono_tz::Tz;

use super::{builtin_id, builtin_mapping, push_description};
use crate::ingest::mapping::{self, Mapping};
use crate::ingest::reader::{Fault, Row};
use crate::ingest::{Input, Output, Profile, for_each_api_record};
use crate::model::{Rating, Scale, Table, Ticket};

pub struct Zendesk {
    mapping: Mapping,
    tz: Option<Tz>,
}

impl Zendesk {
    pub fn new(tz: Option<Tz>) -> Zendesk {
        Zendesk {
            mapping: builtin_mapping(include_str!("mapping.toml"), "zendesk", tz),
            tz,
        }
    }

    fn ticket(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        let r = self.mapping.rec(row, Table::Tickets);
        let ticket = mapping::ticket(&r).and_then(|mut t| {
            if t.resolved_at.is_none()
                && matches!(t.status.as_deref(), Some("solved") | Some("closed"))
            {
                t.resolved_at = Some(t.updated_at);
            }
            if let Some(minutes) = number(row, "metric_set.reply_time_in_minutes.calendar")? {
                t.first_response_at = Some(t.opened_at + (minutes * 60e6) as i64);
            }
            if let Some(stations) = number(row, "metric_set.group_stations")? {
                t.reassignment_count = Some((stations as i32 - 1).max(0));
            }
            let score = row.get("satisfaction_rating.score")?;
            t.survey_offered = score.as_deref().map(|s| s != "unoffered");
            Ok(t)
        });
        let Ok(t) = ticket else {
            return out.emit::<Ticket>(row, ticket);
        };
        push_description(&t, row, "description", out)?;
        match row
            .get("satisfaction_rating.score")
            .ok()
            .flatten()
            .as_deref()
        {
            Some("good") | Some("bad") => {
                let rating = embedded_rating(row, &t);
                out.emit::<Rating>(row, rating)?;
            }
            Some("offered") | Some("unoffered") => out.offered(Table::Ratings),
            _ => {}
        }
        out.push(row.line(), t)
    }

    fn rating(&self, row: &dyn Row, out: &mut Output) -> Result<()> {
        match row.get("score").ok().flatten().as_deref() {
            Some("offered") | Some("unoffered") => {
                out.offered(Table::Ratings);
                Ok(())
            }
            _ => {
                let r = self.mapping.rec(row, Table::Ratings);
                out.emit::<Rating>(row, mapping::rating(&r, Scale::GoodBad))
            }
        }
    }
}

fn number(row: &dyn Row, column: &str) -> Result<Option<f64>, Fault> {
    match row.get(column)? {
        None => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .map(Some)
            .map_err(|_| Fault::column(column, format!("'{v}' is not a number"))),
    }
}

fn embedded_rating(row: &dyn Row, t: &Ticket) -> Result<Rating, Fault> {
    let score = row
        .get("satisfaction_rating.score")?
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let score_5 = Scale::GoodBad
        .score_5(&score)
        .map_err(|e| Fault::column("satisfaction_rating.score", e.0))?;
    Ok(Rating {
        rating_id: row
            .get("satisfaction_rating.id")?
            .map(|s| s.into_owned())
            .unwrap_or_else(|| format!("{}#csat", t.ticket_id)),
        ticket_id: t.ticket_id.clone(),
        interaction_id: None,
        requester_id: t.requester_id.clone(),
        rated_at: t.updated_at,
        channel: None,
        score_raw: score,
        scale: Scale::GoodBad,
        score_5,
        comment: row
            .get("satisfaction_rating.comment")?
            .map(|s| s.into_owned())
            .filter(|s| !s.is_empty()),
        lang: None,
        sentiment: None,
    })
}

/// Whether a record without a named array is a satisfaction rating rather than a ticket.
fn looks_like_rating(row: &dyn Row) -> bool {
    matches!(row.get("ticket_id"), Ok(Some(_))) && matches!(row.get("score"), Ok(Some(_)))
}

impl Profile for Zendesk {
    fn id(&self) -> String {
        builtin_id("zendesk", self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        for_each_api_record(
            input,
            out,
            "zendesk",
            &[
                "tickets",
                "ticket",
                "satisfaction_ratings",
                "satisfaction_rating",
            ],
            |k| match k {
                Some("satisfaction_ratings" | "satisfaction_rating") => Table::Ratings,
                _ => Table::Tickets,
            },
            |row, key, out| match key {
                Some("satisfaction_ratings" | "satisfaction_rating") => self.rating(row, out),
                Some(_) => self.ticket(row, out),
                None if looks_like_rating(row) => self.rating(row, out),
                None => self.ticket(row, out),
            },
        )
    }
}

#[cfg(test)]
mod tests;
