//! From the rows of `prediction_features` (queries/prediction_features.sql) to the model's
//! matrix: what each feature is, how it is transformed, and what "one more" of it means for the
//! drivers. Everything learned (means, spreads, levels) is learned on the training rows only.

use anyhow::{Context, Result};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit, TimestampMicrosecondType};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::model::Micros;

/// A numeric feature: its column, how it enters the model and the step a driver reports.
struct Numeric {
    column: &'static str,
    /// Durations enter as log(1 + hours): a day's wait is not 24 times an hour's.
    log: bool,
    /// The step of its driver, in the column's unit (`log`: a doubling).
    step: f64,
    /// How a manager reads the step.
    per: &'static str,
}

const NUMERIC: [Numeric; 11] = [
    Numeric {
        column: "frt_hours",
        log: true,
        step: 2.0,
        per: "first response time doubled",
    },
    Numeric {
        column: "ttr_hours",
        log: true,
        step: 2.0,
        per: "resolution time doubled",
    },
    Numeric {
        column: "reopens",
        log: false,
        step: 1.0,
        per: "each reopen",
    },
    Numeric {
        column: "reassignments",
        log: false,
        step: 1.0,
        per: "each reassignment",
    },
    Numeric {
        column: "agent_hops",
        log: false,
        step: 1.0,
        per: "each extra agent",
    },
    Numeric {
        column: "channel_switches",
        log: false,
        step: 1.0,
        per: "each channel switch",
    },
    Numeric {
        column: "requester_messages",
        log: false,
        step: 1.0,
        per: "each requester message",
    },
    Numeric {
        column: "sentiment_first",
        log: false,
        step: 0.5,
        per: "first requester message 0.5 more positive",
    },
    Numeric {
        column: "sentiment_last",
        log: false,
        step: 0.5,
        per: "last requester message 0.5 more positive",
    },
    Numeric {
        column: "sentiment_min",
        log: false,
        step: 0.5,
        per: "most negative requester message 0.5 less negative",
    },
    Numeric {
        column: "sentiment_trend",
        log: false,
        step: 0.5,
        per: "requester 0.5 more positive at the end than at the start",
    },
];

/// Categorical features: one column per level seen often enough in training.
const CATEGORICAL: [&str; 3] = ["channel", "category", "priority"];
/// A level needs this many training tickets to get a column of its own; rarer, unseen and
/// missing levels share an `other` column (if it reaches this size) or count as the reference.
pub const MIN_LEVEL: usize = 30;

/// One resolved ticket as the model sees it, before the learned transforms.
#[derive(Debug, Clone)]
pub struct Example {
    pub ticket_id: String,
    /// When it was rated (None: unrated by as_of).
    pub rated_at: Option<Micros>,
    pub satisfied: Option<bool>,
    numeric: [Option<f64>; NUMERIC.len()],
    bot: bool,
    levels: [Option<String>; CATEGORICAL.len()],
}

