//! `rex`: this node answers `rpc:call` and `erpc:call` from other nodes.
//!
//! Contract:
//! * A BEAM node's `rpc:call(Node, M, F, A)` reaches us in one of two ways, and both
//!   are answered: as a `gen_server` call to the registered name `rex` with the
//!   request `{call, M, F, A, GroupLeader}` (also `block_call`, the hidden-node form
//!   `{From, {call, M, F, A, GL}}` sent as a plain message, and the cast
//!   `{'$gen_cast', {cast, M, F, A, GL}}`), or, since we advertise `DFLAG_SPAWN`, as a
//!   `SPAWN_REQUEST` of `erpc:execute_call(Ref, M, F, A)` (what OTP 23+'s `rpc:call`
//!   and `erpc:call` send; see `spawn.rs`).
//! * `M:F(A...)` is looked up by module and function name: first among the functions
//!   registered with [`Node::register_rpc`] (a registration replaces a built-in of the
//!   same name), then among the built-ins of `rex/builtins.rs` (the introspection
//!   calls Erlang's tools make; that file's docs list them and what each field means
//!   for a thread). A handler gets the argument list and checks its arity itself.
//! * The answer is what BEAM's rex answers: the value; for an unknown function
//!   `{badrpc, {'EXIT', {undef, [{M, F, A, []}]}}}`; for a handler's
//!   [`Exception::Error`] `{badrpc, {'EXIT', {Reason, [{M, F, Arity, []}]}}}`; for
//!   [`Exception::Exit`] `{badrpc, {'EXIT', Reason}}`; for [`Exception::Throw`] the
//!   thrown value itself (rex's `catch` returns it). Through `erpc` the same outcomes
//!   travel as `erpc:execute_call`'s exit reasons (`{Ref, return | throw | exit, V}`,
//!   `{Ref, error, Reason, Stack}`), so the caller's `rpc:call` / `erpc:call` builds
//!   exactly the result it builds for a BEAM node.
//! * A handler that panics answers `{badrpc, {'EXIT', {{rust_panic, Message},
//!   Stack}}}` (an `error` exception) and the node goes on; the panic is logged.
//! * Handlers run on the node's call threads, never on a connection's reader, so a
//!   slow handler delays neither ticks nor other traffic. The light built-ins (those
//!   that read one table: `node`, `processes`, `process_info` …) run on the reader,
//!   saving a thread hop. A handler still running when the node stops is waited for
//!   (as a served call is, see [`Node::shutdown`]): handlers should return.
//! * `erpc:call`'s timeout does not stop a handler (there is no process to kill): it
//!   runs to its end and its result is dropped by the caller's node.

mod builtins;
pub(super) mod observer_backend;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use parking_lot::RwLock;

use super::{Node, NodeInner};
use crate::dist::control::WirePid;
use crate::dist::error::DistError;
use crate::dist::term::{Term, ToTerm};

/// An Erlang exception raised by an rpc handler: the class and the reason.
///
/// This is not an error of this library but the outcome an Erlang function has when
/// it does not return: the caller sees it as BEAM shows that class (see the module
/// docs).
#[derive(Clone, Debug, PartialEq)]
pub enum Exception {
    /// `erlang:error(Reason)`: the caller gets `{badrpc, {'EXIT', {Reason, Stack}}}`.
    Error(Term),
    /// `exit(Reason)`: the caller gets `{badrpc, {'EXIT', Reason}}`.
    Exit(Term),
    /// `throw(Value)`: `rpc:call` returns `Value`; `erpc:call` throws it.
    Throw(Term),
}

impl Exception {
    /// `error(badarg)`, what BEAM raises for arguments of the wrong type or arity.
    pub fn badarg() -> Exception {
        Exception::Error(atom("badarg"))
    }
}

/// A function other nodes can call with `rpc:call(ThisNode, Module, Function, Args)`.
pub type RpcHandler = Arc<dyn Fn(&[Term]) -> Result<Term, Exception> + Send + Sync>;

/// The registered functions, by `(module, function)`.
#[derive(Default)]
pub(crate) struct Rex {
    handlers: RwLock<HashMap<(String, String), RpcHandler>>,
}

/// How one applied call ended, before it is put in rex's or erpc's form.
pub(crate) enum Applied {
    Return(Term),
    Raised {
        exception: Exception,
        /// The stack of an `Error`: `[{M, F, ArgsOrArity, []}]`.
        stack: Term,
    },
}

impl Applied {
    /// The reply rex's `gen_server` sends.
    pub(crate) fn into_rex_reply(self) -> Term {
        match self {
            Applied::Return(value) => value,
            Applied::Raised { exception, stack } => match exception {
                Exception::Throw(value) => value,
                Exception::Exit(reason) => badrpc_exit(reason),
                Exception::Error(reason) => badrpc_exit((reason, stack).to_term()),
            },
        }
    }

