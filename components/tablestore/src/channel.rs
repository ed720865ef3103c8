//! Pure channel-state reconciliation (no I/O, no threads).
//!
//! A tunnel client owns a set of channels. Each heartbeat the client reports
//! its view (`channel_id, version, status`) and the server answers with the
//! channels it assigns to the client. [`ChannelTable`] merges the two views
//! and tells the worker what to do, following the official SDKs:
//!
//! * a state with an **older version** than the local one is ignored (the
//!   local state is kept); equal or newer versions are adopted;
//! * a channel missing from the response is **revoked**: its reader is stopped
//!   and the channel is forgotten (no longer reported);
//! * remote `OPEN` with no reader ⇒ **start** a reader (GetCheckpoint, then
//!   ReadRecords from the checkpoint);
//! * remote `CLOSING` ⇒ stop the reader, then acknowledge with `CLOSE` at
//!   `version + 1` (immediately when no reader is running);
//! * remote `CLOSE` / `TERMINATED` ⇒ stop the reader, report as received;
//! * a reader that **fails** (or cannot start) ⇒ `CLOSE` at `version + 1`;
//! * a reader that reaches the **finish token** ⇒ `TERMINATED` at
//!   `version + 1`.
//!
//! The worker drives the table:
//!
//! 1. `let plan = table.apply_heartbeat(&response.channels)`;
//! 2. for each id in `plan.start`: GetCheckpoint and spawn a reader; on
//!    failure call [`ChannelTable::reader_failed`];
//! 3. for each [`StopOrder`] in `plan.stop`: stop that reader, then call
//!    [`ChannelTable::reader_stopped`];
//! 4. when a reader ends by itself call [`ChannelTable::reader_finished`] or
//!    [`ChannelTable::reader_failed`];
//! 5. send [`ChannelTable::heartbeat_channels`] with the next heartbeat.
//!
//! Every event method returns a [`Plan`] too (usually empty), to be executed
//! the same way.
//!
//! Versions come from the service, so `version + 1` is checked: a channel at
//! `i64::MAX` cannot be given back or reported finished, and the event is a
//! [`TunnelError::OutOfRange`] naming the channel (that entry keeps its
//! version and status), never a panic or a wrapped version.

use std::collections::BTreeMap;

use super::error::TunnelError;
use super::proto::{Channel, ChannelStatus};

/// What the worker must do after an event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Channels that need a reader: GetCheckpoint, then read.
    pub start: Vec<String>,
    /// Readers to stop.
    pub stop: Vec<StopOrder>,
}

impl Plan {
    /// True when there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty()
    }

    fn merge(&mut self, other: Plan) {
        self.start.extend(other.start);
        self.stop.extend(other.stop);
    }
}

/// A reader to stop, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopOrder {
    /// The channel whose reader must stop.
    pub channel_id: String,
    /// Why.
    pub reason: StopReason,
}

/// Why a reader must stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The server asked for the channel back (`CLOSING`); it is acknowledged
    /// once [`ChannelTable::reader_stopped`] is called.
    Closing,
    /// The server reports the channel `CLOSE`.
    Closed,
    /// The server reports the channel `TERMINATED`.
    Terminated,
    /// The channel is no longer assigned to this client.
    Revoked,
}

/// The local reader of a channel, as far as the table knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReaderState {
    /// No reader.
    Idle,
    /// A reader was (or is being) started.
    Running,
    /// A stop was ordered; waiting for [`ChannelTable::reader_stopped`].
    Stopping,
}

/// One channel as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalChannel {
    /// The channel's id.
    pub channel_id: String,
    /// The version the client reports.
    pub version: i64,
    /// The status the client reports.
    pub status: ChannelStatus,
    /// The reader.
    pub reader: ReaderState,
    /// False once the server stopped listing the channel (the entry only
    /// lingers until its reader confirms it stopped).
    pub assigned: bool,
}

impl LocalChannel {
    fn to_proto(&self) -> Channel {
        Channel::new(self.channel_id.clone(), self.version, self.status)
    }
}

/// The client's channels; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ChannelTable {
    channels: BTreeMap<String, LocalChannel>,
}

impl ChannelTable {
    /// An empty table (a fresh session).
    pub fn new() -> Self {
        Self::default()
    }

    /// The local state of one channel.
    pub fn get(&self, channel_id: &str) -> Option<&LocalChannel> {
        self.channels.get(channel_id)
    }

    /// All tracked channels (including revoked ones whose reader has not
    /// confirmed its stop), ordered by id.
    pub fn channels(&self) -> impl Iterator<Item = &LocalChannel> {
        self.channels.values()
    }

