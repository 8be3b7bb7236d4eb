//! Planning: which part of a filter the indexes answer exactly, and which
//! part must be checked on decoded events.
//!
//! A filter becomes a tree of [`Node`]s. Per segment, each node yields a
//! bitmap of candidate ordinals and whether that bitmap is *exact* (every
//! candidate matches) or a *superset* (candidates still need the residual
//! check). `occurred_at` bounds in the top-level AND are folded into the
//! time range, which the executor applies from the time column.
//! Planning never reads event bodies; the executor does.

use roaring::{MultiOps, RoaringBitmap};

use crate::error::Result;
use crate::index::IndexedField;
use crate::query::ast::{CmpOp, Filter, Literal};
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
}

fn exact(n: &Node) -> bool {
    match n {
        Node::All | Node::Index { .. } => true,
        Node::Residual => false,
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
            _ => Node::Residual,
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
            None => Node::Residual,
        },
        Filter::IsNull { path, negated } => match indexed(path) {
            // Indexed fields are required (or defaulted): never null.
            Some(_) if *negated => Node::All,
            Some(_) => Node::Not(Box::new(Node::All)),
            None => Node::Residual,
        },
        Filter::Like { .. } => Node::Residual,
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
