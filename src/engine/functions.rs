//! deskpulse's SQL functions, all registered by [`register_functions`] (one place, so that every
//! session that runs our SQL, local or on a cluster, gets the same set):
//! - `sentiment(text)`: VADER compound score (NULL for NULL), in whatever language the text is:
//!   exactly the reference VADER (the lake's `sentiment` columns are NULL for other languages);
//! - `lang(text)`: the detected language, ISO 639-1 (NULL for NULL or a text without letters);
//! - `wilson_low(successes, n)`, `wilson_high(successes, n)`: 95% Wilson score interval of a
//!   proportion (NULL when n = 0);
//! - `business_seconds(start, end)`: seconds of the configured working hours between two times;
//! - `iso_week(ts)`: the ISO week of a time in the calendar's zone, as `2026-W47`;
//! - `ticket_pass(ticket_id, passes)`: which of `passes` passes a ticket belongs to (a stable
//!   64-bit FNV-1a hash of the id, modulo `passes`); the engine samples ticket ids with it to
//!   draw the ranges of its per-ticket passes;
//! - `median(x)`: DataFusion's exact median, replaced by one that keeps counts of equal values
//!   ([`super::median`]), so its memory grows with distinct values rather than rows;
//! - `last_in_order(value, at, seq, id)`: `last_value(value ORDER BY at, seq NULLS FIRST, id)`,
//!   the value of a group's last interaction, in a third of the time ([`super::last_in_order`]);
//! - `count_distinct_few(value)`: `COUNT(DISTINCT value)` in 16 bytes a group when the column
//!   has few distinct values, so it can sit beside other aggregates ([`super::count_distinct_few`]).

use std::sync::Arc;

use chrono::{DateTime, Datelike, Offset, TimeZone};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Float64Builder, Int64Array, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type, TimestampMicrosecondType};
use datafusion::common::Result;
use datafusion::logical_expr::{
    AggregateUDF, ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};
use datafusion::prelude::SessionContext;

use crate::calendar::Calendar;
use crate::model::timestamp_type;

/// Adds every deskpulse function to a session.
pub fn register_functions(ctx: &SessionContext, calendar: &Calendar) {
    for f in scalar_functions(calendar) {
        ctx.register_udf(f);
    }
    for f in aggregate_functions() {
        ctx.register_udaf(f);
    }
}

/// deskpulse's scalar functions, with `calendar` for those that need business time.
pub fn scalar_functions(calendar: &Calendar) -> Vec<ScalarUDF> {
    vec![
        ScalarUDF::from(Sentiment::new()),
        ScalarUDF::from(Lang::new()),
        ScalarUDF::from(Wilson::new(true)),
        ScalarUDF::from(Wilson::new(false)),
        ScalarUDF::from(BusinessSeconds::new(calendar.clone())),
        ScalarUDF::from(IsoWeek::new(calendar.clone())),
        ScalarUDF::from(TicketPass::new()),
    ]
}

/// deskpulse's aggregate functions (its `median` replaces DataFusion's).
pub fn aggregate_functions() -> Vec<AggregateUDF> {
    vec![
        AggregateUDF::from(super::median::Median::new()),
        AggregateUDF::from(super::last_in_order::LastInOrder::new()),
        AggregateUDF::from(super::count_distinct_few::CountDistinctFew::new()),
    ]
}

/// The calendar a function computes with, for the functions that carry one
/// (`business_seconds`, `iso_week`); a cluster sends it along with the function's name.
pub fn calendar_of(f: &ScalarUDF) -> Option<&Calendar> {
    let inner = f.inner();
    inner
        .downcast_ref::<BusinessSeconds>()
        .map(|b| &b.calendar)
        .or_else(|| inner.downcast_ref::<IsoWeek>().map(|w| &w.calendar))
}

/// The function `name` computing with `calendar`, if it is one that carries a calendar.
pub fn with_calendar(name: &str, calendar: Calendar) -> Option<ScalarUDF> {
    match name {
        "business_seconds" => Some(ScalarUDF::from(BusinessSeconds::new(calendar))),
        "iso_week" => Some(ScalarUDF::from(IsoWeek::new(calendar))),
        _ => None,
    }
}

