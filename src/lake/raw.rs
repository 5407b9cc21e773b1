//! The landing zone: the raw upstream bodies of each ingest, kept gzip-compressed under
//! `raw/<source>/<date>/`, so a source can be re-parsed without re-fetching and what upstream said
//! can be audited.
//!
//! One object per source and run (`<HHMMSS.mmm>-<source>.gz`), one gzip member per body: the
//! member's header names the body (file name field) and its (redacted) URL (comment field). Any
//! gzip reader (`zcat`, Python's `gzip`) reads the bodies one after another; [`read_archive`]
//! gives them back one by one with their names and URLs. One object, not one per body: a
//! 2,000-symbol price night created and renamed 2,000 files, 0.6 s of a 1.1 s ingest on disk.
//! The object is written as it grows (a multipart upload: bounded memory on a first night's
//! whole histories) and becomes visible only when the source's ingest ends.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use flate2::Compression;
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use super::{Lake, LakeError, Result};
use crate::http::redact::{redact, redact_bytes};

/// The archives' compression level: the fastest. The 2,000-symbol next night's 4.7 MB of Yahoo
/// bodies compress in 0.07 s instead of level 6's 0.16 s (zlib, measured) to 2.23 MB instead of
/// 2.16; the full-scale bench's first ingest took 21.8 s instead of 25.4 on a machine otherwise
/// ~25% slower that run, for 1,119 MB written instead of 925 (synthetic bodies; real ones
/// compress better).
const LEVEL: Compression = Compression::fast();

/// One body of a raw archive, as [`read_archive`] gives it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBody {
    /// What the connector named it (`yahoo-SPY.json`).
    pub name: String,
    /// The URL it was fetched from, secrets redacted.
    pub url: String,
    /// The body as fetched (secrets redacted).
    pub body: Vec<u8>,
}

/// The raw archives of one ingest run, one per source, each open from its first body until
/// [`RawArchives::finish`] for its source. Cheap to clone (shared).
#[derive(Clone)]
pub struct RawArchives {
    lake: Lake,
    run_at: DateTime<Utc>,
    open: Arc<tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Archive>>>>>,
}

impl std::fmt::Debug for RawArchives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawArchives")
            .field("run_at", &self.run_at)
            .finish_non_exhaustive()
    }
}

struct Archive {
    relative: String,
    writer: BufWriter,
}

impl RawArchives {
    /// The archives of a run that starts at `run_at` (which names their objects).
    pub fn new(lake: Lake, run_at: DateTime<Utc>) -> Self {
        Self {
            lake,
            run_at,
            open: Arc::default(),
        }
    }

    /// Appends one body to its source's archive (opened on the first); returns the archive's
    /// path relative to the lake root.
    pub async fn add(&self, source: &str, name: &str, url: &str, body: &[u8]) -> Result<String> {
        let relative = format!(
            "raw/{source}/{}/{}-{source}.gz",
            self.run_at.format("%Y-%m-%d"),
            self.run_at.format("%H%M%S%.3f")
        );
        let member = member(name, url, body).map_err(|e| compress_error(&relative, e))?;
        // The map is locked only to find the archive: sources ingesting at once write to
        // their own archives side by side.
        let archive = self
            .open
            .lock()
            .await
            .entry(source.to_string())
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Archive {
                    writer: BufWriter::new(self.lake.store(), self.lake.path(&relative)),
                    relative: relative.clone(),
                }))
            })
            .clone();
        archive
            .lock()
            .await
            .writer
            .write_all(&member)
            .await
            .map_err(|e| write_error(&self.lake, &relative, e))?;
        Ok(relative)
    }

    /// Completes the archive of `source`, which makes it visible; returns its path (`None`: the
    /// source landed no body in this run).
    pub async fn finish(&self, source: &str) -> Result<Option<String>> {
        let Some(archive) = self.open.lock().await.remove(source) else {
            return Ok(None);
        };
        let mut archive = archive.lock().await;
        archive
            .writer
            .shutdown()
            .await
            .map_err(|e| write_error(&self.lake, &archive.relative, e))?;
        Ok(Some(archive.relative.clone()))
    }

    /// Completes every archive still open (a body landed under a name no source finished);
    /// returns their paths.
    pub async fn finish_all(&self) -> Result<Vec<String>> {
        let sources: Vec<String> = self.open.lock().await.keys().cloned().collect();
        let mut done = Vec::new();
        for source in sources {
            done.extend(self.finish(&source).await?);
        }
        Ok(done)
    }
}

