//! The CIO dashboard: one self-contained page with KPI tiles (week-over-week change and a
//! 12-week sparkline each), channel mix and satisfaction (beside the estimated CSAT over every
//! resolved ticket when a model's predictions were recorded), and self-service deflection.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use super::charts::{self, BarSeries, Bars, Scale, Sparkline};
use super::weekly::{channel_csat, estimated_csat, volume_ttr};
use super::{DASHBOARD_TILES, Data, Quality, TREND_WEEKS, page, tiles};
use crate::lake::write_atomic;
use crate::timeparse::format_micros;

/// Writes the dashboard of `data` to `file`.
pub fn dashboard(data: &Data, file: &Path) -> Result<()> {
    let mut tiles = tiles(data);
    tiles.truncate(DASHBOARD_TILES);
    let tiles = tiles
        .into_iter()
        .map(|t| {
            let spark = charts::svg(&Sparkline {
                title: t.label.clone(),
                values: t.trend.clone(),
            })?;
            Ok(json!({ "tile": t, "spark": spark }))
        })
        .collect::<Result<Vec<_>>>()?;
    let deflection: Vec<_> = data
        .adoptions
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "launched": format_micros(a.launched_at)[..10].to_string(),
                "shift": a.shift.as_ref().ok().map(|s| json!({
                    "deflection": s.deflection,
                    "before_per_week": s.before.in_scope_per_week,
                    "after_per_week": s.after.in_scope_per_week,
                    "median_change": s.median_change,
                    "before_weeks": s.before.weeks,
                })),
                "refused": a.shift.as_ref().err().map(|e| format!("{e:#}")),
            })
        })
        .collect();
    let ctx = json!({
        "title": format!("Service desk dashboard {}", data.week.label),
        "week": data.week.label,
        "previous": data.previous.label,
        "from": format_micros(data.week.start)[..10].to_string(),
        "to": format_micros(data.week.end - 1)[..10].to_string(),
        "trend_weeks": TREND_WEEKS,
        "tiles": tiles,
        "mix": charts::svg(&channel_mix(data))?,
        "csat": charts::svg(&channel_csat(data))?,
        "volume": charts::svg(&volume_ttr(data))?,
        "estimated": (!data.estimated.is_empty())
            .then(|| charts::svg(&estimated_csat(data)))
            .transpose()?,
        "deflection": deflection,
        "quality": Quality::of(data),
    });
    let html = page::render("dashboard.html", &ctx)?;
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    write_atomic(file, html.as_bytes())
}

/// Each channel's share of the week's resolved tickets.
fn channel_mix(data: &Data) -> Bars {
    let rows = data.channels_of(&data.week);
    let total: u64 = rows.iter().map(|r| r.resolved).sum();
    Bars {
        title: format!("Channel mix, {} (n={total} resolved)", data.week.label),
        y_label: "share of resolved tickets".into(),
        scale: Scale::Percent,
        series: vec![BarSeries {
            name: "share".into(),
            values: rows
                .iter()
                .map(|r| (total > 0).then(|| r.resolved as f64 / total as f64))
                .collect(),
            notes: rows.iter().map(|r| r.resolved.to_string()).collect(),
            ..Default::default()
        }],
        categories: rows.iter().map(|r| r.channel.clone()).collect(),
        y_max: None,
    }
}
