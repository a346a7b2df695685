//! Follow-up survey targets (DESIGN 4.3): the cohorts come from the `followup_candidates` view
//! (queries/followup_candidates.sql); here the throttles are applied, in this order:
//! 1. nobody on the opt-out list;
//! 2. nobody surveyed within the cooldown (a survey sent exactly `cooldown_days` before now no
//!    longer blocks);
//! 3. one target per requester, `low_rating` before `same_issue`;
//! 4. at most `cap` per cohort, chosen by a seeded hash of the requester id, so the same run
//!    picks the same people whatever the order of the data.
//!
//! `record` appends the targets to the lake's `surveys` table in one atomic commit, so that a
//! second run within the cooldown selects nobody twice.

use std::collections::{BTreeMap, HashMap, HashSet};

use anyhow::Result;
use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{Float64Type, TimestampMicrosecondType};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::output::inert;
use crate::engine::{Engine, utf8};
use crate::lake::Lake;
use crate::model::{Micros, Survey};

/// The throttles.
#[derive(Debug, Clone)]
pub struct Throttles {
    pub now: Micros,
    pub cooldown_days: u32,
    pub cap: u32,
    pub seed: u64,
    pub opt_out: HashSet<String>,
}

impl Throttles {
    /// The configuration's throttles at `now`, with its opt-out file read.
    pub fn from_config(config: &crate::config::Config, now: Micros) -> anyhow::Result<Throttles> {
        Ok(Throttles {
            now,
            cooldown_days: config.cooldown_days,
            cap: config.cap,
            seed: config.seed,
            opt_out: load_opt_out(config.opt_out.as_deref())?,
        })
    }
}

/// One person to send a long-form survey to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub requester_id: String,
    pub tickets: Vec<String>,
    pub cohort: String,
    pub cohort_key: String,
    pub reason: String,
    /// The worst rating behind a low_rating target.
    pub rating: Option<f64>,
    /// Where to reach them: their latest channel.
    pub channel: Option<String>,
}

/// The targets and why the others were left out.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub targets: Vec<Target>,
    /// Candidates (one per cohort and requester) before throttling.
    pub candidates: u64,
    pub opted_out: u64,
    pub in_cooldown: u64,
    pub in_other_cohort: u64,
    pub over_cap: u64,
}

/// Reads an opt-out file: one requester id per line; blank lines and `#` comments are ignored.
pub fn read_opt_out(text: &str) -> HashSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// The opt-out list of `file` (none: nobody opted out); an unreadable file is an error naming it.
pub fn load_opt_out(file: Option<&std::path::Path>) -> Result<HashSet<String>> {
    match file {
        Some(f) => Ok(read_opt_out(&std::fs::read_to_string(f).map_err(|e| {
            anyhow::anyhow!("cannot read opt-out file {}: {e}", f.display())
        })?)),
        None => Ok(HashSet::new()),
    }
}

fn rank(seed: u64, requester: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.to_le_bytes());
    h.update(requester.as_bytes());
    h.finalize().into()
}

/// The candidates (rows of `followup_candidates`) merged into one target per cohort and
/// requester. The result does not depend on the rows' order.
fn merge(candidates: &[RecordBatch]) -> Result<BTreeMap<(String, String), Target>> {
    let mut merged: BTreeMap<(String, String), Target> = BTreeMap::new();
    for b in candidates {
        let col = |n: &str| {
            b.column_by_name(n)
                .expect("followup_candidates column")
                .clone()
        };
        let text = |n: &str| utf8(&col(n));
        let (cohort, key, who, ticket) = (
            text("cohort")?,
            text("cohort_key")?,
            text("requester_id")?,
            text("ticket_id")?,
        );
        let (rating, reason, channel) = (col("rating"), text("reason")?, text("channel")?);
        for i in 0..b.num_rows() {
            let s = |a: &StringArray| a.value(i).to_string();
            let r = (!rating.is_null(i)).then(|| rating.as_primitive::<Float64Type>().value(i));
            let entry = merged
                .entry((s(&cohort), s(&who)))
                .or_insert_with(|| Target {
                    requester_id: s(&who),
                    tickets: Vec::new(),
                    cohort: s(&cohort),
                    cohort_key: s(&key),
                    reason: s(&reason),
                    rating: r,
                    channel: (!channel.is_null(i)).then(|| s(&channel)),
                });
            entry.tickets.push(s(&ticket));
            // The target's reason: its worst rating; among equals (and unrated same-issue
            // candidates) the smallest key, so that the rows' order (which a cluster or another
            // partitioning changes) does not choose it.
            // A cohort's candidates are all rated (low_rating) or all unrated (same_issue).
            let smaller_key = key.value(i) < entry.cohort_key.as_str();
            let replaces = match (r, entry.rating) {
                (Some(new), Some(old)) => new < old || (new == old && smaller_key),
                (None, None) => smaller_key,
                _ => false,
            };
            if replaces {
                entry.rating = r;
                entry.cohort_key = s(&key);
                entry.reason = s(&reason);
            }
        }
    }
    for target in merged.values_mut() {
        target.tickets.sort();
    }
    Ok(merged)
}

