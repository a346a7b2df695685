//! Satisfaction for the tickets nobody rated (`deskpulse predict`): a logistic regression of
//! P(satisfied) on what is known when a ticket is resolved (queries/prediction_features.sql),
//! fitted on the older rated tickets and validated on the most recent fifth by rating time,
//! which the fit never sees. It is published only when the validated AUC's lower 95% bound
//! clears 0.5 by a margin; otherwise the lake's ratings cannot be told from chance and nothing
//! is predicted. docs/prediction.md says what it is and is not.

pub mod features;
pub mod validation;

use anyhow::{Context, Result, bail};
use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::engine::Engine;
use crate::lake::Lake;
use crate::model::{Micros, Prediction, RecordedModel, Table};
pub use features::{Design, Example, SoFar};
use validation::{Auc, Decile};

/// How a prediction is made and judged.
#[derive(Debug, Clone)]
pub struct Options {
    /// The AUC's lower bound must exceed 0.5 by this much for the model to be published.
    pub margin: f64,
    /// Share of the rated tickets, the most recently rated, held out for validation.
    pub validation_share: f64,
    /// Bootstrap refits behind the drivers' intervals (0: no intervals).
    pub driver_refits: usize,
    /// The drivers are computed on at most this many training tickets (a seeded sample when
    /// there are more): 40 refits on a million-ticket lake's ratings would take minutes, and
    /// a sample's intervals are wider, never narrower, than the whole set's.
    pub driver_rows: usize,
    /// Seed of the bootstrap.
    pub seed: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            margin: 0.05,
            validation_share: 0.2,
            driver_refits: 40,
            driver_rows: 20_000,
            seed: 42,
        }
    }
}

/// Fewer training or validation tickets than these, or fewer of either outcome, and no model
/// is fitted: an AUC on a handful of tickets says nothing.
pub const MIN_TRAIN: usize = 100;
pub const MIN_VALIDATION: usize = 50;
pub const MIN_CLASS: usize = 10;

/// What `deskpulse predict` found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// Whether the model beat chance by the margin and its predictions are published.
    pub published: bool,
    /// Why not, in words (None when published).
    pub reason: Option<String>,
    /// Validated on tickets the fit never saw (None: too few to validate).
    pub auc: Option<f64>,
    pub auc_low: Option<f64>,
    pub auc_high: Option<f64>,
    pub brier: Option<f64>,
    /// The Brier score of always predicting the training rate (what the model must beat).
    pub brier_base_rate: Option<f64>,
    /// Mean predicted P(satisfied) minus the share satisfied, over the validation tickets: how
    /// far the model's average is off on tickets it never saw (the estimated CSAT carries it).
    pub validation_bias: Option<f64>,
    pub margin: f64,
    pub resolved_tickets: usize,
    pub rated_tickets: usize,
    pub train_tickets: usize,
    pub validation_tickets: usize,
    /// Training tickets are those rated before this moment; validation ones at or after it.
    pub split_at: Option<Micros>,
    /// Unrated resolved tickets given a probability (0 unless published).
    pub predicted_tickets: usize,
    /// Share of training tickets satisfied.
    pub train_satisfied: Option<f64>,
    pub model_id: Option<String>,
    pub calibration: Vec<Decile>,
    pub drivers: Vec<Driver>,
    /// Training tickets the drivers were computed on (a seeded sample of them on a large lake).
    pub driver_tickets: usize,
    /// The predictions when published: unrated resolved tickets, by ticket id.
    #[serde(skip)]
    pub predictions: Vec<(String, f64)>,
    /// The published model itself (what `--record` stores for `stream`).
    #[serde(skip)]
    pub model: Option<(Design, Model)>,
}

/// A published model as recorded in the lake's `models` table: what scores a ticket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    pub model_id: String,
    pub predicted_at: Micros,
    pub design: Design,
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl Spec {
    /// P(satisfied) of one ticket.
    pub fn probability(&self, e: &Example) -> f64 {
        let model = Model {
            weights: self.weights.clone(),
            intercept: self.intercept,
        };
        model.probabilities(&self.design.matrix(&[e]))[0]
    }

    /// The latest model recorded in the lake (by `predicted_at`, ties: the higher id), if any.
    pub fn latest(lake: &Lake) -> Result<Option<Spec>> {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::TimestampMicrosecondType;
        let mut best: Option<(Micros, String, String)> = None;
        for b in lake.scan(Table::Models, None)? {
            let col = |name: &str| b.column_by_name(name).expect("models schema").clone();
            let (ids, at, spec) = (col("model_id"), col("predicted_at"), col("spec"));
            let (ids, at, spec) = (
                ids.as_string::<i32>(),
                at.as_primitive::<TimestampMicrosecondType>(),
                spec.as_string::<i32>(),
            );
            for i in 0..b.num_rows() {
                let row = (
                    at.value(i),
                    ids.value(i).to_string(),
                    spec.value(i).to_string(),
                );
                if best.as_ref().is_none_or(|b| (row.0, &row.1) > (b.0, &b.1)) {
                    best = Some(row);
                }
            }
        }
        best.map(|(_, id, spec)| {
            serde_json::from_str(&spec).with_context(|| format!("model {id} in the lake"))
        })
        .transpose()
    }
}

