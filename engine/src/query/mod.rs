//! Filters and queries: the filter language (`parse` into `ast`, checked by
//! `eval`), the `plan` that maps it onto indexes, and `exec`, which runs it
//! over a snapshot.

pub mod ast;
mod error;
pub mod eval;
pub mod exec;
pub mod parse;
pub mod plan;

pub use ast::{CmpOp, FieldPath, Filter, Literal};
pub use error::FilterError;
pub use eval::CompiledFilter;
pub use exec::{Cursor, Page, Query};
pub use parse::{parse_filter, MAX_FILTER_BYTES, MAX_NESTING_DEPTH};