    /// Channels with a running reader, ordered by id.
    pub fn running(&self) -> impl Iterator<Item = &str> {
        self.channels
            .values()
            .filter(|c| c.reader == ReaderState::Running)
            .map(|c| c.channel_id.as_str())
    }

    /// The channel states to send with the next heartbeat: every assigned
    /// channel, ordered by id.
    pub fn heartbeat_channels(&self) -> Vec<Channel> {
        self.channels
            .values()
            .filter(|c| c.assigned)
            .map(LocalChannel::to_proto)
            .collect()
    }

    /// Merge the server's channel list from a heartbeat response.
    ///
    /// Channel entries with an unknown status value are ignored (with a
    /// warning), as are duplicates after the first.
    pub fn apply_heartbeat(&mut self, remote: &[Channel]) -> Result<Plan, TunnelError> {
        let mut plan = Plan::default();
        let mut seen = std::collections::BTreeSet::new();
        for r in remote {
            let Ok(status) = ChannelStatus::try_from(r.status) else {
                log::warn!(
                    "channel {} has unknown status {}; ignored",
                    r.channel_id,
                    r.status
                );
                continue;
            };
            if !seen.insert(r.channel_id.as_str()) {
                log::warn!(
                    "channel {} listed twice in a heartbeat; extra entry ignored",
                    r.channel_id
                );
                continue;
            }
            let entry = self
                .channels
                .entry(r.channel_id.clone())
                .or_insert_with(|| LocalChannel {
                    channel_id: r.channel_id.clone(),
                    version: r.version,
                    status,
                    reader: ReaderState::Idle,
                    assigned: true,
                });
            entry.assigned = true;
            if r.version < entry.version {
                log::debug!(
                    "channel {}: ignoring stale state v{} {:?} (local v{} {:?})",
                    r.channel_id,
                    r.version,
                    status,
                    entry.version,
                    entry.status
                );
            } else {
                entry.version = r.version;
                entry.status = status;
            }
            plan.merge(Self::act(entry)?);
        }
        // Revoke channels the server no longer lists.
        let mut forget = Vec::new();
        for (id, entry) in &mut self.channels {
            if seen.contains(id.as_str()) {
                continue;
            }
            entry.assigned = false;
            match entry.reader {
                ReaderState::Running => {
                    entry.reader = ReaderState::Stopping;
                    plan.stop.push(StopOrder {
                        channel_id: id.clone(),
                        reason: StopReason::Revoked,
                    });
                }
                ReaderState::Stopping => {}
                ReaderState::Idle => forget.push(id.clone()),
            }
        }
        for id in forget {
            log::debug!("channel {id} revoked");
            self.channels.remove(&id);
        }
        Ok(plan)
    }

    /// React to an entry's (possibly just updated) state.
    fn act(entry: &mut LocalChannel) -> Result<Plan, TunnelError> {
        let mut plan = Plan::default();
        let reason = match (entry.status, entry.reader) {
            (ChannelStatus::Open, ReaderState::Idle) => {
                entry.reader = ReaderState::Running;
                plan.start.push(entry.channel_id.clone());
                None
            }
            (ChannelStatus::Closing, ReaderState::Idle) => {
                Self::bump(entry, ChannelStatus::Close)?;
                None
            }
            (ChannelStatus::Closing, ReaderState::Running) => Some(StopReason::Closing),
            (ChannelStatus::Close, ReaderState::Running) => Some(StopReason::Closed),
            (ChannelStatus::Terminated, ReaderState::Running) => Some(StopReason::Terminated),
            // Open+Running: keep reading. Stopping: wait for the reader.
            // Close/Terminated+Idle: nothing to do.
            _ => None,
        };
        if let Some(reason) = reason {
            entry.reader = ReaderState::Stopping;
            plan.stop.push(StopOrder {
                channel_id: entry.channel_id.clone(),
                reason,
            });
        }
        Ok(plan)
    }

    /// The client changes the channel's state: `version + 1`, new status. A
    /// version that cannot be advanced leaves the entry unchanged.
    fn bump(entry: &mut LocalChannel, status: ChannelStatus) -> Result<(), TunnelError> {
        entry.version = entry
            .version
            .checked_add(1)
            .ok_or_else(|| TunnelError::OutOfRange {
                what: "channel version",
                subject: entry.channel_id.clone(),
                value: entry.version,
            })?;
        entry.status = status;
        log::info!(
            "channel {} -> {} v{}",
            entry.channel_id,
            status.as_str(),
            entry.version
        );
        Ok(())
    }

