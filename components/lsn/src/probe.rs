//! [`ReplicaProbe`]: a blocking connection that asks a PostgreSQL server about its WAL
//! position, reconnecting with capped exponential backoff when the connection drops.
//!
//! On a standby the probe answers "am I in recovery?" ([`ReplicaProbe::is_in_recovery`]) and
//! "how far has WAL been replayed?" ([`ReplicaProbe::last_replay_lsn`]); on the primary,
//! [`current_wal_insert_lsn`] (a free function over any [`GenericClient`], so it can run
//! inside the caller's own transaction) or [`ReplicaProbe::current_wal_insert_lsn`] tells the
//! position a just-committed write must reach on the standby.
//!
//! The SQL is fly_postgres's: `CAST(pg_last_wal_replay_lsn() AS TEXT)` and
//! `CAST(pg_current_wal_insert_lsn() AS TEXT)`, parsed with [`Lsn::parse`].
//!
//! # Connection handling
//!
//! [`ReplicaProbe::connect`] makes one attempt and fails fast (a wrong address should be
//! reported, not retried forever); [`ReplicaProbe::lazy`] connects on first use. Afterwards
//! every query runs through [`ReplicaProbe::with_client`]: if the connection is closed (or a
//! query fails because it was), the probe logs a warning, reconnects (waiting
//! [`Backoff`] delays between failed attempts, up to
//! [`ProbeConfig::reconnect_timeout`]) and runs the query once more. Queries are read-only,
//! so the retry is safe. [`ReplicaProbe::query_one_prepared`] prepares a statement once
//! per connection and then runs it in one round trip. A reconnect loop can be interrupted through
//! [`ProbeConfig::cancel_on`], which matters when the probe runs in a supervised worker
//! thread that must stop promptly.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use postgres::config::Host;
use postgres::types::ToSql;
use postgres::{CancelToken, Client, GenericClient, NoTls, Row, Statement};

use super::backoff::Backoff;
use super::error::LsnError;
use super::position::Lsn;
use super::wal_layout::WalLayout;

/// SQL returning the primary's current WAL insert position as `X/Y` text.
pub const SQL_CURRENT_WAL_INSERT_LSN: &str = "SELECT CAST(pg_current_wal_insert_lsn() AS TEXT)";

/// SQL returning the primary's insert position with the WAL page and segment sizes in
/// bytes, in one round trip: what [`wal_wait_position`] needs.
pub const SQL_WAL_WAIT_POSITION: &str = "SELECT CAST(pg_current_wal_insert_lsn() AS TEXT), \
     CAST(current_setting('wal_block_size') AS BIGINT), \
     pg_size_bytes(current_setting('wal_segment_size'))";

/// SQL returning the standby's last replayed WAL position as `X/Y` text, or NULL when the
/// server is not replaying WAL (a primary, or a standby that never replayed anything).
pub const SQL_LAST_WAL_REPLAY_LSN: &str = "SELECT CAST(pg_last_wal_replay_lsn() AS TEXT)";

/// SQL returning whether the server is a standby (in recovery).
pub const SQL_IS_IN_RECOVERY: &str = "SELECT pg_is_in_recovery()";

/// Connect timeout applied when the connection string sets none, so that an unreachable
/// host cannot hang a connection attempt.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a reconnect loop keeps trying by default before reporting
/// [`LsnError::Connect`].
pub const DEFAULT_RECONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads the primary's current WAL insert position through `client`, which may be a
/// [`Client`] or a [`postgres::Transaction`]: run it after the write (in the same session)
/// and wait until a standby's replay position reaches the result.
///
/// This is the raw position: when the commit ended on a WAL page boundary it lies past
/// the next page's header, where a standby's replay position does not go until more WAL
/// arrives. Wait for [`wal_wait_position`] instead.
///
/// PostgreSQL refuses this on a standby ("recovery is in progress"): that is an
/// [`LsnError::Db`]. Inside a failed transaction it fails too (fly_postgres issue #29);
/// callers typically treat any error here as "nothing to wait for".
pub fn current_wal_insert_lsn<C: GenericClient>(client: &mut C) -> Result<Lsn, LsnError> {
    let text: Option<String> = client
        .query_one(SQL_CURRENT_WAL_INSERT_LSN, &[])?
        .try_get(0)?;
    let text = text.ok_or(LsnError::UnexpectedNull {
        what: "pg_current_wal_insert_lsn()",
    })?;
    Lsn::parse(&text)
}