/// How one change to a ticket moves P(satisfied), on average over the training tickets, with
/// a 95% bootstrap interval (percentiles of refits on resampled training tickets).
#[derive(Debug, Clone, Serialize)]
pub struct Driver {
    pub change: String,
    /// In points of P(satisfied) (5.0: five percentage points).
    pub points: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
}

/// Fits, validates and, when it beats chance, predicts, from the engine's lake as of its
/// params' `as_of`.
pub async fn predict(engine: &Engine, options: &Options) -> Result<Outcome> {
    let batches = engine.metric("prediction_features").await?;
    let examples = features::examples(&batches)?;
    Ok(assess(&examples, options))
}

/// The rated examples split by rating time: the oldest (1 - share) train, the rest validate;
/// tickets rated at the very moment of the split validate, so every training ticket was rated
/// before every validation ticket. Returns (train, validation, the split time).
pub fn split(examples: &[Example], share: f64) -> (Vec<&Example>, Vec<&Example>, Option<Micros>) {
    let mut rated: Vec<&Example> = examples
        .iter()
        .filter(|e| e.satisfied.is_some() && e.rated_at.is_some())
        .collect();
    rated.sort_by(|a, b| {
        a.rated_at
            .cmp(&b.rated_at)
            .then(a.ticket_id.cmp(&b.ticket_id))
    });
    let cut = rated.len() - ((rated.len() as f64 * share).round() as usize).min(rated.len());
    let Some(split_at) = rated.get(cut).and_then(|e| e.rated_at) else {
        return (rated, Vec::new(), None);
    };
    let (train, validation): (Vec<&Example>, Vec<&Example>) = rated
        .into_iter()
        .partition(|e| e.rated_at.is_some_and(|t| t < split_at));
    (train, validation, Some(split_at))
}

/// The whole assessment on rows already read.
pub fn assess(examples: &[Example], options: &Options) -> Outcome {
    let (train, validation, split_at) = split(examples, options.validation_share);
    let rated = train.len() + validation.len();
    let mut out = Outcome {
        published: false,
        reason: None,
        auc: None,
        auc_low: None,
        auc_high: None,
        brier: None,
        brier_base_rate: None,
        validation_bias: None,
        margin: options.margin,
        resolved_tickets: examples.len(),
        rated_tickets: rated,
        train_tickets: train.len(),
        validation_tickets: validation.len(),
        split_at,
        predicted_tickets: 0,
        train_satisfied: None,
        model_id: None,
        calibration: Vec::new(),
        drivers: Vec::new(),
        driver_tickets: 0,
        predictions: Vec::new(),
        model: None,
    };
    let outcome = |rows: &[&Example]| -> Vec<bool> {
        rows.iter().map(|e| e.satisfied == Some(true)).collect()
    };
    let (y_train, y_valid) = (outcome(&train), outcome(&validation));
    let classes = |y: &[bool]| {
        let yes = y.iter().filter(|s| **s).count();
        yes.min(y.len() - yes)
    };
    if train.len() < MIN_TRAIN
        || validation.len() < MIN_VALIDATION
        || classes(&y_train) < MIN_CLASS
        || classes(&y_valid) < MIN_CLASS
    {
        out.reason = Some(format!(
            "too few rated tickets to fit and validate a model: {} to train and {} to validate \
             (at least {MIN_TRAIN} and {MIN_VALIDATION}, each with {MIN_CLASS} satisfied and \
             {MIN_CLASS} not)",
            train.len(),
            validation.len()
        ));
        return out;
    }
    let design = Design::learn(&train);
    let x_train = design.matrix(&train);
    let model = match fit(&x_train, &y_train) {
        Ok(m) => m,
        Err(e) => {
            out.reason = Some(format!("the model could not be fitted: {e}"));
            return out;
        }
    };
    let rate = y_train.iter().filter(|s| **s).count() as f64 / y_train.len() as f64;
    out.train_satisfied = Some(rate);
    let p_valid = model.probabilities(&design.matrix(&validation)).to_vec();
    let Some(Auc { auc, low, high }) = validation::auc(&p_valid, &y_valid) else {
        unreachable!("both outcomes are in the validation set")
    };
    (out.auc, out.auc_low, out.auc_high) = (Some(auc), Some(low), Some(high));
    out.brier = Some(validation::brier(&p_valid, &y_valid));
    out.brier_base_rate = Some(validation::brier(&vec![rate; y_valid.len()], &y_valid));
    out.calibration = validation::calibration(&p_valid, &y_valid);
    let mean = |x: &mut dyn Iterator<Item = f64>| x.sum::<f64>() / y_valid.len() as f64;
    out.validation_bias =
        Some(mean(&mut p_valid.iter().copied()) - mean(&mut y_valid.iter().map(|s| f64::from(*s))));
    (out.drivers, out.driver_tickets) = drivers(&design, &x_train, &y_train, &model, options);
    out.model_id = Some(model.id(split_at));
    if low <= 0.5 + options.margin {
        let verdict = if low > 0.5 {
            "the model beats chance on this lake, but not by the margin asked for"
        } else {
            "the ratings cannot be predicted from this lake better than chance"
        };
        out.reason = Some(format!(
            "{verdict}: the validated AUC's 95% interval is {low:.3}-{high:.3}, and its lower \
             bound must exceed {:.3}",
            0.5 + options.margin
        ));
        return out;
    }
    let unrated: Vec<&Example> = examples.iter().filter(|e| e.satisfied.is_none()).collect();
    let p = model.probabilities(&design.matrix(&unrated));
    out.predictions = unrated
        .iter()
        .zip(p.iter())
        .map(|(e, p)| (e.ticket_id.clone(), *p))
        .collect();
    out.predicted_tickets = out.predictions.len();
    out.published = true;
    out.model = Some((design, model));
    out
}

