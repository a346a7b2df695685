//! `median(x)`: the exact median, kept as counts of equal values.
//!
//! DataFusion's own `median` keeps every input value until the end (8 bytes per row per group):
//! over a year of tickets or pairs that is most of a metric's memory, and it grows with the
//! lake. Service-desk durations come in whole seconds, so a group's values repeat a lot; this
//! one keeps each distinct value once with its count (memory grows with the distinct values, not
//! with the rows) and gives the same result: the middle value, or the mean of the two middle
//! values for an even count, NULLs ignored, NULL for no values. It replaces the built-in under
//! the same name, so `queries/*.sql` say `median` as any SQL reader expects.

use std::cmp::Ordering;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, ListArray, UInt64Array};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, UInt64Type};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{Accumulator, AggregateUDFImpl, Signature, Volatility};

/// Values gathered before they are sorted into the counts (at least this many, or as many as
/// there are distinct values, so that sorting stays O(n log n) overall).
const PENDING: usize = 4096;

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Median {
    signature: Signature,
}

impl Median {
    pub fn new() -> Self {
        // Any numeric input is taken as f64, as the built-in does for integers.
        Median {
            signature: Signature::uniform(1, vec![DataType::Float64], Volatility::Immutable),
        }
    }
}

impl Default for Median {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for Median {
    fn name(&self) -> &str {
        "median"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let list = |name: &str, t: DataType| -> FieldRef {
            let item = Arc::new(Field::new_list_field(t, false));
            Arc::new(Field::new(
                format!("{}[{name}]", args.name),
                DataType::List(item),
                true,
            ))
        };
        Ok(vec![
            list("values", DataType::Float64),
            list("counts", DataType::UInt64),
        ])
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::<CountedValues>::default())
    }
}

/// One group's values: `counts` holds distinct values in ascending order with how often each
/// was seen; `pending` holds values not sorted in yet.
#[derive(Debug, Default)]
pub struct CountedValues {
    counts: Vec<(f64, u64)>,
    pending: Vec<f64>,
}

impl CountedValues {
    /// Adds one value.
    pub fn push(&mut self, v: f64) {
        self.pending.push(v);
        if self.pending.len() >= PENDING.max(self.counts.len()) {
            self.settle();
        }
    }

    /// Sorts the pending values into the counts.
    fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        pending.sort_unstable_by(f64::total_cmp);
        let mut runs: Vec<(f64, u64)> = Vec::new();
        for v in pending {
            match runs.last_mut() {
                Some((last, n)) if last.total_cmp(&v) == Ordering::Equal => *n += 1,
                _ => runs.push((v, 1)),
            }
        }
        self.merge(&runs);
    }

    /// Merges sorted, distinct (value, count) pairs into the counts.
    fn merge(&mut self, other: &[(f64, u64)]) {
        let mut out = Vec::with_capacity(self.counts.len() + other.len());
        let (mut a, mut b) = (self.counts.iter().peekable(), other.iter().peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(&&x), Some(&&y)) => match x.0.total_cmp(&y.0) {
                    Ordering::Less => a.next().copied(),
                    Ordering::Greater => b.next().copied(),
                    Ordering::Equal => {
                        a.next();
                        b.next();
                        Some((x.0, x.1 + y.1))
                    }
                },
                (Some(_), None) => a.next().copied(),
                (None, Some(_)) => b.next().copied(),
                (None, None) => break,
            };
            out.extend(next);
        }
        self.counts = out;
    }

    /// The median of every value added, or None when there is none.
    pub fn median(&mut self) -> Option<f64> {
        self.settle();
        let n: u64 = self.counts.iter().map(|c| c.1).sum();
        if n == 0 {
            return None;
        }
        // 1-based positions of the middle values: the same one for an odd count.
        let (lo, hi) = (n.div_ceil(2), n / 2 + 1);
        let (mut seen, mut low) = (0, None);
        for &(v, count) in &self.counts {
            seen += count;
            if low.is_none() && seen >= lo {
                low = Some(v);
            }
            if seen >= hi {
                let low = low.expect("lo <= hi, so low is set by now");
                return Some(if lo == hi { v } else { (low + v) / 2.0 });
            }
        }
        unreachable!("the positions are within the count")
    }
}

impl Accumulator for CountedValues {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let values = values[0].as_primitive::<Float64Type>();
        if values.null_count() == 0 {
            values.values().iter().for_each(|&v| self.push(v));
        } else {
            values.iter().flatten().for_each(|v| self.push(v));
        }
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (values, counts) = (states[0].as_list::<i32>(), states[1].as_list::<i32>());
        for (v, c) in values.iter().zip(counts.iter()) {
            if let (Some(v), Some(c)) = (v, c) {
                let pairs: Vec<(f64, u64)> = v
                    .as_primitive::<Float64Type>()
                    .values()
                    .iter()
                    .copied()
                    .zip(c.as_primitive::<UInt64Type>().values().iter().copied())
                    .collect();
                self.merge(&pairs);
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        self.settle();
        let counts = std::mem::take(&mut self.counts);
        let list = |values: ArrayRef| {
            let item = Arc::new(Field::new_list_field(values.data_type().clone(), false));
            let offsets = OffsetBuffer::from_lengths([values.len()]);
            ScalarValue::List(Arc::new(ListArray::new(item, offsets, values, None)))
        };
        let values: Float64Array = counts.iter().map(|c| c.0).collect();
        let n: UInt64Array = counts.iter().map(|c| c.1).collect();
        Ok(vec![list(Arc::new(values)), list(Arc::new(n))])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(self.median()))
    }

    fn size(&self) -> usize {
        size_of::<Self>()
            + self.counts.capacity() * size_of::<(f64, u64)>()
            + self.pending.capacity() * size_of::<f64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median_of(values: &[f64]) -> Option<f64> {
        let mut c = CountedValues::default();
        values.iter().for_each(|&v| c.push(v));
        c.median()
    }

    #[test]
    fn odd_even_empty_and_repeated() {
        assert_eq!(median_of(&[]), None);
        assert_eq!(median_of(&[3.0]), Some(3.0));
        assert_eq!(median_of(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median_of(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        // The two middle values fall in one run, then in two runs.
        assert_eq!(median_of(&[1.0, 7.0, 7.0, 7.0, 9.0, 9.0]), Some(7.0));
        assert_eq!(median_of(&[1.0, 1.0, 9.0, 9.0]), Some(5.0));
    }

    #[test]
    fn agrees_with_sorting_across_settles_and_merges() {
        // Many more values than PENDING, few distinct ones, added in two halves merged as
        // partial states are.
        let values: Vec<f64> = (0..50_001u64).map(|i| ((i * 7919) % 1013) as f64).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let expected = sorted[sorted.len() / 2];
        assert_eq!(median_of(&values), Some(expected));

        let (left, right) = values.split_at(20_000);
        let mut a = CountedValues::default();
        let mut b = CountedValues::default();
        a.update_batch(&[Arc::new(Float64Array::from(left.to_vec()))])
            .unwrap();
        b.update_batch(&[Arc::new(Float64Array::from(right.to_vec()))])
            .unwrap();
        let state: Vec<ArrayRef> = b
            .state()
            .unwrap()
            .iter()
            .map(|s| s.to_array().unwrap())
            .collect();
        a.merge_batch(&state).unwrap();
        assert_eq!(a.median(), Some(expected));
        assert!(
            a.counts.len() <= 1013,
            "{} distinct values kept",
            a.counts.len()
        );
    }
}
