//! A live web view of an otp-threads node, opt-in: the supervision trees with status
//! colours, mailbox depths and restart counts, the processes outside any tree, the
//! call cycles, and a detail panel per process, updated live in the browser.
//!
//! Contract:
//! - [`ObserverWeb::builder`]`.start(&runtime)` serves one self-contained page (inline
//!   HTML, CSS and JavaScript; nothing fetched from elsewhere, no build step) at `/`,
//!   the node's [`Snapshot`](otp_threads::Snapshot) as JSON at `/snapshot.json`
//!   (polled by the page every [`refresh`](ObserverWebBuilder::refresh) interval,
//!   500 ms by default) and its tree as text at `/tree.txt`.
//! - It binds `127.0.0.1` on any free port by default; another loopback address is
//!   fine, any other address is refused unless
//!   [`allow_remote`](ObserverWebBuilder::allow_remote) says so. Invalid options are
//!   rejected with [`Error::InvalidOption`] naming the option.
//! - The server is a small synchronous HTTP/1.1 server on `std::net`: one thread
//!   accepting, [`handlers`](ObserverWebBuilder::handlers) threads answering, one
//!   request per connection. A malformed request gets `400 Bad Request`, never a
//!   panic (see [`request`]).
//! - [`ObserverWeb::stop`] (or dropping it) ends the open connections and joins every
//!   thread the server started. The runtime is only read, through its public
//!   [`RuntimeHandle::snapshot`](otp_threads::RuntimeHandle::snapshot).
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use otp_threads::Runtime;
//! use otp_threads_observer_web::ObserverWeb;
//!
//! let runtime = Runtime::new();
//! let web = ObserverWeb::builder().start(&runtime.handle()).unwrap();
//! assert!(web.url().starts_with("http://127.0.0.1:"));
//! let mut connection = std::net::TcpStream::connect(web.address()).unwrap();
//! connection
//!     .write_all(b"GET /snapshot.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
//!     .unwrap();
//! let mut response = String::new();
//! connection.read_to_string(&mut response).unwrap();
//! assert!(response.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(response.contains("\"tree_roots\":[]"));
//! web.stop();
//! runtime.shutdown(Duration::from_secs(5)).unwrap();
//! ```
#![forbid(unsafe_code)]

mod error;
mod options;
mod page;
pub mod request;
mod server;

use std::net::SocketAddr;
use std::time::Duration;

use otp_threads::RuntimeHandle;

pub use error::Error;

use options::Options;
use server::Server;

/// The options of the web view; see the crate docs for the defaults.
#[derive(Clone, Debug, Default)]
pub struct ObserverWebBuilder {
    options: Options,
}

impl ObserverWebBuilder {
    /// The address to listen on; `127.0.0.1:0` (loopback, any free port) by default.
    pub fn bind(mut self, address: SocketAddr) -> ObserverWebBuilder {
        self.options.bind = address;
        self
    }

    /// Allows a [`bind`](ObserverWebBuilder::bind) address that is not loopback
    /// (`false` by default): the page shows every process of the node, unauthenticated.
    pub fn allow_remote(mut self, allow: bool) -> ObserverWebBuilder {
        self.options.allow_remote = allow;
        self
    }

    /// The number of threads answering requests, 1 to 64; 2 by default.
    pub fn handlers(mut self, handlers: usize) -> ObserverWebBuilder {
        self.options.handlers = handlers;
        self
    }

    /// How long a handler waits for a client to send its request or take the
    /// response, more than zero and at most 10 minutes; 5 s by default.
    pub fn io_timeout(mut self, timeout: Duration) -> ObserverWebBuilder {
        self.options.io_timeout = timeout;
        self
    }

    /// How often the page fetches a new snapshot, 50 ms to 60 s; 500 ms by default.
    pub fn refresh(mut self, interval: Duration) -> ObserverWebBuilder {
        self.options.refresh = interval;
        self
    }

    /// Validates the options, binds the address and starts the server's threads.
    pub fn start(self, runtime: &RuntimeHandle) -> Result<ObserverWeb, Error> {
        self.options.validate()?;
        let server = Server::start(runtime.clone(), self.options)?;
        log::info!("observer web view on http://{}/", server.address());
        Ok(ObserverWeb { server })
    }
}

/// The running web view. Dropping it stops it, as [`ObserverWeb::stop`] does.
pub struct ObserverWeb {
    server: Server,
}

impl ObserverWeb {
    /// The options, to change before [`start`](ObserverWebBuilder::start).
    pub fn builder() -> ObserverWebBuilder {
        ObserverWebBuilder::default()
    }

    /// The address it listens on (with the port chosen, if `0` was asked for).
    pub fn address(&self) -> SocketAddr {
        self.server.address()
    }

    /// The page's URL, `http://address/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.address())
    }

    /// Stops accepting, ends the connections in progress and joins every thread the
    /// server started.
    pub fn stop(mut self) {
        self.server.stop();
    }
}

impl std::fmt::Debug for ObserverWeb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverWeb")
            .field("address", &self.address())
            .finish()
    }
}
