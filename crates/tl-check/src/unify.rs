//! Domain inference: a union-find over axis slots (tensor, axis), index variables and declared
//! domains. An index variable written directly in an axis joins the two; every class ends up
//! as one [`crate::program::Domain`] with one extent, and either named symbols or integers.

use crate::error::CheckError;
use tl_syntax::Span;

/// Identifies a node of the union-find.
pub type Node = usize;

/// What is known about one class of nodes.
#[derive(Clone, Debug, Default)]
pub struct ClassInfo {
    /// A fixed extent and where it was fixed.
    pub extent: Option<(usize, Span)>,
    /// Symbols seen in this class, in first-seen order.
    pub symbols: Vec<String>,
    /// Where each of `symbols` was first seen (parallel to it).
    pub symbol_spans: Vec<Span>,
    /// Membership of `symbols`, for constant-time lookups on large relations.
    pub symbol_set: std::collections::HashSet<String>,
    /// Where a symbol was first seen.
    pub symbol_span: Option<Span>,
    /// Whether the symbol set is closed (a declared `domain`).
    pub closed: Option<(String, Span)>,
    /// One past the largest integer constant seen, and where.
    pub min_extent: Option<(usize, Span)>,
    /// The smallest negative number a relation holds in this class, and where: the domain's
    /// element 0 then stands for it.
    pub lowest: Option<(i64, Span)>,
    /// Whether `extent` was settled from the numbers seen, `lowest` included.
    pub from_numbers: bool,
    /// A human description (`axis 1 of Parent`, `index j`), for messages.
    pub what: String,
    /// A name for the domain (declared name or `Tensor.axis`).
    pub name: String,
}

/// The union-find with per-class information.
#[derive(Default)]
pub struct Unifier {
    parent: Vec<Node>,
    info: Vec<ClassInfo>,
    /// When each symbol was first seen anywhere, so domains list symbols in first-seen order
    /// whatever order their classes merged in.
    first_seen: std::collections::HashMap<String, usize>,
}

impl Unifier {
    /// A new singleton node described by `what` and named `name`.
    pub fn node(&mut self, what: String, name: String) -> Node {
        self.parent.push(self.parent.len());
        self.info.push(ClassInfo {
            what,
            name,
            ..ClassInfo::default()
        });
        self.parent.len() - 1
    }

    /// The representative of a node's class.
    pub fn find(&mut self, mut n: Node) -> Node {
        while self.parent[n] != n {
            self.parent[n] = self.parent[self.parent[n]];
            n = self.parent[n];
        }
        n
    }

    /// Information about a node's class.
    pub fn info(&mut self, n: Node) -> &ClassInfo {
        let r = self.find(n);
        &self.info[r]
    }

    /// Fixes the extent of a node's class; conflicting extents are an error.
    pub fn set_extent(&mut self, n: Node, extent: usize, span: Span) -> Result<(), CheckError> {
        let r = self.find(n);
        let info = &mut self.info[r];
        match info.extent {
            Some((e, first)) if e != extent => Err(CheckError::ExtentMismatch {
                what: info.what.clone(),
                first_extent: e,
                first,
                second_extent: extent,
                second: span,
                joined: None,
            }),
            Some(_) => Ok(()),
            None => {
                info.extent = Some((extent, span));
                Ok(())
            }
        }
    }

    /// Records a symbol used in a node's class.
    pub fn add_symbol(&mut self, n: Node, symbol: &str, span: Span) -> Result<(), CheckError> {
        let r = self.find(n);
        let next = self.first_seen.len();
        self.first_seen.entry(symbol.to_string()).or_insert(next);
        let info = &mut self.info[r];
        if !info.symbol_set.contains(symbol) {
            if let Some((domain, _)) = &info.closed {
                return Err(CheckError::Misplaced {
                    what: format!("`{symbol}` is not a member of domain `{domain}`"),
                    span,
                    hint: format!("add it to the `domain {domain} = {{…}}` declaration"),
                });
            }
            info.symbols.push(symbol.to_string());
            info.symbol_spans.push(span);
            info.symbol_set.insert(symbol.to_string());
        }
        info.symbol_span.get_or_insert(span);
        Ok(())
    }

