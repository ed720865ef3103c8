//! Hub settings, after process_hub's hub struct and strategy structs, with the same
//! defaults. Built with [`HubConfig::new`] and builder methods; [`HubConfig::validate`]
//! (run by [`Hub::start`](crate::Hub::start)) rejects a bad value with
//! [`HubError::InvalidOption`] naming the option.

use std::sync::Arc;
use std::time::Duration;

use crate::child::{HubChild, HubChildSpec};
use crate::error::HubError;

/// Makes the worker state of a child from its spec, on whichever node runs it.
pub type ChildFactory = Arc<dyn Fn(&HubChildSpec) -> Box<dyn HubChild> + Send + Sync>;

/// How many copies of a child run (process_hub's redundancy strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redundancy {
    /// One copy per child (the default).
    Singularity,
    /// `factor` copies on the first `factor` distinct nodes of the ring walk.
    Replication {
        /// Copies per child (at least 1; capped by the cluster size).
        factor: usize,
        /// Whether every copy is active or only the first of the ring walk.
        model: ReplicationModel,
    },
}

/// Replication model: every copy serves, or one active copy (the first node of the ring
/// walk, the same on every node) and passive standbys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplicationModel {
    /// All copies are active.
    ActiveActive,
    /// One active copy, chosen deterministically.
    ActivePassive,
}

/// Which role changes a child of an active-passive hub is told of, through
/// [`HubChild::redundancy_signal`](crate::HubChild::redundancy_signal)
/// (process_hub's `redundancy_signal`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RedundancySignal {
    /// None (the default).
    #[default]
    None,
    /// Only becoming (or starting as) the active copy.
    Active,
    /// Only becoming (or starting as) a passive copy.
    Passive,
    /// Both.
    All,
}

impl RedundancySignal {
    /// Whether a copy is told that it now is `mode`.
    pub(crate) fn tells(self, mode: CopyMode) -> bool {
        matches!(
            (self, mode),
            (RedundancySignal::All, _)
                | (RedundancySignal::Active, CopyMode::Active)
                | (RedundancySignal::Passive, CopyMode::Passive)
        )
    }
}

/// The role of one copy under active-passive replication: the active copy (the
/// first ring node holding one, as [`Hub::active_copy`](crate::Hub::active_copy)
/// finds it) or a passive standby.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyMode {
    /// The copy that serves.
    Active,
    /// A standby.
    Passive,
}

/// Where children go (process_hub's distribution strategies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// The hash ring (the default); children move when membership changes.
    ConsistentHashing,
    /// Each child goes to the nodes named at its start
    /// ([`Hub::start_children_on`](crate::Hub::start_children_on)) and never moves:
    /// no migration on joins, no restart elsewhere when its node is lost.
    Guided,
}

/// How children move when their node changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Migration {
    /// Stop the old copy, then start the new one (the default; no state travels).
    ColdSwap,
    /// Start the new copy first, hand the old one's state over, then stop the old one.
    HotSwap(HotSwap),
}

/// Hot swap options, with process_hub's defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HotSwap {
    /// How long the old copy may live after the new one started (default 5,000 ms);
    /// it is stopped earlier once it has handed its state over.
    pub retention: Duration,
    /// Whether the old copy hands its state to the new one (default `false`).
    pub handover: bool,
    /// Whether the new copy confirms receipt of the state (default `false`).
    pub confirm_handover: bool,
    /// On a graceful leave, how long to wait for each child's state (default 3,000 ms).
    pub handover_data_wait: Duration,
    /// How long the start of one migrated child may take (default 10,000 ms).
    pub child_migration_timeout: Duration,
}

impl Default for HotSwap {
    fn default() -> Self {
        HotSwap {
            retention: Duration::from_millis(5000),
            handover: false,
            confirm_handover: false,
            handover_data_wait: Duration::from_millis(3000),
            child_migration_timeout: Duration::from_millis(10000),
        }
    }
}

/// What a hub does when nodes disappear.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionTolerance {
    /// Every side of a partition carries on alone (process_hub's default, `Divergence`);
    /// duplicates are removed when the partition heals.
    Divergence,
    /// A side with fewer than `floor(max / 2) + 1` nodes refuses new children and does
    /// not restart the children of lost nodes (process_hub's `MajorityQuorum`); `max` is
    /// `initial_cluster_size`, or the largest cluster seen if `track_max_size`.
    MajorityQuorum {
        /// The expected cluster size (default 1).
        initial_cluster_size: usize,
        /// Whether `max` grows with the largest cluster seen (default `true`).
        track_max_size: bool,
    },
}

