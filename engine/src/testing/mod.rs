//! Helpers shared by tests and benchmarks: a simulated file system that can
//! lose power, tear writes, fail syncs and fill up. Never used on real
//! data paths.

pub mod forge;
pub mod fuzzing;
pub mod gen;
mod simfs;
pub use simfs::{Fault, SimFs};
