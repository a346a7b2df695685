//! The weekly manager report: `<out>/<week>/index.html`, its charts in `charts/` (SVG and PNG)
//! and every table behind it in `tables/` (CSV and JSON).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use super::charts::{self, BarSeries, Bars, Line, Plot, Scale, WeekLines};
use super::{
    Data, HISTORY_WEEKS, MIN_PAIRS, PAIR_WEEKS, Row, TREND_WEEKS, channels, count, num, page,
    quality, text, tiles, ttr_bins,
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

/// Writes the weekly report of `data` under `out/<week>/`.
pub fn weekly(data: &Data, out: &Path) -> Result<Written> {
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
    draw("pair_scores", &pair_scores(data))?;
    draw("backlog", &backlog(data))?;
    draw("comment_sentiment", &comment_sentiment(data))?;
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

    let week_rows = data.week_rows("channel_satisfaction", "period", &data.week);
    let channel_rows: Vec<_> = channels(&week_rows)
        .iter()
        .filter_map(|c| week_rows.iter().find(|r| text(r, "channel") == c))
        .collect();
    let (best, worst) = ranked(data);
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
        "channels": channel_rows,
        "roles": rows_of(data, "pair_summary", "responder_role"),
        "best": best,
        "worst": worst,
        "followups": data.followups,
        "escalations": data.table("escalations").rows,
        "adoptions": adoptions,
        "backlog": data.table("backlog").rows,
        "quality": quality(data),
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

fn rows_of<'a>(data: &'a Data, table: &str, dimension: &str) -> Vec<&'a Row> {
    data.table(table)
        .rows
        .iter()
        .filter(|r| text(r, "dimension") == dimension)
        .collect()
}

/// The best and the worst responders by mean pair score, among those with [`MIN_PAIRS`] pairs.
fn ranked(data: &Data) -> (Vec<&Row>, Vec<&Row>) {
    let mut r: Vec<&Row> = rows_of(data, "pair_summary", "responder")
        .into_iter()
        .filter(|r| count(r, "pairs") >= MIN_PAIRS && num(r, "mean_pair_score").is_some())
        .collect();
    r.sort_by(|a, b| {
        num(b, "mean_pair_score")
            .partial_cmp(&num(a, "mean_pair_score"))
            .expect("scores are numbers")
            .then_with(|| text(a, "value").cmp(text(b, "value")))
    });
    let best = r.len().min(RANKED).min(r.len().div_ceil(2));
    let worst: Vec<&Row> = r[best..].iter().rev().take(RANKED).copied().collect();
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
    let rows = data.week_rows("channel_satisfaction", "period", &data.week);
    let cats = channels(&rows);
    let row = |c: &String| rows.iter().find(|r| text(r, "channel") == c);
    let col = |k: &str| {
        cats.iter()
            .map(|c| row(c).and_then(|r| num(r, k)))
            .collect()
    };
    Bars {
        title: format!("CSAT by channel, {} (95% Wilson interval)", data.week.label),
        y_label: "satisfied ratings".into(),
        scale: Scale::Percent,
        series: vec![BarSeries {
            name: "CSAT".into(),
            values: col("csat"),
            low: col("csat_low"),
            high: col("csat_high"),
            notes: cats
                .iter()
                .map(|c| format!("n={}", row(c).map_or(0, |r| count(r, "ratings"))))
                .collect(),
        }],
        categories: cats,
        y_max: Some(1.1),
    }
}

