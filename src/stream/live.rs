//! Live state: per-channel satisfaction over the last hour and the last 24 hours, rolling
//! satisfaction per category (for follow-up cohort alerts), and what the stream knows of each
//! ticket (category, agent, group) to put in an alert.
//!
//! Ratings are counted in one-minute buckets by their `rated_at`, so memory is bounded by the
//! number of channels and categories, not by the number of ratings. A rating older than the
//! longest window (a backfill) goes to the lake but not into the live figures.

use std::collections::{BTreeMap, HashMap, VecDeque};

use anyhow::Result;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use serde::Serialize;

use super::recent::Recent;
use crate::engine::functions::wilson;
use crate::lake::{DataFile, Lake};
use crate::model::{Micros, Rating, Table, Ticket};
use crate::timeparse::month_of;

const MINUTE: i64 = 60_000_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

/// Ratings counted per minute, for one channel or category.
#[derive(Debug, Default, Clone)]
struct Minutes {
    /// (minute, rated, satisfied, sum of score_5), oldest first.
    buckets: VecDeque<(i64, u64, u64, f64)>,
}

impl Minutes {
    fn add(&mut self, at: Micros, satisfied: bool, score: f64) {
        let minute = at.div_euclid(MINUTE);
        // Usually the newest minute; a late rating is placed in order.
        let pos = self.buckets.iter().rposition(|b| b.0 <= minute);
        match pos {
            Some(i) if self.buckets[i].0 == minute => {
                let b = &mut self.buckets[i];
                b.1 += 1;
                b.2 += u64::from(satisfied);
                b.3 += score;
            }
            Some(i) => self
                .buckets
                .insert(i + 1, (minute, 1, u64::from(satisfied), score)),
            None => self
                .buckets
                .push_front((minute, 1, u64::from(satisfied), score)),
        }
    }

    fn prune(&mut self, before: Micros) {
        let minute = before.div_euclid(MINUTE);
        while self.buckets.front().is_some_and(|b| b.0 < minute) {
            self.buckets.pop_front();
        }
    }

    /// Ratings in `[since, until]` (minute resolution).
    fn window(&self, since: Micros, until: Micros) -> Window {
        let (lo, hi) = (since.div_euclid(MINUTE), until.div_euclid(MINUTE));
        let (mut n, mut sat, mut sum) = (0, 0, 0.0);
        for b in self.buckets.iter().filter(|b| b.0 >= lo && b.0 <= hi) {
            n += b.1;
            sat += b.2;
            sum += b.3;
        }
        Window::new(n, sat, sum)
    }
}

/// Satisfaction over one window: sample size, CSAT with its 95% Wilson interval, mean score.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    pub rated: u64,
    pub satisfied: u64,
    pub csat: Option<f64>,
    pub ci95: Option<(f64, f64)>,
    pub mean_score: Option<f64>,
}

impl Window {
    fn new(rated: u64, satisfied: u64, sum: f64) -> Window {
        let n = rated as f64;
        Window {
            rated,
            satisfied,
            csat: (rated > 0).then(|| satisfied as f64 / n),
            ci95: wilson(satisfied as f64, n),
            mean_score: (rated > 0).then(|| sum / n),
        }
    }
}

/// One channel in `GET /v1/live`.
#[derive(Debug, Clone, Serialize)]
pub struct ChannelLive {
    pub channel: String,
    pub last_hour: Window,
    pub last_24h: Window,
}

/// The body of `GET /v1/live`.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub as_of: String,
    pub satisfied_threshold: f64,
    pub channels: Vec<ChannelLive>,
    pub all_channels: ChannelLive,
}

/// What an alert says about a ticket.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TicketInfo {
    pub category: Option<String>,
    pub assignee_id: Option<String>,
    pub assignment_group: Option<String>,
    pub channel: Option<String>,
}

/// The newest `capacity` tickets seen (from ticket events, and from the lake at start).
pub struct TicketIndex(Recent<TicketInfo>);

impl TicketIndex {
    pub fn new(capacity: usize) -> TicketIndex {
        TicketIndex(Recent::new(capacity))
    }

