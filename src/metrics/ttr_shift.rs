//! TTR shift after a self-service adoption (DESIGN 4.4).
//!
//! The tickets come from the `ttr_shift_tickets` view (queries/ttr_shift_tickets.sql); here is
//! what SQL does poorly: seeded bootstrap intervals of the change in mean, median and p90 TTR,
//! and the exact decomposition of the change in mean TTR into case mix and within-category
//! change:
//! `mix = Σc (s_c,after − s_c,before)·T_c,before`, `within = Σc s_c,after·(T_c,after − T_c,before)`,
//! with s_c a category's share of the window's resolved tickets and T_c its mean TTR; then
//! mix + within = total change exactly. A category absent before the launch takes the before
//! window's overall mean as its T_c,before (any value keeps the sum exact; this one charges the
//! new category's difference from the old average to "within").

use std::collections::BTreeMap;

use anyhow::Result;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Float64Type, Int64Type, TimestampMicrosecondType};
use rand::{Rng, RngExt, SeedableRng};
use rand_distr::{Binomial, Distribution};
use rand_pcg::Pcg64Mcg;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::engine::functions::wilson;
use crate::engine::{Engine, utf8};
use crate::model::Micros;

/// How the shift is computed.
#[derive(Debug, Clone)]
pub struct ShiftOptions {
    /// Only this adoption (else every one).
    pub adoption: Option<String>,
    /// Refuse a window with fewer resolved tickets than this (with fewer than 2 there is no
    /// change to estimate). Windows under [`SMALL_SAMPLE`] are reported with a warning.
    pub min_tickets: usize,
    /// Bootstrap resamples.
    pub resamples: usize,
    pub seed: u64,
    /// Which changes get a bootstrap interval.
    pub intervals: Intervals,
}

/// The changes whose intervals are computed. Each interval has its own seed, so an interval is
/// the same whichever others are computed beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intervals {
    /// Mean, median and p90 change of calendar and of business TTR.
    All,
    /// The mean and median change of calendar TTR, the ones the reports show: a third of the
    /// work (each interval resamples both windows 1,000 times).
    Headline,
}

impl Default for ShiftOptions {
    fn default() -> Self {
        ShiftOptions {
            adoption: None,
            min_tickets: 2,
            resamples: 1000,
            seed: 42,
            intervals: Intervals::All,
        }
    }
}

/// Below this many resolved tickets a window's (or a category's) figures are flagged as a small
/// sample.
pub const SMALL_SAMPLE: u64 = 30;

/// A change with its 95% bootstrap interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// One window's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    pub start: Micros,
    pub end: Micros,
    pub weeks: f64,
    pub tickets: u64,
    pub in_scope: u64,
    pub tickets_per_week: f64,
    pub in_scope_per_week: f64,
    pub resolved: u64,
    /// Resolved tickets left out of the TTR figures: resolved before they were opened (a finding).
    pub ttr_left_out: u64,
    pub mean_ttr_hours: f64,
    pub median_ttr_hours: f64,
    pub p90_ttr_hours: f64,
    pub mean_ttr_business_hours: f64,
    pub median_ttr_business_hours: f64,
    pub p90_ttr_business_hours: f64,
    pub rated: u64,
    pub satisfied: u64,
    pub csat: Option<f64>,
    pub csat_low: Option<f64>,
    pub csat_high: Option<f64>,
}

/// One category's part in the decomposition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CategoryShift {
    pub category: String,
    pub before_resolved: u64,
    pub after_resolved: u64,
    pub before_share: f64,
    pub after_share: f64,
    pub before_mean_hours: Option<f64>,
    pub after_mean_hours: Option<f64>,
    pub mix_hours: f64,
    pub within_hours: f64,
    /// Fewer than 30 resolved tickets in a window: read its means with care.
    pub small_sample: bool,
}

/// The shift around one adoption.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Shift {
    pub adoption_id: String,
    pub name: String,
    pub launched_at: Micros,
    pub before: Window,
    pub after: Window,
    /// 1 − in-scope tickets per week after / before.
    pub deflection: Option<f64>,
    pub mean_change: Change,
    pub median_change: Change,
    /// These four are `None` unless [`Intervals::All`] were asked for.
    pub p90_change: Option<Change>,
    pub mean_business_change: Option<Change>,
    pub median_business_change: Option<Change>,
    pub p90_business_change: Option<Change>,
    pub total_change_hours: f64,
    pub mix_hours: f64,
    pub within_hours: f64,
    pub categories: Vec<CategoryShift>,
    /// Plain-language cautions (small samples) to show with the figures.
    pub warnings: Vec<String>,
    /// Each window's resolved tickets' TTR in hours (for distribution charts; not serialised).
    #[serde(skip)]
    pub before_ttr_hours: Vec<f64>,
    #[serde(skip)]
    pub after_ttr_hours: Vec<f64>,
}

