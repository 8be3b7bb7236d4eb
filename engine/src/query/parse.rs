//! Parsing filter text into a [`Filter`].
//!
//! Owns: [`parse_filter`], the input limits ([`MAX_FILTER_BYTES`],
//! [`MAX_NESTING_DEPTH`], [`MAX_PATH_SEGMENTS`]), the token pre-scan that
//! keeps sqlparser away from pathological input, and the conversion of
//! sqlparser's `Expr` into our own AST (rejecting everything else).
//! Must never: panic or overflow the stack on any input, accept a construct
//! it cannot faithfully represent, or leak sqlparser types into its API.
//!
//! # How a filter is parsed
//!
//! 1. Size/blank checks, then sqlparser's tokenizer (GenericDialect).
//! 2. A pre-scan over the tokens (iterative, cheap) rejects tokens that can
//!    never appear in a filter, enforces the nesting/path limits, and requires
//!    a literal after every comparison operator. These rules also bound every
//!    recursive path inside sqlparser, some of which (e.g. `INTERVAL`,
//!    `ARRAY<...>`) are not covered by its own recursion limit.
//! 3. sqlparser's `parse_expr` runs on the caller's stack for filters nested
//!    at most [`INLINE_PARSE_DEPTH`] deep (nearly all of them), and on a
//!    short-lived thread with a large stack ([`PARSER_STACK_BYTES`]) for
//!    deeper ones: in debug builds sqlparser needs up to ~250 KiB of stack
//!    per parenthesis level (subqueries), far more than a 2 MiB thread has
//!    for 64 levels. A panic inside sqlparser is caught either way and
//!    reported as an error. The thread costs ~0.1-0.3 ms per call; fine for
//!    one filter per request, not for per-event use.
//! 4. The `Expr` is converted (iteratively along AND/OR chains) into
//!    [`Filter`], with the column of the offending node for every rejection.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]

use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, Function, FunctionArguments, ObjectNamePart, UnaryOperator,
    Value,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, TokenizerError};

use crate::query::ast::{CmpOp, FieldPath, Filter, Literal};
use crate::query::error::FilterError;
use crate::query::eval::{check_time_literal, excerpt, LikePattern};

/// Longest accepted filter text, in bytes (16 KiB).
pub const MAX_FILTER_BYTES: usize = 16 * 1024;

/// Most parentheses and `NOT` operators that may enclose any point of a
/// filter. `NOT (a = 1 AND NOT (b = 2))` reaches depth 4 at `b = 2`.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Most segments in one field path (`a.b.c` has 3).
pub const MAX_PATH_SEGMENTS: usize = 64;

/// sqlparser's own recursion limit: a backstop only. With the limits above a
/// valid filter needs at most about 2 * 64 + 64 levels.
const SQLPARSER_RECURSION_LIMIT: usize = 256;

/// Filters nested at most this deep (parentheses and `NOT`s, as
/// [`MAX_NESTING_DEPTH`] counts them) are parsed on the caller's stack;
/// deeper ones on a thread of their own with [`PARSER_STACK_BYTES`]. Starting
/// that thread for every filter (a 64 MiB stack mapped, then unmapped with a
/// TLB flush on every core) was 13% of a first-page query's CPU, and nearly
/// every real filter nests 0 to 3 levels (an `IN` list is one). A test parses the worst such
/// filters in 256 KiB of stack, unoptimised; server threads have 2 MiB.
const INLINE_PARSE_DEPTH: usize = 3;

/// Stack reserved for the parser thread. Only the pages actually touched are
/// committed. Measured need at the 64-level limit: under 16 MiB in an
/// unoptimised build (nested subqueries, the worst case), ~1.5 MiB optimised.
pub const PARSER_STACK_BYTES: usize = 64 * 1024 * 1024;

/// Parses filter text such as `actor.type = 'user' AND response.status >= 400`.
///
/// See `docs/QUERY.md` for the grammar. Errors carry a 1-based character
/// column. Blank input is an error (`empty filter`); callers handle "no
/// filter" themselves.
pub fn parse_filter(src: &str) -> Result<Filter, FilterError> {
    if src.len() > MAX_FILTER_BYTES {
        let mut cut = MAX_FILTER_BYTES;
        while !src.is_char_boundary(cut) {
            cut -= 1;
        }
        let column = src.get(..cut).map_or(1, |s| s.chars().count() + 1);
        return Err(FilterError::new(
            format!(
                "filter is too long: {} bytes, the maximum is {MAX_FILTER_BYTES}",
                src.len()
            ),
            column,
        ));
    }
    if src.trim().is_empty() {
        return Err(FilterError::new("empty filter", 1));
    }
    let cols = Columns::new(src);
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, src)
        .with_unescape(true)
        .tokenize_with_location()
        .map_err(|e| tokenizer_error(&e, &cols))?;
    if prescan(&tokens, &cols)? <= INLINE_PARSE_DEPTH {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_tokens(tokens, &cols)))
            .unwrap_or_else(|_| Err(parser_panicked()))
    } else {
        parse_on_big_stack(tokens, &cols)
    }
}

// ---------------------------------------------------------------------------
// Columns

/// Maps sqlparser's (line, column) to our single 1-based character column.
struct Columns {
    /// Character offset at which each line starts (line 1 starts at 0).
    line_starts: Vec<usize>,
    /// Column one past the last character.
    end: usize,
}

impl Columns {
    fn new(src: &str) -> Self {
        let mut line_starts = vec![0];
        let mut count = 0usize;
        for c in src.chars() {
            count += 1;
            if c == '\n' {
                line_starts.push(count);
            }
        }
        Columns {
            line_starts,
            end: count + 1,
        }
    }

    /// `None` for sqlparser's "empty" location (line 0).
    fn at(&self, loc: Location) -> Option<usize> {
        if loc.line == 0 || loc.column == 0 {
            return None;
        }
        let line = usize::try_from(loc.line).ok()?;
        let column = usize::try_from(loc.column).ok()?;
        let start = self.line_starts.get(line - 1)?;
        Some(start + column)
    }

    fn of(&self, token: &TokenWithSpan) -> usize {
        self.at(token.span.start).unwrap_or(1)
    }
}

// ---------------------------------------------------------------------------
// Error conversion

fn tokenizer_error(err: &TokenizerError, cols: &Columns) -> FilterError {
    let column = cols.at(err.location).unwrap_or(cols.end);
    FilterError::new(humanize(&err.message), column)
}

fn parser_error(err: ParserError, cols: &Columns) -> FilterError {
    match err {
        ParserError::RecursionLimitExceeded => FilterError::new(too_deep_message(), 1),
        ParserError::ParserError(msg) | ParserError::TokenizerError(msg) => {
            let (text, location) = split_location(&msg);
            let column = match location.and_then(|l| cols.at(l)) {
                Some(c) => c,
                None if text.contains("EOF") => cols.end,
                None => 1,
            };
            FilterError::new(humanize(text), column)
        }
    }
}

/// Splits sqlparser's "<message> at Line: L, Column: C".
fn split_location(msg: &str) -> (&str, Option<Location>) {
    let Some(at) = msg.rfind(" at Line: ") else {
        return (msg, None);
    };
    let text = msg.get(..at).unwrap_or(msg);
    let rest = msg.get(at + " at Line: ".len()..).unwrap_or("");
    let mut parts = rest.splitn(2, ", Column: ");
    let line = parts.next().and_then(|l| l.trim().parse::<u64>().ok());
    let column = parts.next().and_then(|c| c.trim().parse::<u64>().ok());
    match (line, column) {
        (Some(line), Some(column)) => (text, Some(Location { line, column })),
        _ => (text, None),
    }
}

/// Turns sqlparser's "Expected: X, found: Y" into our lower-case style.
fn humanize(text: &str) -> String {
    const MAX: usize = 200;
    let text = text.trim().replace("found: EOF", "found: end of filter");
    let text = match text.strip_prefix("Expected: ") {
        Some(rest) => format!("expected {}", rest.replacen(", found: ", ", found ", 1)),
        None => {
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => "syntax error".to_owned(),
            }
        }
    };
    if text.chars().count() > MAX {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    } else {
        text
    }
}

fn too_deep_message() -> String {
    format!(
        "filter is nested too deeply: more than {MAX_NESTING_DEPTH} levels of parentheses and NOT"
    )
}

/// A token as shown in messages: `'foo'`, `string 'abc'`, `end of filter`.
fn describe_token(token: Option<&Token>) -> String {
    match token {
        None | Some(Token::EOF) => "end of filter".to_owned(),
        Some(Token::SingleQuotedString(s)) => format!("string '{}'", excerpt(s)),
        Some(Token::Number(n, _)) => format!("number {}", excerpt(n)),
        Some(other) => format!("'{}'", excerpt(&other.to_string())),
    }
}

// ---------------------------------------------------------------------------
// Pre-scan

fn is_kw(token: Option<&Token>, keywords: &[Keyword]) -> bool {
    matches!(token, Some(Token::Word(w)) if w.quote_style.is_none() && keywords.contains(&w.keyword))
}

fn is_comparison(token: &Token) -> bool {
    matches!(
        token,
        Token::Eq | Token::Neq | Token::Lt | Token::LtEq | Token::Gt | Token::GtEq
    )
}

fn is_literal_token(token: Option<&Token>) -> bool {
    matches!(
        token,
        Some(Token::Number(..) | Token::SingleQuotedString(_))
    ) || is_kw(token, &[Keyword::TRUE, Keyword::FALSE, Keyword::NULL])
}

