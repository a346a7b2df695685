//! How good predictions of P(satisfied) are on tickets the model never saw: AUC with DeLong's
//! 95% interval, the Brier score, and a calibration table by decile.

use serde::Serialize;

/// The area under the ROC curve and its 95% interval (DeLong, DeLong and Clarke-Pearson 1988:
/// the variance from each positive's and each negative's placement values; ties count half).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Auc {
    pub auc: f64,
    pub low: f64,
    pub high: f64,
}

/// AUC of `scores` for `labels` (true: the positive class). None when a class is missing.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<Auc> {
    let (auc, se) = delong(scores, labels)?;
    Some(Auc {
        auc,
        low: (auc - Z95 * se).max(0.0),
        high: (auc + Z95 * se).min(1.0),
    })
}

/// The normal quantile of a two-sided 95% interval.
const Z95: f64 = 1.959_963_984_540_054;

/// The AUC and its standard error.
fn delong(scores: &[f64], labels: &[bool]) -> Option<(f64, f64)> {
    let m = labels.iter().filter(|l| **l).count();
    let n = labels.len() - m;
    if m == 0 || n == 0 {
        return None;
    }
    // Midranks of every score among all, among the positives and among the negatives.
    let all = midranks(scores);
    let pos: Vec<f64> = pick(scores, labels, true);
    let neg: Vec<f64> = pick(scores, labels, false);
    let (rank_pos, rank_neg) = (midranks(&pos), midranks(&neg));
    let all_pos = pick(&all, labels, true);
    let all_neg = pick(&all, labels, false);
    // A positive's placement: the share of negatives it beats; a negative's: the share of
    // positives that beat it.
    let v10: Vec<f64> = all_pos
        .iter()
        .zip(&rank_pos)
        .map(|(a, r)| (a - r) / n as f64)
        .collect();
    let v01: Vec<f64> = all_neg
        .iter()
        .zip(&rank_neg)
        .map(|(a, r)| 1.0 - (a - r) / m as f64)
        .collect();
    let auc = v10.iter().sum::<f64>() / m as f64;
    let var = |v: &[f64]| {
        if v.len() < 2 {
            return 0.0;
        }
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    };
    Some((auc, (var(&v10) / m as f64 + var(&v01) / n as f64).sqrt()))
}

fn pick(values: &[f64], labels: &[bool], class: bool) -> Vec<f64> {
    values
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == class)
        .map(|(v, _)| *v)
        .collect()
}

/// 1-based ranks, ties sharing their mean rank.
fn midranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|a, b| values[*a].total_cmp(&values[*b]));
    let mut ranks = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in &order[i..=j] {
            ranks[*k] = rank;
        }
        i = j + 1;
    }
    ranks
}

/// Mean squared difference between the predicted probability and the outcome (0: perfect;
/// always predicting the base rate p scores p(1 - p)).
pub fn brier(p: &[f64], labels: &[bool]) -> f64 {
    let total: f64 = p
        .iter()
        .zip(labels)
        .map(|(p, l)| (p - f64::from(u8::from(*l))).powi(2))
        .sum();
    total / p.len().max(1) as f64
}

/// One tenth of the validation tickets, by predicted P(satisfied).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decile {
    pub decile: usize,
    pub tickets: usize,
    /// Mean predicted P(satisfied).
    pub predicted: f64,
    /// Share actually satisfied.
    pub observed: f64,
}

/// The validation tickets in ten groups of (nearly) equal size by predicted probability,
/// lowest first; fewer groups when there are fewer than ten tickets.
pub fn calibration(p: &[f64], labels: &[bool]) -> Vec<Decile> {
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|a, b| p[*a].total_cmp(&p[*b]));
    let groups = p.len().min(10);
    (0..groups)
        .map(|g| {
            let part = &order[g * p.len() / groups..(g + 1) * p.len() / groups];
            let n = part.len() as f64;
            Decile {
                decile: g + 1,
                tickets: part.len(),
                predicted: part.iter().map(|i| p[*i]).sum::<f64>() / n,
                observed: part.iter().filter(|i| labels[**i]).count() as f64 / n,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_pairs_and_ties_half() {
        // Positives 0.9, 0.4; negatives 0.5, 0.4, 0.1: pairs won 3 + 0.5 (tie) + 1 of 6.
        let s = [0.9, 0.4, 0.5, 0.4, 0.1];
        let l = [true, true, false, false, false];
        let a = auc(&s, &l).unwrap();
        assert!((a.auc - 4.5 / 6.0).abs() < 1e-12, "{a:?}");
        assert!(a.low < a.auc && a.auc < a.high);
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
        // Perfect separation: AUC 1 and no spread.
        let a = auc(&[0.9, 0.8, 0.2], &[true, true, false]).unwrap();
        assert_eq!((a.auc, a.low, a.high), (1.0, 1.0, 1.0));
    }

    #[test]
    fn delong_variance_matches_a_worked_example() {
        // Positives 0.8, 0.6, 0.3; negatives 0.7, 0.2. Placements V10 = (1, 1/2, 1/2),
        // V01 = (1/3, 1); AUC = 2/3; S10 = 1/12, S01 = 2/9; se^2 = S10/3 + S01/2 = 5/36.
        let (a, se) = delong(
            &[0.8, 0.6, 0.3, 0.7, 0.2],
            &[true, true, true, false, false],
        )
        .unwrap();
        assert!((a - 2.0 / 3.0).abs() < 1e-12);
        assert!((se - 5f64.sqrt() / 6.0).abs() < 1e-12, "{se}");
    }

    #[test]
    fn brier_and_calibration_on_worked_numbers() {
        assert!((brier(&[0.8, 0.3], &[true, false]) - (0.04 + 0.09) / 2.0).abs() < 1e-12);
        let p: Vec<f64> = (0..20).map(|i| f64::from(i) / 20.0).collect();
        let l: Vec<bool> = (0..20).map(|i| i % 2 == 1).collect();
        let c = calibration(&p, &l);
        assert_eq!(c.len(), 10);
        assert_eq!(c[0].tickets, 2);
        assert!((c[0].predicted - 0.025).abs() < 1e-12 && (c[0].observed - 0.5).abs() < 1e-12);
    }
}
