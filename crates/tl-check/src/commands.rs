//! Commands (queries, file writes, `minimize`), resolved once domains are known.

use crate::collect::Checker;
use crate::error::CheckError;
use crate::finish::Domains;
use crate::learn::{self, MinimizeSpec};
use crate::program::{Command, QueryArg};
use tl_syntax::ast::{self, AccessStyle, IndexArg, StmtKind};

impl Checker<'_> {
    /// Resolves every command, in program order.
    pub fn commands(&mut self, program: &ast::Program, domains: &Domains) -> Vec<Command> {
        let mut out = Vec::new();
        for stmt in &program.stmts {
            let cmd = match &stmt.kind {
                StmtKind::Query(q) => self.query(q, domains, stmt.span),
                StmtKind::Write(w) => Ok(Command::Write {
                    path: crate::data::resolve_path(
                        &self.sources.dir_of(w.file.span.file),
                        &w.file.path,
                    ),
                    tensors: w
                        .tensors
                        .iter()
                        .map(|t| self.by_name.get(&t.name).copied().unwrap_or(0))
                        .collect(),
                    delimiter: w.delimiter,
                    span: stmt.span,
                }),
                StmtKind::Minimize(m) => self.minimize(m, stmt.span).map(Command::Minimize),
                _ => continue,
            };
            match cmd {
                Ok(c) => out.push(c),
                Err(e) => self.errors.push(e),
            }
        }
        out
    }

    fn query(
        &mut self,
        q: &ast::Query,
        domains: &Domains,
        span: tl_syntax::Span,
    ) -> Result<Command, CheckError> {
        let a = &q.access;
        let tensor = self.by_name.get(&a.name.name).copied().unwrap_or(0);
        let axes = self.drafts[tensor].axes.clone();
        let mut args = Vec::new();
        if let Some(arg) = a.args.iter().find(|x| crate::collect::is_virtual(x)) {
            return Err(CheckError::VirtualMisplaced {
                what: "a query reads a tensor after its loop, which keeps no steps".into(),
                span: arg.span(),
                hint: format!("query the last step without `*`: `{}?`", a.name.name),
            });
        }
        if a.style != AccessStyle::Bare {
            for (arg, &axis) in a.args.iter().zip(&axes) {
                let d = domains.of(self, axis);
                let dom = &domains.list[d];
                args.push(match arg {
                    IndexArg::Expr(ast::IndexExpr::Var(v)) => QueryArg::Var(v.name.clone()),
                    // In a domain whose numbers start below 0, a number it lacks matches no
                    // row, as a symbol does.
                    IndexArg::Expr(ast::IndexExpr::Int(c, _)) if dom.origin != 0 => {
                        QueryArg::Const(dom.element_of_int(*c).map(|p| p as i64))
                    }
                    IndexArg::Expr(ast::IndexExpr::Int(c, s)) => {
                        if dom.is_symbolic() || *c < 0 || *c as usize >= dom.extent {
                            return Err(CheckError::OutOfRange {
                                value: *c,
                                what: format!("axis of `{}`", a.name.name),
                                extent: dom.extent,
                                span: *s,
                            });
                        }
                        QueryArg::Const(Some(*c))
                    }
                    IndexArg::Symbol { name, .. } => {
                        QueryArg::Const(dom.index_of(name).map(|p| p as i64))
                    }
                    IndexArg::Slice { start, end, span } => {
                        let (s, e) = (start.unwrap_or(0), end.unwrap_or(dom.extent as i64));
                        if s < 0 || e > dom.extent as i64 || e < s {
                            return Err(CheckError::Misplaced {
                                what: format!(
                                    "slice {s}:{e} does not fit an axis of {} values",
                                    dom.extent
                                ),
                                span: *span,
                                hint: "slices are half-open".into(),
                            });
                        }
                        QueryArg::Slice(s, e)
                    }
                    IndexArg::Virtual { span, .. } => {
                        return Err(crate::virtual_index::outside_a_step(*span))
                    }
                    IndexArg::Expr(other) => {
                        return Err(CheckError::Misplaced {
                            what: "a query takes variables, constants and slices".into(),
                            span: other.span(),
                            hint: "compute the value in an equation and query that".into(),
                        })
                    }
                });
            }
        }
        let text = self
            .sources
            .file(span.file)
            .text
            .get(a.span.range())
            .unwrap_or(&a.name.name)
            .to_string();
        Ok(Command::Query {
            tensor,
            args,
            text,
            span,
        })
    }

    fn minimize(
        &mut self,
        m: &ast::Minimize,
        span: tl_syntax::Span,
    ) -> Result<MinimizeSpec, CheckError> {
        let loss = self.by_name.get(&m.loss.name).copied().unwrap_or(0);
        if self.drafts[loss].rank.is_some_and(|(r, _)| r != 0) {
            return Err(CheckError::Misplaced {
                what: format!("`{}` is not a scalar", m.loss.name),
                span: m.loss.span,
                hint: "the loss must have no indices; sum or average it, e.g. `Loss avg= (Y[e] - T[e])^2`".into(),
            });
        }
        let optimizer = learn::optimizer(&m.optimizer)?;
        let schedule = m.schedule.as_ref().map(learn::schedule).transpose()?;
        let (count, epochs) = match m.duration {
            ast::Duration::Steps(n, _) => (n, false),
            ast::Duration::Epochs(n, _) => (n, true),
        };
        if epochs && m.batch.is_none() {
            return Err(CheckError::Misplaced {
                what: "epochs need a batch index".into(),
                span,
                hint: "add `batch e 64` naming the example index and the batch size".into(),
            });
        }
        Ok(MinimizeSpec {
            loss,
            optimizer,
            count,
            epochs,
            batch: m.batch.as_ref().map(|b| (b.index.name.clone(), b.size)),
            schedule,
            span,
        })
    }
}
