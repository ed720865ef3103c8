//! The supervisor's callbacks: starting children, handling their exits (restart
//! decision, strategy, intensity, retries), the runtime API, and the orderly stop.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::children::{Child, ChildCounts, ChildInfo, ChildState, count};
use super::shutdown::{Stopping, shutdown_child, shutdown_group};
use super::spec::{ChildSpec, Restart};
use super::{Children, Strategy, Supervisor, SupervisorError, validate};
use crate::error::Error;
use crate::exit::ExitReason;
use crate::observer::SupervisorView;
use crate::pid::Pid;
use crate::worker::{Context, Info, ReplyTo, Step, Worker};

/// A request to a supervisor; made by [`SupervisorRef`](super::SupervisorRef) and
/// [`DynamicSupervisorRef`](super::DynamicSupervisorRef).
pub struct Request(pub(crate) RequestKind);

pub(crate) enum RequestKind {
    StartChild(ChildSpec),
    TerminateChild(String),
    TerminateDynamic(Pid),
    RestartChild(String),
    DeleteChild(String),
    WhichChildren,
    CountChildren,
    FindChild(String),
}

/// A supervisor's reply to a [`Request`].
pub struct Response(pub(crate) Result<Outcome, SupervisorError>);

#[derive(Debug)]
pub(crate) enum Outcome {
    Started(Pid),
    Done,
    Children(Vec<ChildInfo>),
    Child(ChildInfo),
    Counts(ChildCounts),
}

/// A supervisor's message to itself (OTP's `try_again_restart` cast).
pub struct Internal(RetryKey);

#[derive(Debug)]
enum RetryKey {
    Static(String),
    Dynamic(u64),
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.0 {
            RequestKind::StartChild(_) => "StartChild",
            RequestKind::TerminateChild(_) => "TerminateChild",
            RequestKind::TerminateDynamic(_) => "TerminateDynamic",
            RequestKind::RestartChild(_) => "RestartChild",
            RequestKind::DeleteChild(_) => "DeleteChild",
            RequestKind::WhichChildren => "WhichChildren",
            RequestKind::CountChildren => "CountChildren",
            RequestKind::FindChild(_) => "FindChild",
        };
        write!(f, "Request::{name}")
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Response").field(&self.0).finish()
    }
}

impl fmt::Debug for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Internal").field(&self.0).finish()
    }
}

/// Runs a child's start function and links the child (a no-op if the start function
/// linked it, as it should). A panic in the start function is a failed start.
fn start_process(ctx: &mut Context<Supervisor>, spec: &mut ChildSpec) -> Result<Pid, Error> {
    let pid = match catch_unwind(AssertUnwindSafe(|| (spec.start)(ctx))) {
        Ok(result) => result?,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            return Err(Error::InitFailed(ExitReason::Panic(message.into())));
        }
    };
    // Trapping exits, a dead pid gives an EXIT with NoProc, handled as the child's exit.
    let _ = ctx.link(&pid);
    if let Some(view) = ctx.cell.supervision.get() {
        view.child_started(&spec.id, pid);
    }
    Ok(pid)
}

/// What the observer shows of this supervisor (src/observer/supervision.rs).
fn view(ctx: &Context<Supervisor>) -> Option<&SupervisorView> {
    ctx.cell.supervision.get().map(|view| &**view)
}

fn stopping(child: &Child, pid: Pid) -> Stopping<'_> {
    Stopping {
        id: &child.spec.id,
        pid,
        shutdown: child.spec.shutdown,
        restart: child.spec.restart,
    }
}

/// Stops the running children of `children`, last first.
fn stop_in_reverse(ctx: &mut Context<Supervisor>, children: &mut [Child]) {
    for child in children.iter_mut().rev() {
        if let ChildState::Running(pid) = child.state {
            shutdown_child(ctx, stopping(child, pid));
        }
        child.state = ChildState::Terminated;
    }
}

fn retry_later(ctx: &mut Context<Supervisor>, key: RetryKey) {
    ctx.handle().send(Internal(key));
}

impl Supervisor {
    fn check(&self) -> Result<(), SupervisorError> {
        validate::check_period(self.period)?;
        if let Children::Static(children) = &self.children {
            validate::check_specs(children.iter().map(|child| &child.spec))?;
        }
        Ok(())
    }

