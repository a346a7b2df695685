//! The canonical data model (DESIGN.md section 3): the Arrow schema of every lake table, defined
//! once, the row types that ingest produces, and the normalisation of channels and rating scales.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int32Builder, ListBuilder, RecordBatch,
    StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Microseconds since the Unix epoch, UTC: how every timestamp is held in rows and in the lake.
pub type Micros = i64;

/// The Arrow type of every timestamp column: `Timestamp(Microsecond, "UTC")`.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn utf8(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}
fn ts(name: &str, nullable: bool) -> Field {
    Field::new(name, timestamp_type(), nullable)
}

/// The lake's tables. Each has one schema, a primary key and (for the large ones) a month partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    Tickets,
    Interactions,
    Ratings,
    Adoptions,
    Surveys,
    /// P(satisfied) of unrated resolved tickets, written by `deskpulse predict --record`.
    Predictions,
    /// The published models behind the predictions (what `stream` scores open tickets with).
    Models,
}

impl Table {
    pub const ALL: [Table; 7] = [
        Table::Tickets,
        Table::Interactions,
        Table::Ratings,
        Table::Adoptions,
        Table::Surveys,
        Table::Predictions,
        Table::Models,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Table::Tickets => "tickets",
            Table::Interactions => "interactions",
            Table::Ratings => "ratings",
            Table::Adoptions => "adoptions",
            Table::Surveys => "surveys",
            Table::Predictions => "predictions",
            Table::Models => "models",
        }
    }

    pub fn schema(self) -> SchemaRef {
        match self {
            Table::Tickets => TICKETS.clone(),
            Table::Interactions => INTERACTIONS.clone(),
            Table::Ratings => RATINGS.clone(),
            Table::Adoptions => ADOPTIONS.clone(),
            Table::Surveys => SURVEYS.clone(),
            Table::Predictions => PREDICTIONS.clone(),
            Table::Models => MODELS.clone(),
        }
    }

    /// The text a row's `lang` and `sentiment` are computed from (an interaction's body, a
    /// rating's comment); `None` for tables without one.
    pub fn text_column(self) -> Option<&'static str> {
        match self {
            Table::Interactions => Some("body"),
            Table::Ratings => Some("comment"),
            _ => None,
        }
    }

    /// Columns that identify a row: a later row with the same key replaces the earlier one.
    pub fn key_columns(self) -> &'static [&'static str] {
        match self {
            Table::Tickets => &["ticket_id"],
            Table::Interactions => &["interaction_id"],
            Table::Ratings => &["rating_id"],
            Table::Adoptions => &["adoption_id"],
            Table::Surveys => &["requester_id", "sent_at", "cohort"],
            Table::Predictions => &["ticket_id", "model_id"],
            Table::Models => &["model_id"],
        }
    }

    /// The column that orders versions of one key (latest wins); `None`: the last ingested wins.
    pub fn version_column(self) -> Option<&'static str> {
        match self {
            Table::Tickets => Some("updated_at"),
            _ => None,
        }
    }

    /// The timestamp that decides a row's `month=YYYY-MM` partition; `None`: one unpartitioned file.
    /// A ticket is filed under the month it was opened, which never changes between its versions,
    /// so every version of a ticket meets in the same partition.
    pub fn partition_column(self) -> Option<&'static str> {
        match self {
            Table::Tickets => Some("opened_at"),
            Table::Interactions => Some("at"),
            Table::Ratings => Some("rated_at"),
            Table::Adoptions | Table::Surveys | Table::Predictions | Table::Models => None,
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl FromStr for Table {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Table::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown table '{s}' (expected one of tickets, interactions, ratings, adoptions, surveys, predictions, models)"))
    }
}

static TICKETS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("ticket_id", false),
        utf8("source", false),
        ts("opened_at", false),
        ts("first_response_at", true),
        ts("resolved_at", true),
        ts("closed_at", true),
        ts("updated_at", false),
        utf8("status", true),
        Field::new("priority", DataType::Int32, true),
        utf8("priority_raw", true),
        utf8("category", true),
        utf8("subcategory", true),
        utf8("service", true),
        utf8("issue_key", true),
        utf8("channel", false),
        utf8("channel_raw", true),
        utf8("requester_id", true),
        utf8("assignee_id", true),
        utf8("assignment_group", true),
        utf8("tier", true),
        Field::new("reassignment_count", DataType::Int32, true),
        Field::new("reopen_count", DataType::Int32, true),
        Field::new("made_sla", DataType::Boolean, true),
        utf8("resolution_path", true),
        Field::new("survey_offered", DataType::Boolean, true),
    ]))
});

static INTERACTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("interaction_id", false),
        utf8("ticket_id", false),
        ts("at", false),
        Field::new("seq", DataType::Int32, true),
        utf8("actor_role", false),
        utf8("actor_id", true),
        utf8("channel", false),
        Field::new("is_public", DataType::Boolean, false),
        utf8("body", true),
        utf8("lang", true),
        Field::new("sentiment", DataType::Float64, true),
    ]))
});

static RATINGS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("rating_id", false),
        utf8("ticket_id", false),
        utf8("interaction_id", true),
        utf8("requester_id", true),
        ts("rated_at", false),
        utf8("channel", true),
        utf8("score_raw", false),
        utf8("scale", false),
        Field::new("score_5", DataType::Float64, false),
        utf8("comment", true),
        utf8("lang", true),
        Field::new("sentiment", DataType::Float64, true),
    ]))
});

static ADOPTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("adoption_id", false),
        utf8("name", false),
        utf8("kind", true),
        ts("launched_at", false),
        Field::new(
            "scope",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            false,
        ),
    ]))
});

