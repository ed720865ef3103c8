//! The workloads on BEAM: `beam/peers.escript` runs them in one OS process (OTP as
//! installed, e.g. Debian's `erlang-base`) and prints one line per figure, parsed here.

use std::process::Command;
use std::time::Duration;

use crate::{Figures, Sizes};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/beam/peers.escript");

fn nanos(value: &str) -> Option<Duration> {
    value.parse().ok().map(Duration::from_nanos)
}

/// Runs the escript; `Err` says why BEAM was not measured (no `escript`, a failure).
pub fn figures(sizes: Sizes) -> Result<Figures, String> {
    let arguments = [
        sizes.calls.to_string(),
        sizes.idle_calls.to_string(),
        sizes.casts.to_string(),
        sizes.spawns.to_string(),
        sizes.kills.to_string(),
        sizes.idle_workers.to_string(),
        sizes.restarts.to_string(),
    ];
    let output = Command::new("escript")
        .arg(SCRIPT)
        .args(&arguments)
        .output()
        .map_err(|error| {
            format!(
                "cannot run `escript` ({error}); install Erlang, e.g. `apt-get install erlang-base`"
            )
        })?;
    if !output.status.success() {
        return Err(format!(
            "the escript failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut figures = Figures::default();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["W1", median, mean] => {
                figures.w1_median = nanos(median);
                figures.w1_mean = nanos(mean);
            }
            ["W1i", median] => figures.w1i_median = nanos(median),
            ["W2", rate] => figures.w2_rate = rate.parse().ok(),
            ["W3", each] => figures.w3 = nanos(each),
            ["W4", median] => figures.w4_median = nanos(median),
            ["W5", bytes] => figures.w5_bytes = bytes.parse().ok(),
            ["W6", median] => figures.w6_median = nanos(median),
            _ => {}
        }
    }
    Ok(figures)
}
