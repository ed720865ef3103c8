//! Hub children: the [`HubChild`] trait a user implements, and the worker that runs
//! one on a node.
//!
//! Each copy of a child is an otp-threads worker under the hub's dynamic supervisor,
//! served over distribution: [`Hub::call`](crate::Hub::call) reaches
//! [`HubChild::handle_call`] from any node. A child that supports handover returns its
//! state from [`HubChild::prepare_handover_state`] (on the old node) and takes it in
//! [`HubChild::alter_handover_state`] (on the new node); the state travels as a term.

use std::sync::Arc;

use otp_threads::dist::{DistError, FromTerm, Term};
use otp_threads::{Context, ExitReason, Info, ReplyTo, Step, Worker, WorkerRef};

use crate::config::CopyMode;
use crate::coordinator::{Command, Coordinator, Shared};
use crate::wire::WireMsg;

/// What a child is: its id (placement key, unique in the hub) and its start argument.
#[derive(Clone, Debug, PartialEq)]
pub struct HubChildSpec {
    /// The child id; it decides the node through the hash ring.
    pub id: String,
    /// Passed to the [`ChildFactory`](crate::ChildFactory) on whichever node starts it.
    pub args: Term,
}

impl HubChildSpec {
    /// A spec with id `id` and argument `args`.
    pub fn new(id: impl Into<String>, args: Term) -> HubChildSpec {
        HubChildSpec {
            id: id.into(),
            args,
        }
    }
}

/// The behaviour of a hub child.
pub trait HubChild: Send + 'static {
    /// Runs as the copy starts, before it serves anything or merges a handed-over
    /// state. An error refuses the start: its reason reaches whoever started the
    /// child, on any node, as [`HubError::StartFailed`](crate::HubError::StartFailed).
    fn init(&mut self) -> Result<(), ExitReason> {
        Ok(())
    }

    /// A call from [`Hub::call`](crate::Hub::call) (or any node's `gen_server:call`).
    fn handle_call(&mut self, request: Term) -> Term;

    /// A cast or plain message; ignored by default.
    fn handle_cast(&mut self, message: Term) {
        let _ = message;
    }

    /// The state to hand to the next copy (hot swap, graceful leave); `None` (the
    /// default) hands nothing over.
    fn prepare_handover_state(&mut self) -> Option<Term> {
        None
    }

    /// Takes the state handed over by the previous copy; ignored by default.
    fn alter_handover_state(&mut self, state: Term) {
        let _ = state;
    }

    /// Active-passive replication with a
    /// [`redundancy_signal`](crate::HubConfig::redundancy_signal): this copy is now
    /// `mode`. Called as the copy starts (after `init` and any handed-over state,
    /// before it serves anything) and whenever a join or leave changes its role, for
    /// the roles the signal setting names. Ignored by default.
    fn redundancy_signal(&mut self, mode: CopyMode) {
        let _ = mode;
    }
}

/// A local request to a child worker.
pub(crate) enum ChildCall {
    /// A user call.
    User(Term),
    /// Return the handover state (graceful leave), `{some, State}` or `none`.
    PrepareState,
}

impl FromTerm for ChildCall {
    fn from_term(term: Term) -> Result<Self, DistError> {
        Ok(ChildCall::User(term))
    }
}

/// A cast to a child worker.
pub(crate) enum ChildCast {
    /// A user cast.
    User(Term),
    /// Merge this handed-over state.
    Restore(Term),
    /// Active-passive: this copy's role now.
    Signal(CopyMode),
    /// Hot swap: send the state to the new copy on `target`, then tell the coordinator.
    HandOver {
        target: String,
        confirm_to: Option<String>,
    },
}

impl FromTerm for ChildCast {
    fn from_term(term: Term) -> Result<Self, DistError> {
        Ok(ChildCast::User(term))
    }
}

/// The worker that runs one copy of a child.
pub(crate) struct ChildProcess {
    pub(crate) id: String,
    pub(crate) inner: Box<dyn HubChild>,
    /// A handed-over state to merge before serving.
    pub(crate) restore: Option<Term>,
    /// The role to tell the child of as it starts (filtered by the signal setting).
    pub(crate) initial_mode: Option<CopyMode>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) coordinator: WorkerRef<Coordinator>,
}

impl Worker for ChildProcess {
    type Call = ChildCall;
    type Reply = Term;
    type Cast = ChildCast;
    type Info = Term;
    type Continue = ();

    fn init(&mut self, ctx: &mut Context<Self>) -> Result<(), ExitReason> {
        self.inner.init()?;
        if let Some(state) = self.restore.take() {
            self.inner.alter_handover_state(state);
        }
        if let Some(mode) = self.initial_mode {
            self.inner.redundancy_signal(mode);
        }
        self.shared.node.serve(&ctx.handle());
        self.coordinator.cast(Command::ChildUp {
            id: self.id.clone(),
            handle: ctx.handle(),
        });
        Ok(())
    }

    fn handle_call(
        &mut self,
        request: ChildCall,
        reply: ReplyTo<Term>,
        _: &mut Context<Self>,
    ) -> Step<Self> {
        let answer = match request {
            ChildCall::User(request) => self.inner.handle_call(request),
            ChildCall::PrepareState => {
                let state = self.inner.prepare_handover_state();
                crate::wire::option_term(&state)
            }
        };
        reply.reply(answer);
        Step::Next
    }

    fn handle_cast(&mut self, message: ChildCast, ctx: &mut Context<Self>) -> Step<Self> {
        match message {
            ChildCast::User(message) => self.inner.handle_cast(message),
            ChildCast::Restore(state) => self.inner.alter_handover_state(state),
            ChildCast::Signal(mode) => self.inner.redundancy_signal(mode),
            ChildCast::HandOver { target, confirm_to } => {
                let state = self.inner.prepare_handover_state();
                let handover = WireMsg::Handover {
                    id: self.id.clone(),
                    state,
                    confirm_to,
                };
                let to = (self.shared.name.as_str(), target.as_str());
                self.shared
                    .messages_sent
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(error) = self.shared.node.send(ctx.pid(), to, &handover) {
                    log::warn!("handover of {} to {target} failed: {error}", self.id);
                }
                self.coordinator.cast(Command::RetentionHandled {
                    id: self.id.clone(),
                });
            }
        }
        Step::Next
    }

    fn handle_info(&mut self, info: Info<Term>, _: &mut Context<Self>) -> Step<Self> {
        if let Info::Message(message) = info {
            self.inner.handle_cast(message);
        }
        Step::Next
    }
}
