//! The emulated service's state (tables, tunnels, channels, clients,
//! checkpoints) and the handlers of the protobuf requests.
//!
//! Everything here is plain data behind the emulator's one mutex; no I/O.
//! Handlers return the encoded response body or a [`ServiceError`] (HTTP
//! status plus the `Error` message body).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prost::Message;

use crate::EmulatorError;
use otp_threads_tablestore::client::{
    URI_CHECKPOINT, URI_CONNECT, URI_CREATE, URI_DELETE, URI_DESCRIBE, URI_GET_CHECKPOINT,
    URI_HEARTBEAT, URI_LIST, URI_READ_RECORDS, URI_SHUTDOWN,
};
use otp_threads_tablestore::error::{
    OTS_PARAMETER_INVALID, OTS_RESOURCE_GONE, OTS_SEQUENCE_NUMBER_NOT_MATCH, OTS_TUNNEL_EXIST,
    OTS_TUNNEL_EXPIRED,
};
use otp_threads_tablestore::plainbuffer::{
    self, ColumnChange, PkValue, Row, RowChange, SequenceInfo, Value,
};
use otp_threads_tablestore::proto::{self, ActionType, ChannelStatus, TokenContentV2, TunnelType};
use otp_threads_tablestore::token::{self, FINISH_TOKEN};

/// A service error: the HTTP status and the `Error` body's fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServiceError {
    pub(crate) status: u16,
    pub(crate) code: String,
    pub(crate) message: String,
    pub(crate) tunnel_id: Option<String>,
}

impl ServiceError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ServiceError {
            status,
            code: code.to_owned(),
            message: message.into(),
            tunnel_id: None,
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, OTS_PARAMETER_INVALID, message)
    }

    fn gone(message: impl Into<String>) -> Self {
        Self::new(410, OTS_RESOURCE_GONE, message)
    }

    fn sequence(message: impl Into<String>) -> Self {
        Self::new(400, OTS_SEQUENCE_NUMBER_NOT_MATCH, message)
    }

    fn for_tunnel(mut self, tunnel_id: &str) -> Self {
        self.tunnel_id = Some(tunnel_id.to_owned());
        self
    }

    /// The encoded `Error` message.
    pub(crate) fn body(&self) -> Vec<u8> {
        proto::Error {
            code: self.code.clone(),
            message: Some(self.message.clone()),
            tunnel_id: self.tunnel_id.clone(),
        }
        .encode_to_vec()
    }
}

type Reply = Result<Vec<u8>, ServiceError>;

/// A checkpoint as the emulator stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The stored token (`"finished"` once the channel was read to its end).
    pub token: String,
    /// The stored sequence number (0 until the first checkpoint); the next
    /// accepted checkpoint must carry `sequence_number + 1`.
    pub sequence_number: i64,
    /// How many of the channel's records lie before the token.
    pub records_consumed: usize,
}

/// A snapshot of one emulated channel, for tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// The channel's id.
    pub channel_id: String,
    /// The client the channel is assigned to (it may be `CLOSING`).
    pub owner: Option<String>,
    /// The server-side status (`CLOSE` also for never-assigned channels).
    pub status: ChannelStatus,
    /// The server-side version.
    pub version: i64,
    /// Records appended to the channel so far.
    pub records: usize,
    /// True when readers get the finish token once they reach the end.
    pub sealed: bool,
    /// The stored checkpoint.
    pub checkpoint: Checkpoint,
}

/// One stored record, shared by every tunnel over the table.
#[derive(Clone)]
struct StoredRecord {
    /// The raw action type (an injected record may carry an unknown one).
    action: i32,
    bytes: Arc<[u8]>,
    /// The row before the change (`origin_record`), when it existed.
    origin: Option<Arc<[u8]>>,
    pk: Arc<[u8]>,
}

struct ChannelState {
    id: String,
    /// Stream tokens (with an iterator) rather than base-data tokens.
    stream: bool,
    /// Readers get the finish token once they reach the end.
    sealed: bool,
    records: Vec<StoredRecord>,
    owner: Option<String>,
    status: ChannelStatus,
    version: i64,
    checkpoint: String,
    sequence: i64,
}

impl ChannelState {
    fn iterator_at(&self, offset: usize) -> String {
        format!("emulator:{}:{offset}", self.id)
    }

    /// The token that points at `offset` (deterministic).
    fn token_at(&self, offset: usize) -> String {
        let content = if self.stream {
            TokenContentV2 {
                primary_key: None,
                iterator: Some(self.iterator_at(offset)),
                timestamp: None,
                total_count: Some(offset as i64),
            }
        } else {
            TokenContentV2 {
                primary_key: self.records.get(offset).map(|r| r.pk.to_vec()),
                iterator: None,
                timestamp: None,
                total_count: Some(offset as i64),
            }
        };
        token::encode_token_v2(&content)
    }

