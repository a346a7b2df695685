//! Chart reports (DESIGN 6): the weekly manager report and the CIO dashboard.
//!
//! [`gather`] runs the metric views of `queries/` for one ISO week (and the weeks before it, for
//! trends) and keeps every table as rows; [`weekly`] and [`dashboard`] turn those rows into
//! charts ([`charts`]) and self-contained HTML pages ([`page`]: inline CSS and SVG, every piece of
//! ticket text escaped by the template engine).

pub mod browser;
pub mod charts;
mod dashboard;
pub mod kept;
mod page;
pub mod rows;
mod weekly;

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;
use datafusion::arrow::array::RecordBatch;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use dashboard::dashboard;
pub use weekly::weekly;

use crate::calendar::Week;
use crate::config::Config;
use crate::engine::output::{Format, render};
use crate::engine::{Engine, Params};
use crate::lake::{Lake, write_atomic};
use crate::metrics::followups::{self, Plan, Throttles};
use crate::metrics::ttr_shift::{
    Adopted, Intervals, SMALL_SAMPLE, Shift, ShiftOptions, ttr_shift_each,
};
use crate::model::{Micros, Table as LakeTable};
use rows::{
    AgeBucket, BacklogWeek, ChannelWeek, Escalation, EstimatedChannel, Kpis, PairCell, PairSummary,
    SentimentBin,
};

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

/// A metric table as written beside the report: CSV and pretty JSON.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub csv: String,
    pub json: String,
}

impl Table {
    fn from_batches(name: &str, batches: &[RecordBatch]) -> Result<Table> {
        let rows: Value = serde_json::from_str(&render(batches, Format::Json)?)?;
        Ok(Table {
            name: name.to_string(),
            csv: render(batches, Format::Csv)?,
            json: serde_json::to_string_pretty(&rows)?,
        })
    }

    fn from_rows<T: Serialize>(name: &str, rows: &[T], csv: String) -> Result<Table> {
        Ok(Table {
            name: name.to_string(),
            csv,
            json: serde_json::to_string_pretty(&serde_json::to_value(rows)?)?,
        })
    }
}

/// The week's data-quality panel, from its `kpis` row: the ratings placed on a ticket, the
/// tickets left out of first response and resolution times (timestamps before opening), and the
/// texts not scored (another language, or not analysed).
#[derive(Debug, Default, Serialize)]
pub struct Quality {
    ratings: u64,
    ratings_placed: u64,
    ratings_without_ticket: u64,
    resolved: u64,
    ttr_left_out: u64,
    opened: u64,
    frt_left_out: u64,
    texts: u64,
    texts_scored: u64,
    texts_other_language: u64,
    texts_not_analysed: u64,
}

impl Quality {
    pub fn of(data: &Data) -> Quality {
        data.kpis_of(&data.week)
            .map_or_else(Quality::default, |k| Quality {
                ratings: k.ratings,
                ratings_placed: k.ratings - k.ratings_without_ticket,
                ratings_without_ticket: k.ratings_without_ticket,
                resolved: k.resolved,
                ttr_left_out: k.ttr_left_out,
                opened: k.opened,
                frt_left_out: k.frt_left_out,
                texts: k.texts,
                texts_scored: k.texts_scored,
                texts_other_language: k.texts_other_language,
                texts_not_analysed: k.texts_not_analysed,
            })
    }
}

/// What a [`gather`] computes: the dashboard's figures, or those and the weekly report's detail
/// (escalations, sentiment, backlog ages, pair scores, follow-ups), which the dashboard does not
/// show and which take more time to compute (docs/benchmarks.md times each view).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Dashboard,
    /// Everything: both pages can be rendered from it.
    Weekly,
}