    pub fn insert(&mut self, id: String, info: TicketInfo) {
        self.0.insert(id, info);
    }

    pub fn get(&self, id: &str) -> Option<&TicketInfo> {
        self.0.get(id)
    }

    pub fn add_ticket(&mut self, t: &Ticket) {
        self.insert(
            t.ticket_id.clone(),
            TicketInfo {
                category: t.category.clone(),
                assignee_id: t.assignee_id.clone(),
                assignment_group: t.assignment_group.clone(),
                channel: t.channel.map(|c| c.as_str().to_string()),
            },
        );
    }
}

/// Live satisfaction per channel and per category.
pub struct Live {
    satisfied: f64,
    cohort_window: i64,
    channels: BTreeMap<String, Minutes>,
    categories: HashMap<String, Minutes>,
    all: Minutes,
}

impl Live {
    pub fn new(satisfied: f64, cohort_window: i64) -> Live {
        Live {
            satisfied,
            cohort_window,
            channels: BTreeMap::new(),
            categories: HashMap::new(),
            all: Minutes::default(),
        }
    }

    fn horizon(&self) -> i64 {
        DAY.max(self.cohort_window)
    }

    /// Counts a rating (channel: the rating's, else its ticket's, else `other`). Returns the
    /// category's rolling window when the rating was counted in one.
    pub fn add(&mut self, r: &Rating, ticket: Option<&TicketInfo>, now: Micros) -> Option<Window> {
        let channel = r.channel.map(|c| c.as_str());
        self.count(r.rated_at, channel, r.score_5, ticket, now)
    }

    /// [`Live::add`] from the columns that matter.
    fn count(
        &mut self,
        at: Micros,
        channel: Option<&str>,
        score: f64,
        ticket: Option<&TicketInfo>,
        now: Micros,
    ) -> Option<Window> {
        if at < now - self.horizon() {
            return None;
        }
        let ok = score >= self.satisfied;
        let channel = channel
            .or_else(|| ticket.and_then(|t| t.channel.as_deref()))
            .unwrap_or("other");
        self.channels
            .entry(channel.to_string())
            .or_default()
            .add(at, ok, score);
        self.all.add(at, ok, score);
        let category = ticket.and_then(|t| t.category.clone())?;
        let m = self.categories.entry(category).or_default();
        m.add(at, ok, score);
        Some(m.window(now - self.cohort_window, now))
    }

    /// Drops buckets older than the longest window.
    pub fn prune(&mut self, now: Micros) {
        let before = now - self.horizon();
        for m in self.channels.values_mut() {
            m.prune(before);
        }
        self.categories.retain(|_, m| {
            m.prune(before);
            !m.buckets.is_empty()
        });
        self.all.prune(before);
    }

    pub fn snapshot(&self, now: Micros) -> Snapshot {
        let live = |name: &str, m: &Minutes| ChannelLive {
            channel: name.to_string(),
            last_hour: m.window(now - HOUR, now),
            last_24h: m.window(now - DAY, now),
        };
        let as_of = chrono::DateTime::from_timestamp_micros(now)
            .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        Snapshot {
            as_of,
            satisfied_threshold: self.satisfied,
            channels: self
                .channels
                .iter()
                .map(|(c, m)| live(c, m))
                .filter(|c| c.last_24h.rated > 0)
                .collect(),
            all_channels: live("all", &self.all),
        }
    }
}

