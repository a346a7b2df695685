//! The `jira` profile: a Jira Service Management issue CSV export.
//!
//! Each row gives a ticket; its `Description` becomes the requester's first interaction and every
//! `Comment` column (`date;author account id;text`) one more interaction, by the requester when the
//! author is the reporter and by an agent otherwise; a satisfaction rating (1–5) gives a rating
//! with id `<issue key>#csat`.

use anyhow::Result;
use chrono_tz::Tz;

use super::{builtin_id, builtin_mapping, push_description};
use crate::ingest::canonical::Col;
use crate::ingest::mapping::{self, Mapping};
use crate::ingest::reader::{Fault, Row};
use crate::ingest::{Input, Output, Profile, for_each_record};
use crate::model::{ActorRole, Channel, Interaction, Rating, Scale, Table, Ticket};

pub struct Jira {
    mapping: Mapping,
    tz: Option<Tz>,
}

impl Jira {
    pub fn new(tz: Option<Tz>) -> Jira {
        Jira {
            mapping: builtin_mapping(include_str!("mapping.toml"), "jira", tz),
            tz,
        }
    }

    fn rating(&self, row: &dyn Row, t: &Ticket) -> Result<Option<Rating>, Fault> {
        let r = self.mapping.rec(row, Table::Ratings);
        let Some((score, col)) = r.value(Col::ScoreRaw)? else {
            return Ok(None);
        };
        let score_5 = Scale::Five
            .score_5(&score)
            .map_err(|e| Fault::column(col, e.0))?;
        let rated_at = r.time(Col::RatedAt)?.ok_or_else(|| {
            Fault::column(
                "Custom field (Satisfaction date)",
                "a rating without a date",
            )
        })?;
        Ok(Some(Rating {
            rating_id: format!("{}#csat", t.ticket_id),
            ticket_id: t.ticket_id.clone(),
            interaction_id: None,
            requester_id: t.requester_id.clone(),
            rated_at,
            channel: None,
            score_raw: score.into_owned(),
            scale: Scale::Five,
            score_5,
            comment: r.text(Col::Comment)?,
            lang: None,
            sentiment: None,
        }))
    }

    /// `date;author;text` → an interaction (the text may itself contain `;`).
    fn comment(&self, t: &Ticket, n: usize, raw: &str) -> Result<Interaction, Fault> {
        let mut parts = raw.splitn(3, ';');
        let (Some(date), Some(author), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(Fault::column(
                "Comment",
                "a comment is not 'date;author;text'",
            ));
        };
        let at = self
            .mapping
            .time()
            .parse(date)
            .map_err(|e| Fault::column("Comment", e))?;
        let author = author.trim();
        let by_requester = t.requester_id.as_deref() == Some(author);
        Ok(Interaction {
            interaction_id: format!("{}#c{n}", t.ticket_id),
            ticket_id: t.ticket_id.clone(),
            at,
            seq: Some(n as i32),
            actor_role: if by_requester {
                ActorRole::Requester
            } else {
                ActorRole::Agent
            },
            actor_id: Some(author.to_string()),
            channel: t.channel.unwrap_or(Channel::Other),
            is_public: true,
            body: Some(body.trim().to_string()),
            lang: None,
            sentiment: None,
        })
    }
}

impl Profile for Jira {
    fn id(&self) -> String {
        builtin_id("jira", self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        let m = &self.mapping;
        for_each_record(
            input,
            out,
            |header| {
                m.refuse_duplicates(Table::Tickets, header)?;
                match m.missing_required(Table::Tickets, |c| header.contains(c)) {
                    Some(col) => Err(format!("missing required column '{col}'")),
                    None => Ok(()),
                }
            },
            |_| true,
            |_| Table::Tickets,
            |row, _, out| {
                let t = match mapping::ticket(&m.rec(row, Table::Tickets)) {
                    Ok(t) => t,
                    Err(f) => return out.reject(Table::Tickets, row.line(), f, row.raw()),
                };
                push_description(&t, row, "Description", out)?;
                match row.get_all("Comment") {
                    Ok(comments) => {
                        for (i, c) in comments.iter().filter(|c| !c.trim().is_empty()).enumerate() {
                            out.emit::<Interaction>(row, self.comment(&t, i + 1, c))?;
                        }
                    }
                    Err(f) => out.reject(Table::Interactions, row.line(), f, row.raw())?,
                }
                match self.rating(row, &t) {
                    Ok(Some(r)) => out.push(row.line(), r)?,
                    Ok(None) => out.unrated(Table::Ratings),
                    Err(f) => out.reject(Table::Ratings, row.line(), f, row.raw())?,
                }
                out.push(row.line(), t)
            },
        )
    }
}

#[cfg(test)]
mod tests;
