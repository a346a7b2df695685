//! The metric catalogue: every view of `queries/`, read at build time from the header of its SQL
//! file (`build.rs` says the format), in dependency order. The engine creates the views from it,
//! `metric()` takes each one's row order from it, the passes take the per-ticket ones, and the
//! command line lists them.

/// One metric view of `queries/`.
#[derive(Debug)]
pub struct Metric {
    /// The view's name: its file name without `.sql`.
    pub name: &'static str,
    /// One line for `deskpulse metrics --help`.
    pub help: &'static str,
    /// The views it reads (each comes before it in [`CATALOGUE`]).
    pub depends: &'static [&'static str],
    /// Its natural row order (an ORDER BY list).
    pub order: &'static str,
    /// Computed in passes of tickets on a lake too large for one.
    pub per_ticket: bool,
    pub sql: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));

/// The metric called `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    CATALOGUE.iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_view_comes_after_the_views_it_reads() {
        for (i, m) in CATALOGUE.iter().enumerate() {
            for d in m.depends {
                let at = CATALOGUE.iter().position(|x| x.name == *d).unwrap();
                assert!(at < i, "{} reads {d}", m.name);
            }
        }
        assert_eq!(CATALOGUE.len(), 18);
        assert!(find("kpis").is_some_and(|m| m.order == "period" && !m.per_ticket));
        let passed: Vec<&str> = CATALOGUE
            .iter()
            .filter(|m| m.per_ticket)
            .map(|m| m.name)
            .collect();
        assert_eq!(
            passed,
            ["ticket_facts", "pair_scores", "prediction_features"]
        );
    }
}
