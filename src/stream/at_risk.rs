//! At-risk tickets: a requester who answers a reply with a strongly negative message, or whose
//! mood falls sharply from their previous message, or whose ticket the published model (the
//! latest in the lake's `models`, `predict --record`) now gives a low P(satisfied), while the
//! ticket is open. That is the moment to ask for feedback or for a team lead to step in, before
//! a bad rating (DESIGN 1: feedback at the moments of strongest emotion, escalation when
//! frustration rises).
//!
//! The state per ticket (was there a reply since the requester last wrote, who replied, the
//! requester's moods, what the model reads of the ticket so far, the last alert) is kept for
//! the newest tickets only, like the ticket index, so memory stays bounded.

use crate::calendar::Calendar;
use crate::model::{ActorRole, Channel, Interaction, Micros, ResolutionPath, Ticket};
use crate::predict::{Example, SoFar, Spec};
use crate::sentiment::lang::{ScoredLanguages, classify};

use super::recent::Recent;

/// When a requester's message makes a ticket at risk.
#[derive(Debug, Clone)]
pub struct AtRiskSettings {
    /// A message after a reply with VADER compound at or below this...
    pub negative_at: f64,
    /// ...or at least this much below the requester's previous scored message.
    pub drop: f64,
    /// ...or when the published model's P(satisfied) of the ticket so far falls below this
    /// (0: never).
    pub probability_below: f64,
    /// At most one at-risk alert per ticket in this time.
    pub cooldown: Micros,
    /// Business hours for the model's first response and resolution times.
    pub calendar: Calendar,
}

impl Default for AtRiskSettings {
    fn default() -> Self {
        AtRiskSettings {
            negative_at: -0.5,
            drop: 1.0,
            probability_below: 0.5,
            cooldown: 24 * 3_600_000_000,
            calendar: Calendar::default(),
        }
    }
}

/// Why a message made its ticket at risk.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// `negative` (at or below the threshold), `drop` (from the previous message) or `model`
    /// (P(satisfied) below the threshold).
    pub reason: &'static str,
    /// The message's sentiment (None: not scored, for a `model` trigger).
    pub sentiment: Option<f64>,
    pub previous: Option<f64>,
    /// The model's P(satisfied) of the ticket so far, and the model (when there is one).
    pub probability: Option<f64>,
    pub model_id: Option<String>,
    /// Who gave the reply the requester answered.
    pub responder: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct Conversation {
    /// A public agent or bot reply came after the requester's last message.
    replied: bool,
    responder: Option<String>,
    /// The requester's last scored message.
    mood: Option<f64>,
    last_alert: Option<Micros>,
    /// A ticket event said resolved or closed (a later one without either reopens it).
    closed: bool,
    /// What the model reads: the ticket's fields, its first reply and who took part.
    so_far: SoFar,
    opened_at: Option<Micros>,
    first_reply: Option<Micros>,
    export_first_response: Option<Micros>,
    agents: Vec<String>,
    requester_channels: Vec<Channel>,
    /// The model's last P(satisfied) of the ticket: an alert when it falls below the threshold.
    probability: Option<f64>,
}

/// The conversations of the newest tickets.
pub struct Conversations {
    tickets: Recent<Conversation>,
    settings: AtRiskSettings,
    languages: ScoredLanguages,
    model: Option<Spec>,
}

impl Conversations {
    pub fn new(capacity: usize, settings: AtRiskSettings, languages: ScoredLanguages) -> Self {
        Conversations {
            tickets: Recent::new(capacity),
            settings,
            languages,
            model: None,
        }
    }

    /// Scores open tickets with `model` from now on (None: no model trigger).
    pub fn set_model(&mut self, model: Option<Spec>) {
        self.model = model;
    }

    pub fn model_id(&self) -> Option<&str> {
        self.model.as_ref().map(|m| m.model_id.as_str())
    }

    /// A ticket event: resolved or closed tickets are not at risk; its fields feed the model.
    pub fn ticket(&mut self, t: &Ticket) {
        let c = entry(&mut self.tickets, &t.ticket_id);
        c.closed = t.resolved_at.is_some() || t.closed_at.is_some();
        c.opened_at = Some(t.opened_at);
        c.export_first_response = t.first_response_at;
        let s = &mut c.so_far;
        s.reopens = f64::from(t.reopen_count.unwrap_or(0));
        s.reassignments = f64::from(t.reassignment_count.unwrap_or(0));
        s.bot |= t.resolution_path == Some(ResolutionPath::Bot);
        s.channel = t.channel.map(|ch| ch.as_str().to_string());
        s.category = t.category.clone();
        s.priority = t.priority.map(|p| p.to_string());
    }

