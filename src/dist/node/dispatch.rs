//! What a connection does with each control message it receives.

use std::sync::Arc;

use super::NodeInner;
use super::connection::Connection;
use crate::dist::control::{Control, DistMessage};
use crate::dist::term::Term;

pub(crate) fn handle(node: &Arc<NodeInner>, connection: &Arc<Connection>, message: DistMessage) {
    let DistMessage { control, payload } = message;
    match control {
        Control::Send { to } | Control::SendSender { to, .. } => node.deliver(&to, payload),
        Control::RegSend { from, to } => match to.as_str() {
            "net_kernel" => net_kernel(node, payload),
            "rex" => super::rex::handle_message(node, &from, payload),
            // A visible connection gets this on connect; BEAM keeps the connection up
            // without an answer (global then treats us as not taking part in global
            // name registration).
            "global_name_server" => {
                log::debug!(
                    "distribution: {to} message from {} tolerated",
                    from.node.name
                )
            }
            name => {
                if let Some(pid) = node.runtime.whereis(name)
                    && let Some(message) = payload
                {
                    node.deliver_to(pid, message);
                }
            }
        },
        Control::AliasSend { alias, .. } => {
            // Our calls use plain reference tags, so an alias send is a late or stray
            // reply: dropped, as a message to an inactive alias is.
            log::debug!("distribution: message to unknown alias {alias:?} dropped");
        }
        Control::MonitorP {
            from,
            to,
            reference,
        } => node.remote_monitor(connection, from, to, reference),
        Control::DemonitorP { reference, .. } => node.remote_demonitor(&reference),
        Control::MonitorPExit {
            reference, reason, ..
        } => node.monitor_exit(&reference, reason),
        Control::PayloadMonitorPExit { reference, .. } => {
            node.monitor_exit(&reference, payload.unwrap_or_else(nil))
        }
        Control::Link { from, to } => crate::dist::hooks::remote_link(node, connection, from, to),
        Control::UnlinkId { id, from, to } => {
            crate::dist::hooks::remote_unlink(node, &from, &to);
            // The ack goes out before anything else to the unlinker (it is sent now,
            // on the connection's reader, ahead of later signals).
            let ack = Control::UnlinkIdAck {
                id,
                from: to,
                to: from,
            };
            let _ = connection.send(node.now(), &ack, None);
        }
        Control::UnlinkIdAck { .. } => {}
        Control::Exit { from, to, reason } => {
            crate::dist::hooks::remote_exit(node, &from, &to, &reason, true)
        }
        Control::PayloadExit { from, to } => {
            crate::dist::hooks::remote_exit(node, &from, &to, &payload.unwrap_or_else(nil), true)
        }
        Control::Exit2 { from, to, reason } => {
            crate::dist::hooks::remote_exit(node, &from, &to, &reason, false)
        }
        Control::PayloadExit2 { from, to } => {
            crate::dist::hooks::remote_exit(node, &from, &to, &payload.unwrap_or_else(nil), false)
        }
        // SPAWN_REQUEST and SPAWN_REQUEST_TT (the trace token is ignored).
        Control::Other {
            op: 29 | 30,
            elements,
        } => super::spawn::handle(node, connection, elements, payload),
        Control::Other { op, .. } => {
            log::debug!(
                "distribution: control operation {op} from {} ignored",
                connection.peer.name
            )
        }
    }
}

fn nil() -> Term {
    Term::from(eetf::List::nil())
}

/// `net_kernel` as far as other nodes need it: `{'$gen_call', From, {is_auth, Node}}`
/// (what `net_adm:ping` sends) is answered `yes`.
fn net_kernel(node: &Arc<NodeInner>, payload: Option<Term>) {
    let Some(Term::Tuple(call)) = payload else {
        return;
    };
    match call.elements.as_slice() {
        [Term::Atom(tag), from, Term::Tuple(request)]
            if tag.name == "$gen_call"
                && matches!(request.elements.first(), Some(Term::Atom(a)) if a.name == "is_auth") =>
        {
            let yes = Term::from(eetf::Atom::from("yes"));
            node.reply_gen_call(node.runtime.root_pid(), from, yes);
        }
        _ => log::debug!("distribution: net_kernel request {call} ignored"),
    }
}
