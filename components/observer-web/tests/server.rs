//! The web view's server: what it serves, which options it refuses, and how it answers
//! requests that are not valid HTTP.
//!
//! Rule ported: the project rules "invalid options are rejected with a typed error
//! naming the option" and "malformed wire data is an error, never a panic"; the HTTP
//! rules are RFC 9112's (a request line, CRLF-ended header lines, `Host` in 1.1).

#[path = "support/http.rs"]
mod support;

use std::net::SocketAddr;
use std::time::Duration;

use otp_threads::supervisor::{ChildSpec, Strategy, Supervisor};
use otp_threads::{Runtime, Worker};
use otp_threads_observer_web::{Error, ObserverWeb};
use otp_threads_testkit::WAIT;
use support::{body, exchange, get};

struct Idle;

impl Worker for Idle {
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();
    type Continue = ();
}

fn invalid_option(result: Result<ObserverWeb, Error>) -> &'static str {
    match result {
        Err(Error::InvalidOption { option, .. }) => option,
        other => panic!("not an invalid option: {other:?}"),
    }
}

#[test]
fn invalid_options_are_refused_naming_the_option() {
    let rt = Runtime::new();
    let rt_handle = rt.handle();
    let start = |builder: otp_threads_observer_web::ObserverWebBuilder| builder.start(&rt_handle);
    assert_eq!(
        invalid_option(start(ObserverWeb::builder().handlers(0))),
        "handlers"
    );
    assert_eq!(
        invalid_option(start(ObserverWeb::builder().handlers(65))),
        "handlers"
    );
    assert_eq!(
        invalid_option(start(ObserverWeb::builder().io_timeout(Duration::ZERO))),
        "io_timeout"
    );
    assert_eq!(
        invalid_option(start(
            ObserverWeb::builder().io_timeout(Duration::from_secs(601))
        )),
        "io_timeout"
    );
    assert_eq!(
        invalid_option(start(
            ObserverWeb::builder().refresh(Duration::from_millis(10))
        )),
        "refresh"
    );
    assert_eq!(
        invalid_option(start(
            ObserverWeb::builder().refresh(Duration::from_secs(61))
        )),
        "refresh"
    );
    let anywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let error = start(ObserverWeb::builder().bind(anywhere)).unwrap_err();
    assert!(error.to_string().contains("allow_remote"), "{error}");
    assert_eq!(invalid_option(Err(error)), "bind");
    // Allowed explicitly, the unspecified address binds (and still answers on loopback).
    let web = start(ObserverWeb::builder().bind(anywhere).allow_remote(true)).unwrap();
    let loopback = SocketAddr::from(([127, 0, 0, 1], web.address().port()));
    assert_eq!(get(loopback, "/snapshot.json").0, 200);
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_port_in_use_is_a_bind_error() {
    let rt = Runtime::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap();
    match ObserverWeb::builder().bind(address).start(&rt.handle()) {
        Err(Error::Bind { address: asked, .. }) => assert_eq!(asked, address),
        other => panic!("not a bind error: {other:?}"),
    }
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn the_page_is_self_contained_and_polls_the_snapshot() {
    let rt = Runtime::new();
    let web = ObserverWeb::builder()
        .refresh(Duration::from_millis(250))
        .start(&rt.handle())
        .unwrap();
    assert!(web.url().starts_with("http://127.0.0.1:"), "{}", web.url());
    let (status, response) = get(web.address(), "/");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Type: text/html; charset=utf-8\r\n"));
    assert!(response.contains("Connection: close\r\n"));
    assert!(response.contains("Content-Security-Policy: default-src 'none'"));
    let page = body(&response);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.contains("fetch(\"/snapshot.json\""));
    assert!(page.contains("data-refresh-ms=\"250\""));
    // Nothing from elsewhere: no external script, style or font.
    assert!(!page.contains("http://") && !page.contains("https://"));
    assert!(!page.contains("<script src") && !page.contains("<link"));
    assert_eq!(get(web.address(), "/index.html").0, 200);
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn the_snapshot_and_tree_endpoints_match_the_runtime() {
    let rt = Runtime::new();
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("top")
        .child(ChildSpec::worker("idle", || Idle))
        .start(&rt)
        .unwrap();
    let web = ObserverWeb::builder().start(&rt.handle()).unwrap();
    let (status, response) = get(web.address(), "/snapshot.json?t=1");
    assert_eq!(status, 200);
    assert!(response.contains("Content-Type: application/json\r\n"));
    assert!(response.contains("Cache-Control: no-store\r\n"));
    // Nothing changes between the two snapshots: the same JSON.
    assert_eq!(body(&response), rt.snapshot().to_json());
    let (status, response) = get(web.address(), "/tree.txt");
    assert_eq!(status, 200);
    let text = body(&response);
    assert_eq!(text, rt.snapshot().tree_text());
    assert!(text.contains(&format!("top {} supervisor one_for_one", sup.pid())));
    // HEAD: the same head, no body.
    let head = format!(
        "HEAD /snapshot.json HTTP/1.1\r\nHost: {}\r\n\r\n",
        web.address()
    );
    let (status, response) = exchange(web.address(), head.as_bytes());
    assert_eq!(status, 200);
    assert_eq!(body(&response), "");
    assert!(response.contains("Content-Length: "));
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn unknown_paths_and_methods_are_refused() {
    let rt = Runtime::new();
    let web = ObserverWeb::builder().start(&rt.handle()).unwrap();
    assert_eq!(get(web.address(), "/nothing-here").0, 404);
    let (status, response) = exchange(
        web.address(),
        b"DELETE / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status, 405);
    assert!(response.contains("Allow: GET, HEAD\r\n"));
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn malformed_requests_get_400() {
    let rt = Runtime::new();
    let web = ObserverWeb::builder().start(&rt.handle()).unwrap();
    let long_target = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(9000));
    let cases: Vec<&[u8]> = vec![
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n",
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /\xff HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        long_target.as_bytes(),
    ];
    for case in cases {
        let (status, response) = exchange(web.address(), case);
        assert_eq!(
            status,
            400,
            "{:?} -> {response}",
            String::from_utf8_lossy(case)
        );
    }
    // HTTP/1.0 needs no Host.
    assert_eq!(exchange(web.address(), b"GET / HTTP/1.0\r\n\r\n").0, 200);
    // And the server still serves.
    assert_eq!(get(web.address(), "/snapshot.json").0, 200);
    web.stop();
    rt.shutdown(WAIT).unwrap();
}

#[test]
fn a_client_that_sends_nothing_does_not_block_the_others_or_the_stop() {
    let rt = Runtime::new();
    let web = ObserverWeb::builder()
        .handlers(1)
        .io_timeout(Duration::from_secs(600))
        .start(&rt.handle())
        .unwrap();
    // Holds the only handler: its read waits (up to ten minutes).
    let silent = std::net::TcpStream::connect(web.address()).unwrap();
    // A second connection is queued behind it; the stop must not wait ten minutes.
    let queued = std::net::TcpStream::connect(web.address()).unwrap();
    let stopped = std::time::Instant::now();
    web.stop();
    // Bounded, generous: the stop shut the silent connection down.
    assert!(stopped.elapsed() < WAIT, "{:?}", stopped.elapsed());
    drop((silent, queued));
    rt.shutdown(WAIT).unwrap();
}
