//! `request_runs` (queries/request_runs.sql) in one sorted pass over each ticket's messages.
//!
//! The SQL defines the pairing with five window functions partitioned by ticket, and
//! DataFusion's window operators pay for every partition: over a million tickets they were most
//! of the time of every metric built on `pairs`. Here the public messages are read once, sorted
//! by ticket (the SQL below: a sort DataFusion runs on all cores), and each ticket's messages
//! are put in pairing order and its requests paired in Rust, with the SQL's rules: the same
//! rows, columns and types (the test `pairing_in_one_pass_gives_the_rows_of_its_sql` compares
//! them). A cluster runs the SQL, as its executors only know plain plans.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, AsArray, BooleanBuilder, Float64Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder, UInt64Builder,
};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, SchemaRef, TimestampMicrosecondType};
use datafusion::catalog::Session;
use datafusion::common::{DataFusionError, Result};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use futures::StreamExt;

use super::utf8;

/// The view this module computes.
pub(crate) const VIEW: &str = "request_runs";

/// The public messages of every ticket, ticket after ticket. Each ticket's few messages are put
/// in pairing order by [`Pairer::pair_ticket`]: a sort of all of them on the four keys encodes
/// every row's keys, strings included, where a sort on one column compares its strings as they
/// are (1 M tickets: reading `request_runs` took 1.8 s with the four keys, 1.5 s with one).
const MESSAGES: &str = "SELECT ticket_id, interaction_id, at, seq, actor_role, actor_id, channel, \
     sentiment FROM interactions WHERE is_public AND actor_role IN ('requester', 'agent', 'bot') \
     ORDER BY ticket_id";

/// Output rows gathered before a batch is handed on.
const BATCH_ROWS: usize = 8192;

/// `request_runs` as a table whose scan pairs the messages of the session's `interactions`
/// (so a pass of the per-ticket stages pairs only its slice).
#[derive(Debug)]
pub(crate) struct RequestRuns {
    /// The schema of the SQL definition, which this table reproduces.
    pub schema: SchemaRef,
}

#[async_trait]
impl TableProvider for RequestRuns {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<datafusion::execution::SessionState>()
            .ok_or_else(|| DataFusionError::Internal("request_runs needs a SessionState".into()))?;
        let plan = state.create_logical_plan(MESSAGES).await?;
        let messages = state.create_physical_plan(&plan).await?;
        let partition = Arc::new(Pairing {
            messages,
            schema: self.schema.clone(),
        });
        Ok(Arc::new(StreamingTableExec::try_new(
            self.schema.clone(),
            vec![partition],
            projection,
            [],
            false,
            limit,
        )?))
    }
}

/// The one partition of `request_runs`: the sorted messages, paired.
#[derive(Debug)]
struct Pairing {
    messages: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
}