static SURVEYS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("requester_id", false),
        ts("sent_at", false),
        utf8("cohort", false),
        utf8("cohort_key", true),
    ]))
});

static PREDICTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("ticket_id", false),
        utf8("model_id", false),
        ts("predicted_at", false),
        Field::new("p_satisfied", DataType::Float64, false),
        Field::new("validation_bias", DataType::Float64, false),
        Field::new("validation_tickets", DataType::UInt64, false),
    ]))
});

static MODELS: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        utf8("model_id", false),
        ts("predicted_at", false),
        utf8("spec", false),
    ]))
});

/// Schema of `_rejects`: every refused input row, with where it came from and why.
pub fn rejects_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("source_file", false),
        Field::new("line", DataType::UInt64, false),
        utf8("column", true),
        utf8("reason", false),
        utf8("raw", false),
    ]))
}

/// Schema of `_findings`: every kept row with a field that contradicts another.
pub fn findings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        utf8("table", false),
        utf8("key", false),
        utf8("source_file", false),
        Field::new("line", DataType::UInt64, false),
        utf8("column", false),
        utf8("rule", false),
        utf8("value", true),
    ]))
}

/// Canonical channels (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Email,
    Phone,
    Sms,
    Chat,
    Messaging,
    Social,
    Portal,
    Bot,
    WalkIn,
    ScreenShare,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 11] = [
        Channel::Email,
        Channel::Phone,
        Channel::Sms,
        Channel::Chat,
        Channel::Messaging,
        Channel::Social,
        Channel::Portal,
        Channel::Bot,
        Channel::WalkIn,
        Channel::ScreenShare,
        Channel::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Phone => "phone",
            Channel::Sms => "sms",
            Channel::Chat => "chat",
            Channel::Messaging => "messaging",
            Channel::Social => "social",
            Channel::Portal => "portal",
            Channel::Bot => "bot",
            Channel::WalkIn => "walk_in",
            Channel::ScreenShare => "screen_share",
            Channel::Other => "other",
        }
    }

    /// Maps a raw channel name from any export onto a canonical channel. Matching ignores case,
    /// spaces, hyphens and underscores. Unknown names become `other` (the raw value is kept in
    /// `channel_raw`), since an unfamiliar channel is no reason to lose a ticket.
    pub fn normalise(raw: &str) -> Channel {
        // Most exports write one spelling in lower case: match it without building a key.
        if raw.bytes().all(|b| b.is_ascii_lowercase()) {
            return Channel::from_key(raw);
        }
        let key: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '_' | '.'))
            .flat_map(char::to_lowercase)
            .collect();
        Channel::from_key(&key)
    }

    /// A channel name in lower case without separators.
    fn from_key(key: &str) -> Channel {
        match key {
            "email" | "mail" | "inboundemail" | "emailin" => Channel::Email,
            "phone" | "telephone" | "call" | "voice" | "ivr" | "voicemail" | "callcenter" => {
                Channel::Phone
            }
            "sms" | "text" | "textmessage" => Channel::Sms,
            "chat" | "livechat" | "webchat" | "chatwidget" | "webwidget" => Channel::Chat,
            "messaging" | "nativemessaging" | "whatsapp" | "messenger" | "facebookmessenger"
            | "teams" | "msteams" | "microsoftteams" | "slack" | "telegram" | "wechat" | "line"
            | "imessage" | "applebusinesschat" | "mobilesdk" => Channel::Messaging,
            "social" | "twitter" | "x" | "facebook" | "instagram" | "linkedin" | "socialmedia" => {
                Channel::Social
            }
            "portal" | "web" | "webform" | "selfservice" | "serviceportal" | "helpcenter"
            | "selfserviceportal" | "customerportal" => Channel::Portal,
            "bot" | "chatbot" | "virtualagent" | "answerbot" | "aiagent" | "botconversation" => {
                Channel::Bot
            }
            "walkin" | "walkup" | "inperson" | "deskside" => Channel::WalkIn,
            "screenshare" | "remotesession" | "remotesupport" | "screensharing" => {
                Channel::ScreenShare
            }
            _ => Channel::Other,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    /// Strict parse of a canonical channel name (used for mapping files, where a typo must fail).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel '{s}'"))
    }
}

/// Rating scales and their mapping onto `score_5` (DESIGN.md section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scale {
    /// 1–5, as is.
    Five,
    /// good → 5, bad → 1.
    GoodBad,
    /// 1, 2, 3 → 1, 3, 5.
    Three,
    /// 1–10, linear onto 1–5.
    Ten,
    /// 0–10, linear onto 1–5.
    Eleven,
    /// Freshdesk's survey answers, 103 "Extremely happy" down to −103 "Extremely unhappy", by
    /// meaning: 103 → 5; 102, 101 (very happy, happy) → 4; 100 (neutral) → 3; −101, −102 → 2;
    /// −103 → 1. So a 2-point survey (103, −103) reads as good_bad, a 3-point one (103, 100,
    /// −103) as three, a 5-point one (103, 102, 100, −102, −103) as five.
    Freshdesk,
    /// `k/n`: k points of n (Freshservice's `score.acquired_score` of `score.total_score`), by
    /// meaning for the usual survey sizes: of 2 → 1, 5 (as good_bad); of 3 → 1, 3, 5 (as three);
    /// of 4 (poor, fair, good, excellent) → 1, 2, 4, 5, the top two satisfied as in a five-point
    /// survey; of 5 as is; of more, linearly onto 1–5.
    Points,
}

/// Why a rating value could not be placed on its scale.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ScaleError(pub String);

