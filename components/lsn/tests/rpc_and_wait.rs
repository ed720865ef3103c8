//! Cross-region writes (issue 14, fly_postgres's `rpc_and_wait`) between two nodes in
//! separate OS processes, on the real primary and standby. This test binary starts
//! itself again as the writer's node (`OTP_THREADS_LSN_RPC_PEER` set), joined through
//! the runtime's own name server. `harness = false`: `main` runs the scenarios in order
//! and panics on the first broken one.

#[path = "support/postgres.rs"]
mod postgres_support;

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use otp_threads::Runtime;
use otp_threads::dist::epmd::NameServer;
use otp_threads::dist::{DistError, Node};
use otp_threads_lsn::{
    LsnError, LsnTracker, Param, PrimaryWriter, PrimaryWriterConfig, RejectReason, Replicated,
    TrackerConfig, WriteRequest, recorded_write, rpc_and_wait,
};
use postgres_support::*;

const PEER_ROLE: &str = "OTP_THREADS_LSN_RPC_PEER";
const COOKIE: &str = "lsn-rpc";
const WRITER: &str = "primary_writer";
const WRITER_APP: &str = "otp_threads_rpc_writer";

fn short_host() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    name.trim()
        .split('.')
        .next()
        .unwrap_or("localhost")
        .to_owned()
}

