//! Synthetic service-desk exports with known, planted effects, in the generic layout
//! (`tickets.csv`, `interactions.csv`, `ratings.csv`, `adoptions.csv`, canonical column names).
//!
//! Deterministic per seed: every ticket draws from its own random stream, seeded by the run's seed
//! and the ticket's number, so chunks are generated in parallel and written in order, and the same
//! seed always gives the same bytes. The planted effects are the constants below; tests assert
//! that the metrics recover them and docs/benchmarks.md documents them.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, Datelike, NaiveDate, Timelike};
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

use crate::model::{Channel, Micros, Scale};

pub mod event_log;

/// First day of the generated period (a Monday, 00:00 UTC).
pub const START: &str = "2025-11-24";
/// Length of the generated period; the data ends on Sunday 2026-11-22, 24:00 UTC.
pub const WEEKS: i64 = 52;
/// The self-service password-reset launch (a Monday, 00:00 UTC).
pub const LAUNCH: &str = "2026-05-25";
/// The adoption's id and the category it takes over.
pub const ADOPTION_ID: &str = "ADP-001";
pub const LAUNCH_SCOPE: &str = "Password reset";
/// Share of password-reset tickets that self-service removes after the launch.
pub const DEFLECTION: f64 = 0.8;
/// The outage: Email tickets of the last week carry this issue key, arrive three times as often
/// and are satisfied far less often.
pub const OUTAGE_ISSUE_KEY: &str = "PRB-EMAIL-OUTAGE";
pub const OUTAGE_CATEGORY: &str = "Email";
pub const OUTAGE_WEEK_START: &str = "2026-11-16";
pub const OUTAGE_CSAT_PENALTY: f64 = 0.5;
/// Bot-resolved tickets are satisfied this much less often.
pub const BOT_CSAT_PENALTY: f64 = 0.25;
/// Agents whose replies calm people down (the follow-up is positive 90% of the time) and agents
/// whose replies inflame them (negative 85% of the time); other agents: positive 55%, bot 30%.
pub const CALMING_AGENTS: [&str; 3] = ["agent-01", "agent-02", "agent-03"];
pub const INFLAMING_AGENTS: [&str; 2] = ["agent-04", "agent-05"];
/// How much a requester's rating follows the mood of their follow-up: for this share of tickets
/// both come from one latent draw (a bad follow-up then goes with a low rating), for the rest
/// they are independent. The coupling keeps every planted margin (CSAT per channel, the follow-up
/// mood per agent) exactly and gives `predict` a requester's mood to learn from.
pub const MOOD_COUPLING: f64 = 0.6;

/// Probability of "satisfied" (score_5 >= 4) per channel, before the category offset: chat sits
/// 15 points above email.
pub const CHANNEL_CSAT: &[(Channel, f64)] = &[
    (Channel::Chat, 0.88),
    (Channel::Phone, 0.84),
    (Channel::WalkIn, 0.86),
    (Channel::Messaging, 0.82),
    (Channel::Sms, 0.80),
    (Channel::Bot, 0.80),
    (Channel::Portal, 0.76),
    (Channel::Email, 0.73),
    (Channel::Social, 0.68),
];

/// Categories: share of tickets before the launch, median TTR in hours (log-normal, flat over
/// time), satisfaction offset, and channel mix (the case mix differs by channel).
pub struct Category {
    pub name: &'static str,
    pub share: f64,
    pub median_ttr_hours: f64,
    pub csat_offset: f64,
    pub group: &'static str,
    pub subcategories: &'static [&'static str],
    pub channels: &'static [(Channel, f64)],
    pub problem: &'static str,
}