    /// Records an integer constant used in a node's class (the extent must exceed it).
    pub fn add_integer(&mut self, n: Node, value: i64, span: Span) {
        let r = self.find(n);
        let need = usize::try_from(value.max(0))
            .unwrap_or(usize::MAX)
            .saturating_add(1);
        let info = &mut self.info[r];
        if info.min_extent.is_none_or(|(m, _)| need > m) {
            info.min_extent = Some((need, span));
        }
    }

    /// Records a number a relation holds (a fact, a CSV row, a rule's constant): negative
    /// ones move the domain's origin below 0.
    pub fn add_number(&mut self, n: Node, value: i64, span: Span) {
        self.add_integer(n, value, span);
        if value < 0 {
            let r = self.find(n);
            let info = &mut self.info[r];
            if info.lowest.is_none_or(|(m, _)| value < m) {
                info.lowest = Some((value, span));
            }
        }
    }

    /// Declares a node's class to be exactly the given symbols (a `domain` declaration).
    pub fn close(&mut self, n: Node, name: &str, symbols: &[String], span: Span) {
        let r = self.find(n);
        let info = &mut self.info[r];
        info.symbols = symbols.to_vec();
        info.symbol_spans = vec![span; symbols.len()];
        info.symbol_set = symbols.iter().cloned().collect();
        info.closed = Some((name.to_string(), span));
        info.name = name.to_string();
        info.symbol_span = Some(span);
    }

    /// [`UnionFind::union`] for an index occurrence at `at` (the variable that joins the two
    /// axes): a conflict of extents then points at it.
    pub fn union_at(&mut self, a: Node, b: Node, at: Span) -> Result<(), CheckError> {
        self.union(a, b).map_err(|e| match e {
            CheckError::ExtentMismatch {
                what,
                first_extent,
                first,
                second_extent,
                second,
                joined: None,
            } => CheckError::ExtentMismatch {
                what,
                first_extent,
                first,
                second_extent,
                second,
                joined: Some(at),
            },
            other => other,
        })
    }

    /// Joins two classes, merging what is known about them.
    pub fn union(&mut self, a: Node, b: Node) -> Result<(), CheckError> {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra == rb {
            return Ok(());
        }
        let mut other = std::mem::take(&mut self.info[rb]);
        self.parent[rb] = ra;
        // Open classes merge the smaller symbol set into the larger (their order is the
        // program's order of first appearance, sorted later, not the order of these lists).
        let mine = &mut self.info[ra];
        if mine.closed.is_none()
            && other.closed.is_none()
            && other.symbols.len() > mine.symbols.len()
        {
            std::mem::swap(&mut mine.symbols, &mut other.symbols);
            std::mem::swap(&mut mine.symbol_spans, &mut other.symbol_spans);
            std::mem::swap(&mut mine.symbol_set, &mut other.symbol_set);
        }
        if let Some((e, span)) = other.extent {
            self.set_extent(ra, e, span)?;
        }
        if let Some((name, span)) = &other.closed {
            let mine = std::mem::take(&mut self.info[ra].symbols);
            let spans = std::mem::take(&mut self.info[ra].symbol_spans);
            self.info[ra].symbol_set.clear();
            self.close(ra, name, &other.symbols, *span);
            for (s, at) in mine.iter().zip(&spans) {
                self.add_symbol(ra, s, *at)?;
            }
        } else {
            for (s, at) in other.symbols.iter().zip(&other.symbol_spans) {
                self.add_symbol(ra, s, *at)?;
            }
        }
        let info = &mut self.info[ra];
        if info.symbol_span.is_none() {
            info.symbol_span = other.symbol_span;
        }
        if let Some((m, span)) = other.min_extent {
            if info.min_extent.is_none_or(|(mine, _)| m > mine) {
                info.min_extent = Some((m, span));
            }
        }
        if let Some((m, span)) = other.lowest {
            if info.lowest.is_none_or(|(mine, _)| m < mine) {
                info.lowest = Some((m, span));
            }
        }
        if info.name.is_empty()
            || (info.name.contains('.') && !other.name.contains('.') && !other.name.is_empty())
        {
            info.name = other.name;
        }
        Ok(())
    }