/// Keywords after which any word may follow (the next word starts an operand
/// or is part of a multi-word operator).
const LEAD_KEYWORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::IN,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::BETWEEN,
    Keyword::ESCAPE,
    Keyword::SIMILAR,
    Keyword::TO,
    Keyword::DISTINCT,
    Keyword::FROM,
];

/// Keywords that may directly follow a field name or literal.
const FOLLOW_KEYWORDS: &[Keyword] = &[
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::IN,
    Keyword::LIKE,
    Keyword::ILIKE,
    Keyword::BETWEEN,
    Keyword::ESCAPE,
    Keyword::SIMILAR,
    Keyword::TO,
    Keyword::DISTINCT,
    Keyword::FROM,
    Keyword::NULL,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::UNKNOWN,
];

/// Tokens that never appear in a filter, with a hint where one helps.
fn reject_token(token: &Token) -> Option<String> {
    let hint = match token {
        Token::Word(_)
        | Token::Number(..)
        | Token::SingleQuotedString(_)
        | Token::Comma
        | Token::LParen
        | Token::RParen
        | Token::Period
        | Token::Eq
        | Token::Neq
        | Token::Lt
        | Token::LtEq
        | Token::Gt
        | Token::GtEq
        | Token::Plus
        | Token::Minus
        | Token::Whitespace(_)
        | Token::EOF => return None,
        Token::DoubleEq => "use '=' to compare",
        Token::ExclamationMark | Token::DoubleExclamationMark => "use NOT, or '!=' for not-equal",
        Token::StringConcat | Token::Pipe => "use OR",
        Token::Ampersand | Token::Overlap => "use AND",
        Token::LBracket | Token::RBracket => "array indexing is not supported",
        Token::Mul | Token::Div | Token::Mod | Token::DuckIntDiv | Token::Caret => {
            "arithmetic is not supported"
        }
        Token::DoubleColon => "casts are not supported",
        Token::SemiColon => "a filter is a single condition",
        Token::Placeholder(_) => "query parameters are not supported",
        Token::DoubleQuotedString(_)
        | Token::TripleSingleQuotedString(_)
        | Token::TripleDoubleQuotedString(_)
        | Token::DollarQuotedString(_)
        | Token::SingleQuotedByteStringLiteral(_)
        | Token::DoubleQuotedByteStringLiteral(_)
        | Token::TripleSingleQuotedByteStringLiteral(_)
        | Token::TripleDoubleQuotedByteStringLiteral(_)
        | Token::SingleQuotedRawStringLiteral(_)
        | Token::DoubleQuotedRawStringLiteral(_)
        | Token::TripleSingleQuotedRawStringLiteral(_)
        | Token::TripleDoubleQuotedRawStringLiteral(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_) => "write strings as 'single quoted' text",
        _ => "",
    };
    let shown = describe_token(Some(token));
    Some(if hint.is_empty() {
        format!("unexpected {shown}")
    } else {
        format!("unexpected {shown} ({hint})")
    })
}

/// True when the literal at `sig[at]` (maybe after a sign) begins an operand,
/// as in `'user' = actor.type`, rather than ending one (`a + 1 = 2`).
fn literal_starts_operand(sig: &[&TokenWithSpan], at: usize) -> bool {
    let token_at = |i: Option<usize>| i.and_then(|i| sig.get(i)).map(|t| &t.token);
    let mut before = at.checked_sub(1);
    if matches!(token_at(before), Some(Token::Minus | Token::Plus)) {
        before = before.and_then(|b| b.checked_sub(1));
    }
    let prev = token_at(before);
    matches!(prev, None | Some(Token::LParen | Token::Comma))
        || is_kw(prev, &[Keyword::AND, Keyword::OR, Keyword::NOT])
}

/// Iterative checks over the token stream (see the module docs); returns
/// the deepest nesting of parentheses and `NOT`s met.
fn prescan(tokens: &[TokenWithSpan], cols: &Columns) -> Result<usize, FilterError> {
    let sig: Vec<&TokenWithSpan> = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)))
        .collect();
    if sig.is_empty() {
        return Err(FilterError::new("empty filter", 1));
    }
    let col_of = |i: usize| sig.get(i).map_or(cols.end, |t| cols.of(t));
    // (depth outside the parenthesis, column of the '(')
    let mut open: Vec<(usize, usize)> = Vec::new();
    let mut base = 0usize; // parentheses + NOTs enclosing the current group
    let mut not_run = 0usize; // prefix NOTs immediately before this token
    let mut deepest = 0usize;
    let mut segments = 0usize; // segments of the field path being read
    for (i, tok) in sig.iter().enumerate() {
        let token = &tok.token;
        let col = cols.of(tok);
        let prev = i.checked_sub(1).and_then(|j| sig.get(j)).map(|t| &t.token);
        let next = sig.get(i + 1).map(|t| &t.token);
        // A next token that is invalid by itself is reported on its own turn,
        // so the structural checks below only look at valid neighbours.
        let next_valid = !matches!(next, Some(t) if reject_token(t).is_some());

        if let Some(message) = reject_token(token) {
            return Err(FilterError::new(message, col));
        }

        // Nesting depth: parentheses and prefix NOTs. A NOT is infix only in
        // `IS NOT` and `field NOT IN/LIKE/...`; every other NOT counts.
        let infix_not = is_kw(prev, &[Keyword::IS])
            || (matches!(prev, Some(Token::Word(_)))
                && !is_kw(prev, LEAD_KEYWORDS)
                && is_kw(
                    next,
                    &[
                        Keyword::IN,
                        Keyword::LIKE,
                        Keyword::ILIKE,
                        Keyword::BETWEEN,
                        Keyword::SIMILAR,
                    ],
                ));
        let prefix_position = !infix_not;
        match token {
            Token::LParen => {
                let inner = base + not_run + 1;
                if inner > MAX_NESTING_DEPTH {
                    return Err(FilterError::new(too_deep_message(), col));
                }
                open.push((base, col));
                base = inner;
                deepest = deepest.max(inner);
                not_run = 0;
            }
            Token::RParen => {
                match open.pop() {
                    Some((outer, _)) => base = outer,
                    None => return Err(FilterError::new("unmatched ')'", col)),
                }
                not_run = 0;
            }
            Token::Word(_) if prefix_position && is_kw(Some(token), &[Keyword::NOT]) => {
                not_run += 1;
                if base + not_run > MAX_NESTING_DEPTH {
                    return Err(FilterError::new(too_deep_message(), col));
                }
                deepest = deepest.max(base + not_run);
            }
            _ => not_run = 0,
        }

        // AND / OR need a condition on their left.
        if is_kw(Some(token), &[Keyword::AND, Keyword::OR])
            && (matches!(prev, None | Some(Token::LParen | Token::Comma))
                || prev.is_some_and(is_comparison)
                || is_kw(prev, LEAD_KEYWORDS))
        {
            return Err(FilterError::new(
                format!(
                    "unexpected {} (expected a condition such as a = 1 before it)",
                    describe_token(Some(token))
                ),
                col,
            ));
        }

        // Comparisons: field on the left, literal on the right.
        if is_comparison(token) {
            if is_literal_token(prev) && literal_starts_operand(&sig, i - 1) {
                return Err(FilterError::new(
                    format!(
                        "the field must be on the left of '{token}' and the value on the right, \
                         e.g. actor.type = 'user'"
                    ),
                    col_of(i - 1),
                ));
            }
            let literal_next =
                is_literal_token(next) || matches!(next, Some(Token::Minus | Token::Plus));
            if !literal_next && next_valid {
                let found = describe_token(next);
                let message = if matches!(next, Some(Token::Word(_))) {
                    format!(
                        "expected a value after '{token}', found field {found} \
                         (comparing two fields is not supported; use a 'string', number, \
                         true or false)"
                    )
                } else {
                    format!(
                        "expected a value ('string', number, true, false) after '{token}', \
                         found {found}"
                    )
                };
                return Err(FilterError::new(message, col_of(i + 1)));
            }
        }

        // Signs only in front of numbers.
        if matches!(token, Token::Minus | Token::Plus)
            && !matches!(next, Some(Token::Number(..)))
            && next_valid
        {
            return Err(FilterError::new(
                format!(
                    "'{token}' must be followed by a number, found {}",
                    describe_token(next)
                ),
                col,
            ));
        }

        // Two words in a row: only keyword combinations such as `IS NOT NULL`.
        if let (Some(Token::Word(_)), Token::Word(_)) = (prev, token) {
            if !is_kw(prev, LEAD_KEYWORDS) && !is_kw(Some(token), FOLLOW_KEYWORDS) {
                return Err(FilterError::new(
                    format!(
                        "unexpected {} (expected an operator such as =, IN, LIKE, IS NULL, \
                         or AND/OR)",
                        describe_token(Some(token))
                    ),
                    col,
                ));
            }
        }

        // After a value or ')', a word must be an operator keyword.
        if matches!(token, Token::Word(_))
            && matches!(
                prev,
                Some(Token::Number(..) | Token::SingleQuotedString(_) | Token::RParen)
            )
            && !is_kw(Some(token), FOLLOW_KEYWORDS)
        {
            return Err(FilterError::new(
                format!(
                    "unexpected {} (expected AND, OR or the end of the filter)",
                    describe_token(Some(token))
                ),
                col,
            ));
        }

        // Field paths: `.` joins two names; bounded length.
        match token {
            Token::Period => {
                if !matches!(prev, Some(Token::Word(_))) {
                    return Err(FilterError::new(
                        "unexpected '.' (expected a field name before it)",
                        col,
                    ));
                }
                if !matches!(next, Some(Token::Word(_))) && next_valid {
                    return Err(FilterError::new(
                        format!(
                            "expected a field name after '.', found {} \
                             (quote odd names: a.\"odd name\")",
                            describe_token(next)
                        ),
                        col_of(i + 1),
                    ));
                }
            }
            Token::Word(_) => {
                segments = if matches!(prev, Some(Token::Period)) {
                    segments + 1
                } else {
                    1
                };
                if segments > MAX_PATH_SEGMENTS {
                    return Err(FilterError::new(
                        format!("field path has more than {MAX_PATH_SEGMENTS} segments"),
                        col,
                    ));
                }
            }
            _ => {}
        }
    }
    if let Some((_, open_col)) = open.last() {
        return Err(FilterError::new(
            format!("missing ')' for the '(' at column {open_col}"),
            cols.end,
        ));
    }
    Ok(deepest)
}

