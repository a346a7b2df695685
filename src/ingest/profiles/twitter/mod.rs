//! The `twitter` profile: support conversations on Twitter become tickets.
//!
//! Two passes over the file keep memory bounded by a few ids per tweet, never the texts: the first
//! reads each tweet's id, parent, author, direction and time, and finds each thread's root by
//! following `in_response_to_tweet_id` up while the parent is in the file (a reply whose parent is
//! missing starts a thread of its own); the second streams the tweets again as interactions.
//! A thread's ticket opens at its earliest tweet; its requester is the first inbound author, its
//! assignee the first brand that answered, and its first response the first brand tweet.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::BufReader;

use anyhow::Result;
use chrono_tz::Tz;

use super::{builtin_id, builtin_mapping};
use crate::ingest::canonical::Col;
use crate::ingest::mapping::{Mapping, parse_bool};
use crate::ingest::reader::{Fault, Format, Row};
use crate::ingest::{Input, Item, Output, Profile, each_record, for_each_record};
use crate::model::{ActorRole, Channel, Interaction, Micros, Table, Ticket};

pub struct Twitter {
    mapping: Mapping,
    tz: Option<Tz>,
}

impl Twitter {
    pub fn new(tz: Option<Tz>) -> Twitter {
        Twitter {
            mapping: builtin_mapping(include_str!("mapping.toml"), "twitter", tz),
            tz,
        }
    }
}

/// What the first pass keeps of a tweet.
struct Meta {
    parent: Option<String>,
    inbound: bool,
    author: String,
    at: Micros,
}

const REQUIRED: &[&str] = &[
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "in_response_to_tweet_id",
];

impl Twitter {
    fn meta(&self, row: &dyn Row) -> Result<(String, Meta), Fault> {
        let r = self.mapping.rec(row, Table::Interactions);
        let id = r.required_text(Col::InteractionId)?;
        let inbound = row
            .get("inbound")?
            .ok_or_else(|| Fault::column("inbound", "missing inbound"))?;
        let inbound = parse_bool(&inbound)
            .ok_or_else(|| Fault::column("inbound", format!("'{inbound}' is not True or False")))?;
        let parent = row
            .get("in_response_to_tweet_id")?
            .map(|p| p.trim().trim_end_matches(".0").to_string())
            .filter(|p| !p.is_empty());
        Ok((
            id,
            Meta {
                parent,
                inbound,
                author: r.required_text(Col::ActorId)?,
                at: r.required_time(Col::At)?,
            },
        ))
    }
}

impl Profile for Twitter {
    fn id(&self) -> String {
        builtin_id("twitter", self.tz)
    }

