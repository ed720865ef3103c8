//! Test support for the distribution protocol layer: a node of ours driven by hand
//! (handshake, frames, control messages). "One clear line" checks use the testkit's
//! `log_capture`.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use otp_threads::dist::control::{self, Control, DistMessage, WirePid};
use otp_threads::dist::epmd::EpmdClient;
use otp_threads::dist::frame::{self, Frame};
use otp_threads::dist::handshake::{self, LocalNode, PeerInfo};
use otp_threads::dist::{DistError, Term, flags};

pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// A node of ours, by hand: name, creation, cookie, visibility.
pub struct Manual {
    pub name: String,
    pub creation: u32,
    pub cookie: String,
    pub visible: bool,
}

impl Manual {
    pub fn new(alive: &str, cookie: &str) -> Manual {
        Manual {
            name: format!("{alive}@{}", super::erlang::short_host()),
            creation: 0x1234_5678,
            cookie: cookie.to_owned(),
            visible: false,
        }
    }

    pub fn local(&self) -> LocalNode<'_> {
        LocalNode {
            name: &self.name,
            creation: self.creation,
            flags: flags::advertised(self.visible),
            cookie: &self.cookie,
        }
    }

    /// A pid of ours (process number `id`).
    pub fn pid(&self, id: u32) -> WirePid {
        eetf::Pid::new(self.name.as_str(), id, 0, self.creation)
    }

    /// Looks `peer` (full name) up with the EPMD at `epmd`, connects and runs the
    /// handshake as initiator.
    pub fn connect(
        &self,
        epmd: SocketAddr,
        peer: &str,
    ) -> Result<(TcpStream, PeerInfo), DistError> {
        let alive = peer.split('@').next().unwrap();
        let entry = EpmdClient::new(epmd, IO_TIMEOUT)
            .port_please(alive)?
            .unwrap_or_else(|| panic!("{alive} is not registered with {epmd}"));
        let mut stream = TcpStream::connect_timeout(
            &SocketAddr::from(([127, 0, 0, 1], entry.port)),
            IO_TIMEOUT,
        )?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        let peer_info = handshake::initiate(&mut stream, &self.local(), peer)?;
        Ok((stream, peer_info))
    }
}

/// Sends one control message (and payload) as a frame.
pub fn send(stream: &mut TcpStream, control: &Control, payload: Option<&Term>) {
    let body = control::encode(control, payload).expect("encode");
    frame::write_frame(stream, &body).expect("write frame");
}

/// Reads the next control message, answering ticks with ticks.
pub fn receive(stream: &mut TcpStream) -> DistMessage {
    loop {
        match frame::read_frame(stream, frame::DEFAULT_MAX_FRAME).expect("read frame") {
            Frame::Tick => frame::write_tick(stream).expect("tick"),
            Frame::Data(body) => return control::decode(&body).expect("decode frame"),
        }
    }
}

/// Reads control messages until one matches, skipping (and printing) others such as
/// the `rex` / `global_name_server` traffic a visible connection gets.
pub fn receive_matching(
    stream: &mut TcpStream,
    mut wanted: impl FnMut(&DistMessage) -> bool,
) -> DistMessage {
    loop {
        let message = receive(stream);
        if wanted(&message) {
            return message;
        }
        eprintln!("skipped {:?}", message.control);
    }
}