pub const CATEGORIES: &[Category] = &[
    Category {
        name: "Password reset",
        share: 0.25,
        median_ttr_hours: 0.5,
        csat_offset: 0.05,
        group: "Service Desk L1",
        subcategories: &["Windows login", "VPN token"],
        channels: &[
            (Channel::Phone, 0.35),
            (Channel::Chat, 0.25),
            (Channel::Bot, 0.15),
            (Channel::Portal, 0.10),
            (Channel::Sms, 0.10),
            (Channel::Email, 0.05),
        ],
        problem: "I forgot my password and I am locked out of my account",
    },
    Category {
        name: "Access request",
        share: 0.15,
        median_ttr_hours: 8.0,
        csat_offset: 0.0,
        group: "Service Desk L1",
        subcategories: &["Shared drive", "Application role"],
        channels: &[
            (Channel::Portal, 0.45),
            (Channel::Email, 0.30),
            (Channel::Chat, 0.10),
            (Channel::Messaging, 0.15),
        ],
        problem: "I need access to the finance shared drive for the quarterly report",
    },
    Category {
        name: "Software",
        share: 0.20,
        median_ttr_hours: 16.0,
        csat_offset: -0.03,
        group: "Applications",
        subcategories: &["Office", "ERP client"],
        channels: &[
            (Channel::Email, 0.30),
            (Channel::Portal, 0.25),
            (Channel::Chat, 0.20),
            (Channel::Phone, 0.10),
            (Channel::Messaging, 0.10),
            (Channel::Bot, 0.05),
        ],
        problem: "Excel crashes every time I open a large file",
    },
    Category {
        name: "Hardware",
        share: 0.15,
        median_ttr_hours: 40.0,
        csat_offset: -0.05,
        group: "Desktop Support",
        subcategories: &["Laptop", "Monitor"],
        channels: &[
            (Channel::Email, 0.35),
            (Channel::Portal, 0.30),
            (Channel::Phone, 0.20),
            (Channel::WalkIn, 0.15),
        ],
        problem: "my laptop screen flickers and then goes black",
    },
    Category {
        name: "Network",
        share: 0.10,
        median_ttr_hours: 20.0,
        csat_offset: -0.04,
        group: "Network Ops",
        subcategories: &["VPN", "Wi-Fi"],
        channels: &[
            (Channel::Phone, 0.40),
            (Channel::Email, 0.30),
            (Channel::Chat, 0.20),
            (Channel::Social, 0.10),
        ],
        problem: "the VPN disconnects every few minutes",
    },
    Category {
        name: "Email",
        share: 0.15,
        median_ttr_hours: 12.0,
        csat_offset: 0.0,
        group: "Service Desk L1",
        subcategories: &["Mailbox", "Calendar"],
        channels: &[
            (Channel::Email, 0.30),
            (Channel::Phone, 0.30),
            (Channel::Chat, 0.20),
            (Channel::Messaging, 0.10),
            (Channel::Sms, 0.10),
        ],
        problem: "Outlook does not sync my mailbox",
    },
];

/// Agents per assignment group (ids `agent-NN`).
const GROUP_AGENTS: &[(&str, u32, u32)] = &[
    ("Service Desk L1", 1, 20),
    ("Desktop Support", 21, 30),
    ("Network Ops", 31, 35),
    ("Applications", 36, 40),
];
const BOT_ID: &str = "bot-virtual-agent";

/// The files `generate` writes, in the order to ingest them.
pub const FILES: [&str; 4] = [
    "tickets.csv",
    "interactions.csv",
    "ratings.csv",
    "adoptions.csv",
];

/// The paths of the generated files in `dir`.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    FILES.iter().map(|f| dir.join(f)).collect()
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub tickets: u64,
    pub seed: u64,
    pub out: PathBuf,
}

/// What was generated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub tickets: u64,
    pub interactions: u64,
    pub ratings: u64,
    pub adoptions: u64,
}

fn day_micros(date: &str) -> Micros {
    NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .expect("constant dates parse")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc()
        .timestamp_micros()
}

const HOUR: i64 = 3_600_000_000;
const MINUTE: i64 = 60_000_000;

/// The end of the generated period (exclusive).
pub fn end_micros() -> Micros {
    day_micros(START) + WEEKS * 7 * 24 * HOUR
}

/// Relative ticket arrival rate per hour of the period: office hours on weekdays, fewer tickets
/// after the launch (the deflected password resets), more in the outage week.
struct Arrivals {
    start: Micros,
    cumulative: Vec<f64>,
}

