//! The error of a bad filter: what is wrong, and at which column.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct FilterError {
    pub message: String,
    pub column: usize,
}
