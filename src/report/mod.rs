//! Chart reports (DESIGN 6): the weekly manager report and the CIO dashboard.
//!
//! [`gather`] runs the metric views of `queries/` for one ISO week (and the weeks before it, for
//! trends) and keeps every table as rows; [`weekly`] and [`dashboard`] turn those rows into
//! charts ([`charts`]) and self-contained HTML pages ([`page`]: inline CSS and SVG, every piece of
//! ticket text escaped by the template engine).

pub mod browser;
pub mod charts;
mod dashboard;
mod page;
mod weekly;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;
use serde_json::{Map, Value};

pub use dashboard::dashboard;
pub use weekly::weekly;

use crate::calendar::Week;
use crate::config::Config;
use crate::engine::output::{Format, render};
use crate::engine::{Engine, Params};
use crate::lake::{Lake, write_atomic};
use crate::metrics::followups::{self, Plan, Throttles};
use crate::metrics::ttr_shift::{Adopted, SMALL_SAMPLE, Shift, ShiftOptions, ttr_shift_each};
use crate::model::Micros;

/// Screenshot sizes (pixels) of the weekly report's top and of the whole dashboard.
pub const WEEKLY_SHOT: (u32, u32) = (1200, 4200);
pub const DASHBOARD_SHOT: (u32, u32) = (1200, 1700);

/// Weeks of history behind the volume and TTR chart (seven months: long enough to show a launch
/// with weeks on both sides).
pub const HISTORY_WEEKS: usize = 30;
/// Weeks of the CSAT trend and the dashboard's sparklines.
pub const TREND_WEEKS: usize = 12;
/// Weeks of pairs behind the responder ranking: one week rarely has enough pairs per person.
pub const PAIR_WEEKS: usize = 4;
/// A responder is ranked only with at least this many pairs.
pub const MIN_PAIRS: u64 = 10;

/// One row of a metric table, as JSON (nulls left out).
pub type Row = Map<String, Value>;

/// A metric table: its rows, kept for charts and pages and written as CSV and JSON.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub csv: String,
    pub rows: Vec<Row>,
}

impl Table {
    fn from_batches(name: &str, batches: &[RecordBatch]) -> Result<Table> {
        let json = render(batches, Format::Json)?;
        Ok(Table {
            name: name.to_string(),
            csv: render(batches, Format::Csv)?,
            rows: serde_json::from_str(&json)?,
        })
    }

    fn from_rows<T: Serialize>(name: &str, rows: &[T], csv: String) -> Result<Table> {
        let rows = rows
            .iter()
            .map(|r| match serde_json::to_value(r)? {
                Value::Object(m) => Ok(m),
                other => anyhow::bail!("table {name}: a row is not an object: {other}"),
            })
            .collect::<Result<_>>()?;
        Ok(Table {
            name: name.to_string(),
            csv,
            rows,
        })
    }
}

/// A number from a row (missing or null: `None`).
pub fn num(row: &Row, key: &str) -> Option<f64> {
    row.get(key).and_then(Value::as_f64)
}

/// A count from a row (missing: 0).
pub fn count(row: &Row, key: &str) -> u64 {
    row.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The week's data-quality panel, from its `kpis` row: the ratings placed on a ticket, the
/// tickets left out of first response and resolution times (timestamps before opening), and the
/// texts not scored (another language, or not analysed).
pub fn quality(data: &Data) -> Value {
    let row = data.week_rows("kpis", "period", &data.week).pop();
    let n = |col: &str| row.map_or(0, |r| count(r, col));
    let ratings = n("ratings");
    let without = n("ratings_without_ticket");
    serde_json::json!({
        "ratings": ratings,
        "ratings_placed": ratings - without,
        "ratings_without_ticket": without,
        "resolved": n("resolved"),
        "ttr_left_out": n("ttr_left_out"),
        "opened": n("opened"),
        "frt_left_out": n("frt_left_out"),
        "texts": n("texts"),
        "texts_scored": n("texts_scored"),
        "texts_other_language": n("texts_other_language"),
        "texts_not_analysed": n("texts_not_analysed"),
    })
}

/// A string from a row (missing: empty).
pub fn text<'a>(row: &'a Row, key: &str) -> &'a str {
    row.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Everything the reports show about one week.
