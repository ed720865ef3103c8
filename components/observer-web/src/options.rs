//! The web view's options and their validation.
//!
//! Contract: every option has a default that is safe to run with (loopback, any free
//! port, two handler threads); a value out of range is rejected when the server starts,
//! with [`Error::InvalidOption`] naming the builder method. Binding an address other
//! than loopback needs [`ObserverWebBuilder::allow_remote`](crate::ObserverWebBuilder::allow_remote):
//! the page shows every process of the node to whoever can reach it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::Error;

/// The most handler threads: each serves one connection at a time.
pub(crate) const MAX_HANDLERS: usize = 64;
/// The longest time a handler waits for a slow client.
pub(crate) const MAX_IO_TIMEOUT: Duration = Duration::from_secs(600);
/// The page's fastest and slowest refresh.
pub(crate) const MIN_REFRESH: Duration = Duration::from_millis(50);
pub(crate) const MAX_REFRESH: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub(crate) struct Options {
    pub(crate) bind: SocketAddr,
    pub(crate) allow_remote: bool,
    pub(crate) handlers: usize,
    pub(crate) io_timeout: Duration,
    pub(crate) refresh: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            allow_remote: false,
            handlers: 2,
            io_timeout: Duration::from_secs(5),
            refresh: Duration::from_millis(500),
        }
    }
}

impl Options {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        check_bind(self.bind, self.allow_remote)?;
        check_handlers(self.handlers)?;
        check_io_timeout(self.io_timeout)?;
        check_refresh(self.refresh)
    }
}

fn invalid(option: &'static str, reason: &'static str) -> Error {
    Error::InvalidOption { option, reason }
}

fn check_bind(bind: SocketAddr, allow_remote: bool) -> Result<(), Error> {
    if bind.ip().is_loopback() || allow_remote {
        return Ok(());
    }
    Err(invalid(
        "bind",
        "not a loopback address; the page shows every process of the node, so a remote \
         address needs allow_remote(true)",
    ))
}

fn check_handlers(handlers: usize) -> Result<(), Error> {
    match handlers {
        0 => Err(invalid("handlers", "at least one handler thread is needed")),
        n if n > MAX_HANDLERS => Err(invalid("handlers", "more than 64 handler threads")),
        _ => Ok(()),
    }
}

fn check_io_timeout(timeout: Duration) -> Result<(), Error> {
    if timeout.is_zero() {
        return Err(invalid(
            "io_timeout",
            "zero (the OS reads it as no timeout)",
        ));
    }
    if timeout > MAX_IO_TIMEOUT {
        return Err(invalid("io_timeout", "longer than 10 minutes"));
    }
    Ok(())
}

fn check_refresh(refresh: Duration) -> Result<(), Error> {
    if refresh < MIN_REFRESH {
        return Err(invalid("refresh", "shorter than 50 ms"));
    }
    if refresh > MAX_REFRESH {
        return Err(invalid("refresh", "longer than 60 s"));
    }
    Ok(())
}
