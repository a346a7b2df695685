//! The weekly manager report: `<out>/<week>/index.html`, its charts in `charts/` (SVG and PNG)
//! and every table behind it in `tables/` (CSV and JSON).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;

use super::charts::{self, BarSeries, Bars, Line, Plot, Scale, WeekLines};
use super::rows::{AgeBucket, ChannelWeek, EstimatedChannel, PairCell, PairSummary};
use super::{
    Data, Detail, HISTORY_WEEKS, MIN_PAIRS, PAIR_WEEKS, Quality, TREND_WEEKS, channels, page,
    tiles, ttr_bins,
};
use crate::lake::write_atomic;
use crate::metrics::ttr_shift::{SMALL_SAMPLE, Shift};
use crate::timeparse::format_micros;

/// Responders listed as best and as worst.
const RANKED: usize = 5;

/// What the weekly report wrote.
#[derive(Debug)]
pub struct Written {
    pub index: PathBuf,
    pub charts: Vec<PathBuf>,
    pub tables: Vec<PathBuf>,
}

/// Writes the weekly report of `data` under `out/<week>/`; `data` must be gathered for
/// [`super::Scope::Weekly`].
pub fn weekly(data: &Data, out: &Path) -> Result<Written> {
    let detail = data.detail.as_ref().context(
        "the weekly report needs data gathered for it (Scope::Weekly), not for the dashboard only",
    )?;
    let dir = out.join(&data.week.label);
    let chart_dir = dir.join("charts");
    let table_dir = dir.join("tables");
    std::fs::create_dir_all(&chart_dir)?;
    let mut tables = Vec::new();
    for name in data.write_tables(&table_dir)? {
        for ext in ["csv", "json"] {
            tables.push(table_dir.join(format!("{name}.{ext}")));
        }
    }

    let mut svgs = BTreeMap::new();
    let mut files = Vec::new();
    let mut draw = |name: &str, plot: &dyn DrawAny| -> Result<()> {
        svgs.insert(name.to_string(), plot.render(&chart_dir, name)?);
        files.push(chart_dir.join(format!("{name}.svg")));
        files.push(chart_dir.join(format!("{name}.png")));
        Ok(())
    };
    draw("channel_csat", &channel_csat(data))?;
    draw("csat_trend", &csat_trend(data))?;
    draw("volume_ttr", &volume_ttr(data))?;
    draw("pair_scores", &pair_scores(detail))?;
    draw("backlog", &backlog(data, detail))?;
    draw("comment_sentiment", &comment_sentiment(data, detail))?;
    if !data.estimated.is_empty() {
        draw("estimated_csat", &estimated_csat(data))?;
    }
    let mut adoptions = Vec::new();
    for a in &data.adoptions {
        let chart = match &a.shift {
            Ok(s) => {
                let name = format!("ttr_{}", file_stem(&a.adoption_id));
                draw(&name, &ttr_distribution(s))?;
                Some(name)
            }
            Err(_) => None,
        };
        adoptions.push(json!({
            "adoption_id": a.adoption_id,
            "name": a.name,
            "launched": format_micros(a.launched_at)[..10].to_string(),
            "shift": a.shift.as_ref().ok().map(shift_view),
            "refused": a.shift.as_ref().err().map(|e| format!("{e:#}")),
            "chart": chart,
        }));
    }

    let (best, worst) = ranked(detail);
    let ctx = json!({
        "title": format!("Service desk weekly report {}", data.week.label),
        "week": data.week.label,
        "from": format_micros(data.week.start)[..10].to_string(),
        "to": format_micros(data.week.end - 1)[..10].to_string(),
        "previous": data.previous.label,
        "small": SMALL_SAMPLE,
        "pair_weeks": PAIR_WEEKS,
        "min_pairs": MIN_PAIRS,
        "tiles": tiles(data),
        "channels": data.channels_of(&data.week),
        "roles": pairs_by(detail, "responder_role").collect::<Vec<_>>(),
        "best": best,
        "worst": worst,
        "followups": detail.followups,
        "escalations": detail.escalations,
        "adoptions": adoptions,
        "backlog": detail.backlog,
        "estimated": data.estimated,
        "quality": Quality::of(data),
        "charts": svgs,
        "tables": data.tables.keys().collect::<Vec<_>>(),
    });
    let html = page::render("weekly.html", &ctx)?;
    let index = dir.join("index.html");
    write_atomic(&index, html.as_bytes())?;
    Ok(Written {
        index,
        charts: files,
        tables,
    })
}