/// The 95% Wilson score interval of `successes` out of `n`.
pub fn wilson(successes: f64, n: f64) -> Option<(f64, f64)> {
    if n <= 0.0 {
        return None;
    }
    let z = 1.959_963_984_540_054_f64;
    let p = successes / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt()) / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

fn arrays(args: &ScalarFunctionArgs) -> Result<Vec<ArrayRef>> {
    ColumnarValue::values_to_arrays(&args.args)
}

/// A column as f64 whatever its numeric type.
fn as_f64(a: &ArrayRef) -> Result<Float64Array> {
    let cast = datafusion::arrow::compute::cast(a, &DataType::Float64)?;
    Ok(cast.as_primitive::<Float64Type>().clone())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Sentiment {
    signature: Signature,
}

/// One text argument, of any string type.
fn text_signature() -> Signature {
    Signature::one_of(
        vec![
            TypeSignature::Exact(vec![DataType::Utf8]),
            TypeSignature::Exact(vec![DataType::Utf8View]),
            TypeSignature::Exact(vec![DataType::LargeUtf8]),
        ],
        Volatility::Immutable,
    )
}

/// The first argument as `Utf8`.
fn text_arg(args: &ScalarFunctionArgs) -> Result<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(
        &arrays(args)?[0],
        &DataType::Utf8,
    )?)
}

