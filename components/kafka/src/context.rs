//! [`GroupContext`]: the librdkafka consumer context, which turns the group's
//! rebalances into the member's assignment changes, and librdkafka's statistics into
//! the partitions' high watermarks.
//!
//! librdkafka runs these callbacks inside `BaseConsumer::poll`, on the polling thread:
//! the manager worker's. The rebalance is served here in full (rather than by
//! rdkafka's default, which would position nothing): a revocation returns only once
//! the revoked partitions' workers have stopped, the revoked hook has run and their
//! acknowledged offsets are committed, and then gives them up; an assignment is
//! positioned (committed offset, else the begin offset), assigned, and only then does
//! each partition get its own queue and worker, before any of its messages is fetched.

use std::sync::Arc;

use rdkafka::client::ClientContext;
use rdkafka::consumer::{BaseConsumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::TopicPartitionList;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};

use super::membership::Membership;

/// The consumer's context: forwards rebalances and statistics to the [`Membership`].
pub(crate) struct GroupContext {
    pub(crate) membership: Arc<Membership>,
}

// librdkafka's logs and errors go to the `log` crate (the trait's defaults).
impl ClientContext for GroupContext {
    fn stats(&self, statistics: Statistics) {
        self.membership.record_statistics(&statistics);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.membership.assign(consumer, partitions);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.membership.revoke(consumer, partitions);
            }
            other => {
                let error = KafkaError::Rebalance(RDKafkaErrorCode::from(other));
                log::error!("group rebalance failed: {error}");
                // As librdkafka asks: on a rebalance error, give everything up.
                self.membership.revoke(consumer, partitions);
            }
        }
    }
}
