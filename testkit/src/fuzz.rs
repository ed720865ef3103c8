//! Fuzz-style input generation without nightly or a fuzzing crate: a deterministic
//! generator and a byte mutator shared by every decoder test of the workspace.
//!
//! Every decoder of untrusted bytes has a test that feeds it random inputs and
//! mutations of valid ones and fails on the first panic. The runs are deterministic
//! (a fixed seed gives the same inputs on every machine), so a failure names an input
//! that can be replayed; [`no_panic`] does the naming.
//!
//! ```
//! use otp_threads_testkit::fuzz::{Mutator, Rng, no_panic};
//!
//! let corpus = vec![b"GET / HTTP/1.1\r\n\r\n".to_vec()];
//! let mutator = Mutator::new(&corpus).alphabet(b"\r\n: /");
//! let mut rng = Rng::new(7);
//! for index in 0..1_000 {
//!     let input = mutator.next_input(&mut rng);
//!     no_panic("split", index, &input, |bytes| bytes.split(|b| *b == b'\n').count());
//! }
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};

/// xorshift64*: small, fast and deterministic, so a failing input can be replayed
/// from its seed.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator started from `seed` (zero, xorshift's one fixed point, is replaced).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// One element of a non-empty slice.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Bytes that often sit on a decoder's edge cases: zero, sign bits, all ones, and
/// the external term format's common tags.
pub const INTERESTING_BYTES: [u8; 12] = [0, 1, 0x7f, 0x80, 0xff, 131, 104, 108, 116, 109, 88, 90];

/// Mutates byte strings drawn from a corpus of valid inputs: bit flips, replaced,
/// inserted, deleted and duplicated runs, truncation, splices of other corpus entries,
/// and length fields set to huge values.
#[derive(Clone, Debug)]
pub struct Mutator<'a> {
    corpus: &'a [Vec<u8>],
    alphabet: &'a [u8],
    max_len: usize,
    random_one_in: usize,
    little_endian: bool,
}

