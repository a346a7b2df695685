//! `count_distinct_few(value)`: `COUNT(DISTINCT value)` per group, for columns with few distinct
//! values in all (a ticket's channels).
//!
//! `ticket_facts` counted the requester's channels with `COUNT(DISTINCT channel)` in an aggregate
//! of its own, then joined it to the tickets: DataFusion's distinct count holds a hash set per
//! group, so it could not sit beside the other per-ticket aggregates of the interactions (11 GB
//! at a million tickets), and the second aggregate and its join were about a third of the
//! stage's query. This one numbers the distinct values of the whole column as it meets them and
//! keeps a group's values as bits (the first 64 numbers) plus a sorted list for any beyond, so a
//! group costs 16 bytes and the count is exact whatever the column holds.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListBuilder, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, EmitTo, GroupsAccumulator, Signature, Volatility,
};

use super::one_group::{OneGroup, Resizable};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct CountDistinctFew {
    signature: Signature,
}

impl CountDistinctFew {
    pub fn new() -> Self {
        CountDistinctFew {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Immutable),
        }
    }
}

impl Default for CountDistinctFew {
    fn default() -> Self {
        Self::new()
    }
}

impl AggregateUDFImpl for CountDistinctFew {
    fn name(&self) -> &str {
        "count_distinct_few"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int64)
    }
    fn is_nullable(&self) -> bool {
        false
    }
    /// The partial state: each group's distinct values.
    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let values = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
        let name = format!("{}[values]", args.name);
        Ok(vec![Arc::new(Field::new(name, values, true))])
    }
    fn accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(Box::new(OneGroup(Groups::default())))
    }
    fn groups_accumulator_supported(&self, _: AccumulatorArgs) -> bool {
        true
    }
    fn create_groups_accumulator(&self, _: AccumulatorArgs) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(Box::new(Groups::default()))
    }
    fn default_value(&self, _: &DataType) -> Result<ScalarValue> {
        Ok(ScalarValue::Int64(Some(0)))
    }
}

/// A group's values numbered 64 and beyond, sorted (a column of few values has none).
type Beyond = Option<Box<Vec<u32>>>;

/// Each group's distinct values, by their number in `values`.
#[derive(Debug, Default)]
struct Groups {
    /// The distinct values met, numbered in the order met.
    values: Vec<String>,
    number: HashMap<String, u32, foldhash::fast::FixedState>,
    /// Per group, bit k set when value k (k < 64) is among its values.
    bits: Vec<u64>,
    beyond: Vec<Beyond>,
    /// How many numbers `beyond` holds, for `size()`.
    held_beyond: usize,
}

impl Groups {
    fn add(&mut self, g: usize, value: &str) {
        let k = match self.number.get(value) {
            Some(&k) => k,
            None => {
                let k = self.values.len() as u32;
                self.values.push(value.to_string());
                self.number.insert(value.to_string(), k);
                k
            }
        };
        if k < 64 {
            self.bits[g] |= 1 << k;
            return;
        }
        let list = self.beyond[g].get_or_insert_default();
        if let Err(at) = list.binary_search(&k) {
            list.insert(at, k);
            self.held_beyond += 1;
        }
    }

    fn take(&mut self, emit_to: EmitTo) -> (Vec<u64>, Vec<Beyond>) {
        let bits = emit_to.take_needed(&mut self.bits);
        let beyond = emit_to.take_needed(&mut self.beyond);
        self.held_beyond -= beyond.iter().flatten().map(|l| l.len()).sum::<usize>();
        (bits, beyond)
    }
}

impl Resizable for Groups {
    fn resize(&mut self, n: usize) {
        self.bits.resize(n, 0);
        self.beyond.resize(n, None);
    }
}

