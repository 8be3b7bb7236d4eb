//! Filters and queries: the filter language (`parse`, `ast`, `eval`) and
//! its execution over a snapshot (`plan`, `exec`).

mod error;
pub use error::FilterError;
