//! Rates, intervals and sizes, with zen_monitor 2.1.0's defaults. Every value can be
//! changed while running ([`ZenMonitor::set_options`](crate::ZenMonitor::set_options));
//! workers read them at each sweep, as the library reads its application environment.

use std::time::Duration;

use crate::error::ZenError;

/// The settings of a [`ZenMonitor`](crate::ZenMonitor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// How often a Connector sends its queued (un)subscriptions (`connector_sweep_interval`, 100 ms).
    pub connector_sweep_interval: Duration,
    /// At most this many instructions per `{process, ...}` cast (`connector_chunk_size`, 5,000).
    pub connector_chunk_size: usize,
    /// How often a Batcher sends its dead summary (`batcher_sweep_interval`, 100 ms).
    pub batcher_sweep_interval: Duration,
    /// At most this many certificates per summary (`batcher_chunk_size`, 5,000).
    pub batcher_chunk_size: usize,
    /// How often the Dispatcher delivers (`demand_interval`, 100 ms).
    pub demand_interval: Duration,
    /// At most this many DOWNs per `demand_interval` (`demand_amount`, 1,000).
    pub demand_amount: usize,
    /// How long a ping to a remote Proxy may take (`GenServer.call`'s 5 s).
    pub ping_timeout: Duration,
    /// Binaries in reasons longer than this are cut (`max_binary_size`, 1,024).
    pub max_binary_size: usize,
    /// Reasons nested deeper than this are `truncated` (`truncation_depth`, 3).
    pub truncation_depth: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            connector_sweep_interval: Duration::from_millis(100),
            connector_chunk_size: 5_000,
            batcher_sweep_interval: Duration::from_millis(100),
            batcher_chunk_size: 5_000,
            demand_interval: Duration::from_millis(100),
            demand_amount: 1_000,
            ping_timeout: Duration::from_secs(5),
            max_binary_size: 1_024,
            truncation_depth: 3,
        }
    }
}

fn positive_interval(option: &'static str, value: Duration) -> Result<(), ZenError> {
    if value < Duration::from_millis(1) {
        return Err(ZenError::InvalidOption {
            option,
            reason: "must be at least 1 ms",
        });
    }
    Ok(())
}

fn positive_count(option: &'static str, value: usize) -> Result<(), ZenError> {
    if value == 0 {
        return Err(ZenError::InvalidOption {
            option,
            reason: "must be at least 1",
        });
    }
    Ok(())
}

fn binary_size(value: usize) -> Result<(), ZenError> {
    // The cut keeps `value - 3` bytes and appends "...".
    if value < 4 {
        return Err(ZenError::InvalidOption {
            option: "max_binary_size",
            reason: "must be at least 4 bytes",
        });
    }
    Ok(())
}

impl Options {
    /// Checks every value; the error names the first option out of range.
    pub fn validate(&self) -> Result<(), ZenError> {
        positive_interval("connector_sweep_interval", self.connector_sweep_interval)?;
        positive_count("connector_chunk_size", self.connector_chunk_size)?;
        positive_interval("batcher_sweep_interval", self.batcher_sweep_interval)?;
        positive_count("batcher_chunk_size", self.batcher_chunk_size)?;
        positive_interval("demand_interval", self.demand_interval)?;
        positive_count("demand_amount", self.demand_amount)?;
        positive_interval("ping_timeout", self.ping_timeout)?;
        binary_size(self.max_binary_size)?;
        positive_count("truncation_depth", self.truncation_depth)?;
        Ok(())
    }

    /// The highest delivery rate the Dispatcher allows, DOWNs per second
    /// (`demand_amount * 1000 / demand_interval`).
    pub fn maximum_downs_per_second(&self) -> u64 {
        let millis = self.demand_interval.as_millis().max(1);
        let per_second = (self.demand_amount as u128).saturating_mul(1000) / millis;
        u64::try_from(per_second).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_library_defaults_and_valid() {
        let options = Options::default();
        options.validate().unwrap();
        assert_eq!(options.maximum_downs_per_second(), 10_000);
    }

    #[test]
    fn invalid_options_name_the_option() {
        let cases: Vec<(&str, Options)> = vec![
            (
                "connector_sweep_interval",
                Options {
                    connector_sweep_interval: Duration::ZERO,
                    ..Options::default()
                },
            ),
            (
                "connector_chunk_size",
                Options {
                    connector_chunk_size: 0,
                    ..Options::default()
                },
            ),
            (
                "batcher_sweep_interval",
                Options {
                    batcher_sweep_interval: Duration::ZERO,
                    ..Options::default()
                },
            ),
            (
                "batcher_chunk_size",
                Options {
                    batcher_chunk_size: 0,
                    ..Options::default()
                },
            ),
            (
                "demand_interval",
                Options {
                    demand_interval: Duration::from_micros(10),
                    ..Options::default()
                },
            ),
            (
                "demand_amount",
                Options {
                    demand_amount: 0,
                    ..Options::default()
                },
            ),
            (
                "ping_timeout",
                Options {
                    ping_timeout: Duration::ZERO,
                    ..Options::default()
                },
            ),
            (
                "max_binary_size",
                Options {
                    max_binary_size: 3,
                    ..Options::default()
                },
            ),
            (
                "truncation_depth",
                Options {
                    truncation_depth: 0,
                    ..Options::default()
                },
            ),
        ];
        for (name, options) in cases {
            match options.validate() {
                Err(ZenError::InvalidOption { option, .. }) => assert_eq!(option, name),
                other => panic!("{name}: expected InvalidOption, got {other:?}"),
            }
        }
    }
}
