//! The one page the web view serves: HTML, CSS and JavaScript in one file, no build
//! step, nothing fetched from elsewhere.
//!
//! Contract: the page polls `/snapshot.json` every refresh interval and redraws the
//! supervision trees (status colour, mailbox depth, restart count per row), the
//! processes outside any tree, the call cycles and a detail panel for the selected
//! process. Every row carries its identity as data attributes (`data-kind`,
//! `data-pid`, `data-supervisor`, `data-id`, `data-restarts`, `data-mailbox`,
//! `data-state`), so that a test (or a user's script) can read what the page shows.
//! Values from the snapshot are inserted as text, never as markup.

use std::time::Duration;

const TEMPLATE: &str = include_str!("page.html");
const REFRESH_PLACEHOLDER: &str = "__REFRESH_MS__";

/// The page, refreshing every `refresh`.
pub(crate) fn html(refresh: Duration) -> String {
    TEMPLATE.replace(REFRESH_PLACEHOLDER, &refresh.as_millis().to_string())
}
