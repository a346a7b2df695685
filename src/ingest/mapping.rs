//! Column mappings: how the columns of an export become canonical columns.
//!
//! A mapping is a small TOML file. Every built-in profile ships one (`profiles/<name>/mapping.toml`)
//! and a user loads any other tool's export with `--profile generic --mapping map.toml`:
//!
//! ```toml
//! source = "freshservice"            # tickets.source
//! table = "tickets"                  # which table a single-table file fills (else: by file name)
//! date_formats = ["%d-%m-%Y %H:%M"]  # tried before ISO 8601
//! timezone = "Europe/Berlin"         # for timestamps without a zone (--tz overrides)
//! null_values = ["?", "N/A"]         # read as empty
//! scale = "ten"                      # rating scale when the export has no scale column
//!
//! [tickets]                          # canonical column = source column (or a list: first present wins)
//! ticket_id = "Ticket ID"
//! opened_at = ["Created", "Created Date"]
//!
//! [channels]                         # raw channel value = canonical channel
//! "Walk up" = "walk_in"
//! ```
//! Unknown keys, unknown canonical columns, channels, scales and time zones are errors that name
//! the key. A table section that is absent maps every canonical column to the column of the same
//! name, so an export already in canonical names needs no mapping at all.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result, bail};
use chrono_tz::Tz;
use serde::Deserialize;

use super::reader::{Fault, Header, Row};
use crate::model::{
    ActorRole, Adoption, Channel, Interaction, Micros, Prediction, Rating, ResolutionPath, Scale,
    Survey, Table, Ticket, normalise_priority,
};
use crate::timeparse::{TimeParser, parse_tz};

/// A mapping file, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    pub source: Option<String>,
    pub table: Option<String>,
    #[serde(default)]
    pub date_formats: Vec<String>,
    pub timezone: Option<String>,
    #[serde(default)]
    pub null_values: Vec<String>,
    pub scale: Option<String>,
    #[serde(default)]
    pub channels: BTreeMap<String, String>,
    pub tickets: Option<BTreeMap<String, Columns>>,
    pub interactions: Option<BTreeMap<String, Columns>>,
    pub ratings: Option<BTreeMap<String, Columns>>,
    pub adoptions: Option<BTreeMap<String, Columns>>,
    pub surveys: Option<BTreeMap<String, Columns>>,
    pub predictions: Option<BTreeMap<String, Columns>>,
    /// The file is an event log: one row per change (see [`super::event_log`]).
    pub event_log: Option<super::event_log::EventLogFile>,
}

/// One source column, or several candidates (the first present in the export is used).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    One(String),
    Many(Vec<String>),
}

impl Columns {
    fn list(&self) -> Vec<String> {
        match self {
            Columns::One(c) => vec![c.clone()],
            Columns::Many(v) => v.clone(),
        }
    }
}

