//! `.input` and `.output`: data statements reading delimited text, writes (or queries, for
//! `-D -`), and the rules that give every attribute of a type one domain.

use std::path::{Path, PathBuf};

use super::error::SouffleError;
use super::lower::{ident, var, Base, Lowering};
use super::parser::Name;
use super::Output;
use crate::ast::{
    Access, AccessStyle, Atom, BodyItem, DataDef, DataSource, DelimitedFile, FileRef, IndexArg,
    Lhs, Query, Rule, Stmt, StmtKind, WriteCmd,
};

impl Lowering<'_> {
    pub(super) fn input(
        &mut self,
        name: &Name,
        options: &[(Name, Name)],
    ) -> Result<(), SouffleError> {
        let (file, delimiter) = io_options(name, options, "facts")?;
        let numbers: Vec<bool> = self
            .declared(name)?
            .attrs
            .iter()
            .map(|a| a.1 == Base::Number)
            .collect();
        let path = join(&self.options.fact_dir, &file);
        let source = DataSource::Delimited(DelimitedFile {
            file: FileRef {
                path: path.to_string_lossy().into_owned(),
                selector: None,
                span: name.1,
            },
            delimiter,
            numbers: numbers.clone(),
        });
        let target = if self.defined.contains(&name.0) {
            // Facts or rules define the relation too: read the file into a relation of its
            // own, and add its tuples by a rule.
            let hidden = format!("{}'input", name.0);
            let vars: Vec<IndexArg> = numbers
                .iter()
                .map(|_| {
                    let v = self.fresh_var();
                    var(&v, name.1)
                })
                .collect();
            self.stmts.push(Stmt {
                kind: StmtKind::Rule(Rule {
                    head: Atom {
                        name: ident(&name.0, name.1),
                        args: vars.clone(),
                        span: name.1,
                    },
                    body: vec![BodyItem::Atom {
                        negated: false,
                        atom: Atom {
                            name: ident(&hidden, name.1),
                            args: vars,
                            span: name.1,
                        },
                    }],
                }),
                span: name.1,
            });
            hidden
        } else {
            name.0.clone()
        };
        self.stmts.push(Stmt {
            kind: StmtKind::Data(DataDef {
                lhs: Lhs {
                    name: ident(&target, name.1),
                    indices: None,
                    span: name.1,
                },
                source,
            }),
            span: name.1,
        });
        Ok(())
    }

    pub(super) fn output(
        &mut self,
        name: &Name,
        options: &[(Name, Name)],
    ) -> Result<(), SouffleError> {
        let (file, delimiter) = io_options(name, options, "csv")?;
        let decl = self.declared(name)?;
        let kind = match &self.options.output {
            Output::Stdout => StmtKind::Query(Query {
                access: Access {
                    name: ident(&name.0, name.1),
                    style: AccessStyle::Paren,
                    args: decl.attrs.iter().map(|(a, _)| var(&a.0, name.1)).collect(),
                    span: name.1,
                },
            }),
            Output::Dir(dir) => StmtKind::Write(WriteCmd {
                file: FileRef {
                    path: join(dir, &file).to_string_lossy().into_owned(),
                    selector: None,
                    span: name.1,
                },
                tensors: vec![ident(&name.0, name.1)],
                delimiter: Some(delimiter),
            }),
        };
        self.stmts.push(Stmt { kind, span: name.1 });
        Ok(())
    }

    /// One rule per attribute of every declared relation into `symbol'` or `number'` (see
    /// the module doc).
    pub(super) fn universes(&mut self) {
        let mut rules = Vec::new();
        for name in &self.order {
            let Some(decl) = self.decls.get(name) else {
                continue;
            };
            let vars: Vec<String> = (0..decl.attrs.len()).map(|k| format!("_{k}'")).collect();
            for ((attr, base), v) in decl.attrs.iter().zip(&vars) {
                let universe = format!("{}'", base.name());
                rules.push(Stmt {
                    kind: StmtKind::Rule(Rule {
                        head: Atom {
                            name: ident(&universe, attr.1),
                            args: vec![var(v, attr.1)],
                            span: attr.1,
                        },
                        body: vec![BodyItem::Atom {
                            negated: false,
                            atom: Atom {
                                name: ident(name, decl.span),
                                args: vars.iter().map(|x| var(x, attr.1)).collect(),
                                span: decl.span,
                            },
                        }],
                    }),
                    span: attr.1,
                });
            }
        }
        self.stmts.extend(rules);
    }
}

/// The file and delimiter that `.input`/`.output` options name (default `NAME.EXT`, tab).
fn io_options(
    name: &Name,
    options: &[(Name, Name)],
    ext: &str,
) -> Result<(String, char), SouffleError> {
    let mut file = format!("{}.{ext}", name.0);
    let mut delimiter = '\t';
    for ((key, key_span), (value, value_span)) in options {
        match key.as_str() {
            "filename" => file = value.clone(),
            "delimiter" => {
                let mut chars = value.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) => delimiter = c,
                    _ => {
                        return Err(SouffleError::BadOption {
                            what: format!("the delimiter \"{value}\" is not one character"),
                            hint: "give one character, e.g. `delimiter=\",\"`".into(),
                            span: *value_span,
                        })
                    }
                }
            }
            "IO" if value == "file" => {}
            _ => {
                return Err(SouffleError::BadOption {
                    what: format!("the option `{key}={value}` is not supported"),
                    hint: "`tl` reads and writes files with `filename=` and `delimiter=` \
                           (`IO=file`)"
                        .into(),
                    span: *key_span,
                })
            }
        }
    }
    Ok((file, delimiter))
}

fn join(dir: &Path, file: &str) -> PathBuf {
    dir.join(file)
}
