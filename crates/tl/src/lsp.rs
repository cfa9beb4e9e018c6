//! `tl lsp`: a language server over standard input and output, for editors. It checks each
//! open `.tl` document as it changes and publishes the checker's diagnostics (parse, check and
//! plan errors, and warnings), answers hover with a tensor's kind, shape and domains, and
//! go-to-definition with the statements that define a tensor.
//!
//! The protocol's framing and handshake come from `lsp-server`; the few messages used are
//! built as JSON here. Positions are LSP's: 0-based lines and UTF-16 code units.

use lsp_server::{Connection, Message, Notification, Request, Response};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use tensorlogic::pipeline;
use tl_check::{CheckedProgram, Definition, TensorKind};
use tl_syntax::{Diagnostic, Severity, SourceMap, Span};

/// One open document: its text and, when it checked cleanly, the checked program.
struct Document {
    text: String,
    checked: Option<CheckedProgram>,
}

/// Runs the server until the client asks it to exit.
pub fn main() -> ExitCode {
    let (connection, io) = Connection::stdio();
    let capabilities = json!({
        "textDocumentSync": 1,
        "hoverProvider": true,
        "definitionProvider": true,
    });
    if let Err(e) = connection.initialize(capabilities) {
        eprintln!("tl lsp: {e}");
        return ExitCode::FAILURE;
    }
    let mut docs: HashMap<String, Document> = HashMap::new();
    let mut code = ExitCode::SUCCESS;
    for message in &connection.receiver {
        match message {
            Message::Request(req) => {
                match connection.handle_shutdown(&req) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => {
                        eprintln!("tl lsp: {e}");
                        code = ExitCode::FAILURE;
                        break;
                    }
                }
                let result = answer(&req, &docs);
                let _ = connection
                    .sender
                    .send(Message::Response(Response::new_ok(req.id, result)));
            }
            Message::Notification(n) => {
                if let Some(uri) = changed(&n, &mut docs) {
                    let published = publish(&uri, &mut docs);
                    let _ = connection.sender.send(Message::Notification(published));
                }
            }
            Message::Response(_) => {}
        }
    }
    drop(connection);
    if io.join().is_err() {
        code = ExitCode::FAILURE;
    }
    code
}

/// Applies an open, change or close notification; the document's URI when it needs checking.
fn changed(n: &Notification, docs: &mut HashMap<String, Document>) -> Option<String> {
    let uri = n.params["textDocument"]["uri"].as_str()?.to_string();
    let text = match n.method.as_str() {
        "textDocument/didOpen" => n.params["textDocument"]["text"].as_str()?.to_string(),
        // Full synchronisation: the last change holds the whole text.
        "textDocument/didChange" => n.params["contentChanges"].as_array()?.last()?["text"]
            .as_str()?
            .to_string(),
        "textDocument/didClose" => {
            docs.remove(&uri);
            return None;
        }
        _ => return None,
    };
    docs.insert(
        uri.clone(),
        Document {
            text,
            checked: None,
        },
    );
    Some(uri)
}

/// The file a `file://` URI names (percent-escapes decoded), for relative data paths.
fn path_of(uri: &str) -> PathBuf {
    let raw = uri.strip_prefix("file://").unwrap_or(uri);
    let bytes = raw.as_bytes();
    let hex = |k: usize| bytes.get(k).and_then(|&b| (b as char).to_digit(16));
    let mut out = Vec::with_capacity(bytes.len());
    let mut k = 0;
    while k < bytes.len() {
        match (bytes[k], hex(k + 1), hex(k + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                k += 3;
            }
            (b, ..) => {
                out.push(b);
                k += 1;
            }
        }
    }
    PathBuf::from(String::from_utf8_lossy(&out).into_owned())
}

/// Checks a document and builds its `publishDiagnostics` notification.
fn publish(uri: &str, docs: &mut HashMap<String, Document>) -> Notification {
    let mut diagnostics = Vec::new();
    if let Some(doc) = docs.get_mut(uri) {
        let path = path_of(uri);
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        let mut sources = SourceMap::new();
        let name = path.to_string_lossy().into_owned();
        let (program, diags) = tl_syntax::load_source(&name, &doc.text, &mut sources, &dir);
        let found = match pipeline::compile(&program, diags, &sources) {
            Ok((checked, _)) => {
                let warnings = pipeline::warnings(&checked, &[]);
                doc.checked = Some(checked);
                warnings
            }
            Err(diags) => {
                doc.checked = None;
                diags
            }
        };
        diagnostics = found.iter().map(|d| lsp_diagnostic(d, &doc.text)).collect();
    }
    Notification::new(
        "textDocument/publishDiagnostics".into(),
        json!({ "uri": uri, "diagnostics": diagnostics }),
    )
}

/// A diagnostic in LSP's form; one without a place in this document sits at its start.
fn lsp_diagnostic(d: &Diagnostic, text: &str) -> Value {
    let in_doc = |s: &Span| s.file.0 == 0;
    let range = match d.span.filter(in_doc) {
        Some(s) => range(text, s.start as usize, s.end as usize),
        None => range(text, 0, 0),
    };
    let mut message = d.message.clone();
    if let Some(help) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(help);
    }
    json!({
        "range": range,
        "severity": if d.severity == Severity::Error { 1 } else { 2 },
        "code": d.code,
        "source": "tl",
        "message": message,
    })
}

