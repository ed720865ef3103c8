//! A capturing logger, for tests that check what a component logs.
//!
//! [`install`] makes [`Capture`] the `log` logger of this test binary and returns it;
//! every later call returns the same one. `log` takes one logger per process, so the
//! first logger set wins: a binary whose tests check log lines installs the capture in
//! every test that logs (instead of `env_logger`), and [`install`] fails the test if
//! another logger came first, rather than letting its checks time out unexplained.
//!
//! The capture keeps every line at [`CAPTURED`] or more severe, with its level, for the
//! life of the binary. Tests of one binary run in parallel and share it: a test matches
//! lines on content only its own scenario produces (its topic, its server's port, its
//! node's name), and counts lines only where that content is unique to it.
//!
//! A line logged on another thread may not be there yet when the test sees the effect
//! that came with it: [`Capture::wait_for_line`] waits for it, bounded by [`WAIT`] (or
//! by the test's own [`Patience`]).
//!
//! ```
//! use otp_threads_testkit::log_capture;
//!
//! let logs = log_capture::install();
//! log::warn!("partition 7 of doc-topic failed");
//! let line = logs.wait_for_line(log::Level::Warn, &["doc-topic", "partition 7"]);
//! assert_eq!(line, "partition 7 of doc-topic failed");
//! assert!(logs.lines_at(log::Level::Error, &["doc-topic"]).is_empty());
//! ```
//!
//! [`WAIT`]: crate::WAIT

use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::{Patience, poll_until};

/// The least severe level kept: components log what a test may check at debug and
/// above; trace lines would only cost time and memory.
pub const CAPTURED: LevelFilter = LevelFilter::Debug;

/// The lines logged in this test binary since [`install`], oldest first.
pub struct Capture {
    lines: Mutex<Vec<(Level, String)>>,
}

static CAPTURE: Capture = Capture {
    lines: Mutex::new(Vec::new()),
};

/// Installs the capture as this binary's logger (once; later calls find it installed)
/// and returns it.
///
/// Fails the test if another logger was set first in this binary.
pub fn install() -> &'static Capture {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    let installed = *INSTALLED.get_or_init(|| {
        let set = log::set_logger(&CAPTURE).is_ok();
        if set {
            log::set_max_level(CAPTURED);
        }
        set
    });
    assert!(
        installed,
        "log_capture::install: another logger (an env_logger init?) was set first in this \
         test binary; every test of a binary that checks log lines must install the capture \
         instead"
    );
    &CAPTURE
}

impl Capture {
    /// The lines logged at exactly `level` that contain every one of `needles`, oldest
    /// first.
    pub fn lines_at(&self, level: Level, needles: &[&str]) -> Vec<String> {
        self.lines()
            .iter()
            .filter(|(at, line)| *at == level && contains_all(line, needles))
            .map(|(_, line)| line.clone())
            .collect()
    }

    /// Waits until a line at exactly `level` contains every one of `needles`, and returns
    /// the first such line; fails the test after [`WAIT`](crate::WAIT), showing the lines
    /// logged at that level.
    pub fn wait_for_line(&self, level: Level, needles: &[&str]) -> String {
        self.wait_for_line_within(Patience::default(), level, needles)
    }

    /// [`Capture::wait_for_line`], bounded by `patience` instead.
    pub fn wait_for_line_within(
        &self,
        patience: Patience,
        level: Level,
        needles: &[&str],
    ) -> String {
        let what = format!("a {level} line containing {needles:?}");
        let lines = poll_until(
            &what,
            patience,
            || self.lines_at(level, &[]),
            |lines| lines.iter().any(|line| contains_all(line, needles)),
        );
        lines
            .into_iter()
            .find(|line| contains_all(line, needles))
            .expect("the poll ended on a sample holding the line")
    }

    /// The lines, also after a test panicked while logging: what they hold stays whole.
    fn lines(&self) -> MutexGuard<'_, Vec<(Level, String)>> {
        self.lines.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn contains_all(line: &str, needles: &[&str]) -> bool {
    needles.iter().all(|needle| line.contains(needle))
}

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= CAPTURED
    }

    fn log(&self, record: &Record<'_>) {
        if self.enabled(record.metadata()) {
            let line = record.args().to_string();
            self.lines().push((record.level(), line));
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn install_is_idempotent_and_keeps_lines_with_their_level() {
        let logs = install();
        assert!(std::ptr::eq(logs, install()));
        log::error!("idempotent-install: an error");
        log::info!("idempotent-install: some news");
        assert_eq!(
            logs.lines_at(Level::Error, &["idempotent-install"]),
            ["idempotent-install: an error"]
        );
        assert_eq!(
            logs.lines_at(Level::Info, &["idempotent-install", "news"]),
            ["idempotent-install: some news"]
        );
        assert!(
            logs.lines_at(Level::Info, &["idempotent-install", "absent"])
                .is_empty()
        );
    }

    #[test]
    fn trace_lines_are_not_kept() {
        let logs = install();
        log::trace!("not-kept: trace");
        log::debug!("not-kept: debug");
        assert!(logs.lines_at(Level::Trace, &["not-kept"]).is_empty());
        assert_eq!(logs.lines_at(Level::Debug, &["not-kept"]).len(), 1);
    }

    #[test]
    fn wait_for_line_returns_a_line_logged_by_another_thread() {
        let logs = install();
        let (go, went) = std::sync::mpsc::channel::<()>();
        let logger = std::thread::spawn(move || {
            went.recv().unwrap();
            log::warn!("other-thread: partition 3 failed at offset 12");
        });
        go.send(()).unwrap();
        let line = logs.wait_for_line(Level::Warn, &["other-thread", "offset 12"]);
        assert_eq!(line, "other-thread: partition 3 failed at offset 12");
        logger.join().unwrap();
    }

    #[test]
    #[should_panic(expected = "timed out after")]
    fn wait_for_line_fails_the_test_when_no_line_comes() {
        let logs = install();
        log::warn!("never-at-error: a warning");
        // The warning is at another level: it does not count.
        let patience = Patience::new(Duration::from_millis(50), Duration::from_millis(5));
        logs.wait_for_line_within(patience, Level::Error, &["never-at-error"]);
    }
}
