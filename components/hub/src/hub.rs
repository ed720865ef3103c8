//! [`Hub`]: the handle of one node's hub.
//!
//! Contract: [`Hub::start`] validates the config, registers the coordinator as
//! `otp_hub.<hub_id>`, starts the hub's dynamic supervisor and a thread forwarding the
//! node's `nodeup` / `nodedown` events. Start and stop requests return a pending result
//! awaited with a timeout. [`Hub::stop`] leaves in an orderly way (children's states go
//! to their next nodes first) and joins every thread the hub started.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use otp_threads::dist::{Node, Term};
use otp_threads::{ExitReason, Pid, RuntimeHandle, WorkerRef};
use parking_lot::{Mutex, RwLock};

use crate::child::{ChildCall, HubChildSpec};
use crate::config::{Distribution, HubConfig, Redundancy, ReplicationModel};
use crate::coordinator::{Command, Coordinator, HubInfo, Outcome, Request, Shared};
use crate::error::HubError;
use crate::events::HubEvent;
use crate::registry::{ChildInfo, Registry};
use crate::ring::Ring;

/// Longest child id accepted.
const MAX_CHILD_ID: usize = 1024;

/// One node's hub; see the [module docs](self).
pub struct Hub {
    shared: Arc<Shared>,
    coordinator: WorkerRef<Coordinator>,
    events: Receiver<HubEvent>,
    forwarder: Option<(Sender<()>, JoinHandle<()>)>,
}

/// The result of one child start on one node.
#[derive(Debug)]
pub struct StartResult {
    /// The child id.
    pub id: String,
    /// The node that started it.
    pub node: String,
    /// Its pid, or why it failed.
    pub result: Result<Pid, HubError>,
}

/// Starts under way; [`wait`](Self::wait) for their results.
pub struct PendingStarts {
    shared: Arc<Shared>,
    token: u64,
    receiver: Receiver<Outcome>,
    count: usize,
}

/// Stops under way; [`wait`](Self::wait) for their results.
pub struct PendingStops {
    shared: Arc<Shared>,
    token: u64,
    receiver: Receiver<Outcome>,
    count: usize,
}

/// Collects outcomes until every planned (id, node) has one.
fn collect(
    receiver: &Receiver<Outcome>,
    count: usize,
    timeout: Duration,
    what: &'static str,
) -> Result<Vec<Outcome>, HubError> {
    let deadline = Instant::now() + timeout;
    let mut planned: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut plans = 0;
    let mut results = Vec::new();
    while plans < count || planned.values().any(|nodes| !nodes.is_empty()) {
        let outcome = receiver
            .recv_deadline(deadline)
            .map_err(|_| HubError::Timeout { what })?;
        match outcome {
            Outcome::Planned { id, nodes } => {
                plans += 1;
                planned.entry(id).or_default().extend(nodes);
            }
            Outcome::Started {
                ref id, ref node, ..
            }
            | Outcome::Stopped {
                ref id, ref node, ..
            } => {
                if planned.get_mut(id).is_some_and(|nodes| nodes.remove(node)) {
                    results.push(outcome);
                }
            }
        }
    }
    Ok(results)
}

impl PendingStarts {
    /// Waits at most `timeout` for every start (every copy, with replication).
    pub fn wait(self, timeout: Duration) -> Result<Vec<StartResult>, HubError> {
        let outcomes = collect(&self.receiver, self.count, timeout, "child starts");
        self.shared.waiters.lock().remove(&self.token);
        Ok(outcomes?
            .into_iter()
            .filter_map(|outcome| match outcome {
                Outcome::Started { id, node, result } => Some(StartResult {
                    result: result.map_err(|reason| HubError::StartFailed {
                        id: id.clone(),
                        node: node.clone(),
                        reason,
                    }),
                    id,
                    node,
                }),
                _ => None,
            })
            .collect())
    }
}

impl PendingStops {
    /// Waits at most `timeout`; returns the nodes each stopped child ran on.
    pub fn wait(self, timeout: Duration) -> Result<Vec<(String, String)>, HubError> {
        let outcomes = collect(&self.receiver, self.count, timeout, "child stops");
        self.shared.waiters.lock().remove(&self.token);
        Ok(outcomes?
            .into_iter()
            .filter_map(|outcome| match outcome {
                Outcome::Stopped {
                    id,
                    node,
                    found: true,
                } => Some((id, node)),
                _ => None,
            })
            .collect())
    }
}

pub(crate) fn validate_child_id(id: &str) -> Result<(), HubError> {
    if id.is_empty() || id.len() > MAX_CHILD_ID {
        return Err(HubError::InvalidChildId {
            id: id.to_owned(),
            reason: "must be 1 to 1024 bytes",
        });
    }
    Ok(())
}

