//! `appmon_info`: the server observer's Applications tab starts on the node it shows
//! (runtime_tools' `appmon_info.erl`, OTP 25), answered by a worker of the runtime.
//!
//! Contract, as observer drives it:
//! * `rpc:call(N, appmon_info, start_link2, [Starter, Client, Opts])` starts the server
//!   (registered as `appmon_info`; a running one is reused and `Client` added) and
//!   answers `{ok, Pid}`. The server is linked to `Client` and `Starter`: when they go,
//!   it goes (BEAM's stops when its starter or its last client goes).
//! * Casts `{From, Cmd, Aux, true, Opts}` add a task, `{From, Cmd, Aux, false, _}` end
//!   it. A task runs at once, then every `timeout` ms (option, default 2000;
//!   `at_most_once` runs it once), and sends `From` `{delivery, Server, Cmd, Aux,
//!   Result}` whenever `Result` differs from the last one sent.
//! * `app_ctrl`: `Result` is `[{Root, Name, {Name, Description, Vsn}}]`, one per
//!   supervision tree as `application:which_applications/0` lists them (see
//!   `observer_backend.rs`), `Root` the root supervisor's pid (BEAM: the application
//!   master).
//! * `app` with `Aux` an application's name: `{Root, Processes, Links, []}` of that
//!   tree, as `appmon_info` formats it: `Root` the root's text, `Processes` `[{Pid,
//!   Text}]`, `Links` `[{ParentText, ChildText}]` from each supervisor to its running
//!   children; a process's text is its registered name, else its pid as
//!   `pid_to_list/1` prints it on this node (`"<0.N.S>"`). An unknown name gives `{[],
//!   [], [], []}`, as BEAM's.
//! * `load`: `{0, 0}` (no run queue or runtime sample here); `pinfo`: `""`; another
//!   command: `{Cmd, Aux}` (BEAM's catch-all).
//! * `{'$gen_call', From, {register_client, P}}` is answered `ok`; other messages are
//!   ignored, as BEAM's `handle_info(_Other)`.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::super::super::NodeInner;
use super::super::super::inbox::MessageInbox;
use super::super::{Exception, atom};
use super::{send_from, tree_applications};
use crate::dist::control::WirePid;
use crate::dist::error::DistError;
use crate::dist::term::{FromTerm, Term, ToTerm};
use crate::observer::Snapshot;
use crate::pid::Pid;
use crate::{Context, Info, Step, Worker};

/// The registered name, as BEAM's server has.
const NAME: &str = "appmon_info";
/// A task's period when its options give none (`appmon_info`'s default).
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// What the server takes.
pub(super) enum Input {
    /// `{From, Cmd, Aux, OnOff, Opts}`, the public API's casts.
    Task {
        from: WirePid,
        command: String,
        aux: Term,
        on: bool,
        /// `None`: `at_most_once`.
        period: Option<Duration>,
    },
    /// A `gen_server:call` (only `register_client` is in the protocol): answered `ok`.
    Call(Term),
    /// A task's timer: the task's id.
    Due(u64),
    /// Anything else.
    Other,
}

/// The `timeout` option of a task's options (ignored when malformed, as BEAM's
/// `keysearch` ignores what is no tuple).
fn period_of(options: &Term) -> Option<Duration> {
    let Term::List(options) = options else {
        return Some(DEFAULT_TIMEOUT);
    };
    for option in &options.elements {
        if let Term::Tuple(pair) = option
            && let [Term::Atom(key), value] = pair.elements.as_slice()
            && key.name == "timeout"
        {
            return match value {
                Term::Atom(a) if a.name == "at_most_once" => None,
                other => match u64::from_term(other.clone()) {
                    Ok(ms) if (1..=u64::from(u32::MAX)).contains(&ms) => {
                        Some(Duration::from_millis(ms))
                    }
                    _ => Some(DEFAULT_TIMEOUT),
                },
            };
        }
    }
    Some(DEFAULT_TIMEOUT)
}

impl FromTerm for Input {
    fn from_term(term: Term) -> Result<Self, DistError> {
        let Term::Tuple(message) = term else {
            return Ok(Input::Other);
        };
        Ok(match message.elements.as_slice() {
            [Term::Atom(tag), Term::Tuple(cast)] if tag.name == "$gen_cast" => {
                match cast.elements.as_slice() {
                    [
                        Term::Pid(from),
                        Term::Atom(command),
                        aux,
                        Term::Atom(on),
                        options,
                    ] => Input::Task {
                        from: from.clone(),
                        command: command.name.clone(),
                        aux: aux.clone(),
                        on: on.name == "true",
                        period: period_of(options),
                    },
                    _ => Input::Other,
                }
            }
            [Term::Atom(tag), from, _request] if tag.name == "$gen_call" => {
                Input::Call(from.clone())
            }
            _ => Input::Other,
        })
    }
}

struct Task {
    id: u64,
    from: WirePid,
    command: String,
    aux: Term,
    period: Option<Duration>,
    last: Option<Term>,
}

struct Server {
    node: Weak<NodeInner>,
    tasks: Vec<Task>,
    next_id: u64,
}

/// A process's text as `appmon_info` formats it.
fn text_of(snapshot: &Snapshot, pid: &Pid) -> String {
    match snapshot
        .process(pid)
        .and_then(|info| info.registered_name.clone())
    {
        Some(name) => name.to_string(),
        None => format!("<0.{}.{}>", pid.id(), pid.serial()),
    }
}

fn charlist(text: &str) -> Term {
    Term::from(eetf::ByteList::from(text))
}