impl Arrivals {
    fn new() -> Arrivals {
        let start = day_micros(START);
        let launch = day_micros(LAUNCH);
        let outage = day_micros(OUTAGE_WEEK_START);
        let pr_share = CATEGORIES[0].share;
        let email_share = CATEGORIES
            .iter()
            .find(|c| c.name == OUTAGE_CATEGORY)
            .map_or(0.0, |c| c.share);
        let hours = (WEEKS * 7 * 24) as usize;
        let mut cumulative = Vec::with_capacity(hours);
        let mut total = 0.0;
        for h in 0..hours {
            let t = start + h as i64 * HOUR;
            let dt = DateTime::from_timestamp_micros(t).expect("valid time");
            let weekday = dt.weekday().num_days_from_monday() < 5;
            let office = (8..18).contains(&dt.hour());
            let mut w = match (weekday, office) {
                (true, true) => 10.0,
                (true, false) => 1.0,
                (false, true) => 1.5,
                (false, false) => 0.3,
            };
            if t >= launch {
                w *= 1.0 - pr_share * DEFLECTION;
            }
            if t >= outage && t < outage + 7 * 24 * HOUR {
                w *= 1.0 + 2.0 * email_share;
            }
            total += w;
            cumulative.push(total);
        }
        for c in &mut cumulative {
            *c /= total;
        }
        Arrivals { start, cumulative }
    }

    /// The time at quantile `q` of the arrival distribution.
    fn at(&self, q: f64) -> Micros {
        let h = self
            .cumulative
            .partition_point(|c| *c < q)
            .min(self.cumulative.len() - 1);
        let lo = if h == 0 { 0.0 } else { self.cumulative[h - 1] };
        let frac = ((q - lo) / (self.cumulative[h] - lo)).clamp(0.0, 1.0);
        self.start + h as i64 * HOUR + (frac * HOUR as f64) as i64
    }
}

fn pick<'a, T>(rng: &mut Pcg64Mcg, items: &'a [(T, f64)]) -> &'a T {
    let total: f64 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random::<f64>() * total;
    for (item, w) in items {
        if x < *w {
            return item;
        }
        x -= w;
    }
    &items[items.len() - 1].0
}

fn channel_csat(c: Channel) -> f64 {
    CHANNEL_CSAT
        .iter()
        .find(|(ch, _)| *ch == c)
        .map_or(0.75, |(_, p)| *p)
}

/// The scale a rating is asked on, by the channel it is asked in (a keypad 1–5 on the phone,
/// emoji faces in chat, and so on).
pub fn scale_for(channel: Channel) -> Scale {
    match channel {
        Channel::Sms => Scale::Ten,
        Channel::Chat | Channel::Bot => Scale::Three,
        Channel::Messaging => Scale::Eleven,
        Channel::Email | Channel::Social => Scale::GoodBad,
        _ => Scale::Five,
    }
}

/// Share of offered surveys answered, by the channel the survey is asked in.
fn response_rate(channel: Channel) -> f64 {
    match channel {
        Channel::Chat => 0.50,
        Channel::Phone => 0.45,
        Channel::Sms | Channel::Messaging => 0.40,
        Channel::Bot => 0.35,
        Channel::WalkIn => 0.30,
        Channel::Portal => 0.25,
        Channel::Email => 0.20,
        _ => 0.15,
    }
}