#[derive(Default)]
struct Tickets {
    name: String,
    launched_at: Micros,
    start: Micros,
    end: Micros,
    tickets: u64,
    in_scope: u64,
    ttr: Vec<f64>,
    ttr_business: Vec<f64>,
    ttr_left_out: u64,
    by_category: ByCategory,
    rated: u64,
    satisfied: u64,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

/// The q-quantile with linear interpolation between closest ranks (as numpy's default).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// A statistic of TTR samples.
#[derive(Debug, Clone, Copy)]
enum Stat {
    Mean,
    /// The q-quantile, as [`quantile`].
    Quantile(f64),
}

impl Stat {
    /// The statistic of a sorted sample.
    fn of(self, sorted: &[f64]) -> f64 {
        match self {
            Stat::Mean => mean(sorted),
            Stat::Quantile(q) => quantile(sorted, q),
        }
    }

    /// The statistic of one resample of `sorted`: as many draws with replacement as it has
    /// values, drawn block by block ([`block_counts`]) so that each block's draws stay in
    /// cache, without building the resample. A quantile only needs two order statistics of the
    /// resample: as `sorted` is in order, the k-th smallest drawn value is the value at the
    /// k-th smallest drawn index, so only the blocks that hold the two ranks are drawn, and
    /// counting how often each of their indices is drawn finds them without a sort.
    fn of_resample(self, sorted: &[f64], rng: &mut Pcg64Mcg, scratch: &mut Scratch) -> f64 {
        let n = sorted.len();
        let Scratch { blocks, counts } = scratch;
        block_counts(n, rng, blocks);
        let block = |k: usize| &sorted[k * BLOCK..((k + 1) * BLOCK).min(n)];
        match self {
            Stat::Mean => {
                let mut sum = 0.0;
                for (k, &c) in blocks.iter().enumerate() {
                    let b = block(k);
                    draw_in_block(rng, b.len(), c, |i| sum += b[i]);
                }
                sum / n as f64
            }
            Stat::Quantile(q) => {
                let pos = q * (n - 1) as f64;
                let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
                // The blocks from the one holding rank lo to the one holding rank hi, and how
                // many draws fall before them.
                let (mut seen, mut first, mut last) = (0usize, None, 0);
                for (k, &c) in blocks.iter().enumerate() {
                    if first.is_none() && seen + c as usize > lo {
                        first = Some((k, seen));
                    }
                    seen += c as usize;
                    if seen > hi {
                        last = k;
                        break;
                    }
                }
                let (first, before) = first.expect("n draws reach every rank below n");
                let from = first * BLOCK;
                counts.clear();
                counts.resize(((last + 1) * BLOCK).min(n) - from, 0);
                for k in first..=last {
                    let counts = &mut counts[k * BLOCK - from..];
                    draw_in_block(rng, block(k).len(), blocks[k], |i| counts[i] += 1);
                }
                let (mut seen, mut low) = (before, None);
                for (j, &c) in counts.iter().enumerate() {
                    seen += c as usize;
                    if seen > lo && low.is_none() {
                        low = Some(sorted[from + j]);
                    }
                    if seen > hi {
                        let low = low.expect("rank lo <= hi is reached first");
                        return low + (sorted[from + j] - low) * (pos - lo as f64);
                    }
                }
                unreachable!("the blocks hold ranks lo and hi")
            }
        }
    }
}

/// Consecutive values of a sorted sample per block of a resample: 256, so that one random
/// `u64` gives eight uniform draws in a full block (a byte each).
const BLOCK: usize = 256;

/// Calls `each` with `draws` indices drawn uniformly, with replacement, from `0..size`. A full
/// block takes its indices eight at a time from the bytes of one random number (the random
/// numbers were most of a resample's time); the last, shorter block draws them one by one.
fn draw_in_block(rng: &mut Pcg64Mcg, size: usize, draws: u64, mut each: impl FnMut(usize)) {
    if size != BLOCK {
        (0..draws).for_each(|_| each(rng.random_range(0..size)));
        return;
    }
    let mut left = draws;
    while left > 0 {
        let bytes = rng.next_u64().to_le_bytes();
        let take = left.min(8) as usize;
        bytes[..take].iter().for_each(|&i| each(i as usize));
        left -= take as u64;
    }
}

/// How many of a resample's n draws (with replacement, from n values) fall in each block of
/// [`BLOCK`] values: Multinomial(n; block size / n), drawn block after block as
/// Binomial(draws left, block size / values left). Drawing each block's count, then its draws
/// uniformly within the block, gives the drawn indices the very distribution of n independent
/// uniform draws; but the draws of one block read a few KiB, where n uniform draws over a
/// sample of millions each miss the cache (measured: 19 ns a draw over 2.3 M values, 1.6 ns for
/// the random number alone).
fn block_counts(n: usize, rng: &mut Pcg64Mcg, out: &mut Vec<u64>) {
    out.clear();
    let (mut draws, mut values) = (n as u64, n as u64);
    for k in 0..n.div_ceil(BLOCK) {
        let size = BLOCK.min(n - k * BLOCK) as u64;
        let c = if draws == 0 || size == values {
            draws
        } else {
            Binomial::new(draws, size as f64 / values as f64)
                .expect("a share of the values left is a probability")
                .sample(rng)
        };
        out.push(c);
        draws -= c;
        values -= size;
    }
}

/// Buffers a resample reuses: its draws per block, and a quantile's draws per index.
#[derive(Default)]
struct Scratch {
    blocks: Vec<u64>,
    counts: Vec<u32>,
}

/// Change of a statistic (after − before) with a seeded percentile-bootstrap 95% interval. The
/// samples are sorted first: the query returns rows in no fixed order, and resampling by index
/// must not depend on it, so that the same seed always gives the same interval. Each resample
/// draws from a generator of its own, seeded by `seed` and its number, so the resamples run on
/// all cores and the interval does not depend on how many there are.
fn bootstrap(before: &[f64], after: &[f64], stat: Stat, resamples: usize, seed: u64) -> Change {
    let (before, after) = (sorted(before), sorted(after));
    let estimate = stat.of(&after) - stat.of(&before);
    let mut changes: Vec<f64> = (0..resamples as u64)
        .into_par_iter()
        .map_init(Scratch::default, |scratch, r| {
            let mut rng = Pcg64Mcg::seed_from_u64(seed ^ r.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let a = stat.of_resample(&after, &mut rng, scratch);
            a - stat.of_resample(&before, &mut rng, scratch)
        })
        .collect();
    changes.sort_by(f64::total_cmp);
    Change {
        estimate,
        low: quantile(&changes, 0.025),
        high: quantile(&changes, 0.975),
    }
}

fn window(t: &Tickets) -> Window {
    let weeks = (t.end - t.start) as f64 / (7.0 * 86_400e6);
    let (s, sb) = (sorted(&t.ttr), sorted(&t.ttr_business));
    let ci = wilson(t.satisfied as f64, t.rated as f64);
    Window {
        start: t.start,
        end: t.end,
        weeks,
        tickets: t.tickets,
        in_scope: t.in_scope,
        tickets_per_week: t.tickets as f64 / weeks,
        in_scope_per_week: t.in_scope as f64 / weeks,
        resolved: t.ttr.len() as u64,
        ttr_left_out: t.ttr_left_out,
        mean_ttr_hours: mean(&t.ttr),
        median_ttr_hours: quantile(&s, 0.5),
        p90_ttr_hours: quantile(&s, 0.9),
        mean_ttr_business_hours: mean(&t.ttr_business),
        median_ttr_business_hours: quantile(&sb, 0.5),
        p90_ttr_business_hours: quantile(&sb, 0.9),
        rated: t.rated,
        satisfied: t.satisfied,
        csat: (t.rated > 0).then(|| t.satisfied as f64 / t.rated as f64),
        csat_low: ci.map(|c| c.0),
        csat_high: ci.map(|c| c.1),
    }
}

/// Resolved tickets per category: how many, and the sum of their TTR in hours.
pub type ByCategory = BTreeMap<String, (u64, f64)>;

/// Counts one resolved ticket of `category` with `hours` of TTR.
fn count_in(by: &mut ByCategory, category: &str, hours: f64) {
    let e = match by.get_mut(category) {
        Some(e) => e,
        None => by.entry(category.to_string()).or_default(),
    };
    e.0 += 1;
    e.1 += hours;
}

/// The exact mix / within decomposition of the change in mean TTR, per category.
pub fn decompose(b: &ByCategory, a: &ByCategory) -> (f64, f64, f64, Vec<CategoryShift>) {
    let count = |m: &ByCategory| m.values().map(|v| v.0).sum::<u64>() as f64;
    let sum = |m: &ByCategory| m.values().map(|v| v.1).sum::<f64>();
    let (nb, na) = (count(b), count(a));
    let overall_before = sum(b) / nb;
    let mut cats: Vec<String> = b.keys().chain(a.keys()).cloned().collect();
    cats.sort();
    cats.dedup();
    let (mut mix, mut within) = (0.0, 0.0);
    let mut rows = Vec::new();
    for c in cats {
        let (bn, bsum) = b.get(&c).copied().unwrap_or_default();
        let (an, asum) = a.get(&c).copied().unwrap_or_default();
        let (sb, sa) = (bn as f64 / nb, an as f64 / na);
        let tb = if bn > 0 {
            bsum / bn as f64
        } else {
            overall_before
        };
        let ta = if an > 0 { asum / an as f64 } else { 0.0 };
        let m = (sa - sb) * tb;
        let w = sa * (ta - tb);
        mix += m;
        within += w;
        rows.push(CategoryShift {
            category: c,
            before_resolved: bn,
            after_resolved: an,
            before_share: sb,
            after_share: sa,
            before_mean_hours: (bn > 0).then_some(tb),
            after_mean_hours: (an > 0).then_some(ta),
            mix_hours: m,
            within_hours: w,
            small_sample: bn < SMALL_SAMPLE || an < SMALL_SAMPLE,
        });
    }
    let total = sum(a) / na - overall_before;
    (total, mix, within, rows)
}

/// The columns of `ttr_shift_tickets` that [`fold`] reads.
const COLUMNS: &str = "adoption_id, name, launched_at, window, window_start, window_end, ticket_id, \
    category, in_scope, ttr_hours, ttr_business_hours, ttr_left_out, satisfied";

/// Adds one batch of `ttr_shift_tickets` rows to each (adoption, window)'s tickets.
fn fold(out: &mut BTreeMap<(String, String), Tickets>, b: &RecordBatch) -> Result<()> {
    let col = |n: &str| {
        b.column_by_name(n)
            .expect("ttr_shift_tickets column")
            .clone()
    };
    let (id, name, launched, win) = (
        utf8(&col("adoption_id"))?,
        utf8(&col("name"))?,
        col("launched_at"),
        utf8(&col("window"))?,
    );
    let (start, end, cat, scope) = (
        col("window_start"),
        col("window_end"),
        utf8(&col("category"))?,
        col("in_scope"),
    );
    let (ttr, ttrb, sat) = (
        col("ttr_hours"),
        col("ttr_business_hours"),
        col("satisfied"),
    );
    let (ticket, left_out) = (col("ticket_id"), col("ttr_left_out"));
    for i in 0..b.num_rows() {
        let (id, win) = (id.value(i), win.value(i));
        // (a handful of windows: a scan finds one without allocating its key)
        let t = match out.iter_mut().find(|(k, _)| k.0 == id && k.1 == win) {
            Some((_, t)) => t,
            None => out.entry((id.to_string(), win.to_string())).or_default(),
        };
        if t.name.is_empty() {
            t.name = name.value(i).to_string();
        }
        t.launched_at = launched.as_primitive::<TimestampMicrosecondType>().value(i);
        t.start = start.as_primitive::<Int64Type>().value(i);
        t.end = end.as_primitive::<Int64Type>().value(i);
        if ticket.is_null(i) {
            continue; // the row of an empty window
        }
        t.tickets += 1;
        t.in_scope += scope.as_boolean().value(i) as u64;
        t.ttr_left_out += left_out.as_boolean().value(i) as u64;
        if !ttr.is_null(i) {
            let hours = ttr.as_primitive::<Float64Type>().value(i);
            t.ttr.push(hours);
            t.ttr_business
                .push(ttrb.as_primitive::<Float64Type>().value(i));
            count_in(&mut t.by_category, cat.value(i), hours);
        }
        if !sat.is_null(i) {
            t.rated += 1;
            t.satisfied += sat.as_boolean().value(i) as u64;
        }
    }
    Ok(())
}

/// The arguments ask what the lake cannot answer: no such adoption, or a window with too few
/// resolved tickets. (The command line exits 2 for it, as for a bad flag.)
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// The TTR shift around every adoption (or the one asked for). A window with fewer resolved
/// tickets than `min_tickets` is refused with the counts, rather than reported as if it meant
/// something.
pub async fn ttr_shift(engine: &Engine, opts: &ShiftOptions) -> Result<Vec<Shift>> {
    let each = ttr_shift_each(engine, opts).await?;
    if each.is_empty() {
        return Err(Refused(
            "no adoption has tickets in its windows: ingest adoptions, or give --launch and --scope"
                .into(),
        )
        .into());
    }
    each.into_iter().map(|a| a.shift).collect()
}

/// One adoption and its shift, or the reason there is none.
#[derive(Debug)]
pub struct Adopted {
    pub adoption_id: String,
    pub name: String,
    pub launched_at: Micros,
    pub shift: Result<Shift>,
}

/// As [`ttr_shift`], but one adoption's refusal (say, an after window not over yet) does not
/// hide the others; no adoption at all gives an empty list.
pub async fn ttr_shift_each(engine: &Engine, opts: &ShiftOptions) -> Result<Vec<Adopted>> {
    // Folded batch by batch: at ten million tickets the rows are a few GiB.
    let mut windows = BTreeMap::new();
    let query = format!("SELECT {COLUMNS} FROM ttr_shift_tickets");
    engine
        .for_each_batch(&query, |b| fold(&mut windows, b))
        .await?;
    let mut ids: Vec<String> = windows.keys().map(|k| k.0.clone()).collect();
    ids.dedup();
    if let Some(want) = &opts.adoption {
        if !ids.contains(want) {
            return Err(Refused(format!(
                "no adoption '{want}' with tickets around it (adoptions with tickets: {})",
                ids.join(", ")
            ))
            .into());
        }
        ids.retain(|i| i == want);
    }
    Ok(ids
        .into_iter()
        .map(|id| {
            let before = windows
                .remove(&(id.clone(), "before".into()))
                .unwrap_or_default();
            let after = windows
                .remove(&(id.clone(), "after".into()))
                .unwrap_or_default();
            let (name, launched_at) = (before.name.clone(), before.launched_at);
            Adopted {
                shift: shift(&id, before, after, opts),
                adoption_id: id,
                name,
                launched_at,
            }
        })
        .collect())
}

fn shift(id: &str, before: Tickets, after: Tickets, opts: &ShiftOptions) -> Result<Shift> {
    for (label, w) in [("before", &before), ("after", &after)] {
        if w.ttr.len() < opts.min_tickets {
            return Err(Refused(format!(
                "adoption {id}: the {label} window has {} resolved tickets (of {} opened), fewer than the {} needed; \
                 widen --window or choose another launch",
                w.ttr.len(),
                w.tickets,
                opts.min_tickets
            ))
            .into());
        }
    }
    let mut warnings = Vec::new();
    for (label, w) in [("before", &before), ("after", &after)] {
        if (w.ttr.len() as u64) < SMALL_SAMPLE {
            warnings.push(format!(
                "small sample: the {label} window has only {} resolved tickets; its TTR figures, intervals and \
                 decomposition rest on too few tickets to generalise",
                w.ttr.len()
            ));
        }
        if w.rated < SMALL_SAMPLE {
            warnings.push(format!(
                "small sample: the {label} window has {} ratings; see the CSAT interval",
                w.rated
            ));
        }
    }
    let (total, mix, within, categories) = decompose(&before.by_category, &after.by_category);
    let (wb, wa) = (window(&before), window(&after));
    // Six intervals (mean, median and p90 of calendar and business TTR), each with its own seed,
    // on all cores: the two headline ones always, the other four when asked for.
    let (median, p90) = (Stat::Quantile(0.5), Stat::Quantile(0.9));
    let stats = [Stat::Mean, median, p90, Stat::Mean, median, p90];
    let interval = |i: usize| {
        let (x, y) = if i < 3 {
            (&before.ttr, &after.ttr)
        } else {
            (&before.ttr_business, &after.ttr_business)
        };
        let seed = opts.seed.wrapping_add(i as u64 + 1);
        bootstrap(x, y, stats[i], opts.resamples, seed)
    };
    let others = match opts.intervals {
        Intervals::All => 2..6,
        Intervals::Headline => 2..2,
    };
    let ((mean_change, median_change), others) = rayon::join(
        || rayon::join(|| interval(0), || interval(1)),
        || others.into_par_iter().map(interval).collect::<Vec<_>>(),
    );
    // Statistics 2..6 in their order, or none.
    let [
        p90_change,
        mean_business_change,
        median_business_change,
        p90_business_change,
    ] = match <[Change; 4]>::try_from(others) {
        Ok(four) => four.map(Some),
        Err(_) => [None, None, None, None],
    };
    Ok(Shift {
        adoption_id: id.to_string(),
        name: after.name.clone(),
        launched_at: after.launched_at,
        deflection: (wb.in_scope_per_week > 0.0)
            .then(|| 1.0 - wa.in_scope_per_week / wb.in_scope_per_week),
        mean_change,
        median_change,
        p90_change,
        mean_business_change,
        median_business_change,
        p90_business_change,
        total_change_hours: total,
        mix_hours: mix,
        within_hours: within,
        categories,
        warnings,
        before: wb,
        after: wa,
        before_ttr_hours: before.ttr,
        after_ttr_hours: after.ttr,
    })
}

/// A shift as text for people: the windows side by side, the changes with their intervals, the
/// decomposition, and the categories (small samples marked).
pub fn render_text(s: &Shift) -> String {
    use crate::timeparse::format_micros;
    use std::fmt::Write;
    let mut o = String::new();
    let d = |t: Micros| format_micros(t)[..10].to_string();
    let _ = writeln!(
        o,
        "adoption {} \"{}\" launched {}",
        s.adoption_id,
        s.name,
        d(s.launched_at)
    );
    let _ = writeln!(
        o,
        "{:<24}{:>32}{:>32}",
        "",
        format!("before {}..{}", d(s.before.start), d(s.before.end)),
        format!("after {}..{}", d(s.after.start), d(s.after.end))
    );
    let row = |o: &mut String, label: &str, b: String, a: String| {
        let _ = writeln!(o, "{label:<24}{b:>32}{a:>32}");
    };
    type Cell = fn(&Window) -> String;
    let rows: [(&str, Cell); 7] = [
        ("tickets per week", |w| format!("{:.1}", w.tickets_per_week)),
        ("in scope per week", |w| {
            format!("{:.1}", w.in_scope_per_week)
        }),
        ("resolved tickets", |w| w.resolved.to_string()),
        ("mean TTR (h)", |w| format!("{:.2}", w.mean_ttr_hours)),
        ("median TTR (h)", |w| format!("{:.2}", w.median_ttr_hours)),
        ("p90 TTR (h)", |w| format!("{:.2}", w.p90_ttr_hours)),
        ("mean TTR (business h)", |w| {
            format!("{:.2}", w.mean_ttr_business_hours)
        }),
    ];
    for (label, cell) in rows {
        row(&mut o, label, cell(&s.before), cell(&s.after));
    }
    let csat = |w: &Window| match (w.csat, w.csat_low, w.csat_high) {
        (Some(c), Some(l), Some(h)) => format!("{c:.3} [{l:.3}, {h:.3}] n={}", w.rated),
        _ => "no ratings".to_string(),
    };
    row(&mut o, "CSAT", csat(&s.before), csat(&s.after));
    if s.before.ttr_left_out + s.after.ttr_left_out > 0 {
        let n = |w: &Window| w.ttr_left_out.to_string();
        row(&mut o, "left out of TTR", n(&s.before), n(&s.after));
    }
    for w in &s.warnings {
        let _ = writeln!(o, "WARNING {w}");
    }
    if let Some(x) = s.deflection {
        let _ = writeln!(o, "deflection (in scope): {:.3}", x);
    }
    let ch = |c: &Change| format!("{:+.2} h [{:+.2}, {:+.2}]", c.estimate, c.low, c.high);
    let _ = writeln!(o, "change in mean TTR:   {}", ch(&s.mean_change));
    let _ = writeln!(o, "change in median TTR: {}", ch(&s.median_change));
    if let Some(c) = &s.p90_change {
        let _ = writeln!(o, "change in p90 TTR:    {}", ch(c));
    }
    if let Some(c) = &s.mean_business_change {
        let _ = writeln!(o, "change in mean business TTR: {}", ch(c));
    }
    let _ = writeln!(
        o,
        "decomposition: total {:+.3} h = mix {:+.3} h + within categories {:+.3} h",
        s.total_change_hours, s.mix_hours, s.within_hours
    );
    let _ = writeln!(
        o,
        "{:<24}{:>9}{:>9}{:>9}{:>9}{:>10}{:>10}{:>9}{:>9}",
        "category",
        "n before",
        "n after",
        "share b",
        "share a",
        "mean b h",
        "mean a h",
        "mix h",
        "within h"
    );
    for c in &s.categories {
        let m = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.2}"));
        let _ = writeln!(
            o,
            "{:<24}{:>9}{:>9}{:>9.3}{:>9.3}{:>10}{:>10}{:>9.3}{:>9.3}{}",
            c.category,
            c.before_resolved,
            c.after_resolved,
            c.before_share,
            c.after_share,
            m(c.before_mean_hours),
            m(c.after_mean_hours),
            c.mix_hours,
            c.within_hours,
            if c.small_sample { "  small sample" } else { "" }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(v: &[(&str, f64)]) -> ByCategory {
        let mut m = ByCategory::new();
        v.iter().for_each(|(c, x)| count_in(&mut m, c, *x));
        m
    }

    #[test]
    fn decomposition_is_exact_and_worked_out() {
        // Before: 2 resets (1 h) and 2 hardware (9 h): mean 5 h. After: 1 reset (1 h), 3 hardware
        // (11 h): mean 8.5 h. Shares 0.5/0.5 → 0.25/0.75.
        // mix = (0.25 − 0.5)·1 + (0.75 − 0.5)·9 = 2; within = 0.25·0 + 0.75·(11 − 9) = 1.5.
        let b = rows(&[("reset", 1.0), ("reset", 1.0), ("hw", 9.0), ("hw", 9.0)]);
        let a = rows(&[("reset", 1.0), ("hw", 11.0), ("hw", 11.0), ("hw", 11.0)]);
        let (total, mix, within, cats) = decompose(&b, &a);
        assert!(
            (total - 3.5).abs() < 1e-12
                && (mix - 2.0).abs() < 1e-12
                && (within - 1.5).abs() < 1e-12
        );
        assert_eq!(cats.len(), 2);
    }

    #[test]
    fn a_new_category_keeps_the_sum_exact() {
        let b = rows(&[("a", 2.0), ("a", 4.0)]);
        let a = rows(&[("a", 3.0), ("new", 10.0)]);
        let (total, mix, within, cats) = decompose(&b, &a);
        assert!((mix + within - total).abs() < 1e-12);
        assert_eq!(
            cats.iter()
                .find(|c| c.category == "new")
                .unwrap()
                .before_mean_hours,
            None
        );
    }

    #[test]
    fn quantiles_interpolate() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&v, 0.5), 2.5);
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert!((quantile(&v, 0.9) - 3.7).abs() < 1e-12);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_estimate() {
        let before: Vec<f64> = (0..200).map(|i| (i % 10) as f64).collect();
        let after: Vec<f64> = (0..200).map(|i| (i % 10) as f64 + 2.0).collect();
        let c1 = bootstrap(&before, &after, Stat::Mean, 500, 7);
        // The same samples in another order give the same interval.
        let (mut b2, mut a2) = (before.clone(), after.clone());
        b2.reverse();
        a2.rotate_left(37);
        let c2 = bootstrap(&b2, &a2, Stat::Mean, 500, 7);
        assert_eq!(c1, c2);
        assert!((c1.estimate - 2.0).abs() < 1e-12);
        assert!(c1.low < 2.0 && 2.0 < c1.high);
        // The resamples run on all cores; on one thread the interval is the same.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let c3 = one.install(|| bootstrap(&before, &after, Stat::Mean, 500, 7));
        assert_eq!(c1, c3);
    }

    /// The reports' headline intervals are the very ones of a full shift, and the others are
    /// not computed.
    #[test]
    fn headline_intervals_are_those_of_the_full_shift() {
        let window = |offset: f64| Tickets {
            name: "bot".into(),
            tickets: 300,
            in_scope: 300,
            ttr: (0..300).map(|i| (i % 37) as f64 * 0.5 + offset).collect(),
            ttr_business: (0..300).map(|i| (i % 11) as f64 + offset).collect(),
            by_category: (0..3)
                .map(|c| {
                    let ttr = (0..300)
                        .filter(|i| i % 3 == c)
                        .map(|i| (i % 37) as f64 * 0.5);
                    (format!("c{c}"), (100, ttr.sum::<f64>() + 100.0 * offset))
                })
                .collect(),
            end: 7 * 86_400_000_000,
            ..Tickets::default()
        };
        let opts = |intervals| ShiftOptions {
            resamples: 200,
            intervals,
            ..ShiftOptions::default()
        };
        let all = shift("A", window(0.0), window(1.0), &opts(Intervals::All)).unwrap();
        let head = shift("A", window(0.0), window(1.0), &opts(Intervals::Headline)).unwrap();
        assert_eq!(head.mean_change, all.mean_change);
        assert_eq!(head.median_change, all.median_change);
        assert!(all.p90_change.is_some() && all.p90_business_change.is_some());
        assert_eq!((head.p90_change, head.mean_business_change), (None, None));
        assert_eq!(
            (head.median_business_change, head.p90_business_change),
            (None, None)
        );
        assert!(render_text(&all).contains("change in p90 TTR"));
        assert!(!render_text(&head).contains("change in p90 TTR"));
    }

    /// `resamples` statistics of resamples built as first written: n independent uniform
    /// draws, the resample's mean, or its quantile after a sort.
    fn built_resamples(x: &[f64], stat: Stat, resamples: usize, seed: u64) -> Vec<f64> {
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        (0..resamples)
            .map(|_| {
                let v: Vec<f64> = (0..x.len())
                    .map(|_| x[rng.random_range(0..x.len())])
                    .collect();
                match stat {
                    Stat::Mean => mean(&v),
                    Stat::Quantile(q) => quantile(&sorted(&v), q),
                }
            })
            .collect()
    }

    /// The largest distance between the empirical distribution functions of two samples.
    fn ks_distance(a: &[f64], b: &[f64]) -> f64 {
        let (a, b) = (sorted(a), sorted(b));
        let below = |v: &[f64], t: f64| v.partition_point(|&x| x <= t) as f64 / v.len() as f64;
        a.iter()
            .chain(&b)
            .map(|&t| (below(&a, t) - below(&b, t)).abs())
            .fold(0.0, f64::max)
    }

    /// Resamples drawn block by block have the distribution of n independent uniform draws:
    /// each statistic's resample distribution matches that of built resamples (two-sample
    /// Kolmogorov–Smirnov distance under its 0.1% critical value), and the resample mean has
    /// the sample's mean and its variance / n.
    #[test]
    fn block_resamples_have_the_distribution_of_uniform_draws() {
        const R: usize = 1000;
        let critical = 1.95 * (2.0 / R as f64).sqrt();
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        // Samples with ties, a -0.0, one or two values, and several blocks with a short last one.
        for n in [1usize, 2, 3, 10, 101, 3 * BLOCK + 17] {
            let mut x: Vec<f64> = (0..n)
                .map(|_| rng.random_range(0..40) as f64 / 4.0)
                .collect();
            x[0] = -0.0;
            let x = sorted(&x);
            for stat in [
                Stat::Mean,
                Stat::Quantile(0.5),
                Stat::Quantile(0.9),
                Stat::Quantile(0.1),
            ] {
                let mut r = Pcg64Mcg::seed_from_u64(1001);
                let mut scratch = Scratch::default();
                let blocked: Vec<f64> = (0..R)
                    .map(|_| stat.of_resample(&x, &mut r, &mut scratch))
                    .collect();
                let built = built_resamples(&x, stat, R, 2002);
                let d = ks_distance(&blocked, &built);
                assert!(
                    d < critical,
                    "{stat:?} n={n}: KS distance {d} >= {critical}"
                );
                if let Stat::Mean = stat {
                    let var = x.iter().map(|v| (v - mean(&x)).powi(2)).sum::<f64>() / n as f64;
                    let m = mean(&blocked);
                    let v = blocked.iter().map(|b| (b - m).powi(2)).sum::<f64>() / R as f64;
                    let se = (var / n as f64 / R as f64).sqrt();
                    assert!((m - mean(&x)).abs() <= 4.0 * se + 1e-12, "n={n}: mean {m}");
                    // The variance of R resample means is within 20% of var / n (its relative
                    // standard error is sqrt(2 / R), 4.5%).
                    assert!((v - var / n as f64).abs() <= 0.2 * var / n as f64 + 1e-12);
                }
            }
        }
    }
}