    /// Leaves the precise error for the starter and fails `init`.
    fn fail_start(&mut self, error: SupervisorError) -> Result<(), ExitReason> {
        let reason = match &error {
            SupervisorError::ChildStartFailed { .. } => ExitReason::shutdown_with(&error),
            _ => ExitReason::error(&error),
        };
        if let Some(slot) = self.report.take() {
            *slot.lock() = Some(error);
        }
        Err(reason)
    }

    fn log_exit(&self, ctx: &Context<Supervisor>, id: &str, pid: Pid, reason: &ExitReason) {
        if reason.is_normal_stop() {
            log::debug!(
                "supervisor {}: child {id} ({pid}) exited: {reason}",
                ctx.pid()
            );
        } else {
            log::error!(
                "supervisor {}: child {id} ({pid}) terminated: {reason}",
                ctx.pid()
            );
        }
    }

    /// `true` if the restart fits in the intensity; otherwise logs and says no.
    fn add_restart(&mut self, ctx: &Context<Supervisor>) -> bool {
        // The runtime's clock: a manual clock in tests moves the window exactly.
        let now = ctx.now();
        let allowed = self.restarts.add_restart(now);
        if let Some(view) = view(ctx) {
            view.restart_added(now);
        }
        if allowed {
            return true;
        }
        log::error!(
            "supervisor {}: reached the maximum restart intensity ({} in {:?}); shutting down",
            ctx.pid(),
            self.max_restarts,
            self.period
        );
        false
    }

    /// A child's EXIT: the restart decision (OTP's `do_restart`).
    fn child_exited(
        &mut self,
        pid: Pid,
        reason: ExitReason,
        ctx: &mut Context<Supervisor>,
    ) -> Step<Self> {
        if let Some(view) = view(ctx) {
            view.child_exited(pid, &reason);
        }
        match &mut self.children {
            Children::Static(children) => {
                let Some(index) = children
                    .iter()
                    .position(|child| child.state == ChildState::Running(pid))
                else {
                    log::debug!("supervisor {}: EXIT from non-child {pid}", ctx.pid());
                    return Step::Next;
                };
                let restart = children[index].spec.restart;
                let id = children[index].spec.id.clone();
                self.log_exit(ctx, &id, pid, &reason);
                let Children::Static(children) = &mut self.children else {
                    unreachable!()
                };
                if !restart.restarts_after(&reason) {
                    if restart == Restart::Temporary {
                        children.remove(index);
                        if let Some(view) = view(ctx) {
                            view.child_removed(&id);
                        }
                    } else {
                        children[index].state = ChildState::Terminated;
                    }
                    return Step::Next;
                }
                children[index].state = ChildState::Terminated;
                self.restart_static(&id, ctx)
            }
            Children::Dynamic { children, .. } => {
                let Some(&key) = children.by_pid.get(&pid) else {
                    log::debug!("supervisor {}: EXIT from non-child {pid}", ctx.pid());
                    return Step::Next;
                };
                let restart = children.entries[&key].spec.restart;
                let id = children.entries[&key].spec.id.clone();
                self.log_exit(ctx, &id, pid, &reason);
                let Children::Dynamic { children, .. } = &mut self.children else {
                    unreachable!()
                };
                if !restart.restarts_after(&reason) {
                    children.remove(key);
                    return Step::Next;
                }
                children.set_state(key, ChildState::Terminated);
                self.restart_dynamic(key, ctx)
            }
        }
    }

