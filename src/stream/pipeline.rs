//! The stream's core: one thread that owns the spool, the de-duplication state, the events not
//! yet in the lake, the live figures and the alerts, fed through a bounded queue; and one thread
//! that writes micro-batches to the lake.
//!
//! Order of work for a request: drop repeated event ids → append accepted events (and refused
//! lines) to the spool and fsync → update live figures → append the alerts due to the spool's
//! outbox and fsync → write them to the alerts file and the webhook queue → acknowledge. For a
//! micro-batch: seal the spool segment → the flusher commits the rows to the lake (sentiment
//! scored) → record their ids as seen (fsync) → copy the outbox's open alerts out of the sealed
//! segments → delete them. A crash between any two steps leaves each acknowledged event in the
//! lake, in the spool, or both (the lake keeps one row per key, so a replay of an event already
//! in the lake changes nothing).
//!
//! Alerts are delivered at least once: an alert stays in the outbox until it is done (written to
//! the file and, with a webhook, delivered, failed after its retries or dropped by the full
//! queue); at start the outbox's open alerts are sent again, and a replayed low rating whose
//! escalation never reached the outbox (a crash between the two fsyncs) is escalated then.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::sync::oneshot;

use super::alerts::{Alert, AlertSink, Outgoing, now_text};
use super::at_risk::{AtRiskSettings, Conversations, Trigger};
use super::event::{Event, Parser, Refusal, Row};
use super::live::{Live, TicketIndex};
use super::monitor::Monitor;
use super::spool::{self, Entry, Seen, Spool};
use crate::lake::{CommitCounts, Lake};
use crate::model::{Interaction, Micros, Reject, Table};
use crate::sentiment::lang::ScoredLanguages;

/// What the core needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Cut a micro-batch at least this often (when there is anything to write)...
    pub flush_interval: Duration,
    /// ...or as soon as this many events are waiting.
    pub flush_events: usize,
    /// Events accepted but not yet in the lake, at most; beyond it requests get 503.
    pub max_pending: usize,
    /// Event ids remembered after they reached the lake.
    pub dedup_window: usize,
    /// Tickets remembered for alerts (category, agent, group), newest first.
    pub ticket_index: usize,
    /// A rating with `score_5` at or below this is escalated.
    pub escalate_at: f64,
    /// `score_5` at or above this is satisfied.
    pub satisfied: f64,
    /// Cohort alert: rolling window, minimum ratings, CSAT threshold, cooldown per category.
    pub cohort_window: Micros,
    pub min_rated: u32,
    pub csat_threshold: f64,
    pub cohort_cooldown: Micros,
    /// Detect languages and score texts in these languages (`None`: neither, `--no-sentiment`,
    /// and no at-risk alerts).
    pub sentiment: Option<ScoredLanguages>,
    /// When an open ticket's requester message raises an at-risk alert.
    pub at_risk: AtRiskSettings,
}

/// A request to the core.
pub enum Msg {
    Append(Submission),
    /// Flush everything and stop; the reply says what is left in the spool.
    Shutdown(oneshot::Sender<u64>),
    Flushed(Flushed),
}

/// Events read from one request (or a run of stdin lines), with the lines refused.
pub struct Submission {
    /// Where the lines came from, for `_rejects`.
    pub source: String,
    pub events: Vec<Event>,
    pub refused: Vec<Refusal>,
    pub reply: oneshot::Sender<Reply>,
}

/// How long a stopping stream waits for the webhook to work through its queue (what is left
/// stays in the outbox for the next start).
const WEBHOOK_DRAIN: Duration = Duration::from_secs(3);

/// Requests taken with one fsync, at most.
const GROUP_COMMIT: usize = 64;

/// The core's answer to an append.
#[derive(Debug)]
pub enum Reply {
    /// In the spool (fsync'd): accepted, and the ids dropped as repeats.
    Spooled {
        accepted: usize,
        duplicates: Vec<String>,
    },
    /// Too many events waiting for the lake: try again later (nothing was kept).
    Busy,
    /// The spool could not be written (nothing was kept).
    Failed(String),
}