pub struct Data {
    pub week: Week,
    pub previous: Week,
    /// The last [`HISTORY_WEEKS`] weeks, oldest first, ending with `week`.
    pub history: Vec<Week>,
    /// Metric tables by name (see [`gather`]).
    pub tables: BTreeMap<String, Table>,
    /// Follow-up targets of the week, after throttling.
    pub followups: Plan,
    /// Each adoption's TTR shift, or why there is none.
    pub adoptions: Vec<Adopted>,
}

impl Data {
    /// A table by name (every name [`gather`] fills is there).
    pub fn table(&self, name: &str) -> &Table {
        &self.tables[name]
    }

    /// Rows of a per-week table for `week`.
    pub fn week_rows<'a>(&'a self, table: &str, key: &str, week: &Week) -> Vec<&'a Row> {
        self.table(table)
            .rows
            .iter()
            .filter(|r| text(r, key) == week.label)
            .collect()
    }

    /// Writes every table as `<name>.csv` and `<name>.json` into `dir`.
    pub fn write_tables(&self, dir: &Path) -> Result<Vec<String>> {
        std::fs::create_dir_all(dir)?;
        let mut names = Vec::new();
        for t in self.tables.values() {
            write_atomic(&dir.join(format!("{}.csv", t.name)), t.csv.as_bytes())?;
            let json = serde_json::to_string_pretty(&t.rows)?;
            write_atomic(&dir.join(format!("{}.json", t.name)), json.as_bytes())?;
            names.push(t.name.clone());
        }
        Ok(names)
    }
}

fn weeks_back(config: &Config, week: &Week, n: usize) -> Vec<Week> {
    let mut out = vec![week.clone()];
    while out.len() < n {
        let before = config.calendar.previous_week(&out[out.len() - 1]);
        out.push(before);
    }
    out.reverse();
    out
}

/// Runs the metrics of one report week:
/// - over the last [`HISTORY_WEEKS`] weeks, per week: `kpis`, `channel_satisfaction`,
///   `backlog_trend`;
/// - over the week: `escalations`, `comment_sentiment`, `backlog` (at the week's end), and the
///   follow-up plan (`followups`, throttled as of the week's end);
/// - over the last [`PAIR_WEEKS`] weeks: `pair_summary` and `pair_matrix`;
/// - every adoption's TTR shift (`ttr_shift`) and its TTR distributions (`ttr_distribution`).
pub async fn gather(lake: &Lake, config: &Config, week: &Week) -> Result<Data> {
    let history = weeks_back(config, week, HISTORY_WEEKS);
    let period = |from: Micros, by_week: bool| Params {
        from: Some(from),
        to: Some(week.end),
        by_week,
        as_of: week.end,
        extra_adoptions: Vec::new(),
    };
    let mut tables = BTreeMap::new();
    let mut keep = |name: &str, batches: Vec<RecordBatch>| -> Result<()> {
        tables.insert(name.to_string(), Table::from_batches(name, &batches)?);
        Ok(())
    };

    let trend = Engine::open(lake, config, &period(history[0].start, true)).await?;
    for name in ["kpis", "channel_satisfaction", "backlog_trend"] {
        keep(name, trend.metric(name).await?)?;
    }
    let this_week = Engine::open(lake, config, &period(week.start, false)).await?;
    for name in ["escalations", "comment_sentiment", "backlog"] {
        keep(name, this_week.metric(name).await?)?;
    }
    let pair_from = history[HISTORY_WEEKS - PAIR_WEEKS].start;
    let pairs = Engine::open(lake, config, &period(pair_from, false)).await?;
    for name in ["pair_summary", "pair_matrix"] {
        keep(name, pairs.metric(name).await?)?;
    }

    let throttles = Throttles::from_config(config, week.end)?;
    let plan = followups::plan(&this_week, &throttles).await?;
    tables.insert(
        "followups".into(),
        Table::from_rows(
            "followups",
            &plan.targets,
            followups::to_csv(&plan.targets)?,
        )?,
    );

    let opts = ShiftOptions {
        seed: config.seed,
        ..ShiftOptions::default()
    };
    let adoptions = ttr_shift_each(&this_week, &opts).await?;
    let ok: Vec<&Shift> = adoptions
        .iter()
        .filter_map(|a| a.shift.as_ref().ok())
        .collect();
    tables.insert("ttr_shift".into(), shift_table(&ok)?);
    tables.insert("ttr_distribution".into(), distribution_table(&ok)?);

    Ok(Data {
        week: week.clone(),
        previous: config.calendar.previous_week(week),
        history,
        tables,
        followups: plan,
        adoptions,
    })
}

