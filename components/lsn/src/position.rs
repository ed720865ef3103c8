//! [`Lsn`]: a PostgreSQL write-ahead-log position (`pg_lsn`).
//!
//! PostgreSQL prints an LSN as two hexadecimal numbers separated by a slash, `X/Y`: `X` is
//! the high 32 bits of a 64-bit byte position in the WAL stream and `Y` the low 32 bits
//! (`0/17BB660` is byte 24,884,832 of the first 4 GiB). [`Lsn`] stores the 64-bit value, so
//! the derived ordering is exactly PostgreSQL's: high part first, then low part.
//!
//! Parsing follows PostgreSQL's `pg_lsn` input rules: each half is 1 to 8 hex digits (either
//! case), with no sign, spaces or prefix. [`Display`](std::fmt::Display) prints the form
//! PostgreSQL itself prints (uppercase hex, no leading zeros), so
//! `text.parse::<Lsn>()?.to_string() == text` for every text PostgreSQL produces.

use std::fmt;
use std::str::FromStr;

use super::error::{LsnError, LsnParseIssue};

/// Most hex digits PostgreSQL accepts in each half of an LSN (32 bits).
const MAX_HALF_DIGITS: usize = 8;

/// A position in PostgreSQL's write-ahead log (the SQL type `pg_lsn`).
///
/// On a primary, `pg_current_wal_insert_lsn()` after a commit is an [`Lsn`] at or past the
/// commit record; on a standby, `pg_last_wal_replay_lsn()` is the [`Lsn`] up to which WAL
/// has been replayed. A write is visible on the standby once
/// [`insert.is_replayed_by(replay)`](Lsn::is_replayed_by).
///
/// ```
/// use otp_threads_lsn::Lsn;
///
/// let lsn: Lsn = "0/17BB660".parse().unwrap();
/// assert_eq!((lsn.high(), lsn.low()), (0, 24_884_832));
/// assert_eq!(lsn.to_string(), "0/17BB660");
/// assert!(lsn < "1/0".parse().unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `0/0`, PostgreSQL's `InvalidXLogRecPtr`: no WAL position at all. It sorts before every
    /// real position.
    pub const ZERO: Lsn = Lsn(0);

    /// The largest representable position, `FFFFFFFF/FFFFFFFF`.
    pub const MAX: Lsn = Lsn(u64::MAX);

    /// Builds an LSN from its high (before the `/`) and low (after the `/`) halves.
    pub const fn from_parts(high: u32, low: u32) -> Lsn {
        Lsn(((high as u64) << 32) | low as u64)
    }

    /// The high 32 bits: the number PostgreSQL prints before the `/`.
    pub const fn high(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The low 32 bits: the number PostgreSQL prints after the `/`.
    pub const fn low(self) -> u32 {
        self.0 as u32
    }

    /// The position as a 64-bit byte offset into the WAL stream.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// True when a standby that has replayed WAL up to `replay` has also replayed this
    /// position, i.e. `replay >= self` (a write whose insert LSN is `self` is visible there).
    ///
    /// This is fly_postgres's `replicated?(replay, insert)` with the arguments named.
    pub fn is_replayed_by(self, replay: Lsn) -> bool {
        replay >= self
    }

    /// Like [`Lsn::is_replayed_by`] for a possibly unknown replay position. `None` stands for
    /// a server that reports no replay position (`pg_last_wal_replay_lsn()` is NULL: a
    /// primary, or a server that is not replicating), where there is nothing to wait for, so
    /// the answer is `true`, as fly_postgres's `:not_replicating` case.
    pub fn is_replayed_by_opt(self, replay: Option<Lsn>) -> bool {
        replay.is_none_or(|r| self.is_replayed_by(r))
    }

    /// Parses PostgreSQL's `X/Y` text; the error names the input. Same as
    /// [`str::parse`]/[`FromStr`].
    pub fn parse(text: &str) -> Result<Lsn, LsnError> {
        let (high, low) = text
            .split_once('/')
            .ok_or_else(|| LsnError::invalid_lsn(text, LsnParseIssue::MissingSeparator))?;
        if low.contains('/') {
            return Err(LsnError::invalid_lsn(text, LsnParseIssue::MissingSeparator));
        }
        let high = parse_half(
            text,
            high,
            LsnParseIssue::EmptyHigh,
            LsnParseIssue::BadHexHigh,
            LsnParseIssue::HighTooLong,
        )?;
        let low = parse_half(
            text,
            low,
            LsnParseIssue::EmptyLow,
            LsnParseIssue::BadHexLow,
            LsnParseIssue::LowTooLong,
        )?;
        Ok(Lsn::from_parts(high, low))
    }
}

