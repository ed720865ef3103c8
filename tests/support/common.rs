//! Test support: a scriptable worker that reports everything it sees, in the manner
//! of the helper modules of OTP's test suites (`supervisor_1`).
#![allow(dead_code)]

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use otp_threads::{
    Context, Down, Exit, ExitReason, Info, MonitorRef, Pid, ReplyTo, RuntimeHandle, Step, TimerRef,
    Worker, WorkerRef,
};

pub use otp_threads_testkit::WAIT;

/// What a probe reports to its test.
#[derive(Debug, PartialEq)]
pub enum Event {
    Message(String),
    Down(Down),
    Exit(Exit),
    Timer(TimerRef, String),
    Terminated(ExitReason),
    Continued(u32),
    Registered(Result<(), otp_threads::Error>),
}

/// Commands a probe runs inside `handle_call` (or `handle_cast`).
pub enum Command {
    TrapExit(bool),
    Link(Pid),
    Unlink(Pid),
    Monitor(Pid),
    MonitorName(String),
    Demonitor(MonitorRef, bool),
    /// Monitor, kill, then demonitor, all inside one callback: the DOWN is in the
    /// mailbox before the demonitor.
    MonitorKillDemonitor(Pid, bool),
    /// Monitor and kill `pid`, then run these demonitors in order, all in one callback
    /// (the DOWN is in the mailbox before the first): each is `(flush, info)`, and the
    /// reply lists their results.
    MonitorKillThenDemonitor(Pid, Vec<(bool, bool)>),
    /// `demonitor_info(reference, flush)`.
    DemonitorInfo(MonitorRef, bool),
    Exit(Pid, ExitReason),
    Stop(ExitReason),
    /// Stop with `reason` without replying; the token is dropped in the callback.
    StopWithoutReply(ExitReason),
    /// Stop with `reason` without replying; the token is kept in the worker's state
    /// (dropped after the worker exited).
    StopKeepingReply(ExitReason),
    Panic(String),
    Send(Pid, String),
    SendAfter(String, Duration),
    CancelTimer(TimerRef),
    ReadTimer(TimerRef),
    SendAt(String, std::time::Instant),
    Register(String),
    SpawnLink(Probe),
    /// Start a probe with this one as its parent, not linked.
    Spawn(Probe),
    /// Say so on `entered`, then block in the callback until `release` is dropped
    /// or sends.
    Block {
        entered: Sender<()>,
        release: Receiver<()>,
    },
    /// Like `Block`, then stop with `reason` when released.
    BlockThenStop {
        entered: Sender<()>,
        release: Receiver<()>,
        reason: ExitReason,
    },
    /// Keep the reply token and hand it to the test.
    KeepReply(Sender<ReplyTo<Reply>>),
    /// Drop the reply token unanswered.
    DropReply,
    Continue(u32),
    /// Re-register this name when a trapped EXIT arrives.
    ReRegisterOnExit(String),
    Ping,
    /// Call `Ping` on the probe registered under this name, from this probe.
    PingByName(String),
    /// Send a message to the plain-thread process `pid` (a `Process<String>`).
    SendToProcess(Pid, String),
}

#[derive(Debug)]
pub enum Reply {
    Ok,
    Pid(Pid),
    Monitor(MonitorRef),
    Timer(TimerRef),
    Bool(bool),
    Bools(Vec<bool>),
    TimeLeft(Option<Duration>),
    Error(otp_threads::Error),
}

/// The scriptable worker.
pub struct Probe {
    events: Sender<Event>,
    init: InitBehaviour,
    reregister_on_exit: Option<String>,
    kept_replies: Vec<ReplyTo<Reply>>,
}

#[derive(Clone)]
pub enum InitBehaviour {
    Ok,
    TrapExit,
    Fail(ExitReason),
    Panic,
    /// `init` answers `ignore`.
    Ignore,
}

impl Probe {
    pub fn new() -> (Probe, Receiver<Event>) {
        Probe::with_init(InitBehaviour::Ok)
    }