impl Hub {
    /// Starts this node's hub `config.hub_id()` on `node` (a node of `runtime`).
    pub fn start(
        runtime: &RuntimeHandle,
        node: Arc<Node>,
        config: HubConfig,
    ) -> Result<Hub, HubError> {
        config.validate()?;
        let me = node.name().to_owned();
        let name = config.coordinator_name();
        let (events_sender, events) = crossbeam_channel::unbounded();
        let ring = Ring::new([me.as_str()], config.virtual_nodes);
        let shared = Arc::new(Shared {
            config,
            node: node.clone(),
            me: me.clone(),
            name: name.clone(),
            registry: RwLock::new(Registry::default()),
            members: RwLock::new(BTreeSet::from([me])),
            ring: RwLock::new(ring),
            waiters: Mutex::new(HashMap::new()),
            local: Mutex::new(HashMap::new()),
            next_token: AtomicU64::new(0),
            max_seen: AtomicUsize::new(1),
            messages_sent: AtomicU64::new(0),
            events: events_sender,
        });
        // Subscribe before the coordinator greets anyone, so no nodeup is missed.
        let node_events = node.events();
        let coordinator = runtime.spawn_named(&name, Coordinator::new(shared.clone()))?;
        node.accept_messages(&coordinator);
        coordinator.send(HubInfo::DiscoverTick);
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let forward_to = coordinator.clone();
        let forwarder = std::thread::Builder::new()
            .name(format!("{name}.events"))
            .spawn(move || {
                loop {
                    crossbeam_channel::select! {
                        recv(node_events) -> event => match event {
                            Ok(event) => {
                                if forward_to.try_cast(Command::Node(event)).is_err() {
                                    break;
                                }
                            }
                            Err(_) => break,
                        },
                        recv(stopped) -> _ => break,
                    }
                }
            })?;
        // Nodes already connected get greeted by the first discovery tick.
        Ok(Hub {
            shared,
            coordinator,
            events,
            forwarder: Some((stop, forwarder)),
        })
    }

    /// This node's name.
    pub fn node_name(&self) -> &str {
        &self.shared.me
    }

