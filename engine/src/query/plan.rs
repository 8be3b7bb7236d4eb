//! Planning: which part of a filter the indexes answer exactly, and which
//! part must be checked on decoded events.
//!
//! A filter becomes a tree of [`Node`]s. Per segment, each node yields a
//! bitmap of candidate ordinals and whether that bitmap is *exact* (every
//! candidate matches) or a *superset* (candidates still need the residual
//! check). `occurred_at` bounds in the top-level AND are folded into the
//! time range, which the executor applies from the time column.
//! Planning never reads event bodies; the executor does.
//!
//! A term on any other path becomes a [`Node::Path`]: exact in a sealed
//! segment for which a query already built that path's value index
//! (`index::path`, cached), a superset like any residual term elsewhere.

use roaring::{MultiOps, RoaringBitmap};

use crate::error::Result;
use crate::index::IndexedField;
use crate::query::ast::{CmpOp, FieldPath, Filter, Literal};
use crate::segment::SegmentView;
use crate::types::{TimeRange, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// Every event in the time range.
    All,
    /// Events whose `field` is one of `values`.
    Index {
        field: IndexedField,
        values: Vec<String>,
    },
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A term that tests only `path` (not `occurred_at`): answered by the
    /// path's value index where one is cached, else a residual.
    Path {
        path: FieldPath,
        term: Filter,
    },
    /// Not answerable from indexes: every event is a candidate.
    Residual,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub range: TimeRange,
    pub root: Node,
}

impl Plan {
    pub fn new(filter: Option<&Filter>, range: TimeRange) -> Plan {
        let mut range = range;
        let root = match filter {
            None => Node::All,
            Some(Filter::And(children)) => Node::And(
                children
                    .iter()
                    .map(|c| fold_time(c, &mut range).unwrap_or_else(|| node(c)))
                    .collect(),
            ),
            Some(f) => fold_time(f, &mut range).unwrap_or_else(|| node(f)),
        };
        Plan { range, root }
    }

    /// True when the indexes and the time column answer the whole filter.
    pub fn is_exact(&self) -> bool {
        exact(&self.root)
    }

    /// Candidate ordinals in `seg` (within its visible events), and whether
    /// they are exact. The time range is not applied here.
    pub fn candidates(&self, seg: &SegmentView) -> Result<(RoaringBitmap, bool)> {
        eval(&self.root, seg)
    }