impl<'a> Mutator<'a> {
    /// A mutator of `corpus`'s entries (which may be empty: then inputs are random).
    pub fn new(corpus: &'a [Vec<u8>]) -> Mutator<'a> {
        Mutator {
            corpus,
            alphabet: &INTERESTING_BYTES,
            max_len: 4096,
            random_one_in: 4,
            little_endian: false,
        }
    }

    /// Bytes that replaced and inserted bytes are drawn from half the time (the
    /// delimiters of a text protocol, say); the other half are random.
    pub fn alphabet(mut self, alphabet: &'a [u8]) -> Self {
        if !alphabet.is_empty() {
            self.alphabet = alphabet;
        }
        self
    }

    /// No mutation grows an input past this many bytes.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// Integer fields written by mutations are little-endian (default: big-endian,
    /// the network byte order of the distribution protocol).
    pub fn little_endian(mut self) -> Self {
        self.little_endian = true;
        self
    }

    /// One input in `n` from [`Mutator::next_input`] is purely random bytes.
    pub fn random_one_in(mut self, n: usize) -> Self {
        self.random_one_in = n.max(1);
        self
    }

    /// The next input: random bytes one time in `random_one_in` (or when the corpus
    /// is empty), else a mutated corpus entry.
    pub fn next_input(&self, rng: &mut Rng) -> Vec<u8> {
        if self.corpus.is_empty() || rng.one_in(self.random_one_in) {
            let len = rng.below(self.max_len.min(256) + 1);
            rng.bytes(len)
        } else {
            let entry = rng.pick(self.corpus);
            self.mutate(rng, entry)
        }
    }

    /// One to four random edits of `input`.
    pub fn mutate(&self, rng: &mut Rng, input: &[u8]) -> Vec<u8> {
        let mut out = input.to_vec();
        for _ in 0..=rng.below(4) {
            self.edit(rng, &mut out);
        }
        out
    }

    fn byte(&self, rng: &mut Rng) -> u8 {
        if rng.one_in(2) {
            *rng.pick(self.alphabet)
        } else {
            rng.next_u64() as u8
        }
    }

    fn edit(&self, rng: &mut Rng, out: &mut Vec<u8>) {
        let len = out.len();
        let room = self.max_len.saturating_sub(len);
        match rng.below(10) {
            0 if len > 0 => {
                let at = rng.below(len);
                out[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                out[at] = self.byte(rng);
            }
            2 if room > 0 => {
                let at = rng.below(len + 1);
                let count = 1 + rng.below(room.min(8));
                let inserted: Vec<u8> = (0..count).map(|_| self.byte(rng)).collect();
                out.splice(at..at, inserted);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                let count = 1 + rng.below((len - at).min(16));
                out.drain(at..at + count);
            }
            4 if len > 0 && room > 0 => {
                let at = rng.below(len);
                let count = 1 + rng.below((len - at).min(16).min(room));
                let copy = out[at..at + count].to_vec();
                let to = rng.below(len + 1);
                out.splice(to..to, copy);
            }
            5 => out.truncate(rng.below(len + 1)),
            6 if len >= 4 => {
                // A length or count field set to an edge value or something huge.
                let at = rng.below(len - 3);
                let edges = [0, 1, 0x7f, 0xff, 0x7fff_ffff, u32::MAX];
                let value = if rng.one_in(2) {
                    *rng.pick(&edges)
                } else {
                    rng.next_u64() as u32 | 0x8000_0000
                };
                let bytes = if self.little_endian {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                out[at..at + 4].copy_from_slice(&bytes);
            }
            8 if len >= 8 => {
                let at = rng.below(len - 7);
                let value = *rng.pick(&[0, u64::MAX, i64::MAX as u64, i64::MIN as u64]);
                let bytes = if self.little_endian {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                out[at..at + 8].copy_from_slice(&bytes);
            }
            7 if !self.corpus.is_empty() && room > 0 => {
                let other = rng.pick(self.corpus);
                if !other.is_empty() {
                    let start = rng.below(other.len());
                    let end = start + rng.below((other.len() - start).min(room) + 1);
                    let at = rng.below(len + 1);
                    out.splice(at..at, other[start..end].iter().copied());
                }
            }
            _ if len > 0 => {
                let at = rng.below(len);
                out[at] = *rng.pick(&INTERESTING_BYTES);
            }
            _ => out.push(self.byte(rng)),
        }
    }
}

/// Runs `decode` on `input` and fails the test, naming the target, the input's
/// index and its bytes, if it panics; otherwise returns what it returned.
pub fn no_panic<R>(target: &str, index: usize, input: &[u8], decode: impl FnOnce(&[u8]) -> R) -> R {
    match catch_unwind(AssertUnwindSafe(|| decode(input))) {
        Ok(result) => result,
        Err(_) => panic!("{target} panicked on input #{index}: {input:02x?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_inputs() {
        let corpus = vec![b"abcdef".to_vec(), vec![131, 104, 2, 97, 1, 97, 2]];
        let mutator = Mutator::new(&corpus);
        let (mut a, mut b) = (Rng::new(42), Rng::new(42));
        for _ in 0..1_000 {
            assert_eq!(mutator.next_input(&mut a), mutator.next_input(&mut b));
        }
    }

    #[test]
    fn mutations_respect_the_length_bound_and_change_inputs() {
        let corpus = vec![vec![7u8; 32]];
        let mutator = Mutator::new(&corpus).max_len(40);
        let mut rng = Rng::new(1);
        let mut changed = 0;
        for _ in 0..10_000 {
            let input = mutator.mutate(&mut rng, &corpus[0]);
            assert!(input.len() <= 40, "{} bytes", input.len());
            changed += usize::from(input != corpus[0]);
        }
        assert!(
            changed > 9_000,
            "only {changed} of 10000 mutations changed the input"
        );
    }

    #[test]
    fn an_empty_corpus_gives_random_inputs() {
        let mutator = Mutator::new(&[]).max_len(16);
        let mut rng = Rng::new(3);
        assert!((0..100).all(|_| mutator.next_input(&mut rng).len() <= 16));
    }

    #[test]
    #[should_panic(expected = "target panicked on input #3")]
    fn a_panicking_decoder_is_named_with_its_input() {
        no_panic("target", 3, &[1, 2], |_| panic!("boom"));
    }
}