    /// Hub messages this node has sent to other nodes so far (coordinator and
    /// children's handovers).
    pub fn messages_sent(&self) -> u64 {
        self.shared
            .messages_sent
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The hook events of this node's hub (one stream: clones share it).
    pub fn events(&self) -> Receiver<HubEvent> {
        self.events.clone()
    }

    /// The nodes of the hub now, this one included, sorted.
    pub fn members(&self) -> Vec<String> {
        self.shared.members.read().iter().cloned().collect()
    }

    /// The ring nodes of `id` now (its first node is its active copy's node).
    /// Under guided placement: the nodes it was started on.
    pub fn belongs_to(&self, id: &str) -> Vec<String> {
        if self.shared.config.distribution == Distribution::Guided {
            return self
                .child_lookup(id)
                .map(|copies| copies.into_iter().map(|(node, _)| node).collect())
                .unwrap_or_default();
        }
        self.shared
            .ring
            .read()
            .belongs_to(id, self.shared.config.replication_factor())
    }

    /// Starts one child on its ring node(s).
    pub fn start_child(&self, spec: HubChildSpec) -> Result<PendingStarts, HubError> {
        self.start_children(vec![spec])
    }

    /// Starts children on their ring nodes (consistent hashing).
    pub fn start_children(&self, specs: Vec<HubChildSpec>) -> Result<PendingStarts, HubError> {
        if self.shared.config.distribution == Distribution::Guided {
            return Err(HubError::InvalidOption {
                option: "distribution",
                reason: "a guided hub starts children with start_children_on",
            });
        }
        self.send_starts(specs.into_iter().map(|s| (s, None)).collect())
    }

    /// Starts each child on the nodes given with it (guided placement).
    pub fn start_children_on(
        &self,
        specs: Vec<(HubChildSpec, Vec<String>)>,
    ) -> Result<PendingStarts, HubError> {
        if self.shared.config.distribution != Distribution::Guided {
            return Err(HubError::InvalidOption {
                option: "distribution",
                reason: "start_children_on needs Distribution::Guided",
            });
        }
        self.send_starts(specs.into_iter().map(|(s, n)| (s, Some(n))).collect())
    }

    fn send_starts(
        &self,
        specs: Vec<(HubChildSpec, Option<Vec<String>>)>,
    ) -> Result<PendingStarts, HubError> {
        specs
            .iter()
            .try_for_each(|(s, _)| validate_child_id(&s.id))?;
        if let Some((members, quorum)) = self.shared.quorum_shortfall() {
            return Err(HubError::QuorumLost { members, quorum });
        }
        let token = self.shared.token();
        let (sender, receiver) = crossbeam_channel::unbounded();
        self.shared.waiters.lock().insert(token, sender);
        let count = specs.len();
        self.coordinator
            .try_cast(Command::StartChildren { token, specs })
            .map_err(|_| HubError::Stopped)?;
        Ok(PendingStarts {
            shared: self.shared.clone(),
            token,
            receiver,
            count,
        })
    }

    /// Stops every copy of `id`.
    pub fn stop_child(&self, id: &str) -> Result<PendingStops, HubError> {
        self.stop_children(vec![id.to_owned()])
    }

    /// Stops every copy of these children.
    pub fn stop_children(&self, ids: Vec<String>) -> Result<PendingStops, HubError> {
        let token = self.shared.token();
        let (sender, receiver) = crossbeam_channel::unbounded();
        self.shared.waiters.lock().insert(token, sender);
        let count = ids.len();
        self.coordinator
            .try_cast(Command::StopChildren { token, ids })
            .map_err(|_| HubError::Stopped)?;
        Ok(PendingStops {
            shared: self.shared.clone(),
            token,
            receiver,
            count,
        })
    }

    /// Every copy of every child in the cluster, as this node's registry knows them.
    pub fn which_children(&self) -> Vec<ChildInfo> {
        self.shared.registry.read().list()
    }

    /// The copies of `id`: (node, pid), sorted by node.
    pub fn child_lookup(&self, id: &str) -> Option<Vec<(String, Pid)>> {
        self.shared
            .registry
            .read()
            .children
            .get(id)
            .map(|e| e.copies.iter().map(|(n, p)| (n.clone(), *p)).collect())
    }

    /// The copy that serves calls: the first ring node holding one (with active-passive
    /// replication the only active copy), else any copy.
    pub fn active_copy(&self, id: &str) -> Option<(String, Pid)> {
        let copies = self.child_lookup(id)?;
        let ring_nodes = self.belongs_to(id);
        let preferred = ring_nodes
            .iter()
            .find_map(|n| copies.iter().find(|(node, _)| node == n).cloned());
        preferred.or_else(|| copies.first().cloned())
    }

    /// Whether copies other than the active one also serve (active-active).
    pub fn all_copies_active(&self) -> bool {
        !matches!(
            self.shared.config.redundancy,
            Redundancy::Replication {
                model: ReplicationModel::ActivePassive,
                ..
            }
        )
    }

    /// Calls the copy of `id` on `node` (a passive one too) with `request`.
    pub fn call_copy(
        &self,
        id: &str,
        node: &str,
        request: &Term,
        timeout: Duration,
    ) -> Result<Term, HubError> {
        let pid = self
            .child_lookup(id)
            .and_then(|copies| copies.into_iter().find(|(n, _)| n == node))
            .map(|(_, pid)| pid)
            .ok_or_else(|| HubError::NoChild(id.to_owned()))?;
        if node == self.shared.me {
            let child = self.shared.local.lock().get(id).cloned();
            return match child {
                Some(child) => Ok(child.call_timeout(ChildCall::User(request.clone()), timeout)?),
                None => Err(HubError::NoChild(id.to_owned())),
            };
        }
        Ok(self.shared.node.call(pid, request, timeout)?)
    }

    /// Calls the active copy of `id` with `request`.
    pub fn call(&self, id: &str, request: &Term, timeout: Duration) -> Result<Term, HubError> {
        let (node, pid) = self
            .active_copy(id)
            .ok_or_else(|| HubError::NoChild(id.to_owned()))?;
        if node == self.shared.me {
            let child = self.shared.local.lock().get(id).cloned();
            if let Some(child) = child {
                return Ok(child.call_timeout(ChildCall::User(request.clone()), timeout)?);
            }
        }
        Ok(self.shared.node.call(pid, request, timeout)?)
    }

    /// Leaves the hub in an orderly way: hands every local child's state to the node
    /// that will run it, tells the other hubs, stops the local children; then stops
    /// the coordinator and joins the hub's threads.
    pub fn stop(mut self) -> Result<(), HubError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), HubError> {
        let Some((stop, forwarder)) = self.forwarder.take() else {
            return Ok(());
        };
        let left = self
            .coordinator
            .call_timeout(Request::Leave, Duration::from_secs(120));
        let stopped = self
            .coordinator
            .stop(ExitReason::Shutdown, Duration::from_secs(60));
        drop(stop);
        let _ = forwarder.join();
        left?;
        match stopped {
            Ok(()) | Err(otp_threads::Error::NoProc) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Err(error) = self.shutdown() {
            log::warn!("hub {} stopped with {error}", self.shared.name);
        }
    }
}