/// A checked mapping, ready to convert records.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub source: String,
    pub table: Option<Table>,
    pub scale: Option<Scale>,
    time: TimeParser,
    nulls: Vec<String>,
    channels: HashMap<String, Channel>,
    /// Per table: canonical column → candidate source columns. Absent table: identity.
    columns: HashMap<Table, HashMap<String, Vec<String>>>,
    /// Set when the file is an event log of tickets.
    pub event_log: Option<super::event_log::EventLog>,
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn from_file(
        path: &Path,
        default_source: &str,
        tz_override: Option<Tz>,
    ) -> Result<Mapping> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read mapping file {}", path.display()))?;
        Mapping::from_toml(&text, default_source, tz_override)
            .with_context(|| format!("mapping file {}", path.display()))
    }

    /// Parses and checks mapping TOML.
    pub fn from_toml(text: &str, default_source: &str, tz_override: Option<Tz>) -> Result<Mapping> {
        let file: MappingFile = toml::from_str(text)?;
        Mapping::from_parts(file, default_source, tz_override)
    }

    /// The identity mapping: canonical names in, canonical names out.
    pub fn identity(source: &str, tz: Option<Tz>) -> Mapping {
        Mapping::from_parts(MappingFile::default(), source, tz).expect("the empty mapping is valid")
    }

    fn from_parts(
        file: MappingFile,
        default_source: &str,
        tz_override: Option<Tz>,
    ) -> Result<Mapping> {
        let tz = match (tz_override, &file.timezone) {
            (Some(tz), _) => tz,
            (None, Some(name)) => parse_tz(name)
                .map_err(anyhow::Error::msg)
                .context("key 'timezone'")?,
            (None, None) => Tz::UTC,
        };
        let table = file
            .table
            .as_deref()
            .map(str::parse::<Table>)
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("key 'table'")?;
        let scale = file
            .scale
            .as_deref()
            .map(str::parse::<Scale>)
            .transpose()
            .map_err(anyhow::Error::msg)
            .context("key 'scale'")?;
        let mut channels = HashMap::new();
        for (raw, canonical) in &file.channels {
            let c = canonical
                .parse::<Channel>()
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("key 'channels.\"{raw}\"'"))?;
            channels.insert(raw.trim().to_lowercase(), c);
        }
        let mut columns = HashMap::new();
        for (t, section) in [
            (Table::Tickets, &file.tickets),
            (Table::Interactions, &file.interactions),
            (Table::Ratings, &file.ratings),
            (Table::Adoptions, &file.adoptions),
            (Table::Surveys, &file.surveys),
            (Table::Predictions, &file.predictions),
        ] {
            let Some(section) = section else { continue };
            let schema = t.schema();
            let mut m = HashMap::new();
            for (canonical, src) in section {
                if schema.field_with_name(canonical).is_err()
                    && !extra_inputs(t).contains(&canonical.as_str())
                {
                    let known: Vec<&str> =
                        schema.fields().iter().map(|f| f.name().as_str()).collect();
                    bail!(
                        "key '{t}.{canonical}': {t} has no column '{canonical}' (columns: {})",
                        known.join(", ")
                    );
                }
                m.insert(canonical.clone(), src.list());
            }
            columns.insert(t, m);
        }
        if let Some(log) = &file.event_log {
            if table.is_some_and(|t| t != Table::Tickets) {
                bail!("key 'event_log': an event log fills the tickets table, not {table:?}");
            }
            // Each row is the ticket as it was after its change: the log's columns give the
            // key, the times and the status; the [tickets] section (else the canonical names)
            // the rest.
            let section = columns.entry(Table::Tickets).or_insert_with(|| {
                Table::Tickets
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), vec![f.name().clone()]))
                    .collect()
            });
            for (canonical, src) in log.columns() {
                if file
                    .tickets
                    .as_ref()
                    .is_some_and(|t| t.contains_key(canonical))
                {
                    bail!(
                        "key 'tickets.{canonical}': an event log derives {canonical} from \
                         [event_log]; remove it from [tickets]"
                    );
                }
                section.insert(canonical.to_string(), vec![src]);
            }
        }
        Ok(Mapping {
            event_log: file
                .event_log
                .as_ref()
                .map(super::event_log::EventLog::from),
            source: file.source.unwrap_or_else(|| default_source.to_string()),
            table,
            scale,
            time: TimeParser::new(file.date_formats, tz),
            nulls: file.null_values,
            channels,
            columns,
        })
    }

    pub fn time(&self) -> &TimeParser {
        &self.time
    }

    /// The source columns that may hold a canonical column. Called for every field of every
    /// record, so it borrows rather than allocates.
    pub fn candidates<'s>(
        &'s self,
        table: Table,
        canonical: &'s str,
    ) -> impl Iterator<Item = &'s str> + 's {
        let (identity, mapped): (Option<&str>, &[String]) = match self.columns.get(&table) {
            Some(m) => (None, m.get(canonical).map_or(&[][..], Vec::as_slice)),
            None => (Some(canonical), &[]),
        };
        identity
            .into_iter()
            .chain(mapped.iter().map(String::as_str))
    }

    /// Maps a raw channel value: the mapping's own table first, then the built-in names.
    pub fn channel(&self, raw: &str) -> Channel {
        if self.channels.is_empty() {
            return Channel::normalise(raw);
        }
        self.channels
            .get(&raw.trim().to_lowercase())
            .copied()
            .unwrap_or_else(|| Channel::normalise(raw))
    }

    /// The columns a CSV header must have for this table (the first candidate is named).
    pub fn missing_required(&self, table: Table, has: impl Fn(&str) -> bool) -> Option<String> {
        for col in required_columns(table) {
            if !self.candidates(table, col).any(&has) {
                let first = self.candidates(table, col).next().unwrap_or(col);
                return Some(first.to_string());
            }
        }
        None
    }

    /// Refuses a header that names a column this mapping reads as one value more than once: the
    /// first copy would silently win. (Columns read as lists, such as Jira's repeated `Comment`,
    /// are not mapped, so they may repeat.)
    pub fn refuse_duplicates(&self, table: Table, header: &Header) -> Result<(), String> {
        let schema = table.schema();
        let canonical = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .chain(extra_inputs(table).iter().copied());
        for col in canonical {
            for c in self.candidates(table, col) {
                let n = header.count(c);
                if n > 1 {
                    return Err(format!(
                        "column '{c}' appears {n} times in the header; it is read as one value \
                         ({table}.{col}), so rename or remove the copies"
                    ));
                }
            }
        }
        Ok(())
    }

    /// A view of one record through this mapping, for one table.
    pub fn rec<'a>(&'a self, row: &'a dyn Row, table: Table) -> Rec<'a> {
        Rec {
            row,
            mapping: self,
            table,
        }
    }
}