impl Scale {
    pub fn as_str(self) -> &'static str {
        match self {
            Scale::Five => "five",
            Scale::GoodBad => "good_bad",
            Scale::Three => "three",
            Scale::Ten => "ten",
            Scale::Eleven => "eleven",
            Scale::Freshdesk => "freshdesk",
            Scale::Points => "points",
        }
    }

    /// Converts a raw score onto 1.0–5.0. A value outside the scale is an error, never clamped;
    /// so is a fraction on a scale of whole points.
    pub fn score_5(self, raw: &str) -> Result<f64, ScaleError> {
        let raw = raw.trim();
        if self == Scale::GoodBad {
            return match raw.to_ascii_lowercase().as_str() {
                "good" => Ok(5.0),
                "bad" => Ok(1.0),
                _ => Err(ScaleError(format!(
                    "'{raw}' is not on the good_bad scale (good or bad)"
                ))),
            };
        }
        if self == Scale::Freshdesk {
            return match raw {
                "103" => Ok(5.0),
                "102" | "101" => Ok(4.0),
                "100" => Ok(3.0),
                "-101" | "-102" => Ok(2.0),
                "-103" => Ok(1.0),
                _ => Err(ScaleError(format!(
                    "'{raw}' is not a Freshdesk survey answer (103, 102, 101, 100, -101, -102, \
                     -103)"
                ))),
            };
        }
        if self == Scale::Points {
            return points(raw);
        }
        let (lo, hi) = match self {
            Scale::Five => (1, 5),
            Scale::Three => (1, 3),
            Scale::Ten => (1, 10),
            Scale::Eleven => (0, 10),
            Scale::GoodBad | Scale::Freshdesk | Scale::Points => unreachable!(),
        };
        let value: f64 = raw
            .parse()
            .map_err(|_| ScaleError(format!("'{raw}' is not a number on the {} scale", self)))?;
        if value.fract() != 0.0 || value < lo as f64 || value > hi as f64 {
            return Err(ScaleError(format!(
                "{raw} is outside the {} scale ({lo}–{hi}, whole points)",
                self
            )));
        }
        Ok(match self {
            Scale::Five => value,
            Scale::Three => 1.0 + (value - 1.0) * 2.0,
            Scale::Ten => 1.0 + (value - 1.0) * 4.0 / 9.0,
            Scale::Eleven => 1.0 + value * 4.0 / 10.0,
            Scale::GoodBad | Scale::Freshdesk | Scale::Points => unreachable!(),
        })
    }
}

/// A `k/n` score onto 1–5 (see [`Scale::Points`]).
fn points(raw: &str) -> Result<f64, ScaleError> {
    let whole = |s: &str| s.trim().parse::<u32>().ok();
    let Some((k, n)) = raw
        .split_once('/')
        .and_then(|(k, n)| Some((whole(k)?, whole(n)?)))
        .filter(|&(k, n)| n >= 2 && (1..=n).contains(&k))
    else {
        return Err(ScaleError(format!(
            "'{raw}' is not k/n points (whole k from 1 to n, n at least 2)"
        )));
    };
    Ok(match (k, n) {
        (1, 2) => 1.0,
        (2, 2) => 5.0,
        (_, 3) => 1.0 + f64::from(k - 1) * 2.0,
        (_, 4) => [1.0, 2.0, 4.0, 5.0][k as usize - 1],
        _ => 1.0 + f64::from(k - 1) * 4.0 / f64::from(n - 1),
    })
}

impl fmt::Display for Scale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Scale {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "five" | "5" | "1-5" | "csat" => Ok(Scale::Five),
            "good_bad" | "goodbad" | "binary" => Ok(Scale::GoodBad),
            "three" | "3" | "1-3" => Ok(Scale::Three),
            "ten" | "10" | "1-10" => Ok(Scale::Ten),
            "eleven" | "11" | "0-10" | "nps" => Ok(Scale::Eleven),
            "freshdesk" => Ok(Scale::Freshdesk),
            "points" => Ok(Scale::Points),
            other => Err(format!(
                "unknown rating scale '{other}' (expected five, good_bad, three, ten, eleven, \
                 freshdesk or points)"
            )),
        }
    }
}

/// Who wrote an interaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActorRole {
    Requester,
    Agent,
    Bot,
    System,
}

impl ActorRole {
    pub fn as_str(self) -> &'static str {
        match self {
            ActorRole::Requester => "requester",
            ActorRole::Agent => "agent",
            ActorRole::Bot => "bot",
            ActorRole::System => "system",
        }
    }
}

impl FromStr for ActorRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "requester" | "customer" | "end_user" | "enduser" | "caller" | "user" => {
                Ok(ActorRole::Requester)
            }
            "agent" | "technician" | "analyst" | "staff" => Ok(ActorRole::Agent),
            "bot" | "virtual_agent" | "chatbot" => Ok(ActorRole::Bot),
            "system" | "automation" => Ok(ActorRole::System),
            other => Err(format!(
                "unknown actor role '{other}' (expected requester, agent, bot or system)"
            )),
        }
    }
}

/// How a ticket was resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResolutionPath {
    Agent,
    Bot,
    SelfService,
    Automation,
}

impl ResolutionPath {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionPath::Agent => "agent",
            ResolutionPath::Bot => "bot",
            ResolutionPath::SelfService => "self_service",
            ResolutionPath::Automation => "automation",
        }
    }
}

