//! A process hub after Elixir's process_hub: children (by string id) spread over a
//! cluster of otp-threads nodes by a consistent hash ring, a cluster-wide registry of
//! where every copy runs, and migration (cold swap, or hot swap with state handover)
//! when nodes join or leave. Hubs talk over Erlang distribution
//! (`otp_threads::dist`).
//!
//! Contract (details in each module and in the README):
//! * Placement: [`ring`] — FNV-1a 64 + SplitMix64 finaliser, `virtual_nodes` points per
//!   node, clockwise walk; reproducible on every node from the member set alone. Or
//!   guided placement: each child on the nodes named at its start.
//! * Membership: hubs of the same id greet each other on `nodeup` and every
//!   `discover_interval`; `nodedown` or an orderly leave drops a node. Members are
//!   passed on in greetings and syncs, and a hub connects to every member it is not
//!   connected to (a full mesh, as `global` keeps between BEAM nodes).
//! * Redundancy: singularity (default) or replication with a factor, active-active or
//!   active-passive (the active copy is the first ring node holding one); with a
//!   `redundancy_signal`, active-passive copies are told their role as they start and
//!   whenever a join or leave changes it ([`HubChild::redundancy_signal`]).
//! * Migration: cold swap (default) or hot swap (new copy first, then the old one
//!   hands its state over and stops; process_hub's options and defaults).
//! * Graceful leave: [`Hub::stop`] sends each child's state to its next node, where it
//!   is restored when the child starts.
//! * Registry sync every `sync_interval`; partition tolerance: divergence (default) or
//!   majority quorum.
#![forbid(unsafe_code)]

mod child;
mod config;
mod coordinator;
mod error;
mod events;
mod hub;
mod registry;
pub mod ring;
mod wire;

pub use child::{HubChild, HubChildSpec};
pub use config::{
    ChildFactory, CopyMode, Distribution, HotSwap, HubConfig, Migration, PartitionTolerance,
    Redundancy, RedundancySignal, ReplicationModel,
};
pub use error::HubError;
pub use events::HubEvent;
pub use hub::{Hub, PendingStarts, PendingStops, StartResult};
pub use registry::ChildInfo;
pub use ring::Ring;

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
