//! Distribution capability flags (`DFLAG_*` of OTP's `dist.hrl`) and the sets this
//! node sends and requires.
//!
//! We advertise what OTP 25 and 26 require plus monitors, `SEND_SENDER`, exit payloads,
//! aliases and `SPAWN_REQUEST` (answered by `node/spawn.rs`); we never advertise the atom cache (`DIST_HDR_ATOM_CACHE`) or
//! fragments (`FRAGMENTS`), so every frame a peer sends us is a plain pass-through
//! frame (tag 112) with whole terms.

/// The node is published (visible): it takes part in the global name space.
pub const PUBLISHED: u64 = 0x01;
/// Obsolete atom cache.
pub const ATOM_CACHE: u64 = 0x02;
/// Extended (3 × 32 bit) references. Mandatory.
pub const EXTENDED_REFERENCES: u64 = 0x04;
/// Distributed process monitoring.
pub const DIST_MONITOR: u64 = 0x08;
/// Separate fun tags. Mandatory.
pub const FUN_TAGS: u64 = 0x10;
/// Monitors by registered name.
pub const DIST_MONITOR_NAME: u64 = 0x20;
/// `NEW_FUN_EXT`. Mandatory.
pub const NEW_FUN_TAGS: u64 = 0x80;
/// Extended pids and ports. Mandatory.
pub const EXTENDED_PIDS_PORTS: u64 = 0x100;
/// `EXPORT_EXT`. Mandatory.
pub const EXPORT_PTR_TAG: u64 = 0x200;
/// `BIT_BINARY_EXT`. Mandatory.
pub const BIT_BINARIES: u64 = 0x400;
/// `NEW_FLOAT_EXT`. Mandatory.
pub const NEW_FLOATS: u64 = 0x800;
/// Unicode I/O.
pub const UNICODE_IO: u64 = 0x1000;
/// Atom cache in the distribution header (never advertised by us).
pub const DIST_HDR_ATOM_CACHE: u64 = 0x2000;
/// `SMALL_ATOM_EXT`.
pub const SMALL_ATOM_TAGS: u64 = 0x4000;
/// UTF-8 atoms. Mandatory.
pub const UTF8_ATOMS: u64 = 0x10000;
/// `MAP_EXT`. Mandatory.
pub const MAP_TAG: u64 = 0x20000;
/// 32-bit creations. Mandatory.
pub const BIG_CREATION: u64 = 0x40000;
/// `SEND_SENDER` instead of `SEND`.
pub const SEND_SENDER: u64 = 0x80000;
/// Any term as seqtrace label.
pub const BIG_SEQTRACE_LABELS: u64 = 0x100000;
/// `PAYLOAD_EXIT*` and `PAYLOAD_MONITOR_P_EXIT` control messages.
pub const EXIT_PAYLOAD: u64 = 0x400000;
/// Fragmented messages (never advertised by us).
pub const FRAGMENTS: u64 = 0x800000;
/// The version 6 handshake. Mandatory.
pub const HANDSHAKE_23: u64 = 0x1000000;
/// The new link protocol (`UNLINK_ID`). Mandatory from OTP 26.
pub const UNLINK_ID: u64 = 0x2000000;
/// Shorthand for all OTP 25 mandatory flags, as OTP 25's `dist.hrl` defines it.
pub const MANDATORY_25_DIGEST: u64 = 0x4000000;
/// `SPAWN_REQUEST` / `SPAWN_REPLY`.
pub const SPAWN: u64 = 1 << 32;
/// Dynamic node name request.
pub const NAME_ME: u64 = 1 << 33;
/// Version 4 node containers (32-bit pid fields, 5-word references). Mandatory from OTP 26.
pub const V4_NC: u64 = 1 << 34;
/// Process aliases (`ALIAS_SEND`).
pub const ALIAS: u64 = 1 << 35;

/// The flags OTP 25 refuses a connection without (`MANDATORY_DFLAGS_25`).
pub const MANDATORY_25: u64 = EXTENDED_REFERENCES
    | FUN_TAGS
    | EXTENDED_PIDS_PORTS
    | NEW_FUN_TAGS
    | EXPORT_PTR_TAG
    | BIT_BINARIES
    | NEW_FLOATS
    | UTF8_ATOMS
    | MAP_TAG
    | BIG_CREATION
    | HANDSHAKE_23;

/// What we require of a peer: OTP 26's mandatory set (OTP 25 sends it too).
pub const REQUIRED: u64 = MANDATORY_25 | UNLINK_ID | V4_NC;

/// The flags this node advertises; `visible` adds [`PUBLISHED`].
pub fn advertised(visible: bool) -> u64 {
    let base = REQUIRED
        | MANDATORY_25_DIGEST
        | DIST_MONITOR
        | DIST_MONITOR_NAME
        | SMALL_ATOM_TAGS
        | UNICODE_IO
        | SEND_SENDER
        | BIG_SEQTRACE_LABELS
        | EXIT_PAYLOAD
        | ALIAS
        | SPAWN;
    if visible { base | PUBLISHED } else { base }
}

/// The required flags a peer's set lacks (0 = none). A peer that sets
/// [`MANDATORY_25_DIGEST`] is taken to have every OTP 25 mandatory flag, as OTP does.
pub fn missing_required(peer: u64) -> u64 {
    let effective = if peer & MANDATORY_25_DIGEST != 0 {
        peer | MANDATORY_25
    } else {
        peer
    };
    REQUIRED & !effective
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertised_flags_leave_out_atom_cache_and_fragments() {
        for visible in [true, false] {
            let ours = advertised(visible);
            assert_eq!(ours & (DIST_HDR_ATOM_CACHE | FRAGMENTS | ATOM_CACHE), 0);
            assert_eq!(missing_required(ours), 0);
            assert_eq!(ours & PUBLISHED != 0, visible);
        }
    }

    #[test]
    fn the_digest_bit_stands_for_the_otp25_set() {
        assert_eq!(missing_required(MANDATORY_25_DIGEST | UNLINK_ID | V4_NC), 0);
        assert_eq!(missing_required(MANDATORY_25_DIGEST), UNLINK_ID | V4_NC);
        assert_eq!(missing_required(0), REQUIRED);
    }
}
