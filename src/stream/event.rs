//! Stream events: one NDJSON line each, the canonical columns of one row plus two more:
//!
//! ```json
//! {"type": "rating", "event_id": "r-1842-1", "rating_id": "R1842", "ticket_id": "T1842",
//!  "rated_at": "2026-11-23T10:02:00Z", "channel": "chat", "score_raw": "1", "comment": "..."}
//! ```
//! `type` is `ticket`, `interaction` or `rating`; `event_id` is the client's id for the event,
//! used to drop repeats (client retries, spool replays). The row is read exactly as the `generic`
//! import profile reads an NDJSON export, so a streamed row and an ingested one cannot differ.

use serde::Serialize;
use serde_json::Value;

use crate::ingest::mapping::{self, Mapping};
use crate::ingest::reader::{Fault, JsonRow};
use crate::model::{Interaction, Rating, Scale, Table, Ticket};

/// The canonical row an event carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Ticket(Box<Ticket>),
    Interaction(Interaction),
    Rating(Rating),
}

/// One accepted event: its id, its row, and the line it came in as (what the spool keeps).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub row: Row,
    pub raw: String,
}

/// A refused line: where, which field, why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Refusal {
    /// 1-based line in the request body (or on stdin).
    pub line: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// The field at fault; absent when the line as a whole is (not JSON, not an object).
    pub field: Option<String>,
    pub reason: String,
    #[serde(skip)]
    pub raw: String,
}

/// Reads events as the generic profile reads an NDJSON export (timestamps without a zone: UTC).
pub struct Parser {
    mapping: Mapping,
}

impl Default for Parser {
    fn default() -> Self {
        Parser {
            mapping: Mapping::identity("stream", None),
        }
    }
}

