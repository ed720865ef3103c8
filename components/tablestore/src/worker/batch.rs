//! [`Batch`] and [`Ack`]: what the subscriber receives, and how it says it is done.

use std::fmt;

use otp_threads::WorkerRef;

use super::channel_reader::{ChannelReader, ReaderMsg};
use super::record::{Record, UndecodableRecord};

/// One batch of row changes read from one channel, in channel order.
///
/// The channel reader that produced it waits for [`Ack::ack`] before it checkpoints
/// the batch and reads the next one: a batch is checkpointed only once the subscriber
/// is done with it (at-least-once delivery).
pub struct Batch {
    /// The tunnel.
    pub tunnel_id: String,
    /// The channel the rows come from.
    pub channel_id: String,
    /// The decoded records, in the channel's order. Stream rows carry their stream
    /// position in [`Row::sequence`](crate::plainbuffer::Row::sequence).
    pub records: Vec<Record>,
    /// Records of this batch that could not be decoded, under
    /// [`OnUndecodable::Deliver`](super::OnUndecodable::Deliver) (always empty under
    /// the other policies). Acknowledging the batch checkpoints past them too.
    pub undecodable: Vec<UndecodableRecord>,
    /// Acknowledge the batch with [`Ack::ack`] once it is processed.
    pub ack: Ack,
}

impl fmt::Debug for Batch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Batch")
            .field("tunnel_id", &self.tunnel_id)
            .field("channel_id", &self.channel_id)
            .field("records", &self.records.len())
            .field("undecodable", &self.undecodable.len())
            .finish_non_exhaustive()
    }
}

/// The acknowledgement token of a [`Batch`].
///
/// * [`ack`](Self::ack): the batch is processed; the reader checkpoints it and reads
///   on.
/// * Dropping it without `ack` is a **negative** acknowledgement: the reader reads
///   the same batch again and delivers it again (nothing is checkpointed).
///
/// Either way an ack for a reader that has stopped in the meantime (its channel
/// moved, its worker died) is dropped: the batch was not checkpointed and whoever
/// reads the channel next delivers it again.
pub struct Ack {
    reader: Option<WorkerRef<ChannelReader>>,
    delivery: u64,
}

impl Ack {
    pub(super) fn new(reader: WorkerRef<ChannelReader>, delivery: u64) -> Ack {
        Ack {
            reader: Some(reader),
            delivery,
        }
    }

    /// The batch is processed: checkpoint it and read on. `false` if its reader has
    /// stopped (the batch will be delivered again, to this or another consumer).
    pub fn ack(mut self) -> bool {
        let reader = self.reader.take().expect("an ack is used once");
        reader.try_send(ReaderMsg::Acked(self.delivery)).is_ok()
    }
}

impl Drop for Ack {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.send(ReaderMsg::Nacked(self.delivery));
        }
    }
}

impl fmt::Debug for Ack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ack")
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}