/// Settings of a hub; see the [module docs](self).
#[derive(Clone)]
pub struct HubConfig {
    pub(crate) hub_id: String,
    pub(crate) factory: ChildFactory,
    pub(crate) redundancy: Redundancy,
    pub(crate) redundancy_signal: RedundancySignal,
    pub(crate) distribution: Distribution,
    pub(crate) migration: Migration,
    pub(crate) partition: PartitionTolerance,
    pub(crate) virtual_nodes: u32,
    pub(crate) sync_interval: Duration,
    pub(crate) discover_interval: Duration,
    pub(crate) migration_base_timeout: Duration,
    pub(crate) max_restarts: u32,
    pub(crate) max_seconds: Duration,
}

impl std::fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubConfig")
            .field("hub_id", &self.hub_id)
            .field("redundancy", &self.redundancy)
            .field("redundancy_signal", &self.redundancy_signal)
            .field("distribution", &self.distribution)
            .field("migration", &self.migration)
            .field("partition", &self.partition)
            .field("virtual_nodes", &self.virtual_nodes)
            .field("sync_interval", &self.sync_interval)
            .field("discover_interval", &self.discover_interval)
            .finish_non_exhaustive()
    }
}

/// Longest hub id: it becomes part of a registered name (an atom, at most 255 bytes).
const MAX_HUB_ID: usize = 200;

impl HubConfig {
    /// A hub `hub_id` whose children are made by `factory`; every other setting at
    /// process_hub's default: singularity, cold swap, divergence, sync every 15 s,
    /// discovery every 10 s, 100 restarts in 4 s, 64 virtual nodes per node.
    pub fn new(
        hub_id: impl Into<String>,
        factory: impl Fn(&HubChildSpec) -> Box<dyn HubChild> + Send + Sync + 'static,
    ) -> HubConfig {
        HubConfig {
            hub_id: hub_id.into(),
            factory: Arc::new(factory),
            redundancy: Redundancy::Singularity,
            redundancy_signal: RedundancySignal::None,
            distribution: Distribution::ConsistentHashing,
            migration: Migration::ColdSwap,
            partition: PartitionTolerance::Divergence,
            virtual_nodes: 64,
            sync_interval: Duration::from_millis(15000),
            discover_interval: Duration::from_millis(10000),
            migration_base_timeout: Duration::from_millis(15000),
            max_restarts: 100,
            max_seconds: Duration::from_secs(4),
        }
    }

    /// Which role changes children are told of (default [`RedundancySignal::None`]);
    /// needs active-passive replication.
    pub fn redundancy_signal(mut self, signal: RedundancySignal) -> Self {
        self.redundancy_signal = signal;
        self
    }

    /// The redundancy strategy.
    pub fn redundancy(mut self, redundancy: Redundancy) -> Self {
        self.redundancy = redundancy;
        self
    }

    /// The distribution strategy.
    pub fn distribution(mut self, distribution: Distribution) -> Self {
        self.distribution = distribution;
        self
    }

    /// The migration strategy.
    pub fn migration(mut self, migration: Migration) -> Self {
        self.migration = migration;
        self
    }

    /// The partition tolerance strategy.
    pub fn partition_tolerance(mut self, partition: PartitionTolerance) -> Self {
        self.partition = partition;
        self
    }

    /// Points per node on the hash ring (default 64, 1 ..= 4096).
    pub fn virtual_nodes(mut self, count: u32) -> Self {
        self.virtual_nodes = count;
        self
    }

    /// How often each hub sends its local children to the others (default 15 s).
    pub fn sync_interval(mut self, interval: Duration) -> Self {
        self.sync_interval = interval;
        self
    }

    /// How often each hub greets connected nodes that are not members yet (default 10 s).
    pub fn discover_interval(mut self, interval: Duration) -> Self {
        self.discover_interval = interval;
        self
    }

    /// Added to the migration timeouts for a whole redistribution (default 15 s).
    pub fn migration_base_timeout(mut self, timeout: Duration) -> Self {
        self.migration_base_timeout = timeout;
        self
    }

    /// Restart intensity of the hub's supervisor (default 100 restarts in 4 s).
    pub fn intensity(mut self, max_restarts: u32, period: Duration) -> Self {
        self.max_restarts = max_restarts;
        self.max_seconds = period;
        self
    }

