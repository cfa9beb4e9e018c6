//! Query answers and their two printed forms (docs/language.md §5): relations as sorted rows of
//! symbols, dense tensors as shape and row-major data; `--json` prints one object per line.

use crate::engine::{Engine, Value};
use crate::error::RunError;
use serde_json::json;
use tl_backend::DType;
use tl_check::{QueryArg, TensorId, TensorKind};
use tl_syntax::Span;

/// One cell of a relation row.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cell {
    /// An integer element.
    Int(i64),
    /// A named symbol.
    Symbol(String),
}

/// The answer to one query.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Rows of a relation over the query's variables.
    Rows {
        /// The query text.
        query: String,
        /// Variable names, in order of first appearance.
        vars: Vec<String>,
        /// Sorted, distinct rows.
        rows: Vec<Vec<Cell>>,
    },
    /// A dense tensor.
    Tensor {
        /// The query text.
        query: String,
        /// Extent of each axis.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f64>,
        /// Whether the tensor holds integers (counts): JSON then writes them without a
        /// fractional part.
        integer: bool,
        /// Per axis, the names of its elements when its domain is symbolic (`None` for an
        /// integer axis), so that a tensor over people prints which person each row is.
        labels: Vec<Option<Vec<String>>>,
    },
}

/// A number in `--json`: finite values as numbers, the others as the strings `"inf"`,
/// `"-inf"` and `"nan"` (JSON has no infinities; `null` would not tell them apart).
fn number_json(x: f64, integer: bool) -> serde_json::Value {
    match serde_json::Number::from_f64(x) {
        // Integer tensors stay below 2^53, so the conversion is exact.
        Some(_) if integer => json!(x as i64),
        Some(n) => serde_json::Value::Number(n),
        None if x.is_nan() => json!("nan"),
        None if x > 0.0 => json!("inf"),
        None => json!("-inf"),
    }
}

fn cell_json(c: &Cell) -> serde_json::Value {
    match c {
        Cell::Int(i) => json!(i),
        Cell::Symbol(s) => json!(s),
    }
}

impl Answer {
    /// The `--json` line.
    pub fn to_json(&self) -> String {
        match self {
            Answer::Rows { query, vars, rows } => json!({"query": query, "vars": vars, "rows": rows.iter().map(|r| r.iter().map(cell_json).collect::<Vec<_>>()).collect::<Vec<_>>()}).to_string(),
            Answer::Tensor {
                query,
                shape,
                data,
                integer,
                labels,
            } => {
                let data: Vec<serde_json::Value> =
                    data.iter().map(|&x| number_json(x, *integer)).collect();
                if labels.iter().any(Option::is_some) {
                    json!({"query": query, "shape": shape, "data": data, "labels": labels})
                        .to_string()
                } else {
                    json!({"query": query, "shape": shape, "data": data}).to_string()
                }
            }
        }
    }

    /// The human form.
    pub fn to_human(&self) -> String {
        match self {
            Answer::Rows { query, vars, rows } if vars.is_empty() => format!(
                "{query}: {}\n",
                if rows.is_empty() { "false" } else { "true" }
            ),
            Answer::Rows { query, vars, rows } => {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|c| match c {
                                Cell::Int(i) => i.to_string(),
                                Cell::Symbol(s) => s.clone(),
                            })
                            .collect()
                    })
                    .collect();
                let mut widths: Vec<usize> = vars.iter().map(|v| v.chars().count()).collect();
                for r in &cells {
                    for (w, c) in widths.iter_mut().zip(r) {
                        *w = (*w).max(c.chars().count());
                    }
                }
                let line = |r: &[String]| {
                    r.iter()
                        .zip(&widths)
                        .map(|(c, &w)| format!("{c:<w$}"))
                        .collect::<Vec<_>>()
                        .join("  ")
                        .trim_end()
                        .to_string()
                };
                let mut out = format!(
                    "{query}: {} row{}\n",
                    rows.len(),
                    if rows.len() == 1 { "" } else { "s" }
                );
                out += &format!("  {}\n", line(vars));
                for r in &cells {
                    out += &format!("  {}\n", line(r));
                }
                out
            }
            Answer::Tensor {
                query,
                shape,
                data,
                labels,
                ..
            } => format!(
                "{query} {}:\n{}",
                shape_text(shape),
                if labels.iter().any(Option::is_some) {
                    labelled_text(shape, data, labels)
                } else {
                    array_text(shape, data)
                }
            ),
        }
    }
}