/// Plots of different shapes behind one `dyn`.
pub(super) trait DrawAny {
    fn render(&self, dir: &Path, name: &str) -> Result<String>;
}

impl<P: Plot> DrawAny for P {
    fn render(&self, dir: &Path, name: &str) -> Result<String> {
        Ok(charts::render(self, dir, name)?.svg)
    }
}

/// A file name from untrusted text: letters, digits, `-` and `_` only.
fn file_stem(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The `pair_summary` rows of one dimension.
fn pairs_by<'a>(detail: &'a Detail, dimension: &str) -> impl Iterator<Item = &'a PairSummary> {
    detail
        .pair_summary
        .iter()
        .filter(move |r| r.dimension == dimension)
}

/// The best and the worst responders by mean pair score, among those with [`MIN_PAIRS`] pairs.
fn ranked(detail: &Detail) -> (Vec<&PairSummary>, Vec<&PairSummary>) {
    let mut r: Vec<(f64, &PairSummary)> = pairs_by(detail, "responder")
        .filter(|r| r.pairs >= MIN_PAIRS)
        .filter_map(|r| Some((r.mean_pair_score?, r)))
        .collect();
    r.sort_by(|(a, ra), (b, rb)| b.total_cmp(a).then_with(|| ra.value.cmp(&rb.value)));
    let mut r: Vec<&PairSummary> = r.into_iter().map(|(_, row)| row).collect();
    let best = r.len().min(RANKED).min(r.len().div_ceil(2));
    let worst: Vec<&PairSummary> = r[best..].iter().rev().take(RANKED).copied().collect();
    r.truncate(best);
    (r, worst)
}

fn shift_view(s: &Shift) -> serde_json::Value {
    json!({
        "before": s.before,
        "after": s.after,
        "deflection": s.deflection,
        "median_change": s.median_change,
        "mean_change": s.mean_change,
        "total_change_hours": s.total_change_hours,
        "mix_hours": s.mix_hours,
        "within_hours": s.within_hours,
        "warnings": s.warnings,
    })
}

/// CSAT per channel in the week, with Wilson whiskers and the number of ratings on each bar.
pub(super) fn channel_csat(data: &Data) -> Bars {
    let rows = data.channels_of(&data.week);
    let col = |f: fn(&ChannelWeek) -> Option<f64>| rows.iter().map(|r| f(r)).collect();
    Bars {
        title: format!("CSAT by channel, {} (95% Wilson interval)", data.week.label),
        y_label: "satisfied ratings".into(),
        scale: Scale::Percent,
        series: vec![BarSeries {
            name: "CSAT".into(),
            values: col(|r| r.csat),
            low: col(|r| r.csat_low),
            high: col(|r| r.csat_high),
            notes: rows.iter().map(|r| format!("n={}", r.ratings)).collect(),
        }],
        categories: rows.iter().map(|r| r.channel.clone()).collect(),
        y_max: Some(1.1),
    }
}