    /// The offset a token of this channel points at (the finish token points
    /// at the end).
    fn offset_of(&self, token_str: &str) -> Result<usize, ServiceError> {
        if token_str == FINISH_TOKEN {
            return Ok(self.records.len());
        }
        let parsed = token::parse_token(token_str)
            .map_err(|e| ServiceError::invalid(format!("invalid token: {e}")))?;
        let offset = parsed
            .content
            .total_count
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n <= self.records.len())
            .ok_or_else(|| ServiceError::invalid("token does not point into this channel"))?;
        let iterator_ok = if self.stream {
            parsed.content.iterator.as_deref() == Some(self.iterator_at(offset).as_str())
        } else {
            !parsed.is_stream()
        };
        if !iterator_ok {
            return Err(ServiceError::invalid("token belongs to another channel"));
        }
        Ok(offset)
    }

    fn owned_by(&self, client_id: &str) -> bool {
        self.owner.as_deref() == Some(client_id)
            && matches!(self.status, ChannelStatus::Open | ChannelStatus::Closing)
    }

    /// The owner lost the channel (shutdown or heartbeat timeout).
    fn release(&mut self) {
        self.owner = None;
        if self.status != ChannelStatus::Terminated && self.advance_version() {
            self.status = ChannelStatus::Close;
        }
    }

    /// `version + 1`, checked: versions come from clients' reports too, and a
    /// channel at `i64::MAX` cannot change state any more (it stays as it is,
    /// unassigned, with an error logged) rather than wrapping or panicking.
    fn advance_version(&mut self) -> bool {
        match self.version.checked_add(1) {
            Some(next) => {
                self.version = next;
                true
            }
            None => {
                log::error!(
                    "tunnel emulator: channel {} is at version {}; it cannot change state",
                    self.id,
                    self.version
                );
                false
            }
        }
    }

    fn snapshot(&self) -> ChannelSnapshot {
        ChannelSnapshot {
            channel_id: self.id.clone(),
            owner: self.owner.clone(),
            status: self.status,
            version: self.version,
            records: self.records.len(),
            sealed: self.sealed,
            checkpoint: Checkpoint {
                token: self.checkpoint.clone(),
                sequence_number: self.sequence,
                records_consumed: self.offset_of(&self.checkpoint).unwrap_or(0),
            },
        }
    }
}

struct Client {
    id: String,
    last_seen: Instant,
}

struct Tunnel {
    id: String,
    name: String,
    table: String,
    kind: TunnelType,
    expired: bool,
    created_ms: i64,
    stream_config: Option<proto::StreamTunnelConfig>,
    channels: Vec<ChannelState>,
    /// Connected clients, in the order they connected.
    clients: Vec<Client>,
}

impl Tunnel {
    fn info(&self, instance_name: &str) -> proto::TunnelInfo {
        proto::TunnelInfo {
            tunnel_id: self.id.clone(),
            tunnel_type: self.kind.as_str().to_owned(),
            table_name: self.table.clone(),
            instance_name: instance_name.to_owned(),
            stream_id: format!("emulator-stream-{}", self.table),
            stage: match self.kind {
                TunnelType::BaseData => "ProcessBaseData",
                TunnelType::Stream | TunnelType::BaseAndStream => "ProcessStream",
            }
            .to_owned(),
            expired: Some(self.expired),
            tunnel_name: Some(self.name.clone()),
            public: Some(false),
            stream_tunnel_config: self.stream_config.clone(),
            create_time: Some(self.created_ms),
        }
    }

    fn check_client(&mut self, client_id: &str, now: Instant) -> Result<(), ServiceError> {
        let client = self
            .clients
            .iter_mut()
            .find(|c| c.id == client_id)
            .ok_or_else(|| {
                ServiceError::gone(format!("client {client_id:?} is not connected"))
                    .for_tunnel(&self.id)
            })?;
        client.last_seen = now;
        Ok(())
    }

    fn channel_mut(&mut self, channel_id: &str) -> Result<&mut ChannelState, ServiceError> {
        let tunnel_id = &self.id;
        self.channels
            .iter_mut()
            .find(|c| c.id == channel_id)
            .ok_or_else(|| {
                ServiceError::invalid(format!("channel {channel_id:?} does not exist"))
                    .for_tunnel(tunnel_id)
            })
    }

    fn remove_client(&mut self, client_id: &str) -> bool {
        let before = self.clients.len();
        self.clients.retain(|c| c.id != client_id);
        if self.clients.len() == before {
            return false;
        }
        for ch in &mut self.channels {
            if ch.owner.as_deref() == Some(client_id) {
                ch.release();
            }
        }
        true
    }

    /// Split the live channels evenly among the connected clients (earlier
    /// clients get the remainder). A client over its share has its excess
    /// `OPEN` channels turned `CLOSING` (version + 1); they stay its own until
    /// it reports `CLOSE`. Unowned channels go `OPEN` (version + 1) to the
    /// clients under their share.
    fn rebalance(&mut self) {
        let n = self.clients.len();
        if n == 0 {
            return;
        }
        let live = self
            .channels
            .iter()
            .filter(|c| c.status != ChannelStatus::Terminated)
            .count();
        let quota = |i: usize| live / n + usize::from(i < live % n);
        let open_of = |channels: &[ChannelState], id: &str| {
            channels
                .iter()
                .filter(|c| c.owner.as_deref() == Some(id) && c.status == ChannelStatus::Open)
                .count()
        };
        // 1. Ask clients over their share to give channels back.
        for (i, client) in self.clients.iter().enumerate() {
            let mut excess = open_of(&self.channels, &client.id).saturating_sub(quota(i));
            for ch in self.channels.iter_mut().rev() {
                if excess == 0 {
                    break;
                }
                if ch.owner.as_deref() == Some(client.id.as_str())
                    && ch.status == ChannelStatus::Open
                    && ch.advance_version()
                {
                    ch.status = ChannelStatus::Closing;
                    excess -= 1;
                }
            }
        }
        // 2. Hand free channels to the clients under their share.
        let mut open: Vec<usize> = self
            .clients
            .iter()
            .map(|c| open_of(&self.channels, &c.id))
            .collect();
        for ch in &mut self.channels {
            if ch.owner.is_some() || ch.status == ChannelStatus::Terminated {
                continue;
            }
            let neediest = (0..n)
                .filter(|&i| open[i] < quota(i))
                .max_by_key(|&i| (quota(i) - open[i], std::cmp::Reverse(i)));
            let Some(i) = neediest else { break };
            if !ch.advance_version() {
                continue;
            }
            ch.owner = Some(self.clients[i].id.clone());
            ch.status = ChannelStatus::Open;
            open[i] += 1;
        }
    }
}

