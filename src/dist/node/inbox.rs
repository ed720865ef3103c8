//! Local workers that take terms from other nodes.
//!
//! A worker opts in with [`Node::accept_messages`](super::Node::accept_messages) (plain
//! messages decode into its `Info` type) or [`Node::serve`](super::Node::serve)
//! (`gen_server` traffic as well: `{'$gen_call', From, Request}` reaches `handle_call`
//! and its reply goes back to `From`; `{'$gen_cast', Message}` reaches `handle_cast`).

use std::sync::Arc;

use super::NodeInner;
use crate::dist::error::DistError;
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::error::Error;
use crate::worker::{Worker, WorkerRef};

/// Why a term was not delivered.
pub(crate) enum Undelivered {
    /// The term does not decode into the worker's message type.
    Decode(DistError),
    /// The worker is gone.
    Dead,
}

pub(crate) trait Inbox: Send + Sync {
    fn deliver(&self, node: &Arc<NodeInner>, term: Term) -> Result<(), Undelivered>;

    /// Whether the worker still runs: entries of dead workers are pruned.
    fn is_alive(&self) -> bool;
}

fn sent(result: Result<(), Error>) -> Result<(), Undelivered> {
    result.map_err(|_| Undelivered::Dead)
}

/// Plain messages only.
pub(crate) struct MessageInbox<W: Worker> {
    pub(crate) worker: WorkerRef<W>,
}

impl<W: Worker> Inbox for MessageInbox<W>
where
    W::Info: FromTerm,
{
    fn deliver(&self, _: &Arc<NodeInner>, term: Term) -> Result<(), Undelivered> {
        let message = W::Info::from_term(term).map_err(Undelivered::Decode)?;
        sent(self.worker.try_send(message))
    }

    fn is_alive(&self) -> bool {
        self.worker.is_alive()
    }
}

/// `gen_server` calls and casts, and plain messages.
pub(crate) struct ServerInbox<W: Worker> {
    pub(crate) worker: WorkerRef<W>,
}

/// A `'$gen_call'` or `'$gen_cast'` envelope, taken apart.
enum GenMessage {
    Call { from: Term, request: Term },
    Cast(Term),
    Plain(Term),
}

fn classify(term: Term) -> GenMessage {
    let Term::Tuple(tuple) = term else {
        return GenMessage::Plain(term);
    };
    let tag = match tuple.elements.first() {
        Some(Term::Atom(tag)) => tag.name.as_str(),
        _ => "",
    };
    match (tag, tuple.elements.len()) {
        ("$gen_call", 3) | ("$gen_cast", 2) => {}
        _ => return GenMessage::Plain(Term::from(tuple)),
    }
    // Taken apart by value: no copy of the request.
    let mut elements = tuple.elements.into_iter().skip(1);
    match (elements.next(), elements.next()) {
        (Some(from), Some(request)) => GenMessage::Call { from, request },
        (Some(message), None) => GenMessage::Cast(message),
        _ => GenMessage::Plain(Term::from(eetf::List::nil())),
    }
}

impl<W: Worker> Inbox for ServerInbox<W>
where
    W::Info: FromTerm,
    W::Cast: FromTerm,
    W::Call: FromTerm,
    W::Reply: ToTerm,
{
    fn deliver(&self, node: &Arc<NodeInner>, term: Term) -> Result<(), Undelivered> {
        match classify(term) {
            GenMessage::Plain(term) => {
                let message = W::Info::from_term(term).map_err(Undelivered::Decode)?;
                sent(self.worker.try_send(message))
            }
            GenMessage::Cast(term) => {
                let message = W::Cast::from_term(term).map_err(Undelivered::Decode)?;
                sent(self.worker.try_cast(message))
            }
            GenMessage::Call { from, request } => {
                let request = W::Call::from_term(request).map_err(Undelivered::Decode)?;
                if !self.worker.is_alive() {
                    return Err(Undelivered::Dead);
                }
                let worker = self.worker.clone();
                let timeout = node.config.served_call_timeout;
                let replying = node.clone();
                // The call blocks until the worker answers: on a pool thread, so the
                // connection's reader never waits for a handler.
                node.run_call(Box::new(move || {
                    match worker.call_timeout(request, timeout) {
                        Ok(reply) => replying.reply_gen_call(worker.pid(), &from, reply.to_term()),
                        // As gen_server: a caller whose server died or timed out gets no reply
                        // (its own monitor or timeout tells it).
                        Err(error) => log::debug!(
                            "call from another node to {} ended without reply: {error}",
                            worker.pid()
                        ),
                    }
                }));
                Ok(())
            }
        }
    }
    fn is_alive(&self) -> bool {
        self.worker.is_alive()
    }
}