    /// Restarts the static child `id` by the strategy; counts against the intensity.
    fn restart_static(&mut self, id: &str, ctx: &mut Context<Supervisor>) -> Step<Self> {
        if !self.add_restart(ctx) {
            return Step::Stop(ExitReason::Shutdown);
        }
        let strategy = self.strategy;
        let Children::Static(children) = &mut self.children else {
            return Step::Next;
        };
        let Some(index) = children.iter().position(|child| child.spec.id == id) else {
            return Step::Next;
        };
        let from = match strategy {
            Strategy::OneForOne => {
                let child = &mut children[index];
                match start_process(ctx, &mut child.spec) {
                    Ok(pid) => child.state = ChildState::Running(pid),
                    // Ignored on restart: kept without a pid, as OTP keeps `undefined`.
                    Err(Error::Ignored) => child.state = ChildState::Terminated,
                    Err(error) => {
                        log::error!(
                            "supervisor {}: restarting child {id} failed: {error}; trying again",
                            ctx.pid()
                        );
                        child.state = ChildState::Restarting;
                        retry_later(ctx, RetryKey::Static(id.to_owned()));
                    }
                }
                return Step::Next;
            }
            Strategy::OneForAll => 0,
            Strategy::RestForOne => index,
        };
        // OTP's restart_multiple_children: stop the affected children (last first),
        // drop the temporary ones, then start the rest in order.
        stop_in_reverse(ctx, &mut children[from..]);
        let mut kept = children.split_off(from);
        kept.retain(|child| child.spec.restart != Restart::Temporary);
        let mut failed = false;
        for child in &mut kept {
            if failed {
                continue;
            }
            match start_process(ctx, &mut child.spec) {
                Ok(pid) => child.state = ChildState::Running(pid),
                Err(Error::Ignored) => child.state = ChildState::Terminated,
                Err(error) => {
                    log::error!(
                        "supervisor {}: restarting child {} failed: {error}; trying again",
                        ctx.pid(),
                        child.spec.id
                    );
                    child.state = ChildState::Restarting;
                    retry_later(ctx, RetryKey::Static(child.spec.id.clone()));
                    failed = true;
                }
            }
        }
        children.append(&mut kept);
        Step::Next
    }

    /// Restarts the dynamic child `key`; counts against the intensity.
    fn restart_dynamic(&mut self, key: u64, ctx: &mut Context<Supervisor>) -> Step<Self> {
        if !self.add_restart(ctx) {
            return Step::Stop(ExitReason::Shutdown);
        }
        let Children::Dynamic { children, .. } = &mut self.children else {
            return Step::Next;
        };
        let Some(child) = children.entries.get_mut(&key) else {
            return Step::Next;
        };
        let state = match start_process(ctx, &mut child.spec) {
            Ok(pid) => ChildState::Running(pid),
            // A dynamic child that ignores its restart is gone: there is no id to keep.
            Err(Error::Ignored) => {
                children.remove(key);
                return Step::Next;
            }
            Err(error) => {
                log::error!(
                    "supervisor {}: restarting child {} failed: {error}; trying again",
                    ctx.pid(),
                    child.spec.id
                );
                retry_later(ctx, RetryKey::Dynamic(key));
                ChildState::Restarting
            }
        };
        children.set_state(key, state);
        Step::Next
    }

    /// A `try_again_restart`: only if the child is still waiting for it.
    fn try_again(&mut self, key: RetryKey, ctx: &mut Context<Supervisor>) -> Step<Self> {
        match (&self.children, key) {
            (Children::Static(children), RetryKey::Static(id)) => {
                let restarting = children
                    .iter()
                    .any(|child| child.spec.id == id && child.state == ChildState::Restarting);
                if restarting {
                    return self.restart_static(&id, ctx);
                }
            }
            (Children::Dynamic { children, .. }, RetryKey::Dynamic(key)) => {
                let restarting = children
                    .entries
                    .get(&key)
                    .is_some_and(|child| child.state == ChildState::Restarting);
                if restarting {
                    return self.restart_dynamic(key, ctx);
                }
            }
            _ => {}
        }
        Step::Next
    }

