//! Only the `peers` bench lives here: `cargo bench -p otp-threads-peer-bench`.
#![forbid(unsafe_code)]