/// Canonical columns without which a row of the table cannot be stored.
pub fn required_columns(table: Table) -> &'static [&'static str] {
    match table {
        Table::Tickets => &["ticket_id", "opened_at"],
        Table::Interactions => &["interaction_id", "ticket_id", "at", "actor_role"],
        Table::Ratings => &["rating_id", "ticket_id", "rated_at", "score_raw"],
        Table::Adoptions => &["adoption_id", "name", "launched_at"],
        Table::Surveys => &["requester_id", "sent_at", "cohort"],
        Table::Predictions => &["ticket_id", "model_id", "predicted_at", "p_satisfied"],
        Table::Models => &["model_id", "predicted_at", "spec"],
    }
}

/// Mapping keys accepted besides the schema's columns (inputs that are not stored as such).
fn extra_inputs(table: Table) -> &'static [&'static str] {
    match table {
        // A ratings export may give a per-row scale; `score_5` is always computed.
        Table::Ratings => &["scale"],
        _ => &[],
    }
}

/// One record seen through a mapping, for one table: typed access to canonical columns.
pub struct Rec<'a> {
    row: &'a dyn Row,
    mapping: &'a Mapping,
    table: Table,
}

impl<'a> Rec<'a> {
    /// The raw value of a canonical column and the source column it came from; empty values and
    /// the mapping's null values read as absent.
    pub fn value<'c>(
        &'c self,
        canonical: &'c str,
    ) -> Result<Option<(Cow<'a, str>, &'c str)>, Fault> {
        for col in self.mapping.candidates(self.table, canonical) {
            if let Some(v) = self.row.get(col)? {
                // Trimmed once (perf: `trim_matches` was 5.2% of a 1 M ingest's CPU with
                // two trims per field, 4.3% with one).
                let v = match v {
                    Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
                    Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
                    Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
                };
                if v.is_empty() || self.mapping.nulls.iter().any(|n| *n == *v) {
                    continue;
                }
                return Ok(Some((v, col)));
            }
        }
        Ok(None)
    }

    fn name<'c>(&'c self, canonical: &'c str) -> &'c str {
        self.mapping
            .candidates(self.table, canonical)
            .next()
            .unwrap_or(canonical)
    }

    pub fn text(&self, canonical: &str) -> Result<Option<String>, Fault> {
        Ok(self.value(canonical)?.map(|(v, _)| v.into_owned()))
    }

    pub fn required_text(&self, canonical: &str) -> Result<String, Fault> {
        self.text(canonical)?
            .ok_or_else(|| Fault::column(self.name(canonical), format!("missing {canonical}")))
    }

    pub fn time(&self, canonical: &str) -> Result<Option<Micros>, Fault> {
        match self.value(canonical)? {
            None => Ok(None),
            Some((v, col)) => self
                .mapping
                .time
                .parse(&v)
                .map(Some)
                .map_err(|e| Fault::column(col, e)),
        }
    }

    pub fn required_time(&self, canonical: &str) -> Result<Micros, Fault> {
        self.time(canonical)?
            .ok_or_else(|| Fault::column(self.name(canonical), format!("missing {canonical}")))
    }

    pub fn int(&self, canonical: &str) -> Result<Option<i32>, Fault> {
        match self.value(canonical)? {
            None => Ok(None),
            Some((v, col)) => v
                .parse::<i32>()
                .map(Some)
                .map_err(|_| Fault::column(col, format!("'{v}' is not a whole number"))),
        }
    }

    pub fn number(&self, canonical: &str) -> Result<Option<f64>, Fault> {
        match self.value(canonical)? {
            None => Ok(None),
            Some((v, col)) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| Fault::column(col, format!("'{v}' is not a number"))),
        }
    }

    pub fn bool(&self, canonical: &str) -> Result<Option<bool>, Fault> {
        match self.value(canonical)? {
            None => Ok(None),
            Some((v, col)) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| Fault::column(col, format!("'{v}' is not true or false"))),
        }
    }

    pub fn parsed<T: std::str::FromStr<Err = String>>(
        &self,
        canonical: &str,
    ) -> Result<Option<T>, Fault> {
        match self.value(canonical)? {
            None => Ok(None),
            Some((v, col)) => v.parse::<T>().map(Some).map_err(|e| Fault::column(col, e)),
        }
    }

    /// The canonical channel and the raw value it came from.
    pub fn channel(&self, canonical: &str) -> Result<(Option<Channel>, Option<String>), Fault> {
        Ok(match self.value(canonical)? {
            None => (None, None),
            Some((v, _)) => (Some(self.mapping.channel(&v)), Some(v.into_owned())),
        })
    }
}