    pub fn with_init(init: InitBehaviour) -> (Probe, Receiver<Event>) {
        let (events, receiver) = unbounded();
        (
            Probe {
                events,
                init,
                reregister_on_exit: None,
                kept_replies: Vec::new(),
            },
            receiver,
        )
    }

    fn report(&self, event: Event) {
        let _ = self.events.send(event);
    }
}

impl Worker for Probe {
    type Call = Command;
    type Reply = Reply;
    type Cast = Command;
    type Info = String;
    type Continue = u32;

    fn init_outcome(&mut self, ctx: &mut Context<Self>) -> otp_threads::InitOutcome<Self> {
        use otp_threads::InitOutcome;
        match &self.init {
            InitBehaviour::Ok => InitOutcome::Ready,
            InitBehaviour::TrapExit => {
                ctx.trap_exit(true);
                InitOutcome::Ready
            }
            InitBehaviour::Fail(reason) => InitOutcome::Stop(reason.clone()),
            InitBehaviour::Panic => panic!("init panicked on purpose"),
            InitBehaviour::Ignore => InitOutcome::Ignore,
        }
    }

    fn handle_call(
        &mut self,
        command: Command,
        reply: ReplyTo<Reply>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        self.run(command, Some(reply), ctx)
    }

    fn handle_cast(&mut self, command: Command, ctx: &mut Context<Self>) -> Step<Self> {
        self.run(command, None, ctx)
    }

    fn handle_info(&mut self, info: Info<String>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(message) => self.report(Event::Message(message)),
            Info::Timer(timer, message) => self.report(Event::Timer(timer, message)),
            Info::Down(down) => self.report(Event::Down(down)),
            Info::Exit(exit) => {
                if let Some(name) = &self.reregister_on_exit {
                    let result = ctx.register(name);
                    self.report(Event::Registered(result));
                }
                self.report(Event::Exit(exit));
            }
        }
        Step::Next
    }

    fn handle_continue(&mut self, step: u32, _: &mut Context<Self>) -> Step<Self> {
        self.report(Event::Continued(step));
        Step::Next
    }

    fn terminate(&mut self, reason: &ExitReason, _: &mut Context<Self>) {
        self.report(Event::Terminated(reason.clone()));
    }
}

