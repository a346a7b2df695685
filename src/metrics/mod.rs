//! Metric families that need more than SQL: the parts SQL does poorly (bootstrap intervals,
//! exact decompositions) live here, on top of the views of `queries/`.

pub mod followups;
pub mod ttr_shift;
