//! Filters and queries: the filter language (`parse` into `ast`, checked by
//! `eval`), the `plan` that maps it onto indexes, and `exec`, which runs it
//! over a snapshot; `feed` reads matching events in arrival order from a
//! position (pull and tail); `facets` counts matches per time bucket and
//! top value.

pub mod ast;
mod error;
pub mod eval;
pub mod exec;
pub mod facets;
pub mod feed;
pub mod parse;
pub mod plan;

pub use ast::{CmpOp, FieldPath, Filter, Literal};
pub use error::FilterError;
pub use eval::CompiledFilter;
pub use exec::{Cursor, Page, Query};
pub use facets::{ActorCount, FacetLimits, FacetQuery, Facets};
pub use feed::{Feed, FeedEvent, FeedGap, FeedPage, FeedPosition, GapReason};
pub use parse::{parse_filter, MAX_FILTER_BYTES, MAX_NESTING_DEPTH};