impl Probe {
    fn run(
        &mut self,
        command: Command,
        reply: Option<ReplyTo<Reply>>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let mut step = Step::Next;
        let answer = match command {
            Command::TrapExit(trap) => Reply::Bool(ctx.trap_exit(trap)),
            Command::Link(pid) => match ctx.link(&pid) {
                Ok(()) => Reply::Ok,
                Err(error) => Reply::Error(error),
            },
            Command::Unlink(pid) => {
                ctx.unlink(&pid);
                Reply::Ok
            }
            Command::Monitor(pid) => Reply::Monitor(ctx.monitor(&pid)),
            Command::MonitorName(name) => Reply::Monitor(ctx.monitor_name(&name)),
            Command::Demonitor(reference, flush) => Reply::Bool(ctx.demonitor(reference, flush)),
            Command::MonitorKillDemonitor(pid, flush) => {
                let reference = ctx.monitor(&pid);
                ctx.exit(&pid, ExitReason::Kill);
                Reply::Bool(ctx.demonitor_info(reference, flush))
            }
            Command::MonitorKillThenDemonitor(pid, demonitors) => {
                let reference = ctx.monitor(&pid);
                ctx.exit(&pid, ExitReason::Kill);
                Reply::Bools(
                    demonitors
                        .into_iter()
                        .map(|(flush, info)| {
                            if info {
                                ctx.demonitor_info(reference, flush)
                            } else {
                                ctx.demonitor(reference, flush)
                            }
                        })
                        .collect(),
                )
            }
            Command::DemonitorInfo(reference, flush) => {
                Reply::Bool(ctx.demonitor_info(reference, flush))
            }
            Command::Exit(pid, reason) => {
                ctx.exit(&pid, reason);
                Reply::Ok
            }
            Command::StopWithoutReply(reason) => {
                drop(reply);
                return Step::Stop(reason);
            }
            Command::StopKeepingReply(reason) => {
                self.kept_replies.extend(reply);
                return Step::Stop(reason);
            }
            Command::Stop(reason) => {
                step = Step::Stop(reason);
                Reply::Ok
            }
            Command::Panic(message) => panic!("{message}"),
            Command::Send(pid, message) => {
                let target: WorkerRef<Probe> = ctx.runtime().worker_ref(&pid).expect("a probe");
                target.send(message);
                Reply::Ok
            }
            Command::SendAfter(message, delay) => Reply::Timer(ctx.send_after(message, delay)),
            Command::CancelTimer(timer) => Reply::TimeLeft(ctx.cancel_timer(timer)),
            Command::ReadTimer(timer) => Reply::TimeLeft(ctx.read_timer(timer)),
            Command::SendAt(message, deadline) => Reply::Timer(ctx.send_at(message, deadline)),
            Command::Register(name) => match ctx.register(&name) {
                Ok(()) => Reply::Ok,
                Err(error) => Reply::Error(error),
            },
            Command::SpawnLink(probe) => match ctx.spawn_link(probe) {
                Ok(child) => Reply::Pid(child.pid()),
                Err(error) => Reply::Error(error),
            },
            Command::BlockThenStop {
                entered,
                release,
                reason,
            } => {
                let _ = entered.send(());
                let _ = release.recv();
                step = Step::Stop(reason);
                Reply::Ok
            }
            Command::Spawn(probe) => match ctx.spawn(probe) {
                Ok(child) => Reply::Pid(child.pid()),
                Err(error) => Reply::Error(error),
            },
            Command::Block { entered, release } => {
                let _ = entered.send(());
                let _ = release.recv();
                Reply::Ok
            }
            Command::KeepReply(keeper) => {
                if let Some(reply) = reply {
                    let _ = keeper.send(reply);
                }
                return Step::Next;
            }
            Command::DropReply => return Step::Next,
            Command::Continue(value) => {
                step = Step::Continue(value);
                Reply::Ok
            }
            Command::ReRegisterOnExit(name) => {
                self.reregister_on_exit = Some(name);
                Reply::Ok
            }
            Command::Ping => Reply::Ok,
            Command::SendToProcess(pid, message) => {
                match ctx.runtime().process_ref::<String>(&pid) {
                    Ok(process) => {
                        process.send(message);
                        Reply::Ok
                    }
                    Err(error) => Reply::Error(error),
                }
            }
            Command::PingByName(name) => {
                match ctx
                    .runtime()
                    .call_name::<Probe>(name.as_str(), Command::Ping)
                {
                    Ok(reply) => reply,
                    Err(error) => Reply::Error(error),
                }
            }
        };
        if let Some(reply) = reply {
            reply.reply(answer);
        }
        step
    }
}

/// Runs a command through a call and returns the reply.
pub fn ask(probe: &WorkerRef<Probe>, command: Command) -> Reply {
    probe
        .call_timeout(command, WAIT)
        .expect("the probe answers")
}

/// The next event, waiting at most [`WAIT`].
pub fn next(events: &Receiver<Event>) -> Event {
    events
        .recv_timeout(WAIT)
        .expect("an event within the wait bound")
}

/// Waits for a plain-thread DOWN of `pid`.
pub fn wait_down(runtime: &RuntimeHandle, pid: &Pid) -> Down {
    runtime
        .monitor(pid)
        .wait(WAIT)
        .expect("a DOWN within the wait bound")
}

/// Spawns a probe.
pub fn probe(runtime: &RuntimeHandle) -> (WorkerRef<Probe>, Receiver<Event>) {
    let (probe, events) = Probe::new();
    (runtime.spawn_worker(probe).expect("a probe starts"), events)
}

/// Spawns a probe that traps exits from its init.
pub fn trapping_probe(runtime: &RuntimeHandle) -> (WorkerRef<Probe>, Receiver<Event>) {
    let (probe, events) = Probe::with_init(InitBehaviour::TrapExit);
    (runtime.spawn_worker(probe).expect("a probe starts"), events)
}

#[allow(unused_imports)]
pub use otp_threads_testkit::os_thread_count;
