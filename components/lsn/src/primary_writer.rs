//! [`PrimaryWriter`]: a named worker on a node near the primary that runs registered
//! write operations for other nodes and answers with the commit's wait position.
//!
//! Contract:
//! - Only operations registered by name at start run ([`PrimaryWriterConfig::statement`]
//!   for one parameterised SQL statement, [`PrimaryWriterConfig::operation`] for a
//!   closure); a request carries a name and bound parameters, never SQL text, so another
//!   node cannot run arbitrary SQL. An unknown name is [`RejectReason::UnknownOperation`].
//! - Each request runs in one transaction with a row in [`LEDGER_TABLE`] keyed by the
//!   request's idempotency key: the key is recorded first (`ON CONFLICT DO NOTHING`), so a
//!   key recorded before answers [`WriteReply::AlreadyCommitted`] and runs nothing; a
//!   concurrent request with the same key waits on the row lock and then sees it.
//! - After the commit the writer reads [`wal_wait_position`] in the same session and
//!   replies [`WriteReply::Committed`]. A failed operation rolls back
//!   ([`WriteReply::NotCommitted`]); a connection lost during `COMMIT` is
//!   [`WriteReply::Unknown`]; a lost connection is reopened on the next request.
//! - Requests are served one at a time, in arrival order (one connection).

use std::collections::BTreeMap;

use otp_threads::dist::Node;
use otp_threads::{Context, ReplyTo, RuntimeHandle, Step, Worker, WorkerRef};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Transaction};

use crate::error::LsnError;
use crate::probe::wal_wait_position;
use crate::remote_write::{
    Param, RejectReason, WriteReply, WriteRequest, WriterCall, validate_operation_name,
};

/// The table where the writer records idempotency keys, on the primary.
pub const LEDGER_TABLE: &str = "otp_threads_lsn_remote_writes";

const CREATE_LEDGER: &str = "CREATE TABLE IF NOT EXISTS otp_threads_lsn_remote_writes (\
     key TEXT PRIMARY KEY, operation TEXT NOT NULL, rows BIGINT NOT NULL DEFAULT 0, \
     committed_at TIMESTAMPTZ NOT NULL DEFAULT now())";
const RECORD_KEY: &str = "INSERT INTO otp_threads_lsn_remote_writes (key, operation) \
     VALUES ($1, $2) ON CONFLICT (key) DO NOTHING";
const RECORD_ROWS: &str = "UPDATE otp_threads_lsn_remote_writes SET rows = $2 WHERE key = $1";
const READ_KEY: &str = "SELECT operation, rows FROM otp_threads_lsn_remote_writes WHERE key = $1";

/// A registered write: runs inside the writer's transaction, returns rows affected.
pub type WriteOperation =
    Box<dyn FnMut(&mut Transaction<'_>, &[Param]) -> Result<u64, postgres::Error> + Send>;

/// What the ledger holds for a key: the write committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedWrite {
    /// The operation that ran.
    pub operation: String,
    /// Its row count.
    pub rows: u64,
}

/// Looks `key` up in the ledger through `client`: `Some` if a write with that key
/// committed. Ask the primary (a replica answers as of its replay position); this is how
/// a caller whose reply was lost finds out.
pub fn recorded_write(client: &mut Client, key: &str) -> Result<Option<RecordedWrite>, LsnError> {
    let row = client.query_opt(READ_KEY, &[&key])?;
    Ok(row.map(|row| RecordedWrite {
        operation: row.get(0),
        rows: u64::try_from(row.get::<_, i64>(1)).unwrap_or(0),
    }))
}

/// The writer's settings: the primary and the operations it may run.
pub struct PrimaryWriterConfig {
    primary: String,
    operations: BTreeMap<String, WriteOperation>,
}

impl PrimaryWriterConfig {
    /// A writer for the primary at `primary` (a libpq connection string).
    pub fn new(primary: impl Into<String>) -> PrimaryWriterConfig {
        PrimaryWriterConfig {
            primary: primary.into(),
            operations: BTreeMap::new(),
        }
    }

    /// Registers `name` as a closure run in the writer's transaction.
    pub fn operation(
        mut self,
        name: impl Into<String>,
        operation: impl FnMut(&mut Transaction<'_>, &[Param]) -> Result<u64, postgres::Error>
        + Send
        + 'static,
    ) -> Self {
        self.operations.insert(name.into(), Box::new(operation));
        self
    }

    /// Registers `name` as one SQL statement; the request's parameters bind `$1`, `$2`,
    /// ... in order ([`Param::Int`] is `int8`, cast in the SQL for other types).
    pub fn statement(self, name: impl Into<String>, sql: impl Into<String>) -> Self {
        let sql = sql.into();
        self.operation(name, move |transaction, params| {
            let bound = sql_params(params);
            transaction.execute(sql.as_str(), &bound)
        })
    }
}

fn sql_params(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| -> &(dyn ToSql + Sync) {
            match param {
                Param::Int(value) => value,
                Param::Float(value) => value,
                Param::Text(value) => value,
                Param::Bytes(value) => value,
                Param::Bool(value) => value,
            }
        })
        .collect()
}

/// The worker; see the [module docs](self).
pub struct PrimaryWriter {
    primary: String,
    client: Option<Client>,
    operations: BTreeMap<String, WriteOperation>,
}

