//! Recordings: one upstream response saved as two plain files a person can read and diff.
//!
//! ```text
//! <dir>/<host>/<slug>.meta.json    method, URL (secrets redacted), status, content type, time
//! <dir>/<host>/<slug>.body.<ext>   the body exactly as served (CSV, JSON, XLSX …)
//! ```
//!
//! Replay looks a request up by its normalised URL. When no recording has exactly that URL, it
//! falls back to one that differs only in the request's *window* parameters (the date-range
//! parameters a connector marks, e.g. FRED's `cosd`/`coed`): such a recording holds a wider range
//! than asked for, and every connector clips what it parses to the window it wanted. A request
//! that matches neither way is an error naming the URL — replay never touches the network.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::HttpError;
use super::redact::{redact_bytes, redact_url};

/// The metadata half of a recording.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordingMeta {
    /// HTTP method.
    pub method: String,
    /// The request URL with secrets redacted.
    pub url: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// Content type of the answer, when upstream gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// When the response was fetched; replay reports this as the fetch time.
    pub recorded_at: DateTime<Utc>,
    /// File name of the body, beside this file.
    pub body_file: String,
    /// Free text: where the data came from, if it was rebuilt from another format, etc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Parses a recording's `*.meta.json` text (read from `meta_path`, named in errors): the
/// metadata, its URL parsed, and a `body_file` that is a plain file name beside the meta file
/// (no folder part, so a recording can never point replay at a file elsewhere).
pub fn parse_meta(text: &str, meta_path: &Path) -> Result<(RecordingMeta, Url), HttpError> {
    let bad = |message: String| HttpError::RecordingFormat {
        path: meta_path.to_path_buf(),
        message,
    };
    let meta: RecordingMeta = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    let url = Url::parse(&meta.url).map_err(|e| bad(format!("bad url {:?}: {e}", meta.url)))?;
    let plain = Path::new(&meta.body_file)
        .file_name()
        .is_some_and(|n| n == std::ffi::OsStr::new(&meta.body_file));
    if !plain || meta.body_file.contains(['/', '\\']) {
        return Err(bad(format!(
            "body_file {:?} must be a file name beside the meta file, without a folder",
            meta.body_file
        )));
    }
    Ok((meta, url))
}

/// A recording loaded for replay.
#[derive(Debug, Clone)]
pub struct Recording {
    /// Its metadata.
    pub meta: RecordingMeta,
    /// Path of the body file.
    pub body_path: PathBuf,
}