impl Parser {
    /// Reads one line (`line` is its 1-based number, for the refusal).
    pub fn line(&self, line: u64, text: &str) -> Result<Event, Refusal> {
        let raw = text.trim();
        let refuse = |event_id: Option<String>, field: Option<&str>, reason: String| Refusal {
            line,
            event_id,
            field: field.map(str::to_string),
            reason,
            raw: raw.to_string(),
        };
        let value: Value = serde_json::from_str(raw)
            .map_err(|e| refuse(None, None, format!("not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(refuse(None, None, "an event must be a JSON object".into()));
        }
        let event_id = match value.get("event_id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            // One JSON type only: 7 and "7" would otherwise be one id, or two, by accident.
            Some(Value::Number(n)) => {
                return Err(refuse(
                    None,
                    Some("event_id"),
                    format!("event_id must be a string: {n} is a number (send \"{n}\")"),
                ));
            }
            _ => {
                return Err(refuse(
                    None,
                    Some("event_id"),
                    "missing event_id (a non-empty string)".into(),
                ));
            }
        };
        let id = Some(event_id.clone());
        let table = match value.get("type").and_then(Value::as_str) {
            Some("ticket") => Table::Tickets,
            Some("interaction") => Table::Interactions,
            Some("rating") => Table::Ratings,
            other => {
                let reason = match other {
                    Some(t) => {
                        format!("unknown type '{t}' (expected ticket, interaction or rating)")
                    }
                    None => "missing type (ticket, interaction or rating)".into(),
                };
                return Err(refuse(id, Some("type"), reason));
            }
        };
        let row = JsonRow {
            value: &value,
            line,
            raw: raw.as_bytes(),
        };
        let rec = self.mapping.rec(&row, table);
        let fault = |f: Fault| refuse(id.clone(), f.column.as_deref(), f.reason);
        let row = match table {
            Table::Tickets => Row::Ticket(Box::new(mapping::ticket(&rec).map_err(fault)?)),
            Table::Interactions => Row::Interaction(mapping::interaction(&rec).map_err(fault)?),
            _ => Row::Rating(mapping::rating(&rec, Scale::Five).map_err(fault)?),
        };
        Ok(Event {
            id: event_id,
            row,
            raw: raw.to_string(),
        })
    }

    /// Reads one line as it arrived: a line that is not UTF-8 is refused alone.
    pub fn raw_line(&self, line: u64, bytes: &[u8]) -> Result<Event, Refusal> {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.line(line, text),
            Err(e) => Err(Refusal {
                line,
                event_id: None,
                field: None,
                reason: format!("not UTF-8 (byte {} of the line)", e.valid_up_to() + 1),
                raw: String::from_utf8_lossy(bytes).trim().to_string(),
            }),
        }
    }

    /// Reads a body of NDJSON lines; blank lines are skipped (and still counted for numbering).
    pub fn body(&self, body: &[u8]) -> (Vec<Event>, Vec<Refusal>) {
        let mut events = Vec::new();
        let mut refused = Vec::new();
        for (i, l) in body.split(|b| *b == b'\n').enumerate() {
            if l.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match self.raw_line(i as u64 + 1, l) {
                Ok(e) => events.push(e),
                Err(r) => refused.push(r),
            }
        }
        (events, refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_type_and_names_the_faulty_field() {
        let p = Parser::default();
        let body = r#"{"type":"rating","event_id":"e1","rating_id":"R1","ticket_id":"T1","rated_at":"2026-11-23T10:00:00Z","score_raw":"1","channel":"Live Chat"}

{"type":"rating","event_id":"e2","rating_id":"R2","ticket_id":"T1","rated_at":"2026-11-23T10:00:00Z","score_raw":"9"}
not json
{"type":"survey","event_id":"e3"}
{"type":"ticket","rating_id":"R3"}
{"type":"ticket","event_id":7,"ticket_id":"T1","opened_at":"2026-11-23T09:00:00Z","updated_at":"2026-11-23T09:00:00Z","category":"Email"}
{"type":"interaction","event_id":"e5","interaction_id":"I1","ticket_id":"T1","at":"yesterday","actor_role":"agent","channel":"chat"}"#;
        let (events, refused) = p.body(body.as_bytes());
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].id, "e1");
        let Row::Rating(r) = &events[0].row else {
            panic!("not a rating")
        };
        assert_eq!(
            (r.score_5, r.channel.map(|c| c.as_str())),
            (1.0, Some("chat"))
        );
        let at: Vec<(u64, Option<&str>)> = refused
            .iter()
            .map(|r| (r.line, r.field.as_deref()))
            .collect();
        assert_eq!(
            at,
            [
                (3, Some("score_raw")),
                (4, None),
                (5, Some("type")),
                (6, Some("event_id")),
                (7, Some("event_id")),
                (8, Some("at"))
            ]
        );
        assert!(
            refused[4].reason.contains("is a number"),
            "{}",
            refused[4].reason
        );
        assert!(refused[0].reason.contains('9'), "{}", refused[0].reason);
        assert_eq!(refused[0].event_id.as_deref(), Some("e2"));
    }

    #[test]
    fn a_line_that_is_not_utf8_is_refused_alone() {
        let p = Parser::default();
        let mut body = br#"{"type":"ticket","event_id":"t1","ticket_id":"T1","opened_at":"2026-11-23T09:00:00Z","updated_at":"2026-11-23T09:00:00Z"}"#.to_vec();
        body.extend_from_slice(
            b"\n{\"type\":\"ticket\",\"event_id\":\"t2\",\"ticket_id\":\"T\xff\"}\n",
        );
        body.extend_from_slice(br#"{"type":"ticket","event_id":"t3","ticket_id":"T3","opened_at":"2026-11-23T09:00:00Z","updated_at":"2026-11-23T09:00:00Z"}"#);
        let (events, refused) = p.body(&body);
        let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["t1", "t3"]);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].line, 2);
        assert!(
            refused[0].reason.contains("not UTF-8"),
            "{}",
            refused[0].reason
        );
    }
}
