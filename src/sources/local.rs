//! Files a user keeps in a local folder (vendor CSV files, a workbook archive): every connector
//! lists them the same way and names a bad one, with its line, in the error.

use std::path::{Path, PathBuf};

use super::SourceError;

/// A [`SourceError::File`] of connector `source_name` for `path` (and `line`, when known).
pub fn file_error(
    source_name: &'static str,
    path: &Path,
    line: Option<usize>,
    message: impl Into<String>,
) -> SourceError {
    SourceError::File {
        source_name,
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// The files in `dir` with extension `ext` (case-insensitive), by name; hidden files and
/// Excel's `~$` lock files are skipped. An unreadable folder is an error naming it.
pub fn list(source_name: &'static str, dir: &Path, ext: &str) -> Result<Vec<PathBuf>, SourceError> {
    let cannot =
        |e: std::io::Error| file_error(source_name, dir, None, format!("cannot list: {e}"));
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let path = entry.map_err(cannot)?.path();
        let name = file_name(&path);
        let matches = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case(ext));
        if matches && path.is_file() && !name.starts_with('.') && !name.starts_with("~$") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// [`list`], for a connector that goes on without the folder: its error is added to `failures`
/// and no file is listed.
pub fn list_or_report(
    source_name: &'static str,
    dir: &Path,
    ext: &str,
    failures: &mut Vec<SourceError>,
) -> Vec<PathBuf> {
    list(source_name, dir, ext).unwrap_or_else(|e| {
        failures.push(e);
        Vec::new()
    })
}

/// The file's name (lossy UTF-8), or `""` for a path without one.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A digest of everything a source reads to make its rows, for [`crate::lake::Lake::inputs_unchanged`]:
/// the program that parses them, the source's settings and window, and each input's name and
/// bytes in the order given. Equal digests mean a parse would make the same rows.
pub struct InputsDigest(blake3::Hasher);

impl InputsDigest {
    /// A digest of `source_name`'s inputs under `settings` (their `Debug` form: settings and
    /// window).
    pub fn new(source_name: &str, settings: &impl std::fmt::Debug) -> Self {
        let mut hasher = blake3::Hasher::new();
        hasher.update(format!("{source_name}\n{}\n{settings:?}\n", program()).as_bytes());
        Self(hasher)
    }

    /// Adds one input: its name and bytes.
    pub fn add(&mut self, name: &str, bytes: &[u8]) {
        for part in [name.as_bytes(), bytes] {
            self.0.update(&(part.len() as u64).to_le_bytes());
            self.0.update(part);
        }
    }

    /// The digest, as hex.
    pub fn finish(self) -> String {
        self.0.finalize().to_hex().to_string()
    }
}

/// This program's identity: its executable's size and modification time, so that a new build
/// (a parser fixed) parses again what an older one parsed; a value no other run has when the
/// executable cannot be looked at.
fn program() -> String {
    static PROGRAM: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            let meta = std::env::current_exe().and_then(std::fs::metadata);
            match meta.as_ref().map(|m| (m.len(), m.modified())) {
                Ok((len, Ok(modified))) => {
                    format!("{} {len} {:?}", env!("CARGO_PKG_VERSION"), modified)
                }
                _ => format!("unknown {}", uuid::Uuid::new_v4()),
            }
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_matching_files_by_name_and_names_a_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["b.CSV", "a.csv", ".hidden.csv", "~$lock.csv", "notes.txt"] {
            std::fs::write(dir.path().join(f), "x").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.csv")).unwrap();
        let names: Vec<String> = list("eps", dir.path(), "csv")
            .unwrap()
            .iter()
            .map(|p| file_name(p))
            .collect();
        assert_eq!(names, ["a.csv", "b.CSV"]);
        let missing = dir.path().join("nope");
        let mut failures = Vec::new();
        assert!(list_or_report("futures", &missing, "csv", &mut failures).is_empty());
        let e = failures[0].to_string();
        assert!(
            e.contains("futures") && e.contains("nope") && e.contains("cannot list"),
            "{e}"
        );
    }
}
