//! The single error type of the filter language.
//!
//! Owns: [`FilterError`], the message + 1-based column reported for every
//! rejected filter. Must never: carry secrets or unbounded copies of user
//! input (quote at most a short excerpt of the offending text).

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

/// A filter that could not be parsed or compiled.
///
/// `column` is 1-based and counts characters (Unicode scalar values) from the
/// start of the filter text; a line break counts as one character, so a
/// multi-line filter is numbered as if it were written on one line. Errors
/// that concern the end of the input (e.g. a missing value) point one past the
/// last character.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at column {column})")]
pub struct FilterError {
    /// What is wrong, in lower case, without the column.
    pub message: String,
    /// 1-based character column where the problem was detected.
    pub column: usize,
}

impl FilterError {
    /// Builds an error; a column of 0 is bumped to 1 so columns are always 1-based.
    pub fn new(message: impl Into<String>, column: usize) -> Self {
        FilterError {
            message: message.into(),
            column: column.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_includes_column() {
        let e = FilterError::new("unexpected 'x'", 7);
        assert_eq!(e.to_string(), "unexpected 'x' (at column 7)");
    }

    #[test]
    fn column_is_never_zero() {
        assert_eq!(FilterError::new("m", 0).column, 1);
    }
}
