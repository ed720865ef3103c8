//! [`WalLayout`]: the page and segment sizes of a server's WAL, and the position a
//! committed write must wait for ([`WalLayout::record_end`]).
//!
//! PostgreSQL reports two kinds of WAL position. `pg_current_wal_insert_lsn()` is where
//! the *next* record will start: when the last record ended exactly on a page boundary,
//! that is just past the next page's header (24 bytes past the boundary, 40 at the start
//! of a segment, where the header is the long one). `pg_last_wal_replay_lsn()` on a
//! standby is where the last replayed record *ended*: the boundary itself, and it stays
//! there until more WAL arrives. So a write whose commit ended on a boundary is visible
//! on the standby while `replay >= insert` is false, and a wait for the raw insert
//! position times out for nothing.
//!
//! No record can end inside a page header, so an insert position that sits exactly at the
//! end of a header means "the last record ended at the boundary": [`WalLayout::record_end`]
//! maps it back to the boundary and leaves every other position alone. The result is
//! never later than the commit's end, and never earlier (the bytes in between are header,
//! not WAL records), which is what a read-your-writes wait needs.
//!
//! The header sizes are those of a 64-bit server (`MAXALIGN` 8): `SizeOfXLogShortPHD`
//! 24 and `SizeOfXLogLongPHD` 40. Page and segment sizes are per cluster
//! (`wal_block_size`, `wal_segment_size`) and are read from the server with the position
//! (see [`wal_wait_position`](crate::wal_wait_position)).

use super::error::LsnError;
use super::position::Lsn;

/// Size of a WAL page header in the middle of a segment (`SizeOfXLogShortPHD`).
pub const SHORT_PAGE_HEADER: u64 = 24;
/// Size of the header of a segment's first page (`SizeOfXLogLongPHD`).
pub const LONG_PAGE_HEADER: u64 = 40;

/// The WAL page size and segment size of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WalLayout {
    page_size: u64,
    segment_size: u64,
}

impl WalLayout {
    /// PostgreSQL's defaults: 8 KiB pages, 16 MiB segments.
    pub const DEFAULT: WalLayout = WalLayout {
        page_size: 8192,
        segment_size: 16 * 1024 * 1024,
    };

    /// A layout of `page_size`-byte pages in `segment_size`-byte segments, as a server
    /// reports them (`wal_block_size`, `wal_segment_size` in bytes). Both must be powers
    /// of two, the page larger than the long header and not larger than the segment;
    /// anything else is [`LsnError::InvalidWalLayout`].
    pub fn new(page_size: u64, segment_size: u64) -> Result<WalLayout, LsnError> {
        let valid = page_size.is_power_of_two()
            && segment_size.is_power_of_two()
            && page_size > LONG_PAGE_HEADER
            && page_size <= segment_size;
        if !valid {
            return Err(LsnError::InvalidWalLayout {
                page_size,
                segment_size,
            });
        }
        Ok(WalLayout {
            page_size,
            segment_size,
        })
    }

    /// Bytes per WAL page.
    pub fn page_size(self) -> u64 {
        self.page_size
    }

    /// Bytes per WAL segment file.
    pub fn segment_size(self) -> u64 {
        self.segment_size
    }

    /// The end of the last record before the insert position `insert`: `insert` itself,
    /// unless it sits just past a page header, then the page boundary before that header
    /// (see the [module docs](self)).
    pub fn record_end(self, insert: Lsn) -> Lsn {
        let position = insert.as_u64();
        // Powers of two: the offsets are the low bits.
        let in_segment = position & (self.segment_size - 1);
        let in_page = position & (self.page_size - 1);
        let header = if in_segment == LONG_PAGE_HEADER {
            LONG_PAGE_HEADER
        } else if in_page == SHORT_PAGE_HEADER && in_segment != SHORT_PAGE_HEADER {
            SHORT_PAGE_HEADER
        } else {
            return insert;
        };
        // in_page >= header, so this cannot underflow.
        Lsn(position - header)
    }
}

impl Default for WalLayout {
    fn default() -> WalLayout {
        WalLayout::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 8192;
    const SEGMENT: u64 = 16 * 1024 * 1024;

    #[test]
    fn a_position_just_past_a_page_header_maps_to_the_boundary() {
        let layout = WalLayout::DEFAULT;
        let boundary = 0x3_0000_0000 + 5 * SEGMENT + 7 * PAGE;
        assert_eq!(layout.record_end(Lsn(boundary + 24)), Lsn(boundary));
        // The first page of a segment has the long header.
        let segment_start = 0x3_0000_0000 + 6 * SEGMENT;
        assert_eq!(
            layout.record_end(Lsn(segment_start + 40)),
            Lsn(segment_start)
        );
    }

    #[test]
    fn other_positions_are_left_alone() {
        let layout = WalLayout::DEFAULT;
        let boundary = 2 * SEGMENT + 3 * PAGE;
        for offset in [0, 8, 16, 32, 40, 48, 8000, PAGE - 8] {
            assert_eq!(
                layout.record_end(Lsn(boundary + offset)),
                Lsn(boundary + offset)
            );
        }
        // 24 bytes into a segment's first page is inside its long header: never an
        // insert position, and not a short-header end either.
        let segment_start = 4 * SEGMENT;
        assert_eq!(
            layout.record_end(Lsn(segment_start + 24)),
            Lsn(segment_start + 24)
        );
        assert_eq!(layout.record_end(Lsn::ZERO), Lsn::ZERO);
        assert_eq!(layout.record_end(Lsn::MAX), Lsn::MAX);
    }

    #[test]
    fn other_sizes_follow_the_server() {
        let layout = WalLayout::new(32 * 1024, 64 * 1024 * 1024).unwrap();
        assert_eq!(layout.record_end(Lsn(32 * 1024 + 24)), Lsn(32 * 1024));
        // 8 KiB + 24 is not past a header with 32 KiB pages.
        assert_eq!(layout.record_end(Lsn(8192 + 24)), Lsn(8192 + 24));
    }

    #[test]
    fn a_layout_the_server_cannot_have_is_rejected() {
        for (page, segment) in [
            (0, SEGMENT),
            (8000, SEGMENT),
            (PAGE, 3 << 20),
            (32, 64),
            (SEGMENT * 2, SEGMENT),
        ] {
            assert!(
                matches!(
                    WalLayout::new(page, segment),
                    Err(LsnError::InvalidWalLayout { .. })
                ),
                "{page}/{segment}"
            );
        }
    }
}