    /// Shared end-of-reader handling. `outcome` is the status to report when
    /// the channel was still OPEN/CLOSING.
    fn reader_ended(
        &mut self,
        channel_id: &str,
        outcome: ChannelStatus,
    ) -> Result<Plan, TunnelError> {
        let Some(entry) = self.channels.get_mut(channel_id) else {
            return Ok(Plan::default());
        };
        entry.reader = ReaderState::Idle;
        if !entry.assigned {
            self.channels.remove(channel_id);
            return Ok(Plan::default());
        }
        if matches!(entry.status, ChannelStatus::Open | ChannelStatus::Closing) {
            Self::bump(entry, outcome)?;
        }
        Ok(Plan::default())
    }

    /// The reader of `channel_id` failed (or could not be started, e.g.
    /// GetCheckpoint failed): the channel is given back as `CLOSE` at
    /// `version + 1`.
    pub fn reader_failed(&mut self, channel_id: &str) -> Result<Plan, TunnelError> {
        log::warn!("channel {channel_id}: reader failed");
        self.reader_ended(channel_id, ChannelStatus::Close)
    }

    /// The reader of `channel_id` reached the finish token: the channel is
    /// reported `TERMINATED` at `version + 1`.
    pub fn reader_finished(&mut self, channel_id: &str) -> Result<Plan, TunnelError> {
        self.reader_ended(channel_id, ChannelStatus::Terminated)
    }