struct Batch {
    upto: u64,
    events: Vec<Event>,
    rejects: Vec<Reject>,
}

/// A micro-batch back from the flusher.
pub struct Flushed {
    batch: Batch,
    result: Result<BTreeMap<Table, CommitCounts>>,
}

pub struct Core {
    /// The lake, read for the latest recorded model.
    lake: Lake,
    settings: Settings,
    spool: Spool,
    seen: Seen,
    /// Ids spooled and not yet in the lake (pending or being flushed).
    spooled: HashSet<String>,
    pending: Vec<Event>,
    rejects: Vec<Reject>,
    in_flight: usize,
    flushing: bool,
    last_flush: Instant,
    live: Arc<Mutex<Live>>,
    index: TicketIndex,
    /// Conversations of the newest tickets, for at-risk alerts (none without sentiment).
    conversations: Option<Conversations>,
    alerts: AlertSink,
    last_cohort_alert: HashMap<String, Micros>,
    /// Open alerts: id → (spool segment holding it, JSON).
    outbox: HashMap<String, (u64, String)>,
    /// Ids of alerts the webhook task is done with.
    done: Receiver<String>,
    flusher: SyncSender<Batch>,
    stats: Arc<Monitor>,
}

fn now() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

impl Core {
    /// Opens the spool and replays what an earlier run left in it: its events, its rejects and
    /// its open alerts (sent again). Alerts of replayed events are not raised again, except an
    /// escalation that never reached the outbox. Returns the core and the number of events
    /// replayed.
    #[allow(clippy::too_many_arguments)]
    pub fn open(
        lake: Lake,
        settings: Settings,
        live: Arc<Mutex<Live>>,
        index: TicketIndex,
        alerts: AlertSink,
        done: Receiver<String>,
        stats: Arc<Monitor>,
        to_core: SyncSender<Msg>,
    ) -> Result<(Core, usize)> {
        let state = spool::state_dir(&lake.local_dir()?);
        let (spool, replay) = Spool::open(&state)?;
        let seen = Seen::open(&state, settings.dedup_window)?;
        let (flusher, batches) = sync_channel::<Batch>(1);
        let sentiment = settings.sentiment.clone();
        let reader = lake.clone();
        std::thread::Builder::new()
            .name("deskpulse-flush".into())
            .spawn({
                let stats = stats.clone();
                move || flush_loop(lake, sentiment, batches, to_core, stats)
            })?;
        let conversations = settings.sentiment.clone().map(|languages| {
            Conversations::new(settings.ticket_index, settings.at_risk.clone(), languages)
        });
        let mut core = Core {
            lake: reader,
            settings,
            conversations,
            spool,
            seen,
            spooled: HashSet::new(),
            pending: Vec::new(),
            rejects: Vec::new(),
            in_flight: 0,
            flushing: false,
            last_flush: Instant::now(),
            live,
            index,
            alerts,
            last_cohort_alert: HashMap::new(),
            outbox: HashMap::new(),
            done,
            flusher,
            stats,
        };
        let parser = Parser::default();
        let mut replayed = 0;
        let mut raised = HashSet::new();
        let mut missed = Vec::new();
        for (n, entry) in replay.into_iter().enumerate() {
            match entry {
                Entry::Event(raw) => match parser.line(n as u64 + 1, &raw) {
                    Ok(e) if core.seen.contains(&e.id) || core.spooled.contains(&e.id) => {}
                    Ok(e) => {
                        core.spooled.insert(e.id.clone());
                        missed.extend(core.observe(&e, false));
                        core.pending.push(e);
                        replayed += 1;
                    }
                    Err(r) => core.rejects.push(reject("spool replay", r)),
                },
                Entry::Reject(r) => core.rejects.push(r),
                Entry::Alert(json) => match serde_json::from_str::<Alert>(&json) {
                    // Segment 0: copied out of the old segments when they are deleted.
                    Ok(a) => {
                        raised.insert(a.id().to_string());
                        core.outbox.insert(a.id().to_string(), (0, json));
                    }
                    Err(e) => eprintln!("deskpulse stream: an unreadable alert in the spool: {e}"),
                },
                Entry::Done(id) => {
                    core.outbox.remove(&id);
                }
            }
        }
        core.stats.waiting.set(core.pending.len() as i64);
        core.reload_model();
        let mut open: Vec<(String, String)> = core
            .outbox
            .iter()
            .map(|(id, (_, json))| (id.clone(), json.clone()))
            .collect();
        open.sort();
        let mut marks = Vec::new();
        for (id, json) in open {
            if core.alerts.emit(Outgoing {
                id: id.clone(),
                json,
            })? {
                core.outbox.remove(&id);
                marks.push(Entry::Done(id));
            }
        }
        core.spool.write(&marks, false)?;
        missed.retain(|a| !raised.contains(a.id()));
        core.raise(missed)?;
        core.stats.outbox.set(core.outbox.len() as i64);
        Ok((core, replayed))
    }

