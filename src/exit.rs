//! Exit reasons and the rules for exit signals.
//!
//! When a process terminates it sends an *exit signal* to every process linked to it.
//! [`exit`](crate::RuntimeHandle::exit) sends one explicitly, without the link flag.
//! What a receiver does with a signal is decided by [`receive_exit_signal`], which is
//! the table from the Erlang reference manual ("Receiving Exit Signals"), rule by rule:
//!
//! | signal | receiver not trapping exits | receiver trapping exits |
//! |---|---|---|
//! | linked, link already removed | dropped | dropped |
//! | `Normal` from another process | dropped | EXIT message |
//! | `Normal` sent to itself | dies with `Normal` | EXIT message |
//! | `Kill` sent with `exit` (no link flag) | dies with `Killed` | dies with `Killed` |
//! | `Kill` over a link (the sender exited with reason `Kill`) | dies with `Kill` | EXIT message |
//! | any other reason | dies with that reason | EXIT message |
//!
//! The two "irregularities" the manual keeps for compatibility are kept here too: a
//! linked `Kill` can be trapped, and `exit(self, Normal)` kills the caller.

use std::fmt;
use std::sync::Arc;

use crate::pid::{MonitorRef, Pid};

/// Why a process terminated. This is Erlang's exit reason, typed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum ExitReason {
    /// Orderly termination; ignored by linked processes that do not trap exits.
    Normal,
    /// Stopped by its supervisor or owner (Erlang `shutdown`).
    Shutdown,
    /// Stopped with a detail (Erlang `{shutdown, Term}`); counts as a normal stop for
    /// transient children and crash reports.
    ShutdownWith(Arc<str>),
    /// The untrappable kill, as *sent* with [`exit`](crate::RuntimeHandle::exit). A process
    /// that itself exits with `Kill` sends a plain, trappable `Kill` over its links.
    Kill,
    /// The reason of a process that was killed with `Kill`.
    Killed,
    /// The process did not exist.
    NoProc,
    /// The connection to the process's node was lost.
    NoConnection,
    /// A callback panicked; the panic message.
    Panic(Arc<str>),
    /// Any other (user) error.
    Error(Arc<str>),
}

impl ExitReason {
    /// A user error reason from anything printable.
    pub fn error(message: impl fmt::Display) -> ExitReason {
        ExitReason::Error(message.to_string().into())
    }

    /// `{shutdown, Detail}`.
    pub fn shutdown_with(detail: impl fmt::Display) -> ExitReason {
        ExitReason::ShutdownWith(detail.to_string().into())
    }

    /// `true` for `Normal`, `Shutdown` and `ShutdownWith`: the reasons that are not
    /// failures (no crash report, a transient child is not restarted).
    pub fn is_normal_stop(&self) -> bool {
        matches!(
            self,
            ExitReason::Normal | ExitReason::Shutdown | ExitReason::ShutdownWith(_)
        )
    }

    /// `true` for every reason but `Normal`: the reasons that kill a linked process that
    /// does not trap exits.
    pub fn is_abnormal(&self) -> bool {
        !matches!(self, ExitReason::Normal)
    }
}

impl fmt::Debug for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::ShutdownWith(detail) => write!(f, "{{shutdown, {detail}}}"),
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::Panic(message) => write!(f, "panic: {message}"),
            ExitReason::Error(message) => write!(f, "error: {message}"),
        }
    }
}

/// A trapped exit signal: Erlang's `{'EXIT', From, Reason}` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exit {
    /// The process the signal came from (for a link to a dead pid, that pid).
    pub from: Pid,
    /// The exit reason it carried.
    pub reason: ExitReason,
}

/// A monitor fired: Erlang's `{'DOWN', Ref, process, Object, Reason}` message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Down {
    /// The reference the monitor call returned.
    pub reference: MonitorRef,
    /// The monitored process.
    pub pid: Pid,
    /// The registered name, when the monitor was set up by name.
    pub name: Option<Arc<str>>,
    /// Why the process terminated; `NoProc` if it did not exist when monitored.
    pub reason: ExitReason,
}

/// What a receiver does with an exit signal.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ExitOutcome {
    /// The signal has no effect.
    Ignore,
    /// The signal becomes an EXIT message in the receiver's mailbox.
    Trap,
    /// The receiver terminates with this reason.
    Die(ExitReason),
}

/// The receiving rule of the Erlang reference manual, for a signal that was not
/// dropped already because its link was removed.
pub(crate) fn receive_exit_signal(
    trap_exit: bool,
    reason: &ExitReason,
    linked: bool,
    sent_to_self: bool,
) -> ExitOutcome {
    if !linked && *reason == ExitReason::Kill {
        return ExitOutcome::Die(ExitReason::Killed);
    }
    if trap_exit {
        return ExitOutcome::Trap;
    }
    match reason {
        ExitReason::Normal if sent_to_self => ExitOutcome::Die(ExitReason::Normal),
        ExitReason::Normal => ExitOutcome::Ignore,
        other => ExitOutcome::Die(other.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ExitOutcome::*;

    #[test]
    fn receiving_rules_follow_the_reference_manual() {
        let r = receive_exit_signal;
        assert_eq!(r(false, &ExitReason::Normal, true, false), Ignore);
        assert_eq!(
            r(false, &ExitReason::Normal, false, true),
            Die(ExitReason::Normal)
        );
        assert_eq!(r(true, &ExitReason::Normal, true, false), Trap);
        assert_eq!(
            r(false, &ExitReason::Kill, false, false),
            Die(ExitReason::Killed)
        );
        assert_eq!(
            r(true, &ExitReason::Kill, false, false),
            Die(ExitReason::Killed)
        );
        assert_eq!(
            r(false, &ExitReason::Kill, true, false),
            Die(ExitReason::Kill)
        );
        assert_eq!(r(true, &ExitReason::Kill, true, false), Trap);
        assert_eq!(
            r(false, &ExitReason::Shutdown, true, false),
            Die(ExitReason::Shutdown)
        );
        assert_eq!(r(true, &ExitReason::Killed, true, false), Trap);
    }

    #[test]
    fn shutdown_reasons_are_normal_stops_but_abnormal_signals() {
        for reason in [ExitReason::Shutdown, ExitReason::shutdown_with("x")] {
            assert!(reason.is_normal_stop());
            assert!(reason.is_abnormal());
        }
        assert!(ExitReason::Normal.is_normal_stop());
        assert!(!ExitReason::Normal.is_abnormal());
        assert!(!ExitReason::Killed.is_normal_stop());
    }
}