impl FromStr for ResolutionPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', ' '], "_")
            .as_str()
        {
            "agent" | "human" => Ok(ResolutionPath::Agent),
            "bot" | "virtual_agent" => Ok(ResolutionPath::Bot),
            "self_service" | "selfservice" | "portal" | "knowledge" => {
                Ok(ResolutionPath::SelfService)
            }
            "automation" | "automated" => Ok(ResolutionPath::Automation),
            other => Err(format!(
                "unknown resolution path '{other}' (expected agent, bot, self_service or automation)"
            )),
        }
    }
}

/// Parses a priority into 1 (highest) … 4. Accepts "1".."4", "P1", "3 - Moderate" (ServiceNow),
/// and the names used by Zendesk and Jira. Anything else gives `None` (the raw value is kept).
pub fn normalise_priority(raw: &str) -> Option<i32> {
    let s = raw.trim().to_ascii_lowercase();
    let digits = s.trim_start_matches('p');
    let lead: String = digits.chars().take_while(|c| c.is_ascii_digit()).collect();
    if let Ok(n) = lead.parse::<i32>() {
        return Some(n.clamp(1, 4));
    }
    match s.as_str() {
        "critical" | "urgent" | "highest" | "blocker" => Some(1),
        "high" | "major" => Some(2),
        "medium" | "normal" | "moderate" => Some(3),
        "low" | "lowest" | "minor" | "planning" | "trivial" => Some(4),
        _ => None,
    }
}

/// One ticket version (the lake keeps the one with the latest `updated_at`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ticket {
    pub ticket_id: String,
    pub source: String,
    pub opened_at: Micros,
    pub first_response_at: Option<Micros>,
    pub resolved_at: Option<Micros>,
    pub closed_at: Option<Micros>,
    pub updated_at: Micros,
    pub status: Option<String>,
    pub priority: Option<i32>,
    pub priority_raw: Option<String>,
    pub category: Option<String>,
    pub subcategory: Option<String>,
    pub service: Option<String>,
    pub issue_key: Option<String>,
    pub channel: Option<Channel>,
    pub channel_raw: Option<String>,
    pub requester_id: Option<String>,
    pub assignee_id: Option<String>,
    pub assignment_group: Option<String>,
    pub tier: Option<String>,
    pub reassignment_count: Option<i32>,
    pub reopen_count: Option<i32>,
    pub made_sla: Option<bool>,
    pub resolution_path: Option<ResolutionPath>,
    pub survey_offered: Option<bool>,
}

/// One message or touch on a ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub interaction_id: String,
    pub ticket_id: String,
    pub at: Micros,
    pub seq: Option<i32>,
    pub actor_role: ActorRole,
    pub actor_id: Option<String>,
    pub channel: Channel,
    pub is_public: bool,
    pub body: Option<String>,
    /// The detected language of `body` (ISO 639-1), set at ingest with the sentiment.
    pub lang: Option<String>,
    /// VADER compound of `body`, only for the languages VADER reads (else NULL: not scored).
    pub sentiment: Option<f64>,
}

/// One satisfaction rating.
#[derive(Debug, Clone, PartialEq)]
pub struct Rating {
    pub rating_id: String,
    pub ticket_id: String,
    pub interaction_id: Option<String>,
    pub requester_id: Option<String>,
    pub rated_at: Micros,
    pub channel: Option<Channel>,
    pub score_raw: String,
    pub scale: Scale,
    pub score_5: f64,
    pub comment: Option<String>,
    /// The detected language of `comment` (ISO 639-1), set at ingest with the sentiment.
    pub lang: Option<String>,
    pub sentiment: Option<f64>,
}

/// One self-service launch.
#[derive(Debug, Clone, PartialEq)]
pub struct Adoption {
    pub adoption_id: String,
    pub name: String,
    pub kind: Option<String>,
    pub launched_at: Micros,
    /// Categories in scope; empty means all.
    pub scope: Vec<String>,
}

/// One long-form survey sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Survey {
    pub requester_id: String,
    pub sent_at: Micros,
    pub cohort: String,
    pub cohort_key: Option<String>,
}

/// One recorded prediction: P(satisfied) of an unrated resolved ticket by a published model,
/// with what its validation said of the model's mean (`validation_bias`: mean predicted minus
/// observed share satisfied, over `validation_tickets`), which the estimated CSAT's interval
/// carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub ticket_id: String,
    pub model_id: String,
    /// The moment the prediction is as of (what the model knew).
    pub predicted_at: Micros,
    pub p_satisfied: f64,
    pub validation_bias: f64,
    pub validation_tickets: u64,
}

/// One published model as recorded: its id, the moment it is as of, and everything needed to
/// score a ticket with it (`spec`: JSON of `predict::Spec`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedModel {
    pub model_id: String,
    pub predicted_at: Micros,
    pub spec: String,
}

/// One refused input row.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub source_file: String,
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    pub raw: String,
}

/// A kept row with a field that contradicts another (DESIGN.md section 3, `_findings`): the row is
/// stored, and the metrics leave out only what depends on `column`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub table: Table,
    pub key: String,
    pub source_file: String,
    pub line: u64,
    /// The canonical column whose value contradicts another.
    pub column: String,
    pub rule: Rule,
    pub value: Option<String>,
}

/// The field-level rules one row can break (rules that need another table, such as a rating
/// before its ticket was opened, are checked on the lake by `deskpulse check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// First response, resolution or closing before the ticket was opened: the duration from
    /// opening is negative.
    BeforeOpened,
    /// A timestamp later than the moment the row was ingested: no export knows the future.
    InFuture,
    /// Rows of one ticket in one file give it different opening times: the lake keeps the
    /// latest row's, which is wrong when the file is an event log (one row per change) whose
    /// "opened" column is in fact the time of the change.
    OpenedAtChanged,
}