/// The position a write committed through `client` must wait for on a standby: the
/// primary's insert position mapped back past a page header when the last record ended
/// on a page boundary ([`WalLayout::record_end`]), where the raw insert position is one
/// the standby does not report until more WAL arrives. Run it after the commit, in the
/// same session; one round trip.
///
/// Fails like [`current_wal_insert_lsn`] (on a standby, in a failed transaction), and
/// with [`LsnError::InvalidWalLayout`] if the server reports impossible sizes.
pub fn wal_wait_position<C: GenericClient>(client: &mut C) -> Result<Lsn, LsnError> {
    let row = client.query_one(SQL_WAL_WAIT_POSITION, &[])?;
    let text: Option<String> = row.try_get(0)?;
    let page_size: i64 = row.try_get(1)?;
    let segment_size: i64 = row.try_get(2)?;
    let text = text.ok_or(LsnError::UnexpectedNull {
        what: "pg_current_wal_insert_lsn()",
    })?;
    let insert = Lsn::parse(&text)?;
    // A negative size becomes 0, which WalLayout::new rejects naming both sizes.
    let layout = WalLayout::new(
        u64::try_from(page_size).unwrap_or(0),
        u64::try_from(segment_size).unwrap_or(0),
    )?;
    Ok(layout.record_end(insert))
}

/// Reads a server's last replayed WAL position through `client`; `None` when the server
/// reports NULL (it is not replaying WAL).
pub fn last_wal_replay_lsn<C: GenericClient>(client: &mut C) -> Result<Option<Lsn>, LsnError> {
    let text: Option<String> = client.query_one(SQL_LAST_WAL_REPLAY_LSN, &[])?.try_get(0)?;
    text.as_deref().map(Lsn::parse).transpose()
}

/// Reads whether the server behind `client` is in recovery (a standby).
pub fn is_in_recovery<C: GenericClient>(client: &mut C) -> Result<bool, LsnError> {
    Ok(client.query_one(SQL_IS_IN_RECOVERY, &[])?.try_get(0)?)
}

/// How a [`ReplicaProbe`] connects and reconnects.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    pg: postgres::Config,
    min_backoff: Duration,
    max_backoff: Duration,
    reconnect_timeout: Option<Duration>,
    cancel: Option<Receiver<()>>,
}

impl ProbeConfig {
    /// Parses a libpq-style connection string (`host=127.0.0.1 port=5433 user=postgres
    /// dbname=postgres`) or a `postgresql://` URL. Without a `connect_timeout` in it,
    /// [`DEFAULT_CONNECT_TIMEOUT`] applies. Backoff defaults to [`Backoff::default`] (50 ms
    /// doubling to 5 s), the reconnect timeout to [`DEFAULT_RECONNECT_TIMEOUT`].
    pub fn new(conninfo: &str) -> Result<ProbeConfig, LsnError> {
        let pg = conninfo
            .parse::<postgres::Config>()
            .map_err(LsnError::InvalidConfig)?;
        Ok(ProbeConfig::from_pg_config(pg))
    }

    /// Wraps an already built `postgres` configuration (same defaults as
    /// [`ProbeConfig::new`]).
    pub fn from_pg_config(mut pg: postgres::Config) -> ProbeConfig {
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        let backoff = Backoff::default();
        ProbeConfig {
            pg,
            min_backoff: backoff.min(),
            max_backoff: backoff.max(),
            reconnect_timeout: Some(DEFAULT_RECONNECT_TIMEOUT),
            cancel: None,
        }
    }

    /// Sets the delay after the first failed reconnection attempt (`min`, doubled after
    /// each further failure) and its cap (`max`); see [`Backoff::new`].
    pub fn backoff(mut self, min: Duration, max: Duration) -> ProbeConfig {
        let normalised = Backoff::new(min, max);
        self.min_backoff = normalised.min();
        self.max_backoff = normalised.max();
        self
    }