    /// The symbols of a node's class in the order they were first seen in the program
    /// (declared domains keep their declared order).
    pub fn ordered_symbols(&mut self, n: Node) -> Vec<String> {
        let r = self.find(n);
        let info = &self.info[r];
        let mut symbols = info.symbols.clone();
        if info.closed.is_none() {
            symbols.sort_by_key(|s| self.first_seen.get(s).copied().unwrap_or(usize::MAX));
        }
        symbols
    }

    /// Whether the class already has a known extent (fixed, or implied by its symbols).
    pub fn known_extent(&mut self, n: Node) -> Option<usize> {
        let info = self.info(n);
        info.extent.map(|(e, _)| e).or(if info.symbols.is_empty() {
            None
        } else {
            Some(info.symbols.len())
        })
    }

    /// Settles a class's extent from its symbols or integer constants, checking consistency.
    pub fn settle(&mut self, n: Node, use_constants: bool) -> Result<Option<usize>, CheckError> {
        let r = self.find(n);
        // Only the small fields: a class may hold millions of symbols, and every axis in it
        // is settled.
        let info = &self.info[r];
        let what = || info.what.clone();
        let count = info.symbols.len();
        if let (Some(sym), Some((_, int_span))) = (info.symbol_span, info.min_extent) {
            if count > 0 {
                return Err(CheckError::MixedDomain {
                    what: what(),
                    symbol: sym,
                    integer: int_span,
                });
            }
        }
        if count > 0 {
            if let Some((e, span)) = info.extent {
                if e != count {
                    return Err(CheckError::ExtentMismatch {
                        what: what(),
                        first_extent: count,
                        first: info.symbol_span.unwrap_or(span),
                        second_extent: e,
                        second: span,
                        joined: None,
                    });
                }
            }
            let at = info.symbol_span.unwrap_or_default();
            self.info[r].extent = Some((count, at));
            return Ok(Some(count));
        }
        if let Some((e, _)) = info.extent {
            if let (Some((low, span)), false) = (info.lowest, info.from_numbers) {
                return Err(CheckError::OutOfRange {
                    value: low,
                    what: what(),
                    extent: e,
                    span,
                });
            }
            if let Some((m, span)) = info.min_extent {
                if m > e {
                    return Err(CheckError::OutOfRange {
                        value: m as i64 - 1,
                        what: what(),
                        extent: e,
                        span,
                    });
                }
            }
            return Ok(Some(e));
        }
        let (min_extent, lowest) = (info.min_extent, info.lowest);
        if use_constants {
            if let Some((m, span)) = min_extent {
                // Negative numbers put element 0 at the lowest: the extent runs from it.
                let (m, span) = match lowest {
                    Some((low, at)) => {
                        let count = (m as i128) - i128::from(low);
                        if count > i128::from(u32::MAX) {
                            return Err(CheckError::Data {
                                message: format!(
                                    "the numbers of {} run from {low} to {}, more than 2^32 - 1 elements",
                                    what(),
                                    m - 1
                                ),
                                hint: Some("numbers index elements of 32-bit domains; use a narrower range".into()),
                                span: at,
                            });
                        }
                        self.info[r].from_numbers = true;
                        (count as usize, span)
                    }
                    None => (m, span),
                };
                self.info[r].extent = Some((m, span));
                return Ok(Some(m));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symbol_outside_a_closed_domain_is_reported_where_it_is_written() {
        let mut u = Unifier::default();
        let dom = u.node("domain `Person`".into(), "Person".into());
        u.close(dom, "Person", &["Alice".into()], Span::default());
        let axis = u.node("axis 0 of `F`".into(), "F.0".into());
        let (alice, zed) = (
            Span::default(),
            Span {
                start: 7,
                end: 10,
                ..Span::default()
            },
        );
        u.add_symbol(axis, "Alice", alice).unwrap();
        u.add_symbol(axis, "Zed", zed).unwrap();
        match u.union(dom, axis) {
            Err(CheckError::Misplaced { span, .. }) => assert_eq!(span, zed),
            other => panic!("expected a closed-domain error, got {other:?}"),
        }
    }
}
