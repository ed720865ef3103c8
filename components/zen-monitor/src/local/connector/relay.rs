//! A Connector's relay: the runtime offers a monitor of a remote *name* only as a
//! channel, so one thread per Connector waits on it and forwards a Proxy DOWN into the
//! Connector's mailbox at once (the library's Connector gets it as a message; node
//! events reach the Connector directly). The relay ends, and is joined, when its
//! Connector is dropped.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, never, select};
use otp_threads::{Down, WorkerRef};

use super::{Connector, ConnectorInfo};

pub(crate) struct Relay {
    stop: Option<Sender<()>>,
    proxies: Sender<(u64, Receiver<Down>)>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    pub(crate) fn start(connector: WorkerRef<Connector>) -> std::io::Result<Relay> {
        let (stop, stopped) = crossbeam_channel::bounded(0);
        let (proxies, proxy_monitors) = crossbeam_channel::unbounded();
        let thread = std::thread::Builder::new()
            .name("zen-relay".into())
            .spawn(move || relay(connector, proxy_monitors, stopped))?;
        Ok(Relay {
            stop: Some(stop),
            proxies,
            thread: Some(thread),
        })
    }

    /// Watches the DOWN channel of the Proxy monitor number `generation`.
    pub(crate) fn watch_proxy(&self, generation: u64, downs: Receiver<Down>) {
        let _ = self.proxies.send((generation, downs));
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn relay(
    connector: WorkerRef<Connector>,
    proxy_monitors: Receiver<(u64, Receiver<Down>)>,
    stopped: Receiver<()>,
) {
    let mut proxy: Option<(u64, Receiver<Down>)> = None;
    loop {
        let proxy_downs = proxy.as_ref().map_or_else(never, |(_, r)| r.clone());
        let forward = select! {
            recv(stopped) -> _ => return,
            recv(proxy_monitors) -> watched => match watched {
                Ok(watched) => {
                    proxy = Some(watched);
                    None
                }
                Err(_) => return,
            },
            recv(proxy_downs) -> down => {
                let generation = proxy.take().map(|(g, _)| g);
                match (down, generation) {
                    (Ok(down), Some(generation)) => Some(ConnectorInfo::ProxyDown(generation, down.reason)),
                    _ => None,
                }
            },
        };
        if let Some(info) = forward
            && connector.try_send(info).is_err()
        {
            return;
        }
    }
}