// ---------------------------------------------------------------------------
// Parsing on a dedicated stack

fn parse_on_big_stack(tokens: Vec<TokenWithSpan>, cols: &Columns) -> Result<Filter, FilterError> {
    std::thread::scope(|scope| {
        let spawned = std::thread::Builder::new()
            .name("filter-parser".to_owned())
            .stack_size(PARSER_STACK_BYTES)
            .spawn_scoped(scope, move || parse_tokens(tokens, cols));
        match spawned {
            Ok(handle) => handle.join().unwrap_or_else(|_| Err(parser_panicked())),
            Err(e) => Err(FilterError::new(
                format!("internal error: could not start the filter parser: {e}"),
                1,
            )),
        }
    })
}

fn parser_panicked() -> FilterError {
    FilterError::new("internal error: the filter parser panicked", 1)
}

fn parse_tokens(tokens: Vec<TokenWithSpan>, cols: &Columns) -> Result<Filter, FilterError> {
    let dialect = GenericDialect {};
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(SQLPARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let expr = parser.parse_expr().map_err(|e| parser_error(e, cols))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(FilterError::new(
            format!(
                "unexpected {} (expected AND, OR or the end of the filter)",
                describe_token(Some(&next.token))
            ),
            cols.at(next.span.start).unwrap_or(cols.end),
        ));
    }
    Converter { cols }.filter(&expr, 0, 1)
}

// ---------------------------------------------------------------------------
// Expr -> Filter

/// The identifier of a function "call" without parentheses. sqlparser parses
/// `user`, `current_user`, `current_timestamp`, ... that way; in a filter
/// they are field names.
fn bare_function_name(f: &Function) -> Option<Vec<String>> {
    let bare = matches!(f.args, FunctionArguments::None)
        && matches!(f.parameters, FunctionArguments::None)
        && f.filter.is_none()
        && f.null_treatment.is_none()
        && f.over.is_none()
        && f.within_group.is_empty()
        && !f.uses_odbc_syntax;
    if !bare {
        return None;
    }
    Some(
        f.name
            .0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => ident.value.clone(),
            })
            .collect(),
    )
}

/// A field path, if `e` is one.
fn path_of(e: &Expr) -> Option<FieldPath> {
    fn simple(e: &Expr) -> Option<Vec<String>> {
        match e {
            Expr::Identifier(ident) => Some(vec![ident.value.clone()]),
            Expr::CompoundIdentifier(parts) => {
                Some(parts.iter().map(|i| i.value.clone()).collect())
            }
            Expr::Function(f) => bare_function_name(f),
            _ => None,
        }
    }
    if let Expr::CompoundFieldAccess { root, access_chain } = e {
        let mut segments = simple(root)?;
        for access in access_chain {
            match access {
                AccessExpr::Dot(inner) => segments.extend(simple(inner)?),
                AccessExpr::Subscript(_) => return None,
            }
        }
        return Some(FieldPath(segments));
    }
    simple(e).map(FieldPath)
}

fn is_literal_expr(e: &Expr) -> bool {
    match e {
        Expr::Value(_) => true,
        Expr::UnaryOp {
            op: UnaryOperator::Minus | UnaryOperator::Plus,
            expr,
        } => matches!(expr.as_ref(), Expr::Value(_)),
        _ => false,
    }
}

fn cmp_op(op: &BinaryOperator) -> Option<CmpOp> {
    Some(match op {
        BinaryOperator::Eq => CmpOp::Eq,
        BinaryOperator::NotEq => CmpOp::Ne,
        BinaryOperator::Lt => CmpOp::Lt,
        BinaryOperator::LtEq => CmpOp::Le,
        BinaryOperator::Gt => CmpOp::Gt,
        BinaryOperator::GtEq => CmpOp::Ge,
        _ => return None,
    })
}

/// "X is/are not supported" for an expression the filter language lacks.
fn unsupported(e: &Expr) -> String {
    let what = match e {
        Expr::Function(f) => {
            return format!(
                "function calls are not supported ('{}(...)')",
                excerpt(&f.name.to_string())
            )
        }
        Expr::BinaryOp { op, .. } => {
            return match op {
                BinaryOperator::Plus
                | BinaryOperator::Minus
                | BinaryOperator::Multiply
                | BinaryOperator::Divide
                | BinaryOperator::Modulo => format!("arithmetic ('{op}') is not supported"),
                BinaryOperator::Xor => "XOR is not supported; use AND, OR and NOT".to_owned(),
                other => format!("operator '{other}' is not supported"),
            }
        }
        Expr::Case { .. } => "CASE expressions are",
        Expr::Cast { .. } => "casts are",
        Expr::Interval(_) => "INTERVAL values are",
        Expr::Exists { .. } | Expr::Subquery(_) | Expr::InSubquery { .. } => "subqueries are",
        Expr::Between { .. } => {
            return "BETWEEN is not supported; write `x >= low AND x <= high`".to_owned()
        }
        Expr::ILike { .. } => return "ILIKE is not supported; LIKE is case-sensitive".to_owned(),
        Expr::SimilarTo { .. } | Expr::RLike { .. } => "regular-expression matches are",
        Expr::IsTrue(_) | Expr::IsFalse(_) | Expr::IsNotTrue(_) | Expr::IsNotFalse(_) => {
            return "IS TRUE / IS FALSE is not supported; write `field = true`".to_owned()
        }
        Expr::IsUnknown(_) | Expr::IsNotUnknown(_) => "IS UNKNOWN is",
        Expr::IsDistinctFrom(..) | Expr::IsNotDistinctFrom(..) => "IS DISTINCT FROM is",
        Expr::Tuple(_) => "tuples are",
        Expr::TypedString { .. } => {
            return "typed literals are not supported; write a plain 'string'".to_owned()
        }
        Expr::CompoundFieldAccess { .. } => "array subscripts are",
        _ => "this kind of expression is",
    };
    format!("{what} not supported")
}

struct Converter<'a> {
    cols: &'a Columns,
}

