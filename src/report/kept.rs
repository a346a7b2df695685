//! The dashboard's figures kept in a local lake, so that the dashboard of a week rendered after
//! another report of that week, over the same lake state, reads them rather than computing them
//! again: a desk renders the weekly report and the dashboard together, and the dashboard's
//! figures (the KPI trend, channel satisfaction, the backlog trend, estimated satisfaction and
//! the TTR shifts) are a part of the weekly report's.
//!
//! They are kept under `_derived/reports/<key>/figures.json`, beside the kept per-ticket stages
//! and by the same rules: the key hashes this build, the whole configuration, the week and the
//! data files of every table in the lake snapshot read, so any commit, another configuration or
//! another build computes them anew; an entry is written aside and renamed into place, and one
//! not used for a while is deleted by the next report that keeps or reads one. A lake that is
//! not a local directory this process can write keeps nothing.
//!
//! Only what reads back exactly is kept: the figures are compared, as Rust sees them (`Debug`),
//! with what their JSON reads back as, so that no float and no `None` changes on the way.

use std::path::PathBuf;

use anyhow::Result;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Data;
use super::rows::{BacklogWeek, ChannelWeek, EstimatedChannel, Kpis};
use crate::calendar::Week;
use crate::config::Config;
use crate::engine::passes::{DERIVED_DIR, aside, build_id, prune, publish, touch};
use crate::lake::{Lake, write_atomic};
use crate::metrics::ttr_shift::{Adopted, Shift};
use crate::model::Micros;

const FILE: &str = "figures.json";

/// What the dashboard shows of a week (a [`Data`] but for the tables and the weekly report's
/// detail).
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    kpis: Vec<Kpis>,
    channels: Vec<ChannelWeek>,
    backlog_trend: Vec<BacklogWeek>,
    estimated: Vec<EstimatedChannel>,
    adoptions: Vec<KeptAdoption>,
}

/// An adoption and its shift (without the TTR of each ticket, which only the weekly report's
/// charts read), or why there is none.
#[derive(Debug, Serialize, Deserialize)]
struct KeptAdoption {
    adoption_id: String,
    name: String,
    launched_at: Micros,
    shift: std::result::Result<Shift, String>,
}

/// Keeps the dashboard's figures of `data`, gathered from `lake` (a pinned snapshot) with
/// `config`. Best effort: a lake this process cannot write keeps nothing. Returns whether they
/// were kept.
pub fn keep(lake: &Lake, config: &Config, data: &Data) -> Result<bool> {
    let Some((root, key)) = place(lake, config, &data.week)? else {
        return Ok(false);
    };
    let figures = Figures {
        kpis: data.kpis.clone(),
        channels: data.channels.clone(),
        backlog_trend: data.backlog_trend.clone(),
        estimated: data.estimated.clone(),
        adoptions: data
            .adoptions
            .iter()
            .map(|a| KeptAdoption {
                adoption_id: a.adoption_id.clone(),
                name: a.name.clone(),
                launched_at: a.launched_at,
                shift: match &a.shift {
                    Ok(s) => Ok(Shift {
                        before_ttr_hours: Vec::new(),
                        after_ttr_hours: Vec::new(),
                        ..s.clone()
                    }),
                    Err(e) => Err(format!("{e:#}")),
                },
            })
            .collect(),
    };
    let json = serde_json::to_vec(&figures)?;
    // (JSON has no NaN: serde_json writes it as null, which an f64 does not read back.)
    let back = serde_json::from_slice::<Figures>(&json);
    if back.map(|b| format!("{b:?}")).ok() != Some(format!("{figures:?}")) {
        return Ok(false);
    }
    let dir = root.join(&key);
    if dir.is_dir() {
        touch(&dir);
    } else {
        let Some(part) = aside(&root, &key) else {
            return Ok(false);
        };
        write_atomic(&part.join(FILE), &json)?;
        publish(&root, &part, &key)?;
    }
    prune(&root, &key);
    Ok(true)
}

/// The dashboard's figures of `week` kept for `lake` (a pinned snapshot) and `config`, as a
/// [`Data`] without tables, detail or each ticket's TTR; `None` when none are kept.
pub fn load(lake: &Lake, config: &Config, week: &Week) -> Result<Option<Data>> {
    let Some((root, key)) = place(lake, config, week)? else {
        return Ok(None);
    };
    let dir = root.join(&key);
    let Ok(json) = std::fs::read(dir.join(FILE)) else {
        return Ok(None);
    };
    // An entry that does not read is computed again (and replaced by the next keep).
    let Ok(f) = serde_json::from_slice::<Figures>(&json) else {
        return Ok(None);
    };
    touch(&dir);
    prune(&root, &key);
    Ok(Some(Data {
        week: week.clone(),
        previous: config.calendar.previous_week(week),
        history: super::weeks_back(config, week, super::HISTORY_WEEKS),
        kpis: f.kpis,
        channels: f.channels,
        backlog_trend: f.backlog_trend,
        estimated: f.estimated,
        tables: Default::default(),
        adoptions: f
            .adoptions
            .into_iter()
            .map(|a| Adopted {
                adoption_id: a.adoption_id,
                name: a.name,
                launched_at: a.launched_at,
                shift: a.shift.map_err(anyhow::Error::msg),
            })
            .collect(),
        detail: None,
    }))
}

/// The lake's directory of kept figures and the key of `week` over the lake's snapshot with
/// `config`, or `None` when the lake is not a directory this process can write.
fn place(lake: &Lake, config: &Config, week: &Week) -> Result<Option<(PathBuf, String)>> {
    let Some(root) = lake.store().path_of(&format!("{DERIVED_DIR}/reports")) else {
        return Ok(None);
    };
    if std::fs::create_dir_all(&root).is_err() {
        return Ok(None);
    }
    Ok(Some((root, key(lake, config, week)?)))
}

fn key(lake: &Lake, config: &Config, week: &Week) -> Result<String> {
    let mut h = Sha256::new();
    h.update(build_id());
    h.update(format!("{config:?}\n{week:?}"));
    let snapshot = lake.snapshot()?;
    for name in snapshot.tables.keys() {
        h.update(name);
        for f in lake.named_files(&snapshot, name)? {
            h.update([0]);
            h.update(f.rel());
        }
        h.update([1]);
    }
    Ok(crate::hex(&h.finalize()[..16]))
}