impl Rule {
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::BeforeOpened => "before_opened",
            Rule::InFuture => "in_future",
            Rule::OpenedAtChanged => "opened_at_changed",
        }
    }
}

/// One broken rule of a row: the column, the rule and the column's value.
pub type RowFinding = (&'static str, Rule, Micros);

/// Adds an `in_future` finding for each timestamp after `now`.
fn future(now: Micros, times: &[(&'static str, Option<Micros>)], out: &mut Vec<RowFinding>) {
    for (col, t) in times {
        if let Some(t) = *t
            && t > now
        {
            out.push((col, Rule::InFuture, t));
        }
    }
}

/// A row of one canonical table: how it is keyed, partitioned and turned into Arrow.
pub trait TableRow: Sized {
    const TABLE: Table;
    /// The timestamp that picks the month partition (for partitioned tables).
    fn partition_time(&self) -> Micros;
    /// The row's key as one string (the key columns joined by `|`), as findings name it.
    fn key(&self) -> Cow<'_, str>;
    /// The field-level rules this row breaks, judged at `now` (the moment of ingest).
    fn findings(&self, _now: Micros, _out: &mut Vec<RowFinding>) {}
    fn to_batch(rows: &[Self]) -> RecordBatch;
}

fn batch(table: Table, columns: Vec<ArrayRef>) -> RecordBatch {
    RecordBatch::try_new(table.schema(), columns).expect("row types match their schema")
}

// The builders are sized before they are filled: grown by doubling, their buffers were copied
// at every step (perf: reallocation and its copies were 2-3% of an ingest's CPU).

fn ts_col(values: impl Iterator<Item = Option<Micros>>) -> ArrayRef {
    let mut b =
        TimestampMicrosecondBuilder::with_capacity(values.size_hint().0).with_timezone("UTC");
    b.extend(values);
    Arc::new(b.finish())
}

fn str_col<'a>(values: impl Iterator<Item = Option<&'a str>> + Clone) -> ArrayRef {
    let bytes = values.clone().map(|v| v.map_or(0, str::len)).sum();
    let mut b = StringBuilder::with_capacity(values.size_hint().0, bytes);
    b.extend(values);
    Arc::new(b.finish())
}

fn i32_col(values: impl Iterator<Item = Option<i32>>) -> ArrayRef {
    let mut b = Int32Builder::with_capacity(values.size_hint().0);
    b.extend(values);
    Arc::new(b.finish())
}

fn bool_col(values: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    let mut b = BooleanBuilder::with_capacity(values.size_hint().0);
    b.extend(values);
    Arc::new(b.finish())
}

fn f64_col(values: impl Iterator<Item = Option<f64>>) -> ArrayRef {
    let mut b = Float64Builder::with_capacity(values.size_hint().0);
    b.extend(values);
    Arc::new(b.finish())
}

impl TableRow for Ticket {
    const TABLE: Table = Table::Tickets;
    fn partition_time(&self) -> Micros {
        self.opened_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.ticket_id)
    }
    fn findings(&self, now: Micros, out: &mut Vec<RowFinding>) {
        for (col, t) in [
            ("first_response_at", self.first_response_at),
            ("resolved_at", self.resolved_at),
            ("closed_at", self.closed_at),
        ] {
            if let Some(t) = t
                && t < self.opened_at
            {
                out.push((col, Rule::BeforeOpened, t));
            }
        }
        future(
            now,
            &[
                ("opened_at", Some(self.opened_at)),
                ("first_response_at", self.first_response_at),
                ("resolved_at", self.resolved_at),
                ("closed_at", self.closed_at),
                ("updated_at", Some(self.updated_at)),
            ],
            out,
        );
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Ticket) -> Option<&str>| str_col(rows.iter().map(f));
        batch(
            Table::Tickets,
            vec![
                s(|r| Some(&r.ticket_id)),
                s(|r| Some(&r.source)),
                ts_col(rows.iter().map(|r| Some(r.opened_at))),
                ts_col(rows.iter().map(|r| r.first_response_at)),
                ts_col(rows.iter().map(|r| r.resolved_at)),
                ts_col(rows.iter().map(|r| r.closed_at)),
                ts_col(rows.iter().map(|r| Some(r.updated_at))),
                s(|r| r.status.as_deref()),
                i32_col(rows.iter().map(|r| r.priority)),
                s(|r| r.priority_raw.as_deref()),
                s(|r| r.category.as_deref()),
                s(|r| r.subcategory.as_deref()),
                s(|r| r.service.as_deref()),
                s(|r| r.issue_key.as_deref()),
                s(|r| Some(r.channel.unwrap_or(Channel::Other).as_str())),
                s(|r| r.channel_raw.as_deref()),
                s(|r| r.requester_id.as_deref()),
                s(|r| r.assignee_id.as_deref()),
                s(|r| r.assignment_group.as_deref()),
                s(|r| r.tier.as_deref()),
                i32_col(rows.iter().map(|r| r.reassignment_count)),
                i32_col(rows.iter().map(|r| r.reopen_count)),
                bool_col(rows.iter().map(|r| r.made_sla)),
                s(|r| r.resolution_path.map(ResolutionPath::as_str)),
                bool_col(rows.iter().map(|r| r.survey_offered)),
            ],
        )
    }
}

