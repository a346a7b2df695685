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

use super::canonical::Col;
use super::reader::{CsvRow, Fault, Header, Row};
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

    /// A view of one record through this mapping, for one table, its columns found by name.
    pub fn rec<'a>(&'a self, row: &'a dyn Row, table: Table) -> Rec<'a> {
        Rec {
            fields: Fields::Named(row),
            mapping: self,
            table,
        }
    }

    /// Where each canonical column of `table` lies in a CSV file with this header: found once
    /// per file, so that each record's fields are read by position.
    pub fn plan<'m>(&'m self, table: Table, header: &Header) -> Plan<'m> {
        let sources = Col::ALL
            .iter()
            .map(|c| {
                self.candidates(table, c.name())
                    .filter_map(|source| header.position(source).map(|p| (p, source)))
                    .collect()
            })
            .collect();
        Plan {
            mapping: self,
            table,
            sources,
        }
    }
}

/// The positions of the canonical columns of one table in one CSV file (see [`Mapping::plan`]).
pub struct Plan<'m> {
    mapping: &'m Mapping,
    table: Table,
    sources: Sources<'m>,
}

/// Indexed by [`Col`] (every one, not only the table's: a lookup by index, and a few dozen short
/// lists per file): the candidate source columns the header has, in the mapping's order, with
/// their positions.
type Sources<'m> = Vec<Vec<(usize, &'m str)>>;

impl<'m> Plan<'m> {
    /// A view of one record of the file, its columns read by position.
    pub fn rec<'a>(&'a self, row: &'a CsvRow<'a>) -> Rec<'a> {
        Rec {
            fields: Fields::Planned(row, &self.sources),
            mapping: self.mapping,
            table: self.table,
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
    fields: Fields<'a>,
    mapping: &'a Mapping,
    table: Table,
}

/// Where a [`Rec`] reads its fields.
enum Fields<'a> {
    /// A CSV record, its columns found once per file (see [`Mapping::plan`]). Read through the
    /// concrete type, so that the field access is inlined: through `dyn Row`, each field came
    /// back through memory as a `Result<Option<Cow<str>>, _>`.
    Planned(&'a CsvRow<'a>, &'a Sources<'a>),
    /// Any record, its columns looked up by name.
    Named(&'a dyn Row),
}