/// Writes a published outcome's predictions to the lake's `predictions` table, and the model
/// to `models`, in one commit, keyed by ticket and model: recording the same model again
/// replaces its rows, so a rerun on an unchanged lake leaves the tables as they were. Returns
/// the predictions written (0, and no commit, when nothing was published).
pub fn record(lake: &Lake, outcome: &Outcome, as_of: Micros) -> Result<u64> {
    let (Some(model_id), Some(bias), Some((design, model)), true) = (
        outcome.model_id.as_deref(),
        outcome.validation_bias,
        &outcome.model,
        outcome.published,
    ) else {
        return Ok(0);
    };
    let spec = Spec {
        model_id: model_id.to_string(),
        predicted_at: as_of,
        design: design.clone(),
        weights: model.weights.clone(),
        intercept: model.intercept,
    };
    let lock = lake.lock()?;
    let mut staging = lake.stage("predict-record")?;
    staging.push(RecordedModel {
        model_id: model_id.to_string(),
        predicted_at: as_of,
        spec: serde_json::to_string(&spec)?,
    })?;
    for (ticket_id, probability) in &outcome.predictions {
        staging.push(Prediction {
            ticket_id: ticket_id.clone(),
            model_id: model_id.to_string(),
            predicted_at: as_of,
            p_satisfied: *probability,
            validation_bias: bias,
            validation_tickets: outcome.validation_tickets as u64,
        })?;
    }
    staging.commit_locked(lake, &lock)?;
    Ok(outcome.predictions.len() as u64)
}

/// A fitted logistic regression: P(satisfied) = 1 / (1 + exp(-(x . weights + intercept))).
#[derive(Debug, Clone)]
pub struct Model {
    pub weights: Vec<f64>,
    pub intercept: f64,
}

impl Model {
    pub fn probabilities(&self, x: &Array2<f64>) -> Array1<f64> {
        let z = x.dot(&Array1::from(self.weights.clone())) + self.intercept;
        z.mapv(|z| 1.0 / (1.0 + (-z).exp()))
    }

    /// A short name for this model: a hash of its split time and coefficients.
    fn id(&self, split_at: Option<Micros>) -> String {
        let mut h = Sha256::new();
        h.update(split_at.unwrap_or_default().to_le_bytes());
        for w in self.weights.iter().chain([&self.intercept]) {
            h.update(w.to_le_bytes());
        }
        crate::hex(&h.finalize()[..6])
    }
}

