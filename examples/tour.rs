//! A tour of otp-threads, on embedded defaults: no external service is needed (the
//! tunnel consumer talks to the crate's loopback emulator of the Tablestore service,
//! and two Erlang nodes join over loopback TCP through the runtime's own
//! EPMD-compatible name server).
//!
//! Run it with `cargo run --release --example tour` (set `RUST_LOG=debug` to see the
//! runtime's own log lines).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use otp_threads::dist::{Node, NodeEvent};

use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorRef};
use otp_threads::{Context, Error, ExitReason, Info, Pid, ReplyTo, Runtime, Step, Worker};

/// A bank account: calls read and withdraw, casts deposit, a timer pays interest.
struct Account {
    balance: u64,
    interest_paid: u32,
    /// A call answered later (here: never, so its caller times out).
    pending_audit: Option<ReplyTo<Result<u64, String>>>,
}

enum Request {
    Balance,
    Withdraw(u64),
    /// Takes longer than any caller waits.
    Audit,
}

enum Tick {
    Interest,
}

impl Worker for Account {
    type Call = Request;
    type Reply = Result<u64, String>;
    type Cast = u64;
    type Info = Tick;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.send_after(Tick::Interest, Duration::from_millis(20));
        Ok(())
    }

    fn handle_call(
        &mut self,
        request: Request,
        reply: ReplyTo<Self::Reply>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        match request {
            Request::Balance => {
                reply.reply(Ok(self.balance));
            }
            Request::Withdraw(amount) if amount > self.balance => {
                // An overdraft is a bug in this bank: crash, let the links and monitors tell.
                reply.reply(Err("overdraft".into()));
                return Step::Stop(ExitReason::error(format!("overdraft of {amount}")));
            }
            Request::Withdraw(amount) => {
                self.balance -= amount;
                reply.reply(Ok(self.balance));
            }
            Request::Audit => {
                // Keep the token and answer later (never, here): the caller's timeout fires.
                self.pending_audit = Some(reply);
            }
        }
        Step::Next
    }

    fn handle_cast(&mut self, amount: u64, _: &mut Context<Self>) -> Step<Self> {
        self.balance += amount;
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Tick>, ctx: &mut Context<Self>) -> Step<Self> {
        if let Info::Timer(_, Tick::Interest) = info {
            self.balance += self.balance / 100;
            self.interest_paid += 1;
            if self.interest_paid < 3 {
                ctx.send_after(Tick::Interest, Duration::from_millis(20));
            }
        }
        Step::Next
    }
}

/// Watches another worker through a link, trapping its exit.
struct Auditor {
    report: crossbeam_channel::Sender<String>,
}

impl Worker for Auditor {
    type Call = otp_threads::Pid;
    type Reply = Result<(), Error>;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        Ok(())
    }

    fn handle_call(
        &mut self,
        pid: otp_threads::Pid,
        reply: ReplyTo<Self::Reply>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(ctx.link(&pid));
        Step::Next
    }

    fn handle_info(&mut self, info: Info<()>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Exit(exit) = info {
            let _ = self.report.send(format!(
                "auditor (linked, trapping exits) got EXIT from {}: {}",
                exit.from, exit.reason
            ));
        }
        Step::Next
    }
}

/// A pipeline stage that crashes when told to.
struct Stage;

impl Worker for Stage {
    type Call = ();
    type Reply = ();
    type Cast = &'static str;
    type Info = ();
    type Continue = ();

    fn handle_cast(&mut self, why: &'static str, _: &mut Context<Self>) -> Step<Self> {
        panic!("{why}");
    }
}

