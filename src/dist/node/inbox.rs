//! Local workers that take terms from other nodes.
//!
//! A worker opts in with [`Node::accept_messages`](super::Node::accept_messages) (plain
//! messages decode into its `Info` type) or [`Node::serve`](super::Node::serve)
//! (`gen_server` traffic as well: `{'$gen_call', From, Request}` reaches `handle_call`
//! and its reply goes back to `From`; `{'$gen_cast', Message}` reaches `handle_cast`).

use std::sync::Arc;
use std::time::Instant;

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
                let replier = self.worker.pid();
                let replying = Arc::downgrade(node);
                // A reply later than this is dropped, as by a caller that gave up.
                let deadline = Instant::now().checked_add(node.config.served_call_timeout);
                // The reply is encoded and written by the thread that produces it (the
                // worker's, usually): no thread waits in between, so a served call
                // costs one hand-off (reader to worker) instead of two.
                self.worker
                    .call_then(request, move |outcome| match outcome {
                        Ok(reply) => {
                            if deadline.is_some_and(|deadline| Instant::now() > deadline) {
                                log::debug!(
                                    "reply from {replier} to another node's call dropped: \
                                     later than served_call_timeout"
                                );
                            } else if let Some(node) = replying.upgrade() {
                                node.reply_gen_call(replier, &from, reply.to_term());
                            }
                        }
                        // As gen_server: a caller whose server died gets no reply (its
                        // own monitor or timeout tells it).
                        Err(error) => log::debug!(
                            "call from another node to {replier} ended without reply: {error}"
                        ),
                    })
                    .map_err(|_| Undelivered::Dead)
            }
        }
    }

    fn is_alive(&self) -> bool {
        self.worker.is_alive()
    }
}
