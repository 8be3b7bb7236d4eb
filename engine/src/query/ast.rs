//! The filter AST: what a parsed filter *means*, independent of its text.
//!
//! Owns: [`FieldPath`], [`Literal`], [`CmpOp`], [`Filter`] and their `Display`
//! impls, which print filter text that `crate::query::parse::parse_filter`
//! parses back to an equal value (for filters that the parser can produce).
//! Must never: depend on sqlparser types, evaluate events (that is
//! `crate::query::eval`), or panic while formatting.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use std::fmt;

/// A dotted path into the event, e.g. `["actor", "type"]`.
///
/// Segments are exact JSON object keys (case-sensitive, any characters,
/// possibly empty). In filter text a segment that is not a plain identifier is
/// written in double quotes: `request."x-forwarded-for"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldPath(pub Vec<String>);

impl FieldPath {
    /// The segments joined with `.` (e.g. `"actor.type"`).
    ///
    /// Lossy when a segment itself contains a `.`; use `Display` for text that
    /// can be parsed back.
    pub fn as_dotted(&self) -> String {
        self.0.join(".")
    }

    /// True when the path's segments are exactly `dotted` split on `.`,
    /// e.g. `path.is("actor.type")`. A segment containing a `.` never matches.
    pub fn is(&self, dotted: &str) -> bool {
        self.0.iter().map(String::as_str).eq(dotted.split('.'))
    }
}

impl From<&str> for FieldPath {
    /// Splits on `.`: `FieldPath::from("actor.type")`.
    fn from(dotted: &str) -> Self {
        FieldPath(dotted.split('.').map(str::to_owned).collect())
    }
}

/// A literal value on the right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `'text'`; the value is unescaped (`''` already turned into `'`).
    String(String),
    /// Any finite number; integers and decimals alike.
    Number(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `NULL`. Never produced by the parser inside `Compare`/`In` (use
    /// `IS NULL`); kept so hand-built filters are representable.
    Null,
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator as written in filter text (`!=` for [`CmpOp::Ne`]).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// A parsed filter. See `crate::query::eval` for the exact semantics.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// All must match. The parser flattens nested ANDs, so len >= 2.
    And(Vec<Filter>),
    /// Any must match. The parser flattens nested ORs, so len >= 2.
    Or(Vec<Filter>),
    /// Negation.
    Not(Box<Filter>),
    /// `path op value`.
    Compare {
        path: FieldPath,
        op: CmpOp,
        value: Literal,
    },
    /// `path [NOT] IN (v1, v2, ...)`; `values` is never empty.
    In {
        path: FieldPath,
        values: Vec<Literal>,
        negated: bool,
    },
    /// `path [NOT] LIKE 'pattern'`; `pattern` is the raw SQL pattern
    /// (`%`, `_`, backslash escapes still in it).
    Like {
        path: FieldPath,
        pattern: String,
        negated: bool,
    },
    /// `path IS [NOT] NULL`.
    IsNull { path: FieldPath, negated: bool },
}

/// Keywords printed double-quoted when they are a path segment: those that
/// sqlparser 0.55 does not read as a plain name in every position, plus the
/// operator keywords of the filter language. A unit test in
/// `crate::query::parse` checks every other sqlparser keyword works bare.
const KEYWORDS_NEEDING_QUOTES: &[&str] = &[
    "ALL", "AND", "ANY", "BETWEEN", "DISTINCT", "ESCAPE", "EXISTS", "FALSE", "FROM", "ILIKE", "IN",
    "INTERVAL", "IS", "LIKE", "NOT", "NULL", "OR", "SELECT", "SIMILAR", "SOME", "STRUCT", "TO",
    "TRIM", "TRUE", "UNKNOWN", "WITH",
];

/// True when `segment` can be written without quotes in filter text.
pub(crate) fn is_bare_segment(segment: &str) -> bool {
    let mut chars = segment.chars();
    let first_ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_');
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return false;
    }
    let upper = segment.to_ascii_uppercase();
    !KEYWORDS_NEEDING_QUOTES.contains(&upper.as_str())
}

impl fmt::Display for FieldPath {
    /// Prints `actor.type`, quoting odd segments: `a."odd key"."say ""hi"""`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            if is_bare_segment(segment) {
                f.write_str(segment)?;
            } else {
                write!(f, "\"{}\"", segment.replace('"', "\"\""))?;
            }
        }
        Ok(())
    }
}

impl fmt::Display for Literal {
    /// Strings are single-quoted with `'` doubled; numbers use the shortest
    /// text that reads back as the same `f64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Literal::Number(n) => {
                let magnitude = n.abs();
                if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
                    write!(f, "{n:e}")
                } else {
                    write!(f, "{n}")
                }
            }
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("NULL"),
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Filter {
    /// Writes `self` as an operand of AND/OR/NOT, adding parentheses only when
    /// precedence requires them (so printing never nests deeper than the
    /// text that was parsed).
    fn fmt_operand(&self, f: &mut fmt::Formatter<'_>, parent_is_and: bool) -> fmt::Result {
        let needs_parens = match self {
            Filter::Or(_) => true,
            Filter::And(_) => parent_is_and,
            _ => false,
        };
        if needs_parens {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }

    fn fmt_list(
        f: &mut fmt::Formatter<'_>,
        items: &[Filter],
        sep: &str,
        is_and: bool,
    ) -> fmt::Result {
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(sep)?;
            }
            item.fmt_operand(f, is_and)?;
        }
        Ok(())
    }
}

