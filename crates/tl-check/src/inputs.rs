//! Values given from outside the program text: a Python caller sets `prog["X"] = array` or
//! `prog["Edge"] = [(0, 1), (1, 2)]`. Each stands in for the tensor's data statement, if the
//! program has one, and is checked as data read from a file would be: its shape fixes the
//! axes of a tensor, its values add to the domains of a relation.

use crate::collect::{Checker, Source};
use tl_core::HostTensor;
use tl_syntax::Span;

/// One value given from outside.
#[derive(Clone, Debug)]
pub enum Input {
    /// A dense tensor (its shape and values).
    Tensor(HostTensor),
    /// The tuples of a relation, column by column (integers or symbols).
    Rows(tl_io::CsvColumns),
    /// A dense tensor in device memory (handed over by another framework): its values are
    /// never read while checking, only its shape; the engine uses it where it lies.
    Device(tl_core::Tensor),
}

/// Values by tensor name, in the order they were given.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    /// `(tensor name, value)`; a later entry for a name replaces an earlier one.
    pub values: Vec<(String, Input)>,
}

impl Inputs {
    /// Sets (or replaces) the value of `name`.
    pub fn set(&mut self, name: &str, value: Input) {
        self.values.retain(|(n, _)| n != name);
        self.values.push((name.to_string(), value));
    }

    /// Whether `name` has a value given from outside.
    pub fn has(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| n == name)
    }
}

impl Checker<'_> {
    /// Makes each input the data of its tensor (before the statements are collected, whose
    /// data statement for the same tensor is then skipped).
    pub(crate) fn apply_inputs(&mut self, inputs: &Inputs) {
        // An input has no place in the program text: its errors point at the start.
        let span = Span::default();
        for (name, value) in &inputs.values {
            let id = self.tensor(name, span);
            self.given.insert(name.clone());
            let result = match value {
                Input::Tensor(t) => {
                    self.drafts[id].read_as_tensor = true;
                    if self.set_rank(id, t.shape.len(), span) {
                        self.fix_shape(id, &t.shape, span)
                    } else {
                        Ok(())
                    }
                    .map(|()| self.set_source(id, Source::Data(t.clone(), span), span))
                }
                Input::Device(t) => {
                    self.drafts[id].read_as_tensor = true;
                    if self.set_rank(id, t.rank(), span) {
                        self.fix_shape(id, t.shape(), span)
                    } else {
                        Ok(())
                    }
                    .map(|()| self.set_source(id, Source::External(span), span))
                }
                Input::Rows(rows) => {
                    self.drafts[id].relation = true;
                    if self.set_rank(id, rows.columns.len(), span) {
                        let axes = self.drafts[id].axes.clone();
                        self.column_domains(name, &axes, &rows.columns, span)
                    } else {
                        Ok(())
                    }
                    .map(|()| self.set_source(id, Source::Rows(rows.clone(), span), span))
                }
            };
            if let Err(e) = result {
                self.errors.push(e);
            }
        }
    }
}