    /// How long one reconnect loop may keep trying before it reports
    /// [`LsnError::Connect`]; `None` retries until it succeeds or is cancelled.
    pub fn reconnect_timeout(mut self, limit: Option<Duration>) -> ProbeConfig {
        self.reconnect_timeout = limit;
        self
    }

    /// Sets the timeout of each single connection attempt.
    pub fn connect_timeout(mut self, timeout: Duration) -> ProbeConfig {
        self.pg.connect_timeout(timeout);
        self
    }

    /// Makes reconnect loops stop with [`LsnError::Cancelled`] as soon as a message arrives
    /// on `cancel` or all its senders are dropped (checked while waiting between attempts).
    pub fn cancel_on(mut self, cancel: Receiver<()>) -> ProbeConfig {
        self.cancel = Some(cancel);
        self
    }

    /// The reconnection backoff bounds: `(min, max)`.
    pub fn backoff_bounds(&self) -> (Duration, Duration) {
        (self.min_backoff, self.max_backoff)
    }

    /// The underlying `postgres` configuration.
    pub fn pg_config(&self) -> &postgres::Config {
        &self.pg
    }

    /// `host:port` of the (first) configured server, for log and error messages.
    pub fn target(&self) -> String {
        let host = match self.pg.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            #[cfg(unix)]
            Some(Host::Unix(path)) => path.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

/// A blocking, self-healing connection used to read WAL positions; see the
/// [module docs](self).
pub struct ReplicaProbe {
    config: ProbeConfig,
    target: String,
    client: Option<Client>,
    /// Statements prepared on the current connection, by SQL text.
    statements: HashMap<&'static str, Statement>,
    backoff: Backoff,
    reconnects: u64,
    connections: u64,
}

impl fmt::Debug for ReplicaProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplicaProbe")
            .field("target", &self.target)
            .field("connected", &self.is_connected())
            .field("reconnects", &self.reconnects)
            .finish_non_exhaustive()
    }
}

impl ReplicaProbe {
    /// Connects now, with a single attempt: an unreachable server is reported as
    /// [`LsnError::Connect`] instead of being retried.
    pub fn connect(config: ProbeConfig) -> Result<ReplicaProbe, LsnError> {
        let mut probe = ReplicaProbe::lazy(config);
        let client = probe.attempt().map_err(|source| LsnError::Connect {
            target: probe.target.clone(),
            attempts: 1,
            source,
        })?;
        probe.set_client(client);
        Ok(probe)
    }

    /// Shorthand for [`ProbeConfig::new`] then [`ReplicaProbe::connect`].
    pub fn connect_str(conninfo: &str) -> Result<ReplicaProbe, LsnError> {
        ReplicaProbe::connect(ProbeConfig::new(conninfo)?)
    }

    /// A probe that connects (with backoff) on first use.
    pub fn lazy(config: ProbeConfig) -> ReplicaProbe {
        ReplicaProbe {
            target: config.target(),
            backoff: Backoff::new(config.min_backoff, config.max_backoff),
            config,
            client: None,
            statements: HashMap::new(),
            reconnects: 0,
            connections: 0,
        }
    }

    /// `host:port` of the server.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The configuration the probe was built with.
    pub fn config(&self) -> &ProbeConfig {
        &self.config
    }

    /// Whether the probe holds a connection that is not known to be closed. (A connection
    /// the server dropped silently is only noticed by the next query.)
    pub fn is_connected(&self) -> bool {
        self.client.as_ref().is_some_and(|c| !c.is_closed())
    }

    /// How many times the probe re-established a connection after losing one (or after
    /// starting disconnected).
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// How many connections the probe has made so far (the first one included): a
    /// number that changes whenever the session, and so its prepared statements and
    /// cancel token, changes.
    pub fn connections(&self) -> u64 {
        self.connections
    }

    /// A token that cancels the query running on the current connection (from any
    /// thread), if connected.
    pub fn cancel_token(&self) -> Option<CancelToken> {
        self.client.as_ref().map(Client::cancel_token)
    }

    /// Drops the current connection, if any; the next query reconnects.
    pub fn disconnect(&mut self) {
        self.client = None;
        self.statements.clear();
    }

    fn set_client(&mut self, client: Client) {
        self.client = Some(client);
        self.statements.clear();
        self.connections = self.connections.saturating_add(1);
    }