/// Parses one half of an LSN: 1 to 8 hex digits, nothing else (no `+`, spaces or `0x`,
/// which `u32::from_str_radix` alone would partly accept).
fn parse_half(
    text: &str,
    half: &str,
    empty: LsnParseIssue,
    bad_hex: LsnParseIssue,
    too_long: LsnParseIssue,
) -> Result<u32, LsnError> {
    if half.is_empty() {
        return Err(LsnError::invalid_lsn(text, empty));
    }
    if !half.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LsnError::invalid_lsn(text, bad_hex));
    }
    if half.len() > MAX_HALF_DIGITS {
        return Err(LsnError::invalid_lsn(text, too_long));
    }
    // At most 8 hex digits always fit in a u32.
    u32::from_str_radix(half, 16).map_err(|_| LsnError::invalid_lsn(text, bad_hex))
}

impl FromStr for Lsn {
    type Err = LsnError;

    fn from_str(text: &str) -> Result<Lsn, LsnError> {
        Lsn::parse(text)
    }
}

impl fmt::Display for Lsn {
    /// Prints `X/Y` in uppercase hex without leading zeros, as PostgreSQL does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.high(), self.low())
    }
}

impl From<u64> for Lsn {
    fn from(value: u64) -> Lsn {
        Lsn(value)
    }
}