    /// The reader of `channel_id` stopped.
    ///
    /// After a [`StopReason::Closing`] order this acknowledges the close
    /// (`CLOSE`, `version + 1`). If the channel was re-opened while the
    /// reader was stopping, the returned plan starts a new reader. A reader
    /// that stops without having been asked to counts as failed.
    pub fn reader_stopped(&mut self, channel_id: &str) -> Result<Plan, TunnelError> {
        let Some(entry) = self.channels.get_mut(channel_id) else {
            return Ok(Plan::default());
        };
        match entry.reader {
            ReaderState::Running => self.reader_failed(channel_id),
            ReaderState::Idle => Ok(Plan::default()),
            ReaderState::Stopping => {
                entry.reader = ReaderState::Idle;
                if !entry.assigned {
                    self.channels.remove(channel_id);
                    return Ok(Plan::default());
                }
                if entry.status == ChannelStatus::Closing {
                    Self::bump(entry, ChannelStatus::Close)?;
                    Ok(Plan::default())
                } else {
                    Self::act(entry)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ChannelStatus::{Close, Closing, Open, Terminated};

    fn ch(id: &str, version: i64, status: ChannelStatus) -> Channel {
        Channel::new(id, version, status)
    }

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn stops(plan: &Plan) -> Vec<(&str, StopReason)> {
        plan.stop
            .iter()
            .map(|s| (s.channel_id.as_str(), s.reason))
            .collect()
    }

    /// The Go SDK's `newStateWith4OpenChan` starting point: four running
    /// channels at version 0.
    fn four_open() -> ChannelTable {
        let mut t = ChannelTable::new();
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-2", 0, Open),
                ch("cid-3", 0, Open),
                ch("cid-4", 0, Open),
            ])
            .unwrap();
        assert_eq!(plan.start, ids(&["cid-1", "cid-2", "cid-3", "cid-4"]));
        t
    }

    /// Replays the Go SDK's sequential `TestTunnelStateMachine_BatchUpdateStatus`
    /// table (steps 1-7), executing plans the way a worker would.
    #[test]
    fn go_sdk_sequential_cases() {
        let mut t = four_open();

        // step 1: two open, two closing (v1) => closing ones reported CLOSE v2
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-2", 0, Open),
                ch("cid-3", 1, Closing),
                ch("cid-4", 1, Closing),
            ])
            .unwrap();
        assert!(plan.start.is_empty());
        assert_eq!(
            stops(&plan),
            vec![
                ("cid-3", StopReason::Closing),
                ("cid-4", StopReason::Closing)
            ]
        );
        for s in &plan.stop {
            assert!(t.reader_stopped(&s.channel_id).unwrap().is_empty());
        }
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-2", 0, Open),
                ch("cid-3", 2, Close),
                ch("cid-4", 2, Close)
            ]
        );
        assert_eq!(t.running().collect::<Vec<_>>(), vec!["cid-1", "cid-2"]);

        // step 2: one open, one closing, cid-4 reopened at v2, one new
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-2", 1, Closing),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
            ])
            .unwrap();
        assert_eq!(plan.start, ids(&["cid-4", "cid-5"]));
        assert_eq!(stops(&plan), vec![("cid-2", StopReason::Closing)]);
        t.reader_stopped("cid-2").unwrap();
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-2", 2, Close),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open)
            ]
        );
        assert_eq!(t.running().count(), 3);

        // step 3: a bad new channel (its reader fails) => CLOSE v1; cid-2 revoked
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
                ch("cid-bad", 0, Open),
                ch("cid-6", 0, Open),
            ])
            .unwrap();
        // starts follow the response order
        assert_eq!(plan.start, ids(&["cid-bad", "cid-6"]));
        assert!(plan.stop.is_empty());
        t.reader_failed("cid-bad").unwrap();
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
                ch("cid-6", 0, Open),
                ch("cid-bad", 1, Close),
            ]
        );
        assert_eq!(t.running().count(), 4);

        // step 4: an old version (cid-4 v1 CLOSING < local v2) is ignored
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-4", 1, Closing),
                ch("cid-5", 0, Open),
                ch("cid-6", 0, Open),
            ])
            .unwrap();
        assert!(plan.is_empty());
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
                ch("cid-6", 0, Open)
            ]
        );

        // step 5: cid-6 reaches the finish token => TERMINATED v1
        t.reader_finished("cid-6").unwrap();
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
                ch("cid-6", 0, Open),
            ])
            .unwrap();
        assert!(
            plan.is_empty(),
            "a stale OPEN must not restart a finished channel: {plan:?}"
        );
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-5", 0, Open),
                ch("cid-6", 1, Terminated)
            ]
        );
        assert_eq!(t.running().count(), 3);

        // step 6: cid-5 missing (revoked), a channel whose GetCheckpoint fails
        let plan = t
            .apply_heartbeat(&[
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-getCheckpointFailed", 1, Open),
            ])
            .unwrap();
        assert_eq!(plan.start, ids(&["cid-getCheckpointFailed"]));
        assert_eq!(stops(&plan), vec![("cid-5", StopReason::Revoked)]);
        t.reader_failed("cid-getCheckpointFailed").unwrap();
        t.reader_stopped("cid-5").unwrap();
        assert!(t.get("cid-5").is_none());
        assert_eq!(
            t.heartbeat_channels(),
            vec![
                ch("cid-1", 0, Open),
                ch("cid-4", 2, Open),
                ch("cid-getCheckpointFailed", 2, Close)
            ]
        );
        assert_eq!(t.running().count(), 2);

        // step 7: all finished
        t.reader_finished("cid-1").unwrap();
        t.reader_finished("cid-4").unwrap();
        let plan = t
            .apply_heartbeat(&[ch("cid-1", 0, Open), ch("cid-4", 2, Open)])
            .unwrap();
        assert!(plan.is_empty());
        assert_eq!(
            t.heartbeat_channels(),
            vec![ch("cid-1", 1, Terminated), ch("cid-4", 3, Terminated)]
        );
        assert_eq!(t.running().count(), 0);
    }

    #[test]
    fn failing_reader_at_v0_open_is_reported_close_v1() {
        let mut t = ChannelTable::new();
        assert_eq!(
            t.apply_heartbeat(&[ch("c", 0, Open)]).unwrap().start,
            ids(&["c"])
        );
        t.reader_failed("c").unwrap();
        assert_eq!(t.heartbeat_channels(), vec![ch("c", 1, Close)]);
        // the server may hand it back at a newer version: start again
        assert_eq!(
            t.apply_heartbeat(&[ch("c", 1, Open)]).unwrap().start,
            ids(&["c"])
        );
    }

    #[test]
    fn closing_without_reader_is_acknowledged_at_once() {
        let mut t = ChannelTable::new();
        let plan = t.apply_heartbeat(&[ch("new", 4, Closing)]).unwrap();
        assert!(plan.is_empty());
        assert_eq!(t.heartbeat_channels(), vec![ch("new", 5, Close)]);
        // the server repeating CLOSING v4 is stale now
        assert!(
            t.apply_heartbeat(&[ch("new", 4, Closing)])
                .unwrap()
                .is_empty()
        );
        assert_eq!(t.heartbeat_channels(), vec![ch("new", 5, Close)]);
    }

    #[test]
    fn remote_close_and_terminated_stop_the_reader_without_bump() {
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("a", 0, Open), ch("b", 0, Open)])
            .unwrap();
        let plan = t
            .apply_heartbeat(&[ch("a", 1, Close), ch("b", 1, Terminated)])
            .unwrap();
        assert_eq!(
            stops(&plan),
            vec![("a", StopReason::Closed), ("b", StopReason::Terminated)]
        );
        t.reader_stopped("a").unwrap();
        t.reader_stopped("b").unwrap();
        assert_eq!(
            t.heartbeat_channels(),
            vec![ch("a", 1, Close), ch("b", 1, Terminated)]
        );
    }

    #[test]
    fn failure_while_closing_acknowledges_once() {
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("a", 0, Open)]).unwrap();
        t.apply_heartbeat(&[ch("a", 1, Closing)]).unwrap();
        t.reader_failed("a").unwrap();
        t.reader_stopped("a").unwrap(); // late confirmation is a no-op
        assert_eq!(t.heartbeat_channels(), vec![ch("a", 2, Close)]);
    }

    #[test]
    fn finish_while_closing_is_terminated() {
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("a", 0, Open)]).unwrap();
        t.apply_heartbeat(&[ch("a", 1, Closing)]).unwrap();
        t.reader_finished("a").unwrap();
        assert_eq!(t.heartbeat_channels(), vec![ch("a", 2, Terminated)]);
    }

    #[test]
    fn reassigned_while_stopping_restarts_after_the_stop() {
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("a", 0, Open)]).unwrap();
        let plan = t.apply_heartbeat(&[]).unwrap();
        assert_eq!(stops(&plan), vec![("a", StopReason::Revoked)]);
        assert!(
            t.heartbeat_channels().is_empty(),
            "revoked channels are not reported"
        );
        // handed back before the old reader confirmed its stop: no second reader yet
        assert!(t.apply_heartbeat(&[ch("a", 0, Open)]).unwrap().is_empty());
        assert_eq!(t.reader_stopped("a").unwrap().start, ids(&["a"]));
        assert_eq!(t.running().collect::<Vec<_>>(), vec!["a"]);
    }

    #[test]
    fn unexpected_reader_exit_counts_as_failure() {
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("a", 3, Open)]).unwrap();
        assert!(t.reader_stopped("a").unwrap().is_empty());
        assert_eq!(t.heartbeat_channels(), vec![ch("a", 4, Close)]);
    }

    #[test]
    fn unknown_channels_and_statuses_are_ignored() {
        let mut t = ChannelTable::new();
        assert!(t.reader_failed("nope").unwrap().is_empty());
        assert!(t.reader_stopped("nope").unwrap().is_empty());
        assert!(t.reader_finished("nope").unwrap().is_empty());
        let mut weird = ch("w", 0, Open);
        weird.status = 42;
        assert!(t.apply_heartbeat(&[weird]).unwrap().is_empty());
        assert!(t.heartbeat_channels().is_empty());
        // duplicates: first entry wins
        let plan = t
            .apply_heartbeat(&[ch("d", 0, Open), ch("d", 5, Closing)])
            .unwrap();
        assert_eq!(plan.start, ids(&["d"]));
        assert_eq!(t.heartbeat_channels(), vec![ch("d", 0, Open)]);
    }

    #[test]
    fn a_server_version_of_i64_max_is_an_out_of_range_error_not_a_panic() {
        let max = i64::MAX;
        // CLOSING at i64::MAX without a reader: the acknowledgement needs max + 1.
        let mut t = ChannelTable::new();
        match t.apply_heartbeat(&[ch("c", max, Closing)]) {
            Err(TunnelError::OutOfRange {
                what,
                subject,
                value,
            }) => {
                assert_eq!(
                    (what, subject.as_str(), value),
                    ("channel version", "c", max)
                );
            }
            other => panic!("expected OutOfRange, got {other:?}"),
        }
        assert_eq!(t.heartbeat_channels(), vec![ch("c", max, Closing)]);
        // OPEN at i64::MAX reads fine; failing, finishing or closing it cannot be reported.
        let mut t = ChannelTable::new();
        assert_eq!(
            t.apply_heartbeat(&[ch("o", max, Open)]).unwrap().start,
            ids(&["o"])
        );
        assert!(t.reader_failed("o").unwrap_err().is_fatal());
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("o", max, Open)]).unwrap();
        assert!(t.reader_finished("o").is_err());
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("o", max - 1, Open)]).unwrap();
        let plan = t.apply_heartbeat(&[ch("o", max, Closing)]).unwrap();
        assert_eq!(stops(&plan), vec![("o", StopReason::Closing)]);
        assert!(t.reader_stopped("o").is_err());
        // one below the limit still works
        let mut t = ChannelTable::new();
        t.apply_heartbeat(&[ch("p", max - 1, Closing)]).unwrap();
        assert_eq!(t.heartbeat_channels(), vec![ch("p", max, Close)]);
    }
}