pub fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    let is = |words: &[&str]| words.iter().any(|w| w.eq_ignore_ascii_case(v));
    if is(&["true", "t", "yes", "y", "1"]) {
        Some(true)
    } else if is(&["false", "f", "no", "n", "0"]) {
        Some(false)
    } else {
        None
    }
}

/// Builds a ticket from a mapped record. Timestamps that contradict each other (resolved before
/// opened) keep the ticket: they are findings ([`crate::model::TableRow::findings`]), not faults.
pub fn ticket(r: &Rec<'_>) -> Result<Ticket, Fault> {
    let ticket_id = r.required_text("ticket_id")?;
    let opened_at = r.required_time("opened_at")?;
    let first_response_at = r.time("first_response_at")?;
    let resolved_at = r.time("resolved_at")?;
    let closed_at = r.time("closed_at")?;
    // Without an update time, the latest known event stands for it.
    let updated_at = match r.time("updated_at")? {
        Some(t) => t,
        None => [Some(opened_at), first_response_at, resolved_at, closed_at]
            .into_iter()
            .flatten()
            .max()
            .expect("opened_at is present"),
    };
    let priority_raw = r.text("priority")?;
    let (channel, channel_raw) = r.channel("channel")?;
    Ok(Ticket {
        ticket_id,
        source: r
            .text("source")?
            .unwrap_or_else(|| r.mapping.source.clone()),
        opened_at,
        first_response_at,
        resolved_at,
        closed_at,
        updated_at,
        status: r.text("status")?,
        priority: priority_raw.as_deref().and_then(normalise_priority),
        priority_raw: r.text("priority_raw")?.or(priority_raw),
        category: r.text("category")?,
        subcategory: r.text("subcategory")?,
        service: r.text("service")?,
        issue_key: r.text("issue_key")?,
        channel: Some(channel.unwrap_or(Channel::Other)),
        channel_raw: r.text("channel_raw")?.or(channel_raw),
        requester_id: r.text("requester_id")?,
        assignee_id: r.text("assignee_id")?,
        assignment_group: r.text("assignment_group")?,
        tier: r.text("tier")?,
        reassignment_count: r.int("reassignment_count")?,
        reopen_count: r.int("reopen_count")?,
        made_sla: r.bool("made_sla")?,
        resolution_path: r.parsed::<ResolutionPath>("resolution_path")?,
        survey_offered: r.bool("survey_offered")?,
    })
}

/// Builds an interaction from a mapped record.
pub fn interaction(r: &Rec<'_>) -> Result<Interaction, Fault> {
    let (channel, _) = r.channel("channel")?;
    Ok(Interaction {
        interaction_id: r.required_text("interaction_id")?,
        ticket_id: r.required_text("ticket_id")?,
        at: r.required_time("at")?,
        seq: r.int("seq")?,
        actor_role: r
            .parsed::<ActorRole>("actor_role")?
            .ok_or_else(|| Fault::column(r.name("actor_role"), "missing actor_role"))?,
        actor_id: r.text("actor_id")?,
        channel: channel.unwrap_or(Channel::Other),
        is_public: r.bool("is_public")?.unwrap_or(true),
        body: r.text("body")?,
        lang: None,
        sentiment: None,
    })
}