    fn read(&self, input: Input, out: &mut Output) -> Result<()> {
        let path = input.path.clone();
        let check =
            |h: &crate::ingest::reader::Header| match REQUIRED.iter().find(|c| !h.contains(c)) {
                Some(c) => Err(format!("missing required column '{c}'")),
                None => Ok(()),
            };

        // Pass 1: thread structure (rejects are made here, once, and their lines remembered so
        // that pass 2 does not take a refused row for a valid one with the same tweet id).
        let mut tweets: HashMap<String, Meta> = HashMap::new();
        let mut refused: HashSet<u64> = HashSet::new();
        for_each_record(
            input,
            out,
            check,
            |_| true,
            |_| Table::Interactions,
            |row, _, out| match self.meta(row) {
                Ok((id, meta)) => {
                    tweets.insert(id, meta);
                    Ok(())
                }
                Err(f) => {
                    refused.insert(row.line());
                    out.reject(Table::Interactions, row.line(), f, row.raw())
                }
            },
        )?;
        let threads = threads(&tweets);
        let mut seq: HashMap<String, (String, i32)> = HashMap::new();
        let mut tickets = Vec::with_capacity(threads.len());
        for (root, mut members) in threads {
            members.sort();
            let first = |pred: &dyn Fn(&Meta) -> bool| {
                members.iter().map(|(_, id)| &tweets[id]).find(|m| pred(m))
            };
            let requester = first(&|m| m.inbound).map(|m| m.author.clone());
            let agent = first(&|m| !m.inbound);
            tickets.push(Ticket {
                ticket_id: format!("tw-{root}"),
                source: "twitter".into(),
                opened_at: members[0].0,
                first_response_at: agent.map(|m| m.at),
                updated_at: members.last().map(|(t, _)| *t).unwrap_or(members[0].0),
                channel: Some(Channel::Social),
                channel_raw: Some("twitter".into()),
                requester_id: requester,
                assignee_id: agent.map(|m| m.author.clone()),
                ..Default::default()
            });
            for (i, (_, id)) in members.iter().enumerate() {
                seq.insert(id.clone(), (root.clone(), i as i32 + 1));
            }
        }

        // Pass 2: the tweets again, now with their texts, as interactions.
        let again = Input {
            path: path.clone(),
            format: Format::Csv,
            reader: Box::new(BufReader::new(File::open(&path)?)),
        };
        each_record(
            again,
            |_| Ok(()),
            |_| true,
            |item| {
                let Item::Row(row, _) = item else {
                    return Ok(()); // rejected in pass 1
                };
                if refused.contains(&row.line()) {
                    return Ok(());
                }
                let Ok(Some(id)) = self
                    .mapping
                    .rec(row, Table::Interactions)
                    .text(Col::InteractionId)
                else {
                    return Ok(());
                };
                let (Some(m), Some((root, n))) = (tweets.get(&id), seq.get(&id)) else {
                    return Ok(()); // rejected in pass 1
                };
                out.push(
                    row.line(),
                    Interaction {
                        interaction_id: format!("tw-{id}"),
                        ticket_id: format!("tw-{root}"),
                        at: m.at,
                        seq: Some(*n),
                        actor_role: if m.inbound {
                            ActorRole::Requester
                        } else {
                            ActorRole::Agent
                        },
                        actor_id: Some(m.author.clone()),
                        channel: Channel::Social,
                        is_public: true,
                        body: row.get("text").ok().flatten().map(|t| t.into_owned()),
                        lang: None,
                        sentiment: None,
                    },
                )
            },
        )?;
        tickets.sort_by(|a, b| a.ticket_id.cmp(&b.ticket_id));
        // A thread's ticket comes from several records: its findings name line 0.
        for t in tickets {
            out.push(0, t)?;
        }
        Ok(())
    }
}

/// The threads of the file, keyed by their root: tweets joined by their reply links, whatever
/// the depth (union-find, so a chain of any length is one thread, and a malformed cycle ends in
/// one thread too). A thread's root is the tweet that replies to nothing in the file, or, in a
/// cycle, the earliest one. Members are (time, tweet id).
fn threads(tweets: &HashMap<String, Meta>) -> HashMap<String, Vec<(Micros, String)>> {
    let ids: Vec<&String> = tweets.keys().collect();
    let index: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut up: Vec<usize> = (0..ids.len()).collect();
    fn find(up: &mut [usize], mut i: usize) -> usize {
        while up[i] != i {
            up[i] = up[up[i]];
            i = up[i];
        }
        i
    }
    for (i, id) in ids.iter().enumerate() {
        if let Some(&p) = tweets[*id].parent.as_deref().and_then(|p| index.get(p)) {
            let (a, b) = (find(&mut up, i), find(&mut up, p));
            up[a] = b;
        }
    }
    let mut groups: HashMap<usize, Vec<(Micros, String)>> = HashMap::new();
    for (i, id) in ids.iter().enumerate() {
        let g = find(&mut up, i);
        groups
            .entry(g)
            .or_default()
            .push((tweets[*id].at, (*id).clone()));
    }
    groups
        .into_values()
        .map(|members| {
            let top = |(_, id): &&(Micros, String)| {
                tweets[id]
                    .parent
                    .as_deref()
                    .is_none_or(|p| !tweets.contains_key(p))
            };
            let root = members
                .iter()
                .filter(top)
                .min()
                .or_else(|| members.iter().min())
                .expect("a thread has a member")
                .1
                .clone();
            (root, members)
        })
        .collect()
}

#[cfg(test)]
mod tests;