/// A raw score on `scale` for a satisfied (score_5 >= 4) or dissatisfied rating.
fn raw_score(rng: &mut Pcg64Mcg, scale: Scale, satisfied: bool) -> String {
    match (scale, satisfied) {
        (Scale::Five, true) => if rng.random_bool(0.6) { "5" } else { "4" }.into(),
        (Scale::Five, false) => rng.random_range(1..=3).to_string(),
        (Scale::GoodBad, true) => "good".into(),
        (Scale::GoodBad, false) => "bad".into(),
        (Scale::Three, true) => "3".into(),
        (Scale::Three, false) => if rng.random_bool(0.6) { "1" } else { "2" }.into(),
        (Scale::Ten, true) | (Scale::Eleven, true) => rng.random_range(8..=10).to_string(),
        (Scale::Ten, false) => rng.random_range(1..=7).to_string(),
        (Scale::Eleven, false) => rng.random_range(0..=7).to_string(),
        (Scale::Freshdesk, true) => if rng.random_bool(0.6) { "103" } else { "101" }.into(),
        (Scale::Freshdesk, false) => if rng.random_bool(0.6) { "-103" } else { "100" }.into(),
        (Scale::Points, true) => if rng.random_bool(0.6) { "4/4" } else { "3/4" }.into(),
        (Scale::Points, false) => if rng.random_bool(0.6) { "1/4" } else { "2/4" }.into(),
    }
}

/// Reply delay by channel (median, log-normal): people reply well within the default latency
/// targets, so that promptness does not mask the planted effects of who replied.
fn reply_delay(rng: &mut Pcg64Mcg, channel: Channel) -> Micros {
    let median_minutes = match channel {
        Channel::Bot => 0.1,
        Channel::Phone => 0.3,
        Channel::Chat => 1.5,
        Channel::WalkIn => 3.0,
        Channel::Messaging | Channel::Sms | Channel::Social => 2.0,
        _ => 45.0,
    };
    let d = LogNormal::new(f64::ln(median_minutes), 0.4).expect("valid parameters");
    (d.sample(rng) * MINUTE as f64) as Micros
}

const FRUSTRATED: &str = "This is the third time I report it and nobody fixed it. I am really angry and frustrated, this is unacceptable!";
const POLITE: &str = "Could you please help me with this? Thanks.";
const REPLY_CALM: &str = "I am so sorry about the trouble, I completely understand how annoying this is. I have fixed it for you and checked that everything works now.";
const REPLY_CURT: &str = "As stated in the documentation, this is expected behaviour. You should have read the guide instead of wasting our time.";
const REPLY_PLAIN: &str =
    "Thanks for reporting this. I have applied the standard fix, please try again.";
const REPLY_BOT: &str =
    "I found an article that might help: How to fix this yourself. Did this solve your problem?";
const FOLLOWUP_GOOD: &str = "Thank you so much, it works now. Great help!";
const FOLLOWUP_BAD: &str =
    "That did not help at all. It is still broken and I am very disappointed.";
const CLOSE_GOOD: &str = "Glad to hear it. I am closing the ticket now.";
const CLOSE_BAD: &str = "I have escalated it to second line support, sorry for the delay.";
const COMMENT_GOOD: &str = "Quick and friendly support, thanks!";
const COMMENT_BAD: &str = "Terrible support, slow and useless. I had to explain everything twice.";

/// One ticket's rows, written as CSV into per-chunk buffers.
struct Chunk {
    tickets: csv::Writer<Vec<u8>>,
    interactions: csv::Writer<Vec<u8>>,
    ratings: csv::Writer<Vec<u8>>,
    counts: GenerateSummary,
}

impl Chunk {
    fn new() -> Chunk {
        let w = || {
            csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(Vec::new())
        };
        Chunk {
            tickets: w(),
            interactions: w(),
            ratings: w(),
            counts: GenerateSummary::default(),
        }
    }
}

fn ts(t: Micros) -> String {
    crate::timeparse::format_micros(t)
}

fn opt_ts(t: Option<Micros>) -> String {
    t.map(ts).unwrap_or_default()
}

struct Ctx {
    seed: u64,
    requesters: u64,
    arrivals: Arrivals,
    launch: Micros,
    outage: Micros,
    end: Micros,
    total: u64,
}