/// One row per adoption: the headline figures of its shift.
#[derive(Serialize)]
struct ShiftRow<'a> {
    adoption_id: &'a str,
    name: &'a str,
    launched_at: String,
    before_resolved: u64,
    after_resolved: u64,
    before_in_scope_per_week: f64,
    after_in_scope_per_week: f64,
    deflection: Option<f64>,
    before_median_ttr_hours: f64,
    after_median_ttr_hours: f64,
    median_change_hours: f64,
    median_change_low: f64,
    median_change_high: f64,
    mean_change_hours: f64,
    mean_change_low: f64,
    mean_change_high: f64,
    mix_hours: f64,
    within_hours: f64,
    before_csat: Option<f64>,
    after_csat: Option<f64>,
    small_sample: bool,
}

fn shift_table(shifts: &[&Shift]) -> Result<Table> {
    let rows: Vec<ShiftRow> = shifts
        .iter()
        .map(|s| ShiftRow {
            adoption_id: &s.adoption_id,
            name: &s.name,
            launched_at: crate::timeparse::format_micros(s.launched_at),
            before_resolved: s.before.resolved,
            after_resolved: s.after.resolved,
            before_in_scope_per_week: s.before.in_scope_per_week,
            after_in_scope_per_week: s.after.in_scope_per_week,
            deflection: s.deflection,
            before_median_ttr_hours: s.before.median_ttr_hours,
            after_median_ttr_hours: s.after.median_ttr_hours,
            median_change_hours: s.median_change.estimate,
            median_change_low: s.median_change.low,
            median_change_high: s.median_change.high,
            mean_change_hours: s.mean_change.estimate,
            mean_change_low: s.mean_change.low,
            mean_change_high: s.mean_change.high,
            mix_hours: s.mix_hours,
            within_hours: s.within_hours,
            before_csat: s.before.csat,
            after_csat: s.after.csat,
            small_sample: s.before.resolved < SMALL_SAMPLE || s.after.resolved < SMALL_SAMPLE,
        })
        .collect();
    Table::from_rows("ttr_shift", &rows, crate::engine::output::csv_of(&rows)?)
}

/// Histogram bins of TTR (hours) before and after one adoption.
#[derive(Debug, Clone, Serialize)]
pub struct Bin {
    pub adoption_id: String,
    pub low_hours: f64,
    /// `None` for the last, open-ended bin.
    pub high_hours: Option<f64>,
    pub before_tickets: u64,
    pub after_tickets: u64,
    pub before_share: f64,
    pub after_share: f64,
}