    /// The hub id.
    pub fn hub_id(&self) -> &str {
        &self.hub_id
    }

    /// Checks every option; the error names the first bad one.
    pub fn validate(&self) -> Result<(), HubError> {
        validate_hub_id(&self.hub_id)?;
        validate_redundancy(self.redundancy)?;
        validate_redundancy_signal(self.redundancy, self.redundancy_signal)?;
        validate_migration(self.migration)?;
        validate_partition(self.partition)?;
        validate_virtual_nodes(self.virtual_nodes)?;
        positive("sync_interval", self.sync_interval)?;
        positive("discover_interval", self.discover_interval)?;
        positive("migration_base_timeout", self.migration_base_timeout)?;
        positive("intensity", self.max_seconds)?;
        Ok(())
    }

    /// Copies per child wanted (before capping by the cluster size).
    pub(crate) fn replication_factor(&self) -> usize {
        match self.redundancy {
            Redundancy::Singularity => 1,
            Redundancy::Replication { factor, .. } => factor,
        }
    }

    /// The hot swap options, if hot swap is the strategy.
    pub(crate) fn hot_swap(&self) -> Option<HotSwap> {
        match self.migration {
            Migration::HotSwap(options) => Some(options),
            Migration::ColdSwap => None,
        }
    }

    /// The name the hub's coordinator is registered under on every node.
    pub(crate) fn coordinator_name(&self) -> String {
        format!("otp_hub.{}", self.hub_id)
    }
}

fn invalid(option: &'static str, reason: &'static str) -> HubError {
    HubError::InvalidOption { option, reason }
}

fn validate_hub_id(id: &str) -> Result<(), HubError> {
    if id.is_empty() {
        return Err(invalid("hub_id", "must not be empty"));
    }
    if id.len() > MAX_HUB_ID {
        return Err(invalid("hub_id", "must be at most 200 bytes"));
    }
    Ok(())
}

fn validate_redundancy(redundancy: Redundancy) -> Result<(), HubError> {
    match redundancy {
        Redundancy::Replication { factor: 0, .. } => Err(invalid(
            "redundancy",
            "replication factor must be at least 1",
        )),
        Redundancy::Replication { factor, .. } if factor > 1024 => Err(invalid(
            "redundancy",
            "replication factor must be at most 1024",
        )),
        _ => Ok(()),
    }
}

fn validate_redundancy_signal(
    redundancy: Redundancy,
    signal: RedundancySignal,
) -> Result<(), HubError> {
    let active_passive = matches!(
        redundancy,
        Redundancy::Replication {
            model: ReplicationModel::ActivePassive,
            ..
        }
    );
    if signal != RedundancySignal::None && !active_passive {
        return Err(invalid(
            "redundancy_signal",
            "needs active-passive replication",
        ));
    }
    Ok(())
}

fn validate_migration(migration: Migration) -> Result<(), HubError> {
    if let Migration::HotSwap(options) = migration {
        positive("retention", options.retention)?;
        positive("handover_data_wait", options.handover_data_wait)?;
        positive("child_migration_timeout", options.child_migration_timeout)?;
        if options.confirm_handover && !options.handover {
            return Err(invalid("confirm_handover", "needs handover: true"));
        }
    }
    Ok(())
}

fn validate_partition(partition: PartitionTolerance) -> Result<(), HubError> {
    match partition {
        PartitionTolerance::MajorityQuorum {
            initial_cluster_size: 0,
            ..
        } => Err(invalid("initial_cluster_size", "must be at least 1")),
        _ => Ok(()),
    }
}

fn validate_virtual_nodes(count: u32) -> Result<(), HubError> {
    if count == 0 || count > 4096 {
        return Err(invalid("virtual_nodes", "must be within 1 ..= 4096"));
    }
    Ok(())
}