    /// An interaction at `now`: returns the trigger when it puts its open ticket at risk and the
    /// ticket had no at-risk alert within the cooldown; `alert` false (a replay) only keeps the
    /// state.
    pub fn interaction(&mut self, i: &Interaction, now: Micros, alert: bool) -> Option<Trigger> {
        let mood = match i.actor_role {
            ActorRole::Requester => i.body.as_deref().and_then(|b| self.score(b)),
            _ => None,
        };
        let settings = &self.settings;
        let c = entry(&mut self.tickets, &i.ticket_id);
        c.follow(i, mood);
        let trigger = match i.actor_role {
            ActorRole::Agent | ActorRole::Bot if i.is_public => {
                c.replied = true;
                c.responder = i.actor_id.clone();
                None
            }
            ActorRole::Requester => c.requester_said(i, mood, self.model.as_ref(), settings),
            _ => None,
        };
        let cooled = c.last_alert.is_none_or(|t| now - t >= settings.cooldown);
        let trigger = trigger.filter(|_| alert && !c.closed && cooled);
        if trigger.is_some() {
            c.last_alert = Some(now);
        }
        trigger
    }

    /// VADER's compound for a text in a scored language (`None`: another language, or no text
    /// to score).
    fn score(&self, text: &str) -> Option<f64> {
        let lang = classify(text, &self.languages);
        self.languages
            .scores(lang.as_deref())
            .then(|| crate::sentiment::compound(text))
    }
}

/// The conversation of `ticket_id`, a new one if it has none.
fn entry<'a>(tickets: &'a mut Recent<Conversation>, ticket_id: &str) -> &'a mut Conversation {
    if !tickets.contains(ticket_id) {
        tickets.insert(ticket_id.to_string(), Conversation::default());
    }
    tickets.get_mut(ticket_id).expect("just inserted")
}

impl Conversation {
    /// Keeps what the model reads of the ticket so far.
    fn follow(&mut self, i: &Interaction, mood: Option<f64>) {
        let s = &mut self.so_far;
        match i.actor_role {
            ActorRole::Agent | ActorRole::Bot if i.is_public => {
                self.first_reply = Some(self.first_reply.map_or(i.at, |t| t.min(i.at)));
                s.bot |= i.actor_role == ActorRole::Bot;
                if let Some(a) = &i.actor_id
                    && i.actor_role == ActorRole::Agent
                    && !self.agents.contains(a)
                {
                    self.agents.push(a.clone());
                    s.agent_hops = (self.agents.len() - 1) as f64;
                }
            }
            ActorRole::Bot => s.bot = true,
            ActorRole::Requester => {
                s.requester_messages += 1.0;
                if !self.requester_channels.contains(&i.channel) {
                    self.requester_channels.push(i.channel);
                    s.channel_switches = (self.requester_channels.len() - 1) as f64;
                }
                if let Some(m) = mood {
                    s.sentiment_first = s.sentiment_first.or(Some(m));
                    s.sentiment_last = Some(m);
                    s.sentiment_min = Some(s.sentiment_min.map_or(m, |x| x.min(m)));
                }
            }
            _ => {}
        }
    }

    /// A requester's message: at risk by its sentiment when it answers a reply, or by the
    /// model's P(satisfied) of the ticket so far falling below the threshold.
    fn requester_said(
        &mut self,
        i: &Interaction,
        mood: Option<f64>,
        model: Option<&Spec>,
        settings: &AtRiskSettings,
    ) -> Option<Trigger> {
        let previous = self.mood;
        let answered = std::mem::take(&mut self.replied);
        self.mood = mood.or(previous);
        let was = self.probability;
        let probability = model.map(|m| m.probability(&self.example(i, settings)));
        self.probability = probability.or(was);
        let below = |p: f64| p < settings.probability_below;
        let reason = match (mood, probability) {
            (Some(s), _) if answered && s <= settings.negative_at => "negative",
            (Some(s), _) if answered && previous.is_some_and(|p| p - s >= settings.drop) => "drop",
            (_, Some(p)) if below(p) && !was.is_some_and(below) => "model",
            _ => return None,
        };
        Some(Trigger {
            reason,
            sentiment: mood,
            previous,
            probability,
            model_id: model.map(|m| m.model_id.clone()),
            responder: self.responder.clone(),
        })
    }