    /// Drops the current connection and connects again, waiting capped exponential
    /// backoff delays between failed attempts. Gives up with [`LsnError::Connect`] once the
    /// [reconnect timeout](ProbeConfig::reconnect_timeout) would be exceeded, or with
    /// [`LsnError::Cancelled`] when cancelled.
    pub fn reconnect(&mut self) -> Result<(), LsnError> {
        self.disconnect();
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            attempts = attempts.saturating_add(1);
            match self.attempt() {
                Ok(client) => {
                    self.set_client(client);
                    self.backoff.reset();
                    self.reconnects += 1;
                    log::info!(
                        "LSN probe reconnected to {} after {attempts} attempt(s) in {:?}",
                        self.target,
                        started.elapsed()
                    );
                    return Ok(());
                }
                Err(source) => {
                    let delay = self.backoff.next_delay();
                    if let Some(limit) = self.config.reconnect_timeout
                        && started.elapsed() + delay > limit
                    {
                        log::error!(
                            "LSN probe giving up reconnecting to {} after {attempts} attempt(s): {source}",
                            self.target
                        );
                        return Err(LsnError::Connect {
                            target: self.target.clone(),
                            attempts,
                            source,
                        });
                    }
                    log::warn!(
                        "LSN probe cannot connect to {} (attempt {attempts}): {source}; retrying in {delay:?}",
                        self.target
                    );
                    self.pause(delay)?;
                }
            }
        }
    }

    /// Connects (with the reconnect loop) unless a live connection is in place.
    pub fn ensure_connected(&mut self) -> Result<(), LsnError> {
        if !self.is_connected() {
            if self.client.is_some() {
                log::warn!("LSN probe lost its connection to {}", self.target);
            }
            self.reconnect()?;
        }
        Ok(())
    }

    /// Runs `query` on a live connection, reconnecting first if there is none. If `query`
    /// fails because the connection is gone, the probe reconnects and runs it once more, so
    /// `query` must be safe to repeat (read-only). Other errors are returned as
    /// [`LsnError::Db`] and keep the connection.
    pub fn with_client<T>(
        &mut self,
        mut query: impl FnMut(&mut Client) -> Result<T, LsnError>,
    ) -> Result<T, LsnError> {
        self.with_session(|client, _| query(client))
    }

    /// Runs `sql` as a statement prepared on the current connection: prepared once per
    /// connection (one extra round trip, the first time), then one round trip per call.
    /// Reconnects and retries like [`ReplicaProbe::with_client`]; `sql` must be
    /// read-only.
    pub fn query_one_prepared(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, LsnError> {
        self.with_session(|client, statements| {
            let statement = match statements.get(sql) {
                Some(statement) => statement.clone(),
                None => {
                    let statement = client.prepare(sql)?;
                    statements.insert(sql, statement.clone());
                    statement
                }
            };
            Ok(client.query_one(&statement, params)?)
        })
    }

    fn with_session<T>(
        &mut self,
        mut query: impl FnMut(&mut Client, &mut HashMap<&'static str, Statement>) -> Result<T, LsnError>,
    ) -> Result<T, LsnError> {
        let mut retried = false;
        loop {
            self.ensure_connected()?;
            let Some(client) = self.client.as_mut() else {
                // reconnect() only returns Ok with a client in place.
                return Err(LsnError::NotConnected {
                    target: self.target.clone(),
                });
            };
            match query(client, &mut self.statements) {
                Ok(value) => return Ok(value),
                Err(e) if e.is_connection() || client.is_closed() => {
                    self.disconnect();
                    if retried {
                        return Err(e);
                    }
                    log::warn!(
                        "LSN probe lost its connection to {} during a query ({e}); reconnecting",
                        self.target
                    );
                    retried = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the server is a standby (`pg_is_in_recovery()`).
    pub fn is_in_recovery(&mut self) -> Result<bool, LsnError> {
        self.with_client(is_in_recovery)
    }

    /// The standby's last replayed WAL position (`pg_last_wal_replay_lsn()`), or `None` when
    /// the server reports NULL: it is not replaying WAL (a primary, or a standby that is not
    /// replicating), so there is nothing to wait for.
    pub fn last_replay_lsn(&mut self) -> Result<Option<Lsn>, LsnError> {
        self.with_client(last_wal_replay_lsn)
    }

    /// The current WAL insert position (`pg_current_wal_insert_lsn()`) when the probe is
    /// connected to the primary. Prefer the free [`current_wal_insert_lsn`] on the session
    /// that made the write.
    pub fn current_wal_insert_lsn(&mut self) -> Result<Lsn, LsnError> {
        self.with_client(current_wal_insert_lsn)
    }

    /// One connection attempt.
    fn attempt(&self) -> Result<Client, postgres::Error> {
        self.config.pg.connect(NoTls)
    }

    /// Waits `delay` between attempts, or stops early when cancelled.
    fn pause(&self, delay: Duration) -> Result<(), LsnError> {
        let Some(cancel) = &self.config.cancel else {
            std::thread::sleep(delay);
            return Ok(());
        };
        match cancel.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => Ok(()),
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                log::info!("LSN probe reconnect to {} cancelled", self.target);
                Err(LsnError::Cancelled {
                    target: self.target.clone(),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loopback port with nothing listening (bound, read, released).
    fn closed_port() -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }

    #[test]
    fn config_parses_conninfo_and_applies_defaults() {
        let c = ProbeConfig::new("host=127.0.0.1 port=5433 user=postgres dbname=postgres").unwrap();
        assert_eq!(c.target(), "127.0.0.1:5433");
        assert_eq!(
            c.pg_config().get_connect_timeout(),
            Some(&DEFAULT_CONNECT_TIMEOUT)
        );
        let c = ProbeConfig::new("host=db connect_timeout=2")
            .unwrap()
            .backoff(Duration::from_millis(7), Duration::from_millis(70));
        assert_eq!(c.target(), "db:5432");
        assert_eq!(
            c.pg_config().get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
        assert_eq!(
            (c.min_backoff, c.max_backoff),
            (Duration::from_millis(7), Duration::from_millis(70))
        );
    }

    #[test]
    fn config_rejects_garbage() {
        let e = ProbeConfig::new("host=x port=notaport").unwrap_err();
        assert!(matches!(e, LsnError::InvalidConfig(_)), "{e:?}");
    }

    #[test]
    fn connect_fails_fast_with_one_attempt() {
        let conninfo = format!("host=127.0.0.1 port={} user=postgres", closed_port());
        let e = ReplicaProbe::connect_str(&conninfo).unwrap_err();
        match &e {
            LsnError::Connect { attempts, .. } => assert_eq!(*attempts, 1),
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(e.is_connection());
    }

    #[test]
    fn lazy_probe_gives_up_after_the_reconnect_timeout() {
        let conninfo = format!("host=127.0.0.1 port={} user=postgres", closed_port());
        let config = ProbeConfig::new(&conninfo)
            .unwrap()
            .backoff(Duration::from_millis(5), Duration::from_millis(20))
            .reconnect_timeout(Some(Duration::from_millis(150)));
        let mut probe = ReplicaProbe::lazy(config);
        assert!(!probe.is_connected());
        let started = Instant::now();
        let e = probe.last_replay_lsn().unwrap_err();
        let elapsed = started.elapsed();
        match e {
            LsnError::Connect { attempts, .. } => assert!(attempts >= 3, "{attempts} attempts"),
            other => panic!("expected Connect, got {other:?}"),
        }
        assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
        assert_eq!(probe.reconnects(), 0);
    }

    #[test]
    fn reconnect_loop_can_be_cancelled() {
        let conninfo = format!("host=127.0.0.1 port={} user=postgres", closed_port());
        let (stop_tx, stop_rx) = crossbeam_channel::bounded(1);
        let config = ProbeConfig::new(&conninfo)
            .unwrap()
            .backoff(Duration::from_millis(20), Duration::from_millis(20))
            .reconnect_timeout(None)
            .cancel_on(stop_rx);
        let mut probe = ReplicaProbe::lazy(config);
        let worker = std::thread::spawn(move || probe.is_in_recovery());
        std::thread::sleep(Duration::from_millis(60));
        stop_tx.send(()).unwrap();
        let result = worker.join().unwrap();
        assert!(
            matches!(result, Err(LsnError::Cancelled { .. })),
            "{result:?}"
        );
    }
}