impl Ticket {
    /// The tickets of a batch in the tickets schema (the inverse of [`TableRow::to_batch`];
    /// `channel` reads back as given, `other` included). Columns are found by name.
    pub fn from_batch(b: &RecordBatch) -> anyhow::Result<Vec<Ticket>> {
        use datafusion::arrow::array::{Array, AsArray, BooleanArray, Int32Array, StringArray};
        use datafusion::arrow::datatypes::{Int32Type, TimestampMicrosecondType};
        let col = |n: &str| {
            b.column_by_name(n)
                .ok_or_else(|| anyhow::anyhow!("no column {n} in a tickets batch"))
        };
        let s = |n: &str| -> anyhow::Result<StringArray> { Ok(col(n)?.as_string::<i32>().clone()) };
        let ts = |n: &str| -> anyhow::Result<_> {
            Ok(col(n)?.as_primitive::<TimestampMicrosecondType>().clone())
        };
        let int = |n: &str| -> anyhow::Result<Int32Array> {
            Ok(col(n)?.as_primitive::<Int32Type>().clone())
        };
        let flag = |n: &str| -> anyhow::Result<BooleanArray> { Ok(col(n)?.as_boolean().clone()) };
        let text = |a: &StringArray, i: usize| a.is_valid(i).then(|| a.value(i).to_string());
        let (id, source, status, priority_raw) = (
            s("ticket_id")?,
            s("source")?,
            s("status")?,
            s("priority_raw")?,
        );
        let (category, subcategory, service, issue_key) = (
            s("category")?,
            s("subcategory")?,
            s("service")?,
            s("issue_key")?,
        );
        let (channel, channel_raw, requester, assignee) = (
            s("channel")?,
            s("channel_raw")?,
            s("requester_id")?,
            s("assignee_id")?,
        );
        let (group, tier, path) = (s("assignment_group")?, s("tier")?, s("resolution_path")?);
        let (opened, first, resolved) = (
            ts("opened_at")?,
            ts("first_response_at")?,
            ts("resolved_at")?,
        );
        let (closed, updated) = (ts("closed_at")?, ts("updated_at")?);
        let (priority, reassigned, reopened) = (
            int("priority")?,
            int("reassignment_count")?,
            int("reopen_count")?,
        );
        let (sla, offered) = (flag("made_sla")?, flag("survey_offered")?);
        (0..b.num_rows())
            .map(|i| {
                let time = |a: &datafusion::arrow::array::TimestampMicrosecondArray| {
                    a.is_valid(i).then(|| a.value(i))
                };
                let n = |a: &Int32Array| a.is_valid(i).then(|| a.value(i));
                let f = |a: &BooleanArray| a.is_valid(i).then(|| a.value(i));
                Ok(Ticket {
                    ticket_id: id.value(i).to_string(),
                    source: source.value(i).to_string(),
                    opened_at: opened.value(i),
                    first_response_at: time(&first),
                    resolved_at: time(&resolved),
                    closed_at: time(&closed),
                    updated_at: updated.value(i),
                    status: text(&status, i),
                    priority: n(&priority),
                    priority_raw: text(&priority_raw, i),
                    category: text(&category, i),
                    subcategory: text(&subcategory, i),
                    service: text(&service, i),
                    issue_key: text(&issue_key, i),
                    channel: text(&channel, i)
                        .map(|c| c.parse().map_err(anyhow::Error::msg))
                        .transpose()?,
                    channel_raw: text(&channel_raw, i),
                    requester_id: text(&requester, i),
                    assignee_id: text(&assignee, i),
                    assignment_group: text(&group, i),
                    tier: text(&tier, i),
                    reassignment_count: n(&reassigned),
                    reopen_count: n(&reopened),
                    made_sla: f(&sla),
                    resolution_path: text(&path, i)
                        .map(|p| p.parse().map_err(anyhow::Error::msg))
                        .transpose()?,
                    survey_offered: f(&offered),
                })
            })
            .collect()
    }
}

impl TableRow for Interaction {
    const TABLE: Table = Table::Interactions;
    fn partition_time(&self) -> Micros {
        self.at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.interaction_id)
    }
    fn findings(&self, now: Micros, out: &mut Vec<RowFinding>) {
        future(now, &[("at", Some(self.at))], out);
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Interaction) -> Option<&str>| str_col(rows.iter().map(f));
        batch(
            Table::Interactions,
            vec![
                s(|r| Some(&r.interaction_id)),
                s(|r| Some(&r.ticket_id)),
                ts_col(rows.iter().map(|r| Some(r.at))),
                i32_col(rows.iter().map(|r| r.seq)),
                s(|r| Some(r.actor_role.as_str())),
                s(|r| r.actor_id.as_deref()),
                s(|r| Some(r.channel.as_str())),
                bool_col(rows.iter().map(|r| Some(r.is_public))),
                s(|r| r.body.as_deref()),
                s(|r| r.lang.as_deref()),
                f64_col(rows.iter().map(|r| r.sentiment)),
            ],
        )
    }
}

impl TableRow for Rating {
    const TABLE: Table = Table::Ratings;
    fn partition_time(&self) -> Micros {
        self.rated_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.rating_id)
    }
    fn findings(&self, now: Micros, out: &mut Vec<RowFinding>) {
        future(now, &[("rated_at", Some(self.rated_at))], out);
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Rating) -> Option<&str>| str_col(rows.iter().map(f));
        batch(
            Table::Ratings,
            vec![
                s(|r| Some(&r.rating_id)),
                s(|r| Some(&r.ticket_id)),
                s(|r| r.interaction_id.as_deref()),
                s(|r| r.requester_id.as_deref()),
                ts_col(rows.iter().map(|r| Some(r.rated_at))),
                s(|r| r.channel.map(Channel::as_str)),
                s(|r| Some(&r.score_raw)),
                s(|r| Some(r.scale.as_str())),
                f64_col(rows.iter().map(|r| Some(r.score_5))),
                s(|r| r.comment.as_deref()),
                s(|r| r.lang.as_deref()),
                f64_col(rows.iter().map(|r| r.sentiment)),
            ],
        )
    }
}