/// An LSP range for byte offsets of `text`.
fn range(text: &str, start: usize, end: usize) -> Value {
    json!({ "start": position(text, start), "end": position(text, end.max(start)) })
}

/// An LSP position (0-based line, UTF-16 column) for a byte offset.
fn position(text: &str, offset: usize) -> Value {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let column: usize = before
        .rsplit('\n')
        .next()
        .map_or(0, |l| l.chars().map(char::len_utf16).sum());
    json!({ "line": line, "character": column })
}

/// The byte offset of an LSP position, clamped to the text.
fn offset(text: &str, line: usize, character: usize) -> usize {
    let mut at = 0;
    for (k, l) in text.split_inclusive('\n').enumerate() {
        if k == line {
            let mut units = 0;
            for (i, c) in l.char_indices() {
                if units >= character || c == '\n' {
                    return at + i;
                }
                units += c.len_utf16();
            }
            return at + l.len();
        }
        at += l.len();
    }
    text.len()
}

/// The identifier under a byte offset.
fn word_at(text: &str, at: usize) -> Option<&str> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    let start = text[..at]
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_word(c))
        .last()
        .map_or(at, |(i, _)| i);
    let end = text[at..]
        .char_indices()
        .find(|&(_, c)| !is_word(c))
        .map_or(text.len(), |(i, _)| at + i);
    (start < end).then(|| &text[start..end])
}

/// The result of a hover or definition request (`null` for anything else).
fn answer(req: &Request, docs: &HashMap<String, Document>) -> Value {
    let p = &req.params;
    let Some(uri) = p["textDocument"]["uri"].as_str() else {
        return Value::Null;
    };
    let Some(doc) = docs.get(uri) else {
        return Value::Null;
    };
    let line = p["position"]["line"].as_u64().unwrap_or(0) as usize;
    let character = p["position"]["character"].as_u64().unwrap_or(0) as usize;
    let at = offset(&doc.text, line, character);
    let (Some(word), Some(checked)) = (word_at(&doc.text, at), doc.checked.as_ref()) else {
        return Value::Null;
    };
    let Some(t) = checked.tensor_named(word) else {
        return Value::Null;
    };
    match req.method.as_str() {
        "textDocument/hover" => json!({
            "contents": { "kind": "markdown", "value": describe(checked, t) }
        }),
        "textDocument/definition" => {
            let decl = &checked.tensors[t];
            let mut spans: Vec<Span> = decl
                .equations
                .iter()
                .map(|&e| checked.equations[e].span)
                .chain(decl.rules.iter().map(|&r| checked.rules[r].span))
                .collect();
            if spans.is_empty() {
                spans.push(decl.span);
            }
            spans
                .iter()
                .filter(|s| s.file.0 == 0)
                .map(|s| {
                    json!({ "uri": uri, "range": range(&doc.text, s.start as usize, s.end as usize) })
                })
                .collect()
        }
        _ => Value::Null,
    }
}

/// A tensor's kind, shape and domains, as hover text.
fn describe(p: &CheckedProgram, t: usize) -> String {
    let decl = &p.tensors[t];
    let kind = match decl.kind {
        TensorKind::Relation => "relation",
        TensorKind::Integer => "integer tensor",
        _ => "real tensor",
    };
    let how = match &decl.def {
        Definition::Data(_) => "data",
        Definition::External => "data (device)",
        Definition::Tuples(_) => "tuples read from a file",
        Definition::Param(_) => "`param` (learned)",
        Definition::ImplicitParam => "implicit param (learned)",
        Definition::Derived => "derived",
    };
    let shape: Vec<String> = decl
        .axes
        .iter()
        .map(|&d| p.domains[d].extent.to_string())
        .collect();
    let domains: Vec<String> = decl
        .axes
        .iter()
        .map(|&d| {
            let dom = &p.domains[d];
            let what = if dom.is_symbolic() {
                "symbols"
            } else {
                "integers"
            };
            format!("`{}` ({} {what})", dom.name, dom.extent)
        })
        .collect();
    let mut s = format!("**{}**: {kind} [{}], {how}", decl.name, shape.join(", "));
    if !domains.is_empty() {
        s.push_str(&format!("\n\ndomains: {}", domains.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_decode_to_paths() {
        assert_eq!(
            path_of("file:///tmp/a%20b/p.tl"),
            PathBuf::from("/tmp/a b/p.tl")
        );
        assert_eq!(
            path_of("file:///tmp/%E2%82%AC.tl"),
            PathBuf::from("/tmp/€.tl")
        );
        // A stray `%` stays as it is.
        assert_eq!(
            path_of("file:///tmp/100%.tl"),
            PathBuf::from("/tmp/100%.tl")
        );
    }

    #[test]
    fn positions_count_utf16_units_and_round_trip() {
        let text = "X = 1\n# é𝄞\nY = 2\n";
        let at = text.find('Y').unwrap_or(0);
        assert_eq!(position(text, at), json!({"line": 2, "character": 0}));
        let after = text.find("\nY").unwrap_or(0);
        // `# é𝄞` is 2 + 1 + 2 UTF-16 units.
        assert_eq!(position(text, after), json!({"line": 1, "character": 5}));
        assert_eq!(offset(text, 2, 0), at);
        assert_eq!(offset(text, 1, 5), after);
        assert_eq!(offset(text, 9, 0), text.len());
        assert_eq!(word_at(text, at), Some("Y"));
    }
}