fn positive(option: &'static str, value: Duration) -> Result<(), HubError> {
    if value.is_zero() {
        return Err(invalid(option, "must be greater than zero"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::HubChild;
    use otp_threads::dist::Term;

    struct Nothing;

    impl HubChild for Nothing {
        fn handle_call(&mut self, request: Term) -> Term {
            request
        }
    }

    fn config() -> HubConfig {
        HubConfig::new("h", |_| Box::new(Nothing))
    }

    fn rejected(config: HubConfig) -> &'static str {
        match config.validate() {
            Err(HubError::InvalidOption { option, .. }) => option,
            other => panic!("expected an invalid option, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_process_hubs() {
        let c = config();
        assert!(c.validate().is_ok());
        assert_eq!(c.redundancy, Redundancy::Singularity);
        assert_eq!(c.redundancy_signal, RedundancySignal::None);
        assert_eq!(c.distribution, Distribution::ConsistentHashing);
        assert_eq!(c.migration, Migration::ColdSwap);
        assert_eq!(c.partition, PartitionTolerance::Divergence);
        assert_eq!(c.sync_interval, Duration::from_millis(15000));
        assert_eq!(c.discover_interval, Duration::from_millis(10000));
        assert_eq!(
            (c.max_restarts, c.max_seconds),
            (100, Duration::from_secs(4))
        );
        let hot = HotSwap::default();
        assert_eq!(hot.retention, Duration::from_millis(5000));
        assert!(!hot.handover && !hot.confirm_handover);
        assert_eq!(hot.handover_data_wait, Duration::from_millis(3000));
        assert_eq!(hot.child_migration_timeout, Duration::from_millis(10000));
    }

    #[test]
    fn a_redundancy_signal_tells_the_roles_it_names() {
        use CopyMode::{Active, Passive};
        let told = |signal: RedundancySignal| [signal.tells(Active), signal.tells(Passive)];
        assert_eq!(told(RedundancySignal::None), [false, false]);
        assert_eq!(told(RedundancySignal::Active), [true, false]);
        assert_eq!(told(RedundancySignal::Passive), [false, true]);
        assert_eq!(told(RedundancySignal::All), [true, true]);
        let active_passive = config()
            .redundancy(Redundancy::Replication {
                factor: 2,
                model: ReplicationModel::ActivePassive,
            })
            .redundancy_signal(RedundancySignal::All);
        assert!(active_passive.validate().is_ok());
    }

    #[test]
    fn each_bad_option_is_named_in_the_error() {
        assert_eq!(
            rejected(HubConfig::new("", |_| Box::new(Nothing))),
            "hub_id"
        );
        assert_eq!(
            rejected(HubConfig::new("x".repeat(201), |_| Box::new(Nothing))),
            "hub_id"
        );
        assert_eq!(
            rejected(config().redundancy(Redundancy::Replication {
                factor: 0,
                model: ReplicationModel::ActiveActive
            })),
            "redundancy"
        );
        assert_eq!(
            rejected(config().redundancy_signal(RedundancySignal::All)),
            "redundancy_signal"
        );
        assert_eq!(
            rejected(
                config()
                    .redundancy(Redundancy::Replication {
                        factor: 2,
                        model: ReplicationModel::ActiveActive
                    })
                    .redundancy_signal(RedundancySignal::Active)
            ),
            "redundancy_signal"
        );
        assert_eq!(rejected(config().virtual_nodes(0)), "virtual_nodes");
        assert_eq!(rejected(config().virtual_nodes(5000)), "virtual_nodes");
        assert_eq!(
            rejected(config().sync_interval(Duration::ZERO)),
            "sync_interval"
        );
        assert_eq!(
            rejected(config().discover_interval(Duration::ZERO)),
            "discover_interval"
        );
        assert_eq!(
            rejected(config().migration_base_timeout(Duration::ZERO)),
            "migration_base_timeout"
        );
        assert_eq!(rejected(config().intensity(1, Duration::ZERO)), "intensity");
        let hot = |h: HotSwap| config().migration(Migration::HotSwap(h));
        assert_eq!(
            rejected(hot(HotSwap {
                retention: Duration::ZERO,
                ..HotSwap::default()
            })),
            "retention"
        );
        assert_eq!(
            rejected(hot(HotSwap {
                handover_data_wait: Duration::ZERO,
                ..HotSwap::default()
            })),
            "handover_data_wait"
        );
        assert_eq!(
            rejected(hot(HotSwap {
                child_migration_timeout: Duration::ZERO,
                ..HotSwap::default()
            })),
            "child_migration_timeout"
        );
        assert_eq!(
            rejected(hot(HotSwap {
                confirm_handover: true,
                ..HotSwap::default()
            })),
            "confirm_handover"
        );
        assert_eq!(
            rejected(
                config().partition_tolerance(PartitionTolerance::MajorityQuorum {
                    initial_cluster_size: 0,
                    track_max_size: true
                })
            ),
            "initial_cluster_size"
        );
    }
}