fn generate_ticket(ctx: &Ctx, i: u64, out: &mut Chunk) -> Result<()> {
    let mut rng = Pcg64Mcg::seed_from_u64(ctx.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ i);
    let opened = ctx
        .arrivals
        .at((i as f64 + rng.random::<f64>()) / ctx.total as f64);
    let in_outage = opened >= ctx.outage && opened < ctx.outage + 7 * 24 * HOUR;

    // Category, conditional on time: fewer password resets after the launch, more Email in the
    // outage week (the same factors as the arrival rate, so the other categories stay flat).
    let weights: Vec<(usize, f64)> = CATEGORIES
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let mut w = c.share;
            if k == 0 && opened >= ctx.launch {
                w *= 1.0 - DEFLECTION;
            }
            if in_outage && c.name == OUTAGE_CATEGORY {
                w *= 3.0;
            }
            (k, w)
        })
        .collect();
    let cat = &CATEGORIES[*pick(&mut rng, &weights)];
    let channel = *pick(&mut rng, cat.channels);
    let subcategory = cat.subcategories[rng.random_range(0..cat.subcategories.len())];
    let ticket_id = format!("INC{:08}", i + 1);
    let requester = format!("user-{:06}", rng.random_range(0..ctx.requesters));
    let (lo, hi) = GROUP_AGENTS
        .iter()
        .find(|(g, _, _)| *g == cat.group)
        .map(|(_, lo, hi)| (*lo, *hi))
        .expect("every group has agents");
    let agent = format!("agent-{:02}", rng.random_range(lo..=hi));
    let priority = *pick(&mut rng, &[(1, 0.03), (2, 0.12), (3, 0.60), (4, 0.25)]);
    let issue_key = in_outage && cat.name == OUTAGE_CATEGORY;

    let ttr_dist = LogNormal::new(f64::ln(cat.median_ttr_hours), 0.7).expect("valid parameters");
    let ttr = (ttr_dist.sample(&mut rng) * HOUR as f64).max(2.0 * MINUTE as f64) as Micros;
    let resolved = opened + ttr;
    let bot_first = channel == Channel::Bot;
    let bot_resolves = bot_first && rng.random_bool(0.6);
    let frt = reply_delay(&mut rng, channel).min(ttr / 2);
    let reopened = rng.random_bool(0.05);
    let reassignments = *pick(&mut rng, &[(0, 0.6), (1, 0.25), (2, 0.1), (3, 0.05)]);

    // The requester's latent satisfaction (uniform; satisfied when below the ticket's CSAT) and
    // whether the follow-up's mood shares it, from a stream of their own so that every other draw
    // of the ticket stays where it was before the coupling.
    let mut latent_rng = Pcg64Mcg::seed_from_u64(
        ctx.seed.wrapping_mul(0xD1B5_4A32_D192_ED03) ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let latent: f64 = latent_rng.random();
    let mood_shares_latent = latent_rng.random_bool(MOOD_COUPLING);

    // The conversation.
    let frustrated = rng.random_bool(0.3);
    let mut seq = 0;
    let mut last_response: Option<String> = None;
    let mut updated = opened;
    let mut write_interaction = |out: &mut Chunk,
                                 at: Micros,
                                 role: &str,
                                 actor: &str,
                                 ch: Channel,
                                 body: String|
     -> Result<Option<String>> {
        if at >= ctx.end {
            return Ok(None);
        }
        seq += 1;
        let id = format!("{ticket_id}-{seq}");
        out.interactions.write_record([
            id.as_str(),
            ticket_id.as_str(),
            &ts(at),
            &seq.to_string(),
            role,
            actor,
            ch.as_str(),
            "true",
            &body,
        ])?;
        out.counts.interactions += 1;
        updated = updated.max(at);
        Ok(Some(id))
    };
    let opening = format!(
        "Hello, {}. {}",
        cat.problem,
        if frustrated { FRUSTRATED } else { POLITE }
    );
    write_interaction(out, opened, "requester", &requester, channel, opening)?;
    let responder_is_bot = bot_first;
    let (responder_role, responder) = if responder_is_bot {
        ("bot", BOT_ID.to_string())
    } else {
        ("agent", agent.clone())
    };
    let reply = if responder_is_bot {
        REPLY_BOT
    } else if CALMING_AGENTS.contains(&agent.as_str()) {
        REPLY_CALM
    } else if INFLAMING_AGENTS.contains(&agent.as_str()) {
        REPLY_CURT
    } else {
        REPLY_PLAIN
    };
    let first_response = opened + frt;
    if let Some(id) = write_interaction(
        out,
        first_response,
        responder_role,
        &responder,
        channel,
        reply.into(),
    )? {
        last_response = Some(id);
    }
    // The requester's answer shows how the reply landed; bot conversations that the bot does
    // not resolve always go on to an agent.
    let p_good = if responder_is_bot {
        0.3
    } else if CALMING_AGENTS.contains(&agent.as_str()) {
        0.9
    } else if INFLAMING_AGENTS.contains(&agent.as_str()) {
        0.15
    } else {
        0.55
    };
    let followup = (bot_first && !bot_resolves) || rng.random_bool(0.6);
    if followup {
        let own_draw: f64 = rng.random();
        let good = if mood_shares_latent { latent } else { own_draw } < p_good;
        // One in ten people switch channel for their answer (and must repeat themselves).
        let ch = if rng.random_bool(0.1) {
            if channel == Channel::Phone {
                Channel::Email
            } else {
                Channel::Phone
            }
        } else {
            channel
        };
        let at = first_response + (ttr - frt) / 3;
        let text = if good { FOLLOWUP_GOOD } else { FOLLOWUP_BAD };
        write_interaction(out, at, "requester", &requester, ch, text.into())?;
        let close = if good { CLOSE_GOOD } else { CLOSE_BAD };
        let close_at = (at + reply_delay(&mut rng, ch)).min(resolved.max(at));
        if let Some(id) = write_interaction(out, close_at, "agent", &agent, ch, close.into())? {
            last_response = Some(id);
        }
    }

    let is_resolved = resolved < ctx.end;
    let closed = resolved + 3 * 24 * HOUR;
    let is_closed = closed < ctx.end;
    let status = match (is_resolved, is_closed) {
        (_, true) => "closed",
        (true, false) => "resolved",
        (false, false) if opened + frt < ctx.end => "in_progress",
        _ => "new",
    };
    if is_resolved {
        updated = updated.max(resolved);
    }
    if is_closed {
        updated = updated.max(closed);
    }
    let sla_hours = [4.0, 8.0, 24.0, 72.0][priority as usize - 1];
    let made_sla = is_resolved.then_some((ttr as f64) <= sla_hours * HOUR as f64);
    let path = match (is_resolved, bot_resolves) {
        (false, _) => "",
        (true, true) => "bot",
        (true, false) => "agent",
    };
    let offered = is_resolved && rng.random_bool(0.9);

    // The rating, asked in the conversation's channel most of the time.
    if offered {
        let in_channel = rng.random_bool(0.85);
        let rating_channel = if in_channel { channel } else { Channel::Email };
        let rated_at = resolved + (rng.random::<f64>() * 6.0 * HOUR as f64) as Micros;
        if rng.random_bool(response_rate(rating_channel)) && rated_at < ctx.end {
            let mut p = channel_csat(channel) + cat.csat_offset;
            if bot_resolves {
                p -= BOT_CSAT_PENALTY;
            }
            if issue_key {
                p -= OUTAGE_CSAT_PENALTY;
            }
            // One draw of the main stream as before, so the later draws keep their place.
            let _: f64 = rng.random();
            let satisfied = latent < p.clamp(0.02, 0.98);
            let scale = scale_for(rating_channel);
            let score = raw_score(&mut rng, scale, satisfied);
            let comment = if rng.random_bool(0.4) {
                if satisfied { COMMENT_GOOD } else { COMMENT_BAD }
            } else {
                ""
            };
            let rated_reply = if in_channel {
                last_response.clone().unwrap_or_default()
            } else {
                String::new()
            };
            out.ratings.write_record([
                format!("R{ticket_id}").as_str(),
                &ticket_id,
                &rated_reply,
                &requester,
                &ts(rated_at),
                rating_channel.as_str(),
                &score,
                scale.as_str(),
                comment,
            ])?;
            out.counts.ratings += 1;
            updated = updated.max(rated_at);
        }
    }

    out.tickets.write_record([
        ticket_id.as_str(),
        "generator",
        &ts(opened),
        &opt_ts((first_response < ctx.end).then_some(first_response)),
        &opt_ts(is_resolved.then_some(resolved)),
        &opt_ts(is_closed.then_some(closed)),
        &ts(updated),
        status,
        &priority.to_string(),
        &format!("P{priority}"),
        cat.name,
        subcategory,
        if cat.name == "Email" {
            "Exchange Online"
        } else {
            ""
        },
        if issue_key { OUTAGE_ISSUE_KEY } else { "" },
        channel.as_str(),
        channel.as_str(),
        &requester,
        &agent,
        cat.group,
        if cat.group == "Service Desk L1" {
            "L1"
        } else {
            "L2"
        },
        &reassignments.to_string(),
        if reopened { "1" } else { "0" },
        &made_sla.map(|b| b.to_string()).unwrap_or_default(),
        path,
        &offered.to_string(),
    ])?;
    out.counts.tickets += 1;
    Ok(())
}