/// One gzip member: the body, named, with the redacted URL in the header's comment.
///
/// The header is written here and the body deflated by a compressor kept per thread and reset
/// between members: a new one per body (`GzBuilder`) allocated and zeroed zlib's window and hash
/// tables each time, 2,000 times on a 2,000-symbol night — a sixth of the prices' CPU there.
fn member(name: &str, url: &str, body: &[u8]) -> std::io::Result<Vec<u8>> {
    use flate2::{Compress, Crc, FlushCompress, Status};
    thread_local! {
        // Raw deflate (no zlib header): the gzip framing is written around it.
        static DEFLATE: std::cell::RefCell<Compress> =
            std::cell::RefCell::new(Compress::new(LEVEL, false));
    }
    // Header fields are NUL-terminated: a name or comment cannot hold one.
    let field = |text: &str| -> Vec<u8> { text.bytes().filter(|b| *b != 0).collect() };
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
    let body = redact_bytes(body);
    let mut out = Vec::with_capacity(body.len() / 2 + 256);
    // ID1 ID2, deflate, FNAME | FCOMMENT, no mtime, XFL 4 (fastest), OS unknown (RFC 1952).
    out.extend_from_slice(&[0x1f, 0x8b, 8, 0x08 | 0x10, 0, 0, 0, 0, 4, 255]);
    out.extend(field(&safe));
    out.push(0);
    out.extend(field(&redact(url)));
    out.push(0);
    DEFLATE.with(|deflate| -> std::io::Result<()> {
        let mut deflate = deflate.borrow_mut();
        deflate.reset();
        let start = deflate.total_in();
        loop {
            out.reserve(body.len() / 4 + 64);
            let read = (deflate.total_in() - start) as usize;
            let status = deflate
                .compress_vec(&body[read..], &mut out, FlushCompress::Finish)
                .map_err(std::io::Error::other)?;
            if status == Status::StreamEnd {
                return Ok(());
            }
        }
    })?;
    let mut crc = Crc::new();
    crc.update(&body);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    // ISIZE: the length modulo 2^32 (RFC 1952).
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    Ok(out)
}

fn compress_error(relative: &str, e: std::io::Error) -> LakeError {
    LakeError::Data {
        table: super::TableName::meta("raw"),
        message: format!("compressing a body for {relative}: {e}"),
    }
}

fn write_error(lake: &Lake, relative: &str, e: std::io::Error) -> LakeError {
    LakeError::Data {
        table: super::TableName::meta("raw"),
        message: format!("writing {}: {e}", lake.path(relative)),
    }
}