/// Reads the rows of the `prediction_features` view.
pub fn examples(batches: &[RecordBatch]) -> Result<Vec<Example>> {
    let mut out = Vec::new();
    for b in batches {
        let col = |name: &str| -> Result<&ArrayRef> {
            b.column_by_name(name)
                .with_context(|| format!("prediction_features has no column {name}"))
        };
        let float = |name: &str| -> Result<ArrayRef> { Ok(cast(col(name)?, &DataType::Float64)?) };
        let text = |name: &str| -> Result<ArrayRef> { Ok(cast(col(name)?, &DataType::Utf8)?) };
        let ids = text("ticket_id")?;
        let rated = cast(
            col("rated_at")?,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let satisfied = col("satisfied")?.as_boolean().clone();
        let bot = col("bot_involved")?.as_boolean().clone();
        let numeric: Vec<ArrayRef> = NUMERIC
            .iter()
            .map(|n| float(n.column))
            .collect::<Result<_>>()?;
        let levels: Vec<ArrayRef> = CATEGORICAL.iter().map(|c| text(c)).collect::<Result<_>>()?;
        let (ids, rated) = (
            ids.as_string::<i32>(),
            rated.as_primitive::<TimestampMicrosecondType>(),
        );
        for i in 0..b.num_rows() {
            let opt_f = |a: &ArrayRef| {
                let a = a.as_primitive::<Float64Type>();
                (a.is_valid(i) && a.value(i).is_finite()).then(|| a.value(i))
            };
            out.push(Example {
                ticket_id: ids.value(i).to_string(),
                rated_at: rated.is_valid(i).then(|| rated.value(i)),
                satisfied: satisfied.is_valid(i).then(|| satisfied.value(i)),
                numeric: std::array::from_fn(|k| opt_f(&numeric[k])),
                bot: bot.is_valid(i) && bot.value(i),
                levels: std::array::from_fn(|k| {
                    let a = levels[k].as_string::<i32>();
                    a.is_valid(i).then(|| a.value(i).to_string())
                }),
            });
        }
    }
    Ok(out)
}

/// What is known of an open ticket so far (for scoring it live, as `stream` does): the
/// features of `prediction_features` up to now, with the resolution time so far.
#[derive(Debug, Clone, Default)]
pub struct SoFar {
    pub frt_hours: Option<f64>,
    pub ttr_hours: Option<f64>,
    pub reopens: f64,
    pub reassignments: f64,
    pub agent_hops: f64,
    pub channel_switches: f64,
    pub requester_messages: f64,
    pub sentiment_first: Option<f64>,
    pub sentiment_last: Option<f64>,
    pub sentiment_min: Option<f64>,
    pub bot: bool,
    pub channel: Option<String>,
    pub category: Option<String>,
    pub priority: Option<String>,
}

impl Example {
    /// An unrated example from what is known of a ticket so far.
    pub fn so_far(ticket_id: &str, s: &SoFar) -> Example {
        let value = |column: &str| match column {
            "frt_hours" => s.frt_hours,
            "ttr_hours" => s.ttr_hours,
            "reopens" => Some(s.reopens),
            "reassignments" => Some(s.reassignments),
            "agent_hops" => Some(s.agent_hops),
            "channel_switches" => Some(s.channel_switches),
            "requester_messages" => Some(s.requester_messages),
            "sentiment_first" => s.sentiment_first,
            "sentiment_last" => s.sentiment_last,
            "sentiment_min" => s.sentiment_min,
            "sentiment_trend" => Some(s.sentiment_last? - s.sentiment_first?),
            other => unreachable!("no live value for {other}"),
        };
        Example {
            ticket_id: ticket_id.to_string(),
            rated_at: None,
            satisfied: None,
            numeric: std::array::from_fn(|k| value(NUMERIC[k].column)),
            bot: s.bot,
            levels: [s.channel.clone(), s.category.clone(), s.priority.clone()],
        }
    }
}

/// What a column of the model's matrix means.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Column {
    /// A numeric feature, standardised: (transformed - mean) / sd; missing: the mean (0).
    Numeric {
        feature: usize,
        mean: f64,
        sd: f64,
    },
    /// 1 when the feature is missing (a duration not known, no scored requester message).
    Missing {
        feature: usize,
    },
    Bot,
    /// 1 for this level of a categorical feature (None: the shared `other` column).
    Level {
        feature: usize,
        level: Option<String>,
    },
}

/// The columns learned from the training rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Design {
    columns: Vec<Column>,
    /// Per categorical feature: its reference level (the most common), its levels' columns and
    /// the `other` column.
    levels: Vec<Levels>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Levels {
    reference: Option<String>,
    columns: std::collections::HashMap<String, usize>,
    other: Option<usize>,
}

/// A driver: one change to a ticket, applied to every training row to see how P(satisfied)
/// moves on average.
#[derive(Debug, Clone)]
pub struct Change {
    /// What changes, in a manager's words.
    pub name: String,
    kind: ChangeKind,
}