    /// The exit reason of `erpc:execute_call(Ref, M, F, A)`.
    pub(crate) fn into_erpc_reason(self, reference: Term) -> Term {
        match self {
            Applied::Return(value) => (reference, atom("return"), value).to_term(),
            Applied::Raised { exception, stack } => match exception {
                Exception::Throw(value) => (reference, atom("throw"), value).to_term(),
                Exception::Exit(reason) => (reference, atom("exit"), reason).to_term(),
                Exception::Error(reason) => (reference, atom("error"), reason, stack).to_term(),
            },
        }
    }
}

fn badrpc_exit(reason: Term) -> Term {
    (atom("badrpc"), (atom("EXIT"), reason)).to_term()
}

pub(crate) fn atom(name: &str) -> Term {
    Term::from(eetf::Atom::from(name))
}

/// The elements of a proper list (a byte list is a list of small integers), or `None`.
pub(crate) fn proper_list(term: Term) -> Option<Vec<Term>> {
    match term {
        Term::List(list) => Some(list.elements),
        Term::ByteList(bytes) => Some(
            bytes
                .bytes
                .into_iter()
                .map(|b| Term::from(eetf::FixInteger::from(i32::from(b))))
                .collect(),
        ),
        _ => None,
    }
}

/// The text of a panic payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_owned()
    }
}

impl Rex {
    fn handler(&self, module: &str, function: &str) -> Option<RpcHandler> {
        self.handlers
            .read()
            .get(&(module.to_owned(), function.to_owned()))
            .cloned()
    }
}

/// Runs `module:function(args)` here: a registered handler, else a built-in, else
/// `undef`. Never panics (a handler's panic becomes an `error`).
pub(crate) fn apply(
    node: &Arc<NodeInner>,
    module: &str,
    function: &str,
    args: Vec<Term>,
) -> Applied {
    let stack_of = |arity_or_args: Term| {
        vec![
            (
                atom(module),
                atom(function),
                arity_or_args,
                Term::from(eetf::List::nil()),
            )
                .to_term(),
        ]
        .to_term()
    };
    let outcome = match node.rex.handler(module, function) {
        Some(handler) => match std::panic::catch_unwind(AssertUnwindSafe(|| handler(&args))) {
            Ok(outcome) => Some(outcome),
            Err(payload) => {
                let message = panic_message(payload.as_ref());
                log::error!("distribution: rpc handler {module}:{function} panicked: {message}");
                Some(Err(Exception::Error(
                    (atom("rust_panic"), message).to_term(),
                )))
            }
        },
        // Built-ins read peer data too: a bug there must not take a call thread down.
        None => std::panic::catch_unwind(AssertUnwindSafe(|| {
            builtins::apply(node, module, function, &args)
        }))
        .unwrap_or_else(|payload| {
            let message = panic_message(payload.as_ref());
            log::error!("distribution: built-in {module}:{function} panicked: {message}");
            Some(Err(Exception::Error(
                (atom("rust_panic"), message).to_term(),
            )))
        }),
    };
    match outcome {
        Some(Ok(value)) => Applied::Return(value),
        Some(Err(exception)) => Applied::Raised {
            exception,
            stack: stack_of(Term::from(eetf::FixInteger::from(
                i32::try_from(args.len()).unwrap_or(i32::MAX),
            ))),
        },
        None => Applied::Raised {
            exception: Exception::Error(atom("undef")),
            stack: stack_of(args.to_term()),
        },
    }
}

/// `true` if `module:function` is a built-in that only reads this node's tables
/// (no registered handler replaces it, and it is not one of the heavier supervisor
/// calls): it runs on the connection's reader, saving the hop to a call thread.
pub(crate) fn runs_inline(node: &NodeInner, module: &str, function: &str) -> bool {
    node.rex.handler(module, function).is_none() && builtins::is_light(module, function)
}

/// Runs `job` here when `inline`, else on one of the node's call threads.
pub(crate) fn run(node: &Arc<NodeInner>, inline: bool, job: impl FnOnce() + Send + 'static) {
    if inline {
        job();
    } else {
        node.run_call(Box::new(job));
    }
}