/// Weekly CSAT per channel over the last [`TREND_WEEKS`] weeks.
fn csat_trend(data: &Data) -> WeekLines {
    let weeks = &data.history[HISTORY_WEEKS - TREND_WEEKS..];
    let all: Vec<&Row> = data.table("channel_satisfaction").rows.iter().collect();
    let lines = channels(&all)
        .into_iter()
        .map(|c| {
            let cells: Vec<Option<&&Row>> = weeks
                .iter()
                .map(|w| {
                    all.iter()
                        .find(|r| text(r, "channel") == c && text(r, "period") == w.label)
                })
                .collect();
            Line {
                values: cells
                    .iter()
                    .map(|r| r.and_then(|r| num(r, "csat")))
                    .collect(),
                small: cells
                    .iter()
                    .map(|r| r.is_none_or(|r| count(r, "ratings") < SMALL_SAMPLE))
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
    let kpi = |w: &crate::calendar::Week| {
        data.table("kpis")
            .rows
            .iter()
            .find(|r| text(r, "period") == w.label)
    };
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
                        .and_then(|r| num(r, "median_ttr_seconds"))
                        .map(|s| s / 3600.0)
                })
                .collect(),
            small: data
                .history
                .iter()
                .map(|w| kpi(w).is_none_or(|r| count(r, "resolved") < SMALL_SAMPLE))
                .collect(),
        }],
        bars: Some((
            "tickets opened".into(),
            data.history
                .iter()
                .map(|w| kpi(w).map_or(0.0, |r| count(r, "opened") as f64))
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
fn pair_scores(data: &Data) -> Bars {
    let rows: Vec<&Row> = data.table("pair_matrix").rows.iter().collect();
    let cats = channels(&rows);
    let mut roles: Vec<&str> = rows.iter().map(|r| text(r, "responder_role")).collect();
    roles.sort();
    roles.dedup();
    let series = roles
        .iter()
        .map(|role| {
            let cell = |c: &String| {
                rows.iter()
                    .find(|r| text(r, "responder_role") == *role && text(r, "channel") == c)
            };
            let col = |k: &str| {
                cats.iter()
                    .map(|c| cell(c).and_then(|r| num(r, k)))
                    .collect()
            };
            BarSeries {
                name: role.to_string(),
                values: col("mean_pair_score"),
                low: col("score_low"),
                high: col("score_high"),
                notes: cats
                    .iter()
                    .map(|c| cell(c).map_or(String::new(), |r| format!("{}", count(r, "pairs"))))
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
pub(super) fn backlog(data: &Data) -> Bars {
    let rows = &data.table("backlog").rows;
    let col = |k: &str| rows.iter().map(|r| Some(count(r, k) as f64)).collect();
    let notes = |k: &str| rows.iter().map(|r| count(r, k).to_string()).collect();
    Bars {
        title: format!("Backlog by age at the end of {}", data.week.label),
        y_label: "open tickets".into(),
        scale: Scale::Number,
        categories: rows.iter().map(|r| text(r, "bucket").to_string()).collect(),
        series: vec![
            BarSeries {
                name: "open".into(),
                values: col("open_tickets"),
                notes: notes("open_tickets"),
                ..Default::default()
            },
            BarSeries {
                name: "not updated for 7 days".into(),
                values: col("stale_tickets"),
                notes: notes("stale_tickets"),
                ..Default::default()
            },
        ],
        y_max: None,
    }
}

/// How the week's rating comments feel (VADER compound), in bins of 0.1.
fn comment_sentiment(data: &Data) -> Bars {
    let rows = &data.table("comment_sentiment").rows;
    let total: u64 = rows.iter().map(|r| count(r, "comments")).sum();
    Bars {
        title: format!(
            "Sentiment of rating comments, {} (n={total})",
            data.week.label
        ),
        y_label: "comments".into(),
        scale: Scale::Number,
        categories: rows
            .iter()
            .map(|r| format!("{:.1}", num(r, "low").unwrap_or(0.0)))
            .collect(),
        series: vec![BarSeries {
            name: "comments".into(),
            // No comment at all: the chart says "no data" rather than showing flat zeros.
            values: rows
                .iter()
                .map(|r| (total > 0).then(|| count(r, "comments") as f64))
                .collect(),
            ..Default::default()
        }],
        y_max: None,
    }
}