/// Everything the reports show about one week.
pub struct Data {
    pub week: Week,
    pub previous: Week,
    /// The last [`HISTORY_WEEKS`] weeks, oldest first, ending with `week`.
    pub history: Vec<Week>,
    /// `kpis` per week of the history.
    pub kpis: Vec<Kpis>,
    /// `channel_satisfaction` per week of the history.
    pub channels: Vec<ChannelWeek>,
    /// `backlog_trend` per week of the history.
    pub backlog_trend: Vec<BacklogWeek>,
    /// The week's `estimated_satisfaction`, channels in canonical order: empty unless a
    /// published model's predictions were recorded (`predict --record`).
    pub estimated: Vec<EstimatedChannel>,
    /// Every table above and the computed ones, by name, as written beside the report.
    pub tables: BTreeMap<String, Table>,
    /// Each adoption's TTR shift, or why there is none.
    pub adoptions: Vec<Adopted>,
    /// The weekly report's own sections, gathered for [`Scope::Weekly`] only: [`weekly`] refuses
    /// data without them.
    pub detail: Option<Detail>,
}

/// What the weekly report shows beyond the dashboard.
pub struct Detail {
    /// The week's `escalations`, `comment_sentiment` and `backlog` at its end.
    pub escalations: Vec<Escalation>,
    pub sentiment: Vec<SentimentBin>,
    pub backlog: Vec<AgeBucket>,
    /// `pair_summary` and `pair_matrix` over the last [`PAIR_WEEKS`] weeks.
    pub pair_summary: Vec<PairSummary>,
    pub pair_matrix: Vec<PairCell>,
    /// Follow-up targets of the week, after throttling.
    pub followups: Plan,
}

impl Data {
    /// The `kpis` row of `week`.
    pub fn kpis_of(&self, week: &Week) -> Option<&Kpis> {
        self.kpis.iter().find(|r| r.period == week.label)
    }

    /// The `channel_satisfaction` rows of `week`, channels in canonical order.
    pub fn channels_of(&self, week: &Week) -> Vec<&ChannelWeek> {
        let mut rows: Vec<&ChannelWeek> = self
            .channels
            .iter()
            .filter(|r| r.period == week.label)
            .collect();
        rows.sort_by_key(|r| channel_rank(&r.channel));
        rows
    }

    /// Open tickets at the end of `week`.
    pub fn open_at_end(&self, week: &Week) -> Option<u64> {
        self.backlog_trend
            .iter()
            .find(|r| r.week == week.label)
            .map(|r| r.open_tickets)
    }

