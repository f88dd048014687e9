//! The browser client, embedded in the binary at build time.

use include_dir::{Dir, include_dir};

static WEB: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../../web");

/// An embedded file's bytes and content type.
pub struct Asset {
    /// The bytes.
    pub body: &'static [u8],
    /// The `Content-Type`.
    pub content_type: &'static str,
}

/// Looks up `path` (relative to `web/`); `None` for anything not embedded,
/// including attempts to climb out with `..`.
pub fn asset(path: &str) -> Option<Asset> {
    if path
        .split('/')
        .any(|part| part == ".." || part.starts_with('.'))
    {
        return None;
    }
    let file = WEB.get_file(path)?;
    Some(Asset {
        body: file.contents(),
        content_type: content_type(path),
    })
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") => "application/json",
        Some("ico") => "image/x-icon",
        _ => "application/octet-stream",
    }
}