impl<'a> Rec<'a> {
    /// The raw value of a canonical column and the source column it came from; empty values and
    /// the mapping's null values read as absent. Values are trimmed once (perf: `trim_matches`
    /// was 5.2% of a 1 M ingest's CPU with two trims per field, 4.3% with one).
    pub fn value(&self, col: Col) -> Result<Option<(Cow<'a, str>, &'a str)>, Fault> {
        match self.fields {
            Fields::Planned(row, plan) => {
                for &(position, source) in &plan[col as usize] {
                    match row.at(position, source)?.map(trim) {
                        Some(v) if self.present(v) => return Ok(Some((Cow::Borrowed(v), source))),
                        _ => {}
                    }
                }
            }
            Fields::Named(row) => {
                for source in self.mapping.candidates(self.table, col.name()) {
                    let v = match row.get(source)? {
                        Some(Cow::Borrowed(s)) => Cow::Borrowed(trim(s)),
                        Some(Cow::Owned(s)) if trim(&s).len() == s.len() => Cow::Owned(s),
                        Some(Cow::Owned(s)) => Cow::Owned(s.trim().to_string()),
                        None => continue,
                    };
                    if self.present(&v) {
                        return Ok(Some((v, source)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// Whether a trimmed value is one: not empty, nor one of the mapping's null values.
    fn present(&self, v: &str) -> bool {
        !v.is_empty() && !self.mapping.nulls.iter().any(|n| n == v)
    }

    fn name(&self, col: Col) -> &'a str {
        self.mapping
            .candidates(self.table, col.name())
            .next()
            .unwrap_or(col.name())
    }

    pub fn text(&self, col: Col) -> Result<Option<String>, Fault> {
        Ok(self.value(col)?.map(|(v, _)| v.into_owned()))
    }

    pub fn required_text(&self, col: Col) -> Result<String, Fault> {
        self.text(col)?
            .ok_or_else(|| Fault::column(self.name(col), format!("missing {}", col.name())))
    }

    pub fn time(&self, col: Col) -> Result<Option<Micros>, Fault> {
        match self.value(col)? {
            None => Ok(None),
            Some((v, col)) => self
                .mapping
                .time
                .parse(&v)
                .map(Some)
                .map_err(|e| Fault::column(col, e)),
        }
    }

    pub fn required_time(&self, col: Col) -> Result<Micros, Fault> {
        self.time(col)?
            .ok_or_else(|| Fault::column(self.name(col), format!("missing {}", col.name())))
    }

    pub fn int(&self, col: Col) -> Result<Option<i32>, Fault> {
        match self.value(col)? {
            None => Ok(None),
            Some((v, col)) => v
                .parse::<i32>()
                .map(Some)
                .map_err(|_| Fault::column(col, format!("'{v}' is not a whole number"))),
        }
    }

    pub fn number(&self, col: Col) -> Result<Option<f64>, Fault> {
        match self.value(col)? {
            None => Ok(None),
            Some((v, col)) => v
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .map(Some)
                .ok_or_else(|| Fault::column(col, format!("'{v}' is not a number"))),
        }
    }

    pub fn bool(&self, col: Col) -> Result<Option<bool>, Fault> {
        match self.value(col)? {
            None => Ok(None),
            Some((v, col)) => parse_bool(&v)
                .map(Some)
                .ok_or_else(|| Fault::column(col, format!("'{v}' is not true or false"))),
        }
    }

    pub fn parsed<T: std::str::FromStr<Err = String>>(&self, col: Col) -> Result<Option<T>, Fault> {
        match self.value(col)? {
            None => Ok(None),
            Some((v, col)) => v.parse::<T>().map(Some).map_err(|e| Fault::column(col, e)),
        }
    }

    /// The canonical channel and the raw value it came from (borrowed: only tickets keep it).
    pub fn channel(&self, col: Col) -> Result<(Option<Channel>, Option<Cow<'a, str>>), Fault> {
        Ok(match self.value(col)? {
            None => (None, None),
            Some((v, _)) => (Some(self.mapping.channel(&v)), Some(v)),
        })
    }
}

/// [`str::trim`], without decoding characters when both ends are visible ASCII (most fields).
fn trim(s: &str) -> &str {
    match (s.as_bytes().first(), s.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => s,
        _ => s.trim(),
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
    let ticket_id = r.required_text(Col::TicketId)?;
    let opened_at = r.required_time(Col::OpenedAt)?;
    let first_response_at = r.time(Col::FirstResponseAt)?;
    let resolved_at = r.time(Col::ResolvedAt)?;
    let closed_at = r.time(Col::ClosedAt)?;
    // Without an update time, the latest known event stands for it.
    let updated_at = match r.time(Col::UpdatedAt)? {
        Some(t) => t,
        None => [Some(opened_at), first_response_at, resolved_at, closed_at]
            .into_iter()
            .flatten()
            .max()
            .expect("opened_at is present"),
    };
    let priority_raw = r.text(Col::Priority)?;
    let (channel, channel_raw) = r.channel(Col::Channel)?;
    Ok(Ticket {
        ticket_id,
        source: r
            .text(Col::Source)?
            .unwrap_or_else(|| r.mapping.source.clone()),
        opened_at,
        first_response_at,
        resolved_at,
        closed_at,
        updated_at,
        status: r.text(Col::Status)?,
        priority: priority_raw.as_deref().and_then(normalise_priority),
        priority_raw: r.text(Col::PriorityRaw)?.or(priority_raw),
        category: r.text(Col::Category)?,
        subcategory: r.text(Col::Subcategory)?,
        service: r.text(Col::Service)?,
        issue_key: r.text(Col::IssueKey)?,
        channel: Some(channel.unwrap_or(Channel::Other)),
        channel_raw: r
            .text(Col::ChannelRaw)?
            .or_else(|| channel_raw.map(Cow::into_owned)),
        requester_id: r.text(Col::RequesterId)?,
        assignee_id: r.text(Col::AssigneeId)?,
        assignment_group: r.text(Col::AssignmentGroup)?,
        tier: r.text(Col::Tier)?,
        reassignment_count: r.int(Col::ReassignmentCount)?,
        reopen_count: r.int(Col::ReopenCount)?,
        made_sla: r.bool(Col::MadeSla)?,
        resolution_path: r.parsed::<ResolutionPath>(Col::ResolutionPath)?,
        survey_offered: r.bool(Col::SurveyOffered)?,
    })
}

/// Builds an interaction from a mapped record.
pub fn interaction(r: &Rec<'_>) -> Result<Interaction, Fault> {
    let (channel, _) = r.channel(Col::Channel)?;
    Ok(Interaction {
        interaction_id: r.required_text(Col::InteractionId)?,
        ticket_id: r.required_text(Col::TicketId)?,
        at: r.required_time(Col::At)?,
        seq: r.int(Col::Seq)?,
        actor_role: r
            .parsed::<ActorRole>(Col::ActorRole)?
            .ok_or_else(|| Fault::column(r.name(Col::ActorRole), "missing actor_role"))?,
        actor_id: r.text(Col::ActorId)?,
        channel: channel.unwrap_or(Channel::Other),
        is_public: r.bool(Col::IsPublic)?.unwrap_or(true),
        body: r.text(Col::Body)?,
        lang: None,
        sentiment: None,
    })
}

/// Builds a rating from a mapped record: the scale comes from the record's `scale` column, else
/// the mapping's `scale`, else `default_scale`.
/// A row without a score is *unrated* (a ticket nobody rated), whatever else it lacks.
pub fn rating(r: &Rec<'_>, default_scale: Scale) -> Result<Rating, Fault> {
    let (score_raw, score_col) = r
        .value(Col::ScoreRaw)?
        .ok_or_else(|| Fault::unrated(r.name(Col::ScoreRaw)))?;
    let rating_id = r.required_text(Col::RatingId)?;
    let ticket_id = r.required_text(Col::TicketId)?;
    let rated_at = r.required_time(Col::RatedAt)?;
    let scale = r
        .parsed::<Scale>(Col::Scale)?
        .or(r.mapping.scale)
        .unwrap_or(default_scale);
    let score_5 = scale
        .score_5(&score_raw)
        .map_err(|e| Fault::column(score_col, e.0))?;
    let (channel, _) = r.channel(Col::Channel)?;
    Ok(Rating {
        rating_id,
        ticket_id,
        interaction_id: r.text(Col::InteractionId)?,
        requester_id: r.text(Col::RequesterId)?,
        rated_at,
        channel,
        score_raw: score_raw.into_owned(),
        scale,
        score_5,
        comment: r.text(Col::Comment)?,
        lang: None,
        sentiment: None,
    })
}

/// Builds an adoption; `scope` is a list separated by `;` or `|` (empty: all categories).
pub fn adoption(r: &Rec<'_>) -> Result<Adoption, Fault> {
    Ok(Adoption {
        adoption_id: r.required_text(Col::AdoptionId)?,
        name: r.required_text(Col::Name)?,
        kind: r.text(Col::Kind)?,
        launched_at: r.required_time(Col::LaunchedAt)?,
        scope: r
            .text(Col::Scope)?
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
        requester_id: r.required_text(Col::RequesterId)?,
        sent_at: r.required_time(Col::SentAt)?,
        cohort: r.required_text(Col::Cohort)?,
        cohort_key: r.text(Col::CohortKey)?,
    })
}

/// Builds a prediction record (predictions another tool made, or `predict --record`'s own
/// exported and brought back): P(satisfied) must lie in 0..1.
pub fn prediction(r: &Rec<'_>) -> Result<Prediction, Fault> {
    let p_satisfied = r
        .number(Col::PSatisfied)?
        .ok_or_else(|| Fault::column(r.name(Col::PSatisfied), "missing p_satisfied".to_string()))?;
    if !(0.0..=1.0).contains(&p_satisfied) {
        return Err(Fault::column(
            r.name(Col::PSatisfied),
            format!("p_satisfied {p_satisfied} is not between 0 and 1"),
        ));
    }
    let validation_tickets = match r.number(Col::ValidationTickets)? {
        Some(n) if n >= 0.0 && n.fract() == 0.0 => n as u64,
        Some(n) => {
            return Err(Fault::column(
                r.name(Col::ValidationTickets),
                format!("'{n}' is not a count"),
            ));
        }
        None => 0,
    };
    Ok(Prediction {
        ticket_id: r.required_text(Col::TicketId)?,
        model_id: r.required_text(Col::ModelId)?,
        predicted_at: r.required_time(Col::PredictedAt)?,
        p_satisfied,
        validation_bias: r.number(Col::ValidationBias)?.unwrap_or(0.0),
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

    #[test]
    fn a_files_plan_reads_what_the_names_read() {
        // Candidates of which the first is absent or empty, a null value, padding, a column the
        // mapping does not read, a table without a section (identity), and a column named twice
        // (which ingest refuses, see `refuse_duplicates`; both read the first).
        let m = Mapping::from_toml(
            "null_values = [\"N/A\"]\n[tickets]\nticket_id = \"Number\"\n\
             opened_at = [\"Created\", \"Opened\"]\nstatus = [\"State\", \"Status\"]\n\
             priority = \"Prio\"\ncategory = \"Cat\"",
            "x",
            None,
        )
        .unwrap();
        let csv = "Number,Opened,State,Status,Prio,Cat,Cat,Other\n\
                   T1,2026-01-01T00:00:00Z,, open ,N/A, a ,b,z\n\
                   T2,2026-01-02T00:00:00Z,closed,open, P1 ,,b,z\n";
        for table in [Table::Tickets, Table::Ratings] {
            let mut seen = 0;
            crate::ingest::reader::read_csv(
                csv.as_bytes(),
                |_| Ok(()),
                |row| {
                    let row = row.expect("a well-formed record");
                    let header = row.header();
                    let plan = m.plan(table, header);
                    let (planned, named) = (plan.rec(row), m.rec(row, table));
                    for c in Col::ALL {
                        assert_eq!(planned.value(*c), named.value(*c), "{table} {c:?}");
                    }
                    seen += 1;
                    Ok(())
                },
            )
            .unwrap()
            .unwrap();
            assert_eq!(seen, 2);
        }
        // What the rows hold, to know the comparison above compared something.
        let first = |c| {
            let mut v = None;
            crate::ingest::reader::read_csv(
                csv.as_bytes(),
                |_| Ok(()),
                |row| {
                    let row = row.unwrap();
                    v.get_or_insert(
                        m.plan(Table::Tickets, row.header())
                            .rec(row)
                            .value(c)
                            .unwrap()
                            .map(|(v, source)| (v.into_owned(), source.to_string())),
                    );
                    Ok(())
                },
            )
            .unwrap()
            .unwrap();
            v.unwrap()
        };
        assert_eq!(first(Col::Status), Some(("open".into(), "Status".into())));
        assert_eq!(first(Col::Priority), None);
        assert_eq!(first(Col::Category), Some(("a".into(), "Cat".into())));
        assert_eq!(first(Col::OpenedAt).unwrap().1, "Opened");
    }

    #[test]
    fn trim_is_str_trim() {
        for s in [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "\u{a0}a",
            "a\u{3000}",
            "é",
            "a b",
        ] {
            assert_eq!(trim(s), s.trim(), "{s:?}");
        }
    }
}
