//! `tl lsp` driven by a scripted client over its standard input and output: the handshake,
//! diagnostics for a document with an error (at the right line and column), diagnostics
//! cleared by a fix, hover, go-to-definition, and a clean shutdown.

mod common;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};

/// Writes one framed JSON-RPC message.
fn send(to: &mut ChildStdin, message: Value) {
    let body = message.to_string();
    write!(to, "Content-Length: {}\r\n\r\n{body}", body.len()).expect("written");
    to.flush().expect("flushed");
}

/// Reads one framed JSON-RPC message.
fn receive(from: &mut BufReader<ChildStdout>) -> Value {
    let mut length = 0;
    loop {
        let mut line = String::new();
        assert!(
            from.read_line(&mut line).expect("a header") > 0,
            "the server closed"
        );
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(n) = line.strip_prefix("Content-Length: ") {
            length = n.parse().expect("a length");
        }
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).expect("a body");
    serde_json::from_slice(&body).expect("JSON")
}

/// The next message with this method (notifications the test does not look at are skipped).
fn next_notification(from: &mut BufReader<ChildStdout>, method: &str) -> Value {
    loop {
        let m = receive(from);
        if m["method"] == method {
            return m;
        }
    }
}

/// The response to request `id`.
fn response(from: &mut BufReader<ChildStdout>, id: u64) -> Value {
    loop {
        let m = receive(from);
        if m["id"] == id {
            return m;
        }
    }
}

#[test]
fn diagnostics_hover_and_definition_over_the_protocol() {
    let mut child = Command::new(common::tl_bin())
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("tl lsp starts");
    let mut input = child.stdin.take().expect("stdin");
    let mut output = BufReader::new(child.stdout.take().expect("stdout"));
    let uri = "file:///tmp/tl-lsp-test/prog.tl";

    send(
        &mut input,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}),
    );
    let init = response(&mut output, 1);
    assert_eq!(
        init["result"]["capabilities"]["hoverProvider"], true,
        "{init}"
    );
    assert_eq!(init["result"]["capabilities"]["definitionProvider"], true);
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
    );

    // Line 3 (0-based 2) reads `Y[i]` with three elements against `X[i]` with two.
    let broken = "X = [1, 2]\nY = [1, 2, 3]\nZ[i] = X[i] + Y[i]\n";
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {
        "textDocument": {"uri": uri, "languageId": "tensorlogic", "version": 1, "text": broken}}}),
    );
    let published = next_notification(&mut output, "textDocument/publishDiagnostics");
    let diags = published["params"]["diagnostics"]
        .as_array()
        .expect("a list")
        .clone();
    assert!(!diags.is_empty(), "{published}");
    let d = &diags[0];
    assert_eq!(d["severity"], 1);
    assert!(
        d["code"].as_str().expect("a code").starts_with("TL01"),
        "{d}"
    );
    assert_eq!(d["range"]["start"]["line"], 2, "{d}");
    let column = d["range"]["start"]["character"].as_u64().expect("a column");
    assert!((7..=16).contains(&column), "{d}");

    let fixed = "X = [1, 2]\nW = [[1, 2, 3], [4, 5, 6]]\nZ[j] = X[i] W[i, j]\nZ?\n";
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
        "textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}}),
    );
    let published = next_notification(&mut output, "textDocument/publishDiagnostics");
    assert_eq!(published["params"]["diagnostics"], json!([]), "{published}");

    // Hover on `W` in `X[i] W[i, j]` (line 2, column 12).
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "id": 2, "method": "textDocument/hover", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 2, "character": 12}}}),
    );
    let hover = response(&mut output, 2);
    let text = hover["result"]["contents"]["value"]
        .as_str()
        .expect("hover text");
    assert!(
        text.contains("**W**") && text.contains("[2, 3]") && text.contains("data"),
        "{text}"
    );

    // Definition of `Z` from its query on line 3: the equation on line 2.
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "id": 3, "method": "textDocument/definition", "params": {
        "textDocument": {"uri": uri}, "position": {"line": 3, "character": 0}}}),
    );
    let def = response(&mut output, 3);
    assert_eq!(def["result"][0]["range"]["start"]["line"], 2, "{def}");
    assert_eq!(def["result"][0]["uri"], uri);

    send(
        &mut input,
        json!({"jsonrpc": "2.0", "id": 4, "method": "shutdown", "params": null}),
    );
    let _ = response(&mut output, 4);
    send(
        &mut input,
        json!({"jsonrpc": "2.0", "method": "exit", "params": null}),
    );
    let status = child.wait().expect("tl lsp exits");
    assert!(status.success(), "{status}");
}