    fn start_child(
        &mut self,
        mut spec: ChildSpec,
        ctx: &mut Context<Supervisor>,
    ) -> Result<Outcome, SupervisorError> {
        validate::check_spec(&spec)?;
        match &mut self.children {
            Children::Static(children) => {
                if let Some(existing) = children.iter().find(|child| child.spec.id == spec.id) {
                    return Err(match existing.state {
                        ChildState::Running(pid) => {
                            SupervisorError::AlreadyStarted { id: spec.id, pid }
                        }
                        _ => SupervisorError::AlreadyPresent { id: spec.id },
                    });
                }
                let pid = match start_process(ctx, &mut spec) {
                    Ok(pid) => pid,
                    // OTP's `{ok, undefined}`: the spec is kept, unless temporary.
                    Err(Error::Ignored) => {
                        let id = spec.id.clone();
                        if spec.restart != Restart::Temporary {
                            children.push(Child {
                                spec,
                                state: ChildState::Terminated,
                            });
                        }
                        return Err(SupervisorError::Ignored { id });
                    }
                    Err(error) => {
                        return Err(SupervisorError::ChildStartFailed { id: spec.id, error });
                    }
                };
                children.push(Child {
                    spec,
                    state: ChildState::Running(pid),
                });
                Ok(Outcome::Started(pid))
            }
            Children::Dynamic {
                children,
                max_children,
            } => {
                if let Some(max) = *max_children
                    && children.len() >= max
                {
                    return Err(SupervisorError::MaxChildren { max });
                }
                let pid = start_process(ctx, &mut spec).map_err(|error| match error {
                    Error::Ignored => SupervisorError::Ignored {
                        id: spec.id.clone(),
                    },
                    error => SupervisorError::ChildStartFailed {
                        id: spec.id.clone(),
                        error,
                    },
                })?;
                children.insert(Child {
                    spec,
                    state: ChildState::Running(pid),
                });
                Ok(Outcome::Started(pid))
            }
        }
    }

    fn terminate_child(
        &mut self,
        id: String,
        ctx: &mut Context<Supervisor>,
    ) -> Result<Outcome, SupervisorError> {
        let Children::Static(children) = &mut self.children else {
            return Err(SupervisorError::Unsupported("terminate_child by id"));
        };
        let Some(index) = children.iter().position(|child| child.spec.id == id) else {
            return Err(SupervisorError::NotFound { id });
        };
        if let ChildState::Running(pid) = children[index].state {
            shutdown_child(ctx, stopping(&children[index], pid));
        }
        if children[index].spec.restart == Restart::Temporary {
            let child = children.remove(index);
            if let Some(view) = view(ctx) {
                view.child_removed(&child.spec.id);
            }
        } else {
            children[index].state = ChildState::Terminated;
        }
        Ok(Outcome::Done)
    }

    fn terminate_dynamic(
        &mut self,
        pid: Pid,
        ctx: &mut Context<Supervisor>,
    ) -> Result<Outcome, SupervisorError> {
        let Children::Dynamic { children, .. } = &mut self.children else {
            return Err(SupervisorError::Unsupported("terminate_child by pid"));
        };
        let Some(&key) = children.by_pid.get(&pid) else {
            return Err(SupervisorError::NotFound {
                id: pid.to_string(),
            });
        };
        if let Some(child) = children.remove(key) {
            shutdown_child(ctx, stopping(&child, pid));
        }
        Ok(Outcome::Done)
    }

    fn restart_child(
        &mut self,
        id: String,
        ctx: &mut Context<Supervisor>,
    ) -> Result<Outcome, SupervisorError> {
        let Children::Static(children) = &mut self.children else {
            return Err(SupervisorError::Unsupported("restart_child"));
        };
        let Some(child) = children.iter_mut().find(|child| child.spec.id == id) else {
            return Err(SupervisorError::NotFound { id });
        };
        match child.state {
            ChildState::Running(_) => Err(SupervisorError::Running { id }),
            ChildState::Restarting => Err(SupervisorError::Restarting { id }),
            ChildState::Terminated => {
                let pid = start_process(ctx, &mut child.spec).map_err(|error| match error {
                    Error::Ignored => SupervisorError::Ignored { id: id.clone() },
                    error => SupervisorError::ChildStartFailed {
                        id: id.clone(),
                        error,
                    },
                })?;
                child.state = ChildState::Running(pid);
                Ok(Outcome::Started(pid))
            }
        }
    }

    fn delete_child(
        &mut self,
        id: String,
        ctx: &Context<Supervisor>,
    ) -> Result<Outcome, SupervisorError> {
        let Children::Static(children) = &mut self.children else {
            return Err(SupervisorError::Unsupported("delete_child"));
        };
        let Some(index) = children.iter().position(|child| child.spec.id == id) else {
            return Err(SupervisorError::NotFound { id });
        };
        match children[index].state {
            ChildState::Running(_) => Err(SupervisorError::Running { id }),
            ChildState::Restarting => Err(SupervisorError::Restarting { id }),
            ChildState::Terminated => {
                children.remove(index);
                if let Some(view) = view(ctx) {
                    view.child_removed(&id);
                }
                Ok(Outcome::Done)
            }
        }
    }

