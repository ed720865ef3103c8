//! Hook events: what happened on this node's hub, delivered on a crossbeam
//! [`Receiver`](crossbeam_channel::Receiver) from [`Hub::events`](crate::Hub::events)
//! (process_hub's hooks). Each hub reports facts about its own node.

use otp_threads::Pid;

/// One hook event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// A copy of `id` started here (also after a supervisor restart).
    ChildStarted {
        /// The child id.
        id: String,
        /// Its pid.
        pid: Pid,
    },
    /// The copy of `id` here stopped (stop_child, migration, convergence).
    ChildStopped {
        /// The child id.
        id: String,
    },
    /// `id` moved from this node to `to`.
    ChildMigrated {
        /// The child id.
        id: String,
        /// The new node.
        to: String,
        /// Whether the old copy handed its state over before it stopped.
        handed_over: bool,
    },
    /// `node` confirmed it received the state of `id` (hot swap, `confirm_handover`).
    HandoverConfirmed {
        /// The child id.
        id: String,
        /// The node that received it.
        node: String,
    },
    /// A hub of the same id on `node` joined.
    NodeJoined(String),
    /// `node` left (nodedown, or an orderly leave).
    NodeLeft(String),
    /// The redistribution after a membership change ended.
    RedistributionDone {
        /// The node whose join or leave caused it, or `sync` for the periodic check
        /// (reported only when it moved something).
        trigger: String,
        /// Children moved away from this node.
        migrated: usize,
        /// Migrations that failed (start refused); those children stay here.
        failed: usize,
        /// Migrations whose start did not answer within `child_migration_timeout`.
        timed_out: usize,
    },
}