    /// Serves messages until a shutdown has flushed everything.
    pub fn run(mut self, rx: Receiver<Msg>) {
        let mut closing: Option<oneshot::Sender<u64>> = None;
        let mut last_prune = Instant::now();
        loop {
            // Wake for the next flush when something waits for one; otherwise only a message
            // (or the minute's pruning) has anything to do.
            let idle = self.flushing || (self.pending.is_empty() && self.rejects.is_empty());
            let wait = if idle {
                Duration::from_secs(60)
            } else {
                self.settings
                    .flush_interval
                    .saturating_sub(self.last_flush.elapsed())
                    .max(Duration::from_millis(5))
            };
            let mut messages = match rx.recv_timeout(wait) {
                Ok(m) => vec![m],
                Err(RecvTimeoutError::Timeout) => Vec::new(),
                Err(RecvTimeoutError::Disconnected) => break,
            };
            while !messages.is_empty() && messages.len() < GROUP_COMMIT {
                match rx.try_recv() {
                    Ok(m) => messages.push(m),
                    Err(_) => break,
                }
            }
            let mut submissions = Vec::new();
            let mut give_up = false;
            for m in messages {
                match m {
                    Msg::Append(r) => submissions.push(r),
                    Msg::Flushed(f) => {
                        // While closing, a batch the lake refuses stays in the spool.
                        give_up |= f.result.is_err() && closing.is_some();
                        self.finish(f);
                    }
                    Msg::Shutdown(reply) => closing = Some(reply),
                }
            }
            if !submissions.is_empty() {
                self.append(submissions);
            }
            self.mark_done();
            if give_up {
                break;
            }
            let due = self.last_flush.elapsed() >= self.settings.flush_interval
                || self.pending.len() >= self.settings.flush_events
                || closing.is_some();
            if due && !self.flushing && (!self.pending.is_empty() || !self.rejects.is_empty()) {
                self.cut();
            }
            if closing.is_some() && !self.flushing && self.pending.is_empty() {
                break;
            }
            if last_prune.elapsed() >= Duration::from_secs(60) {
                self.live.lock().expect("live state").prune(now());
                self.reload_model();
                last_prune = Instant::now();
            }
        }
        let left = (self.pending.len() + self.in_flight) as u64;
        self.drain_webhook();
        // Events or rejects left and open alerts keep the spool; marks and done alerts do not.
        let keep = left > 0 || !self.rejects.is_empty() || !self.outbox.is_empty();
        if let Err(e) = self.spool.close(keep) {
            eprintln!("deskpulse stream: {e:#}");
        }
        if let Some(reply) = closing {
            let _ = reply.send(left);
        }
    }