/// Fits P(satisfied) with linfa's logistic regression (L-BFGS; a light L2 penalty keeps the
/// fit finite when a level separates the outcomes).
pub fn fit(x: &Array2<f64>, y: &[bool]) -> Result<Model> {
    if x.ncols() == 0 {
        bail!("no feature varies among the training tickets");
    }
    let data = Dataset::new(x.clone(), Array1::from(y.to_vec()));
    let fitted = LogisticRegression::default()
        .alpha(1.0)
        .max_iterations(200)
        .fit(&data)?;
    // linfa models the more frequent class as its positive one: turn it into P(satisfied).
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok(Model {
        weights: fitted.params().iter().map(|w| sign * w).collect(),
        intercept: sign * fitted.intercept(),
    })
}

/// Each change's mean effect on P(satisfied) over the training tickets (or a seeded sample of
/// `driver_rows` of them), with percentile intervals from refits on bootstrap resamples; and
/// how many tickets that was.
fn drivers(
    design: &Design,
    x: &Array2<f64>,
    y: &[bool],
    model: &Model,
    options: &Options,
) -> (Vec<Driver>, usize) {
    let changes = design.changes();
    let mut rng = Pcg64Mcg::seed_from_u64(options.seed);
    let sample: Vec<usize> = if y.len() > options.driver_rows {
        rand::seq::index::sample(&mut rng, y.len(), options.driver_rows).into_vec()
    } else {
        (0..y.len()).collect()
    };
    let x = &x.select(ndarray::Axis(0), &sample);
    let y: Vec<bool> = sample.iter().map(|r| y[*r]).collect();
    let mut refits: Vec<Vec<f64>> = vec![Vec::new(); changes.len()];
    for _ in 0..options.driver_refits {
        let rows: Vec<usize> = (0..y.len()).map(|_| rng.random_range(0..y.len())).collect();
        let xb = x.select(ndarray::Axis(0), &rows);
        let yb: Vec<bool> = rows.iter().map(|r| y[*r]).collect();
        // A resample with one outcome only cannot be fitted: it is skipped.
        if let Ok(m) = fit(&xb, &yb) {
            for (c, out) in changes.iter().zip(refits.iter_mut()) {
                out.push(c.effect(x, &m.weights, m.intercept));
            }
        }
    }
    let drivers = changes
        .iter()
        .zip(refits)
        .map(|(c, mut effects)| {
            effects.sort_by(f64::total_cmp);
            let q = |p: f64| {
                (effects.len() >= 20)
                    .then(|| 100.0 * effects[((effects.len() - 1) as f64 * p).round() as usize])
            };
            Driver {
                change: c.name.clone(),
                points: 100.0 * c.effect(x, &model.weights, model.intercept),
                low: q(0.025),
                high: q(0.975),
            }
        })
        .collect();
    (drivers, y.len())
}

