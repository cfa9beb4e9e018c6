//! Soufflé's types: `.type` declarations resolved to their base (`symbol` or `number`), and
//! each argument checked against its attribute's type.

use std::collections::HashMap;

use super::error::SouffleError;
use super::lower::{Base, Lowering};
use super::parser::{Item, Name, Term};
use crate::span::Span;

impl Lowering<'_> {
    pub(super) fn collect_types(&mut self, items: &[Item]) {
        let mut defs: HashMap<&str, (&Name, &Vec<Name>)> = HashMap::new();
        for item in items {
            if let Item::Type { name, of } = item {
                if let Some((first, _)) = defs.get(name.0.as_str()) {
                    self.errors.push(SouffleError::Duplicate {
                        kind: "type",
                        name: name.0.clone(),
                        span: name.1,
                        first: first.1,
                    });
                    continue;
                }
                defs.insert(&name.0, (name, of));
            }
        }
        let mut names: Vec<&&str> = defs.keys().collect();
        names.sort();
        for name in names {
            // Errors are recorded; the result is cached in `self.types`.
            let _ = self.resolve_type(name, &defs, 0);
        }
    }

    /// The base of a type, or the span of the reference that has none (an error is recorded).
    fn resolve_type(
        &mut self,
        name: &str,
        defs: &HashMap<&str, (&Name, &Vec<Name>)>,
        depth: usize,
    ) -> Result<Base, Span> {
        if let Some(known) = self.types.get(name) {
            return *known;
        }
        let Some(&(own, of)) = defs.get(name) else {
            return Err(Span::default());
        };
        let resolved = self.resolve_parts(name, own, of, defs, depth);
        self.types.insert(name.to_string(), resolved);
        resolved
    }

    fn resolve_parts(
        &mut self,
        name: &str,
        own: &Name,
        of: &[Name],
        defs: &HashMap<&str, (&Name, &Vec<Name>)>,
        depth: usize,
    ) -> Result<Base, Span> {
        if depth > defs.len() {
            self.errors.push(SouffleError::Unsupported {
                construct: format!("the recursive type `{name}`"),
                hint: "define each type from `symbol`, `number` or types defined before".into(),
                span: own.1,
            });
            return Err(own.1);
        }
        let mut base: Option<(Base, Span)> = None;
        for part in of {
            let b = match builtin(&part.0) {
                Some(Ok(b)) => b,
                Some(Err(construct)) => {
                    self.errors.push(float_error(construct, part.1));
                    return Err(part.1);
                }
                None if defs.contains_key(part.0.as_str()) => {
                    self.resolve_type(&part.0, defs, depth + 1)?
                }
                None => {
                    self.errors.push(SouffleError::Undeclared {
                        kind: "type",
                        name: part.0.clone(),
                        span: part.1,
                    });
                    return Err(part.1);
                }
            };
            match base {
                Some((first, at)) if first != b => {
                    self.errors.push(SouffleError::TypeMismatch {
                        what: format!(
                            "the union `{name}` mixes `{}` and `{}` types",
                            first.name(),
                            b.name()
                        ),
                        span: part.1,
                        other: at,
                    });
                    return Err(part.1);
                }
                _ => base = Some((b, part.1)),
            }
        }
        base.map(|(b, _)| b).ok_or(own.1)
    }

    pub(super) fn base_of(&mut self, ty: &Name) -> Option<Base> {
        match builtin(&ty.0) {
            Some(Ok(b)) => return Some(b),
            Some(Err(construct)) => {
                self.errors.push(float_error(construct, ty.1));
                return None;
            }
            None => {}
        }
        match self.types.get(&ty.0) {
            Some(Ok(b)) => Some(*b),
            Some(Err(_)) => None,
            None => {
                self.errors.push(SouffleError::Undeclared {
                    kind: "type",
                    name: ty.0.clone(),
                    span: ty.1,
                });
                None
            }
        }
    }
}

/// `symbol`, `number` and `unsigned` are bases; `float` is outside the subset.
fn builtin(name: &str) -> Option<Result<Base, &'static str>> {
    match name {
        "symbol" => Some(Ok(Base::Symbol)),
        "number" | "unsigned" => Some(Ok(Base::Number)),
        "float" => Some(Err("`float` attributes")),
        _ => None,
    }
}

fn float_error(construct: &str, span: Span) -> SouffleError {
    SouffleError::Unsupported {
        construct: construct.into(),
        hint: "`tl` runs `symbol` and `number` (integer) attributes".into(),
        span,
    }
}

pub(super) fn term_base(t: &Term, types: &HashMap<String, (Base, Span)>) -> Option<Base> {
    match t {
        Term::Var((n, _)) => types.get(n).map(|x| x.0),
        Term::Str(..) => Some(Base::Symbol),
        Term::Int(..) | Term::Arith { .. } => Some(Base::Number),
        _ => None,
    }
}

/// Checks a term against an attribute's type, recording a variable's first type.
pub(super) fn check_type(
    t: &Term,
    base: Base,
    at: Span,
    types: &mut HashMap<String, (Base, Span)>,
) -> Result<(), SouffleError> {
    let clash =
        |what: String, span: Span, other: Span| SouffleError::TypeMismatch { what, span, other };
    match t {
        Term::Var((n, s)) => match types.get(n) {
            Some(&(b, first)) if b != base => Err(clash(
                format!(
                    "`{n}` is used as a `{}` and as a `{}`",
                    b.name(),
                    base.name()
                ),
                *s,
                first,
            )),
            Some(_) => Ok(()),
            None => {
                types.insert(n.clone(), (base, *s));
                Ok(())
            }
        },
        Term::Str(v, s) if base == Base::Number => Err(clash(
            format!("the string \"{v}\" is given for a `number` attribute"),
            *s,
            at,
        )),
        Term::Int(..) | Term::Arith { .. } if base == Base::Symbol => Err(clash(
            "a number is given for a `symbol` attribute".into(),
            t.span(),
            at,
        )),
        // Arithmetic works on numbers.
        Term::Arith { lhs, rhs, .. } => {
            check_type(lhs, Base::Number, at, types)?;
            check_type(rhs, Base::Number, at, types)
        }
        _ => Ok(()),
    }
}
