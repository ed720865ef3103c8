//! A demo node to look at: a supervision tree whose `flaky` child crashes every two
//! seconds, a `busy` worker with a growing mailbox, and the web view on loopback.
//!
//! Run it with `cargo run -p otp-threads-observer-web --example observe`, open the URL
//! it prints, and press Enter to stop.

use std::time::Duration;

use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{Context, ExitReason, Info, Runtime, Step, Worker};
use otp_threads_observer_web::ObserverWeb;

/// Crashes two seconds after it starts.
struct Flaky;

impl Worker for Flaky {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.send_after((), Duration::from_secs(2));
        Ok(())
    }

    fn handle_info(&mut self, _: Info<()>, _: &mut Context<Self>) -> Step<Self> {
        Step::Stop(ExitReason::error("crashed on purpose"))
    }
}

/// Takes a while over each cast.
struct Busy;

impl Worker for Busy {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn handle_cast(&mut self, _: (), _: &mut Context<Self>) -> Step<Self> {
        std::thread::sleep(Duration::from_millis(300));
        Step::Next
    }
}

/// Does nothing.
struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::new();
    let workers = || {
        Supervisor::new(Strategy::RestForOne)
            .child(ChildSpec::worker("idle", || Idle))
            .child(ChildSpec::worker("another", || Idle))
    };
    Supervisor::new(Strategy::OneForOne)
        .name("app")
        .intensity(1_000, Duration::from_secs(60))
        .child(ChildSpec::worker("flaky", || Flaky))
        .child(ChildSpec::supervisor("workers", workers))
        .start(&runtime)?;
    let busy = runtime.spawn_named("busy", Busy)?;
    let feeder = std::thread::spawn(move || {
        // Four casts a second to a worker that handles about three: its mailbox
        // grows, slowly.
        while busy.is_alive() {
            for _ in 0..2 {
                busy.cast(());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let web = ObserverWeb::builder().start(&runtime.handle())?;
    println!("observer web view: {}  (press Enter to stop)", web.url());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    web.stop();
    runtime.shutdown(Duration::from_secs(5))?;
    let _ = feeder.join();
    Ok(())
}
