//! The rows the reports read, typed: one struct per metric view, holding the columns the report
//! uses. [`read`] checks that every field is a column of the view before it reads the batches
//! (with `serde_arrow`), so a renamed or missing column fails at the query, naming the column,
//! instead of drawing a chart that says "no data".

use anyhow::{Context, Result};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{FieldRef, Schema};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::model::Micros;

/// The rows of metric view `view` (its `schema` and result `batches`) as `T`.
pub fn read<T: DeserializeOwned>(
    view: &str,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<Vec<T>> {
    // serde fills a missing `Option` field with `None`, so check the names first.
    let fields = Vec::<FieldRef>::from_type::<T>(TracingOptions::default())
        .with_context(|| format!("the fields the report reads from {view}"))?;
    let missing: Vec<&str> = fields
        .iter()
        .map(|f| f.name().as_str())
        .filter(|name| schema.field_with_name(name).is_err())
        .collect();
    anyhow::ensure!(
        missing.is_empty(),
        "metric view {view} has no column {} (the report reads it; queries/{view}.sql)",
        missing.join(", ")
    );
    let mut rows = Vec::new();
    for batch in batches {
        let part: Vec<T> = serde_arrow::from_record_batch(batch)
            .with_context(|| format!("reading the rows of metric view {view}"))?;
        rows.extend(part);
    }
    Ok(rows)
}

/// `kpis`, one row per week.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Kpis {
    pub period: String,
    pub opened: u64,
    pub resolved: u64,
    pub median_frt_seconds: Option<f64>,
    pub median_ttr_seconds: Option<f64>,
    pub fcr_rate: Option<f64>,
    pub fcr_low: Option<f64>,
    pub fcr_high: Option<f64>,
    pub reopen_rate: Option<f64>,
    pub reopen_low: Option<f64>,
    pub reopen_high: Option<f64>,
    pub sla_known: u64,
    pub sla_rate: Option<f64>,
    pub sla_low: Option<f64>,
    pub sla_high: Option<f64>,
    pub offered: u64,
    pub response_rate: Option<f64>,
    pub response_rate_low: Option<f64>,
    pub response_rate_high: Option<f64>,
    pub ratings: u64,
    pub csat: Option<f64>,
    pub csat_low: Option<f64>,
    pub csat_high: Option<f64>,
    pub ratings_without_ticket: u64,
    pub frt_left_out: u64,
    pub ttr_left_out: u64,
    pub texts: u64,
    pub texts_scored: u64,
    pub texts_other_language: u64,
    pub texts_not_analysed: u64,
}

/// `channel_satisfaction`, one row per week and channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChannelWeek {
    pub period: String,
    pub channel: String,
    pub ratings: u64,
    pub csat: Option<f64>,
    pub csat_low: Option<f64>,
    pub csat_high: Option<f64>,
    pub csat_adjusted: Option<f64>,
    pub comments: u64,
    pub negative_comment_share: Option<f64>,
    pub resolved: u64,
    pub offered: u64,
    pub response_rate: Option<f64>,
    pub median_frt_seconds: Option<f64>,
    pub median_ttr_seconds: Option<f64>,
}

/// `estimated_satisfaction`, one row per channel of the week (none without a recorded model).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EstimatedChannel {
    pub channel: String,
    pub resolved: u64,
    pub rated: u64,
    pub survey_csat: Option<f64>,
    pub survey_csat_low: Option<f64>,
    pub survey_csat_high: Option<f64>,
    pub predicted: u64,
    pub not_covered: u64,
    pub coverage: Option<f64>,
    pub estimated_csat: Option<f64>,
    pub estimated_csat_low: Option<f64>,
    pub estimated_csat_high: Option<f64>,
    pub model_id: String,
}

/// `backlog_trend`, one row per week: open tickets at its end.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct BacklogWeek {
    pub week: String,
    pub open_tickets: u64,
}

/// `backlog`, one row per age bucket at the week's end.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct AgeBucket {
    pub bucket: String,
    pub open_tickets: u64,
    pub stale_tickets: u64,
}

/// `comment_sentiment`, one row per compound-score bin.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct SentimentBin {
    pub low: f64,
    pub comments: u64,
}

/// `escalations`, one row per dissatisfied rating.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Escalation {
    pub rated_at: Micros,
    pub assignment_group: Option<String>,
    pub agent: Option<String>,
    pub ticket_id: String,
    pub score_5: Option<f64>,
    pub rating_channel: Option<String>,
    pub ticket_channel: Option<String>,
    pub category: Option<String>,
    pub comment: Option<String>,
}

/// `pair_summary`, one row per value of a dimension (responder role, responder, channel, ...).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PairSummary {
    pub dimension: String,
    pub value: Option<String>,
    pub pairs: u64,
    pub mean_pair_score: Option<f64>,
    pub mean_rating: Option<f64>,
    pub mean_sentiment_delta: Option<f64>,
    pub median_latency_seconds: Option<f64>,
}

/// `pair_matrix`, one row per responder role and request channel.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct PairCell {
    pub responder_role: String,
    pub channel: String,
    pub pairs: u64,
    pub mean_pair_score: Option<f64>,
    pub score_low: Option<f64>,
    pub score_high: Option<f64>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    fn batch(columns: &[(&str, DataType)]) -> RecordBatch {
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ));
        let arrays = columns
            .iter()
            .map(|(_, t)| -> datafusion::arrow::array::ArrayRef {
                match t {
                    DataType::Utf8 => Arc::new(StringArray::from(vec!["voice"])),
                    DataType::Int64 => Arc::new(Int64Array::from(vec![7])),
                    _ => Arc::new(Float64Array::from(vec![Some(0.5)])),
                }
            })
            .collect();
        RecordBatch::try_new(schema, arrays).unwrap()
    }

    const CELL: &[(&str, DataType)] = &[
        ("responder_role", DataType::Utf8),
        ("channel", DataType::Utf8),
        ("pairs", DataType::Int64),
        ("mean_pair_score", DataType::Float64),
        ("score_low", DataType::Float64),
        ("score_high", DataType::Float64),
    ];

    #[test]
    fn reads_typed_rows_from_a_batch() {
        let b = batch(CELL);
        let rows: Vec<PairCell> =
            read("pair_matrix", &b.schema(), std::slice::from_ref(&b)).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].channel.as_str(), rows[0].pairs), ("voice", 7));
        assert_eq!(rows[0].score_high, Some(0.5));
    }

    #[test]
    fn a_renamed_column_fails_with_its_name_even_when_optional() {
        // `score_high` is an Option: without the check serde would read it as None.
        let mut cols = CELL.to_vec();
        cols[5].0 = "score_top";
        let b = batch(&cols);
        let err =
            read::<PairCell>("pair_matrix", &b.schema(), std::slice::from_ref(&b)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "metric view pair_matrix has no column score_high (the report reads it; \
             queries/pair_matrix.sql)"
        );
        // With no rows at all, the schema still decides.
        assert!(read::<PairCell>("pair_matrix", &b.schema(), &[]).is_err());
    }

    #[test]
    fn a_column_of_the_wrong_type_fails_naming_the_view() {
        let mut cols = CELL.to_vec();
        cols[2].1 = DataType::Utf8;
        let b = batch(&cols);
        let err =
            read::<PairCell>("pair_matrix", &b.schema(), std::slice::from_ref(&b)).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("reading the rows of metric view pair_matrix"),
            "{err:#}"
        );
    }
}