    /// A static child by id, for [`ChildRef`](super::ChildRef).
    fn find_child(&self, id: String) -> Result<Outcome, SupervisorError> {
        let Children::Static(children) = &self.children else {
            return Err(SupervisorError::Unsupported("a child by id"));
        };
        children
            .iter()
            .find(|child| child.spec.id == id)
            .map(|child| Outcome::Child(child.info()))
            .ok_or(SupervisorError::NotFound { id })
    }

    fn all_children(&self) -> Box<dyn Iterator<Item = &Child> + '_> {
        match &self.children {
            Children::Static(children) => Box::new(children.iter()),
            Children::Dynamic { children, .. } => Box::new(children.entries.values()),
        }
    }
}

impl Worker for Supervisor {
    type Call = Request;
    type Reply = Response;
    type Cast = ();
    type Info = Internal;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        ctx.trap_exit(true);
        let dynamic = matches!(self.children, Children::Dynamic { .. });
        let _ = ctx.cell.supervision.set(Box::new(SupervisorView::new(
            self.strategy,
            self.max_restarts,
            self.period,
            dynamic,
        )));
        if let Err(error) = self.check() {
            return self.fail_start(error);
        }
        if let Some(name) = self.name.clone()
            && let Err(error) = ctx.register(&name)
        {
            return self.fail_start(SupervisorError::Start(error));
        }
        let Children::Static(children) = &mut self.children else {
            return Ok(());
        };
        let mut index = 0;
        while index < children.len() {
            match start_process(ctx, &mut children[index].spec) {
                Ok(pid) => children[index].state = ChildState::Running(pid),
                // OTP's start_children: an ignored temporary child is dropped, any other
                // is kept without a pid.
                Err(Error::Ignored) if children[index].spec.restart == Restart::Temporary => {
                    children.remove(index);
                    continue;
                }
                Err(Error::Ignored) => children[index].state = ChildState::Terminated,
                Err(error) => {
                    let id = children[index].spec.id.clone();
                    log::error!(
                        "supervisor {}: child {id} failed to start: {error}",
                        ctx.pid()
                    );
                    stop_in_reverse(ctx, &mut children[..index]);
                    return self.fail_start(SupervisorError::ChildStartFailed { id, error });
                }
            }
            index += 1;
        }
        Ok(())
    }

    fn handle_call(
        &mut self,
        request: Request,
        reply: ReplyTo<Response>,
        ctx: &mut Context<Self>,
    ) -> Step<Self> {
        let outcome = match request.0 {
            RequestKind::StartChild(spec) => self.start_child(spec, ctx),
            RequestKind::TerminateChild(id) => self.terminate_child(id, ctx),
            RequestKind::TerminateDynamic(pid) => self.terminate_dynamic(pid, ctx),
            RequestKind::RestartChild(id) => self.restart_child(id, ctx),
            RequestKind::DeleteChild(id) => self.delete_child(id, ctx),
            // As OTP, the most recently started child first (its children list is kept
            // in reverse start order); a restarted child keeps its place.
            RequestKind::WhichChildren => {
                let mut children: Vec<ChildInfo> = self.all_children().map(Child::info).collect();
                children.reverse();
                Ok(Outcome::Children(children))
            }
            RequestKind::CountChildren => Ok(Outcome::Counts(count(self.all_children()))),
            RequestKind::FindChild(id) => self.find_child(id),
        };
        reply.reply(Response(outcome));
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Internal>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Exit(exit) => self.child_exited(exit.from, exit.reason, ctx),
            Info::Message(Internal(key)) => self.try_again(key, ctx),
            Info::Timer(..) | Info::Down(_) => Step::Next,
        }
    }

    fn terminate(&mut self, reason: &ExitReason, ctx: &mut Context<Self>) {
        log::debug!("supervisor {} stopping: {reason}", ctx.pid());
        match &mut self.children {
            Children::Static(children) => stop_in_reverse(ctx, children),
            Children::Dynamic { children, .. } => {
                let group = children
                    .entries
                    .values()
                    .filter_map(|child| match child.state {
                        ChildState::Running(pid) => Some(stopping(child, pid)),
                        _ => None,
                    })
                    .collect();
                shutdown_group(ctx, group);
                *children = Default::default();
            }
        }
    }
}