/// Seeds the index with the tickets of the last two months in the lake, and the live figures
/// with the lake's ratings inside the windows, so a restart does not reset `/v1/live`.
pub fn seed(lake: &Lake, index: &mut TicketIndex, live: &mut Live, now: Micros) -> Result<u64> {
    let months = [
        month_of(now - 31 * DAY),
        month_of(now - live.horizon()),
        month_of(now),
    ];
    let recent = |table: Table| -> Result<Vec<DataFile>> {
        Ok(lake
            .files(table)?
            .into_iter()
            .filter(|f| months.iter().any(|m| f.partition() == format!("month={m}")))
            .collect())
    };
    for f in recent(Table::Tickets)? {
        let cols = [
            "ticket_id",
            "category",
            "assignee_id",
            "assignment_group",
            "channel",
        ];
        for b in f.read(Some(&cols))? {
            let s = |i: usize| b.column(i).as_string::<i32>().clone();
            let (id, cat, agent, group, chan) = (s(0), s(1), s(2), s(3), s(4));
            let opt = |a: &datafusion::arrow::array::StringArray, i: usize| {
                a.is_valid(i).then(|| a.value(i).to_string())
            };
            for i in 0..b.num_rows() {
                index.insert(
                    id.value(i).to_string(),
                    TicketInfo {
                        category: opt(&cat, i),
                        assignee_id: opt(&agent, i),
                        assignment_group: opt(&group, i),
                        channel: opt(&chan, i),
                    },
                );
            }
        }
    }
    let mut counted = 0;
    for f in recent(Table::Ratings)? {
        let cols = ["ticket_id", "rated_at", "channel", "score_5"];
        for b in f.read(Some(&cols))? {
            let ticket = b.column(0).as_string::<i32>();
            let at = b.column(1).as_primitive::<TimestampMicrosecondType>();
            let chan = b.column(2).as_string::<i32>();
            let score = b.column(3).as_primitive::<Float64Type>();
            for i in 0..b.num_rows() {
                if at.value(i) < now - live.horizon() || at.value(i) > now {
                    continue;
                }
                // The lake holds canonical channel names already.
                let channel = chan.is_valid(i).then(|| chan.value(i));
                let info = index.get(ticket.value(i));
                live.count(at.value(i), channel, score.value(i), info, now);
                counted += 1;
            }
        }
    }
    Ok(counted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Channel, Scale};

    fn rating(at: Micros, channel: Channel, score: f64) -> Rating {
        Rating {
            rating_id: "R".into(),
            ticket_id: "T1".into(),
            interaction_id: None,
            requester_id: None,
            rated_at: at,
            channel: Some(channel),
            score_raw: score.to_string(),
            scale: Scale::Five,
            score_5: score,
            comment: None,
            lang: None,
            sentiment: None,
        }
    }

    #[test]
    fn windows_count_by_rating_time() {
        let now = 1_800_000_000 * 1_000_000;
        let mut live = Live::new(4.0, DAY);
        let t = TicketInfo {
            category: Some("Email".into()),
            ..Default::default()
        };
        // Two chat ratings this hour (5 and 2), one 3 hours ago (4), one a week ago (ignored).
        live.add(&rating(now - 5 * MINUTE, Channel::Chat, 5.0), Some(&t), now);
        live.add(&rating(now - 3 * HOUR, Channel::Chat, 4.0), Some(&t), now);
        assert!(
            live.add(&rating(now - 7 * DAY, Channel::Chat, 1.0), Some(&t), now)
                .is_none()
        );
        let w = live
            .add(&rating(now - MINUTE, Channel::Chat, 2.0), Some(&t), now)
            .unwrap();
        assert_eq!((w.rated, w.satisfied), (3, 2));
        live.add(&rating(now, Channel::Email, 1.0), None, now);
        let s = live.snapshot(now);
        let chat = &s.channels[0];
        assert_eq!(chat.channel, "chat");
        assert_eq!((chat.last_hour.rated, chat.last_hour.csat), (2, Some(0.5)));
        assert_eq!(chat.last_24h.rated, 3);
        assert_eq!(chat.last_24h.mean_score, Some(11.0 / 3.0));
        let (lo, hi) = chat.last_hour.ci95.unwrap();
        assert!(lo < 0.5 && hi > 0.5);
        assert_eq!(s.all_channels.last_24h.rated, 4);
        // An hour later the first two leave the last hour; a day later everything is pruned.
        let later = now + HOUR;
        assert_eq!(live.snapshot(later).channels[0].last_hour.rated, 0);
        live.prune(now + 2 * DAY);
        assert!(live.snapshot(now + 2 * DAY).channels.is_empty());
    }
}
