//! [`KeyedRegistry`]: one worker per key, started on first use.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::error::Error;
use crate::worker::{Worker, WorkerRef};

enum Slot<W: Worker> {
    /// A caller is starting the worker; others wait on the condvar.
    Starting,
    Running(WorkerRef<W>),
}

/// At most one running worker per key (Erlang's `GenRegistry`).
///
/// Entries of workers that have terminated are replaced on the next
/// [`lookup_or_start`](Self::lookup_or_start) and skipped by [`lookup`](Self::lookup).
/// The registry is a plain shared structure: clone it to share it between threads.
pub struct KeyedRegistry<K, W: Worker> {
    shared: Arc<Shared<K, W>>,
}

struct Shared<K, W: Worker> {
    slots: Mutex<HashMap<K, Slot<W>>>,
    started: Condvar,
}

impl<K, W: Worker> Clone for KeyedRegistry<K, W> {
    fn clone(&self) -> Self {
        KeyedRegistry {
            shared: self.shared.clone(),
        }
    }
}

impl<K: Eq + Hash + Clone, W: Worker> Default for KeyedRegistry<K, W> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Clone, W: Worker> KeyedRegistry<K, W> {
    /// An empty registry.
    pub fn new() -> Self {
        KeyedRegistry {
            shared: Arc::new(Shared {
                slots: Mutex::new(HashMap::new()),
                started: Condvar::new(),
            }),
        }
    }

    /// The running worker for `key`, if any.
    pub fn lookup(&self, key: &K) -> Option<WorkerRef<W>> {
        match self.shared.slots.lock().get(key) {
            Some(Slot::Running(worker)) if worker.is_alive() => Some(worker.clone()),
            _ => None,
        }
    }

    /// The running worker for `key`, started with `start` if there is none.
    ///
    /// Two threads asking for the same key at once start exactly one worker: the second
    /// waits for the first's start and gets its result. `start` runs without the
    /// registry's lock held, so starts of different keys proceed in parallel.
    pub fn lookup_or_start(
        &self,
        key: K,
        start: impl FnOnce() -> Result<WorkerRef<W>, Error>,
    ) -> Result<WorkerRef<W>, Error> {
        let mut slots = self.shared.slots.lock();
        loop {
            match slots.get(&key) {
                Some(Slot::Running(worker)) if worker.is_alive() => return Ok(worker.clone()),
                Some(Slot::Starting) => self.shared.started.wait(&mut slots),
                _ => break,
            }
        }
        slots.insert(key.clone(), Slot::Starting);
        drop(slots);
        // If `start` panics, the slot must not stay `Starting` forever.
        let guard = StartGuard {
            shared: &self.shared,
            key: Some(key),
        };
        let result = start();
        let key = guard.finish();
        let mut slots = self.shared.slots.lock();
        match &result {
            Ok(worker) => {
                slots.insert(key, Slot::Running(worker.clone()));
            }
            Err(_) => {
                slots.remove(&key);
            }
        }
        self.shared.started.notify_all();
        result
    }

    /// Removes the entry for `key` (the worker keeps running); `true` if there was one.
    /// A start under way is left to finish (its caller owns the slot until then).
    pub fn remove(&self, key: &K) -> bool {
        let mut slots = self.shared.slots.lock();
        if matches!(slots.get(key), Some(Slot::Starting)) {
            return false;
        }
        slots.remove(key).is_some()
    }

    /// Running workers with their keys.
    pub fn entries(&self) -> Vec<(K, WorkerRef<W>)> {
        let mut slots = self.shared.slots.lock();
        slots.retain(|_, slot| !matches!(slot, Slot::Running(worker) if !worker.is_alive()));
        slots
            .iter()
            .filter_map(|(key, slot)| match slot {
                Slot::Running(worker) => Some((key.clone(), worker.clone())),
                Slot::Starting => None,
            })
            .collect()
    }

    /// Number of running workers.
    pub fn len(&self) -> usize {
        self.entries().len()
    }

    /// `true` if no worker is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

struct StartGuard<'a, K: Eq + Hash, W: Worker> {
    shared: &'a Shared<K, W>,
    key: Option<K>,
}

impl<K: Eq + Hash, W: Worker> StartGuard<'_, K, W> {
    fn finish(mut self) -> K {
        self.key.take().expect("finished once")
    }
}

impl<K: Eq + Hash, W: Worker> Drop for StartGuard<'_, K, W> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            let mut slots = self.shared.slots.lock();
            if matches!(slots.get(&key), Some(Slot::Starting)) {
                slots.remove(&key);
            }
            self.shared.started.notify_all();
        }
    }
}