impl Sentiment {
    fn new() -> Self {
        Sentiment {
            signature: text_signature(),
        }
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Lang {
    signature: Signature,
}

impl Lang {
    fn new() -> Self {
        Lang {
            signature: text_signature(),
        }
    }
}

impl ScalarUDFImpl for Lang {
    fn name(&self) -> &str {
        "lang"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = text_arg(&args)?;
        let mut out = StringBuilder::new();
        for t in text.as_string::<i32>() {
            out.append_option(t.and_then(crate::sentiment::lang::detect));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

impl ScalarUDFImpl for Sentiment {
    fn name(&self) -> &str {
        "sentiment"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let text = text_arg(&args)?;
        let text = text.as_string::<i32>();
        let v = crate::sentiment::vader();
        let out: Float64Array = text
            .iter()
            .map(|t| t.map(|t| v.polarity_scores(t).compound))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct Wilson {
    low: bool,
    signature: Signature,
}

impl Wilson {
    fn new(low: bool) -> Self {
        let numeric = [DataType::Int64, DataType::Float64];
        let mut sigs = Vec::new();
        for a in &numeric {
            for b in &numeric {
                sigs.push(TypeSignature::Exact(vec![a.clone(), b.clone()]));
            }
        }
        Wilson {
            low,
            signature: Signature::one_of(sigs, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for Wilson {
    fn name(&self) -> &str {
        if self.low {
            "wilson_low"
        } else {
            "wilson_high"
        }
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        Ok(arg_types.iter().map(|_| DataType::Float64).collect())
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let (k, n) = (as_f64(&a[0])?, as_f64(&a[1])?);
        let mut out = Float64Builder::with_capacity(k.len());
        for i in 0..k.len() {
            if k.is_null(i) || n.is_null(i) {
                out.append_null();
                continue;
            }
            match wilson(k.value(i), n.value(i)) {
                Some((lo, hi)) => out.append_value(if self.low { lo } else { hi }),
                None => out.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct BusinessSeconds {
    calendar: Calendar,
    signature: Signature,
}

impl BusinessSeconds {
    pub fn new(calendar: Calendar) -> Self {
        BusinessSeconds {
            calendar,
            signature: Signature::exact(
                vec![timestamp_type(), timestamp_type()],
                Volatility::Immutable,
            ),
        }
    }
}

impl ScalarUDFImpl for BusinessSeconds {
    fn name(&self) -> &str {
        "business_seconds"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let (s, e) = (
            a[0].as_primitive::<TimestampMicrosecondType>(),
            a[1].as_primitive::<TimestampMicrosecondType>(),
        );
        let pairs = s.iter().zip(e.iter()).map(|(s, e)| Some((s?, e?)));
        let out = Float64Array::from(self.calendar.business_seconds_of(pairs));
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct IsoWeek {
    calendar: Calendar,
    signature: Signature,
}

impl IsoWeek {
    fn new(calendar: Calendar) -> Self {
        IsoWeek {
            calendar,
            signature: Signature::exact(vec![timestamp_type()], Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for IsoWeek {
    fn name(&self) -> &str {
        "iso_week"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let t = a[0].as_primitive::<TimestampMicrosecondType>();
        Ok(ColumnarValue::Array(Arc::new(self.labels(t.iter()))))
    }
}

const DAY_MICROS: i64 = 86_400_000_000;

impl IsoWeek {
    /// The week labels of some instants. A zone conversion and a label per row were a fifth of
    /// the time of `kpis`; a batch's rows fall on a few days, so each UTC day is worked out
    /// once: a day that starts and ends at the same offset and in the same week is in that week
    /// throughout (local time moves with UTC), any other day (a DST change, a week's start in
    /// a zone other than UTC) is worked out per row.
    fn labels(&self, times: impl Iterator<Item = Option<i64>>) -> StringArray {
        let mut days: foldhash::HashMap<i64, Option<String>> = Default::default();
        let mut out = StringBuilder::new();
        for t in times {
            let Some(t) = t else {
                out.append_null();
                continue;
            };
            let day = days
                .entry(t.div_euclid(DAY_MICROS))
                .or_insert_with_key(|&d| self.day_label(d));
            match day {
                Some(label) => out.append_value(label),
                None => out.append_option(self.label(t)),
            }
        }
        out.finish()
    }

    /// The label every instant of UTC day `day` has, if they all have the same one.
    fn day_label(&self, day: i64) -> Option<String> {
        let start = day.checked_mul(DAY_MICROS)?;
        let end = start.checked_add(DAY_MICROS - 1)?;
        let offset = |t| {
            let d = DateTime::from_timestamp_micros(t)?;
            Some(
                self.calendar
                    .tz
                    .offset_from_utc_datetime(&d.naive_utc())
                    .fix(),
            )
        };
        let label = self.label(start)?;
        (offset(start)? == offset(end)? && self.label(end)? == label).then_some(label)
    }

    /// The label of one instant (None outside chrono's range of dates).
    fn label(&self, t: i64) -> Option<String> {
        let w = DateTime::from_timestamp_micros(t)?
            .with_timezone(&self.calendar.tz)
            .iso_week();
        Some(format!("{}-W{:02}", w.year(), w.week()))
    }
}

/// The pass of a ticket id among `passes`: FNV-1a, so that it never changes between runs,
/// versions or machines (std's hasher is seeded per process).
pub fn ticket_pass(ticket_id: &str, passes: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ticket_id.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    h % passes.max(1)
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TicketPass {
    signature: Signature,
}

impl TicketPass {
    fn new() -> Self {
        let sigs = [DataType::Utf8, DataType::Utf8View, DataType::LargeUtf8]
            .into_iter()
            .map(|t| TypeSignature::Exact(vec![t, DataType::Int64]))
            .collect();
        TicketPass {
            signature: Signature::one_of(sigs, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for TicketPass {
    fn name(&self) -> &str {
        "ticket_pass"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let a = arrays(&args)?;
        let ids = datafusion::arrow::compute::cast(&a[0], &DataType::Utf8)?;
        let passes = a[1].as_primitive::<Int64Type>();
        let out: Int64Array = ids
            .as_string::<i32>()
            .iter()
            .zip(passes.iter())
            .map(|(id, n)| Some(ticket_pass(id?, n?.max(1) as u64) as i64))
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 8 of 10: the textbook interval is 0.4902 … 0.9433.
        let (lo, hi) = wilson(8.0, 10.0).unwrap();
        assert!(
            (lo - 0.4902).abs() < 1e-4 && (hi - 0.9433).abs() < 1e-4,
            "{lo} {hi}"
        );
        let (lo, hi) = wilson(0.0, 5.0).unwrap();
        assert_eq!(lo, 0.0);
        assert!((hi - 0.4345).abs() < 1e-4);
        assert_eq!(wilson(0.0, 0.0), None);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// The labels worked out a day at a time are those of each instant on its own, in zones
        /// with DST changes (at midnight too), offsets of 45 and 30 minutes, half-hour DST and
        /// local mean time before 1900.
        #[test]
        fn iso_week_by_day_is_iso_week_per_instant(
            zone in proptest::sample::select(vec![
                "UTC", "Europe/Berlin", "America/Sao_Paulo", "Asia/Kathmandu",
                "Australia/Lord_Howe", "America/Havana", "Pacific/Apia", "Europe/Amsterdam",
            ]),
            base in -3_000_000_000i64..2_000_000_000,
            offsets in proptest::collection::vec(0i64..40 * 86_400_000_000, 1..400),
            nulls in proptest::collection::vec(proptest::bool::weighted(0.05), 400),
        ) {
            let calendar = Calendar { tz: zone.parse().unwrap(), ..Calendar::default() };
            let f = IsoWeek::new(calendar);
            let times: Vec<Option<i64>> = offsets
                .iter()
                .zip(&nulls)
                .map(|(o, null)| (!null).then_some(base * 1_000_000 + o))
                .collect();
            let got = f.labels(times.iter().copied());
            for (i, t) in times.iter().enumerate() {
                let want = t.and_then(|t| f.label(t));
                let got = got.is_valid(i).then(|| got.value(i).to_string());
                proptest::prop_assert_eq!(got, want, "{} at {:?}", zone, t);
            }
        }
    }

    #[test]
    fn iso_week_labels_weeks_at_their_boundaries() {
        // Monday 2026-03-02 00:00 in Berlin is 2026-03-01 23:00 UTC.
        let berlin = IsoWeek::new(Calendar {
            tz: chrono_tz::Europe::Berlin,
            ..Calendar::default()
        });
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().timestamp_micros();
        let times = [
            at("2026-03-01T22:59:59.999999Z"),
            at("2026-03-01T23:00:00Z"),
            at("2026-03-01T12:00:00Z"),
        ];
        let got = berlin.labels(times.iter().map(|&t| Some(t)));
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            [Some("2026-W09"), Some("2026-W10"), Some("2026-W09")]
        );
        let utc = IsoWeek::new(Calendar::default());
        let got = utc.labels(
            [
                Some(at("2026-03-01T23:00:00Z")),
                None,
                Some(at("2026-03-02T00:00:00Z")),
            ]
            .into_iter(),
        );
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            [Some("2026-W09"), None, Some("2026-W10")]
        );
    }

    #[test]
    fn ticket_pass_is_stable_and_spreads_ids() {
        // FNV-1a's published value for "a": a pass never depends on the process or the machine.
        assert_eq!(ticket_pass("a", 1 << 63), 0xaf63_dc4c_8601_ec8c - (1 << 63));
        assert_eq!(ticket_pass("INC0001", 1), 0);
        let mut counts = [0u32; 4];
        for i in 0..4000 {
            counts[ticket_pass(&format!("INC{i:07}"), 4) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[tokio::test]
    async fn median_is_deskpulses_through_sql() {
        let ctx = SessionContext::new();
        register_functions(&ctx, &Calendar::default());
        let registered = ctx.state().aggregate_functions()["median"].clone();
        assert!(registered.inner().is::<crate::engine::median::Median>());
        let batches = ctx
            .sql("SELECT median(x) AS m FROM (VALUES (4), (1), (NULL), (3), (2)) AS t(x)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let m = batches[0].column(0).as_primitive::<Float64Type>().value(0);
        assert_eq!(m, 2.5);
    }
}