impl From<Lsn> for u64 {
    fn from(lsn: Lsn) -> u64 {
        lsn.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issue_of(text: &str) -> LsnParseIssue {
        match Lsn::parse(text) {
            Err(LsnError::InvalidLsn { input, issue }) => {
                assert_eq!(input, text, "the error must carry the input verbatim");
                issue
            }
            other => panic!("{text:?} should be rejected, got {other:?}"),
        }
    }

    #[test]
    fn parses_fly_postgres_examples() {
        let lsn: Lsn = "0/17BB660".parse().unwrap();
        assert_eq!(lsn.high(), 0);
        assert_eq!(lsn.low(), 24_884_832);
        assert_eq!(lsn.as_u64(), 24_884_832);

        let lsn: Lsn = "1/17BB660".parse().unwrap();
        assert_eq!(lsn.high(), 1);
        assert_eq!(lsn.low(), 24_884_832);
        assert_eq!(lsn.as_u64(), (1u64 << 32) + 24_884_832);
    }

    #[test]
    fn parses_lowercase_and_extremes() {
        assert_eq!(Lsn::parse("0/0").unwrap(), Lsn::ZERO);
        assert_eq!(Lsn::parse("ffffffff/ffffffff").unwrap(), Lsn::MAX);
        assert_eq!(Lsn::parse("FFFFFFFF/FFFFFFFF").unwrap(), Lsn::MAX);
        assert_eq!(
            Lsn::parse("00000001/0000000A").unwrap(),
            Lsn::from_parts(1, 10)
        );
        assert_eq!(Lsn::parse("a/b").unwrap(), Lsn::from_parts(10, 11));
    }

    #[test]
    fn rejects_garbage_with_a_typed_error_naming_the_input() {
        assert_eq!(issue_of("something-else"), LsnParseIssue::MissingSeparator);
        assert_eq!(issue_of(""), LsnParseIssue::MissingSeparator);
        assert_eq!(issue_of("1/2/3"), LsnParseIssue::MissingSeparator);
        assert_eq!(issue_of("/17BB660"), LsnParseIssue::EmptyHigh);
        assert_eq!(issue_of("0/"), LsnParseIssue::EmptyLow);
        assert_eq!(issue_of("G/17BB660"), LsnParseIssue::BadHexHigh);
        assert_eq!(issue_of("0/17BB66Z"), LsnParseIssue::BadHexLow);
        assert_eq!(issue_of("+1/0"), LsnParseIssue::BadHexHigh);
        assert_eq!(issue_of("0x1/0"), LsnParseIssue::BadHexHigh);
        assert_eq!(issue_of(" 0/1"), LsnParseIssue::BadHexHigh);
        assert_eq!(issue_of("0/1 "), LsnParseIssue::BadHexLow);
        assert_eq!(issue_of("-1/0"), LsnParseIssue::BadHexHigh);
        assert_eq!(issue_of("100000000/0"), LsnParseIssue::HighTooLong);
        assert_eq!(issue_of("0/100000000"), LsnParseIssue::LowTooLong);

        let msg = Lsn::parse("something-else").unwrap_err().to_string();
        assert!(msg.contains("something-else"), "{msg}");
        let msg = "0/XYZ".parse::<Lsn>().unwrap_err().to_string();
        assert!(
            msg.contains("0/XYZ") && msg.contains("hexadecimal"),
            "{msg}"
        );
    }

    #[test]
    fn display_is_uppercase_without_leading_zeros() {
        assert_eq!(Lsn::from_parts(0, 24_884_832).to_string(), "0/17BB660");
        assert_eq!(Lsn::from_parts(0xAB, 0xCDEF).to_string(), "AB/CDEF");
        assert_eq!(Lsn::ZERO.to_string(), "0/0");
        assert_eq!(Lsn::MAX.to_string(), "FFFFFFFF/FFFFFFFF");
        assert_eq!(Lsn::parse("000a/00b").unwrap().to_string(), "A/B");
    }

    #[test]
    fn round_trips() {
        for text in [
            "0/0",
            "0/17BB660",
            "1/17BB660",
            "16/B374D848",
            "FFFFFFFF/FFFFFFFF",
        ] {
            assert_eq!(Lsn::parse(text).unwrap().to_string(), text);
        }
        for v in [
            0u64,
            1,
            0xFFFF_FFFF,
            0x1_0000_0000,
            0xDEAD_BEEF_0BAD_F00D,
            u64::MAX,
        ] {
            let lsn = Lsn::from(v);
            assert_eq!(lsn.to_string().parse::<Lsn>().unwrap(), lsn);
            assert_eq!(u64::from(lsn), v);
            assert_eq!(Lsn::from_parts(lsn.high(), lsn.low()), lsn);
        }
    }

    /// xorshift64: deterministic pseudo-random bytes for the fuzz-style test.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn random_and_mutated_texts_are_rejected_or_round_trip_never_panic() {
        let mut state = 0x2545_F491_4F6C_DD1D;
        let alphabet = b"0123456789abcdefABCDEFxX/+- \t\0\xff";
        let seeds = ["0/17BB660", "FFFFFFFF/FFFFFFFF", "16/B374D848", "0/0"];
        for round in 0..20_000 {
            let text: Vec<u8> = if round % 2 == 0 {
                // Random bytes from an alphabet rich in near-misses.
                let len = (next(&mut state) % 20) as usize;
                (0..len)
                    .map(|_| alphabet[(next(&mut state) % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                // A valid LSN with one to three bytes replaced, inserted or removed.
                let seed = seeds[(next(&mut state) % seeds.len() as u64) as usize];
                let mut bytes = seed.as_bytes().to_vec();
                for _ in 0..=(next(&mut state) % 3) {
                    let at = (next(&mut state) % (bytes.len() as u64 + 1)) as usize;
                    let byte = (next(&mut state) & 0xff) as u8;
                    match next(&mut state) % 3 {
                        0 if at < bytes.len() => bytes[at] = byte,
                        1 if at < bytes.len() => {
                            bytes.remove(at);
                        }
                        _ => bytes.insert(at, byte),
                    }
                }
                bytes
            };
            let text = String::from_utf8_lossy(&text);
            match Lsn::parse(&text) {
                Ok(lsn) => {
                    // Accepted: it means what PostgreSQL would read.
                    assert_eq!(Lsn::parse(&lsn.to_string()).unwrap(), lsn, "{text:?}");
                    let (high, low) = text.split_once('/').unwrap();
                    assert_eq!(u32::from_str_radix(high, 16).unwrap(), lsn.high());
                    assert_eq!(u32::from_str_radix(low, 16).unwrap(), lsn.low());
                }
                Err(LsnError::InvalidLsn { input, .. }) => assert_eq!(input, text),
                Err(other) => panic!("{text:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn orders_by_high_then_low() {
        let a = Lsn::parse("0/FFFFFFFF").unwrap();
        let b = Lsn::parse("1/0").unwrap();
        let c = Lsn::parse("1/1").unwrap();
        assert!(a < b && b < c);
        assert!(Lsn::ZERO < a);
        assert!(Lsn::parse("2/0").unwrap() > Lsn::parse("1/FFFFFFFF").unwrap());
        let mut v = vec![c, a, b, Lsn::ZERO];
        v.sort();
        assert_eq!(v, vec![Lsn::ZERO, a, b, c]);
    }

    #[test]
    fn replayed_by_matches_fly_postgres_replicated() {
        let insert = Lsn::parse("1/17BB660").unwrap();
        // equal: replicated
        assert!(insert.is_replayed_by(insert));
        // replay higher (low part, then high part): replicated
        assert!(insert.is_replayed_by(Lsn::parse("1/17BB661").unwrap()));
        assert!(insert.is_replayed_by(Lsn::parse("2/0").unwrap()));
        // insert higher: not yet
        assert!(!insert.is_replayed_by(Lsn::parse("1/17BB65F").unwrap()));
        assert!(!insert.is_replayed_by(Lsn::parse("0/FFFFFFFF").unwrap()));
        // not replicating: nothing to wait for
        assert!(insert.is_replayed_by_opt(None));
        assert!(!insert.is_replayed_by_opt(Some(Lsn::ZERO)));
        assert!(insert.is_replayed_by_opt(Some(insert)));
    }
}