/// Builds a rating from a mapped record: the scale comes from the record's `scale` column, else
/// the mapping's `scale`, else `default_scale`.
/// A row without a score is *unrated* (a ticket nobody rated), whatever else it lacks.
pub fn rating(r: &Rec<'_>, default_scale: Scale) -> Result<Rating, Fault> {
    let (score_raw, score_col) = r
        .value("score_raw")?
        .ok_or_else(|| Fault::unrated(r.name("score_raw")))?;
    let rating_id = r.required_text("rating_id")?;
    let ticket_id = r.required_text("ticket_id")?;
    let rated_at = r.required_time("rated_at")?;
    let scale = r
        .parsed::<Scale>("scale")?
        .or(r.mapping.scale)
        .unwrap_or(default_scale);
    let score_5 = scale
        .score_5(&score_raw)
        .map_err(|e| Fault::column(score_col, e.0))?;
    let (channel, _) = r.channel("channel")?;
    Ok(Rating {
        rating_id,
        ticket_id,
        interaction_id: r.text("interaction_id")?,
        requester_id: r.text("requester_id")?,
        rated_at,
        channel,
        score_raw: score_raw.into_owned(),
        scale,
        score_5,
        comment: r.text("comment")?,
        lang: None,
        sentiment: None,
    })
}

/// Builds an adoption; `scope` is a list separated by `;` or `|` (empty: all categories).
pub fn adoption(r: &Rec<'_>) -> Result<Adoption, Fault> {
    Ok(Adoption {
        adoption_id: r.required_text("adoption_id")?,
        name: r.required_text("name")?,
        kind: r.text("kind")?,
        launched_at: r.required_time("launched_at")?,
        scope: r
            .text("scope")?
            .map(|s| {
                s.split([';', '|'])
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Builds a survey record.
pub fn survey(r: &Rec<'_>) -> Result<Survey, Fault> {
    Ok(Survey {
        requester_id: r.required_text("requester_id")?,
        sent_at: r.required_time("sent_at")?,
        cohort: r.required_text("cohort")?,
        cohort_key: r.text("cohort_key")?,
    })
}

/// Builds a prediction record (predictions another tool made, or `predict --record`'s own
/// exported and brought back): P(satisfied) must lie in 0..1.
pub fn prediction(r: &Rec<'_>) -> Result<Prediction, Fault> {
    let p_satisfied = r
        .number("p_satisfied")?
        .ok_or_else(|| Fault::column(r.name("p_satisfied"), "missing p_satisfied".to_string()))?;
    if !(0.0..=1.0).contains(&p_satisfied) {
        return Err(Fault::column(
            r.name("p_satisfied"),
            format!("p_satisfied {p_satisfied} is not between 0 and 1"),
        ));
    }
    let validation_tickets = match r.number("validation_tickets")? {
        Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
        Some(n) => {
            return Err(Fault::column(
                r.name("validation_tickets"),
                format!("'{n}' is not a count"),
            ));
        }
        None => 0,
    };
    Ok(Prediction {
        ticket_id: r.required_text("ticket_id")?,
        model_id: r.required_text("model_id")?,
        predicted_at: r.required_time("predicted_at")?,
        p_satisfied,
        validation_bias: r.number("validation_bias")?.unwrap_or(0.0),
        validation_tickets,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_and_values_are_named() {
        let e = Mapping::from_toml("colour = \"red\"", "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("colour"), "{e:#}");
        let e = Mapping::from_toml("[tickets]\nticket_number = \"id\"", "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("tickets.ticket_number"), "{e:#}");
        let e = Mapping::from_toml("[channels]\n\"Fax\" = \"fax\"", "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("channels.\"Fax\""), "{e:#}");
        let e = Mapping::from_toml("scale = \"stars\"", "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("scale"), "{e:#}");
        let e = Mapping::from_toml("timezone = \"Mars/Base\"", "x", None).unwrap_err();
        assert!(format!("{e:#}").contains("timezone"), "{e:#}");
    }

    #[test]
    fn candidates_and_channel_overrides() {
        let m = Mapping::from_toml(
            "[tickets]\nticket_id = \"Number\"\nopened_at = [\"Created\", \"Opened\"]\n[channels]\n\"Walk up\" = \"walk_in\"",
            "x",
            None,
        )
        .unwrap();
        let cands = |t, c| m.candidates(t, c).collect::<Vec<_>>();
        assert_eq!(
            cands(Table::Tickets, "opened_at"),
            vec!["Created", "Opened"]
        );
        assert_eq!(cands(Table::Ratings, "score_raw"), vec!["score_raw"]);
        assert!(cands(Table::Tickets, "tier").is_empty());
        assert_eq!(m.channel("walk UP"), Channel::WalkIn);
        assert_eq!(m.channel("IVR"), Channel::Phone);
        assert_eq!(
            m.missing_required(Table::Tickets, |c| c == "Number" || c == "Opened"),
            None
        );
        assert_eq!(
            m.missing_required(Table::Tickets, |c| c == "Number"),
            Some("Created".to_string())
        );
    }
}