#[derive(Debug, Clone)]
enum ChangeKind {
    /// This column, from its value to its value plus `delta` (standardised units).
    Shift { column: usize, delta: f64 },
    /// A log(1 + x) column, from x to `factor` times x.
    Scale {
        column: usize,
        mean: f64,
        sd: f64,
        factor: f64,
    },
    /// From the group's reference (every column of `group` 0) to `column` set.
    Set { column: usize, group: Vec<usize> },
}

impl Design {
    /// Learns means, spreads and levels from `train`.
    pub fn learn(train: &[&Example]) -> Design {
        let mut columns = Vec::new();
        for (k, n) in NUMERIC.iter().enumerate() {
            let values: Vec<f64> = train
                .iter()
                .filter_map(|e| e.numeric[k].map(|v| transform(n, v)))
                .collect();
            if values.len() >= 2 {
                let mean = values.iter().sum::<f64>() / values.len() as f64;
                let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>()
                    / (values.len() - 1) as f64;
                if var > 1e-12 {
                    columns.push(Column::Numeric {
                        feature: k,
                        mean,
                        sd: var.sqrt(),
                    });
                }
            }
            // One missing flag per group of features missing together: each duration, and the
            // sentiment columns once (they are NULL together).
            let missing = train.iter().filter(|e| e.numeric[k].is_none()).count();
            let heads_group = !n.column.starts_with("sentiment_") || n.column == "sentiment_first";
            if heads_group && missing > 0 && missing < train.len() {
                columns.push(Column::Missing { feature: k });
            }
        }
        if train.iter().any(|e| e.bot) && !train.iter().all(|e| e.bot) {
            columns.push(Column::Bot);
        }
        let mut levels = Vec::new();
        for k in 0..CATEGORICAL.len() {
            let mut counts: std::collections::BTreeMap<Option<&str>, usize> = Default::default();
            for e in train {
                *counts.entry(e.levels[k].as_deref()).or_default() += 1;
            }
            // The reference: the most common known level (ties: the first by name).
            let reference = counts
                .iter()
                .filter(|(l, _)| l.is_some())
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .and_then(|(l, _)| l.map(str::to_string));
            let mut group = Levels {
                reference: reference.clone(),
                ..Levels::default()
            };
            let mut other = 0;
            for (level, n) in &counts {
                match level {
                    Some(l) if *n >= MIN_LEVEL => {
                        if reference.as_deref() != Some(l) {
                            group.columns.insert(l.to_string(), columns.len());
                            columns.push(Column::Level {
                                feature: k,
                                level: Some(l.to_string()),
                            });
                        }
                    }
                    _ => other += n,
                }
            }
            if other >= MIN_LEVEL && other < train.len() {
                group.other = Some(columns.len());
                columns.push(Column::Level {
                    feature: k,
                    level: None,
                });
            }
            levels.push(group);
        }
        Design { columns, levels }
    }

    /// The column a ticket's level of categorical feature `k` sets, if any (its reference sets
    /// none; rare, unseen and missing levels set `other` when there is one).
    fn level_column(&self, k: usize, e: &Example) -> Option<usize> {
        let g = &self.levels[k];
        match e.levels[k].as_deref() {
            Some(l) if g.reference.as_deref() == Some(l) => None,
            Some(l) if g.columns.contains_key(l) => Some(g.columns[l]),
            _ => g.other,
        }
    }

    /// The model's matrix for these rows.
    pub fn matrix(&self, rows: &[&Example]) -> Array2<f64> {
        let mut x = Array2::zeros((rows.len(), self.columns.len()));
        for (i, e) in rows.iter().enumerate() {
            for (j, c) in self.columns.iter().enumerate() {
                x[[i, j]] = match c {
                    Column::Numeric { feature, mean, sd } => e.numeric[*feature]
                        .map_or(0.0, |v| (transform(&NUMERIC[*feature], v) - mean) / sd),
                    Column::Missing { feature } => flag(e.numeric[*feature].is_none()),
                    Column::Bot => flag(e.bot),
                    Column::Level { .. } => 0.0,
                };
            }
            for k in 0..CATEGORICAL.len() {
                if let Some(j) = self.level_column(k, e) {
                    x[[i, j]] = 1.0;
                }
            }
        }
        x
    }