impl Converter<'_> {
    /// Column where `e` starts: its leftmost identifier or literal, found
    /// without recursion (sqlparser's own `Spanned::span` recurses over the
    /// whole tree, which a long AND chain turns into thousands of frames).
    fn start_col(&self, mut e: &Expr) -> Option<usize> {
        loop {
            e = match e {
                Expr::Identifier(ident) => return self.cols.at(ident.span.start),
                Expr::CompoundIdentifier(parts) => {
                    return parts.first().and_then(|i| self.cols.at(i.span.start))
                }
                Expr::Value(v) => return self.cols.at(v.span.start),
                Expr::Function(f) => {
                    return f.name.0.first().and_then(|part| match part {
                        ObjectNamePart::Identifier(ident) => self.cols.at(ident.span.start),
                    })
                }
                Expr::CompoundFieldAccess { root, .. } => root,
                Expr::BinaryOp { left, .. } => left,
                Expr::UnaryOp { expr, .. }
                | Expr::Nested(expr)
                | Expr::IsNull(expr)
                | Expr::IsNotNull(expr)
                | Expr::IsTrue(expr)
                | Expr::IsFalse(expr)
                | Expr::IsNotTrue(expr)
                | Expr::IsNotFalse(expr)
                | Expr::IsUnknown(expr)
                | Expr::IsNotUnknown(expr)
                | Expr::IsDistinctFrom(expr, _)
                | Expr::IsNotDistinctFrom(expr, _)
                | Expr::InList { expr, .. }
                | Expr::InSubquery { expr, .. }
                | Expr::InUnnest { expr, .. }
                | Expr::Between { expr, .. }
                | Expr::Like { expr, .. }
                | Expr::ILike { expr, .. }
                | Expr::SimilarTo { expr, .. }
                | Expr::RLike { expr, .. }
                | Expr::Cast { expr, .. }
                | Expr::Collate { expr, .. } => expr,
                _ => return None,
            };
        }
    }

    fn error(&self, e: &Expr, fallback: usize, message: impl Into<String>) -> FilterError {
        FilterError::new(message, self.start_col(e).unwrap_or(fallback))
    }

    fn filter(&self, e: &Expr, depth: usize, fallback: usize) -> Result<Filter, FilterError> {
        let here = self.start_col(e).unwrap_or(fallback);
        if depth > MAX_NESTING_DEPTH {
            return Err(FilterError::new(too_deep_message(), here));
        }
        match e {
            Expr::BinaryOp {
                op: op @ (BinaryOperator::And | BinaryOperator::Or),
                ..
            } => {
                let operands = flatten(e, op, depth);
                let mut items = Vec::with_capacity(operands.len());
                for (operand, operand_depth) in operands {
                    items.push(self.filter(operand, operand_depth, here)?);
                }
                Ok(if *op == BinaryOperator::And {
                    Filter::And(items)
                } else {
                    Filter::Or(items)
                })
            }
            Expr::BinaryOp { left, op, right } => match cmp_op(op) {
                Some(op) => self.compare(left, op, right, here),
                None => Err(FilterError::new(unsupported(e), here)),
            },
            Expr::UnaryOp {
                op: UnaryOperator::Not,
                expr,
            } => Ok(Filter::Not(Box::new(self.filter(expr, depth + 1, here)?))),
            Expr::Nested(inner) => self.filter(inner, depth + 1, here),
            Expr::IsNull(inner) | Expr::IsNotNull(inner) => Ok(Filter::IsNull {
                path: self.path(inner, here, "IS NULL")?,
                negated: matches!(e, Expr::IsNotNull(_)),
            }),
            Expr::InList {
                expr,
                list,
                negated,
            } => {
                let path = self.path(expr, here, "IN")?;
                let mut values = Vec::with_capacity(list.len());
                for item in list {
                    let (value, column) = self.literal(item, here)?;
                    if value == Literal::Null {
                        return Err(FilterError::new(
                            "NULL is not allowed in an IN list; use `field IS NULL`",
                            column,
                        ));
                    }
                    check_time_literal(&path, &value).map_err(|m| FilterError::new(m, column))?;
                    values.push(value);
                }
                Ok(Filter::In {
                    path,
                    values,
                    negated: *negated,
                })
            }
            Expr::Like {
                negated,
                any,
                expr,
                pattern,
                escape_char,
            } => {
                if *any {
                    return Err(FilterError::new("LIKE ANY is not supported", here));
                }
                if escape_char.is_some() {
                    return Err(self.error(
                        pattern,
                        here,
                        "ESCAPE is not supported; LIKE patterns always use backslash as the \
                         escape character",
                    ));
                }
                let path = self.path(expr, here, "LIKE")?;
                let text = match pattern.as_ref() {
                    Expr::Value(v) => match &v.value {
                        Value::SingleQuotedString(s) => Some(s.clone()),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(text) = text else {
                    return Err(self.error(
                        pattern,
                        here,
                        "LIKE needs a 'quoted' pattern, e.g. action_name LIKE 'items.%'",
                    ));
                };
                LikePattern::new(&text).map_err(|m| self.error(pattern, here, m))?;
                Ok(Filter::Like {
                    path,
                    pattern: text,
                    negated: *negated,
                })
            }
            Expr::Identifier(_)
            | Expr::CompoundIdentifier(_)
            | Expr::CompoundFieldAccess { .. }
            | Expr::Function(_)
                if path_of(e).is_some() =>
            {
                let shown = path_of(e)
                    .map(|p| excerpt(&p.to_string()))
                    .unwrap_or_default();
                Err(FilterError::new(
                    format!(
                        "field '{shown}' on its own is not a condition; compare it, e.g. \
                         {shown} = true or {shown} IS NOT NULL"
                    ),
                    here,
                ))
            }
            _ if is_literal_expr(e) => Err(FilterError::new(
                "a value on its own is not a condition; compare a field with it, e.g. \
                 actor.type = 'user'",
                here,
            )),
            other => Err(FilterError::new(unsupported(other), here)),
        }
    }

    fn path(&self, e: &Expr, fallback: usize, context: &str) -> Result<FieldPath, FilterError> {
        path_of(e).ok_or_else(|| {
            self.error(
                e,
                fallback,
                format!("{context} must be applied to a field path such as actor.type"),
            )
        })
    }

    /// A literal and the column where it starts.
    fn literal(&self, e: &Expr, fallback: usize) -> Result<(Literal, usize), FilterError> {
        let column = self.start_col(e).unwrap_or(fallback);
        let (negate, value) = match e {
            Expr::Value(v) => (false, &v.value),
            Expr::UnaryOp {
                op: op @ (UnaryOperator::Minus | UnaryOperator::Plus),
                expr,
            } => match expr.as_ref() {
                Expr::Value(v) if matches!(v.value, Value::Number(..)) => {
                    (*op == UnaryOperator::Minus, &v.value)
                }
                _ => {
                    return Err(FilterError::new(
                        format!("'{op}' can only be used directly before a number"),
                        column,
                    ))
                }
            },
            _ if path_of(e).is_some() => {
                return Err(FilterError::new(
                    "comparing two fields is not supported; the right-hand side must be a \
                     'string', number, true or false",
                    column,
                ))
            }
            other => {
                return Err(FilterError::new(
                    format!(
                        "expected a value ('string', number, true, false): {}",
                        unsupported(other)
                    ),
                    column,
                ))
            }
        };
        let literal = match value {
            Value::SingleQuotedString(s) => Literal::String(s.clone()),
            Value::Number(n, _) => {
                let text = n.to_string();
                match text.parse::<f64>() {
                    Ok(x) if x.is_finite() => Literal::Number(if negate { -x } else { x }),
                    Ok(_) => {
                        return Err(FilterError::new(
                            format!("number {} is out of range", excerpt(&text)),
                            column,
                        ))
                    }
                    Err(_) => {
                        return Err(FilterError::new(
                            format!("invalid number {}", excerpt(&text)),
                            column,
                        ))
                    }
                }
            }
            Value::Boolean(b) => Literal::Bool(*b),
            Value::Null => Literal::Null,
            other => {
                return Err(FilterError::new(
                    format!(
                        "unsupported literal {}; write strings as 'single quoted' text",
                        excerpt(&other.to_string())
                    ),
                    column,
                ))
            }
        };
        Ok((literal, column))
    }

    fn compare(
        &self,
        left: &Expr,
        op: CmpOp,
        right: &Expr,
        fallback: usize,
    ) -> Result<Filter, FilterError> {
        let Some(path) = path_of(left) else {
            let plain_operand = matches!(
                left,
                Expr::Nested(_) | Expr::Value(_) | Expr::UnaryOp { .. }
            ) || matches!(left, Expr::BinaryOp { op, .. }
                    if cmp_op(op).is_some() || matches!(op, BinaryOperator::And | BinaryOperator::Or));
            let message = if path_of(right).is_some() && is_literal_expr(left) {
                format!(
                    "the field must be on the left of '{op}' and the value on the right, \
                     e.g. actor.type = 'user'"
                )
            } else if plain_operand {
                format!("the left side of '{op}' must be a field path such as actor.type")
            } else {
                format!(
                    "{} (the left side of '{op}' must be a field path)",
                    unsupported(left)
                )
            };
            return Err(self.error(left, fallback, message));
        };
        let (value, column) = self.literal(right, fallback)?;
        let problem = match (&value, op) {
            (Literal::Null, CmpOp::Eq) => Some("`= NULL` never matches; use `IS NULL`".to_owned()),
            (Literal::Null, CmpOp::Ne) => {
                Some("comparing with NULL never matches; use `IS NOT NULL`".to_owned())
            }
            (Literal::Null, _) => Some(format!(
                "NULL cannot be compared with '{op}'; use IS NULL or IS NOT NULL"
            )),
            (Literal::Bool(_), CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge) => Some(format!(
                "'{op}' cannot be used with true/false; use = or !="
            )),
            _ => None,
        };
        if let Some(message) = problem {
            return Err(FilterError::new(message, column));
        }
        check_time_literal(&path, &value).map_err(|m| FilterError::new(m, column))?;
        Ok(Filter::Compare { path, op, value })
    }
}

/// The operands of a chain of `op` (AND or OR), left to right, looking
/// through parentheses that wrap the same operator; each with its nesting
/// depth. Iterative, so a 2000-term chain costs no stack.
fn flatten<'e>(e: &'e Expr, op: &BinaryOperator, depth: usize) -> Vec<(&'e Expr, usize)> {
    let mut out = Vec::new();
    let mut stack = vec![(e, depth)];
    while let Some((current, d)) = stack.pop() {
        if let Expr::BinaryOp {
            left,
            op: inner_op,
            right,
        } = current
        {
            if inner_op == op {
                stack.push((right.as_ref(), d));
                stack.push((left.as_ref(), d));
                continue;
            }
        }
        if let Expr::Nested(_) = current {
            let mut peeled = current;
            let mut levels = 0usize;
            while let Expr::Nested(inner) = peeled {
                peeled = inner;
                levels += 1;
            }
            if matches!(peeled, Expr::BinaryOp { op: inner_op, .. } if inner_op == op) {
                stack.push((peeled, d + levels));
                continue;
            }
        }
        out.push((current, d));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(src: &str) -> Filter {
        match parse_filter(src) {
            Ok(f) => f,
            Err(e) => panic!("{src:?} should parse: {e}"),
        }
    }

    /// The nesting `prescan` measures, which picks the stack to parse on.
    fn depth(src: &str) -> usize {
        let cols = Columns::new(src);
        let tokens = Tokenizer::new(&GenericDialect {}, src)
            .with_unescape(true)
            .tokenize_with_location()
            .unwrap();
        prescan(&tokens, &cols).unwrap()
    }

    /// Filters parsed on the caller's stack fit in an eighth of a server
    /// thread's 2 MiB, in an unoptimised build too (a stack overflow here
    /// aborts the test binary).
    #[test]
    fn shallow_filters_parse_on_a_small_stack() {
        let chain = (0..500)
            .map(|i| format!("payload.f{i} = {i}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let filters = [
            "NOT (actor.type = 'user' AND request.path LIKE '/items/%' OR response.status >= 400)"
                .to_owned(),
            "(a = 1 OR (b IN ('x', 'y', 'z') AND c IS NOT NULL)) AND d NOT LIKE 'q%'".to_owned(),
            "NOT (a = 1 OR b IN (1, 2)) AND (c = 3 OR (d = 4 AND e = 5))".to_owned(),
            "(((actor.id = '4845293')))".to_owned(),
            "NOT (environment.id = 'main')".to_owned(),
            "((actor.id = '4845293'))".to_owned(),
            chain,
        ];
        for f in filters {
            assert!(depth(&f) <= INLINE_PARSE_DEPTH, "{f} takes the inline path");
            let parsed = std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn(move || parse_filter(&f).map(|_| ()).map_err(|e| (f, e)))
                .unwrap()
                .join()
                .unwrap();
            assert!(parsed.is_ok(), "{parsed:?}");
        }
        // Either stack gives the same answer, for shallow and deep filters.
        for src in [
            "NOT (a = 1 OR (b = 2 AND (c = 3 OR d = 4)))",
            "NOT (a = 1 OR (b = 2 AND c = 3))",
            "(a = 1 OR (b IN ('x', 'y') AND NOT c = 3))",
            "a = 1 AND",
        ] {
            let cols = Columns::new(src);
            let tokens = Tokenizer::new(&GenericDialect {}, src)
                .with_unescape(true)
                .tokenize_with_location()
                .unwrap();
            let inline = parse_tokens(tokens.clone(), &cols).map_err(|e| e.to_string());
            let threaded = parse_on_big_stack(tokens, &cols).map_err(|e| e.to_string());
            assert_eq!(inline, threaded, "{src}");
        }
        assert_eq!(
            depth("NOT (a = 1 OR (b = 2 AND (c = 3 OR d = 4)))"),
            INLINE_PARSE_DEPTH + 1
        );
    }

    fn err(src: &str) -> FilterError {
        match parse_filter(src) {
            Ok(f) => panic!("{src:?} should fail, got {f:?}"),
            Err(e) => e,
        }
    }

    /// Asserts the error column and that the message contains `needle`.
    fn err_at(src: &str, column: usize, needle: &str) {
        let e = err(src);
        assert_eq!(e.column, column, "column for {src:?}: {e}");
        assert!(
            e.message.contains(needle),
            "message for {src:?} should contain {needle:?}: {e}"
        );
    }

    fn path(dotted: &str) -> FieldPath {
        FieldPath::from(dotted)
    }

    fn cmp(p: &str, op: CmpOp, value: Literal) -> Filter {
        Filter::Compare {
            path: path(p),
            op,
            value,
        }
    }

    fn s(v: &str) -> Literal {
        Literal::String(v.to_owned())
    }

    fn n(v: f64) -> Literal {
        Literal::Number(v)
    }

    // --- the five required filters -------------------------------------

    #[test]
    fn required_filters() {
        assert_eq!(
            ok("action_name = 'items.update'"),
            cmp("action_name", CmpOp::Eq, s("items.update"))
        );
        assert_eq!(
            ok("actor.type = 'user'"),
            cmp("actor.type", CmpOp::Eq, s("user"))
        );
        assert_eq!(
            ok("actor.type = 'user' AND actor.id = '4845293'"),
            Filter::And(vec![
                cmp("actor.type", CmpOp::Eq, s("user")),
                cmp("actor.id", CmpOp::Eq, s("4845293")),
            ])
        );
        assert_eq!(
            ok("request.path = '/items/239408/publish'"),
            cmp("request.path", CmpOp::Eq, s("/items/239408/publish"))
        );
        assert_eq!(
            ok("action_name = 'items.create' AND request.payload.data.relationships.item_type.data.id = '855832'"),
            Filter::And(vec![
                cmp("action_name", CmpOp::Eq, s("items.create")),
                cmp(
                    "request.payload.data.relationships.item_type.data.id",
                    CmpOp::Eq,
                    s("855832")
                ),
            ])
        );
    }

    // --- constructs ------------------------------------------------------

    #[test]
    fn comparison_operators() {
        let ops = [
            ("=", CmpOp::Eq),
            ("!=", CmpOp::Ne),
            ("<>", CmpOp::Ne),
            ("<", CmpOp::Lt),
            ("<=", CmpOp::Le),
            (">", CmpOp::Gt),
            (">=", CmpOp::Ge),
        ];
        for (text, op) in ops {
            assert_eq!(
                ok(&format!("response.status {text} 200")),
                cmp("response.status", op, n(200.0))
            );
            assert_eq!(
                ok(&format!("response.status{text}200")),
                cmp("response.status", op, n(200.0))
            );
        }
    }

    #[test]
    fn literals() {
        assert_eq!(ok("a = 'it''s'"), cmp("a", CmpOp::Eq, s("it's")));
        assert_eq!(ok("a = ''"), cmp("a", CmpOp::Eq, s("")));
        assert_eq!(
            ok("a = 'back\\slash'"),
            cmp("a", CmpOp::Eq, s("back\\slash"))
        );
        assert_eq!(
            ok("a = 'multi\nline'"),
            cmp("a", CmpOp::Eq, s("multi\nline"))
        );
        assert_eq!(ok("a = 'ünïcödé 🎉'"), cmp("a", CmpOp::Eq, s("ünïcödé 🎉")));
        assert_eq!(ok("a = 42"), cmp("a", CmpOp::Eq, n(42.0)));
        assert_eq!(ok("a = -42"), cmp("a", CmpOp::Eq, n(-42.0)));
        assert_eq!(ok("a = - 42"), cmp("a", CmpOp::Eq, n(-42.0)));
        assert_eq!(ok("a = +4.5"), cmp("a", CmpOp::Eq, n(4.5)));
        assert_eq!(ok("a = 0.25"), cmp("a", CmpOp::Eq, n(0.25)));
        assert_eq!(ok("a = .5"), cmp("a", CmpOp::Eq, n(0.5)));
        assert_eq!(ok("a = -1.5e3"), cmp("a", CmpOp::Eq, n(-1500.0)));
        assert_eq!(ok("a = 1e-7"), cmp("a", CmpOp::Eq, n(1e-7)));
        assert_eq!(
            ok("a = 18446744073709551616"),
            cmp("a", CmpOp::Eq, n(18446744073709551616.0))
        );
        assert_eq!(ok("a = true"), cmp("a", CmpOp::Eq, Literal::Bool(true)));
        assert_eq!(ok("a != FALSE"), cmp("a", CmpOp::Ne, Literal::Bool(false)));
    }

    #[test]
    fn keywords_are_case_insensitive_and_names_are_not() {
        let lower = ok("not a = 1 and b is not null or c not in (1) or d not like 'x' or e in (2) or f like 'y' or g is null");
        let upper = ok("NOT a = 1 AND b IS NOT NULL OR c NOT IN (1) OR d NOT LIKE 'x' OR e IN (2) OR f LIKE 'y' OR g IS NULL");
        assert_eq!(lower, upper);
        assert_eq!(
            ok("Actor.Type = TRUE"),
            cmp("Actor.Type", CmpOp::Eq, Literal::Bool(true))
        );
    }

    #[test]
    fn and_or_not_and_parentheses() {
        let a = || cmp("a", CmpOp::Eq, n(1.0));
        let b = || cmp("b", CmpOp::Eq, n(2.0));
        let c = || cmp("c", CmpOp::Eq, n(3.0));
        assert_eq!(ok("a = 1 OR b = 2"), Filter::Or(vec![a(), b()]));
        assert_eq!(ok("NOT a = 1"), Filter::Not(Box::new(a())));
        assert_eq!(ok("NOT (a = 1)"), Filter::Not(Box::new(a())));
        assert_eq!(
            ok("NOT NOT a = 1"),
            Filter::Not(Box::new(Filter::Not(Box::new(a()))))
        );
        assert_eq!(ok("((a = 1))"), a());
        // AND binds tighter than OR; NOT tighter than AND.
        assert_eq!(
            ok("a = 1 OR b = 2 AND c = 3"),
            Filter::Or(vec![a(), Filter::And(vec![b(), c()])])
        );
        assert_eq!(
            ok("(a = 1 OR b = 2) AND c = 3"),
            Filter::And(vec![Filter::Or(vec![a(), b()]), c()])
        );
        assert_eq!(
            ok("NOT a = 1 AND b = 2"),
            Filter::And(vec![Filter::Not(Box::new(a())), b()])
        );
        assert_eq!(
            ok("NOT (a = 1 AND b = 2)"),
            Filter::Not(Box::new(Filter::And(vec![a(), b()])))
        );
    }

    #[test]
    fn and_or_are_flattened() {
        let a = || cmp("a", CmpOp::Eq, n(1.0));
        let b = || cmp("b", CmpOp::Eq, n(2.0));
        let c = || cmp("c", CmpOp::Eq, n(3.0));
        let d = || cmp("d", CmpOp::Eq, n(4.0));
        assert_eq!(
            ok("a = 1 AND b = 2 AND c = 3"),
            Filter::And(vec![a(), b(), c()])
        );
        assert_eq!(
            ok("a = 1 AND (b = 2 AND c = 3)"),
            Filter::And(vec![a(), b(), c()])
        );
        assert_eq!(
            ok("((a = 1 AND b = 2)) AND (c = 3 AND d = 4)"),
            Filter::And(vec![a(), b(), c(), d()])
        );
        assert_eq!(
            ok("a = 1 OR (b = 2 OR (c = 3 OR d = 4))"),
            Filter::Or(vec![a(), b(), c(), d()])
        );
        // Different operators are not merged.
        assert_eq!(
            ok("a = 1 AND (b = 2 OR c = 3) AND d = 4"),
            Filter::And(vec![a(), Filter::Or(vec![b(), c()]), d()])
        );
        // NOT blocks flattening.
        assert_eq!(
            ok("a = 1 AND NOT (b = 2 AND c = 3)"),
            Filter::And(vec![
                a(),
                Filter::Not(Box::new(Filter::And(vec![b(), c()])))
            ])
        );
    }

    #[test]
    fn in_and_not_in() {
        assert_eq!(
            ok("actor.type IN ('user', 'token')"),
            Filter::In {
                path: path("actor.type"),
                values: vec![s("user"), s("token")],
                negated: false
            }
        );
        assert_eq!(
            ok("response.status not in (200, -1, 'x', true)"),
            Filter::In {
                path: path("response.status"),
                values: vec![n(200.0), n(-1.0), s("x"), Literal::Bool(true)],
                negated: true
            }
        );
        assert_eq!(
            ok("NOT a IN (1)"),
            Filter::Not(Box::new(Filter::In {
                path: path("a"),
                values: vec![n(1.0)],
                negated: false
            }))
        );
    }

    #[test]
    fn like_and_not_like() {
        assert_eq!(
            ok("action_name LIKE 'items.%'"),
            Filter::Like {
                path: path("action_name"),
                pattern: "items.%".into(),
                negated: false
            }
        );
        assert_eq!(
            ok("request.path NOT LIKE '/items/\\_%'"),
            Filter::Like {
                path: path("request.path"),
                pattern: "/items/\\_%".into(),
                negated: true
            }
        );
    }

    #[test]
    fn is_null_and_is_not_null() {
        assert_eq!(
            ok("role IS NULL"),
            Filter::IsNull {
                path: path("role"),
                negated: false
            }
        );
        assert_eq!(
            ok("actor.name is not null"),
            Filter::IsNull {
                path: path("actor.name"),
                negated: true
            }
        );
    }

    #[test]
    fn keyword_path_segments() {
        for (src, p) in [
            ("actor.type = 'x'", "actor.type"),
            ("type = 'x'", "type"),
            ("environment.primary = true", "environment.primary"),
            ("primary = true", "primary"),
            ("response.status = 1", "response.status"),
            ("status = 1", "status"),
            ("data.id = 1", "data.id"),
            ("id = 1", "id"),
            ("user = 'x'", "user"),
            ("user.name = 'x'", "user.name"),
            ("current_user = 'x'", "current_user"),
            ("a.current_timestamp = 'x'", "a.current_timestamp"),
            ("date = 'x'", "date"),
            ("timestamp < '2024-01-01T00:00:00Z'", "timestamp"),
            ("select = 1", "select"),
            ("order.group.table = 1", "order.group.table"),
            ("case = 1", "case"),
            ("end = 1", "end"),
        ] {
            match ok(src) {
                Filter::Compare { path: got, .. } => assert_eq!(got, path(p), "{src}"),
                other => panic!("{src}: {other:?}"),
            }
        }
    }

    #[test]
    fn quoted_path_segments() {
        assert_eq!(
            ok(r#"request.headers."x-forwarded-for" = '1.2.3.4'"#),
            Filter::Compare {
                path: FieldPath(vec![
                    "request".into(),
                    "headers".into(),
                    "x-forwarded-for".into()
                ]),
                op: CmpOp::Eq,
                value: s("1.2.3.4")
            }
        );
        assert_eq!(
            ok(r#""odd key"."say ""hi""".""."NOT" IS NULL"#),
            Filter::IsNull {
                path: FieldPath(vec![
                    "odd key".into(),
                    "say \"hi\"".into(),
                    "".into(),
                    "NOT".into()
                ]),
                negated: false
            }
        );
        assert_eq!(ok("`back`.tick = 1"), cmp("back.tick", CmpOp::Eq, n(1.0)));
        // quoting keeps case and dots
        assert_eq!(
            ok(r#"a."B.c" = 1"#),
            Filter::Compare {
                path: FieldPath(vec!["a".into(), "B.c".into()]),
                op: CmpOp::Eq,
                value: n(1.0)
            }
        );
    }

    #[test]
    fn whitespace_and_comments_are_ignored() {
        assert_eq!(
            ok("  actor.type\n\t=\r\n'user'  -- trailing comment"),
            cmp("actor.type", CmpOp::Eq, s("user"))
        );
        assert_eq!(
            ok("/* leading */ actor . type = 'user'"),
            cmp("actor.type", CmpOp::Eq, s("user"))
        );
    }

    #[test]
    fn occurred_at_literals_are_validated() {
        assert_eq!(
            ok("occurred_at >= '2024-01-01T00:00:00Z'"),
            cmp("occurred_at", CmpOp::Ge, s("2024-01-01T00:00:00Z"))
        );
        ok("occurred_at < '2024-01-01T00:00:00.123456789+05:30'");
        ok("occurred_at IN ('2024-01-01T00:00:00Z')");
        ok("occurred_at LIKE '2024-%'");
        ok("occurred_at IS NOT NULL");
        err_at("occurred_at >= '2024-01-01'", 16, "RFC 3339");
        err_at("occurred_at = 'yesterday'", 15, "RFC 3339");
        err_at("occurred_at > 1700000000", 15, "RFC 3339 timestamp string");
        err_at(
            "occurred_at IN ('2024-01-01T00:00:00Z', 'x')",
            41,
            "RFC 3339",
        );
        // Only the top-level key is special.
        ok("request.occurred_at >= 'whenever'");
    }

    // --- errors ----------------------------------------------------------

    #[test]
    fn errors_required_by_the_spec() {
        err_at("action_name = ", 15, "expected a value");
        err_at("action_name =", 14, "end of filter");
        err_at("actor.type == 'x'", 12, "'=='");
        err_at("foo(1)", 1, "function calls are not supported ('foo(...)')");
        err_at("a = b", 5, "comparing two fields");
        err_at("actor.type = actor.id", 14, "comparing two fields");
        err_at("a = 'unterminated", 5, "unterminated string");
        err_at("a = 'x' AND b = 'y", 17, "unterminated string");
    }

    #[test]
    fn error_columns_for_common_mistakes() {
        err_at("", 1, "empty filter");
        err_at("   \n\t ", 1, "empty filter");
        err_at("-- only a comment", 1, "empty filter");
        err_at("a = 1 b", 7, "unexpected 'b'");
        err_at("a = 'x' 'y'", 9, "unexpected string 'y'");
        err_at("(a = 1", 7, "missing ')' for the '(' at column 1");
        err_at("a = 1)", 6, "unmatched ')'");
        err_at(
            "a = 1 AND",
            10,
            "expected an expression, found end of filter",
        );
        err_at("a = 1 AND AND b = 1", 11, "unexpected 'AND'");
        err_at("OR a = 1", 1, "unexpected 'OR'");
        err_at("(AND a = 1)", 2, "unexpected 'AND'");
        err_at("NOT AND a = 1", 5, "unexpected 'AND'");
        err_at("x = NULL", 5, "IS NULL");
        err_at("x != NULL", 6, "IS NOT NULL");
        err_at("x < NULL", 5, "IS NULL");
        err_at("x >= true", 6, "true/false");
        err_at("'user' = actor.type", 1, "field must be on the left");
        err_at("1 < a", 1, "field must be on the left");
        err_at("x = 1 OR -1 < a", 11, "field must be on the left");
        err_at("a = 1 = 2", 1, "left side of '=' must be a field path");
        err_at("a = -b", 5, "'-' must be followed by a number");
        err_at("a[1] = 2", 2, "array indexing");
        err_at("a = 1; DROP TABLE x", 6, "single condition");
        err_at("a = 1 && b = 2", 7, "use AND");
        err_at("a = 1 || b = 2", 7, "use OR");
        err_at("!a", 1, "use NOT");
        err_at("a = 1 * 2", 7, "arithmetic");
        err_at("a::int = 1", 2, "casts");
        err_at("a = $1", 5, "parameters");
        err_at("a = \"quoted\"", 5, "comparing two fields");
        err_at("a = E'x'", 5, "single quoted");
        err_at("a = X'1F'", 5, "single quoted");
        err_at("a + 1 = 2", 1, "left side of '=' must be a field path");
        err_at("a = 1 + 2", 5, "arithmetic ('+')");
        err_at("a", 1, "field 'a' on its own is not a condition");
        err_at("actor.type", 1, "field 'actor.type' on its own");
        err_at("a = 1 AND b", 11, "field 'b' on its own");
        err_at("true", 1, "value on its own");
        err_at("a IS", 5, "end of filter");
        err_at("a. = 1", 4, "expected a field name after '.'");
        err_at(".a = 1", 1, "unexpected '.'");
        err_at("a..b = 1", 3, "expected a field name after '.'");
        err_at("a.'b' = 1", 3, "expected a field name after '.'");
        err_at("actor type = 'x'", 7, "unexpected 'type'");
        err_at("a IN ()", 7, "expected an expression");
        err_at("a IN (NULL)", 7, "NULL is not allowed in an IN list");
        err_at("a IN (b)", 7, "comparing two fields");
        err_at("a IN ('x', 1 + 1)", 12, "expected a value");
        err_at("a LIKE b", 8, "'quoted' pattern");
        err_at("a LIKE 'x\\'", 8, "lone backslash");
        err_at("a LIKE 'x' ESCAPE '!'", 8, "ESCAPE is not supported");
        err_at("a ILIKE 'x'", 1, "ILIKE");
        err_at("a BETWEEN 1 AND 2", 1, "BETWEEN");
        err_at("a IS TRUE", 1, "IS TRUE");
        err_at("a IS DISTINCT FROM 'x'", 1, "IS DISTINCT FROM");
        err_at("CASE WHEN a = 1 THEN true END", 6, "unexpected 'WHEN'");
        err_at("a = 1 XOR b = 2", 7, "unexpected 'XOR'");
        err_at("(a, b) = (1, 2)", 10, "expected a value");
        err_at("a = (1)", 5, "expected a value");
        err_at(
            "lower(a) = 'x'",
            1,
            "function calls are not supported ('lower(...)')",
        );
        err_at("a IN (SELECT 1)", 1, "subqueries are not supported");
        err_at("EXISTS (SELECT 1)", 1, "subqueries are not supported");
        err_at("a = 1e999", 5, "out of range");
    }

    #[test]
    fn columns_count_characters_across_lines() {
        // é is two bytes but one column.
        err_at("é = 1 b", 7, "unexpected 'b'");
        // Line 2 starts at column 7 ("a = 1\n" is 6 characters).
        err_at("a = 1\nAND b == 2", 13, "'=='");
        err_at("a = 1\r\nAND\nb = 'open", 16, "unterminated string");
        err_at("a = 1 AND\n", 11, "end of filter");
    }

    #[test]
    fn messages_quote_at_most_a_short_excerpt() {
        let long = "x".repeat(5000);
        let e = err(&format!("a = 1 '{long}'"));
        assert!(e.message.len() < 300, "{}", e.message.len());
        let e = err(&format!("a = 1 {long}"));
        assert!(e.message.len() < 300, "{}", e.message.len());
    }

    // --- limits ----------------------------------------------------------

    #[test]
    fn filter_length_limit() {
        let twenty_kib = format!("a = '{}'", "x".repeat(20 * 1024));
        err_at(&twenty_kib, 16385, "too long");
        err_at(&"(".repeat(100_000), 16385, "too long");
        // multi-byte characters: the column counts characters
        let wide = format!("a = '{}'", "é".repeat(9000));
        // bytes 16383..16385 hold the character that crosses the limit: column 5 + 8189 + 1
        err_at(&wide, 8195, "too long");
        // exactly at the limit is fine
        let at_limit = format!("a = '{}'", "x".repeat(MAX_FILTER_BYTES - 6));
        assert_eq!(at_limit.len(), MAX_FILTER_BYTES);
        ok(&at_limit);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        err_at(&"(".repeat(10_000), 65, "nested too deeply");
        let parens = format!("{}a = 1{}", "(".repeat(5000), ")".repeat(5000));
        err_at(&parens, 65, "nested too deeply");
        let nots = format!("{}a = 1", "NOT ".repeat(3000));
        err_at(&nots, 4 * 64 + 1, "nested too deeply");
        let mixed = format!("{}a = 1", "NOT (".repeat(1000));
        err_at(&mixed, 5 * 32 + 1, "nested too deeply");
        err_at(&"- ".repeat(3000), 1, "'-' must be followed by a number");
        err_at(
            &format!("a = {}1", "- ".repeat(3000)),
            5,
            "'-' must be followed",
        );
    }

    #[test]
    fn nesting_up_to_the_limit_works() {
        let parens = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
        assert_eq!(ok(&parens), cmp("a", CmpOp::Eq, n(1.0)));
        let nots = format!("{}a = 1", "NOT ".repeat(64));
        let mut f = ok(&nots);
        let mut count = 0;
        while let Filter::Not(inner) = f {
            f = *inner;
            count += 1;
        }
        assert_eq!(count, 64);
        // 32 x (NOT + paren) = 64 levels
        ok(&format!("{}a = 1{}", "NOT (".repeat(32), ")".repeat(32)));
        // infix NOT (IS NOT, NOT IN, NOT LIKE) does not count ...
        ok(&format!(
            "{}a IS NOT NULL AND b NOT LIKE 'x'{}",
            "(".repeat(64),
            ")".repeat(64)
        ));
        // ... but the parentheses of an IN list do
        ok(&format!("{}b NOT IN (1){}", "(".repeat(63), ")".repeat(63)));
        err_at(
            &format!("{}b NOT IN (1){}", "(".repeat(64), ")".repeat(64)),
            74,
            "nested too deeply",
        );
    }

    #[test]
    fn worst_case_nesting_parses_on_the_parser_stack() {
        // Alternating AND/OR/NOT with 64 levels and a 64-segment path at the
        // bottom: the deepest sqlparser recursion a valid filter can cause.
        let long_path = vec!["p"; 64].join(".");
        let mut src = String::new();
        for i in 0..32 {
            let op = if i % 2 == 0 { "AND" } else { "OR" };
            src.push_str(&format!("a{i} = 1 {op} NOT ("));
        }
        src.push_str(&format!("{long_path} = 1 OR {long_path} LIKE '%'"));
        src.push_str(&")".repeat(32));
        ok(&src);
        // one more level is rejected
        err(&format!("NOT ({src})"));
    }

    #[test]
    fn unsupported_constructs_nested_to_the_limit_fail_cleanly() {
        // Valid for the pre-scan (64 levels) but rejected later; these drive
        // sqlparser through its heaviest recursive paths.
        let templates: [(&str, &str, &str); 12] = [
            ("f(", "1", ")"),
            ("(SELECT ", "1", ")"),
            ("NOT EXISTS (SELECT ", "1", ")"),
            ("a IN (", "1", ")"),
            ("INTERVAL (", "1", ")"),
            ("(SELECT 1 FROM (", "SELECT 1", "))"),
            ("1 IN (SELECT 1 IN (", "1", "))"),
            ("(SELECT 1 IN (", "1", "))"),
            ("(SELECT 1 FROM t, (", "SELECT 1", "))"),
            ("(SELECT 1 FROM (SELECT ", "1", "))"),
            ("NOT (SELECT NOT (", "1", "))"),
            ("f(f(1), (", "1", "))"),
        ];
        for (open, middle, close) in templates {
            let parens_per_level = open.matches('(').count();
            for levels in [32, 63, 64, 65] {
                let reps = levels / parens_per_level;
                let src = format!("{}{middle}{}", open.repeat(reps), close.repeat(reps));
                if src.len() > MAX_FILTER_BYTES {
                    continue;
                }
                let e = err(&src);
                assert!(!e.message.starts_with("internal"), "{src}: {e}");
            }
        }
    }

    #[test]
    fn path_length_limit() {
        let p64 = vec!["a"; 64].join(".");
        match ok(&format!("{p64} = 1")) {
            Filter::Compare { path, .. } => assert_eq!(path.0.len(), 64),
            other => panic!("{other:?}"),
        }
        let p65 = vec!["a"; 65].join(".");
        err_at(&format!("{p65} = 1"), 129, "more than 64 segments");
        let p5000 = vec!["a"; 5000].join(".");
        err_at(&p5000, 129, "more than 64 segments");
    }

    #[test]
    fn long_flat_chains_are_fine() {
        // ~16 KiB of ANDs: thousands of operands, no deep recursion anywhere.
        let terms: Vec<String> = (0..1000).map(|i| format!("a{i} = {i}")).collect();
        let src = terms.join(" AND ");
        assert!(src.len() <= MAX_FILTER_BYTES);
        match ok(&src) {
            Filter::And(items) => assert_eq!(items.len(), 1000),
            other => panic!("{other:?}"),
        }
        let src = vec!["a = 1"; 1500].join(" OR ");
        match ok(&src) {
            Filter::Or(items) => assert_eq!(items.len(), 1500),
            other => panic!("{other:?}"),
        }
        let values: Vec<String> = (0..3000).map(|i| i.to_string()).collect();
        match ok(&format!("a IN ({})", values.join(","))) {
            Filter::In { values, .. } => assert_eq!(values.len(), 3000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn pathological_inputs_are_rejected_without_overflow() {
        let cases = [
            format!("a{}", " = 1".repeat(4000)),
            format!("a{}", "=1".repeat(8000)),
            format!("a{}", " IS NULL".repeat(2000)),
            format!("a{}", " LIKE 'x'".repeat(1600)),
            format!("a{}", " IN (1)".repeat(2000)),
            format!("a{}", " BETWEEN 1 AND 2".repeat(1000)),
            format!("a{}", " COLLATE x".repeat(1500)),
            format!("a{}", " AT TIME ZONE 'x'".repeat(900)),
            format!("a = {}INT{} '1'", "ARRAY<".repeat(2000), ">".repeat(2000)),
            format!("{}INT{} '1' = a", "STRUCT<".repeat(1800), ">".repeat(1800)),
            format!(
                "CAST(a AS {}INT{})",
                "ARRAY<".repeat(2000),
                ">".repeat(2000)
            ),
            format!("{}1", "INTERVAL ".repeat(1800)),
            format!(
                "a = {}1{}",
                "CASE WHEN 1 THEN ".repeat(700),
                " END".repeat(700)
            ),
            format!("{}1{}", "CASE WHEN 1 THEN ".repeat(700), " END".repeat(700)),
            format!("{}a", "EXISTS ".repeat(2000)),
            format!("a{}", "[1]".repeat(5000)),
            format!("a = {}1{}", "[".repeat(5000), "]".repeat(5000)),
            format!("{}1", "DATE ".repeat(3000)),
            format!("a = 1 AND {}", "a.".repeat(5000)),
            format!("{}a", "NOT a IS ".repeat(1500)),
            format!("f({}1{})", "f(".repeat(3000), ")".repeat(3000)),
            "/* /* /* nested comments */ */ */ a = 1 /*".repeat(300),
        ];
        for src in &cases {
            assert!(src.len() <= MAX_FILTER_BYTES, "{}", src.len());
            let e = err(src);
            assert!(!e.message.starts_with("internal"), "{e}");
            assert!(e.column >= 1 && e.column <= src.chars().count() + 1, "{e}");
        }
    }

    // --- keywords as names -----------------------------------------------

    #[test]
    fn every_unquoted_keyword_works_as_a_path_segment_where_display_leaves_it_bare() {
        let mut failures = Vec::new();
        for keyword in sqlparser::keywords::ALL_KEYWORDS {
            let k = keyword.to_lowercase();
            if !crate::query::ast::is_bare_segment(&k) {
                // Quoted form must always work.
                let quoted = format!("\"{k}\".\"{keyword}\" = 1");
                if parse_filter(&quoted).is_err() {
                    failures.push(quoted);
                }
                continue;
            }
            let cases: Vec<(String, Vec<&str>)> = vec![
                (format!("{k} = 1"), vec![&k]),
                (format!("a.{k} = 1"), vec!["a", &k]),
                (format!("{k}.a = 1"), vec![&k, "a"]),
                (format!("a.{k}.b = 1"), vec!["a", &k, "b"]),
                (format!("x = 1 AND {k} = 1"), vec![&k]),
                (format!("x = 1 OR {k} != 1"), vec![&k]),
                (format!("NOT {k} IS NULL"), vec![&k]),
                (format!("({k} IN (1))"), vec![&k]),
                (format!("x IN (1) AND {k} LIKE 'x'"), vec![&k]),
                (format!("{k} NOT LIKE 'x'"), vec![&k]),
                (format!("{k} NOT IN (1)"), vec![&k]),
                (format!("{k} IS NOT NULL"), vec![&k]),
                (format!("{k} < 1 AND x = 1"), vec![&k]),
            ];
            for (src, want) in cases {
                let want = FieldPath(want.iter().map(|s| s.to_string()).collect());
                match parse_filter(&src) {
                    Ok(f) if format!("{f:?}").contains(&format!("{want:?}")) => {}
                    other => failures.push(format!("{src} => {other:?}")),
                }
            }
        }
        assert!(failures.is_empty(), "{failures:#?}");
    }

    // --- property tests --------------------------------------------------

    fn segment() -> impl Strategy<Value = String> {
        prop_oneof![
            6 => "[a-z_][a-z0-9_]{0,8}",
            2 => prop::sample::select(vec![
                "type", "primary", "status", "data", "id", "user", "current_user", "date",
                "timestamp", "select", "from", "not", "and", "null", "interval", "case", "end",
                "TYPE", "Id",
            ])
            .prop_map(String::from),
            1 => "(?s).{0,6}",
        ]
    }

    fn field_path() -> impl Strategy<Value = FieldPath> {
        prop::collection::vec(segment(), 1..4)
            .prop_map(FieldPath)
            .prop_filter("occurred_at has its own generator", |p| {
                !p.is(crate::query::eval::TIME_FIELD)
            })
    }

    fn number() -> impl Strategy<Value = f64> {
        prop_oneof![
            (-1000i64..1000).prop_map(|i| i as f64),
            prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
        ]
    }

    fn value() -> impl Strategy<Value = Literal> {
        prop_oneof![
            "(?s).{0,12}".prop_map(Literal::String),
            number().prop_map(Literal::Number),
            any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn timestamp() -> impl Strategy<Value = Literal> {
        (
            1970i32..2100,
            1u8..=12,
            1u8..=28,
            0u8..24,
            0u8..60,
            0u32..1_000_000,
            -12i8..=12,
        )
            .prop_map(|(y, mo, d, h, mi, us, off)| {
                let sign = if off < 0 { '-' } else { '+' };
                Literal::String(format!(
                    "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:07.{us:06}{sign}{:02}:00",
                    off.unsigned_abs()
                ))
            })
    }

    fn cmp_op_strategy() -> impl Strategy<Value = CmpOp> {
        prop::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
        ])
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        prop_oneof![
            (field_path(), cmp_op_strategy(), value()).prop_map(|(path, op, value)| {
                let ordering = !matches!(op, CmpOp::Eq | CmpOp::Ne);
                let value = match value {
                    Literal::Bool(_) if ordering => Literal::Number(1.0),
                    other => other,
                };
                Filter::Compare { path, op, value }
            }),
            (cmp_op_strategy(), timestamp()).prop_map(|(op, value)| Filter::Compare {
                path: FieldPath::from("occurred_at"),
                op,
                value
            }),
            (
                field_path(),
                prop::collection::vec(value(), 1..4),
                any::<bool>()
            )
                .prop_map(|(path, values, negated)| Filter::In {
                    path,
                    values,
                    negated
                }),
            (field_path(), "(?s).{0,10}", any::<bool>())
                .prop_filter("valid LIKE pattern", |(_, p, _)| LikePattern::new(p)
                    .is_ok())
                .prop_map(|(path, pattern, negated)| Filter::Like {
                    path,
                    pattern,
                    negated
                }),
            (field_path(), any::<bool>())
                .prop_map(|(path, negated)| Filter::IsNull { path, negated }),
        ]
    }

    /// Flattens AND-in-AND and OR-in-OR, as the parser does.
    fn normalize(f: Filter) -> Filter {
        fn merge(items: Vec<Filter>, is_and: bool) -> Vec<Filter> {
            let mut out = Vec::new();
            for item in items.into_iter().map(normalize) {
                match item {
                    Filter::And(inner) if is_and => out.extend(inner),
                    Filter::Or(inner) if !is_and => out.extend(inner),
                    other => out.push(other),
                }
            }
            out
        }
        match f {
            Filter::And(items) => Filter::And(merge(items, true)),
            Filter::Or(items) => Filter::Or(merge(items, false)),
            Filter::Not(inner) => Filter::Not(Box::new(normalize(*inner))),
            other => other,
        }
    }

    fn filter_strategy() -> impl Strategy<Value = Filter> {
        leaf()
            .prop_recursive(5, 48, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
                    prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
                    inner.prop_map(|f| Filter::Not(Box::new(f))),
                ]
            })
            .prop_map(normalize)
    }

    /// Fragments that make random input likely to reach the parser.
    fn soup() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "(",
            ")",
            "NOT",
            "AND",
            "OR",
            "a",
            "b.c",
            "\"q\"",
            "=",
            "!=",
            "<>",
            "<",
            ">=",
            "'x'",
            "'",
            "\"",
            "1",
            "-2.5",
            "-",
            "+",
            ",",
            ".",
            "IN",
            "LIKE",
            "IS",
            "NULL",
            "TRUE",
            "INTERVAL",
            "CASE",
            "WHEN",
            "END",
            "CAST",
            "AS",
            "ARRAY",
            "[",
            "]",
            "{",
            "}",
            "::",
            "!",
            "==",
            "/*",
            "*/",
            "--",
            "\n",
            "é",
            "occurred_at",
            "'2024-01-01T00:00:00Z'",
            "user",
            "ESCAPE",
            "BETWEEN",
            "SELECT",
            "EXISTS",
            "f(",
            "\\",
            "%",
            ";",
            "$1",
            "?",
            "@",
            "#",
            "e'x'",
            "x'1f'",
            "1e400",
            "0x10",
            ":",
        ]);
        prop::collection::vec((pieces, prop::bool::ANY), 0..40).prop_map(|parts| {
            let mut out = String::new();
            for (piece, space) in parts {
                out.push_str(piece);
                if space {
                    out.push(' ');
                }
            }
            out
        })
    }

    fn check_outcome(src: &str) -> Result<(), TestCaseError> {
        match parse_filter(src) {
            Ok(f) => {
                // Whatever parses prints to text that parses back to the same filter.
                let printed = f.to_string();
                let again = parse_filter(&printed);
                prop_assert_eq!(again.as_ref(), Ok(&f), "printed: {}", printed);
            }
            Err(e) => {
                prop_assert!(!e.message.starts_with("internal"), "{}", e);
                prop_assert!(e.column >= 1, "{}", e);
                prop_assert!(e.column <= src.chars().count() + 1, "{} for {:?}", e, src);
            }
        }
        Ok(())
    }

    proptest! {
        // 512 cases unless PROPTEST_CASES says otherwise (for longer local runs).
        #![proptest_config(ProptestConfig {
            cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(512),
            ..ProptestConfig::default()
        })]

        #[test]
        fn display_round_trips(f in filter_strategy()) {
            let text = f.to_string();
            prop_assume!(text.len() <= MAX_FILTER_BYTES);
            let parsed = parse_filter(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&f), "text: {}", text);
        }

        #[test]
        fn never_panics_on_arbitrary_text(src in "(?s).{0,200}") {
            check_outcome(&src)?;
        }

        #[test]
        fn never_panics_on_token_soup(src in soup()) {
            check_outcome(&src)?;
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            check_outcome(&String::from_utf8_lossy(&bytes))?;
        }
    }
}