fn unique_alive(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(1);
    format!(
        "{prefix}{}x{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn start_node(alive: &str, epmd: SocketAddr) -> (Runtime, Node) {
    let name = format!("{alive}@{}", short_host());
    let runtime = Runtime::builder().node_name(&name).build().unwrap();
    let node = Node::builder()
        .epmd(epmd)
        .cookie(COOKIE)
        .start(&runtime.handle())
        .unwrap();
    (runtime, node)
}

/// The writer's node: serves `primary_writer` with `add_note` (one statement) and
/// `slow_note` (sleeps `$1` seconds, then inserts `$2`); prints `ready`, runs until stdin
/// closes.
fn peer_main(alive: &str, epmd_port: u16) {
    let (runtime, node) = start_node(alive, SocketAddr::from(([127, 0, 0, 1], epmd_port)));
    let primary = format!("{} application_name={WRITER_APP}", primary_conninfo());
    let config = PrimaryWriterConfig::new(primary)
        .statement(
            "add_note",
            "INSERT INTO otp_threads_lsn_probe (note) VALUES ($1)",
        )
        .operation("slow_note", |transaction, params| {
            let (Some(Param::Float(seconds)), Some(Param::Text(note))) =
                (params.first(), params.get(1))
            else {
                return transaction.execute("SELECT 1/0", &[]);
            };
            transaction.execute("SELECT pg_sleep($1)", &[seconds])?;
            transaction.execute(
                "INSERT INTO otp_threads_lsn_probe (note) VALUES ($1)",
                &[note],
            )
        });
    let _writer = PrimaryWriter::start(&runtime.handle(), &node, WRITER, config).unwrap();
    println!("ready");
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    node.shutdown();
    runtime.shutdown(Duration::from_secs(10)).unwrap();
}

/// The writer's OS process; killed and reaped on drop.
struct Peer {
    name: String,
    child: Child,
    _lines: Lines<BufReader<ChildStdout>>,
}

impl Peer {
    fn start(epmd: SocketAddr) -> Peer {
        let alive = unique_alive("writer");
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(PEER_ROLE, format!("{alive} {}", epmd.port()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().expect("peer output").unwrap();
        assert_eq!(ready, "ready");
        Peer {
            name: format!("{alive}@{}", short_host()),
            child,
            _lines: lines,
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The application node: a runtime that is a node, and a tracker of the standby.
struct App {
    server: Option<NameServer>,
    runtime: Option<Runtime>,
    node: Option<Node>,
    tracker: Option<LsnTracker>,
}

impl App {
    fn start() -> App {
        let server = NameServer::bind(SocketAddr::from(([127, 0, 0, 1], 0))).unwrap();
        let (runtime, node) = start_node(&unique_alive("app"), server.address());
        let tracker = LsnTracker::start(
            &runtime.handle(),
            TrackerConfig::new(standby_conninfo()).frequency(Duration::from_millis(20)),
        )
        .unwrap();
        App {
            server: Some(server),
            runtime: Some(runtime),
            node: Some(node),
            tracker: Some(tracker),
        }
    }

    fn epmd(&self) -> SocketAddr {
        self.server.as_ref().unwrap().address()
    }

    fn node(&self) -> &Node {
        self.node.as_ref().unwrap()
    }

    fn tracker(&self) -> &LsnTracker {
        self.tracker.as_ref().unwrap()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        if let Some(tracker) = self.tracker.take() {
            let _ = tracker.stop(Duration::from_secs(10));
        }
        if let Some(node) = self.node.take() {
            node.shutdown();
        }
        if let Some(runtime) = self.runtime.take() {
            let _ = runtime.shutdown(Duration::from_secs(10));
        }
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

fn prepare() {
    let mut primary = primary_client();
    ensure_table(&mut primary, &mut standby_probe());
}

fn a_write_through_the_remote_writer_is_visible_on_the_standby_after_ready() {
    let app = App::start();
    let peer = Peer::start(app.epmd());
    let mut standby = standby_client();
    for round in 0..20 {
        let note = unique_note(&format!("rpc-{round}"));
        let request = WriteRequest::new(
            unique_note("key"),
            "add_note",
            vec![Param::Text(note.clone())],
        )
        .unwrap();
        let written = rpc_and_wait(
            app.node(),
            (WRITER, peer.name.as_str()),
            app.tracker(),
            &request,
            PATIENCE,
        )
        .unwrap();
        assert!(
            matches!(written.replicated, Replicated::Ready),
            "{written:?}"
        );
        assert_eq!(written.rows, 1);
        assert!(!written.already_committed);
        assert!(
            row_visible(&mut standby, &note),
            "round {round}: not on the standby"
        );
    }
}

fn a_resent_key_is_not_applied_twice_and_unknown_operations_are_rejected() {
    let app = App::start();
    let peer = Peer::start(app.epmd());
    let note = unique_note("resent");
    let request = WriteRequest::new(
        unique_note("key"),
        "add_note",
        vec![Param::Text(note.clone())],
    )
    .unwrap();
    let to = (WRITER, peer.name.as_str());
    let first = rpc_and_wait(app.node(), to, app.tracker(), &request, PATIENCE).unwrap();
    let again = rpc_and_wait(app.node(), to, app.tracker(), &request, PATIENCE).unwrap();
    assert!(!first.already_committed);
    assert!(again.already_committed);
    assert!(matches!(again.replicated, Replicated::Ready), "{again:?}");
    let mut standby = standby_client();
    let count: i64 = standby
        .query_one(
            "SELECT count(*) FROM otp_threads_lsn_probe WHERE note = $1",
            &[&note],
        )
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    let unknown = WriteRequest::new(unique_note("key"), "drop_everything", vec![]).unwrap();
    let error = rpc_and_wait(app.node(), to, app.tracker(), &unknown, PATIENCE).unwrap_err();
    assert!(
        matches!(
            error,
            LsnError::RemoteWriteRejected {
                reason: RejectReason::UnknownOperation,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.remote_write_may_have_committed());
}

fn a_call_that_outlives_its_timeout_is_typed_and_the_key_tells_the_outcome() {
    let app = App::start();
    let peer = Peer::start(app.epmd());
    let note = unique_note("slow");
    let request = WriteRequest::new(
        unique_note("key"),
        "slow_note",
        vec![Param::Float(2.0), Param::Text(note.clone())],
    )
    .unwrap();
    let to = (WRITER, peer.name.as_str());
    let error = rpc_and_wait(
        app.node(),
        to,
        app.tracker(),
        &request,
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert!(
        matches!(
            &error,
            LsnError::RemoteTimeout { source, .. } if matches!(**source, DistError::Timeout)
        ),
        "{error:?}"
    );
    assert!(error.remote_write_may_have_committed());
    // The writer is serial: the resent request runs after the first one committed.
    let resent = rpc_and_wait(app.node(), to, app.tracker(), &request, PATIENCE).unwrap();
    assert!(resent.already_committed, "{resent:?}");
    assert!(matches!(resent.replicated, Replicated::Ready));
    assert!(row_visible(&mut standby_client(), &note));
    let recorded = recorded_write(&mut primary_client(), request.key()).unwrap();
    assert_eq!(recorded.map(|r| r.rows), Some(1));
}

fn a_sigkilled_writer_node_gives_a_typed_no_connection() {
    let app = App::start();
    let mut peer = Peer::start(app.epmd());
    let note = unique_note("killed");
    let request = WriteRequest::new(
        unique_note("key"),
        "slow_note",
        vec![Param::Float(30.0), Param::Text(note)],
    )
    .unwrap();
    let peer_name = peer.name.clone();
    let error = std::thread::scope(|scope| {
        let call = scope.spawn(|| {
            rpc_and_wait(
                app.node(),
                (WRITER, peer_name.as_str()),
                app.tracker(),
                &request,
                PATIENCE,
            )
        });
        // Kill the writer's process while its write sleeps inside the transaction.
        let mut primary = primary_client();
        poll_until(
            "the writer's transaction to be under way",
            || {
                primary
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 \
                         AND query LIKE '%pg_sleep%' AND state = 'active'",
                        &[&WRITER_APP],
                    )
                    .unwrap()
                    .get::<_, i64>(0)
            },
            |active| *active == 1,
        );
        peer.child.kill().unwrap();
        let _ = peer.child.wait();
        call.join().unwrap().unwrap_err()
    });
    assert!(
        matches!(
            &error,
            LsnError::RemoteNoConnection { source, .. }
                if matches!(**source, DistError::NoConnection { .. })
        ),
        "{error:?}"
    );
    assert!(error.remote_write_may_have_committed());
    // The key says what happened: the writer died before COMMIT, nothing is recorded.
    assert_eq!(
        recorded_write(&mut primary_client(), request.key()).unwrap(),
        None
    );
    // A call to the gone node is NoConnection too, and nothing was sent.
    let again = WriteRequest::new(unique_note("key"), "add_note", vec![]).unwrap();
    let error = rpc_and_wait(
        app.node(),
        (WRITER, peer.name.as_str()),
        app.tracker(),
        &again,
        PATIENCE,
    )
    .unwrap_err();
    assert!(
        matches!(&error, LsnError::RemoteNoConnection { .. }),
        "{error:?}"
    );
}

fn main() {
    if let Ok(role) = std::env::var(PEER_ROLE) {
        let parts: Vec<&str> = role.split(' ').collect();
        peer_main(parts[0], parts[1].parse().unwrap());
        return;
    }
    init_logging();
    prepare();
    let scenarios: [(&str, fn()); 4] = [
        (
            "a_write_through_the_remote_writer_is_visible_on_the_standby_after_ready",
            a_write_through_the_remote_writer_is_visible_on_the_standby_after_ready,
        ),
        (
            "a_resent_key_is_not_applied_twice_and_unknown_operations_are_rejected",
            a_resent_key_is_not_applied_twice_and_unknown_operations_are_rejected,
        ),
        (
            "a_call_that_outlives_its_timeout_is_typed_and_the_key_tells_the_outcome",
            a_call_that_outlives_its_timeout_is_typed_and_the_key_tells_the_outcome,
        ),
        (
            "a_sigkilled_writer_node_gives_a_typed_no_connection",
            a_sigkilled_writer_node_gives_a_typed_no_connection,
        ),
    ];
    for (name, scenario) in scenarios {
        eprintln!("test {name} ...");
        scenario();
        eprintln!("test {name} ... ok");
    }
    eprintln!("test result: ok. {} passed", scenarios.len());
}
