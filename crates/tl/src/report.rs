//! Renders diagnostics for people: file:line:col, the source line with a caret under the span,
//! labels for other places involved, and a hint. Everything else produces `Diagnostic` values.

use ariadne::{Config, IndexType, Label, Report, ReportKind};
use std::io::Write;
use tl_syntax::{Diagnostic, Severity, SourceMap};

/// Writes one diagnostic to `out` (colour only when `color`).
pub fn render(d: &Diagnostic, sources: &SourceMap, color: bool, out: &mut dyn Write) {
    let kind = match d.severity {
        Severity::Error => ReportKind::Error,
        Severity::Warning => ReportKind::Warning,
    };
    let Some(span) = d.span else {
        let word = if d.severity == Severity::Error {
            "error"
        } else {
            "warning"
        };
        let _ = writeln!(out, "{word}[{}]: {}", d.code, d.message);
        if let Some(h) = &d.help {
            let _ = writeln!(out, "  help: {h}");
        }
        return;
    };
    let name = |id: tl_syntax::FileId| sources.file(id).path.display().to_string();
    let config = Config::default()
        .with_color(color)
        .with_index_type(IndexType::Byte);
    let mut report = Report::build(kind, (name(span.file), span.range()))
        .with_config(config)
        .with_code(d.code)
        .with_message(&d.message);
    // In source order: the renderer starts a new snippet whenever a label lies above the one
    // before it, and heads every snippet of the primary file with the primary location.
    let mut labels: Vec<(tl_syntax::Span, &str)> = vec![(span, d.label.as_str())];
    labels.extend(d.secondary.iter().map(|l| (l.span, l.message.as_str())));
    labels.sort_by_key(|(s, _)| (s.file.0, s.start));
    for (at, message) in labels {
        report = report.with_label(Label::new((name(at.file), at.range())).with_message(message));
    }
    if let Some(h) = &d.help {
        report = report.with_help(h);
    }
    let cache = ariadne::sources(
        sources
            .files()
            .iter()
            .map(|f| (f.path.display().to_string(), f.text.clone())),
    );
    if report.finish().write(cache, &mut *out).is_err() {
        let _ = writeln!(out, "error[{}]: {}", d.code, d.message);
    }
}

/// Renders a diagnostic to a plain string (no colour), as tests and the REPL need.
pub fn render_to_string(d: &Diagnostic, sources: &SourceMap) -> String {
    let mut buf = Vec::new();
    render(d, sources, false, &mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}