fn shape_text(shape: &[usize]) -> String {
    format!(
        "[{}]",
        shape
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// A number for people: integers without a point, others to 6 significant digits;
/// `inf`, `-inf` and `nan` for the others.
pub fn number_text(x: f64) -> String {
    if x.is_nan() {
        "nan".into()
    } else if x.is_infinite() {
        if x > 0.0 { "inf" } else { "-inf" }.into()
    } else if x.is_finite() && x == x.round() && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else if x != 0.0 && (x.abs() < 1e-4 || x.abs() >= 1e15) {
        format!("{x:.5e}")
    } else {
        let s = format!("{x:.6}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// An aligned, bracketed array: the last axis on one line, blocks for the others.
fn array_text(shape: &[usize], data: &[f64]) -> String {
    let texts: Vec<String> = data.iter().map(|&x| number_text(x)).collect();
    let w = texts.iter().map(String::len).max().unwrap_or(1);
    if shape.is_empty() {
        return format!("  {}\n", texts.first().cloned().unwrap_or_default());
    }
    let row = *shape.last().unwrap_or(&1);
    let mut out = String::new();
    for (k, chunk) in texts.chunks(row.max(1)).enumerate() {
        if k > 0 && shape.len() > 2 && k % shape[shape.len() - 2].max(1) == 0 {
            out.push('\n');
        }
        out += &format!(
            "  [{}]\n",
            chunk
                .iter()
                .map(|t| format!("{t:>w$}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if data.is_empty() {
        out += "  []\n";
    }
    out
}

/// The element names of axis `k` (its symbol, else its number) for [`labelled_text`].
fn axis_names(shape: &[usize], labels: &[Option<Vec<String>>], k: usize) -> Vec<String> {
    let n = shape.get(k).copied().unwrap_or(0);
    match labels.get(k) {
        Some(Some(names)) => (0..n)
            .map(|i| names.get(i).cloned().unwrap_or_else(|| i.to_string()))
            .collect(),
        _ => (0..n).map(|i| i.to_string()).collect(),
    }
}

/// A tensor with symbolic axes: a vector as one `name  value` line per element, a matrix as a
/// table with row and column names, higher ranks as one such table per leading element
/// (headed `[Alice, :, :]`).
fn labelled_text(shape: &[usize], data: &[f64], labels: &[Option<Vec<String>>]) -> String {
    let texts: Vec<String> = data.iter().map(|&x| number_text(x)).collect();
    let rank = shape.len();
    let cols = if rank >= 2 {
        axis_names(shape, labels, rank - 1)
    } else {
        vec![String::new()]
    };
    let rows = axis_names(
        shape,
        labels,
        rank.saturating_sub(if rank >= 2 { 2 } else { 1 }),
    );
    let lead: Vec<Vec<String>> = (0..rank.saturating_sub(2))
        .map(|k| axis_names(shape, labels, k))
        .collect();
    let block = rows.len() * cols.len();
    let name_w = rows.iter().map(|r| r.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (b, chunk) in texts.chunks(block.max(1)).enumerate() {
        if !lead.is_empty() {
            // The leading elements of this block, outermost first.
            let mut names = Vec::with_capacity(lead.len());
            let mut rest = b;
            for axis in lead.iter().rev() {
                let n = axis.len().max(1);
                names.push(axis.get(rest % n).cloned().unwrap_or_default());
                rest /= n;
            }
            names.reverse();
            out += &format!("  [{}, :, :]\n", names.join(", "));
        }
        let width = |j: usize| {
            chunk
                .iter()
                .skip(j)
                .step_by(cols.len().max(1))
                .map(|t| t.chars().count())
                .chain(std::iter::once(cols[j].chars().count()))
                .max()
                .unwrap_or(1)
        };
        let widths: Vec<usize> = (0..cols.len()).map(width).collect();
        if rank >= 2 {
            let header: Vec<String> = cols
                .iter()
                .zip(&widths)
                .map(|(c, &w)| format!("{c:>w$}"))
                .collect();
            out += &format!("  {:name_w$}  {}\n", "", header.join("  "));
        }
        for (r, line) in chunk.chunks(cols.len().max(1)).enumerate() {
            let cells: Vec<String> = line
                .iter()
                .zip(&widths)
                .map(|(t, &w)| format!("{t:>w$}"))
                .collect();
            let name = rows.get(r).map_or("", String::as_str);
            out += &format!("  {name:<name_w$}  {}\n", cells.join("  "));
        }
    }
    if data.is_empty() {
        out += "  []\n";
    }
    out
}

/// A stored f32 printed as the shortest decimal that reads back as the same f32.
fn tidy(x: f64, dtype: DType) -> f64 {
    match dtype {
        DType::F64 => x,
        _ => format!("{}", x as f32).parse().unwrap_or(x),
    }
}

impl Engine<'_> {
    /// Answers a query from the current values.
    pub fn answer(
        &mut self,
        tensor: TensorId,
        args: &[QueryArg],
        text: &str,
        span: Span,
    ) -> Result<Answer, RunError> {
        let shape = self.shape(tensor);
        let relation = self.program.tensors[tensor].kind == TensorKind::Relation;
        let args: Vec<QueryArg> = if args.is_empty() {
            if relation {
                (0..shape.len())
                    .map(|k| QueryArg::Var(format!("_{k}")))
                    .collect()
            } else {
                (0..shape.len())
                    .map(|k| QueryArg::Slice(0, shape[k] as i64))
                    .collect()
            }
        } else {
            args.to_vec()
        };
        if relation {
            self.rows(tensor, &args, text, span)
        } else {
            self.tensor_answer(tensor, &args, text, span)
        }
    }

    fn rows(
        &mut self,
        tensor: TensorId,
        args: &[QueryArg],
        text: &str,
        span: Span,
    ) -> Result<Answer, RunError> {
        let rel = match self.values.get(tensor).and_then(Option::as_ref) {
            Some(Value::Sparse(r)) => r.clone(),
            _ => self.tuples(tensor, span)?,
        };
        let mut vars: Vec<String> = Vec::new();
        for a in args {
            if let QueryArg::Var(v) = a {
                if !vars.contains(v) {
                    vars.push(v.clone());
                }
            }
        }
        let axes = self.program.tensors[tensor].axes.clone();
        let mut rows: Vec<Vec<Cell>> = Vec::new();
        for tuple in rel.iter() {
            let mut binding: Vec<Option<u32>> = vec![None; vars.len()];
            let ok = args.iter().zip(tuple).all(|(a, &x)| match a {
                QueryArg::Const(c) => *c == Some(i64::from(x)),
                QueryArg::Slice(s, e) => (*s..*e).contains(&i64::from(x)),
                QueryArg::Var(v) => {
                    let k = vars.iter().position(|w| w == v).unwrap_or(0);
                    match binding[k] {
                        Some(y) => y == x,
                        None => {
                            binding[k] = Some(x);
                            true
                        }
                    }
                }
            });
            if ok {
                let row = args
                    .iter()
                    .zip(tuple)
                    .zip(&axes)
                    .filter_map(|((a, &x), &d)| {
                        if let QueryArg::Var(v) = a {
                            Some((v, x, d))
                        } else {
                            None
                        }
                    })
                    .fold(Vec::<(String, Cell)>::new(), |mut acc, (v, x, d)| {
                        if !acc.iter().any(|(w, _)| w == v) {
                            let dom = &self.program.domains[d];
                            let cell = dom
                                .symbols
                                .get(x as usize)
                                .map_or(Cell::Int(dom.int_of(x)), |s| Cell::Symbol(s.clone()));
                            acc.push((v.clone(), cell));
                        }
                        acc
                    })
                    .into_iter()
                    .map(|(_, c)| c)
                    .collect();
                rows.push(row);
            }
        }
        rows.sort();
        rows.dedup();
        Ok(Answer::Rows {
            query: text.to_string(),
            vars,
            rows,
        })
    }

    fn tensor_answer(
        &mut self,
        tensor: TensorId,
        args: &[QueryArg],
        text: &str,
        span: Span,
    ) -> Result<Answer, RunError> {
        let value = self.dense(tensor, span)?;
        let host = self
            .backend
            .download(&value)
            .map_err(|e| RunError::backend(e, span))?;
        let data = host.data.to_f64();
        let shape = host.shape.clone();
        let mut vars: Vec<(String, usize)> = Vec::new();
        let mut labels: Vec<Option<Vec<String>>> = Vec::new();
        let mut slices = 0;
        let axes = &self.program.tensors[tensor].axes;
        // The names of an axis's elements `from..from + n`, when its domain is symbolic or
        // its numbers start below 0.
        let names = |k: usize, from: usize, n: usize| {
            let dom = &self.program.domains[*axes.get(k)?];
            if dom.origin != 0 {
                return Some(
                    (from..from + n)
                        .map(|p| dom.label(u32::try_from(p).unwrap_or(u32::MAX)))
                        .collect(),
                );
            }
            dom.is_symbolic()
                .then(|| dom.symbols.iter().skip(from).take(n).cloned().collect())
        };
        for (k, (a, &e)) in args.iter().zip(&shape).enumerate() {
            match a {
                QueryArg::Var(v) if !vars.iter().any(|(w, _)| w == v) => {
                    vars.push((v.clone(), e));
                    labels.push(names(k, 0, e));
                }
                QueryArg::Slice(s, end) => {
                    let n = (end - s).max(0) as usize;
                    vars.push((format!("#{slices}"), n));
                    labels.push(names(k, (*s).max(0) as usize, n));
                    slices += 1;
                }
                _ => {}
            }
        }
        let out_shape: Vec<usize> = vars.iter().map(|(_, e)| *e).collect();
        let total: usize = out_shape.iter().product();
        let mut out = Vec::with_capacity(total);
        let mut point = vec![0usize; out_shape.len()];
        for _ in 0..total {
            let mut flat = 0usize;
            let mut slice_k = 0;
            let mut ok = true;
            for (a, &e) in args.iter().zip(&shape) {
                let i = match a {
                    QueryArg::Const(Some(c)) => *c as usize,
                    QueryArg::Const(None) => {
                        ok = false;
                        0
                    }
                    QueryArg::Var(v) => vars
                        .iter()
                        .position(|(w, _)| w == v)
                        .map_or(0, |k| point[k]),
                    QueryArg::Slice(s, _) => {
                        let k = vars
                            .iter()
                            .position(|(w, _)| *w == format!("#{slice_k}"))
                            .unwrap_or(0);
                        slice_k += 1;
                        *s as usize + point[k]
                    }
                };
                flat = flat * e + i.min(e.saturating_sub(1));
            }
            out.push(if ok {
                tidy(data.get(flat).copied().unwrap_or(0.0), host.dtype())
            } else {
                0.0
            });
            for k in (0..point.len()).rev() {
                point[k] += 1;
                if point[k] < out_shape[k] {
                    break;
                }
                point[k] = 0;
            }
        }
        Ok(Answer::Tensor {
            query: text.to_string(),
            shape: out_shape,
            data: out,
            integer: self.program.tensors[tensor].kind == TensorKind::Integer,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(shape: Vec<usize>, data: Vec<f64>, labels: Vec<Option<Vec<String>>>) -> Answer {
        Answer::Tensor {
            query: "X".into(),
            shape,
            data,
            integer: false,
            labels,
        }
    }

    #[test]
    fn json_tells_infinities_and_nan_apart() {
        let a = tensor(
            vec![4],
            vec![1.5, f64::INFINITY, f64::NEG_INFINITY, f64::NAN],
            vec![None],
        );
        assert_eq!(
            a.to_json(),
            r#"{"query":"X","shape":[4],"data":[1.5,"inf","-inf","nan"]}"#
        );
        assert_eq!(a.to_human(), "X [4]:\n  [ 1.5,  inf, -inf,  nan]\n");
    }

    #[test]
    fn symbolic_axes_print_their_names() {
        let names = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
        let a = tensor(
            vec![2, 3],
            vec![1.0, 2.0, 3.0, 4.0, 5.0, 60.0],
            vec![names(&["Alice", "Bob"]), None],
        );
        assert_eq!(
            a.to_human(),
            "X [2, 3]:\n         0  1   2\n  Alice  1  2   3\n  Bob    4  5  60\n"
        );
        assert!(a.to_json().contains(r#""labels":[["Alice","Bob"],null]"#));
        let v = tensor(vec![2], vec![0.5, 2.0], vec![names(&["A", "B"])]);
        assert_eq!(v.to_human(), "X [2]:\n  A  0.5\n  B    2\n");
    }
}
