//! The contract between this crate, the browser client (`web/js/protocol.js`)
//! and `docs/protocol.md`: every message type and error code the server knows
//! is one the client and the document know, and the other way round. The
//! Rust side's lists come from serde itself (its "expected one of" message for
//! an unknown name), so a variant added without telling the client fails here.

use std::collections::BTreeSet;

use parley_protocol::{ClientMessage, ErrorCode, ServerMessage};

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {full}: {e}"))
}

/// The names serde expects, from its error for a name it does not know.
fn serde_names(error: impl std::fmt::Display) -> BTreeSet<String> {
    let error = error.to_string();
    let list = error
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("not an unknown-variant error: {error}"))
        .1;
    backticked(list)
}

fn backticked(text: &str) -> BTreeSet<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

fn quoted_names(text: &str) -> BTreeSet<String> {
    text.split('\'')
        .skip(1)
        .step_by(2)
        .filter(|s| s.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .map(str::to_owned)
        .collect()
}

fn client_types() -> BTreeSet<String> {
    serde_names(
        serde_json::from_str::<ClientMessage>(r#"{"type":"?"}"#).expect_err("no type is named ?"),
    )
}

fn server_types() -> BTreeSet<String> {
    serde_names(
        serde_json::from_str::<ServerMessage>(r#"{"type":"?"}"#).expect_err("no type is named ?"),
    )
}

fn error_codes() -> BTreeSet<String> {
    serde_names(serde_json::from_str::<ErrorCode>(r#""?""#).expect_err("no code is named ?"))
}

/// The part of `text` between two markers.
fn between<'a>(text: &'a str, from: &str, to: &str) -> &'a str {
    let start = text.find(from).unwrap_or_else(|| panic!("no {from:?}"));
    let rest = &text[start + from.len()..];
    let end = rest
        .find(to)
        .unwrap_or_else(|| panic!("no {to:?} after {from:?}"));
    &rest[..end]
}

/// The message types the typedefs of one section of protocol.js declare:
/// `@property {'join'} type` and `{type: 'admit' | 'reject', …}`.
fn typedef_types(section: &str) -> BTreeSet<String> {
    let mut types = BTreeSet::new();
    for line in section.lines() {
        if let Some(at) = line.find("} type") {
            let open = line[..at].rfind('{').map_or(0, |i| i + 1);
            types.extend(quoted_names(&line[open..at]));
        }
        if let Some(at) = line.find("type: '") {
            let rest = &line[at + "type: ".len()..];
            let end = rest.find([',', '}']).unwrap_or(rest.len());
            types.extend(quoted_names(&rest[..end]));
        }
    }
    types
}

#[test]
fn the_browser_client_declares_every_client_message_and_no_other() {
    let js = repo_file("web/js/protocol.js");
    let section = between(&js, "// Client → server", "// Server → client");
    assert_eq!(typedef_types(section), client_types());
}

#[test]
fn the_browser_client_dispatches_every_server_message_and_no_other() {
    let js = repo_file("web/js/protocol.js");
    let dispatched = quoted_names(between(&js, "const SERVER_TYPES = new Set([", "]);"));
    assert_eq!(dispatched, server_types(), "SERVER_TYPES in protocol.js");
    let section = between(&js, "// Server → client", "\n// Client\n");
    assert_eq!(
        typedef_types(section),
        server_types(),
        "typedefs in protocol.js"
    );
}

#[test]
fn the_browser_client_knows_every_error_code_and_no_other() {
    let js = repo_file("web/js/protocol.js");
    let known = quoted_names(between(&js, "@typedef {'bad_json'", "} KnownErrorCode"));
    let mut known = known;
    known.insert("bad_json".into());
    assert_eq!(known, error_codes());
}

#[test]
fn the_protocol_document_describes_every_message_and_error_code() {
    let doc = repo_file("docs/protocol.md");
    let headings: BTreeSet<String> = doc
        .lines()
        .filter(|l| l.starts_with("### "))
        .flat_map(backticked)
        .collect();
    for name in client_types().iter().chain(&server_types()) {
        assert!(
            headings.contains(name),
            "docs/protocol.md has no heading for `{name}`"
        );
    }
    for code in error_codes() {
        assert!(
            doc.contains(&format!("`{code}`")),
            "docs/protocol.md does not name `{code}`"
        );
    }
}