    /// The ticket as the model sees it at message `i`: durations so far in business hours.
    fn example(&self, i: &Interaction, settings: &AtRiskSettings) -> Example {
        let hours = |from: Option<Micros>, to: Option<Micros>| {
            let (from, to) = (from?, to?);
            (to >= from).then(|| settings.calendar.business_seconds(from, to) / 3600.0)
        };
        let mut s = self.so_far.clone();
        s.frt_hours = hours(
            self.opened_at,
            self.first_reply.or(self.export_first_response),
        );
        s.ttr_hours = hours(self.opened_at, Some(i.at));
        Example::so_far(&i.ticket_id, &s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Channel;

    const HOUR: Micros = 3_600_000_000;

    fn said(ticket: &str, role: ActorRole, who: &str, body: &str) -> Interaction {
        Interaction {
            interaction_id: format!("{ticket}-{body}"),
            ticket_id: ticket.into(),
            at: 0,
            seq: None,
            actor_role: role,
            actor_id: Some(who.into()),
            channel: Channel::Chat,
            is_public: true,
            body: Some(body.into()),
            lang: None,
            sentiment: None,
        }
    }

    fn conversations() -> Conversations {
        Conversations::new(
            100,
            AtRiskSettings::default(),
            ScoredLanguages::new(&["en"]).unwrap(),
        )
    }

    const POLITE: &str = "Hello, could you please help me with my laptop? Thank you, great work.";
    const ANGRY: &str = "This is terrible, nothing works and I am furious, worst support ever.";
    const FLAT: &str = "The laptop still shows the same screen after the restart.";

    #[test]
    fn a_negative_answer_to_a_reply_is_at_risk_once_per_cooldown() {
        let mut c = conversations();
        let r = |c: &mut Conversations, i: Interaction, now| c.interaction(&i, now, true);
        // Angry before any reply: not yet an answer to the desk.
        assert_eq!(
            r(&mut c, said("T1", ActorRole::Requester, "u", ANGRY), 0),
            None
        );
        assert_eq!(
            r(&mut c, said("T1", ActorRole::Agent, "a7", "Done."), 1),
            None
        );
        let t = r(&mut c, said("T1", ActorRole::Requester, "u", ANGRY), 2).unwrap();
        assert_eq!((t.reason, t.responder.as_deref()), ("negative", Some("a7")));
        assert!(
            t.sentiment.unwrap() <= -0.5 && t.previous.unwrap() <= -0.5,
            "{t:?}"
        );
        // Within the cooldown: no second alert; after it: one.
        r(&mut c, said("T1", ActorRole::Agent, "a7", "Sorry."), 3);
        assert_eq!(
            r(&mut c, said("T1", ActorRole::Requester, "u", ANGRY), 4),
            None
        );
        r(
            &mut c,
            said("T1", ActorRole::Agent, "a8", "Fixed now."),
            25 * HOUR,
        );
        let t = r(
            &mut c,
            said("T1", ActorRole::Requester, "u", ANGRY),
            25 * HOUR,
        )
        .unwrap();
        assert_eq!(t.responder.as_deref(), Some("a8"));
    }

    #[test]
    fn a_sharp_drop_is_at_risk_and_a_mild_one_is_not() {
        let mut c = conversations();
        let mut r = |i: Interaction| c.interaction(&i, 0, true);
        r(said("T2", ActorRole::Requester, "u", POLITE));
        r(said("T2", ActorRole::Agent, "a1", "Please restart it."));
        // Polite (about +0.9) to flat (0): a drop of about 0.9, under the default 1.0.
        assert_eq!(r(said("T2", ActorRole::Requester, "u", FLAT)), None);
        let mut c = conversations();
        c.settings.drop = 0.5;
        let mut r = |i: Interaction| c.interaction(&i, 0, true);
        r(said("T3", ActorRole::Requester, "u", POLITE));
        r(said("T3", ActorRole::Agent, "a1", "Please restart it."));
        let t = r(said("T3", ActorRole::Requester, "u", FLAT)).unwrap();
        assert_eq!(t.reason, "drop");
        assert!(t.previous.unwrap() - t.sentiment.unwrap() >= 0.5, "{t:?}");
    }

    #[test]
    fn closed_tickets_replays_and_private_notes_raise_nothing() {
        let mut c = conversations();
        let mut ticket = Ticket {
            ticket_id: "T4".into(),
            ..Ticket::default()
        };
        ticket.resolved_at = Some(0);
        c.ticket(&ticket);
        c.interaction(&said("T4", ActorRole::Agent, "a1", "Done."), 0, true);
        let angry = said("T4", ActorRole::Requester, "u", ANGRY);
        assert_eq!(c.interaction(&angry, 0, true), None);
        // Reopened (a ticket event without resolution): at risk again.
        ticket.resolved_at = None;
        c.ticket(&ticket);
        c.interaction(&said("T4", ActorRole::Agent, "a1", "Done."), 0, true);
        assert!(c.interaction(&angry, 0, true).is_some());
        // A replay keeps the state and raises nothing.
        let mut c = conversations();
        c.interaction(&said("T5", ActorRole::Agent, "a1", "Done."), 0, false);
        let angry = said("T5", ActorRole::Requester, "u", ANGRY);
        assert_eq!(c.interaction(&angry, 0, false), None);
        // A private note is not a reply.
        let mut c = conversations();
        let mut note = said("T6", ActorRole::Agent, "a1", "internal");
        note.is_public = false;
        c.interaction(&note, 0, true);
        let angry = said("T6", ActorRole::Requester, "u", ANGRY);
        assert_eq!(c.interaction(&angry, 0, true), None);
    }
}