const TICKET_HEADER: &[&str] = &[
    "ticket_id",
    "source",
    "opened_at",
    "first_response_at",
    "resolved_at",
    "closed_at",
    "updated_at",
    "status",
    "priority",
    "priority_raw",
    "category",
    "subcategory",
    "service",
    "issue_key",
    "channel",
    "channel_raw",
    "requester_id",
    "assignee_id",
    "assignment_group",
    "tier",
    "reassignment_count",
    "reopen_count",
    "made_sla",
    "resolution_path",
    "survey_offered",
];
const INTERACTION_HEADER: &[&str] = &[
    "interaction_id",
    "ticket_id",
    "at",
    "seq",
    "actor_role",
    "actor_id",
    "channel",
    "is_public",
    "body",
];
const RATING_HEADER: &[&str] = &[
    "rating_id",
    "ticket_id",
    "interaction_id",
    "requester_id",
    "rated_at",
    "channel",
    "score_raw",
    "scale",
    "comment",
];

/// Tickets per chunk generated by one thread.
const CHUNK: u64 = 50_000;

/// Writes the exports to `opts.out` (each file under a temporary name, renamed when complete).
pub fn generate(opts: &GenerateOptions) -> Result<GenerateSummary> {
    fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let ctx = Ctx {
        seed: opts.seed,
        requesters: (opts.tickets / 3).max(50),
        arrivals: Arrivals::new(),
        launch: day_micros(LAUNCH),
        outage: day_micros(OUTAGE_WEEK_START),
        end: end_micros(),
        total: opts.tickets.max(1),
    };
    let open = |name: &str, header: &[&str]| -> Result<(PathBuf, BufWriter<File>)> {
        let tmp = opts.out.join(format!(".{name}.tmp"));
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        writeln!(w, "{}", header.join(","))?;
        Ok((tmp, w))
    };
    let (t_tmp, mut t_out) = open("tickets.csv", TICKET_HEADER)?;
    let (i_tmp, mut i_out) = open("interactions.csv", INTERACTION_HEADER)?;
    let (r_tmp, mut r_out) = open("ratings.csv", RATING_HEADER)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
    let mut summary = GenerateSummary::default();
    let mut next = 0u64;
    while next < opts.tickets {
        // One chunk per thread, generated in parallel, written in order.
        let ranges: Vec<(u64, u64)> = (0..threads)
            .map(|k| {
                let lo = (next + k * CHUNK).min(opts.tickets);
                (lo, (lo + CHUNK).min(opts.tickets))
            })
            .filter(|(lo, hi)| lo < hi)
            .collect();
        next = ranges.last().map_or(opts.tickets, |r| r.1);
        let chunks: Vec<Result<Chunk>> = std::thread::scope(|s| {
            let handles: Vec<_> = ranges
                .iter()
                .map(|(lo, hi)| {
                    let ctx = &ctx;
                    s.spawn(move || -> Result<Chunk> {
                        let mut c = Chunk::new();
                        for i in *lo..*hi {
                            generate_ticket(ctx, i, &mut c)?;
                        }
                        Ok(c)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("generator thread"))
                .collect()
        });
        for c in chunks {
            let c = c?;
            t_out.write_all(&c.tickets.into_inner()?)?;
            i_out.write_all(&c.interactions.into_inner()?)?;
            r_out.write_all(&c.ratings.into_inner()?)?;
            summary.tickets += c.counts.tickets;
            summary.interactions += c.counts.interactions;
            summary.ratings += c.counts.ratings;
        }
    }
    for (tmp, w, name) in [
        (t_tmp, t_out, "tickets.csv"),
        (i_tmp, i_out, "interactions.csv"),
        (r_tmp, r_out, "ratings.csv"),
    ] {
        let f = w.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        fs::rename(&tmp, opts.out.join(name))?;
    }
    write_adoptions(&opts.out)?;
    summary.adoptions = 1;
    Ok(summary)
}

fn write_adoptions(dir: &Path) -> Result<()> {
    let tmp = dir.join(".adoptions.csv.tmp");
    let mut w = csv::Writer::from_path(&tmp)?;
    w.write_record(["adoption_id", "name", "kind", "launched_at", "scope"])?;
    w.write_record([
        ADOPTION_ID,
        "Password reset self-service",
        "self_service",
        &ts(day_micros(LAUNCH)),
        LAUNCH_SCOPE,
    ])?;
    w.flush()?;
    drop(w);
    fs::rename(tmp, dir.join("adoptions.csv"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let c = tempfile::tempdir().unwrap();
        let gen_into = |dir: &Path, seed| {
            generate(&GenerateOptions {
                tickets: 300,
                seed,
                out: dir.to_path_buf(),
            })
            .unwrap()
        };
        let sa = gen_into(a.path(), 7);
        let sb = gen_into(b.path(), 7);
        gen_into(c.path(), 8);
        assert_eq!(sa, sb);
        assert_eq!(sa.tickets, 300);
        for f in [
            "tickets.csv",
            "interactions.csv",
            "ratings.csv",
            "adoptions.csv",
        ] {
            let x = fs::read(a.path().join(f)).unwrap();
            assert_eq!(x, fs::read(b.path().join(f)).unwrap(), "{f}");
        }
        assert_ne!(
            fs::read(a.path().join("tickets.csv")).unwrap(),
            fs::read(c.path().join("tickets.csv")).unwrap()
        );
    }

    #[test]
    fn arrivals_cover_the_period_in_order() {
        let a = Arrivals::new();
        let (start, end) = (day_micros(START), end_micros());
        let mut prev = start;
        for k in 0..=100 {
            let t = a.at(k as f64 / 100.0);
            assert!(t >= prev && t <= end, "{k}");
            prev = t;
        }
    }

    #[test]
    fn planted_texts_carry_the_intended_sentiment() {
        let c = crate::sentiment::compound;
        for cat in CATEGORIES {
            // Angry openings are hotspots; polite ones are not.
            assert!(
                c(&format!("Hello, {}. {FRUSTRATED}", cat.problem)) <= -0.5,
                "{}",
                cat.name
            );
            assert!(
                c(&format!("Hello, {}. {POLITE}", cat.problem)) > -0.05,
                "{}",
                cat.name
            );
        }
        assert!(c(FOLLOWUP_GOOD) >= 0.5);
        assert!(c(FOLLOWUP_BAD) <= -0.5);
        assert!(c(COMMENT_GOOD) >= 0.05);
        assert!(c(COMMENT_BAD) <= -0.05);
    }

    #[test]
    fn every_scale_keeps_satisfaction() {
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        for scale in [
            Scale::Five,
            Scale::GoodBad,
            Scale::Three,
            Scale::Ten,
            Scale::Eleven,
            Scale::Freshdesk,
            Scale::Points,
        ] {
            for satisfied in [true, false] {
                for _ in 0..50 {
                    let raw = raw_score(&mut rng, scale, satisfied);
                    let s5 = scale.score_5(&raw).unwrap();
                    assert_eq!(s5 >= 4.0, satisfied, "{scale} {raw}");
                }
            }
        }
    }
}