    /// The distinct paths of [`Node::Path`] terms.
    pub fn paths(&self) -> Vec<&FieldPath> {
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a FieldPath>) {
            match n {
                Node::Path { path, .. } if !out.contains(&path) => out.push(path),
                Node::And(c) | Node::Or(c) => c.iter().for_each(|c| walk(c, out)),
                Node::Not(c) => walk(c, out),
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }
}

fn exact(n: &Node) -> bool {
    match n {
        Node::All | Node::Index { .. } => true,
        // Exact only where an index happens to be cached: not statically.
        Node::Residual | Node::Path { .. } => false,
        Node::And(c) | Node::Or(c) => c.iter().all(exact),
        Node::Not(c) => exact(c),
    }
}

fn all(seg: &SegmentView) -> RoaringBitmap {
    let mut b = RoaringBitmap::new();
    b.insert_range(0..seg.event_count());
    b
}

fn eval(n: &Node, seg: &SegmentView) -> Result<(RoaringBitmap, bool)> {
    Ok(match n {
        Node::All => (all(seg), true),
        Node::Residual => (all(seg), false),
        Node::Path { path, term } => match seg.path_answer(path, term) {
            Some(b) => (b, true),
            None => (all(seg), false),
        },
        Node::Index { field, values } => {
            let found = values
                .iter()
                .map(|v| seg.index_lookup(*field, v))
                .collect::<Result<Vec<_>>>()?;
            // A multi-way union accumulates in bitmap form: far cheaper than
            // merging sorted arrays two at a time.
            (found.iter().map(|b| &**b).union(), true)
        }
        Node::And(children) => {
            let mut acc: Option<RoaringBitmap> = None;
            let mut is_exact = true;
            // Exact children first: they are cheap and shrink the set most.
            for c in children {
                let (b, e) = eval(c, seg)?;
                is_exact &= e;
                acc = Some(match acc {
                    Some(a) => a & b,
                    None => b,
                });
                if acc.as_ref().is_some_and(RoaringBitmap::is_empty) {
                    return Ok((RoaringBitmap::new(), true));
                }
            }
            (acc.unwrap_or_else(|| all(seg)), is_exact)
        }
        Node::Or(children) => {
            let mut is_exact = true;
            let mut parts = Vec::with_capacity(children.len());
            for c in children {
                let (b, e) = eval(c, seg)?;
                is_exact &= e;
                parts.push(b);
            }
            (parts.union(), is_exact)
        }
        Node::Not(child) => {
            let (b, e) = eval(child, seg)?;
            if e {
                (all(seg) - b, true)
            } else {
                // The complement of a superset is not a superset.
                (all(seg), false)
            }
        }
    })
}

fn indexed(path: &crate::query::ast::FieldPath) -> Option<IndexedField> {
    // Segment-wise comparison: a quoted key "actor.type" is not actor -> type.
    IndexedField::ALL.into_iter().find(|f| path.is(f.path()))
}

fn string_values(values: &[Literal]) -> Vec<String> {
    // Indexed fields always hold strings; other literals never match.
    values
        .iter()
        .filter_map(|v| match v {
            Literal::String(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn node(f: &Filter) -> Node {
    match f {
        Filter::And(c) => Node::And(c.iter().map(node).collect()),
        Filter::Or(c) => Node::Or(c.iter().map(node).collect()),
        Filter::Not(c) => Node::Not(Box::new(node(c))),
        Filter::Compare { path, op, value } => match (indexed(path), op) {
            (Some(field), CmpOp::Eq) => Node::Index {
                field,
                values: string_values(std::slice::from_ref(value)),
            },
            (Some(field), CmpOp::Ne) => Node::Not(Box::new(Node::Index {
                field,
                values: string_values(std::slice::from_ref(value)),
            })),
            _ => path_node(path, f),
        },
        Filter::In {
            path,
            values,
            negated,
        } => match indexed(path) {
            Some(field) => {
                let n = Node::Index {
                    field,
                    values: string_values(values),
                };
                if *negated {
                    Node::Not(Box::new(n))
                } else {
                    n
                }
            }
            None => path_node(path, f),
        },
        Filter::IsNull { path, negated } => match indexed(path) {
            // Indexed fields are required (or defaulted): never null.
            Some(_) if *negated => Node::All,
            Some(_) => Node::Not(Box::new(Node::All)),
            None => path_node(path, f),
        },
        Filter::Like { path, .. } => path_node(path, f),
    }
}

/// A leaf term on `path`: a path-index term, except on `occurred_at`,
/// whose comparisons are between instants and are left to the residual.
fn path_node(path: &FieldPath, term: &Filter) -> Node {
    if path.is(crate::query::eval::TIME_FIELD) {
        return Node::Residual;
    }
    Node::Path {
        path: path.clone(),
        term: term.clone(),
    }
}

/// Folds `occurred_at <op> 'time'` into `range`; `Some(All)` when folded.
fn fold_time(f: &Filter, range: &mut TimeRange) -> Option<Node> {
    let Filter::Compare {
        path,
        op,
        value: Literal::String(s),
    } = f
    else {
        return None;
    };
    if !path.is("occurred_at") {
        return None;
    }
    // Stored times have microsecond precision; a literal with finer digits
    // is left to the residual check, which compares at full precision.
    let t = Timestamp::parse_rfc3339(s)?;
    let exact_micros =
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .is_ok_and(|d| d.nanosecond() % 1000 == 0);
    if !exact_micros {
        return None;
    }
    let after = |t: Timestamp| Timestamp(t.0.saturating_add(1));
    let (from, to) = match op {
        CmpOp::Ge => (Some(t), None),
        CmpOp::Gt => (Some(after(t)), None),
        CmpOp::Lt => (None, Some(t)),
        CmpOp::Le => (None, Some(after(t))),
        CmpOp::Eq => (Some(t), Some(after(t))),
        CmpOp::Ne => return None,
    };
    if let Some(from) = from {
        range.from = Some(range.from.map_or(from, |f| f.max(from)));
    }
    if let Some(to) = to {
        range.to = Some(range.to.map_or(to, |e| e.min(to)));
    }
    Some(Node::All)
}