impl TableRow for Adoption {
    const TABLE: Table = Table::Adoptions;
    fn partition_time(&self) -> Micros {
        self.launched_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.adoption_id)
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Adoption) -> Option<&str>| str_col(rows.iter().map(f));
        let mut scope = ListBuilder::new(StringBuilder::new());
        for r in rows {
            scope.append_value(r.scope.iter().map(|c| Some(c.as_str())));
        }
        batch(
            Table::Adoptions,
            vec![
                s(|r| Some(&r.adoption_id)),
                s(|r| Some(&r.name)),
                s(|r| r.kind.as_deref()),
                ts_col(rows.iter().map(|r| Some(r.launched_at))),
                Arc::new(scope.finish()),
            ],
        )
    }
}

impl TableRow for Survey {
    const TABLE: Table = Table::Surveys;
    fn partition_time(&self) -> Micros {
        self.sent_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Owned(format!(
            "{}|{}|{}",
            self.requester_id, self.sent_at, self.cohort
        ))
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Survey) -> Option<&str>| str_col(rows.iter().map(f));
        batch(
            Table::Surveys,
            vec![
                s(|r| Some(&r.requester_id)),
                ts_col(rows.iter().map(|r| Some(r.sent_at))),
                s(|r| Some(&r.cohort)),
                s(|r| r.cohort_key.as_deref()),
            ],
        )
    }
}

impl TableRow for Prediction {
    const TABLE: Table = Table::Predictions;
    fn partition_time(&self) -> Micros {
        self.predicted_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Owned(format!("{}|{}", self.ticket_id, self.model_id))
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&Prediction) -> &str| str_col(rows.iter().map(|r| Some(f(r))));
        let f = |f: fn(&Prediction) -> f64| f64_col(rows.iter().map(|r| Some(f(r))));
        let mut validation_tickets = UInt64Builder::new();
        validation_tickets.extend(rows.iter().map(|r| Some(r.validation_tickets)));
        batch(
            Table::Predictions,
            vec![
                s(|r| &r.ticket_id),
                s(|r| &r.model_id),
                ts_col(rows.iter().map(|r| Some(r.predicted_at))),
                f(|r| r.p_satisfied),
                f(|r| r.validation_bias),
                Arc::new(validation_tickets.finish()),
            ],
        )
    }
}

impl TableRow for RecordedModel {
    const TABLE: Table = Table::Models;
    fn partition_time(&self) -> Micros {
        self.predicted_at
    }
    fn key(&self) -> Cow<'_, str> {
        Cow::Borrowed(&self.model_id)
    }
    fn to_batch(rows: &[Self]) -> RecordBatch {
        let s = |f: fn(&RecordedModel) -> &str| str_col(rows.iter().map(|r| Some(f(r))));
        batch(
            Table::Models,
            vec![
                s(|r| &r.model_id),
                ts_col(rows.iter().map(|r| Some(r.predicted_at))),
                s(|r| &r.spec),
            ],
        )
    }
}

/// Turns rejects into a `_rejects` batch.
pub fn rejects_batch(rows: &[Reject]) -> RecordBatch {
    let mut line = UInt64Builder::new();
    line.extend(rows.iter().map(|r| Some(r.line)));
    RecordBatch::try_new(
        rejects_schema(),
        vec![
            str_col(rows.iter().map(|r| Some(r.source_file.as_str()))),
            Arc::new(line.finish()),
            str_col(rows.iter().map(|r| r.column.as_deref())),
            str_col(rows.iter().map(|r| Some(r.reason.as_str()))),
            str_col(rows.iter().map(|r| Some(r.raw.as_str()))),
        ],
    )
    .expect("rejects match their schema")
}