    /// Takes a group of submissions with one spool write and one fsync (group commit: under load
    /// one fsync covers every request that queued meanwhile).
    fn append(&mut self, submissions: Vec<Submission>) {
        let mut entries = Vec::new();
        let mut taken = Vec::with_capacity(submissions.len());
        let mut waiting = self.pending.len() + self.in_flight;
        for Submission {
            source,
            events,
            refused,
            reply,
        } in submissions
        {
            if waiting + events.len() > self.settings.max_pending {
                let _ = reply.send(Reply::Busy);
                continue;
            }
            let mut accepted = Vec::with_capacity(events.len());
            let mut duplicates = Vec::new();
            for e in events {
                if self.seen.contains(&e.id) || !self.spooled.insert(e.id.clone()) {
                    duplicates.push(e.id);
                } else {
                    entries.push(Entry::Event(e.raw.clone()));
                    accepted.push(e);
                }
            }
            waiting += accepted.len();
            let rejects: Vec<Reject> = refused.into_iter().map(|r| reject(&source, r)).collect();
            entries.extend(rejects.iter().cloned().map(Entry::Reject));
            taken.push((reply, accepted, duplicates, rejects));
        }
        if let Err(e) = self.spool.append(&entries) {
            let message = format!("{e:#}");
            for (reply, accepted, ..) in taken {
                for a in &accepted {
                    self.spooled.remove(&a.id);
                }
                let _ = reply.send(Reply::Failed(message.clone()));
            }
            return;
        }
        let mut due = Vec::new();
        for (_, accepted, ..) in &taken {
            for e in accepted {
                due.extend(self.observe(e, true));
            }
        }
        // Before any acknowledgement: an acknowledged event's alerts are in the outbox.
        if let Err(err) = self.raise(due) {
            eprintln!("deskpulse stream: {err:#}");
        }
        for (reply, accepted, duplicates, rejects) in taken {
            let s = &self.stats;
            s.accepted.inc_by(accepted.len() as u64);
            s.duplicates.inc_by(duplicates.len() as u64);
            s.refused.inc_by(rejects.len() as u64);
            self.rejects.extend(rejects);
            let n = accepted.len();
            self.pending.extend(accepted);
            let _ = reply.send(Reply::Spooled {
                accepted: n,
                duplicates,
            });
        }
        self.stats
            .waiting
            .set((self.pending.len() + self.in_flight) as i64);
    }

    /// Updates the ticket index, the conversations and the live figures, and returns the
    /// alerts due: the escalation of a low rating and, with `fresh` (not a replay), a cohort
    /// alert and an at-risk alert.
    fn observe(&mut self, e: &Event, fresh: bool) -> Vec<Alert> {
        let mut due = Vec::new();
        let r = match &e.row {
            Row::Ticket(t) => {
                self.index.add_ticket(t);
                if let Some(c) = &mut self.conversations {
                    c.ticket(t);
                }
                return due;
            }
            Row::Interaction(i) => {
                let trigger = self
                    .conversations
                    .as_mut()
                    .and_then(|c| c.interaction(i, now(), fresh));
                due.extend(trigger.map(|t| self.at_risk(e, i, t)));
                return due;
            }
            Row::Rating(r) => r,
        };
        let at = now();
        let info = self.index.get(&r.ticket_id).cloned();
        let window = self
            .live
            .lock()
            .expect("live state")
            .add(r, info.as_ref(), at);
        let info = info.unwrap_or_default();
        let st = &self.settings;
        if r.score_5 <= st.escalate_at {
            due.push(Alert::Escalation {
                alert_id: Alert::escalation_id(&e.id),
                alerted_at: now_text(),
                event_id: e.id.clone(),
                rating_id: r.rating_id.clone(),
                ticket_id: r.ticket_id.clone(),
                agent: info.assignee_id.clone(),
                group: info.assignment_group.clone(),
                category: info.category.clone(),
                channel: r.channel.map(|c| c.as_str().to_string()).or(info.channel),
                score_5: r.score_5,
                comment: r.comment.clone(),
                rated_at: crate::timeparse::format_micros(r.rated_at),
            });
        }
        if !fresh {
            return due;
        }
        if let (Some(w), Some(category)) = (window, info.category) {
            let low = w.csat.is_some_and(|c| c < st.csat_threshold);
            let cooled = self
                .last_cohort_alert
                .get(&category)
                .is_none_or(|t| at - t >= st.cohort_cooldown);
            if low && w.rated >= u64::from(st.min_rated) && cooled {
                let hours = st.cohort_window as f64 / 3.6e9;
                let (threshold, min) = (st.csat_threshold, st.min_rated);
                due.push(Alert::cohort(&e.id, &category, &w, hours, threshold, min));
                self.last_cohort_alert.insert(category, at);
            }
        }
        due
    }

