//! The files of a branch: which ones a run yields (the whole tree, or what changed since the
//! last run's commit), and their text.

use super::entities::Omitted;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Files larger than this are listed without their content.
pub(super) const MAX_FILE_BYTES: u64 = 256 * 1024;
/// GitHub's comparison lists at most this many files; a list this long may be cut.
pub(super) const COMPARE_FILE_LIMIT: usize = 300;

/// A file (a blob) of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TreeFile {
    pub path: String,
    pub sha: String,
    pub size: Option<u64>,
}

/// One step of the files phase: a file to yield, or one to report gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum FileItem {
    Removed(String),
    Present(TreeFile),
}

/// The blobs of a recursive `GET .../git/trees/{sha}` answer (directories and submodules are
/// not files) and whether GitHub cut the listing. `None` when it is not a tree.
pub(super) fn tree_files(v: &Value) -> Option<(Vec<TreeFile>, bool)> {
    let entries = v.get("tree")?.as_array()?;
    let truncated = v.get("truncated").and_then(Value::as_bool).unwrap_or(false);
    let mut files = Vec::new();
    for entry in entries {
        if entry.get("type").and_then(Value::as_str) != Some("blob") {
            continue;
        }
        let (Some(path), Some(sha)) = (
            entry.get("path").and_then(Value::as_str),
            entry.get("sha").and_then(Value::as_str),
        ) else {
            return None;
        };
        files.push(TreeFile {
            path: path.to_owned(),
            sha: sha.to_owned(),
            size: entry.get("size").and_then(Value::as_u64),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Some((files, truncated))
}

/// What changed between two commits: paths to yield again, paths gone.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Changes {
    pub changed: BTreeSet<String>,
    pub removed: BTreeSet<String>,
}

/// A `GET .../compare/{old}...{new}` answer as changes, when it tells them all: the new commit
/// descends from the old one (`ahead`, `identical`) and the file list is not cut. `Err` when
/// the answer is not a comparison.
pub(super) fn compared(v: &Value) -> Result<Option<Changes>, ()> {
    let status = v.get("status").and_then(Value::as_str).ok_or(())?;
    let files = v.get("files").and_then(Value::as_array).ok_or(())?;
    // A force-push (`diverged`, `behind`) compares against the merge base, which says nothing
    // of the files the old commit had on top of it.
    if !matches!(status, "ahead" | "identical") || files.len() >= COMPARE_FILE_LIMIT {
        return Ok(None);
    }
    let mut changes = Changes::default();
    for file in files {
        let path = file.get("filename").and_then(Value::as_str).ok_or(())?;
        match file.get("status").and_then(Value::as_str).ok_or(())? {
            "removed" => {
                changes.removed.insert(path.to_owned());
            }
            "renamed" => {
                if let Some(old) = file.get("previous_filename").and_then(Value::as_str) {
                    changes.removed.insert(old.to_owned());
                }
                changes.changed.insert(path.to_owned());
            }
            "unchanged" => {}
            // added, modified, changed, copied
            _ => {
                changes.changed.insert(path.to_owned());
            }
        }
    }
    // A path removed and added again in the range is a change, not a removal.
    let readded: Vec<String> = changes
        .removed
        .intersection(&changes.changed)
        .cloned()
        .collect();
    for path in readded {
        changes.removed.remove(&path);
    }
    Ok(Some(changes))
}

/// The changes between two listings of the same branch.
pub(super) fn diff(old: &[TreeFile], new: &[TreeFile]) -> Changes {
    let before: BTreeMap<&str, &str> = old
        .iter()
        .map(|f| (f.path.as_str(), f.sha.as_str()))
        .collect();
    let after: BTreeSet<&str> = new.iter().map(|f| f.path.as_str()).collect();
    Changes {
        changed: new
            .iter()
            .filter(|f| before.get(f.path.as_str()) != Some(&f.sha.as_str()))
            .map(|f| f.path.clone())
            .collect(),
        removed: old
            .iter()
            .filter(|f| !after.contains(f.path.as_str()))
            .map(|f| f.path.clone())
            .collect(),
    }
}

/// The run's steps: removals first, then the files to yield, by path.
pub(super) fn items(tree: Vec<TreeFile>, changes: Option<Changes>) -> Vec<FileItem> {
    match changes {
        None => tree.into_iter().map(FileItem::Present).collect(),
        Some(changes) => changes
            .removed
            .into_iter()
            .map(FileItem::Removed)
            .chain(
                tree.into_iter()
                    .filter(|f| changes.changed.contains(&f.path))
                    .map(FileItem::Present),
            )
            .collect(),
    }
}

/// Extensions of files that are never text: listed without fetching their content.
const BINARY_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "bmp", "ico", "webp", "tiff", "psd", "pdf", "zip", "gz", "tgz",
    "bz2", "xz", "7z", "rar", "jar", "war", "class", "exe", "dll", "so", "dylib", "a", "o", "obj",
    "bin", "wasm", "woff", "woff2", "ttf", "otf", "eot", "mp3", "mp4", "mov", "avi", "wav", "ogg",
    "flac", "webm", "sqlite", "db", "pyc", "pdb", "dmg", "iso",
];

/// Why a file's content is not fetched at all, if it is not.
pub(super) fn not_fetched(file: &TreeFile) -> Option<Omitted> {
    if file.size.is_some_and(|size| size > MAX_FILE_BYTES) {
        return Some(Omitted::TooLarge);
    }
    let extension = file.path.rsplit_once('.')?.1.to_ascii_lowercase();
    BINARY_EXTENSIONS
        .contains(&extension.as_str())
        .then_some(Omitted::Binary)
}

/// A `GET .../git/blobs/{sha}` answer as the file's text. `None` when it is not a blob.
pub(super) fn blob_text(v: &Value) -> Option<Result<String, Omitted>> {
    let content = v.get("content")?.as_str()?;
    let bytes = match v.get("encoding").and_then(Value::as_str) {
        Some("base64") | None => decode_base64(content)?,
        Some("utf-8") => content.as_bytes().to_vec(),
        Some(_) => return None,
    };
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Some(Err(Omitted::TooLarge));
    }
    Some(as_text(bytes))
}

/// Text is valid UTF-8 without NUL bytes (git's own test for binary looks for NUL).
fn as_text(bytes: Vec<u8>) -> Result<String, Omitted> {
    if bytes.contains(&0) {
        return Err(Omitted::Binary);
    }
    String::from_utf8(bytes).map_err(|_| Omitted::Binary)
}

/// Standard base64 (RFC 4648, padded), ignoring the line breaks GitHub puts every 60 characters.
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let symbols: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    if symbols.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    for (i, quad) in symbols.chunks(4).enumerate() {
        let last = i == symbols.len() / 4 - 1;
        let padding = quad.iter().rev().take_while(|c| **c == b'=').count();
        if padding > 2 || (padding > 0 && !last) {
            return None;
        }
        let mut word = 0u32;
        for c in &quad[..4 - padding] {
            word = word << 6 | value(*c)?;
        }
        word <<= 6 * padding as u32;
        let bytes = word.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}