    /// Writes every table as `<name>.csv` and `<name>.json` into `dir`.
    pub fn write_tables(&self, dir: &Path) -> Result<Vec<String>> {
        std::fs::create_dir_all(dir)?;
        let mut names = Vec::new();
        for t in self.tables.values() {
            write_atomic(&dir.join(format!("{}.csv", t.name)), t.csv.as_bytes())?;
            write_atomic(&dir.join(format!("{}.json", t.name)), t.json.as_bytes())?;
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
/// - over the week: `estimated_satisfaction` (when predictions were recorded);
/// - every adoption's TTR shift (`ttr_shift`) and its TTR distributions (`ttr_distribution`);
///
/// and for [`Scope::Weekly`] also:
/// - over the week: `escalations`, `comment_sentiment`, `backlog` (at the week's end) and the
///   follow-up plan (`followups`, throttled as of the week's end);
/// - over the last [`PAIR_WEEKS`] weeks: `pair_summary` and `pair_matrix`.
pub async fn gather(lake: &Lake, config: &Config, week: &Week, scope: Scope) -> Result<Data> {
    let history = weeks_back(config, week, HISTORY_WEEKS);
    let period = |from: Micros, by_week: bool| Params {
        from: Some(from),
        to: Some(week.end),
        by_week,
        as_of: week.end,
        extra_adoptions: Vec::new(),
    };
    let trend = Engine::open(lake, config, &period(history[0].start, true)).await?;
    // The week's and the pairs' engines share the trend's per-ticket stages, computed first.
    let this_week = trend.with_params(&period(week.start, false)).await?;
    let stages: &[&str] = match scope {
        Scope::Dashboard => &["ticket_facts"],
        Scope::Weekly => &["ticket_facts", "pair_scores"],
    };
    trend.compute_stages(stages).await?;
    // Then the reads, in three lanes that run at once: alone, a read keeps about one core of two
    // busy, and with two lanes the longer one ran alone for its last second (measured at a
    // million tickets).
    let trend_lane = async {
        let mut tables = BTreeMap::new();
        let kpis = read(&trend, "kpis", &mut tables).await?;
        let backlog_trend = read(&trend, "backlog_trend", &mut tables).await?;
        let followups = match scope {
            Scope::Dashboard => None,
            Scope::Weekly => {
                let throttles = Throttles::from_config(config, week.end)?;
                let followups = followups::plan(&this_week, &throttles).await?;
                let t = &followups.targets;
                tables.insert(
                    "followups".into(),
                    Table::from_rows("followups", t, followups::to_csv(t)?)?,
                );
                Some(followups)
            }
        };
        anyhow::Ok((tables, kpis, backlog_trend, followups))
    };
    let channel_lane = async {
        let mut tables = BTreeMap::new();
        let channels = read(&trend, "channel_satisfaction", &mut tables).await?;
        let detail = match scope {
            Scope::Dashboard => None,
            Scope::Weekly => {
                let escalations = read(&this_week, "escalations", &mut tables).await?;
                let sentiment = read(&this_week, "comment_sentiment", &mut tables).await?;
                let backlog = read(&this_week, "backlog", &mut tables).await?;
                let pair_from = history[HISTORY_WEEKS - PAIR_WEEKS].start;
                let pairs = trend.with_params(&period(pair_from, false)).await?;
                // Both pair tables read the four weeks' pairs: computed once.
                pairs.keep("pairs").await?;
                let pair_summary = read(&pairs, "pair_summary", &mut tables).await?;
                let pair_matrix = read(&pairs, "pair_matrix", &mut tables).await?;
                Some((escalations, sentiment, backlog, pair_summary, pair_matrix))
            }
        };
        anyhow::Ok((tables, channels, detail))
    };
    let week_lane = async {
        let mut tables = BTreeMap::new();
        // Its rows come from recorded predictions only: without any, it is not computed.
        let mut estimated: Vec<EstimatedChannel> =
            match this_week.holds_rows(LakeTable::Predictions)? {
                true => read(&this_week, "estimated_satisfaction", &mut tables).await?,
                false => Vec::new(),
            };
        if estimated.is_empty() {
            tables.remove("estimated_satisfaction");
        }
        estimated.sort_by_key(|r| channel_rank(&r.channel));

        // The pages show the mean and median change, so only their intervals are computed.
        let opts = ShiftOptions {
            seed: config.seed,
            intervals: Intervals::Headline,
            ..ShiftOptions::default()
        };
        let adoptions = ttr_shift_each(&this_week, &opts).await?;
        let ok: Vec<&Shift> = adoptions
            .iter()
            .filter_map(|a| a.shift.as_ref().ok())
            .collect();
        tables.insert("ttr_shift".into(), shift_table(&ok)?);
        tables.insert("ttr_distribution".into(), distribution_table(&ok)?);
        anyhow::Ok((tables, estimated, adoptions))
    };
    let (
        (mut tables, kpis, backlog_trend, followups),
        (more, channels, detail),
        (week_tables, estimated, adoptions),
    ) = tokio::try_join!(trend_lane, channel_lane, week_lane)?;
    tables.extend(more);
    tables.extend(week_tables);
    let detail = detail.zip(followups).map(
        |((escalations, sentiment, backlog, pair_summary, pair_matrix), followups)| Detail {
            escalations,
            sentiment,
            backlog,
            pair_summary,
            pair_matrix,
            followups,
        },
    );
    let data = Data {
        week: week.clone(),
        previous: config.calendar.previous_week(week),
        history,
        kpis,
        channels,
        backlog_trend,
        estimated,
        tables,
        adoptions,
        detail,
    };
    Ok(data)
}

/// Runs metric view `name`, keeps its table and reads its rows as `T`.
async fn read<T: DeserializeOwned>(
    engine: &Engine,
    name: &str,
    tables: &mut BTreeMap<String, Table>,
) -> Result<Vec<T>> {
    let batches = engine.metric(name).await?;
    let schema = engine
        .context()
        .table(name)
        .await?
        .schema()
        .as_arrow()
        .clone();
    tables.insert(name.to_string(), Table::from_batches(name, &batches)?);
    rows::read(name, &schema, &batches)
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

/// A count of a week's `kpis` row.
type Count = fn(&Kpis) -> u64;
/// The ends of an interval in a week's `kpis` row.
type Ends = fn(&Kpis) -> (Option<f64>, Option<f64>);

/// How a KPI reads and which way is good.
struct Kpi {
    label: &'static str,
    /// The week's figure.
    value: fn(&Data, &Week) -> Option<f64>,
    /// The sample size (a count of the week's `kpis` row) and what it counts; none for a
    /// figure that is not a share of a sample.
    basis: Option<(Count, &'static str)>,
    /// The 95% interval's ends.
    interval: Option<Ends>,
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
        value: |d, w| d.kpis_of(w)?.csat,
        basis: Some((|k| k.ratings, "ratings")),
        interval: Some(|k| (k.csat_low, k.csat_high)),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "Response rate",
        value: |d, w| d.kpis_of(w)?.response_rate,
        basis: Some((|k| k.offered, "surveys offered")),
        interval: Some(|k| (k.response_rate_low, k.response_rate_high)),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "First response (median)",
        value: |d, w| d.kpis_of(w)?.median_frt_seconds,
        basis: Some((|k| k.opened, "tickets opened")),
        interval: None,
        unit: Unit::Hours,
        higher_is_better: false,
    },
    Kpi {
        label: "Time to resolve (median)",
        value: |d, w| d.kpis_of(w)?.median_ttr_seconds,
        basis: Some((|k| k.resolved, "tickets resolved")),
        interval: None,
        unit: Unit::Hours,
        higher_is_better: false,
    },
    Kpi {
        label: "First-contact resolution",
        value: |d, w| d.kpis_of(w)?.fcr_rate,
        basis: Some((|k| k.resolved, "tickets resolved")),
        interval: Some(|k| (k.fcr_low, k.fcr_high)),
        unit: Unit::Rate,
        higher_is_better: true,
    },
    Kpi {
        label: "Backlog (open at week end)",
        value: |d, w| d.open_at_end(w).map(|n| n as f64),
        basis: None,
        interval: None,
        unit: Unit::Count,
        higher_is_better: false,
    },
    Kpi {
        label: "Reopen rate",
        value: |d, w| d.kpis_of(w)?.reopen_rate,
        basis: Some((|k| k.resolved, "tickets resolved")),
        interval: Some(|k| (k.reopen_low, k.reopen_high)),
        unit: Unit::Rate,
        higher_is_better: false,
    },
    Kpi {
        label: "SLA attainment",
        value: |d, w| d.kpis_of(w)?.sla_rate,
        basis: Some((|k| k.sla_known, "tickets with an SLA")),
        interval: Some(|k| (k.sla_low, k.sla_high)),
        unit: Unit::Rate,
        higher_is_better: true,
    },
];

/// The dashboard's six tiles come first in [`KPIS`]; the weekly report shows them all.
pub const DASHBOARD_TILES: usize = 6;

/// The KPI tiles of the week.
pub fn tiles(data: &Data) -> Vec<Tile> {
    let now = data.kpis_of(&data.week);
    KPIS.iter()
        .map(|k| {
            let value = (k.value)(data, &data.week);
            let prev = (k.value)(data, &data.previous);
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
            let n = k.basis.map(|(count, _)| now.map_or(0, count));
            let basis = match (k.basis, n) {
                (Some((_, what)), Some(n)) => format!("{n} {what}"),
                _ => "at the end of the week".into(),
            };
            let interval = k.interval.and_then(|ends| {
                let (lo, hi) = ends(now?);
                Some(format!("95% CI {}–{}", k.unit.show(lo), k.unit.show(hi)))
            });
            let trend = data.history[HISTORY_WEEKS - TREND_WEEKS..]
                .iter()
                .map(|w| (k.value)(data, w))
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

/// A channel's place in canonical order (unknown names last).
fn channel_rank(name: &str) -> usize {
    crate::model::Channel::ALL
        .iter()
        .position(|x| x.as_str() == name)
        .unwrap_or(usize::MAX)
}

/// The distinct channels among `names`, in canonical order.
pub fn channels<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut c: Vec<String> = names.map(str::to_string).collect();
    c.sort_by_key(|name| channel_rank(name));
    c.dedup();
    c
}
