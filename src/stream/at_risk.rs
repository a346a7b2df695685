//! At-risk tickets: a requester who answers a reply with a strongly negative message, or whose
//! mood falls sharply from their previous message, while the ticket is open. That is the moment
//! to ask for feedback or for a team lead to step in, before a bad rating (DESIGN 1: feedback at
//! the moments of strongest emotion, escalation when frustration rises).
//!
//! The state per ticket (was there a reply since the requester last wrote, who replied, the
//! requester's last mood, the last alert) is kept for the newest tickets only, like the ticket
//! index, so memory stays bounded.

use crate::model::{ActorRole, Interaction, Micros, Ticket};
use crate::sentiment::lang::{ScoredLanguages, classify};

use super::recent::Recent;

/// When a requester's message makes a ticket at risk.
#[derive(Debug, Clone)]
pub struct AtRiskSettings {
    /// A message after a reply with VADER compound at or below this...
    pub negative_at: f64,
    /// ...or at least this much below the requester's previous scored message.
    pub drop: f64,
    /// At most one at-risk alert per ticket in this time.
    pub cooldown: Micros,
}

impl Default for AtRiskSettings {
    fn default() -> Self {
        AtRiskSettings {
            negative_at: -0.5,
            drop: 1.0,
            cooldown: 24 * 3_600_000_000,
        }
    }
}

/// Why a message made its ticket at risk.
#[derive(Debug, Clone, PartialEq)]
pub struct Trigger {
    /// `negative` (at or below the threshold) or `drop` (from the previous message).
    pub reason: &'static str,
    pub sentiment: f64,
    pub previous: Option<f64>,
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
}

/// The conversations of the newest tickets.
pub struct Conversations {
    tickets: Recent<Conversation>,
    settings: AtRiskSettings,
    languages: ScoredLanguages,
}

impl Conversations {
    pub fn new(capacity: usize, settings: AtRiskSettings, languages: ScoredLanguages) -> Self {
        Conversations {
            tickets: Recent::new(capacity),
            settings,
            languages,
        }
    }

    fn entry(&mut self, ticket_id: &str) -> &mut Conversation {
        if !self.tickets.contains(ticket_id) {
            self.tickets
                .insert(ticket_id.to_string(), Conversation::default());
        }
        self.tickets.get_mut(ticket_id).expect("just inserted")
    }

    /// A ticket event: resolved or closed tickets are not at risk.
    pub fn ticket(&mut self, t: &Ticket) {
        self.entry(&t.ticket_id).closed = t.resolved_at.is_some() || t.closed_at.is_some();
    }

    /// An interaction at `now`: returns the trigger when it puts its open ticket at risk and the
    /// ticket had no at-risk alert within the cooldown; `alert` false (a replay) only keeps the
    /// state.
    pub fn interaction(&mut self, i: &Interaction, now: Micros, alert: bool) -> Option<Trigger> {
        let mood = match i.actor_role {
            ActorRole::Requester => i.body.as_deref().and_then(|b| self.score(b)),
            _ => None,
        };
        let settings = self.settings.clone();
        let c = self.entry(&i.ticket_id);
        match i.actor_role {
            ActorRole::Agent | ActorRole::Bot if i.is_public => {
                c.replied = true;
                c.responder = i.actor_id.clone();
                return None;
            }
            ActorRole::Requester => {}
            _ => return None,
        }
        let previous = c.mood;
        let answered = std::mem::take(&mut c.replied);
        let sentiment = mood?;
        c.mood = Some(sentiment);
        let reason = if sentiment <= settings.negative_at {
            "negative"
        } else if previous.is_some_and(|p| p - sentiment >= settings.drop) {
            "drop"
        } else {
            return None;
        };
        let cooled = c.last_alert.is_none_or(|t| now - t >= settings.cooldown);
        if !(alert && answered && !c.closed && cooled) {
            return None;
        }
        c.last_alert = Some(now);
        Some(Trigger {
            reason,
            sentiment,
            previous,
            responder: c.responder.clone(),
        })
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
        assert!(t.sentiment <= -0.5 && t.previous.unwrap() <= -0.5, "{t:?}");
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
        assert!(t.previous.unwrap() - t.sentiment >= 0.5, "{t:?}");
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