/// Survey CSAT (rated tickets) beside estimated CSAT (every resolved ticket: ratings, else the
/// recorded model's predictions) per channel of the week, each with its 95% interval.
pub(super) fn estimated_csat(data: &Data) -> Bars {
    let rows = &data.estimated;
    let col = |f: fn(&EstimatedChannel) -> Option<f64>| rows.iter().map(f).collect();
    let model = rows.first().map_or("", |r| r.model_id.as_str());
    Bars {
        title: format!(
            "Survey and estimated CSAT by resolved tickets' channel, {} (model {model})",
            data.week.label
        ),
        y_label: "satisfied tickets".into(),
        scale: Scale::Percent,
        series: vec![
            BarSeries {
                name: "survey (rated tickets)".into(),
                values: col(|r| r.survey_csat),
                low: col(|r| r.survey_csat_low),
                high: col(|r| r.survey_csat_high),
                notes: rows.iter().map(|r| format!("n={}", r.rated)).collect(),
            },
            BarSeries {
                name: "estimated (all resolved)".into(),
                values: col(|r| r.estimated_csat),
                low: col(|r| r.estimated_csat_low),
                high: col(|r| r.estimated_csat_high),
                notes: rows
                    .iter()
                    .map(|r| format!("n={}", r.rated + r.predicted))
                    .collect(),
            },
        ],
        categories: rows.iter().map(|r| r.channel.clone()).collect(),
        // Head room for the legend above the bars.
        y_max: Some(1.3),
    }
}

/// Weekly CSAT per channel over the last [`TREND_WEEKS`] weeks.
fn csat_trend(data: &Data) -> WeekLines {
    let weeks = &data.history[HISTORY_WEEKS - TREND_WEEKS..];
    let all = &data.channels;
    let lines = channels(all.iter().map(|r| r.channel.as_str()))
        .into_iter()
        .map(|c| {
            let cells: Vec<Option<&ChannelWeek>> = weeks
                .iter()
                .map(|w| all.iter().find(|r| r.channel == c && r.period == w.label))
                .collect();
            Line {
                values: cells.iter().map(|r| r.and_then(|r| r.csat)).collect(),
                small: cells
                    .iter()
                    .map(|r| r.is_none_or(|r| r.ratings < SMALL_SAMPLE))
                    .collect(),
                name: c,
            }
        })
        .filter(|l| l.values.iter().any(Option::is_some))
        .collect();
    WeekLines {
        title: format!(
            "CSAT per channel, last {TREND_WEEKS} weeks (hollow: under {SMALL_SAMPLE} ratings)"
        ),
        y_label: "satisfied ratings".into(),
        scale: Scale::Percent,
        weeks: weeks.iter().map(|w| w.label.clone()).collect(),
        lines,
        bars: None,
        marks: Vec::new(),
        y_max: Some(1.05),
    }
}

/// Tickets opened and median TTR per week, with every self-service launch in the span marked.
pub(super) fn volume_ttr(data: &Data) -> WeekLines {
    let kpi = |w| data.kpis_of(w);
    let marks = data
        .adoptions
        .iter()
        .filter_map(|a| {
            let i = data
                .history
                .iter()
                .position(|w| w.start <= a.launched_at && a.launched_at < w.end)?;
            let w = &data.history[i];
            let within = (a.launched_at - w.start) as f64 / (w.end - w.start) as f64;
            Some((i as f64 - 0.5 + within, format!("{} launched", a.name)))
        })
        .collect();
    WeekLines {
        title: format!("Tickets opened and median time to resolve, last {HISTORY_WEEKS} weeks"),
        y_label: "median TTR (hours)".into(),
        scale: Scale::Number,
        weeks: data.history.iter().map(|w| w.label.clone()).collect(),
        lines: vec![Line {
            name: "median TTR (hours)".into(),
            values: data
                .history
                .iter()
                .map(|w| {
                    kpi(w)
                        .and_then(|r| r.median_ttr_seconds)
                        .map(|s| s / 3600.0)
                })
                .collect(),
            small: data
                .history
                .iter()
                .map(|w| kpi(w).is_none_or(|r| r.resolved < SMALL_SAMPLE))
                .collect(),
        }],
        bars: Some((
            "tickets opened".into(),
            data.history
                .iter()
                .map(|w| kpi(w).map_or(0.0, |r| r.opened as f64))
                .collect(),
        )),
        marks,
        y_max: None,
    }
}