/// Plans the follow-ups for the engine's period.
pub async fn plan(engine: &Engine, t: &Throttles) -> Result<Plan> {
    let merged = merge(&engine.sql("SELECT * FROM followup_candidates").await?)?;
    let mut plan = Plan {
        candidates: merged.len() as u64,
        ..Plan::default()
    };

    // Who was surveyed last, and when.
    let mut last_sent: HashMap<String, Micros> = HashMap::new();
    for b in engine
        .sql("SELECT requester_id, MAX(sent_at) AS sent_at FROM surveys GROUP BY requester_id")
        .await?
    {
        let (who, at) = (
            utf8(b.column(0))?,
            b.column(1)
                .as_primitive::<TimestampMicrosecondType>()
                .clone(),
        );
        for i in 0..b.num_rows() {
            last_sent.insert(who.value(i).to_string(), at.value(i));
        }
    }
    let cooldown_start = t.now - t.cooldown_days as i64 * 86_400_000_000;

    let mut kept: Vec<Target> = Vec::new();
    for target in merged.into_values() {
        if t.opt_out.contains(&target.requester_id) {
            plan.opted_out += 1;
        } else if last_sent
            .get(&target.requester_id)
            .is_some_and(|at| *at > cooldown_start)
        {
            plan.in_cooldown += 1;
        } else {
            kept.push(target);
        }
    }
    // One per requester: low_rating first.
    let low: HashSet<String> = kept
        .iter()
        .filter(|x| x.cohort == "low_rating")
        .map(|x| x.requester_id.clone())
        .collect();
    let before = kept.len();
    kept.retain(|x| x.cohort == "low_rating" || !low.contains(&x.requester_id));
    plan.in_other_cohort = (before - kept.len()) as u64;

    // The cap per cohort, by seeded hash.
    let mut by_cohort: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for x in kept {
        by_cohort.entry(x.cohort.clone()).or_default().push(x);
    }
    for (_, mut group) in by_cohort {
        group.sort_by_key(|x| rank(t.seed, &x.requester_id));
        if group.len() > t.cap as usize {
            plan.over_cap += (group.len() - t.cap as usize) as u64;
            group.truncate(t.cap as usize);
        }
        group.sort_by(|a, b| a.requester_id.cmp(&b.requester_id));
        plan.targets.extend(group);
    }
    Ok(plan)
}

/// Appends the targets to `surveys`, sent at `now` (one atomic commit).
pub fn record(lake: &Lake, targets: &[Target], now: Micros) -> Result<u64> {
    let lock = lake.lock()?;
    let mut staging = lake.stage("followups-record")?;
    for x in targets {
        staging.push(Survey {
            requester_id: x.requester_id.clone(),
            sent_at: now,
            cohort: x.cohort.clone(),
            cohort_key: Some(x.cohort_key.clone()),
        })?;
    }
    let counts = staging.commit_locked(lake, &lock)?;
    Ok(counts.values().map(|c| c.stored).sum())
}

/// The targets as CSV (tickets joined with `;`; every cell inert for spreadsheets).
pub fn to_csv(targets: &[Target]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "requester_id",
        "tickets",
        "cohort",
        "cohort_key",
        "reason",
        "rating",
        "channel",
    ])?;
    for x in targets {
        let cells = [
            x.requester_id.as_str(),
            &x.tickets.join(";"),
            &x.cohort,
            &x.cohort_key,
            &x.reason,
            &x.rating.map(|r| format!("{r:.4}")).unwrap_or_default(),
            x.channel.as_deref().unwrap_or(""),
        ];
        w.write_record(cells.iter().map(|c| inert(c).into_owned()))?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}

/// Writes `followups.csv` and `followups.json` into `dir`, each atomically (temporary name,
/// then rename), for automation to pick up.
pub fn write_files(dir: &std::path::Path, targets: &[Target]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, body) in [
        ("followups.csv", to_csv(targets)?),
        ("followups.json", serde_json::to_string_pretty(targets)?),
    ] {
        crate::lake::write_atomic(&dir.join(name), body.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Float64Array};
    use std::sync::Arc;

    /// A candidate row: (cohort, key, requester, ticket, rating).
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Option<f64>,
    );

    fn batch(rows: &[Row]) -> RecordBatch {
        let text = |f: fn(&Row) -> &'static str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        RecordBatch::try_from_iter([
            ("cohort", text(|r| r.0)),
            ("cohort_key", text(|r| r.1)),
            ("requester_id", text(|r| r.2)),
            ("ticket_id", text(|r| r.3)),
            (
                "rating",
                Arc::new(Float64Array::from_iter(rows.iter().map(|r| r.4))) as ArrayRef,
            ),
            ("reason", text(|r| r.1)),
            ("channel", text(|_| "email")),
        ])
        .unwrap()
    }

    #[test]
    fn merging_does_not_depend_on_the_rows_order() {
        let rows = [
            ("low_rating", "T9", "u1", "T9", Some(1.0)),
            ("low_rating", "T3", "u1", "T3", Some(1.0)),
            ("low_rating", "T5", "u1", "T5", Some(2.0)),
            ("same_issue", "PRB-B", "u1", "T7", None),
            ("same_issue", "PRB-A", "u1", "T8", None),
        ];
        let forward = merge(&[batch(&rows)]).unwrap();
        let mut reversed = rows;
        reversed.reverse();
        assert_eq!(forward, merge(&[batch(&reversed)]).unwrap());
        let low = &forward[&("low_rating".to_string(), "u1".to_string())];
        // The worst rating, the smaller key among equals; tickets in order.
        assert_eq!((low.cohort_key.as_str(), low.rating), ("T3", Some(1.0)));
        assert_eq!(low.tickets, ["T3", "T5", "T9"]);
        let same = &forward[&("same_issue".to_string(), "u1".to_string())];
        assert_eq!(
            (same.cohort_key.as_str(), same.reason.as_str()),
            ("PRB-A", "PRB-A")
        );
        assert_eq!(same.tickets, ["T7", "T8"]);
    }
}
