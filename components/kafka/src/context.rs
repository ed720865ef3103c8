//! [`GroupContext`]: the librdkafka consumer context, which turns the group's
//! rebalance callbacks into the member's assignment changes.
//!
//! librdkafka runs these callbacks inside `BaseConsumer::poll`, on the polling thread:
//! the manager worker's. A revocation is handled before the partitions are given up
//! (`pre_rebalance`), and returns only once their workers have stopped and their
//! acknowledged offsets are committed. An assignment is handled right after librdkafka
//! took it (`post_rebalance`), before any of its messages is fetched: each partition
//! gets its own queue, then its worker.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance};

use super::membership::Membership;

/// The consumer's context: forwards rebalances to the [`Membership`].
pub(crate) struct GroupContext {
    pub(crate) membership: Arc<Membership>,
}

// librdkafka's logs and errors go to the `log` crate (the trait's defaults).
impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => self.membership.revoke(consumer, partitions),
            Rebalance::Assign(_) => {}
            Rebalance::Error(error) => log::error!("group rebalance failed: {error}"),
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            self.membership.assign(partitions);
        }
    }
}