/// TTR before and after one adoption: the share of each window's tickets per TTR bin.
fn ttr_distribution(s: &Shift) -> Bars {
    let bins = ttr_bins(s);
    let categories = bins
        .iter()
        .map(|b| match b.high_hours {
            Some(h) => format!("<{h:.0}h"),
            None => format!("≥{:.0}h", b.low_hours),
        })
        .collect();
    let series = |name: String, f: fn(&super::Bin) -> f64| BarSeries {
        name,
        values: bins.iter().map(|b| Some(f(b))).collect(),
        ..Default::default()
    };
    Bars {
        title: format!("Time to resolve before and after {}", s.name),
        y_label: "share of resolved tickets".into(),
        scale: Scale::Percent,
        categories,
        series: vec![
            series(format!("before (n={})", s.before.resolved), |b| {
                b.before_share
            }),
            series(format!("after (n={})", s.after.resolved), |b| b.after_share),
        ],
        y_max: None,
    }
}

/// Mean pair score by request channel, agents beside the bot.
fn pair_scores(detail: &Detail) -> Bars {
    let rows = &detail.pair_matrix;
    let cats = channels(rows.iter().map(|r| r.channel.as_str()));
    let mut roles: Vec<&str> = rows.iter().map(|r| r.responder_role.as_str()).collect();
    roles.sort();
    roles.dedup();
    let series = roles
        .iter()
        .map(|role| {
            let cells: Vec<Option<&PairCell>> = cats
                .iter()
                .map(|c| {
                    rows.iter()
                        .find(|r| r.responder_role == *role && r.channel == *c)
                })
                .collect();
            let col = |f: fn(&PairCell) -> Option<f64>| {
                cells.iter().map(|cell| cell.and_then(f)).collect()
            };
            BarSeries {
                name: role.to_string(),
                values: col(|r| r.mean_pair_score),
                low: col(|r| r.score_low),
                high: col(|r| r.score_high),
                notes: cells
                    .iter()
                    .map(|cell| cell.map_or(String::new(), |r| r.pairs.to_string()))
                    .collect(),
            }
        })
        .collect();
    Bars {
        title: format!("Pair score by responder and channel, last {PAIR_WEEKS} weeks (n pairs)"),
        y_label: "mean pair score (0-100)".into(),
        scale: Scale::Number,
        categories: cats,
        series,
        // Head room for the legend above the bars.
        y_max: Some(130.0),
    }
}

/// Open tickets at the week's end by age, and how many of them nobody touched for a week.
fn backlog(data: &Data, detail: &Detail) -> Bars {
    let rows = &detail.backlog;
    let series = |name: &str, f: fn(&AgeBucket) -> u64| BarSeries {
        name: name.into(),
        values: rows.iter().map(|r| Some(f(r) as f64)).collect(),
        notes: rows.iter().map(|r| f(r).to_string()).collect(),
        ..Default::default()
    };
    Bars {
        title: format!("Backlog by age at the end of {}", data.week.label),
        y_label: "open tickets".into(),
        scale: Scale::Number,
        categories: rows.iter().map(|r| r.bucket.clone()).collect(),
        series: vec![
            series("open", |r| r.open_tickets),
            series("not updated for 7 days", |r| r.stale_tickets),
        ],
        y_max: None,
    }
}

/// How the week's rating comments feel (VADER compound), in bins of 0.1.
fn comment_sentiment(data: &Data, detail: &Detail) -> Bars {
    let rows = &detail.sentiment;
    let total: u64 = rows.iter().map(|r| r.comments).sum();
    Bars {
        title: format!(
            "Sentiment of rating comments, {} (n={total})",
            data.week.label
        ),
        y_label: "comments".into(),
        scale: Scale::Number,
        categories: rows.iter().map(|r| format!("{:.1}", r.low)).collect(),
        series: vec![BarSeries {
            name: "comments".into(),
            // No comment at all: the chart says "no data" rather than showing flat zeros.
            values: rows
                .iter()
                .map(|r| (total > 0).then_some(r.comments as f64))
                .collect(),
            ..Default::default()
        }],
        y_max: None,
    }
}