/// Bins shared by both windows: 12 equal bins up to the 95th percentile of both windows'
/// TTR together, then one bin for the rest (so a long tail does not squash the chart).
pub fn ttr_bins(s: &Shift) -> Vec<Bin> {
    let mut all: Vec<f64> = s
        .before_ttr_hours
        .iter()
        .chain(&s.after_ttr_hours)
        .copied()
        .collect();
    if all.is_empty() {
        return Vec::new();
    }
    all.sort_by(f64::total_cmp);
    let cap = crate::metrics::ttr_shift::quantile(&all, 0.95).max(1e-9);
    const N: usize = 12;
    let width = cap / N as f64;
    let bin = |h: f64| ((h / width).floor().max(0.0) as usize).min(N);
    let (mut b, mut a) = ([0u64; N + 1], [0u64; N + 1]);
    s.before_ttr_hours.iter().for_each(|h| b[bin(*h)] += 1);
    s.after_ttr_hours.iter().for_each(|h| a[bin(*h)] += 1);
    let share = |n: u64, of: usize| if of == 0 { 0.0 } else { n as f64 / of as f64 };
    (0..=N)
        .map(|i| Bin {
            adoption_id: s.adoption_id.clone(),
            low_hours: width * i as f64,
            high_hours: (i < N).then(|| width * (i + 1) as f64),
            before_tickets: b[i],
            after_tickets: a[i],
            before_share: share(b[i], s.before_ttr_hours.len()),
            after_share: share(a[i], s.after_ttr_hours.len()),
        })
        .collect()
}

fn distribution_table(shifts: &[&Shift]) -> Result<Table> {
    let rows: Vec<Bin> = shifts.iter().flat_map(|s| ttr_bins(s)).collect();
    Table::from_rows(
        "ttr_distribution",
        &rows,
        crate::engine::output::csv_of(&rows)?,
    )
}

/// A KPI of the week beside the previous week's, with its trend.
#[derive(Debug, Clone, Serialize)]
pub struct Tile {
    pub label: String,
    pub value: String,
    pub previous: String,
    /// The change, signed, in the KPI's unit (percentage points for rates).
    pub change: String,
    /// `better`, `worse` or `same`: whether the change is good news.
    pub verdict: &'static str,
    /// What the figure rests on, e.g. "412 ratings"; a small sample is flagged.
    pub basis: String,
    pub small_sample: bool,
    pub interval: Option<String>,
    /// One value per [`TREND_WEEKS`] week (for the sparkline).
    #[serde(skip)]
    pub trend: Vec<Option<f64>>,
}

/// How a KPI reads and which way is good.
struct Kpi {
    label: &'static str,
    table: &'static str,
    column: &'static str,
    /// The sample size column (or none).
    basis: Option<(&'static str, &'static str)>,
    interval: Option<(&'static str, &'static str)>,
    unit: Unit,
    higher_is_better: bool,
}

#[derive(Clone, Copy)]
enum Unit {
    Rate,
    Hours,
    Count,
}

impl Unit {
    fn show(self, v: Option<f64>) -> String {
        match (self, v) {
            (_, None) => "–".into(),
            (Unit::Rate, Some(v)) => format!("{:.1}%", v * 100.0),
            (Unit::Hours, Some(v)) => duration(v),
            (Unit::Count, Some(v)) => format!("{v:.0}"),
        }
    }

    fn delta(self, d: f64) -> String {
        match self {
            Unit::Rate => format!("{:+.1} pts", d * 100.0),
            Unit::Hours if d.abs() < 3600.0 => format!("{:+.0} min", d / 60.0),
            Unit::Hours => format!("{:+.1} h", d / 3600.0),
            Unit::Count => format!("{d:+.0}"),
        }
    }
}

