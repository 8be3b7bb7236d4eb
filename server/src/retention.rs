//! The retention period in force and the background task that applies it.
//!
//! The period starts as the stored setting (`server-settings` in the data
//! directory) when an admin ever set one, else as `--retention-days` /
//! `retention_days` from the config. `set` stores a new period durably and
//! wakes the task, which applies it at once and then every hour. 0 days
//! means keep everything. Dropping is the engine's job (whole segments whose
//! newest event is older than the cutoff); this module only decides when.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use auditlog_engine::{Engine, Timestamp};
use tokio::sync::{watch, Mutex};

use crate::api::metrics::Metrics;
use crate::settings::{self, SettingsError, StoredSettings};

/// How often retention runs when nothing changes.
const PERIOD: Duration = Duration::from_secs(3600);

pub struct Retention {
    data: PathBuf,
    days: watch::Sender<u32>,
    /// The last stored setting; the lock also serialises `set` so the
    /// file and the value in force never disagree.
    stored: Mutex<Option<StoredSettings>>,
}

impl Retention {
    /// Loads the stored setting of `data`, falling back to `initial_days`.
    pub fn open(data: PathBuf, initial_days: u32) -> Result<Retention, SettingsError> {
        let stored = settings::load(&data)?;
        let days = match &stored {
            Some(s) => {
                if s.retention_days != initial_days {
                    tracing::warn!(
                        stored = s.retention_days,
                        configured = initial_days,
                        by = %s.updated_by,
                        "the retention period set through the API wins over the configured one"
                    );
                }
                s.retention_days
            }
            None => initial_days,
        };
        Ok(Retention {
            data,
            days: watch::Sender::new(days),
            stored: Mutex::new(stored),
        })
    }

    pub fn days(&self) -> u32 {
        *self.days.borrow()
    }

    /// The stored setting, `None` while the configured value is in force.
    pub async fn stored(&self) -> Option<StoredSettings> {
        self.stored.lock().await.clone()
    }

    /// Stores a new period durably, then puts it in force.
    pub async fn set(&self, days: u32, by: &str) -> Result<StoredSettings, SettingsError> {
        let mut stored = self.stored.lock().await;
        let s = StoredSettings {
            retention_days: days,
            updated_at: Timestamp::now().to_rfc3339(),
            updated_by: by.to_owned(),
        };
        let (data, to_save) = (self.data.clone(), s.clone());
        tokio::task::spawn_blocking(move || settings::save(&data, &to_save))
            .await
            .map_err(|e| SettingsError::Io {
                path: settings::path_in(&self.data),
                source: std::io::Error::other(e.to_string()),
            })??;
        *stored = Some(s.clone());
        self.days.send_replace(days);
        Ok(s)
    }

    /// Drops what the period in force has expired, now, after every change
    /// and every hour, until the server stops.
    pub async fn run(self: Arc<Self>, engine: Engine, metrics: Arc<Metrics>) {
        let mut changes = self.days.subscribe();
        loop {
            let days = *changes.borrow_and_update();
            if days > 0 {
                let period = i64::from(days) * 86_400 * 1_000_000;
                let cutoff = Timestamp(Timestamp::now().as_micros().saturating_sub(period));
                let engine = engine.clone();
                match tokio::task::spawn_blocking(move || engine.drop_before(cutoff)).await {
                    Ok(Ok(r)) => {
                        metrics.record_retention(&r);
                        if r.segments > 0 {
                            tracing::info!(
                                days,
                                segments = r.segments,
                                events = r.events,
                                bytes = r.bytes,
                                "retention dropped expired segments"
                            );
                        }
                    }
                    Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
                    Err(e) => tracing::error!(error = %e, "retention task failed"),
                }
            }
            tokio::select! {
                () = tokio::time::sleep(PERIOD) => {}
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
    }
}
