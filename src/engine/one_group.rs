//! A grouped accumulator of ours as a plain one, for an aggregate without GROUP BY (one group).

use datafusion::arrow::array::ArrayRef;
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};

/// A groups accumulator that can be given its groups before any row (so that an aggregate over
/// no rows still has its one group).
pub(super) trait Resizable: GroupsAccumulator + std::fmt::Debug + Sync {
    fn resize(&mut self, groups: usize);
}

/// `G` with every row in group 0.
#[derive(Debug)]
pub(super) struct OneGroup<G>(pub G);

impl<G: Resizable> Accumulator for OneGroup<G> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let n = values[0].len();
        self.0.update_batch(values, &vec![0; n], None, 1)
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let n = states[0].len();
        self.0.merge_batch(states, &vec![0; n], 1)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.0.resize(1);
        self.0
            .state(EmitTo::All)?
            .iter()
            .map(|a| ScalarValue::try_from_array(a, 0))
            .collect()
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        self.0.resize(1);
        ScalarValue::try_from_array(&self.0.evaluate(EmitTo::All)?, 0)
    }

    fn size(&self) -> usize {
        size_of::<Self>() + self.0.size()
    }
}