/// Seconds for people: minutes under an hour, else hours.
pub fn duration(seconds: f64) -> String {
    if seconds.abs() < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

const KPIS: &[Kpi] = &[
    Kpi {
        label: "CSAT",
        table: "kpis",
        column: "csat",
        basis: Some(("ratings", "ratings")),
        interval: Some(("csat_low", "csat_high")),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "Response rate",
        table: "kpis",
        column: "response_rate",
        basis: Some(("offered", "surveys offered")),
        interval: Some(("response_rate_low", "response_rate_high")),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "First response (median)",
        table: "kpis",
        column: "median_frt_seconds",
        basis: Some(("opened", "tickets opened")),
        interval: None,
        unit: Unit::Hours,
        higher_is_better: false,
    },
    Kpi {
        label: "Time to resolve (median)",
        table: "kpis",
        column: "median_ttr_seconds",
        basis: Some(("resolved", "tickets resolved")),
        interval: None,
        unit: Unit::Hours,
        higher_is_better: false,
    },
    Kpi {
        label: "First-contact resolution",
        table: "kpis",
        column: "fcr_rate",
        basis: Some(("resolved", "tickets resolved")),
        interval: Some(("fcr_low", "fcr_high")),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "Backlog (open at week end)",
        table: "backlog_trend",
        column: "open_tickets",
        basis: None,
        interval: None,
        unit: Unit::Count,
        higher_is_better: false,
    },
    Kpi {
        label: "Reopen rate",
        table: "kpis",
        column: "reopen_rate",
        basis: Some(("resolved", "tickets resolved")),
        interval: Some(("reopen_low", "reopen_high")),
        unit: Unit::Rate,
        higher_is_better: false,
    },
    Kpi {
        label: "SLA attainment",
        table: "kpis",
        column: "sla_rate",
        basis: Some(("sla_known", "tickets with an SLA")),
        interval: Some(("sla_low", "sla_high")),
        unit: Unit::Rate,
        higher_is_better: true,
    },
];

/// The dashboard's six tiles come first in [`KPIS`]; the weekly report shows them all.
pub const DASHBOARD_TILES: usize = 6;

/// The KPI tiles of the week.
pub fn tiles(data: &Data) -> Vec<Tile> {
    KPIS.iter()
        .map(|k| {
            let row = |w: &Week| data.week_rows(k.table, week_key(k.table), w).pop();
            let (now, before) = (row(&data.week), row(&data.previous));
            let value = now.and_then(|r| num(r, k.column));
            let prev = before.and_then(|r| num(r, k.column));
            let (change, verdict) = match (value, prev) {
                (Some(v), Some(p)) => {
                    let d = v - p;
                    let verdict = if d.abs() < 1e-12 {
                        "same"
                    } else if (d > 0.0) == k.higher_is_better {
                        "better"
                    } else {
                        "worse"
                    };
                    (k.unit.delta(d), verdict)
                }
                _ => ("–".into(), "same"),
            };
            let n = k.basis.map(|(col, _)| now.map_or(0, |r| count(r, col)));
            let basis = match (k.basis, n) {
                (Some((_, what)), Some(n)) => format!("{n} {what}"),
                _ => "at the end of the week".into(),
            };
            let interval = k.interval.and_then(|(lo, hi)| {
                let r = now?;
                Some(format!(
                    "95% CI {}–{}",
                    k.unit.show(num(r, lo)),
                    k.unit.show(num(r, hi))
                ))
            });
            let trend = data.history[HISTORY_WEEKS - TREND_WEEKS..]
                .iter()
                .map(|w| row(w).and_then(|r| num(r, k.column)))
                .collect();
            Tile {
                label: k.label.into(),
                value: k.unit.show(value),
                previous: k.unit.show(prev),
                change,
                verdict,
                basis,
                small_sample: n.is_some_and(|n| n < SMALL_SAMPLE),
                interval,
                trend,
            }
        })
        .collect()
}

fn week_key(table: &str) -> &'static str {
    if table == "backlog_trend" {
        "week"
    } else {
        "period"
    }
}

/// The channels in a per-channel table, in canonical order.
pub fn channels(rows: &[&Row]) -> Vec<String> {
    let mut c: Vec<String> = rows
        .iter()
        .map(|r| text(r, "channel").to_string())
        .collect();
    c.sort_by_key(|name| {
        crate::model::Channel::ALL
            .iter()
            .position(|x| x.as_str() == name)
            .unwrap_or(usize::MAX)
    });
    c.dedup();
    c
}
