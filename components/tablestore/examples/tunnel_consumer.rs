//! A tunnel consumer against the emulator: 20,000 changes delivered through a
//! supervised `TunnelWorker`, which is killed halfway and resumes from its
//! checkpoints.
//!
//! `cargo run --release -p otp-threads-tablestore --example tunnel_consumer [-- CHANGES]`

fn main() -> Result<(), Box<dyn std::error::Error>> {
    use otp_threads::Runtime;
    use otp_threads_tablestore_emulator::demo;
    use std::time::Duration;

    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let changes = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(20_000);
    let runtime = Runtime::new();
    let report = demo::run(&runtime.handle(), changes)?;
    println!(
        "{} changes written, {} received (none lost), {} delivered again after the crash, \
         {} sessions, {:.0} records/s",
        report.written,
        report.received,
        report.redelivered,
        report.sessions,
        report.received as f64 / report.elapsed.as_secs_f64()
    );
    runtime.shutdown(Duration::from_secs(10))?;
    Ok(())
}
