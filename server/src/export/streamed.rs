//! What became of each recent streamed export (`GET /v1/export`): still
//! streaming, signed (its manifest), or stopped before its end (why).
//!
//! Kept in memory only, bounded both ways: the newest [`KEEP_LAST`]
//! exports, none older than [`KEEP_FOR`]. A restart forgets them; a
//! client that needs a manifest later saves it, or uses an export job
//! (whose manifest is stored on disk). Ids are ULIDs, so the map's order is
//! their creation order and trimming takes from the front. This module
//! neither signs nor touches HTTP.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use auditlog_engine::integrity::manifest::SignedManifest;
use ulid::Ulid;

/// Most streamed exports remembered.
pub const KEEP_LAST: usize = 1000;
/// How long a streamed export's outcome is remembered.
pub const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Streaming,
    Signed(SignedManifest),
    /// The export never sent its last byte: it has no manifest.
    Incomplete(String),
}

pub struct StreamedExports {
    outcomes: Mutex<BTreeMap<Ulid, Outcome>>,
    keep_last: usize,
    keep_for: Duration,
}

impl Default for StreamedExports {
    fn default() -> Self {
        StreamedExports::new(KEEP_LAST, KEEP_FOR)
    }
}

impl StreamedExports {
    pub fn new(keep_last: usize, keep_for: Duration) -> StreamedExports {
        StreamedExports {
            outcomes: Mutex::new(BTreeMap::new()),
            keep_last,
            keep_for,
        }
    }

    pub fn set(&self, id: Ulid, outcome: Outcome) {
        let mut map = self.lock();
        map.insert(id, outcome);
        self.trim(&mut map);
    }

    /// The outcome of `id`, unless unknown or forgotten.
    pub fn get(&self, id: Ulid) -> Option<Outcome> {
        let mut map = self.lock();
        self.trim(&mut map);
        map.get(&id).cloned()
    }

    /// A panic elsewhere cannot leave the map half-changed (each change is
    /// one insert or remove), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, BTreeMap<Ulid, Outcome>> {
        self.outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn trim(&self, map: &mut BTreeMap<Ulid, Outcome>) {
        let cutoff = SystemTime::now()
            .checked_sub(self.keep_for)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        while let Some(first) = map.keys().next().copied() {
            if map.len() <= self.keep_last && first.datetime() >= cutoff {
                break;
            }
            map.remove(&first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_newest_and_forgets_the_old() {
        let store = StreamedExports::new(3, Duration::from_secs(3600));
        let ids: Vec<Ulid> = (0..5)
            .map(|_| {
                let id = Ulid::new();
                store.set(id, Outcome::Streaming);
                std::thread::sleep(Duration::from_millis(2));
                id
            })
            .collect();
        assert_eq!(store.get(ids[0]), None);
        assert_eq!(store.get(ids[1]), None);
        for id in &ids[2..] {
            assert_eq!(store.get(*id), Some(Outcome::Streaming));
        }
        store.set(ids[4], Outcome::Incomplete("gone".into()));
        assert_eq!(store.get(ids[4]), Some(Outcome::Incomplete("gone".into())));

        let old = Ulid::from_datetime(SystemTime::now() - Duration::from_secs(7200));
        store.set(old, Outcome::Streaming);
        assert_eq!(store.get(old), None, "older than keep_for");
        assert_eq!(store.get(ids[4]), Some(Outcome::Incomplete("gone".into())));
    }
}