/// The bodies of one raw archive (the bytes of a `raw/…gz` object), in the order they landed.
/// A file from before archives (one body per file) reads as one body.
pub fn read_archive(bytes: &[u8]) -> std::io::Result<Vec<RawBody>> {
    let mut rest = std::io::BufReader::new(bytes);
    let mut out = Vec::new();
    while !rest.fill_buf()?.is_empty() {
        let mut gz = flate2::bufread::GzDecoder::new(&mut rest);
        let mut body = Vec::new();
        gz.read_to_end(&mut body)?;
        let text = |f: Option<&[u8]>| String::from_utf8_lossy(f.unwrap_or_default()).into_owned();
        let header = gz.header();
        out.push(RawBody {
            name: text(header.and_then(|h| h.filename())),
            url: text(header.and_then(|h| h.comment())),
            body,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt;

    use super::*;

    #[test]
    fn members_from_one_reused_compressor_read_back_whole_in_order() {
        // Bodies of every size, compressed one after another on this thread (the compressor is
        // reset between them): empty, tiny, incompressible and several times zlib's window.
        let mut noise = Vec::new();
        let mut x: u32 = 0x9e37_79b9;
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            noise.push(x as u8);
        }
        let text = "2026-06-05,SPY,612.25\n".repeat(20_000).into_bytes();
        let bodies: Vec<(&str, Vec<u8>)> = vec![
            ("empty.json", Vec::new()),
            ("tiny.json", b"{}".to_vec()),
            ("noise.bin", noise),
            ("text.csv", text),
            ("again.json", b"{\"a\":1}".to_vec()),
        ];
        let mut bytes = Vec::new();
        for (name, body) in &bodies {
            bytes.extend(member(name, &format!("https://x/{name}"), body).unwrap());
        }
        let back = read_archive(&bytes).unwrap();
        assert_eq!(back.len(), bodies.len());
        for ((name, body), got) in bodies.iter().zip(&back) {
            assert_eq!(got.name, *name);
            assert_eq!(got.url, format!("https://x/{name}"));
            assert!(got.body == *body, "{name}: the body differs");
        }
        // Any gzip reader (CRC and length checked) reads the same bytes in the same order.
        let mut all = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut all)
            .unwrap();
        let expected: Vec<u8> = bodies.iter().flat_map(|(_, b)| b.clone()).collect();
        assert!(all == expected, "a gzip reader reads other bytes");
    }

    #[tokio::test]
    async fn a_sources_bodies_land_in_one_archive_visible_once_finished() {
        let lake = Lake::open("memory://", false).unwrap();
        let run_at = DateTime::parse_from_rfc3339("2026-06-05T22:30:01.250Z")
            .unwrap()
            .to_utc();
        let raw = RawArchives::new(lake.clone(), run_at);
        crate::http::redact::register("raw-archive-s3cr3t");
        let a = raw
            .add(
                "fred",
                "WALCL.json",
                "https://x/obs?series_id=WALCL&api_key=raw-archive-s3cr3t",
                b"one",
            )
            .await
            .unwrap();
        let b = raw
            .add("fred", "RRP/2.json", "https://x/obs?series_id=RRP", b"two")
            .await
            .unwrap();
        raw.add("prices", "yahoo-SPY.json", "https://y/SPY", b"three")
            .await
            .unwrap();
        assert_eq!(a, "raw/fred/2026-06-05/223001.250-fred.gz");
        assert_eq!(a, b, "one archive per source and run");
        let store = lake.store();
        assert!(
            store.get(&lake.path(&a)).await.is_err(),
            "not visible before the ingest ends"
        );

        assert_eq!(raw.finish("fred").await.unwrap(), Some(a.clone()));
        let prices = "raw/prices/2026-06-05/223001.250-prices.gz";
        assert!(
            store.get(&lake.path(prices)).await.is_err(),
            "another source's archive stays open until that source ends"
        );
        assert_eq!(raw.finish("prices").await.unwrap().as_deref(), Some(prices));
        let bytes = store
            .get(&lake.path(&a))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let bodies = read_archive(&bytes).unwrap();
        assert_eq!(bodies.len(), 2);
        assert_eq!(bodies[0].name, "WALCL.json");
        assert_eq!(bodies[1].name, "RRP_2.json");
        assert_eq!(bodies[0].body, b"one");
        assert_eq!(bodies[1].body, b"two");
        assert!(
            bodies[0].url.contains("api_key=REDACTED"),
            "{}",
            bodies[0].url
        );
        assert!(!bodies[0].url.contains("s3cr3t"));
        // Any gzip reader reads the bodies one after another.
        let mut all = String::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_string(&mut all)
            .unwrap();
        assert_eq!(all, "onetwo");
        assert_eq!(raw.finish("fred").await.unwrap(), None, "finished once");
        raw.add("eps", "x.xlsx", "https://z/x", b"four")
            .await
            .unwrap();
        let rest = raw.finish_all().await.unwrap();
        assert_eq!(
            rest,
            vec!["raw/eps/2026-06-05/223001.250-eps.gz".to_string()]
        );
        assert!(
            raw.finish_all().await.unwrap().is_empty(),
            "nothing left open"
        );
    }
}
