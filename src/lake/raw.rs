//! The landing zone: raw upstream bodies kept gzip-compressed under `raw/<source>/<date>/`, so a
//! source can be re-parsed without re-fetching and what upstream said can be audited. The
//! (redacted) URL is stored in the gzip header's comment field.

use std::io::Write;

use chrono::{DateTime, Utc};
use flate2::{Compression, GzBuilder};
use object_store::{ObjectStoreExt, PutPayload};

use super::{Lake, LakeError, Result};
use crate::http::redact::{redact, redact_bytes};

impl Lake {
    /// Lands one raw body; returns its path relative to the lake root.
    pub async fn land_raw(
        &self,
        source: &str,
        name: &str,
        url: &str,
        fetched_at: DateTime<Utc>,
        body: &[u8],
    ) -> Result<String> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let relative = format!(
            "raw/{source}/{}/{}-{safe}.gz",
            fetched_at.format("%Y-%m-%d"),
            fetched_at.format("%H%M%S")
        );
        let mut encoder = GzBuilder::new()
            .filename(safe.as_bytes())
            .comment(redact(url).as_bytes())
            .write(Vec::new(), Compression::default());
        let io_err = |e: std::io::Error| LakeError::Data {
            table: super::TableName::meta("raw"),
            message: format!("compressing {relative}: {e}"),
        };
        encoder.write_all(&redact_bytes(body)).map_err(io_err)?;
        let gz = encoder.finish().map_err(io_err)?;
        let path = self.path(&relative);
        self.store()
            .put(&path, PutPayload::from(gz))
            .await
            .map_err(|source| LakeError::Store {
                path: path.to_string(),
                source,
            })?;
        Ok(relative)
    }
}