impl PrimaryWriter {
    /// Connects to the primary, creates [`LEDGER_TABLE`] if needed, starts the writer
    /// registered as `name` and serves it to other nodes through `node`.
    pub fn start(
        runtime: &RuntimeHandle,
        node: &Node,
        name: &str,
        config: PrimaryWriterConfig,
    ) -> Result<WorkerRef<PrimaryWriter>, LsnError> {
        for operation in config.operations.keys() {
            validate_operation_name(operation)?;
        }
        let mut client = connect(&config.primary)?;
        client.batch_execute(CREATE_LEDGER)?;
        let worker = runtime
            .spawn_named(
                name,
                PrimaryWriter {
                    primary: config.primary,
                    client: Some(client),
                    operations: config.operations,
                },
            )
            .map_err(LsnError::Runtime)?;
        node.serve(&worker);
        Ok(worker)
    }

    fn write(&mut self, request: &WriteRequest) -> WriteReply {
        let Some(operation) = self.operations.get_mut(request.operation()) else {
            return WriteReply::Rejected {
                reason: RejectReason::UnknownOperation,
                detail: format!("no operation {:?} is registered", request.operation()),
            };
        };
        if self.client.as_ref().is_none_or(Client::is_closed) {
            match connect(&self.primary) {
                Ok(client) => self.client = Some(client),
                Err(error) => return not_committed(None, error.to_string()),
            }
        }
        let Some(client) = self.client.as_mut() else {
            return not_committed(None, "not connected".into());
        };
        let reply = run_recorded(client, operation, request);
        if client.is_closed() {
            self.client = None;
        }
        reply
    }
}

fn connect(primary: &str) -> Result<Client, LsnError> {
    let config: postgres::Config = primary.parse().map_err(LsnError::InvalidConfig)?;
    config.connect(NoTls).map_err(LsnError::Db)
}

fn not_committed(sqlstate: Option<String>, message: String) -> WriteReply {
    WriteReply::NotCommitted { sqlstate, message }
}

fn from_error(error: &postgres::Error) -> WriteReply {
    not_committed(
        error.code().map(|code| code.code().to_owned()),
        error.to_string(),
    )
}

/// Records the key, runs the operation, records its row count, commits, and reads the
/// wait position.
fn run_recorded(
    client: &mut Client,
    operation: &mut WriteOperation,
    request: &WriteRequest,
) -> WriteReply {
    let mut transaction = match client.transaction() {
        Ok(transaction) => transaction,
        Err(error) => return from_error(&error),
    };
    let fresh = match transaction.execute(RECORD_KEY, &[&request.key(), &request.operation()]) {
        Ok(inserted) => inserted == 1,
        Err(error) => return from_error(&error),
    };
    if !fresh {
        drop(transaction);
        return already_committed(client, request);
    }
    let rows = match operation(&mut transaction, request.params()) {
        Ok(rows) => rows,
        Err(error) => return from_error(&error),
    };
    let Ok(recorded_rows) = i64::try_from(rows) else {
        return not_committed(None, format!("row count {rows} does not fit the ledger"));
    };
    if let Err(error) = transaction.execute(RECORD_ROWS, &[&request.key(), &recorded_rows]) {
        return from_error(&error);
    }
    if let Err(error) = transaction.commit() {
        // A refused COMMIT rolled back; a lost connection leaves the outcome open.
        if error.code().is_some() {
            return from_error(&error);
        }
        log::warn!(
            "primary writer: COMMIT of key {:?} failed without an answer: {error}",
            request.key()
        );
        return WriteReply::Unknown {
            message: error.to_string(),
        };
    }
    match wal_wait_position(client) {
        Ok(lsn) => WriteReply::Committed { lsn, rows },
        Err(error) => WriteReply::CommittedUnawaitable {
            rows,
            reason: error.to_string(),
        },
    }
}

/// The answer to a key recorded before: nothing runs; the position now is at or past
/// the earlier commit.
fn already_committed(client: &mut Client, request: &WriteRequest) -> WriteReply {
    let recorded = match recorded_write(client, request.key()) {
        Ok(Some(recorded)) => recorded,
        Ok(None) => return not_committed(None, "the recorded key vanished".into()),
        Err(error) => return not_committed(None, error.to_string()),
    };
    if recorded.operation != request.operation() {
        return WriteReply::Rejected {
            reason: RejectReason::KeyReused,
            detail: format!(
                "key {:?} was recorded for operation {:?}",
                request.key(),
                recorded.operation
            ),
        };
    }
    match wal_wait_position(client) {
        Ok(lsn) => WriteReply::AlreadyCommitted {
            lsn,
            rows: recorded.rows,
        },
        Err(error) => WriteReply::CommittedUnawaitable {
            rows: recorded.rows,
            reason: error.to_string(),
        },
    }
}

/// Takes nothing: a writer answers calls only (other terms are dropped and counted).
#[derive(Debug)]
pub enum NoMessage {}

impl otp_threads::dist::FromTerm for NoMessage {
    fn from_term(term: otp_threads::dist::Term) -> Result<Self, otp_threads::dist::DistError> {
        Err(otp_threads::dist::DistError::Mismatch {
            expected: "nothing (a primary writer takes calls only)",
            found: Box::new(term),
        })
    }
}

impl Worker for PrimaryWriter {
    type Call = WriterCall;
    type Reply = WriteReply;
    type Cast = NoMessage;
    type Info = NoMessage;
    type Continue = ();

    fn handle_call(
        &mut self,
        call: WriterCall,
        reply: ReplyTo<WriteReply>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        let answer = match call {
            WriterCall::Write(request) => self.write(&request),
            WriterCall::Malformed(detail) => WriteReply::Rejected {
                reason: RejectReason::Malformed,
                detail,
            },
        };
        reply.reply(answer);
        Step::Next
    }
}
