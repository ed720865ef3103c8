//! `otp_epmd`: the EPMD-compatible name server of `otp_threads::dist` as a daemon, for
//! Rust-only clusters without an Erlang install (real `erl` nodes can register with it
//! too).
//!
//! ```text
//! otp_epmd [ADDRESS:PORT]     default 127.0.0.1:$ERL_EPMD_PORT, else 127.0.0.1:4369
//! ```
//!
//! Runs until killed.

use std::net::SocketAddr;

fn main() {
    let address = match std::env::args().nth(1) {
        Some(text) => match text.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(error) => {
                eprintln!("otp_epmd: invalid address {text:?}: {error}");
                std::process::exit(2);
            }
        },
        None => {
            let port = std::env::var("ERL_EPMD_PORT")
                .ok()
                .and_then(|port| port.parse().ok())
                .unwrap_or(otp_threads::dist::epmd::DEFAULT_PORT);
            SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let server = match otp_threads::dist::epmd::NameServer::bind(address) {
        Ok(server) => server,
        Err(error) => {
            eprintln!("otp_epmd: cannot listen on {address}: {error}");
            std::process::exit(1);
        }
    };
    println!("otp_epmd: listening on {}", server.address());
    loop {
        std::thread::park();
    }
}