    /// Takes the latest model recorded in the lake (`predict --record`) for the at-risk alerts,
    /// and says so when it changes; a lake that cannot be read keeps the model it had.
    fn reload_model(&mut self) {
        let Some(c) = &mut self.conversations else {
            return;
        };
        match crate::predict::Spec::latest(&self.lake) {
            Ok(model) => {
                let id = model.as_ref().map(|m| m.model_id.clone());
                if id.as_deref() != c.model_id() {
                    if let Some(id) = &id {
                        eprintln!("deskpulse stream: open tickets are scored with model {id}");
                    }
                    c.set_model(model);
                }
            }
            Err(e) => eprintln!("deskpulse stream: the lake's models cannot be read: {e:#}"),
        }
    }

    /// The at-risk alert of requester message `i` (event `e`).
    fn at_risk(&self, e: &Event, i: &Interaction, t: Trigger) -> Alert {
        let info = self.index.get(&i.ticket_id).cloned().unwrap_or_default();
        Alert::AtRisk {
            alert_id: format!("at_risk:{}", e.id),
            alerted_at: now_text(),
            event_id: e.id.clone(),
            ticket_id: i.ticket_id.clone(),
            interaction_id: i.interaction_id.clone(),
            reason: t.reason.to_string(),
            sentiment: t.sentiment,
            previous_sentiment: t.previous,
            probability: t.probability,
            model_id: t.model_id,
            message: i.body.clone(),
            agent: t.responder.or(info.assignee_id),
            group: info.assignment_group,
            category: info.category,
            channel: i.channel.as_str().to_string(),
            at: crate::timeparse::format_micros(i.at),
        }
    }

    /// Puts alerts in the outbox (fsync'd), then writes them to the file and the webhook queue.
    fn raise(&mut self, alerts: Vec<Alert>) -> Result<()> {
        if alerts.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(alerts.len());
        for a in &alerts {
            let json = serde_json::to_string(a)?;
            out.push(Outgoing {
                id: a.id().to_string(),
                json,
            });
        }
        let entries: Vec<Entry> = out.iter().map(|o| Entry::Alert(o.json.clone())).collect();
        self.spool.append(&entries)?;
        let segment = self.spool.current();
        let mut marks = Vec::new();
        for o in out {
            let id = o.id.clone();
            self.outbox.insert(id.clone(), (segment, o.json.clone()));
            if self.alerts.emit(o)? {
                self.outbox.remove(&id);
                marks.push(Entry::Done(id));
            }
        }
        self.stats.outbox.set(self.outbox.len() as i64);
        self.spool.write(&marks, false)
    }

    /// Marks the alerts the webhook task is done with.
    fn mark_done(&mut self) {
        let ids: Vec<String> = self.done.try_iter().collect();
        self.mark(ids);
    }

    fn mark(&mut self, ids: Vec<String>) {
        let marks: Vec<Entry> = ids
            .into_iter()
            .filter(|id| self.outbox.remove(id).is_some())
            .map(Entry::Done)
            .collect();
        self.stats.outbox.set(self.outbox.len() as i64);
        if let Err(e) = self.spool.write(&marks, false) {
            eprintln!("deskpulse stream: {e:#}");
        }
    }