impl fmt::Display for Filter {
    /// Prints filter text, e.g. `actor.type = 'user' AND NOT (a = 1 OR b IS NULL)`.
    ///
    /// For every filter `parse_filter` can return, parsing the output gives an
    /// equal `Filter`. Degenerate hand-built `And`/`Or` with fewer than two
    /// children print their single child, or `(empty AND)` / `(empty OR)`,
    /// which does not parse.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(items) if items.is_empty() => f.write_str("(empty AND)"),
            Filter::Or(items) if items.is_empty() => f.write_str("(empty OR)"),
            Filter::And(items) => Filter::fmt_list(f, items, " AND ", true),
            Filter::Or(items) => Filter::fmt_list(f, items, " OR ", false),
            Filter::Not(inner) => {
                f.write_str("NOT ")?;
                match inner.as_ref() {
                    Filter::And(_) | Filter::Or(_) => write!(f, "({inner})"),
                    _ => write!(f, "{inner}"),
                }
            }
            Filter::Compare { path, op, value } => write!(f, "{path} {op} {value}"),
            Filter::In {
                path,
                values,
                negated,
            } => {
                write!(f, "{path} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(")")
            }
            Filter::Like {
                path,
                pattern,
                negated,
            } => write!(
                f,
                "{path} {}LIKE {}",
                if *negated { "NOT " } else { "" },
                Literal::String(pattern.clone())
            ),
            Filter::IsNull { path, negated } => {
                write!(f, "{path} IS {}NULL", if *negated { "NOT " } else { "" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> FieldPath {
        FieldPath::from(s)
    }

    #[test]
    fn field_path_helpers() {
        let path = p("actor.type");
        assert_eq!(path.0, vec!["actor".to_string(), "type".to_string()]);
        assert_eq!(path.as_dotted(), "actor.type");
        assert!(path.is("actor.type"));
        assert!(!path.is("actor"));
        assert!(!path.is("actor.type.x"));
        let dotted_key = FieldPath(vec!["a.b".into()]);
        assert!(!dotted_key.is("a.b"));
        assert_eq!(dotted_key.as_dotted(), "a.b");
    }

    #[test]
    fn field_path_display_quotes_odd_segments() {
        assert_eq!(p("actor.type").to_string(), "actor.type");
        let odd = FieldPath(vec![
            "a".into(),
            "odd key".into(),
            "say \"hi\"".into(),
            "".into(),
            "not".into(),
            "1x".into(),
            "é".into(),
        ]);
        assert_eq!(
            odd.to_string(),
            r#"a."odd key"."say ""hi""".""."not"."1x"."é""#
        );
    }

    #[test]
    fn literal_display() {
        assert_eq!(Literal::String("it's".into()).to_string(), "'it''s'");
        assert_eq!(Literal::Number(200.0).to_string(), "200");
        assert_eq!(Literal::Number(-1.5).to_string(), "-1.5");
        assert_eq!(Literal::Number(1e300).to_string(), "1e300");
        assert_eq!(Literal::Number(2.5e-9).to_string(), "2.5e-9");
        assert_eq!(Literal::Bool(true).to_string(), "true");
        assert_eq!(Literal::Null.to_string(), "NULL");
    }

    #[test]
    fn filter_display_uses_minimal_parentheses() {
        let a = Filter::Compare {
            path: p("a"),
            op: CmpOp::Eq,
            value: Literal::Number(1.0),
        };
        let b = Filter::IsNull {
            path: p("b"),
            negated: true,
        };
        let c = Filter::Like {
            path: p("c"),
            pattern: "x%".into(),
            negated: true,
        };
        let d = Filter::In {
            path: p("d"),
            values: vec![Literal::String("x".into()), Literal::Bool(false)],
            negated: true,
        };
        let or = Filter::Or(vec![a.clone(), b.clone()]);
        let and = Filter::And(vec![
            or.clone(),
            c.clone(),
            Filter::Not(Box::new(d.clone())),
        ]);
        assert_eq!(
            and.to_string(),
            "(a = 1 OR b IS NOT NULL) AND c NOT LIKE 'x%' AND NOT d NOT IN ('x', false)"
        );
        let or2 = Filter::Or(vec![Filter::And(vec![a.clone(), b.clone()]), c.clone()]);
        assert_eq!(
            or2.to_string(),
            "a = 1 AND b IS NOT NULL OR c NOT LIKE 'x%'"
        );
        assert_eq!(
            Filter::Not(Box::new(or)).to_string(),
            "NOT (a = 1 OR b IS NOT NULL)"
        );
        assert_eq!(Filter::And(vec![]).to_string(), "(empty AND)");
        assert_eq!(Filter::Or(vec![a]).to_string(), "a = 1");
    }

    #[test]
    fn cmp_op_text() {
        let all = [
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ];
        let text: Vec<_> = all.iter().map(|op| op.to_string()).collect();
        assert_eq!(text, ["=", "!=", "<", "<=", ">", ">="]);
    }
}