/// The pid of a supervisor's child, waiting (bounded) until it differs from `old`.
fn child_pid(
    supervisor: &SupervisorRef,
    id: &str,
    old: Option<Pid>,
) -> Result<Pid, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let children = supervisor.which_children()?;
        let pid = children
            .iter()
            .find(|child| child.id == id)
            .and_then(|child| child.state.pid());
        if let Some(pid) = pid
            && Some(pid) != old
        {
            return Ok(pid);
        }
        if Instant::now() > deadline {
            return Err(format!("no new {id} child").into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn supervision_tree(runtime: &Runtime) -> Result<(), Box<dyn std::error::Error>> {
    println!("\n-- a supervision tree");
    // top (one_for_one, 3 restarts in 5 s)
    //  |- cache: a worker
    //  `- pipeline (one_for_all, 1 restart in 5 s)
    //      |- parse
    //      `- store
    let pipeline = || {
        Supervisor::new(Strategy::OneForAll)
            .intensity(1, Duration::from_secs(5))
            .name("pipeline")
            .child(ChildSpec::worker("parse", || Stage))
            .child(ChildSpec::worker("store", || Stage))
    };
    let top = Supervisor::new(Strategy::OneForOne)
        .child(ChildSpec::worker("cache", || Stage))
        .child(ChildSpec::supervisor("pipeline", pipeline))
        .start(runtime)?;
    for child in top.which_children()? {
        println!("top has {:?} {}: {:?}", child.kind, child.id, child.state);
    }

    let cache = child_pid(&top, "cache", None)?;
    runtime.worker_ref::<Stage>(&cache)?.cast("cache corrupted");
    let new_cache = child_pid(&top, "cache", Some(cache))?;
    println!("cache {cache} crashed; one_for_one restarted it alone as {new_cache}");

    let pipeline_sup = SupervisorRef::whereis(runtime, "pipeline")?;
    let parse = child_pid(&pipeline_sup, "parse", None)?;
    let store = child_pid(&pipeline_sup, "store", None)?;
    runtime.worker_ref::<Stage>(&parse)?.cast("bad record");
    let parse_again = child_pid(&pipeline_sup, "parse", Some(parse))?;
    let store_again = child_pid(&pipeline_sup, "store", Some(store))?;
    println!(
        "parse crashed; one_for_all restarted both: parse {parse} -> {parse_again}, store {store} -> {store_again}"
    );

    let pipeline_pid = pipeline_sup.pid();
    let pipeline_down = runtime.monitor(&pipeline_pid);
    runtime
        .worker_ref::<Stage>(&parse_again)?
        .cast("bad record again");
    let down = pipeline_down
        .wait(Duration::from_secs(5))
        .ok_or("the pipeline did not stop")?;
    let new_pipeline = child_pid(&top, "pipeline", Some(pipeline_pid))?;
    println!(
        "a second crash within 5 s broke the pipeline's intensity: it stopped ({}) and the top supervisor restarted it as {new_pipeline}",
        down.reason
    );
    println!("top supervisor counts: {:?}", top.count_children()?);
    Ok(())
}

/// Greets whoever calls, from this node or another one.
struct Greeter;

impl Worker for Greeter {
    type Call = String;
    type Reply = String;
    type Cast = String;
    type Info = String;
    type Continue = ();

    fn handle_call(
        &mut self,
        name: String,
        reply: ReplyTo<String>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        reply.reply(format!("Hello, {name}!"));
        Step::Next
    }
}

/// A free port on 127.0.0.1 for the name server: the tour must not meet a real epmd.
fn free_loopback_address() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}

fn two_nodes() -> Result<(), Box<dyn std::error::Error>> {
    println!("\n-- two nodes over the Erlang distribution protocol");
    // The first node finds no epmd at this address and starts the runtime's own
    // EPMD-compatible name server there; the second registers with it.
    let epmd = free_loopback_address()?;
    let alpha = Runtime::builder().node_name("alpha@localhost").build()?;
    let alpha_node = Node::builder()
        .cookie("tour")
        .epmd(epmd)
        .start(&alpha.handle())?;
    let beta = Runtime::builder().node_name("beta@localhost").build()?;
    let beta_node = Node::builder()
        .cookie("tour")
        .epmd(epmd)
        .start(&beta.handle())?;
    println!(
        "{} runs the name server: {}; {} registered with it",
        alpha_node.name(),
        alpha_node.runs_name_server(),
        beta_node.name()
    );

    let greeter = beta.spawn_named("greeter", Greeter)?;
    beta_node.serve(&greeter);
    let events = alpha_node.events();
    // The first call connects the nodes (a real TCP connection and handshake).
    let answer: String = alpha_node.call(
        ("greeter", beta_node.name()),
        &"alpha".to_owned(),
        Duration::from_secs(5),
    )?;
    println!(
        "remote call to {{greeter, {}}}: {answer:?}",
        beta_node.name()
    );
    println!("alpha's nodes(): {:?}", alpha_node.nodes());

    let monitor = alpha_node.monitor_name("greeter", beta_node.name());
    // Both requests travel in order over the one connection between the nodes: once
    // this call is answered, the monitor request sent before it is in place on beta.
    let _: String = alpha_node.call(
        ("greeter", beta_node.name()),
        &"again".to_owned(),
        Duration::from_secs(5),
    )?;
    beta.exit(&greeter.pid(), ExitReason::error("retired"));
    let down = monitor
        .wait(Duration::from_secs(5))
        .ok_or("no remote DOWN")?;
    println!(
        "alpha's monitor of the remote greeter: DOWN {}",
        down.reason
    );

    let beta_name = beta_node.name().to_owned();
    beta_node.shutdown();
    loop {
        match events.recv_timeout(Duration::from_secs(5))? {
            NodeEvent::Down { node, reason } if node == beta_name => {
                println!("alpha saw nodedown for {node}: {reason:?}");
                break;
            }
            _ => continue,
        }
    }
    beta.shutdown(Duration::from_secs(5))?;
    alpha_node.shutdown();
    alpha.shutdown(Duration::from_secs(5))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    // The tour crashes workers on purpose; the runtime logs each crash with its reason,
    // so the default hook's message and backtrace would only repeat it.
    std::panic::set_hook(Box::new(|_| {}));
    let started = Instant::now();
    let runtime = Runtime::new();
    println!("otp-threads tour on node {}", runtime.node());

    println!("\n-- workers, calls and casts");
    let account = runtime.spawn_named(
        "account",
        Account {
            balance: 1_000,
            interest_paid: 0,
            pending_audit: None,
        },
    )?;
    account.cast(500);
    println!(
        "account {} balance after a deposit of 500: {:?}",
        account.pid(),
        account.call(Request::Balance)?
    );
    let by_name = runtime.whereis_worker::<Account>("account")?;
    println!(
        "withdraw 300 by name: {:?}",
        by_name.call(Request::Withdraw(300))?
    );

    println!("\n-- timers");
    std::thread::sleep(Duration::from_millis(100));
    println!(
        "balance after three interest timers: {:?}",
        account.call(Request::Balance)?
    );

    println!("\n-- a call timeout");
    let result = account.call_timeout(Request::Audit, Duration::from_millis(50));
    println!(
        "audit with a 50 ms timeout: {result:?} (the account keeps running: {})",
        account.is_alive()
    );

    println!("\n-- a crash seen through a link and a monitor");
    let (report, reports) = crossbeam_channel::unbounded();
    let auditor = runtime.spawn_worker(Auditor { report })?;
    auditor.call(account.pid())??;
    let monitor = runtime.monitor(&account.pid());
    let answer = account.call(Request::Withdraw(1_000_000))?;
    println!("withdraw 1,000,000: {answer:?}");
    let down = monitor.wait(Duration::from_secs(5)).ok_or("no DOWN")?;
    println!(
        "this thread's monitor got DOWN for {}: {}",
        down.pid, down.reason
    );
    println!("{}", reports.recv_timeout(Duration::from_secs(5))?);
    println!(
        "name released before the DOWN: whereis(\"account\") = {:?}",
        runtime.whereis("account")
    );
    println!(
        "a call to the dead account: {:?}",
        account.call(Request::Balance)
    );

    println!("\n-- kill cannot be trapped");
    let kill_monitor = runtime.monitor(&auditor.pid());
    runtime.kill(&auditor.pid());
    println!(
        "auditor DOWN: {}",
        kill_monitor
            .wait(Duration::from_secs(5))
            .ok_or("no DOWN")?
            .reason
    );

    supervision_tree(&runtime)?;

    println!("\n-- a Tablestore Tunnel consumer against the protocol emulator");
    // The Tablestore tunnel service cannot be reached from here: the emulator is a real
    // HTTP server on loopback speaking the documented protocol.
    let report = otp_threads_tablestore_emulator::demo::run(&runtime.handle(), 20_000)?;
    println!(
        "{} changes written, {} received (none lost); the worker was killed halfway and its \
         replacement resumed from the checkpoints: {} records of unacknowledged batches came again, \
         {} sessions, {:?}",
        report.written, report.received, report.redelivered, report.sessions, report.elapsed
    );

    two_nodes()?;

    println!("\n-- the node's supervision tree, as the observer sees it");
    print!("{}", runtime.snapshot().tree_text());

    runtime.shutdown(Duration::from_secs(5))?;
    println!(
        "\nshut down, every thread joined; tour took {:?}",
        started.elapsed()
    );
    Ok(())
}