/// A message to our registered name `rex`. `from` is the sender of the frame.
pub(crate) fn handle_message(node: &Arc<NodeInner>, from: &WirePid, payload: Option<Term>) {
    let Some(Term::Tuple(message)) = payload else {
        return;
    };
    let mut elements = message.elements.into_iter();
    match (
        elements.next(),
        elements.next(),
        elements.next(),
        elements.next(),
    ) {
        // {'$gen_call', From, {call | block_call, M, F, A, GL}}
        (Some(Term::Atom(tag)), Some(caller), Some(request), None) if tag.name == "$gen_call" => {
            match call_request(request) {
                Some((module, function, args)) => {
                    let node2 = node.clone();
                    let inline = runs_inline(node, &module, &function);
                    run(node, inline, move || {
                        let reply = apply(&node2, &module, &function, args).into_rex_reply();
                        node2.reply_gen_call(node2.runtime.root_pid(), &caller, reply);
                    });
                }
                None => log::debug!(
                    "distribution: rex call from {} not understood",
                    from.node.name
                ),
            }
        }
        // {'$gen_cast', {cast, M, F, A, GL}}
        (Some(Term::Atom(tag)), Some(request), None, None) if tag.name == "$gen_cast" => {
            if let Some((module, function, args)) = cast_request(request) {
                let node2 = node.clone();
                let inline = runs_inline(node, &module, &function);
                run(node, inline, move || {
                    let _ = apply(&node2, &module, &function, args);
                });
            }
        }
        // {From, {call, M, F, A, GL}}: the form hidden C nodes use; rex answers it as
        // a gen_server reply to {From, rex}, i.e. From ! {rex, Reply}.
        (Some(Term::Pid(sender)), Some(request), None, None) => {
            if let Some((module, function, args)) = call_request(request) {
                let node2 = node.clone();
                let caller = (Term::from(sender), atom("rex")).to_term();
                let inline = runs_inline(node, &module, &function);
                run(node, inline, move || {
                    let reply = apply(&node2, &module, &function, args).into_rex_reply();
                    node2.reply_gen_call(node2.runtime.root_pid(), &caller, reply);
                });
            }
        }
        // features_request and the like: BEAM then treats us as a node whose rex has
        // no extra features, which only matters to its multicall optimisations.
        _ => log::debug!(
            "distribution: rex message from {} tolerated",
            from.node.name
        ),
    }
}

/// `{call | block_call, M, F, A, GL}` → `(M, F, A)`.
fn call_request(request: Term) -> Option<(String, String, Vec<Term>)> {
    mfa_request(request, &["call", "block_call"])
}

/// `{cast, M, F, A, GL}` → `(M, F, A)`.
fn cast_request(request: Term) -> Option<(String, String, Vec<Term>)> {
    mfa_request(request, &["cast"])
}

fn mfa_request(request: Term, tags: &[&str]) -> Option<(String, String, Vec<Term>)> {
    let Term::Tuple(tuple) = request else {
        return None;
    };
    let mut elements = tuple.elements.into_iter();
    match (
        elements.next(),
        elements.next(),
        elements.next(),
        elements.next(),
        elements.next(),
        elements.next(),
    ) {
        (
            Some(Term::Atom(tag)),
            Some(Term::Atom(module)),
            Some(Term::Atom(function)),
            Some(args),
            Some(_group_leader),
            None,
        ) if tags.contains(&tag.name.as_str()) => {
            Some((module.name, function.name, proper_list(args)?))
        }
        _ => None,
    }
}

/// Checks a module or function name a user registers: an atom's text, 1 to 255
/// characters.
pub(super) fn validate_name(option: &'static str, name: &str) -> Result<(), DistError> {
    if name.is_empty() || name.chars().count() > 255 {
        return Err(DistError::InvalidOption {
            option,
            reason: "must be 1 to 255 characters (an atom)",
        });
    }
    Ok(())
}

impl Node {
    /// Makes `module:function/N` callable from other nodes with `rpc:call` /
    /// `erpc:call` (any arity: the handler gets the arguments and checks them,
    /// answering [`Exception::badarg`] when they do not fit). A registration replaces an
    /// earlier one and a built-in of the same name.
    ///
    /// ```no_run
    /// # fn demo(node: &otp_threads::dist::Node) -> Result<(), otp_threads::dist::DistError> {
    /// use otp_threads::dist::{Exception, FromTerm, Term, ToTerm};
    /// node.register_rpc("mymod", "add", |args: &[Term]| match args {
    ///     [a, b] => {
    ///         let a = i64::from_term(a.clone()).map_err(|_| Exception::badarg())?;
    ///         let b = i64::from_term(b.clone()).map_err(|_| Exception::badarg())?;
    ///         Ok(a.checked_add(b).ok_or_else(Exception::badarg)?.to_term())
    ///     }
    ///     _ => Err(Exception::badarg()),
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn register_rpc(
        &self,
        module: &str,
        function: &str,
        handler: impl Fn(&[Term]) -> Result<Term, Exception> + Send + Sync + 'static,
    ) -> Result<(), DistError> {
        validate_name("module", module)?;
        validate_name("function", function)?;
        self.inner
            .rex
            .handlers
            .write()
            .insert((module.to_owned(), function.to_owned()), Arc::new(handler));
        Ok(())
    }

    /// Runs `module:function(args)` here as an rpc from another node would run it
    /// (registered function, built-in or `undef`), giving the term rex replies with.
    pub fn apply_rpc(&self, module: &str, function: &str, args: Vec<Term>) -> Term {
        apply(&self.inner, module, function, args).into_rex_reply()
    }

    /// Removes a registration of [`register_rpc`](Self::register_rpc); `true` if there
    /// was one (a built-in of that name answers again).
    pub fn unregister_rpc(&self, module: &str, function: &str) -> bool {
        self.inner
            .rex
            .handlers
            .write()
            .remove(&(module.to_owned(), function.to_owned()))
            .is_some()
    }
}
