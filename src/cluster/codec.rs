//! The plan codecs of every role: Ballista's, plus the calendar of the functions that carry one.
//!
//! Ballista sends a function as its name, and the receiving node looks the name up in its own
//! registry. For `business_seconds` and `iso_week` that would be the node's calendar, not the
//! client's: these codecs write the calendar next to the name and rebuild the function from it.

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use chrono::{NaiveDate, NaiveTime};
use datafusion::catalog::TableProvider;
use datafusion::common::{Result, TableReference, plan_datafusion_err};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::engine::functions::{calendar_of, with_calendar};

/// The calendar as it travels in a plan.
#[derive(Serialize, Deserialize)]
struct WireCalendar {
    tz: String,
    open: String,
    close: String,
    workdays: [bool; 7],
    holidays: Vec<String>,
}

fn encode_udf(f: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
    if let Some(c) = calendar_of(f) {
        let wire = WireCalendar {
            tz: c.tz.name().to_string(),
            open: c.open.to_string(),
            close: c.close.to_string(),
            workdays: c.workdays,
            holidays: c.holidays.iter().map(|d| d.to_string()).collect(),
        };
        serde_json::to_writer(buf, &wire).map_err(|e| plan_datafusion_err!("{e}"))?;
    }
    Ok(())
}

/// The function `name` with the calendar in `buf`, or what `other` decodes when `buf` carries
/// none.
fn decode_udf(
    name: &str,
    buf: &[u8],
    other: impl FnOnce() -> Result<Arc<ScalarUDF>>,
) -> Result<Arc<ScalarUDF>> {
    if buf.is_empty() {
        return other();
    }
    let bad = |what: &str| plan_datafusion_err!("function {name}: bad calendar in plan ({what})");
    let wire: WireCalendar = serde_json::from_slice(buf).map_err(|e| bad(&e.to_string()))?;
    let time = |s: &str| NaiveTime::parse_from_str(s, "%H:%M:%S%.f").map_err(|_| bad(s));
    let calendar = Calendar {
        tz: wire.tz.parse().map_err(|_| bad(&wire.tz))?,
        open: time(&wire.open)?,
        close: time(&wire.close)?,
        workdays: wire.workdays,
        holidays: wire
            .holidays
            .iter()
            .map(|d| d.parse::<NaiveDate>().map_err(|_| bad(d)))
            .collect::<Result<_>>()?,
    };
    with_calendar(name, calendar)
        .map(Arc::new)
        .ok_or_else(|| bad("not a function with a calendar"))
}

/// The logical plan codec: Ballista's, plus calendars.
#[derive(Debug, Default)]
pub struct LogicalCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }
    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }
    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: datafusion::arrow::datatypes::SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        self.ballista
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }
    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        self.ballista
            .try_encode_table_provider(table_ref, node, buf)
    }
    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }
    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, || self.ballista.try_decode_udf(name, buf))
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf)
    }
}

/// The physical plan codec: Ballista's, plus calendars.
#[derive(Debug, Default)]
pub struct PhysicalCodec {
    ballista: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for PhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.ballista.try_decode(buf, inputs, ctx, converter)
    }
    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        self.ballista.try_encode(node, buf, converter)
    }
    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, || self.ballista.try_decode_udf(name, buf))
    }
    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf)
    }
}
