//! Our EPMD-compatible name server.
//!
//! It answers `ALIVE2_REQ`, `PORT_PLEASE2_REQ` and `NAMES_REQ` as EPMD does, for our
//! nodes and for real `erl` nodes (point them at it with `ERL_EPMD_PORT`). A
//! registration lasts as long as its connection: when the registering socket closes,
//! the name is removed. One thread accepts, one thread serves each connection;
//! [`NameServer::shutdown`] (or drop) closes every socket and joins every thread.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use super::{
    NodeEntry, Request, encode_alive2_response, encode_names_response, encode_port2_response,
};
use crate::dist::error::DistError;
use crate::dist::wire::read_u16_message;

/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

struct Registered {
    entry: NodeEntry,
    connection: u64,
}

struct Shared {
    port: u16,
    stopping: AtomicBool,
    names: Mutex<HashMap<String, Registered>>,
    /// Open client sockets, so that shutdown can close them and unblock their threads.
    sockets: Mutex<HashMap<u64, TcpStream>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_connection: AtomicU64,
    next_creation: AtomicU32,
}

/// A running EPMD-compatible name server.
pub struct NameServer {
    address: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl NameServer {
    /// Binds `address` (port 0 = any) and starts serving.
    pub fn bind(address: SocketAddr) -> Result<NameServer, DistError> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        // Creations start at a random point, as epmd's do, so that a restarted name
        // server does not hand the same creation to the next incarnation of a node.
        let first_creation = crate::dist::digest::new_challenge()? | 1;
        let shared = Arc::new(Shared {
            port: address.port(),
            stopping: AtomicBool::new(false),
            names: Mutex::new(HashMap::new()),
            sockets: Mutex::new(HashMap::new()),
            threads: Mutex::new(Vec::new()),
            next_connection: AtomicU64::new(1),
            next_creation: AtomicU32::new(first_creation),
        });
        let accepting = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name("epmd-accept".into())
            .spawn(move || accept_loop(listener, accepting))?;
        log::info!("name server listening on {address}");
        Ok(NameServer {
            address,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The registered nodes, as `(alive name, port)`, sorted by name.
    pub fn names(&self) -> Vec<(String, u16)> {
        let mut names: Vec<(String, u16)> = self
            .shared
            .names
            .lock()
            .values()
            .map(|registered| (registered.entry.name.clone(), registered.entry.port))
            .collect();
        names.sort();
        names
    }

    /// Closes every connection and joins every thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        self.shared.stopping.store(true, Ordering::Release);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        let _ = acceptor.join();
        for socket in self.shared.sockets.lock().values() {
            let _ = socket.shutdown(Shutdown::Both);
        }
        let threads = std::mem::take(&mut *self.shared.threads.lock());
        for thread in threads {
            let _ = thread.join();
        }
        self.shared.names.lock().clear();
    }
}

impl Drop for NameServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                // Out of descriptors and the like: do not spin on a failing accept.
                log::warn!("name server: accept failed: {error}");
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            shared.sockets.lock().insert(id, clone);
        }
        let serving = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("epmd-conn".into())
            .spawn(move || {
                serve(&serving, stream, id);
                serving.sockets.lock().remove(&id);
            });
        let mut threads = shared.threads.lock();
        // Reap finished connection threads so the list does not grow without bound.
        let (finished, running): (Vec<_>, Vec<_>) = std::mem::take(&mut *threads)
            .into_iter()
            .partition(|t| t.is_finished());
        *threads = running;
        drop(threads);
        for thread in finished {
            let _ = thread.join();
        }
        match spawned {
            Ok(thread) => shared.threads.lock().push(thread),
            Err(error) => {
                log::error!("name server: cannot start a connection thread: {error}");
                shared.sockets.lock().remove(&id);
            }
        }
    }
}

fn serve(shared: &Shared, mut stream: TcpStream, id: u64) {
    let _ = stream.set_read_timeout(Some(REQUEST_TIMEOUT));
    let body = match read_u16_message(&mut stream) {
        Ok(body) => body,
        Err(_) => return,
    };
    let request = match Request::decode(&body) {
        Ok(request) => request,
        Err(error) => {
            log::warn!("name server: bad request: {error}");
            return;
        }
    };
    let answer = match request {
        Request::Alive2(entry) => return serve_registration(shared, stream, id, entry),
        Request::PortPlease2(name) => {
            let names = shared.names.lock();
            encode_port2_response(names.get(&name).map(|registered| &registered.entry))
        }
        Request::Names => {
            let mut names: Vec<(String, u16)> = shared
                .names
                .lock()
                .values()
                .map(|r| (r.entry.name.clone(), r.entry.port))
                .collect();
            names.sort();
            Ok(encode_names_response(shared.port, &names))
        }
    };
    if let Ok(answer) = answer {
        let _ = stream.write_all(&answer);
    }
}

/// Registers the node and holds the registration until the socket closes.
fn serve_registration(shared: &Shared, mut stream: TcpStream, id: u64, entry: NodeEntry) {
    let extended = entry.highest_version >= 6;
    let name = entry.name.clone();
    let creation = {
        let mut names = shared.names.lock();
        if names.contains_key(&name) {
            None
        } else {
            let creation = next_creation(shared, extended);
            names.insert(
                name.clone(),
                Registered {
                    entry,
                    connection: id,
                },
            );
            Some(creation)
        }
    };
    let Some(creation) = creation else {
        log::info!("name server: {name:?} is already registered; refused");
        let _ = stream.write_all(&encode_alive2_response(1, 0, extended));
        return;
    };
    if stream
        .write_all(&encode_alive2_response(0, creation, extended))
        .is_ok()
    {
        log::debug!("name server: registered {name:?} (creation {creation})");
        // Registered until the client closes; whatever it sends is ignored.
        let _ = stream.set_read_timeout(None);
        let mut sink = [0u8; 64];
        while matches!(std::io::Read::read(&mut stream, &mut sink), Ok(n) if n > 0) {}
    }
    let mut names = shared.names.lock();
    if names.get(&name).is_some_and(|r| r.connection == id) {
        names.remove(&name);
        log::debug!("name server: unregistered {name:?}");
    }
}

/// A non-zero creation that fits the response (16 bits for old clients).
fn next_creation(shared: &Shared, extended: bool) -> u32 {
    loop {
        let creation = shared.next_creation.fetch_add(1, Ordering::Relaxed);
        let creation = if extended {
            creation
        } else {
            creation & 0xffff
        };
        // Creation 0 means "unknown" in the term format; 1..3 are old 2-bit values.
        if creation > 3 {
            return creation;
        }
    }
}