    /// The drivers this design can report: one per numeric column (its step), the bot, and
    /// each level against its feature's reference.
    pub fn changes(&self) -> Vec<Change> {
        let mut out = Vec::new();
        for (j, c) in self.columns.iter().enumerate() {
            let (name, kind) = match c {
                Column::Numeric { feature, mean, sd } => {
                    let n = &NUMERIC[*feature];
                    let kind = if n.log {
                        ChangeKind::Scale {
                            column: j,
                            mean: *mean,
                            sd: *sd,
                            factor: n.step,
                        }
                    } else {
                        ChangeKind::Shift {
                            column: j,
                            delta: n.step / sd,
                        }
                    };
                    (n.per.to_string(), kind)
                }
                Column::Missing { .. } => continue,
                Column::Bot => (
                    "a bot took part (versus humans only)".to_string(),
                    ChangeKind::Set {
                        column: j,
                        group: vec![j],
                    },
                ),
                Column::Level { feature, level } => {
                    let g = &self.levels[*feature];
                    let mut group: Vec<usize> = g.columns.values().copied().collect();
                    group.extend(g.other);
                    let level = level.as_deref().unwrap_or("other");
                    let reference = g.reference.as_deref().unwrap_or("?");
                    (
                        format!("{} {level} (versus {reference})", CATEGORICAL[*feature]),
                        ChangeKind::Set { column: j, group },
                    )
                }
            };
            out.push(Change { name, kind });
        }
        out
    }
}

impl Change {
    /// The mean change of P(satisfied) over the rows of `x` (a training matrix) under a model
    /// of `weights` and `intercept`, in probability (0.05: five points).
    pub fn effect(&self, x: &Array2<f64>, weights: &[f64], intercept: f64) -> f64 {
        let p = |row: &[f64]| {
            let z: f64 = row.iter().zip(weights).map(|(a, w)| a * w).sum::<f64>() + intercept;
            1.0 / (1.0 + (-z).exp())
        };
        let mut total = 0.0;
        let mut row = vec![0.0; x.ncols()];
        for r in x.rows() {
            row.iter_mut().zip(r.iter()).for_each(|(a, b)| *a = *b);
            let (before, after) = match &self.kind {
                ChangeKind::Shift { column, delta } => {
                    let before = p(&row);
                    row[*column] += delta;
                    (before, p(&row))
                }
                ChangeKind::Scale {
                    column,
                    mean,
                    sd,
                    factor,
                } => {
                    let before = p(&row);
                    let x = (row[*column] * sd + mean).exp() - 1.0;
                    row[*column] = ((factor * x).ln_1p() - mean) / sd;
                    (before, p(&row))
                }
                ChangeKind::Set { column, group } => {
                    group.iter().for_each(|g| row[*g] = 0.0);
                    let before = p(&row);
                    row[*column] = 1.0;
                    (before, p(&row))
                }
            };
            total += after - before;
        }
        total / x.nrows().max(1) as f64
    }
}

fn flag(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

fn transform(n: &Numeric, v: f64) -> f64 {
    if n.log { v.max(0.0).ln_1p() } else { v }
}

#[cfg(test)]
impl Example {
    /// A resolved ticket with only these fields known (tests).
    pub(crate) fn for_test(
        id: usize,
        rated_at: Option<Micros>,
        satisfied: Option<bool>,
        reassignments: f64,
        channel: &str,
    ) -> Example {
        let mut numeric = [None; NUMERIC.len()];
        numeric[3] = Some(reassignments);
        Example {
            ticket_id: format!("T{id:05}"),
            rated_at,
            satisfied,
            numeric,
            bot: false,
            levels: [Some(channel.to_string()), None, None],
        }
    }
}
