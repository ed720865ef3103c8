//! Stopping the web view joins every thread it started. One test in its own binary,
//! so that no other test's threads come and go while it counts `/proc/self/task`.
//!
//! Rule ported: the project rule "stopping a runtime joins every thread it started".

#[path = "support/http.rs"]
mod support;

use otp_threads::Runtime;
use otp_threads_observer_web::ObserverWeb;
use otp_threads_testkit::{WAIT, os_thread_count, settles_at_thread_count};
use support::get;

#[test]
fn stopping_the_web_view_joins_its_threads() {
    let rt = Runtime::new();
    let before = os_thread_count();
    let web = ObserverWeb::builder()
        .handlers(3)
        .start(&rt.handle())
        .unwrap();
    // The acceptor and three handlers.
    assert_eq!(os_thread_count(), before + 4);
    for _ in 0..20 {
        assert_eq!(get(web.address(), "/snapshot.json").0, 200);
    }
    // A connection left open while the server stops.
    let open = std::net::TcpStream::connect(web.address()).unwrap();
    web.stop();
    settles_at_thread_count(before, "every server thread is joined");
    drop(open);
    // Dropping it stops it too.
    let web = ObserverWeb::builder().start(&rt.handle()).unwrap();
    assert_eq!(get(web.address(), "/").0, 200);
    drop(web);
    settles_at_thread_count(before, "a dropped server joins its threads");
    rt.shutdown(WAIT).unwrap();
}
