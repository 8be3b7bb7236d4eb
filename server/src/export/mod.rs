//! Exports: turning stored events into CSV, NDJSON or JSON files.
//!
//! - `format`: the columns, quoting and framing of each format;
//! - `run`: one export over a snapshot, produced page by page;
//! - `jobs`: background export jobs and their files in `<data>/exports/`;
//! - `streamed`: the outcomes (signed manifests) of recent streamed exports.
//!
//! The HTTP handlers (`api::export`) and `auditlog export` call these; no
//! HTTP here.

pub mod format;
pub mod jobs;
pub mod run;
pub mod streamed;