impl GroupsAccumulator for Groups {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let column = values[0].as_string::<i32>();
        for (i, &g) in group_indices.iter().enumerate() {
            if column.is_valid(i) && opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i)) {
                self.add(g, column.value(i));
            }
        }
        Ok(())
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let (bits, beyond) = self.take(emit_to);
        let count = |(b, l): (&u64, &Beyond)| {
            b.count_ones() as i64 + l.as_ref().map_or(0, |l| l.len() as i64)
        };
        let counts: Int64Array = bits.iter().zip(&beyond).map(|g| Some(count(g))).collect();
        Ok(Arc::new(counts))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let (bits, beyond) = self.take(emit_to);
        let mut list = ListBuilder::new(StringBuilder::new());
        for (b, l) in bits.iter().zip(&beyond) {
            let low = (0..64u32).filter(|k| b & (1 << k) != 0);
            for k in low.chain(l.iter().flat_map(|l| l.iter().copied())) {
                list.values().append_value(&self.values[k as usize]);
            }
            list.append(true);
        }
        Ok(vec![Arc::new(list.finish())])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let lists = values[0].as_list::<i32>();
        for (i, &g) in group_indices.iter().enumerate() {
            if lists.is_valid(i) {
                for v in lists.value(i).as_string::<i32>().iter().flatten() {
                    self.add(g, v);
                }
            }
        }
        Ok(())
    }

    /// Each row as a state of its own (its value, or none), for when DataFusion skips a partial
    /// aggregation that does not reduce the rows.
    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        let column = values[0].as_string::<i32>();
        let mut list = ListBuilder::new(StringBuilder::new());
        for (i, v) in column.iter().enumerate() {
            if let Some(v) = v.filter(|_| opt_filter.is_none_or(|f| f.is_valid(i) && f.value(i))) {
                list.values().append_value(v);
            }
            list.append(true);
        }
        Ok(vec![Arc::new(list.finish())])
    }

    fn size(&self) -> usize {
        self.values.iter().map(|v| 2 * v.capacity()).sum::<usize>()
            + self.number.capacity() * (size_of::<String>() + size_of::<u32>())
            + self.bits.capacity() * size_of::<u64>()
            + self.beyond.capacity() * size_of::<Beyond>()
            + self.held_beyond * size_of::<u32>()
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::Schema;
    use datafusion::datasource::MemTable;
    use datafusion::prelude::{SessionConfig, SessionContext};
    use rand::{RngExt, SeedableRng};
    use rand_pcg::Pcg64Mcg;

    use super::*;
    use crate::calendar::Calendar;

    /// Values of `distinct` kinds over 150 groups, NULLs among both, spread over batches and
    /// partitions so that partial states are merged.
    fn rows(seed: u64, distinct: u32) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("g", DataType::Utf8, true),
            Field::new("v", DataType::Utf8, true),
        ]));
        let mut rng = Pcg64Mcg::seed_from_u64(seed);
        let mut column = |kinds: u32, prefix: &str| -> StringArray {
            (0..500)
                .map(|_| {
                    let k = rng.random_range(0..=kinds);
                    (k != 0).then(|| format!("{prefix}{k}"))
                })
                .collect()
        };
        let partitions = (0..3)
            .map(|_| {
                (0..4)
                    .map(|_| {
                        let (g, v) = (column(150, "T"), column(distinct, "v"));
                        RecordBatch::try_new(schema.clone(), vec![Arc::new(g), Arc::new(v)])
                            .unwrap()
                    })
                    .collect()
            })
            .collect();
        MemTable::try_new(schema, partitions).unwrap()
    }

    async fn lines(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
            .lines()
            .map(String::from)
            .collect()
    }

    /// Row for row `COUNT(DISTINCT)`: with few values, with more than 64 (numbered beyond the
    /// bits), with a CASE that leaves some groups none, over no rows, and in one group.
    #[tokio::test]
    async fn count_distinct_few_is_count_distinct() {
        type Count = fn(&str) -> String;
        let ours: Count = |x| format!("count_distinct_few({x})");
        let theirs: Count = |x| format!("COUNT(DISTINCT {x})");
        for (seed, distinct) in [(0, 3), (1, 11), (2, 100), (3, 400)] {
            let config = SessionConfig::new()
                .with_target_partitions(4)
                .with_batch_size(300);
            let ctx = SessionContext::new_with_config(config);
            crate::engine::functions::register_functions(&ctx, &Calendar::default());
            ctx.register_table("r", Arc::new(rows(seed, distinct)))
                .unwrap();
            for filter in ["", " WHERE g = 'none'", " WHERE v IS NULL"] {
                let grouped = |count: Count| {
                    format!(
                        "SELECT g, {} AS n, {} AS few FROM r{filter} GROUP BY g ORDER BY g",
                        count("v"),
                        count("CASE WHEN v < 'v5' THEN v END")
                    )
                };
                let one = |count: Count| format!("SELECT {} AS n FROM r{filter}", count("v"));
                let queries: [&dyn Fn(Count) -> String; 2] = [&grouped, &one];
                for query in queries {
                    let ours = lines(&ctx, &query(ours)).await;
                    assert_eq!(
                        ours,
                        lines(&ctx, &query(theirs)).await,
                        "seed {seed}{filter}"
                    );
                }
            }
        }
    }
}
