//! The table owner: holds the waiter table and the replay cache across poller restarts.

use std::sync::Arc;

use super::Shared;
use otp_threads::{Context, ExitReason, Worker};

/// Owns the shared table, as fly_postgres's Tracker owns its ETS tables: it runs no
/// logic, so nothing that fails on the database can take the table down with it.
pub(crate) struct TableOwner {
    shared: Arc<Shared>,
}

impl TableOwner {
    pub(crate) fn new(shared: Arc<Shared>) -> TableOwner {
        TableOwner { shared }
    }
}

impl Worker for TableOwner {
    type Call = ();
    type Reply = usize;
    type Cast = ();
    type Info = ();
    type Continue = ();

    fn init(&mut self, _: &mut Context<Self>) -> Result<(), ExitReason> {
        log::debug!(
            "LSN table owner started with {} waiters",
            self.shared.waiters.lock().len()
        );
        Ok(())
    }
}