/// A stored row: its primary key and attribute columns.
type StoredRow = (Vec<(String, PkValue)>, Vec<(String, Value)>);

#[derive(Default)]
struct Table {
    /// Rows by their encoded primary key.
    rows: BTreeMap<Vec<u8>, StoredRow>,
}

impl Table {
    /// The stored row at `pk_bytes` as a put row (its before-image), if any.
    fn before_image(&self, pk_bytes: &[u8]) -> Option<Arc<[u8]>> {
        let (pk, columns) = self.rows.get(pk_bytes)?;
        let row = Row {
            primary_key: pk.clone(),
            kind: RowChange::Put,
            columns: columns
                .iter()
                .map(|(name, value)| ColumnChange::Put {
                    name: name.clone(),
                    value: value.clone(),
                    timestamp: None,
                })
                .collect(),
            sequence: None,
        };
        Some(plainbuffer::encode_row(&row).into())
    }

    fn apply(&mut self, pk_bytes: &[u8], row: &Row) {
        match row.kind {
            RowChange::Delete => {
                self.rows.remove(pk_bytes);
            }
            RowChange::Put | RowChange::Update => {
                let entry = self
                    .rows
                    .entry(pk_bytes.to_vec())
                    .or_insert_with(|| (row.primary_key.clone(), Vec::new()));
                if row.kind == RowChange::Put {
                    entry.1.clear();
                }
                for change in &row.columns {
                    let cols = &mut entry.1;
                    let pos = cols.iter().position(|(n, _)| n == change.name());
                    match change {
                        ColumnChange::Put { name, value, .. } => match pos {
                            Some(p) => cols[p].1 = value.clone(),
                            None => cols.push((name.clone(), value.clone())),
                        },
                        ColumnChange::DeleteOneVersion { .. }
                        | ColumnChange::DeleteAllVersions { .. } => {
                            if let Some(p) = pos {
                                cols.remove(p);
                            }
                        }
                        ColumnChange::Increment { name, delta, .. } => match pos {
                            Some(p) => {
                                if let Value::Integer(v) = &mut cols[p].1 {
                                    *v = v.wrapping_add(*delta);
                                }
                            }
                            None => cols.push((name.clone(), Value::Integer(*delta))),
                        },
                    }
                }
            }
        }
    }
}

/// Settings the state needs.
#[derive(Clone, Debug)]
pub(crate) struct StateConfig {
    pub(crate) instance_name: String,
    pub(crate) channels_per_tunnel: usize,
    pub(crate) max_records_per_read: usize,
    pub(crate) heartbeat_timeout: Duration,
}

/// The whole emulated service.
pub(crate) struct State {
    config: StateConfig,
    tables: BTreeMap<String, Table>,
    tunnels: BTreeMap<String, Tunnel>,
    next_id: u64,
    id_nonce: u64,
    last_us: i64,
    row_index: i32,
}

fn now_since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// 64-bit FNV-1a: a stable hash, so routing does not change between runs.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn encode_pk(pk: &[(String, PkValue)]) -> Vec<u8> {
    plainbuffer::encode_row(&Row {
        primary_key: pk.to_vec(),
        kind: RowChange::Put,
        columns: Vec::new(),
        sequence: None,
    })
}

fn decode<M: Message + Default>(body: &[u8]) -> Result<M, ServiceError> {
    M::decode(body).map_err(|e| {
        let name = std::any::type_name::<M>().rsplit("::").next().unwrap_or("");
        ServiceError::invalid(format!("malformed {name}: {e}"))
    })
}

fn required<'a>(what: &str, value: &'a str) -> Result<&'a str, ServiceError> {
    if value.is_empty() {
        Err(ServiceError::invalid(format!("{what} is required")))
    } else {
        Ok(value)
    }
}

/// Check a row written through the emulator's API.
fn validate_row(table: &str, row: &Row) -> Result<(), EmulatorError> {
    let bad = |reason: String| {
        Err(EmulatorError::InvalidRow {
            table: table.to_owned(),
            reason,
        })
    };
    if row.primary_key.is_empty() {
        return bad("a row needs at least one primary key column".into());
    }
    for (name, value) in &row.primary_key {
        if name.is_empty() {
            return bad("primary key column names must not be empty".into());
        }
        if matches!(
            value,
            PkValue::InfMin | PkValue::InfMax | PkValue::AutoIncrement
        ) {
            return bad(format!(
                "primary key column {name:?} must be an integer, string or binary"
            ));
        }
    }
    for change in &row.columns {
        if change.name().is_empty() {
            return bad("attribute column names must not be empty".into());
        }
        if row.kind == RowChange::Put && !matches!(change, ColumnChange::Put { .. }) {
            return bad(format!(
                "a put row may only put columns; {:?} is an update",
                change.name()
            ));
        }
    }
    if row.kind == RowChange::Delete && !row.columns.is_empty() {
        return bad("a delete row carries no columns".into());
    }
    Ok(())
}

