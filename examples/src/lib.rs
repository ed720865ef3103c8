//! The otp-threads tour, as a package of its own: `cargo run --release --example tour`.
#![forbid(unsafe_code)]