/// Turns findings into a `_findings` batch (timestamps as RFC 3339 text in `value`).
pub fn findings_batch(rows: &[Finding]) -> RecordBatch {
    let mut line = UInt64Builder::new();
    line.extend(rows.iter().map(|r| Some(r.line)));
    RecordBatch::try_new(
        findings_schema(),
        vec![
            str_col(rows.iter().map(|r| Some(r.table.name()))),
            str_col(rows.iter().map(|r| Some(r.key.as_str()))),
            str_col(rows.iter().map(|r| Some(r.source_file.as_str()))),
            Arc::new(line.finish()),
            str_col(rows.iter().map(|r| Some(r.column.as_str()))),
            str_col(rows.iter().map(|r| Some(r.rule.as_str()))),
            str_col(rows.iter().map(|r| r.value.as_deref())),
        ],
    )
    .expect("findings match their schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scale_maps_onto_one_to_five() {
        assert_eq!(Scale::Five.score_5("1"), Ok(1.0));
        assert_eq!(Scale::Five.score_5("5"), Ok(5.0));
        assert_eq!(Scale::Five.score_5(" 4 "), Ok(4.0));
        assert_eq!(Scale::GoodBad.score_5("good"), Ok(5.0));
        assert_eq!(Scale::GoodBad.score_5("Bad"), Ok(1.0));
        assert_eq!(Scale::Three.score_5("1"), Ok(1.0));
        assert_eq!(Scale::Three.score_5("2"), Ok(3.0));
        assert_eq!(Scale::Three.score_5("3"), Ok(5.0));
        assert_eq!(Scale::Ten.score_5("1"), Ok(1.0));
        assert_eq!(Scale::Ten.score_5("10"), Ok(5.0));
        assert!((Scale::Ten.score_5("7").unwrap() - (1.0 + 6.0 * 4.0 / 9.0)).abs() < 1e-12);
        assert_eq!(Scale::Eleven.score_5("0"), Ok(1.0));
        assert_eq!(Scale::Eleven.score_5("10"), Ok(5.0));
        assert_eq!(Scale::Eleven.score_5("5"), Ok(3.0));
        // Points by meaning: of 4, good (3) is satisfied and fair (2) is not.
        let points = |raw| Scale::Points.score_5(raw).unwrap();
        assert_eq!([points("1/2"), points("2/2")], [1.0, 5.0]);
        assert_eq!(
            [points("1/3"), points("2/3"), points("3/3")],
            [1.0, 3.0, 5.0]
        );
        assert_eq!(
            [points("1/4"), points("2/4"), points("3/4"), points("4/4")],
            [1.0, 2.0, 4.0, 5.0]
        );
        assert_eq!(points(" 4 / 5 "), 4.0);
        assert_eq!(
            [points("1/7"), points("4/7"), points("7/7")],
            [1.0, 3.0, 5.0]
        );
    }

    #[test]
    fn out_of_scale_values_are_errors_not_clamped() {
        for (scale, bad) in [
            (Scale::Five, "0"),
            (Scale::Five, "6"),
            (Scale::Five, "4.5"),
            (Scale::Five, "four"),
            (Scale::GoodBad, "ok"),
            (Scale::GoodBad, "offered"),
            (Scale::Three, "4"),
            (Scale::Three, "0"),
            (Scale::Ten, "0"),
            (Scale::Ten, "11"),
            (Scale::Eleven, "-1"),
            (Scale::Eleven, "11"),
            (Scale::Eleven, ""),
            (Scale::Points, "0/4"),
            (Scale::Points, "5/4"),
            (Scale::Points, "1/1"),
            (Scale::Points, "3"),
            (Scale::Points, "2.5/4"),
            (Scale::Points, "good"),
        ] {
            assert!(scale.score_5(bad).is_err(), "{scale} accepted {bad:?}");
        }
    }

    #[test]
    fn scale_names_parse() {
        assert_eq!("good_bad".parse::<Scale>(), Ok(Scale::GoodBad));
        assert_eq!("0-10".parse::<Scale>(), Ok(Scale::Eleven));
        assert_eq!("points".parse::<Scale>(), Ok(Scale::Points));
        assert!("stars".parse::<Scale>().is_err());
    }

    #[test]
    fn raw_channels_normalise() {
        for (raw, want) in [
            ("Self service", Channel::Portal),
            ("IVR", Channel::Phone),
            ("Phone", Channel::Phone),
            ("E-mail", Channel::Email),
            ("web", Channel::Portal),
            ("native_messaging", Channel::Messaging),
            ("WhatsApp", Channel::Messaging),
            ("Twitter", Channel::Social),
            ("Live Chat", Channel::Chat),
            ("Virtual Agent", Channel::Bot),
            ("walk-in", Channel::WalkIn),
            ("Screen share", Channel::ScreenShare),
            ("carrier pigeon", Channel::Other),
        ] {
            assert_eq!(Channel::normalise(raw), want, "{raw}");
        }
        for c in Channel::ALL {
            assert_eq!(Channel::normalise(c.as_str()), c);
            assert_eq!(c.as_str().parse::<Channel>(), Ok(c));
        }
    }

    #[test]
    fn priorities_normalise() {
        assert_eq!(normalise_priority("3 - Moderate"), Some(3));
        assert_eq!(normalise_priority("1 - Critical"), Some(1));
        assert_eq!(normalise_priority("P2"), Some(2));
        assert_eq!(normalise_priority("urgent"), Some(1));
        assert_eq!(normalise_priority("Highest"), Some(1));
        assert_eq!(normalise_priority("normal"), Some(3));
        assert_eq!(normalise_priority("Lowest"), Some(4));
        assert_eq!(normalise_priority("whenever"), None);
    }

    #[test]
    fn contradictory_fields_are_findings_of_the_row() {
        let hour = 3_600_000_000;
        let t = Ticket {
            ticket_id: "T1".into(),
            opened_at: 10 * hour,
            first_response_at: Some(9 * hour),
            resolved_at: Some(12 * hour),
            closed_at: Some(30 * hour),
            updated_at: 30 * hour,
            ..Default::default()
        };
        let mut found = Vec::new();
        t.findings(20 * hour, &mut found);
        assert_eq!(
            found,
            vec![
                ("first_response_at", Rule::BeforeOpened, 9 * hour),
                ("closed_at", Rule::InFuture, 30 * hour),
                ("updated_at", Rule::InFuture, 30 * hour),
            ]
        );
        found.clear();
        t.findings(40 * hour, &mut found);
        assert_eq!(found.len(), 1, "nothing is in the future any more");
    }

    #[test]
    fn batches_match_schemas() {
        let t = Ticket {
            ticket_id: "T1".into(),
            source: "generic".into(),
            opened_at: 1,
            updated_at: 2,
            ..Default::default()
        };
        let b = Ticket::to_batch(&[t]);
        assert_eq!(b.num_rows(), 1);
        assert_eq!(b.schema(), Table::Tickets.schema());
        let a = Adoption {
            adoption_id: "A".into(),
            name: "Portal".into(),
            kind: None,
            launched_at: 0,
            scope: vec!["Password reset".into()],
        };
        assert_eq!(Adoption::to_batch(&[a]).num_rows(), 1);
    }
}