/// Canonical form of a URL for matching: secrets redacted, query pairs sorted, and optionally
/// the given window parameters removed.
pub fn match_key(url: &Url, drop_params: &[String]) -> String {
    let mut url = Url::parse(&redact_url(url)).unwrap_or_else(|_| url.clone());
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !drop_params.iter().any(|d| d == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Window parameter names → (`method key`) → index of the recording.
type WindowKeys = HashMap<Vec<String>, std::sync::Arc<HashMap<String, usize>>>;

/// Every recording under a replay directory, indexed for lookup.
#[derive(Debug, Default)]
pub struct ReplayIndex {
    dir: PathBuf,
    exact: HashMap<String, Recording>,
    /// Recordings by URL without any query parameter that some request may treat as a window
    /// parameter: filled lazily per request since only the request knows its window params.
    all: Vec<(Url, Recording)>,
    /// Per set of window parameters: `method key-without-them` → index in `all`, built on the
    /// first request with that set (a linear scan per request made replaying 2,000 symbols
    /// quadratic).
    by_window: std::sync::Mutex<WindowKeys>,
}

impl ReplayIndex {
    /// Loads every `*.meta.json` below `dir`.
    pub fn load(dir: &Path) -> Result<Self, HttpError> {
        let mut index = ReplayIndex {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        if !dir.is_dir() {
            return Err(HttpError::ReplayDir {
                dir: dir.to_path_buf(),
            });
        }
        let mut stack = vec![dir.to_path_buf()];
        while let Some(folder) = stack.pop() {
            let entries = std::fs::read_dir(&folder).map_err(|source| HttpError::RecordingIo {
                path: folder.clone(),
                source,
            })?;
            for entry in entries {
                let path = entry
                    .map_err(|source| HttpError::RecordingIo {
                        path: folder.clone(),
                        source,
                    })?
                    .path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.to_string_lossy().ends_with(".meta.json") {
                    index.add(&path)?;
                }
            }
        }
        Ok(index)
    }

    fn add(&mut self, meta_path: &Path) -> Result<(), HttpError> {
        let text = std::fs::read_to_string(meta_path).map_err(|source| HttpError::RecordingIo {
            path: meta_path.to_path_buf(),
            source,
        })?;
        let (meta, url) = parse_meta(&text, meta_path)?;
        let body_path = meta_path.with_file_name(&meta.body_file);
        let rec = Recording { meta, body_path };
        self.exact.insert(
            format!("{} {}", rec.meta.method, match_key(&url, &[])),
            rec.clone(),
        );
        self.all.push((url, rec));
        Ok(())
    }

    /// Number of recordings loaded.
    pub fn len(&self) -> usize {
        self.exact.len()
    }

    /// Whether no recording was found.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// Finds the recording for a request (see the module doc for the matching rules).
    pub fn find(
        &self,
        method: &str,
        url: &Url,
        window: &[String],
    ) -> Result<&Recording, HttpError> {
        if let Some(rec) = self.exact.get(&format!("{method} {}", match_key(url, &[]))) {
            return Ok(rec);
        }
        if !window.is_empty() {
            let index = {
                let mut cache = self.by_window.lock().unwrap_or_else(|e| e.into_inner());
                cache
                    .entry(window.to_vec())
                    .or_insert_with(|| {
                        let mut keys = HashMap::new();
                        for (i, (u, r)) in self.all.iter().enumerate() {
                            // The first recording of a key wins, as the scan this replaces did.
                            keys.entry(format!("{} {}", r.meta.method, match_key(u, window)))
                                .or_insert(i);
                        }
                        std::sync::Arc::new(keys)
                    })
                    .clone()
            };
            if let Some(&i) = index.get(&format!("{method} {}", match_key(url, window))) {
                return Ok(&self.all[i].1);
            }
        }
        Err(HttpError::NoRecording {
            url: redact_url(url),
            dir: self.dir.clone(),
        })
    }
}

/// File-name-safe slug of a URL's path and query (bounded length; a hash keeps it unique).
fn slug(url: &Url) -> String {
    use sha2::{Digest, Sha256};
    let mut raw = url.path().trim_start_matches('/').to_string();
    if let Some(q) = url.query() {
        raw.push_str("--");
        raw.push_str(q);
    }
    let mut s: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > 100 {
        let hash = hex::encode(&Sha256::digest(raw.as_bytes())[..6]);
        s.truncate(90);
        s.push('-');
        s.push_str(&hash);
    }
    s
}

fn extension(content_type: Option<&str>, url: &Url) -> &'static str {
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let path = url.path().to_ascii_lowercase();
    if ct.contains("json") || path.ends_with(".json") {
        "json"
    } else if ct.contains("csv") || path.ends_with(".csv") {
        "csv"
    } else if ct.contains("spreadsheet") || path.ends_with(".xlsx") {
        "xlsx"
    } else if ct.contains("html") {
        "html"
    } else if ct.starts_with("text/") {
        "txt"
    } else {
        "bin"
    }
}

/// Saves one response under `dir` (secrets redacted from URL and body).
pub fn save(
    dir: &Path,
    method: &str,
    url: &Url,
    status: u16,
    content_type: Option<&str>,
    body: &[u8],
    recorded_at: DateTime<Utc>,
) -> Result<PathBuf, HttpError> {
    let host_dir = dir.join(url.host_str().unwrap_or("unknown-host"));
    std::fs::create_dir_all(&host_dir).map_err(|source| HttpError::RecordingIo {
        path: host_dir.clone(),
        source,
    })?;
    let clean_url = Url::parse(&redact_url(url)).unwrap_or_else(|_| url.clone());
    let stem = slug(&clean_url);
    let body_file = format!("{stem}.body.{}", extension(content_type, url));
    let meta = RecordingMeta {
        method: method.to_string(),
        url: clean_url.to_string(),
        status,
        content_type: content_type.map(str::to_string),
        recorded_at,
        body_file: body_file.clone(),
        note: None,
    };
    let body_path = host_dir.join(&body_file);
    std::fs::write(&body_path, redact_bytes(body)).map_err(|source| HttpError::RecordingIo {
        path: body_path.clone(),
        source,
    })?;
    let meta_path = host_dir.join(format!("{stem}.meta.json"));
    let json = serde_json::to_string_pretty(&meta).expect("recording metadata serialises");
    std::fs::write(&meta_path, json + "\n").map_err(|source| HttpError::RecordingIo {
        path: meta_path.clone(),
        source,
    })?;
    Ok(meta_path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_then_find_exact_and_by_window() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::parse("https://fred.example/graph/fredgraph.csv?id=WALCL").unwrap();
        save(
            dir.path(),
            "GET",
            &url,
            200,
            Some("text/csv"),
            b"observation_date,WALCL\n",
            Utc::now(),
        )
        .unwrap();
        let index = ReplayIndex::load(dir.path()).unwrap();
        assert_eq!(index.len(), 1);
        assert!(index.find("GET", &url, &[]).is_ok());
        let windowed =
            Url::parse("https://fred.example/graph/fredgraph.csv?cosd=2026-01-01&id=WALCL")
                .unwrap();
        assert!(
            index.find("GET", &windowed, &[]).is_err(),
            "window params must be declared"
        );
        assert!(index.find("GET", &windowed, &["cosd".to_string()]).is_ok());
        let other = Url::parse("https://fred.example/graph/fredgraph.csv?id=TREAST").unwrap();
        let err = index
            .find("GET", &other, &["cosd".to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("id=TREAST"), "{err}");
    }

    #[test]
    fn query_order_does_not_matter() {
        let a = Url::parse("https://h/p?b=2&a=1").unwrap();
        let b = Url::parse("https://h/p?a=1&b=2").unwrap();
        assert_eq!(match_key(&a, &[]), match_key(&b, &[]));
    }
}
