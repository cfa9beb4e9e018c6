//! Data definitions (`X = "file.npy"`, literals, CSV relations, tokenized text, initialisers):
//! what each says about its tensor's rank, shape and kind.

use super::*;

impl Checker<'_> {
    pub(crate) fn data(&mut self, def: &ast::DataDef) -> Result<(), CheckError> {
        if self.given.contains(&def.lhs.name.name) {
            return Ok(());
        }
        let id = self.tensor(&def.lhs.name.name, def.lhs.name.span);
        let span = def.lhs.span.to(def.source.span());
        if let Some(ix) = def
            .lhs
            .indices
            .iter()
            .flatten()
            .find(|x| is_virtual(&x.arg))
        {
            return Err(CheckError::VirtualMisplaced {
                what: "data has no steps".into(),
                span: ix.arg.span(),
                hint: format!(
                    "data given for a tensor written at steps is its value before the loop: `{} = …` without `*`",
                    def.lhs.name.name
                ),
            });
        }
        let loaded = match &def.source {
            DataSource::Array(lit) => Loaded::Tensor(data::literal(lit)),
            DataSource::File(f) => {
                let dir = self.sources.dir_of(f.span.file);
                data::load_file(&dir, f, &def.lhs.name.name, &mut self.safetensors)?
            }
            DataSource::Tokenized(t) => data::tokenize(&self.sources.dir_of(t.span.file), t)?,
            DataSource::Delimited(d) => {
                data::load_delimited(&self.sources.dir_of(d.file.span.file), d)?
            }
        };
        match loaded {
            Loaded::Tensor(t) => {
                let shape = t.shape.clone();
                indices_match(def, shape.len(), span)?;
                self.drafts[id].read_as_tensor = true;
                if self.set_rank(id, shape.len(), span) {
                    self.fix_shape(id, &shape, span)?;
                }
                self.set_source(id, Source::Data(t, span), span);
            }
            Loaded::Rows(rows) => {
                let arity = rows.columns.len();
                match def.lhs.indices.as_ref().map(Vec::len) {
                    // One column more than indices: the last is the value (a weighted relation).
                    Some(k) if k + 1 == arity => return self.weighted_data(id, def, rows, span),
                    Some(k) if k != arity && arity > 0 => {
                        return Err(CheckError::RankMismatch {
                            tensor: def.lhs.name.name.clone(),
                            expected: arity,
                            found: k,
                            span: def.lhs.span,
                            first: span,
                        })
                    }
                    _ => {}
                }
                self.drafts[id].relation = true;
                if self.set_rank(id, arity, span) {
                    let axes = self.drafts[id].axes.clone();
                    self.column_domains(&def.lhs.name.name, &axes, &rows.columns, span)?;
                }
                self.set_source(id, Source::Rows(rows, span), span);
            }
            Loaded::Tuples { tuples, shape } => {
                indices_match(def, shape.len(), span)?;
                self.drafts[id].relation = true;
                if self.set_rank(id, shape.len(), span) {
                    self.fix_shape(id, &shape, span)?;
                }
                self.set_source(id, Source::Tuples(tuples, span), span);
            }
        }
        Ok(())
    }
}

/// A definition whose left-hand side lists indices must list one per axis of what it reads.
fn indices_match(def: &ast::DataDef, rank: usize, span: Span) -> Result<(), CheckError> {
    match &def.lhs.indices {
        Some(ix) if ix.len() != rank => Err(CheckError::RankMismatch {
            tensor: def.lhs.name.name.clone(),
            expected: rank,
            found: ix.len(),
            span: def.lhs.span,
            first: span,
        }),
        _ => Ok(()),
    }
}
