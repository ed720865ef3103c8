//! [`Record`]: one decoded row change with its before-image; [`UndecodableRecord`]:
//! one that could not be decoded; [`OnUndecodable`]: what a reader does with it.
//!
//! A record the reader cannot decode (a corrupt PlainBuffer, an unknown action type,
//! a corrupt before-image) must neither stall its channel nor vanish. The policy,
//! chosen per tunnel with [`TunnelWorkerConfig::on_undecodable`]:
//!
//! | policy | the batch | the record | the channel |
//! |---|---|---|---|
//! | [`OnUndecodable::Deliver`] (default) | carries it in [`Batch::undecodable`] | yours to log; acking the batch checkpoints past it | goes on |
//! | [`OnUndecodable::Skip`] | leaves it out | logged as an error and kept in [`TunnelHandle::skipped_records`] | goes on |
//! | [`OnUndecodable::Stop`] | is not delivered | [`TunnelError::UndecodableRecord`] in [`TunnelHandle::last_error`] | the tunnel stops, not restarted; the checkpoint stays before the batch |
//!
//! Either way nothing is lost silently.
//!
//! [`TunnelWorkerConfig::on_undecodable`]: super::TunnelWorkerConfig::on_undecodable
//! [`Batch::undecodable`]: super::Batch::undecodable
//! [`TunnelHandle::skipped_records`]: super::TunnelHandle::skipped_records
//! [`TunnelHandle::last_error`]: super::TunnelHandle::last_error
//! [`TunnelError::UndecodableRecord`]: crate::TunnelError::UndecodableRecord

use std::collections::VecDeque;

use crate::plainbuffer::{self, PlainBufferError, Row};
use crate::proto::{self, ActionType};

/// One row change of a channel.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The change: its kind is the record's action type. Stream rows carry their
    /// stream position in [`Row::sequence`].
    pub row: Row,
    /// The row as it was before the change (`origin_record`, the Go SDK's
    /// `OriginColumns`), when the service sends one; its columns are puts.
    pub origin: Option<Row>,
}

/// Why a record could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The action type is none of put, update, delete.
    #[error("unknown record action type {0}")]
    UnknownActionType(i32),
    /// The record's PlainBuffer row is malformed.
    #[error("the record's row cannot be decoded")]
    Row(#[source] PlainBufferError),
    /// The before-image's PlainBuffer row is malformed.
    #[error("the record's origin row cannot be decoded")]
    OriginRow(#[source] PlainBufferError),
}

/// A record that could not be decoded, with its raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndecodableRecord {
    /// The channel it was read from.
    pub channel_id: String,
    /// Its position among the records of the read that returned it (decoded and
    /// undecodable ones together), from 0.
    pub index: usize,
    /// The raw action type.
    pub action_type: i32,
    /// The raw PlainBuffer row.
    pub record: Vec<u8>,
    /// The raw before-image, when sent.
    pub origin_record: Option<Vec<u8>>,
    /// What is wrong with it.
    pub error: RecordError,
}

/// What a reader does with an undecodable record; see the [module docs](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum OnUndecodable {
    /// Deliver it in the batch's `undecodable` list (the default: nothing is lost,
    /// nothing stalls, and you decide).
    #[default]
    Deliver,
    /// Leave it out of the batch, log an error and keep it in the tunnel's report.
    Skip,
    /// Stop the tunnel with [`TunnelError::UndecodableRecord`](crate::TunnelError::UndecodableRecord).
    Stop,
}

/// How many skipped records a tunnel keeps for [`TunnelHandle::skipped_records`]
/// (the oldest are forgotten first; the count goes on).
///
/// [`TunnelHandle::skipped_records`]: super::TunnelHandle::skipped_records
pub const SKIPPED_KEPT: usize = 1000;

/// The report of skipped records.
#[derive(Default)]
pub(crate) struct SkippedRecords {
    pub(crate) total: u64,
    pub(crate) kept: VecDeque<UndecodableRecord>,
}

impl SkippedRecords {
    pub(crate) fn add(&mut self, record: UndecodableRecord) {
        self.total = self.total.saturating_add(1);
        if self.kept.len() == SKIPPED_KEPT {
            self.kept.pop_front();
        }
        self.kept.push_back(record);
    }
}

/// Decode one record of `channel_id`; `index` is its position in the read.
pub(crate) fn decode(
    channel_id: &str,
    index: usize,
    raw: proto::Record,
) -> Result<Record, Box<UndecodableRecord>> {
    let decoded = ActionType::try_from(raw.action_type)
        .map_err(|_| RecordError::UnknownActionType(raw.action_type))
        .and_then(|action| {
            plainbuffer::decode_record(action, &raw.record).map_err(RecordError::Row)
        })
        .and_then(|row| {
            let origin = raw
                .origin_record
                .as_deref()
                .map(plainbuffer::decode_row)
                .transpose()
                .map_err(RecordError::OriginRow)?;
            Ok(Record { row, origin })
        });
    decoded.map_err(|error| {
        Box::new(UndecodableRecord {
            channel_id: channel_id.to_owned(),
            index,
            action_type: raw.action_type,
            record: raw.record,
            origin_record: raw.origin_record,
            error,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plainbuffer::{PkValue, RowChange};

    fn row() -> Row {
        Row {
            primary_key: vec![("id".into(), PkValue::Integer(1))],
            kind: RowChange::Update,
            columns: Vec::new(),
            sequence: None,
        }
    }

    #[test]
    fn a_record_decodes_with_its_origin_row() {
        let mut before = row();
        before.kind = RowChange::Put;
        let raw = proto::Record {
            action_type: ActionType::UpdateRow as i32,
            record: plainbuffer::encode_row(&row()),
            origin_record: Some(plainbuffer::encode_row(&before)),
        };
        let record = decode("c", 0, raw).unwrap();
        assert_eq!(record.row, row());
        assert_eq!(record.origin, Some(before));
    }

    #[test]
    fn each_kind_of_bad_record_is_named() {
        let good = plainbuffer::encode_row(&row());
        let cases = [
            (9, good.clone(), None, RecordError::UnknownActionType(9)),
            (
                1,
                vec![1, 2, 3],
                None,
                RecordError::Row(PlainBufferError::Truncated {
                    offset: 0,
                    needed: 1,
                }),
            ),
        ];
        for (action_type, record, origin_record, error) in cases {
            let raw = proto::Record {
                action_type,
                record: record.clone(),
                origin_record,
            };
            let bad = decode("c", 4, raw).unwrap_err();
            assert_eq!(bad.error, error);
            assert_eq!((bad.index, bad.record), (4, record));
        }
        let raw = proto::Record {
            action_type: 2,
            record: good,
            origin_record: Some(vec![0x75, 0, 0, 0, 0xff]),
        };
        assert!(matches!(
            decode("c", 0, raw).unwrap_err().error,
            RecordError::OriginRow(_)
        ));
    }
}