impl State {
    pub(crate) fn new(config: StateConfig) -> Self {
        let nonce = now_since_epoch().as_nanos() as u64 ^ u64::from(std::process::id());
        State {
            config,
            tables: BTreeMap::new(),
            tunnels: BTreeMap::new(),
            next_id: 0,
            id_nonce: splitmix(nonce),
            last_us: 0,
            row_index: 0,
        }
    }

    /// A UUID-shaped id, unique within this emulator.
    fn new_id(&mut self) -> String {
        self.next_id += 1;
        let a = splitmix(self.id_nonce ^ self.next_id);
        let b = splitmix(a ^ self.next_id.rotate_left(32));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | ((b >> 48) & 0x3fff),
            b & 0xffff_ffff_ffff
        )
    }

    /// The next stream position: strictly increasing (epoch 0, wall-clock
    /// microseconds, row index within the same microsecond).
    fn next_sequence(&mut self) -> SequenceInfo {
        let now = i64::try_from(now_since_epoch().as_micros()).unwrap_or(i64::MAX);
        if now > self.last_us {
            self.last_us = now;
            self.row_index = 0;
        } else if self.row_index == i32::MAX {
            self.last_us += 1;
            self.row_index = 0;
        } else {
            self.row_index += 1;
        }
        SequenceInfo {
            epoch: 0,
            timestamp: self.last_us,
            row_index: self.row_index,
        }
    }

    // ------------------------------------------------------------ direct API

    /// Append row changes to `table`; see `Emulator::write`.
    pub(crate) fn write(
        &mut self,
        table: &str,
        rows: Vec<Row>,
    ) -> Result<Vec<SequenceInfo>, EmulatorError> {
        if table.is_empty() {
            return Err(EmulatorError::InvalidRow {
                table: String::new(),
                reason: "the table name must not be empty".into(),
            });
        }
        for row in &rows {
            validate_row(table, row)?;
        }
        let mut sequences = Vec::with_capacity(rows.len());
        for mut row in rows {
            let pk: Arc<[u8]> = encode_pk(&row.primary_key).into();
            let rows = self.tables.entry(table.to_owned()).or_default();
            let origin = rows.before_image(&pk);
            rows.apply(&pk, &row);
            let sequence = self.next_sequence();
            row.sequence = Some(sequence);
            let record = StoredRecord {
                action: row.kind.action_type() as i32,
                bytes: plainbuffer::encode_row(&row).into(),
                origin,
                pk: pk.clone(),
            };
            let hash = fnv1a(&pk);
            for tunnel in self.tunnels.values_mut() {
                if tunnel.table != table || tunnel.kind == TunnelType::BaseData {
                    continue;
                }
                let n = tunnel.channels.len() as u64;
                let ch = &mut tunnel.channels[(hash % n) as usize];
                if !ch.sealed {
                    ch.records.push(record.clone());
                }
            }
            sequences.push(sequence);
        }
        Ok(sequences)
    }

    /// Create a tunnel; returns its id.
    pub(crate) fn create_tunnel(&mut self, req: proto::Tunnel) -> Result<String, ServiceError> {
        let table = required("table_name", &req.table_name)?.to_owned();
        let name = required("tunnel_name", &req.tunnel_name)?.to_owned();
        let kind = TunnelType::try_from(req.tunnel_type).map_err(|_| {
            ServiceError::invalid(format!("unknown tunnel_type {}", req.tunnel_type))
        })?;
        if self
            .tunnels
            .values()
            .any(|t| t.table == table && t.name == name)
        {
            return Err(ServiceError::new(
                409,
                OTS_TUNNEL_EXIST,
                format!("tunnel {name:?} already exists on table {table:?}"),
            ));
        }
        let id = self.new_id();
        let n = self.config.channels_per_tunnel;
        let mut channels: Vec<ChannelState> = (0..n)
            .map(|i| ChannelState {
                id: format!("{id}-ch{i}"),
                stream: kind != TunnelType::BaseData,
                sealed: kind == TunnelType::BaseData,
                records: Vec::new(),
                owner: None,
                status: ChannelStatus::Close,
                version: 0,
                checkpoint: String::new(),
                sequence: 0,
            })
            .collect();
        if kind != TunnelType::Stream {
            // Base data: the table's current rows, as put records.
            if let Some(t) = self.tables.get(&table) {
                for (pk_bytes, (pk, columns)) in &t.rows {
                    let row = Row {
                        primary_key: pk.clone(),
                        kind: RowChange::Put,
                        columns: columns
                            .iter()
                            .map(|(name, value)| ColumnChange::Put {
                                name: name.clone(),
                                value: value.clone(),
                                timestamp: None,
                            })
                            .collect(),
                        sequence: None,
                    };
                    let record = StoredRecord {
                        action: ActionType::PutRow as i32,
                        bytes: plainbuffer::encode_row(&row).into(),
                        origin: None,
                        pk: pk_bytes.as_slice().into(),
                    };
                    let i = (fnv1a(pk_bytes) % n as u64) as usize;
                    channels[i].records.push(record);
                }
            }
        }
        for ch in &mut channels {
            ch.checkpoint = ch.token_at(0);
        }
        self.tables.entry(table.clone()).or_default();
        let created_ms = i64::try_from(now_since_epoch().as_millis()).unwrap_or(i64::MAX);
        self.tunnels.insert(
            id.clone(),
            Tunnel {
                id: id.clone(),
                name,
                table,
                kind,
                expired: false,
                created_ms,
                stream_config: req.stream_tunnel_config,
                channels,
                clients: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Append a raw record to a stream channel (fault injection: a record the
    /// service would never send, e.g. a corrupt PlainBuffer).
    pub(crate) fn append_raw_record(
        &mut self,
        tunnel_id: &str,
        channel_id: &str,
        record: proto::Record,
    ) -> bool {
        match self.channel_of(tunnel_id, channel_id) {
            Some(ch) if ch.stream && !ch.sealed => {
                ch.records.push(StoredRecord {
                    action: record.action_type,
                    bytes: record.record.into(),
                    origin: record.origin_record.map(Into::into),
                    pk: Arc::from(&[][..]),
                });
                true
            }
            _ => false,
        }
    }

    /// Set a channel's server-side version (fault injection).
    pub(crate) fn set_channel_version(
        &mut self,
        tunnel_id: &str,
        channel_id: &str,
        version: i64,
    ) -> bool {
        self.channel_of(tunnel_id, channel_id)
            .map(|ch| ch.version = version)
            .is_some()
    }

    /// Set a channel's stored checkpoint sequence number (fault injection: another
    /// writer moved it, or it is about to overflow).
    pub(crate) fn set_checkpoint_sequence(
        &mut self,
        tunnel_id: &str,
        channel_id: &str,
        sequence: i64,
    ) -> bool {
        self.channel_of(tunnel_id, channel_id)
            .map(|ch| ch.sequence = sequence)
            .is_some()
    }

    fn channel_of(&mut self, tunnel_id: &str, channel_id: &str) -> Option<&mut ChannelState> {
        self.tunnels
            .get_mut(tunnel_id)?
            .channels
            .iter_mut()
            .find(|c| c.id == channel_id)
    }

    pub(crate) fn expire_tunnel(&mut self, tunnel_id: &str) -> bool {
        match self.tunnels.get_mut(tunnel_id) {
            Some(t) => {
                t.expired = true;
                true
            }
            None => false,
        }
    }

    pub(crate) fn finish_stream(&mut self, tunnel_id: &str) -> bool {
        match self.tunnels.get_mut(tunnel_id) {
            Some(t) => {
                for ch in &mut t.channels {
                    ch.sealed = true;
                }
                true
            }
            None => false,
        }
    }

    pub(crate) fn tunnel_id(&self, table: &str, name: &str) -> Option<String> {
        self.tunnels
            .values()
            .find(|t| t.table == table && t.name == name)
            .map(|t| t.id.clone())
    }

    pub(crate) fn channels(&self, tunnel_id: &str) -> Option<Vec<ChannelSnapshot>> {
        let t = self.tunnels.get(tunnel_id)?;
        Some(t.channels.iter().map(ChannelState::snapshot).collect())
    }

    pub(crate) fn clients(&self, tunnel_id: &str) -> Option<Vec<String>> {
        let t = self.tunnels.get(tunnel_id)?;
        Some(t.clients.iter().map(|c| c.id.clone()).collect())
    }

    pub(crate) fn checkpoints(&self, tunnel_id: &str) -> Option<BTreeMap<String, Checkpoint>> {
        let t = self.tunnels.get(tunnel_id)?;
        Some(
            t.channels
                .iter()
                .map(|c| (c.id.clone(), c.snapshot().checkpoint))
                .collect(),
        )
    }

    /// Drop clients that have been silent for longer than the heartbeat
    /// timeout, releasing and reassigning their channels.
    pub(crate) fn sweep(&mut self, now: Instant) {
        let timeout = self.config.heartbeat_timeout;
        for t in self.tunnels.values_mut() {
            let silent: Vec<String> = t
                .clients
                .iter()
                .filter(|c| now.saturating_duration_since(c.last_seen) > timeout)
                .map(|c| c.id.clone())
                .collect();
            if silent.is_empty() {
                continue;
            }
            for id in &silent {
                log::info!("tunnel emulator: client {id} of tunnel {} timed out", t.id);
                t.remove_client(id);
            }
            t.rebalance();
        }
    }

    // ------------------------------------------------------------ requests

    /// Handle one authenticated request.
    pub(crate) fn dispatch(&mut self, uri: &str, body: &[u8], now: Instant) -> Reply {
        self.sweep(now);
        match uri {
            URI_CREATE => {
                let req: proto::CreateTunnelRequest = decode(body)?;
                let tunnel_id = self.create_tunnel(req.tunnel)?;
                Ok(proto::CreateTunnelResponse { tunnel_id }.encode_to_vec())
            }
            URI_DELETE => self.delete(decode(body)?),
            URI_LIST => self.list(decode(body)?),
            URI_DESCRIBE => self.describe(decode(body)?),
            URI_CONNECT => self.connect(decode(body)?, now),
            URI_HEARTBEAT => self.heartbeat(decode(body)?, now),
            URI_SHUTDOWN => self.shutdown(decode(body)?),
            URI_GET_CHECKPOINT => self.get_checkpoint(decode(body)?, now),
            URI_READ_RECORDS => self.read_records(decode(body)?, now),
            URI_CHECKPOINT => self.checkpoint(decode(body)?, now),
            _ => Err(ServiceError::invalid(format!("unsupported uri {uri:?}"))),
        }
    }

    fn find_tunnel_id(
        &self,
        table: &str,
        name: &str,
        id: Option<&str>,
    ) -> Result<String, ServiceError> {
        let found = match id.filter(|id| !id.is_empty()) {
            Some(id) => self.tunnels.get(id).map(|t| t.id.clone()),
            None => {
                required("table_name", table)?;
                required("tunnel_name", name)?;
                self.tunnel_id(table, name)
            }
        };
        found.ok_or_else(|| {
            ServiceError::invalid(format!(
                "tunnel {:?} of table {table:?} does not exist",
                id.filter(|id| !id.is_empty()).unwrap_or(name)
            ))
        })
    }

    /// A tunnel that exists and has not expired.
    fn live_tunnel(&mut self, tunnel_id: &str) -> Result<&mut Tunnel, ServiceError> {
        required("tunnel_id", tunnel_id)?;
        let t = self.tunnels.get_mut(tunnel_id).ok_or_else(|| {
            ServiceError::invalid(format!("tunnel {tunnel_id:?} does not exist"))
                .for_tunnel(tunnel_id)
        })?;
        if t.expired {
            return Err(
                ServiceError::new(400, OTS_TUNNEL_EXPIRED, "the tunnel has expired")
                    .for_tunnel(tunnel_id),
            );
        }
        Ok(t)
    }

    fn delete(&mut self, req: proto::DeleteTunnelRequest) -> Reply {
        let id =
            self.find_tunnel_id(&req.table_name, &req.tunnel_name, req.tunnel_id.as_deref())?;
        self.tunnels.remove(&id);
        Ok(proto::DeleteTunnelResponse {}.encode_to_vec())
    }

    fn list(&mut self, req: proto::ListTunnelRequest) -> Reply {
        let table = req.table_name.as_deref().filter(|t| !t.is_empty());
        let tunnels = self
            .tunnels
            .values()
            .filter(|t| table.is_none_or(|name| t.table == name))
            .map(|t| t.info(&self.config.instance_name))
            .collect();
        Ok(proto::ListTunnelResponse { tunnels }.encode_to_vec())
    }

    fn describe(&mut self, req: proto::DescribeTunnelRequest) -> Reply {
        let id =
            self.find_tunnel_id(&req.table_name, &req.tunnel_name, req.tunnel_id.as_deref())?;
        let t = &self.tunnels[&id];
        let channels = t
            .channels
            .iter()
            .map(|c| proto::ChannelInfo {
                channel_id: c.id.clone(),
                channel_type: Some(if c.stream { "Stream" } else { "BaseData" }.to_owned()),
                channel_status: Some(
                    match (c.status, &c.owner) {
                        (ChannelStatus::Terminated, _) => "TERMINATED",
                        (_, None) => "WAIT",
                        (s, Some(_)) => s.as_str(),
                    }
                    .to_owned(),
                ),
                client_id: c.owner.clone(),
                channel_rpo: Some(0),
                channel_count: Some(c.offset_of(&c.checkpoint).unwrap_or(0) as i64),
            })
            .collect();
        Ok(proto::DescribeTunnelResponse {
            tunnel: t.info(&self.config.instance_name),
            channels,
            tunnel_rpo: Some(0),
        }
        .encode_to_vec())
    }

    fn connect(&mut self, req: proto::ConnectRequest, now: Instant) -> Reply {
        let client_id = format!("{}-client", self.new_id());
        let t = self.live_tunnel(&req.tunnel_id)?;
        t.clients.push(Client {
            id: client_id.clone(),
            last_seen: now,
        });
        t.rebalance();
        log::info!("tunnel emulator: client {client_id} joined tunnel {}", t.id);
        Ok(proto::ConnectResponse { client_id }.encode_to_vec())
    }

    fn heartbeat(&mut self, req: proto::HeartbeatRequest, now: Instant) -> Reply {
        let t = self.live_tunnel(&req.tunnel_id)?;
        let client_id = req.client_id.as_str();
        t.check_client(client_id, now)?;
        for reported in &req.channels {
            let Ok(status) = ChannelStatus::try_from(reported.status) else {
                continue;
            };
            let Some(ch) = t.channels.iter_mut().find(|c| c.id == reported.channel_id) else {
                continue;
            };
            if !ch.owned_by(client_id) || reported.version < ch.version {
                continue; // not the client's, or stale
            }
            match status {
                ChannelStatus::Close | ChannelStatus::Terminated => {
                    ch.owner = None;
                    ch.status = status;
                    ch.version = reported.version;
                }
                // The client merely echoes the server's state.
                ChannelStatus::Open | ChannelStatus::Closing => {}
            }
        }
        t.rebalance();
        let channels = t
            .channels
            .iter()
            .filter(|c| c.owned_by(client_id))
            .map(|c| proto::Channel::new(c.id.clone(), c.version, c.status))
            .collect();
        Ok(proto::HeartbeatResponse { channels }.encode_to_vec())
    }

    fn shutdown(&mut self, req: proto::ShutdownRequest) -> Reply {
        let t = self.live_tunnel(&req.tunnel_id)?;
        if !t.remove_client(&req.client_id) {
            return Err(
                ServiceError::gone(format!("client {:?} is not connected", req.client_id))
                    .for_tunnel(&req.tunnel_id),
            );
        }
        t.rebalance();
        Ok(proto::ShutdownResponse {}.encode_to_vec())
    }

    fn get_checkpoint(&mut self, req: proto::GetCheckpointRequest, now: Instant) -> Reply {
        let t = self.live_tunnel(&req.tunnel_id)?;
        t.check_client(&req.client_id, now)?;
        let ch = t.channel_mut(&req.channel_id)?;
        Ok(proto::GetCheckpointResponse {
            checkpoint: ch.checkpoint.clone(),
            sequence_number: ch.sequence,
        }
        .encode_to_vec())
    }

    fn read_records(&mut self, req: proto::ReadRecordsRequest, now: Instant) -> Reply {
        let max = self.config.max_records_per_read;
        let t = self.live_tunnel(&req.tunnel_id)?;
        t.check_client(&req.client_id, now)?;
        let tunnel_id = t.id.clone();
        let ch = t.channel_mut(&req.channel_id)?;
        if !ch.owned_by(&req.client_id) {
            return Err(ServiceError::gone(format!(
                "channel {:?} is not assigned to client {:?}",
                req.channel_id, req.client_id
            ))
            .for_tunnel(&tunnel_id));
        }
        if req.token == FINISH_TOKEN {
            return Ok(proto::ReadRecordsResponse {
                records: Vec::new(),
                next_token: FINISH_TOKEN.to_owned(),
                may_more_record: Some(false),
            }
            .encode_to_vec());
        }
        let offset = ch.offset_of(&req.token)?;
        let end = ch.records.len().min(offset.saturating_add(max));
        let records = ch.records[offset..end]
            .iter()
            .map(|r| proto::Record {
                action_type: r.action,
                record: r.bytes.to_vec(),
                origin_record: r.origin.as_deref().map(<[u8]>::to_vec),
            })
            .collect();
        let next_token = if ch.sealed && end == ch.records.len() {
            FINISH_TOKEN.to_owned()
        } else if end == offset {
            req.token
        } else {
            ch.token_at(end)
        };
        Ok(proto::ReadRecordsResponse {
            records,
            next_token,
            may_more_record: Some(end < ch.records.len()),
        }
        .encode_to_vec())
    }

    fn checkpoint(&mut self, req: proto::CheckpointRequest, now: Instant) -> Reply {
        let t = self.live_tunnel(&req.tunnel_id)?;
        t.check_client(&req.client_id, now)?;
        let tunnel_id = t.id.clone();
        let ch = t.channel_mut(&req.channel_id)?;
        if !ch.owned_by(&req.client_id) {
            return Err(ServiceError::sequence(format!(
                "channel {:?} is not owned by client {:?}",
                req.channel_id, req.client_id
            ))
            .for_tunnel(&tunnel_id));
        }
        let Some(expected) = ch.sequence.checked_add(1) else {
            return Err(ServiceError::invalid(format!(
                "the checkpoint sequence number {} cannot be advanced",
                ch.sequence
            ))
            .for_tunnel(&tunnel_id));
        };
        if req.sequence_number != expected {
            return Err(ServiceError::sequence(format!(
                "sequence number {} does not match; expected {expected}",
                req.sequence_number
            ))
            .for_tunnel(&tunnel_id));
        }
        ch.offset_of(&req.checkpoint)
            .map_err(|e| e.for_tunnel(&tunnel_id))?;
        ch.checkpoint = req.checkpoint;
        ch.sequence = req.sequence_number;
        Ok(proto::CheckpointResponse {}.encode_to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(channels: usize) -> State {
        State::new(StateConfig {
            instance_name: "inst".into(),
            channels_per_tunnel: channels,
            max_records_per_read: 10,
            heartbeat_timeout: Duration::from_secs(60),
        })
    }

    fn tunnel(s: &mut State, kind: TunnelType) -> String {
        s.create_tunnel(proto::Tunnel {
            table_name: "t".into(),
            tunnel_name: "n".into(),
            tunnel_type: kind as i32,
            stream_tunnel_config: None,
            need_all_time_series_columns: None,
        })
        .unwrap()
    }

    fn connect(s: &mut State, tunnel_id: &str, now: Instant) -> String {
        let body = proto::ConnectRequest {
            tunnel_id: tunnel_id.into(),
            client_config: None,
        }
        .encode_to_vec();
        let resp = s.dispatch(URI_CONNECT, &body, now).unwrap();
        proto::ConnectResponse::decode(resp.as_slice())
            .unwrap()
            .client_id
    }

    fn heartbeat(
        s: &mut State,
        tunnel_id: &str,
        client_id: &str,
        channels: Vec<proto::Channel>,
        now: Instant,
    ) -> Vec<proto::Channel> {
        let body = proto::HeartbeatRequest {
            tunnel_id: tunnel_id.into(),
            client_id: client_id.into(),
            channels,
        }
        .encode_to_vec();
        let resp = s.dispatch(URI_HEARTBEAT, &body, now).unwrap();
        proto::HeartbeatResponse::decode(resp.as_slice())
            .unwrap()
            .channels
    }

    #[test]
    fn ids_are_unique_and_uuid_shaped() {
        let mut s = state(1);
        let a = s.new_id();
        let b = s.new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn sequences_strictly_increase() {
        let mut s = state(1);
        let mut last = s.next_sequence();
        for _ in 0..1000 {
            let next = s.next_sequence();
            assert!(next > last);
            last = next;
        }
    }

    #[test]
    fn rebalance_splits_unevenly_sized_sets_fairly() {
        let mut s = state(5);
        let id = tunnel(&mut s, TunnelType::Stream);
        let now = Instant::now();
        let a = connect(&mut s, &id, now);
        assert_eq!(heartbeat(&mut s, &id, &a, vec![], now).len(), 5);
        let b = connect(&mut s, &id, now);
        let c = connect(&mut s, &id, now);
        // A keeps 2 OPEN and is asked to give 3 back.
        let hb = heartbeat(&mut s, &id, &a, vec![], now);
        let closing: Vec<_> = hb
            .iter()
            .filter(|c| c.status() == ChannelStatus::Closing)
            .cloned()
            .collect();
        assert_eq!(closing.len(), 3);
        let acks = closing
            .iter()
            .map(|c| proto::Channel::new(c.channel_id.clone(), c.version + 1, ChannelStatus::Close))
            .collect();
        assert_eq!(heartbeat(&mut s, &id, &a, acks, now).len(), 2);
        assert_eq!(heartbeat(&mut s, &id, &b, vec![], now).len(), 2);
        assert_eq!(heartbeat(&mut s, &id, &c, vec![], now).len(), 1);
    }

    #[test]
    fn token_validation() {
        let mut s = state(2);
        let id = tunnel(&mut s, TunnelType::Stream);
        let t = &s.tunnels[&id];
        let (c0, c1) = (&t.channels[0], &t.channels[1]);
        assert_eq!(c0.offset_of(&c0.token_at(0)), Ok(0));
        assert!(c0.offset_of(&c1.token_at(0)).is_err());
        assert!(c0.offset_of(&c0.token_at(1)).is_err()); // past the end
        assert!(c0.offset_of("garbage").is_err());
        assert_eq!(c0.offset_of(FINISH_TOKEN), Ok(0));
    }

    #[test]
    fn write_rejects_bad_rows() {
        let mut s = state(1);
        let row = |pk: Vec<(String, PkValue)>, kind, columns| Row {
            primary_key: pk,
            kind,
            columns,
            sequence: None,
        };
        assert!(
            s.write("t", vec![row(vec![], RowChange::Put, vec![])])
                .is_err()
        );
        assert!(
            s.write(
                "t",
                vec![row(
                    vec![("k".into(), PkValue::InfMax)],
                    RowChange::Put,
                    vec![]
                )]
            )
            .is_err()
        );
        assert!(
            s.write(
                "t",
                vec![row(
                    vec![("k".into(), PkValue::Integer(1))],
                    RowChange::Put,
                    vec![ColumnChange::DeleteAllVersions { name: "c".into() }]
                )]
            )
            .is_err()
        );
        assert!(s.write("", vec![]).is_err());
        assert!(s.tables.is_empty());
    }

    #[test]
    fn versions_and_sequences_at_i64_max_never_overflow() {
        let mut s = state(1);
        let id = tunnel(&mut s, TunnelType::Stream);
        let now = Instant::now();
        let a = connect(&mut s, &id, now);
        let ch = heartbeat(&mut s, &id, &a, vec![], now).remove(0);
        assert!(s.set_channel_version(&id, &ch.channel_id, i64::MAX - 1));
        // the client gives the channel back at i64::MAX: it can never be handed out again
        let report = proto::Channel::new(ch.channel_id.clone(), i64::MAX, ChannelStatus::Close);
        assert!(heartbeat(&mut s, &id, &a, vec![report], now).is_empty());
        let b = connect(&mut s, &id, now);
        assert!(heartbeat(&mut s, &id, &b, vec![], now).is_empty());
        // releasing on shutdown does not overflow either
        let body = proto::ShutdownRequest {
            tunnel_id: id.clone(),
            client_id: b.clone(),
        }
        .encode_to_vec();
        s.dispatch(URI_SHUTDOWN, &body, now).unwrap();
        assert_eq!(s.channels(&id).unwrap()[0].version, i64::MAX);

        // a stored sequence number of i64::MAX: checkpoints are refused, not wrapped
        let mut s = state(1);
        let id = tunnel(&mut s, TunnelType::Stream);
        let a = connect(&mut s, &id, now);
        let ch = heartbeat(&mut s, &id, &a, vec![], now).remove(0);
        assert!(s.set_checkpoint_sequence(&id, &ch.channel_id, i64::MAX));
        let token = s.channels(&id).unwrap()[0].checkpoint.token.clone();
        let body = proto::CheckpointRequest {
            tunnel_id: id.clone(),
            client_id: a,
            channel_id: ch.channel_id,
            checkpoint: token,
            sequence_number: i64::MIN,
        }
        .encode_to_vec();
        let e = s.dispatch(URI_CHECKPOINT, &body, now).unwrap_err();
        assert_eq!(e.code, OTS_PARAMETER_INVALID);
    }
}