    /// Lets the webhook task work through its queue for a while and marks what it finished.
    fn drain_webhook(&mut self) {
        if !self.alerts.has_webhook() {
            return;
        }
        self.alerts.close_webhook();
        let deadline = Instant::now() + WEBHOOK_DRAIN;
        let mut ids = Vec::new();
        while let Ok(id) = self
            .done
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            ids.push(id);
        }
        self.mark(ids);
    }

    /// Copies the open alerts held in segments up to `upto` into the current one, before those
    /// segments are deleted.
    fn carry_outbox(&mut self, upto: u64) -> Result<()> {
        let current = self.spool.current();
        let mut entries = Vec::new();
        for (segment, json) in self.outbox.values_mut() {
            if *segment <= upto {
                entries.push(Entry::Alert(json.clone()));
                *segment = current;
            }
        }
        self.spool.append(&entries)
    }

    /// Seals the spool and hands everything waiting to the flusher.
    fn cut(&mut self) {
        let upto = match self.spool.seal() {
            Ok(u) => u,
            Err(e) => {
                eprintln!("deskpulse stream: cannot seal the spool: {e:#}");
                return;
            }
        };
        let batch = Batch {
            upto,
            events: std::mem::take(&mut self.pending),
            rejects: std::mem::take(&mut self.rejects),
        };
        self.in_flight = batch.events.len();
        self.flushing = true;
        self.last_flush = Instant::now();
        if self.flusher.send(batch).is_err() {
            eprintln!("deskpulse stream: the flusher stopped");
        }
    }

    /// Records a batch that reached the lake, or takes a failed one back for the next try.
    fn finish(&mut self, f: Flushed) {
        self.flushing = false;
        self.in_flight = 0;
        let Flushed { batch, result } = f;
        let outcome = result.and_then(|counts| {
            let ids: Vec<String> = batch.events.iter().map(|e| e.id.clone()).collect();
            self.seen.record(ids)?;
            self.carry_outbox(batch.upto)?;
            spool::remove_upto(self.spool.dir(), batch.upto)?;
            Ok(counts)
        });
        match outcome {
            Ok(_) => {
                for e in &batch.events {
                    self.spooled.remove(&e.id);
                }
                let s = &self.stats;
                s.in_lake.inc_by(batch.events.len() as u64);
                s.batches.inc();
            }
            Err(e) => {
                eprintln!(
                    "deskpulse stream: a micro-batch did not reach the lake (kept, retried): {e:#}"
                );
                self.stats.failed_batches.inc();
                let mut events = batch.events;
                events.append(&mut self.pending);
                self.pending = events;
                let mut rejects = batch.rejects;
                rejects.append(&mut self.rejects);
                self.rejects = rejects;
            }
        }
        self.stats.waiting.set(self.pending.len() as i64);
    }
}

fn reject(source: &str, r: Refusal) -> Reject {
    Reject {
        source_file: source.to_string(),
        line: r.line,
        column: r.field,
        reason: r.reason,
        raw: r.raw,
    }
}

/// Writes each batch to the lake and sends it back to the core.
fn flush_loop(
    lake: Lake,
    sentiment: Option<ScoredLanguages>,
    batches: Receiver<Batch>,
    core: SyncSender<Msg>,
    stats: Arc<Monitor>,
) {
    for batch in batches {
        let start = Instant::now();
        let result = commit(&lake, sentiment.as_ref(), &batch);
        stats.flushed(start.elapsed());
        if core.send(Msg::Flushed(Flushed { batch, result })).is_err() {
            break;
        }
    }
}

fn commit(
    lake: &Lake,
    sentiment: Option<&ScoredLanguages>,
    batch: &Batch,
) -> Result<BTreeMap<Table, CommitCounts>> {
    let name = format!("stream-{:020}", batch.upto);
    let mut staging = lake.stage(&name)?;
    if let Some(languages) = sentiment {
        staging = staging.with_sentiment(languages.clone());
    }
    let now = chrono::Utc::now().timestamp_micros();
    let staged = (|| {
        for e in &batch.events {
            // A finding names the event (an event has no line of a file).
            let source = format!("stream:{}", e.id);
            match &e.row {
                Row::Ticket(t) => staging.push_checked((**t).clone(), &source, 0, now)?,
                Row::Interaction(i) => staging.push_checked(i.clone(), &source, 0, now)?,
                Row::Rating(r) => staging.push_checked(r.clone(), &source, 0, now)?,
            };
        }
        for r in &batch.rejects {
            staging.push_reject(r.clone())?;
        }
        anyhow::Ok(())
    })();
    match staged {
        Ok(()) => staging.commit(lake),
        Err(e) => {
            staging.abort()?;
            Err(e)
        }
    }
}
