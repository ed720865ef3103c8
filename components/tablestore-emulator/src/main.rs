//! `tablestore-emulator`: runs the Tablestore Tunnel emulator on loopback until stopped
//! (Ctrl-C), for trying a tunnel consumer by hand.
//!
//! ```sh
//! cargo run -p otp-threads-tablestore-emulator -- --instance demo --key-id demo-akid \
//!     --secret demo-secret --table orders --tunnel demo
//! ```
//!
//! It prints the endpoint and the tunnel id, then waits. Rows can be written through the
//! library API only (`Emulator::write`); the binary creates the tunnel so that a consumer
//! can connect.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use otp_threads_tablestore::proto::TunnelType;
use otp_threads_tablestore_emulator::{Emulator, EmulatorConfig, EmulatorError};

/// Command-line options, each with a default.
struct Options {
    instance: String,
    key_id: String,
    secret: String,
    table: String,
    tunnel: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        instance: "demo".into(),
        key_id: "demo-akid".into(),
        secret: "demo-secret".into(),
        table: "orders".into(),
        tunnel: "demo".into(),
    };
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--instance" => &mut options.instance,
            "--key-id" => &mut options.key_id,
            "--secret" => &mut options.secret,
            "--table" => &mut options.table,
            "--tunnel" => &mut options.tunnel,
            other => return Err(format!("unknown option `{other}`")),
        };
        *slot = args
            .next()
            .ok_or_else(|| format!("option `{flag}` needs a value"))?;
    }
    Ok(options)
}

fn serve(options: Options) -> Result<(), EmulatorError> {
    let emulator = Emulator::start(EmulatorConfig::new(
        &options.instance,
        &options.key_id,
        &options.secret,
    ))?;
    let tunnel_id = emulator.create_tunnel(&options.table, &options.tunnel, TunnelType::Stream)?;
    println!(
        "serving instance `{}` at {}; tunnel `{}` on table `{}` has id {tunnel_id}",
        options.instance,
        emulator.endpoint(),
        options.tunnel,
        options.table,
    );
    // The emulator's threads serve until the process is stopped.
    loop {
        std::thread::park();
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let options = match parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            log::error!("{message}");
            return ExitCode::from(2);
        }
    };
    match serve(options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            log::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
