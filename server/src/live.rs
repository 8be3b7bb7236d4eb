//! The long-lived parts behind tails and export jobs: a watch on the end of
//! the store and on its newest signed checkpoint, the stop signal that ends open tails at shutdown, and the
//! export job worker.
//!
//! The end of the store is polled ([`POLL_EVERY`]) rather than pushed: the
//! engine stays free of any notification machinery, and one cheap
//! `feed_end()` (a read lock and a few `Arc` clones) per poll serves every
//! open tail. Nothing here reads or writes events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use auditlog_engine::query::FeedPosition;
use auditlog_engine::Engine;
use tokio::sync::watch;

use crate::export::jobs::Jobs;

/// How often the end of the store is checked for new events: the most a
/// tail lags behind a commit, plus its own read.
pub const POLL_EVERY: Duration = Duration::from_millis(100);

pub struct Live {
    pub jobs: Arc<Jobs>,
    end: watch::Receiver<FeedPosition>,
    /// Sequence number of the newest signed checkpoint.
    checkpoint: watch::Receiver<Option<u64>>,
    stop: watch::Sender<bool>,
}

impl Live {
    /// Opens the export jobs and starts the watcher and the job worker on
    /// the current tokio runtime.
    /// Finished export jobs are deleted `export_retention` after they
    /// finished (`None`: never).
    pub fn start(
        engine: Engine,
        data: &Path,
        export_retention: Option<Duration>,
    ) -> std::io::Result<Arc<Live>> {
        let jobs = Jobs::open(engine.clone(), data, export_retention)?;
        let (end_tx, end) = watch::channel(engine.feed_end());
        let newest = |e: &Engine| e.latest_checkpoint().map(|c| c.sequence);
        let (checkpoint_tx, checkpoint) = watch::channel(newest(&engine));
        let (stop, stop_rx) = watch::channel(false);
        let mut watcher_stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY) => {}
                    _ = watcher_stop.changed() => return,
                }
                let now = engine.feed_end();
                end_tx.send_if_modified(|old| std::mem::replace(old, now) != now);
                let seq = newest(&engine);
                checkpoint_tx.send_if_modified(|old| std::mem::replace(old, seq) != seq);
            }
        });
        tokio::spawn(jobs.clone().worker(stop_rx));
        Ok(Arc::new(Live {
            jobs,
            end,
            checkpoint,
            stop,
        }))
    }

    /// Changes whenever the end of the store moves.
    pub fn end_watch(&self) -> watch::Receiver<FeedPosition> {
        self.end.clone()
    }

    /// Changes whenever a new checkpoint is signed.
    pub fn checkpoint_watch(&self) -> watch::Receiver<Option<u64>> {
        self.checkpoint.clone()
    }

    /// Turns true when the server is shutting down.
    pub fn stop_watch(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Ends open tails and stops the job worker (a running job is resumed
    /// at the next start).
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}