/// `{Root, Processes, Links, []}` of the tree named `name`.
fn app_tree(node: &NodeInner, name: &Term) -> Term {
    let nil = || Term::from(eetf::List::nil());
    let empty = || (nil(), nil(), nil(), nil()).to_term();
    let Term::Atom(name) = name else {
        return empty();
    };
    let snapshot = node.runtime.snapshot();
    let Some((root, _)) = tree_applications(&snapshot)
        .into_iter()
        .find(|(_, app)| *app == name.name)
    else {
        return empty();
    };
    let mut processes = vec![root];
    let mut links = Vec::new();
    let mut next = 0;
    // Breadth first down the supervisors; bounded by the snapshot's processes.
    while next < processes.len() && next <= snapshot.processes.len() {
        let parent = processes[next];
        next += 1;
        if let Some(supervisor) = snapshot.supervisor(&parent) {
            for child in supervisor.children.iter().filter_map(|child| child.pid) {
                if !processes.contains(&child) {
                    links.push(
                        (
                            charlist(&text_of(&snapshot, &parent)),
                            charlist(&text_of(&snapshot, &child)),
                        )
                            .to_term(),
                    );
                    processes.push(child);
                }
            }
        }
    }
    let named: Vec<Term> = processes
        .iter()
        .map(|pid| (pid.to_term(), charlist(&text_of(&snapshot, pid))).to_term())
        .collect();
    (charlist(&text_of(&snapshot, &root)), named, links, nil()).to_term()
}

fn app_ctrl(node: &NodeInner) -> Term {
    let snapshot = node.runtime.snapshot();
    let version = charlist(env!("CARGO_PKG_VERSION"));
    tree_applications(&snapshot)
        .into_iter()
        .map(|(root, name)| {
            (
                root.to_term(),
                atom(&name),
                (
                    atom(&name),
                    charlist(super::TREE_DESCRIPTION),
                    version.clone(),
                ),
            )
                .to_term()
        })
        .collect::<Vec<_>>()
        .to_term()
}

impl Server {
    fn result(node: &NodeInner, command: &str, aux: &Term) -> Term {
        match command {
            "app_ctrl" => app_ctrl(node),
            "app" => app_tree(node, aux),
            "load" => (0u8, 0u8).to_term(),
            "pinfo" => Term::from(eetf::List::nil()),
            other => (atom(other), aux.clone()).to_term(),
        }
    }

    /// Runs task `id`: delivers a changed result, sets the next run.
    fn run(&mut self, id: u64, ctx: &mut Context<Self>) {
        let Some(node) = self.node.upgrade() else {
            return;
        };
        let Some(index) = self.tasks.iter().position(|task| task.id == id) else {
            return;
        };
        let task = &mut self.tasks[index];
        let result = Self::result(&node, &task.command, &task.aux);
        if task.last.as_ref() != Some(&result) {
            let delivery = (
                atom("delivery"),
                ctx.pid(),
                atom(&task.command),
                task.aux.clone(),
                result.clone(),
            )
                .to_term();
            send_from(&node, ctx.pid(), &task.from, delivery);
            task.last = Some(result);
        }
        match task.period {
            Some(period) => {
                ctx.send_after(Input::Due(id), period);
            }
            None => {
                self.tasks.remove(index);
            }
        }
    }
}

impl Worker for Server {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = Input;
    type Continue = ();

    fn handle_info(&mut self, info: Info<Input>, ctx: &mut Context<Self>) -> Step<Self> {
        match info {
            Info::Message(Input::Task {
                from,
                command,
                aux,
                on,
                period,
            }) => {
                // A task is keyed by (Cmd, Aux, From): a new one replaces the old.
                self.tasks.retain(|task| {
                    !(task.command == command && task.aux == aux && task.from == from)
                });
                if on {
                    self.next_id = self.next_id.wrapping_add(1);
                    let id = self.next_id;
                    self.tasks.push(Task {
                        id,
                        from,
                        command,
                        aux,
                        period,
                        last: None,
                    });
                    self.run(id, ctx);
                }
            }
            Info::Message(Input::Call(from)) => {
                if let Some(node) = self.node.upgrade() {
                    node.reply_gen_call(ctx.pid(), &from, atom("ok"));
                }
            }
            Info::Timer(_, Input::Due(id)) => self.run(id, ctx),
            _ => {}
        }
        Step::Next
    }
}

/// `appmon_info:start_link2(Starter, Client, Opts)` over rpc.
pub(super) fn start_link2(node: &Arc<NodeInner>, args: &[Term]) -> Result<Term, Exception> {
    let [Term::Pid(starter), Term::Pid(client), _options] = args else {
        return Err(Exception::Error(atom("function_clause")));
    };
    let pid = match node.runtime.whereis(NAME) {
        Some(pid) => pid,
        None => {
            let server = Server {
                node: Arc::downgrade(node),
                tasks: Vec::new(),
                next_id: 0,
            };
            match node.runtime.spawn_named(NAME, server) {
                Ok(worker) => {
                    node.add_inbox(
                        worker.pid(),
                        Arc::new(MessageInbox {
                            worker: worker.clone(),
                        }),
                    );
                    worker.pid()
                }
                // Another start won the name in between: use that server.
                Err(crate::Error::NameTaken(_)) => node
                    .runtime
                    .whereis(NAME)
                    .ok_or_else(|| Exception::Error(atom("noproc")))?,
                Err(error) => {
                    log::warn!("distribution: appmon_info not started: {error}");
                    return Err(Exception::Error(atom("system_limit")));
                }
            }
        }
    };
    let wire = node.wire_pid(pid);
    for peer in [starter, client] {
        if let Some(connection) = node.existing(&peer.node.name) {
            crate::dist::hooks::remote_link(node, &connection, peer.clone(), wire.clone());
        }
    }
    Ok((atom("ok"), pid).to_term())
}
