//! The threads that run ingest's CPU work (validating, compressing,
//! committing), at a lower CPU priority than the rest of the server.
//!
//! When ingest saturates the cores, readers (pages, counts, the viewer)
//! would otherwise wait their turn behind every appender; a few nice
//! levels lower, appenders still get all the CPU that readers leave idle.
//! This module only schedules; what runs is the caller's.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;

use parking_lot::Mutex;

type Job = Box<dyn FnOnce() + Send>;

/// Nice level of ingest threads (0 is the server's own).
const INGEST_NICE: i32 = 5;

pub struct IngestWorkers {
    jobs: Mutex<Sender<Job>>,
}

impl IngestWorkers {
    /// Starts `threads` workers (at least one). Threads that cannot be
    /// started are logged; if none can, jobs run on the caller's thread.
    pub fn start(threads: usize) -> IngestWorkers {
        let (tx, rx) = channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            if let Err(e) = std::thread::Builder::new()
                .name(format!("auditlog-ingest-{i}"))
                .spawn(move || work(&rx))
            {
                tracing::error!(error = %e, "could not start an ingest thread");
            }
        }
        IngestWorkers {
            jobs: Mutex::new(tx),
        }
    }

    /// Runs `f` on an ingest thread and waits for its result; `None` if
    /// `f` panicked.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        let rejected = self.jobs.lock().send(job).err();
        if let Some(std::sync::mpsc::SendError(job)) = rejected {
            // Every worker is gone: do the work here rather than lose it.
            job();
        }
        result.await.ok()
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    lower_priority();
    loop {
        let job = jobs.lock().recv();
        match job {
            // A panic must not take the thread with it; the caller sees
            // no result and answers with an error.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            }
            Err(_) => return,
        }
    }
}

fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: one system call on the calling thread; no memory involved.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, INGEST_NICE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_and_a_panicking_one_takes_no_thread_with_it() {
        let workers = IngestWorkers::start(1);
        assert_eq!(workers.run(|| 6 * 7).await, Some(42));
        let panicked: Option<u32> = workers.run(|| panic!("a job failed")).await;
        assert_eq!(panicked, None);
        // The one worker is still there.
        assert_eq!(workers.run(|| "still here").await, Some("still here"));
    }
}