/// The outcome as a manager reads it.
pub fn render_text(o: &Outcome) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Satisfaction prediction: {} resolved tickets, {} rated",
        o.resolved_tickets, o.rated_tickets
    );
    if let Some(at) = o.split_at {
        let _ = writeln!(
            s,
            "  fitted on {} tickets rated before {}, validated on the {} rated since",
            o.train_tickets,
            crate::timeparse::format_micros(at),
            o.validation_tickets
        );
    }
    if let (Some(auc), Some(low), Some(high), Some(brier), Some(base), Some(bias)) = (
        o.auc,
        o.auc_low,
        o.auc_high,
        o.brier,
        o.brier_base_rate,
        o.validation_bias,
    ) {
        let _ = writeln!(
            s,
            "  validation: AUC {auc:.3} (95% CI {low:.3}-{high:.3}; chance is 0.5), \
             Brier {brier:.4} (always the training rate: {base:.4}), mean prediction {:+.1} \
             points from the observed share",
            100.0 * bias
        );
    }
    match (&o.reason, o.published) {
        (_, true) => {
            let _ = writeln!(
                s,
                "  published: model {} predicts the {} unrated resolved tickets",
                o.model_id.as_deref().unwrap_or("?"),
                o.predicted_tickets
            );
        }
        (Some(reason), false) => {
            let _ = writeln!(s, "  not published: {reason}; nothing is predicted");
        }
        (None, false) => {}
    }
    if !o.calibration.is_empty() {
        let _ = writeln!(
            s,
            "\nCalibration on the validation tickets, by tenth of predicted P(satisfied):"
        );
        let _ = writeln!(
            s,
            "  {:>6} {:>8} {:>10} {:>9}",
            "tenth", "tickets", "predicted", "observed"
        );
        for d in &o.calibration {
            let _ = writeln!(
                s,
                "  {:>6} {:>8} {:>9.1}% {:>8.1}%",
                d.decile,
                d.tickets,
                100.0 * d.predicted,
                100.0 * d.observed
            );
        }
    }
    if !o.drivers.is_empty() {
        let over = if o.driver_tickets < o.train_tickets {
            format!("a sample of {} training tickets", o.driver_tickets)
        } else {
            "the training tickets".to_string()
        };
        let _ = writeln!(
            s,
            "\nDrivers: points of P(satisfied), on average over {over} (95% interval):"
        );
        for d in &o.drivers {
            let interval = match (d.low, d.high) {
                (Some(l), Some(h)) => format!("({l:+.1} to {h:+.1})"),
                _ => String::new(),
            };
            let _ = writeln!(s, "  {:>+6.1} {:<18} {}", d.points, interval, d.change);
        }
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2,000 resolved tickets, three in four rated (at hour i); satisfaction drawn from
    /// `p_satisfied(reassignments, channel)`.
    fn lake(p_satisfied: impl Fn(f64, &str) -> f64) -> Vec<Example> {
        let mut rng = Pcg64Mcg::seed_from_u64(3);
        (0..2000)
            .map(|i| {
                let reassignments = f64::from(rng.random_range(0..4u8));
                let channel = ["chat", "email", "phone"][i % 3];
                let rated = i % 4 != 0;
                let satisfied = rated.then(|| rng.random_bool(p_satisfied(reassignments, channel)));
                let at = rated.then_some(i as i64 * 3_600_000_000);
                Example::for_test(i, at, satisfied, reassignments, channel)
            })
            .collect()
    }

    #[test]
    fn validation_tickets_are_the_latest_rated_and_never_trained_on() {
        let mut examples = lake(|_, _| 0.7);
        let (train, valid, at) = split(&examples, 0.2);
        let at = at.unwrap();
        assert_eq!((train.len(), valid.len()), (1200, 300));
        assert!(train.iter().all(|e| e.rated_at.unwrap() < at));
        assert!(valid.iter().all(|e| e.rated_at.unwrap() >= at));
        let ids: std::collections::HashSet<&str> =
            train.iter().map(|e| e.ticket_id.as_str()).collect();
        assert!(valid.iter().all(|e| !ids.contains(e.ticket_id.as_str())));
        // The last two training tickets, rated at the very moment of the split: they validate.
        let moved: Vec<String> = train
            .iter()
            .rev()
            .take(2)
            .map(|e| e.ticket_id.clone())
            .collect();
        for e in examples.iter_mut().filter(|e| moved.contains(&e.ticket_id)) {
            e.rated_at = Some(at);
        }
        let (train, valid, again) = split(&examples, 0.2);
        assert_eq!(again, Some(at));
        assert_eq!((train.len(), valid.len()), (1198, 302));
    }

    #[test]
    fn a_real_effect_is_published_and_noise_is_not() {
        // Each reassignment costs 20 points; chat 10 points above the rest.
        let o = assess(
            &lake(|r, c| 0.9 - 0.2 * r + if c == "chat" { 0.1 } else { 0.0 }),
            &Options::default(),
        );
        assert!(o.published, "{o:#?}");
        assert_eq!(o.predicted_tickets, 500);
        let each = o
            .drivers
            .iter()
            .find(|d| d.change == "each reassignment")
            .unwrap();
        assert!((-26.0..-14.0).contains(&each.points), "{each:?}");
        assert!(each.low.unwrap() < each.points && each.points < each.high.unwrap());
        // On a sample of 600 of the 1,200 training tickets: the same effect, a wider interval.
        let sampled = assess(
            &lake(|r, c| 0.9 - 0.2 * r + if c == "chat" { 0.1 } else { 0.0 }),
            &Options {
                driver_rows: 600,
                ..Options::default()
            },
        );
        assert_eq!((sampled.driver_tickets, o.driver_tickets), (600, 1200));
        let half = sampled
            .drivers
            .iter()
            .find(|d| d.change == "each reassignment")
            .unwrap();
        assert!((-26.0..-14.0).contains(&half.points), "{half:?}");
        assert!(half.high.unwrap() - half.low.unwrap() > each.high.unwrap() - each.low.unwrap());
        let noise = assess(&lake(|_, _| 0.7), &Options::default());
        assert!(
            !noise.published && noise.predicted_tickets == 0,
            "{noise:#?}"
        );
        assert!(noise.auc_low.unwrap() < 0.55);
        // Too few ratings: no fit at all.
        let few = assess(&lake(|_, _| 0.7)[..100], &Options::default());
        assert!(!few.published && few.auc.is_none());
        assert!(few.reason.unwrap().starts_with("too few rated tickets"));
    }
}