impl PartitionStream for Pairing {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let messages = match datafusion::physical_plan::execute_stream(self.messages.clone(), ctx) {
            Ok(m) => m,
            Err(e) => {
                let failed = futures::stream::once(async move { Err(e) });
                return Box::pin(RecordBatchStreamAdapter::new(schema, failed));
            }
        };
        let pairer = Pairer::new(schema.clone());
        let out = futures::stream::unfold(Some((messages, pairer)), |state| async move {
            let (mut messages, mut pairer) = state?;
            loop {
                let paired = match messages.next().await {
                    Some(Ok(batch)) => pairer.push(&batch),
                    Some(Err(e)) => Err(e),
                    None => return Some((pairer.finish(), None)),
                };
                match paired {
                    Ok(Some(batch)) => return Some((Ok(batch), Some((messages, pairer)))),
                    Ok(None) => continue,
                    Err(e) => return Some((Err(e), None)),
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, out))
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Role {
    Requester,
    Agent,
    Bot,
}

impl Role {
    fn parse(s: &str) -> Result<Role> {
        Ok(match s {
            "requester" => Role::Requester,
            "agent" => Role::Agent,
            "bot" => Role::Bot,
            other => {
                return Err(DataFusionError::Internal(format!(
                    "request_runs: unexpected actor_role {other}"
                )));
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Role::Requester => "requester",
            Role::Agent => "agent",
            Role::Bot => "bot",
        }
    }
}

/// One public message of the ticket being paired.
#[derive(Debug)]
struct Message {
    interaction_id: String,
    at: i64,
    seq: Option<i32>,
    role: Role,
    actor_id: Option<String>,
    channel: String,
    sentiment: Option<f64>,
}

/// Pairs the messages of one ticket after another, carrying the current ticket across batches.
struct Pairer {
    schema: SchemaRef,
    ticket: Option<String>,
    messages: Vec<Message>,
    out: Columns,
}

/// The output columns being built.
#[derive(Default)]
struct Columns {
    ticket_id: StringBuilder,
    run: Int64Builder,
    request_at: TimestampMicrosecondBuilder,
    last_pos: UInt64Builder,
    request_messages: Int64Builder,
    request_sentiment: Float64Builder,
    request_channel: StringBuilder,
    followup_sentiment: Float64Builder,
    response_id: StringBuilder,
    response_at: TimestampMicrosecondBuilder,
    responder_role: StringBuilder,
    responder_id: StringBuilder,
    response_channel: StringBuilder,
    is_last_pair: BooleanBuilder,
}

/// A run of consecutive requester messages: `messages[first..=last]`.
struct Run {
    first: usize,
    last: usize,
    sentiment: Option<f64>,
}

impl Pairer {
    fn new(schema: SchemaRef) -> Pairer {
        Pairer {
            schema,
            ticket: None,
            messages: Vec::new(),
            out: Columns::default(),
        }
    }

    /// Takes a batch of messages in ticket order; returns a batch of output once enough
    /// rows are ready.
    fn push(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        let text = |name: &str| -> Result<_> {
            utf8(
                batch
                    .column_by_name(name)
                    .expect("the messages query selects it"),
            )
            .map_err(|e| DataFusionError::External(e.into()))
        };
        let (ticket, id, role, actor, channel) = (
            text("ticket_id")?,
            text("interaction_id")?,
            text("actor_role")?,
            text("actor_id")?,
            text("channel")?,
        );
        let at = batch.column_by_name("at").expect("selected");
        let at = at.as_primitive::<TimestampMicrosecondType>();
        let seq = batch.column_by_name("seq").expect("selected");
        let seq = seq.as_primitive::<Int32Type>();
        let sentiment = batch.column_by_name("sentiment").expect("selected");
        let sentiment = sentiment.as_primitive::<Float64Type>();
        for i in 0..batch.num_rows() {
            if self.ticket.as_deref() != Some(ticket.value(i)) {
                self.pair_ticket();
                self.ticket = Some(ticket.value(i).to_string());
            }
            self.messages.push(Message {
                interaction_id: id.value(i).to_string(),
                at: at.value(i),
                seq: seq.is_valid(i).then(|| seq.value(i)),
                role: Role::parse(role.value(i))?,
                actor_id: actor.is_valid(i).then(|| actor.value(i).to_string()),
                channel: channel.value(i).to_string(),
                sentiment: sentiment.is_valid(i).then(|| sentiment.value(i)),
            });
        }
        if self.out.ticket_id.len() >= BATCH_ROWS {
            return self.emit().map(Some);
        }
        Ok(None)
    }

    /// Pairs the last ticket and returns what is left.
    fn finish(&mut self) -> Result<RecordBatch> {
        self.pair_ticket();
        self.emit()
    }

    /// Pairs the messages of the current ticket into the output columns (the rules of
    /// queries/request_runs.sql).
    fn pair_ticket(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        let mut m = std::mem::take(&mut self.messages);
        // Pairing order: ORDER BY at, seq NULLS FIRST, interaction_id (None sorts first).
        m.sort_by(|a, b| (a.at, a.seq, &a.interaction_id).cmp(&(b.at, b.seq, &b.interaction_id)));
        let mut runs: Vec<Run> = Vec::new();
        for (i, msg) in m.iter().enumerate() {
            if msg.role != Role::Requester {
                continue;
            }
            match runs.last_mut() {
                Some(run) if run.last + 1 == i => run.last = i,
                _ => runs.push(Run {
                    first: i,
                    last: i,
                    sentiment: None,
                }),
            }
        }
        for run in &mut runs {
            // AVG: the mean of the non-null values, summed in message order.
            let (sum, n) = m[run.first..=run.last]
                .iter()
                .filter_map(|x| x.sentiment)
                .fold((0.0, 0u64), |(s, n), v| (s + v, n + 1));
            run.sentiment = (n > 0).then(|| sum / n as f64);
        }
        let last_answered = runs.iter().rposition(|r| r.last + 1 < m.len());
        let o = &mut self.out;
        for (k, run) in runs.iter().enumerate() {
            let Some(response) = m.get(run.last + 1) else {
                continue;
            };
            let request = &m[run.first..=run.last];
            o.ticket_id.append_value(&ticket);
            o.run.append_value(k as i64 + 1);
            o.request_at.append_value(
                request
                    .iter()
                    .map(|x| x.at)
                    .min()
                    .expect("a run has a message"),
            );
            o.last_pos.append_value(run.last as u64 + 1);
            o.request_messages.append_value(request.len() as i64);
            o.request_sentiment.append_option(run.sentiment);
            o.request_channel.append_value(&m[run.last].channel);
            o.followup_sentiment
                .append_option(runs.get(k + 1).and_then(|next| next.sentiment));
            o.response_id.append_value(&response.interaction_id);
            o.response_at.append_value(response.at);
            o.responder_role.append_value(response.role.name());
            o.responder_id.append_option(response.actor_id.as_deref());
            o.response_channel.append_value(&response.channel);
            o.is_last_pair.append_value(Some(k) == last_answered);
        }
        // Keep the allocation for the next ticket.
        self.messages = m;
        self.messages.clear();
    }

    /// The built rows as a batch of the SQL's schema (its types: casts where they differ).
    fn emit(&mut self) -> Result<RecordBatch> {
        let o = &mut self.out;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(o.ticket_id.finish()),
            Arc::new(o.run.finish()),
            Arc::new(o.request_at.finish().with_timezone("UTC")),
            Arc::new(o.last_pos.finish()),
            Arc::new(o.request_messages.finish()),
            Arc::new(o.request_sentiment.finish()),
            Arc::new(o.request_channel.finish()),
            Arc::new(o.followup_sentiment.finish()),
            Arc::new(o.response_id.finish()),
            Arc::new(o.response_at.finish().with_timezone("UTC")),
            Arc::new(o.responder_role.finish()),
            Arc::new(o.responder_id.finish()),
            Arc::new(o.response_channel.finish()),
            Arc::new(o.is_last_pair.finish()),
        ];
        let columns = columns
            .iter()
            .zip(self.schema.fields())
            .map(|(c, f)| datafusion::arrow::compute::cast(c, f.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}
