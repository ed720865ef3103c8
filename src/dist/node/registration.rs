//! Keeping the node registered with EPMD while it runs.
//!
//! Contract: a node is registered for as long as its `ALIVE2` connection is open. A
//! keeper thread watches that connection; when EPMD closes it (epmd killed or
//! restarted, our name server stopped), the keeper registers again at the same
//! address, retrying with a growing pause (100 ms up to 2 s) until it succeeds or the
//! node stops — and when nothing has answered there for a second (time for an epmd
//! being restarted to take its port back), it starts our name server on that
//! address, as a starting node does. The node keeps its creation (it announces the
//! runtime's, not EPMD's), so pids made before stay valid. Stopping the node wakes the
//! keeper at once (its watched socket is shut down), ends the registration and stops a
//! name server the keeper started.

use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::super::epmd::{EpmdClient, NameServer, NodeEntry, Registration};
use super::super::error::DistError;

/// The first pause before registering again, doubled after each failure.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between attempts.
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// How long only a running EPMD is registered with before we start our name server.
const GRACE: Duration = Duration::from_secs(1);

/// What the keeper shares with the node.
struct Shared {
    /// A clone of the registration socket being watched, shut down to wake the keeper.
    watched: Mutex<Option<TcpStream>>,
    stopping: AtomicBool,
}

/// The keeper thread of one node.
pub(crate) struct Keeper {
    shared: Arc<Shared>,
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Keeper {
    /// Starts watching `registration` (and owning `name_server`, if the node started one).
    pub(crate) fn start(
        registration: Registration,
        name_server: Option<NameServer>,
        address: SocketAddr,
        entry: NodeEntry,
        timeout: Duration,
    ) -> Result<Keeper, DistError> {
        let shared = Arc::new(Shared {
            watched: Mutex::new(None),
            stopping: AtomicBool::new(false),
        });
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let keeping = shared.clone();
        let thread = std::thread::Builder::new()
            .name("dist-epmd".into())
            .spawn(move || {
                keep(
                    &keeping,
                    &stopped,
                    registration,
                    name_server,
                    address,
                    &entry,
                    timeout,
                )
            })?;
        Ok(Keeper {
            shared,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Unregisters, stops a name server the keeper owns, and joins the thread.
    pub(crate) fn stop(self) {
        drop(self);
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::Release);
        if let Some(stream) = self.shared.watched.lock().as_ref() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn keep(
    shared: &Shared,
    stopped: &Receiver<()>,
    mut registration: Registration,
    mut name_server: Option<NameServer>,
    address: SocketAddr,
    entry: &NodeEntry,
    timeout: Duration,
) {
    loop {
        match registration.watch_stream() {
            Ok(stream) => {
                *shared.watched.lock() = stream.try_clone().ok();
                // The stop flag is checked after publishing the clone, so a stop that
                // came before cannot be missed.
                if !shared.stopping.load(Ordering::Acquire) {
                    wait_closed(stream);
                }
            }
            Err(error) => log::warn!("distribution: cannot watch the EPMD registration: {error}"),
        }
        *shared.watched.lock() = None;
        if shared.stopping.load(Ordering::Acquire) {
            break;
        }
        log::warn!(
            "distribution: EPMD at {address} closed the registration of {}; registering again",
            entry.name
        );
        drop(registration);
        let mut pause = FIRST_PAUSE;
        let lost_at = std::time::Instant::now();
        let renewed = loop {
            // An epmd being restarted gets GRACE to take its port back before we
            // start our own name server there.
            let attempt = if lost_at.elapsed() < GRACE {
                EpmdClient::new(address, timeout)
                    .register(entry)
                    .map(|registration| (registration, None))
            } else {
                super::register(address, entry, timeout)
            };
            match attempt {
                Ok(renewed) => break Some(renewed),
                Err(error) => log::debug!("distribution: registering with EPMD failed: {error}"),
            }
            // Wait for the pause or the stop, whichever comes first.
            if let Err(crossbeam_channel::RecvTimeoutError::Disconnected) =
                stopped.recv_timeout(pause)
            {
                break None;
            }
            pause = (pause * 2).min(MAX_PAUSE);
        };
        let Some((renewed, started)) = renewed else {
            if let Some(server) = name_server.take() {
                server.shutdown();
            }
            return;
        };
        registration = renewed;
        if let Some(server) = started {
            log::info!("distribution: no EPMD at {address}; started our name server there");
            if let Some(old) = name_server.replace(server) {
                old.shutdown();
            }
        }
        log::info!("distribution: {} registered with EPMD again", entry.name);
    }
    drop(registration);
    if let Some(server) = name_server {
        server.shutdown();
    }
}

/// Blocks until EPMD closes the registration socket (it sends nothing after the
/// `ALIVE2` answer) or the socket is shut down.
fn wait_closed(mut stream: TcpStream) {
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return,
            // Unexpected bytes from EPMD: ignored, the socket is what counts.
            Ok(_) => {}
        }
    }
}
