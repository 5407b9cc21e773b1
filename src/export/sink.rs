//! Where `macrolake export` writes a file, and how it lands whole or not at all while it is
//! written batch by batch: in a local folder, a temporary file renamed into place; in an object
//! store, a multipart upload, which the store makes visible only when it completes.

use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use url::Url;

use super::ExportError;
use crate::query::AtomicFile;

/// Where files go.
pub(super) enum Destination {
    /// A local folder.
    Dir(PathBuf),
    /// An object store under a URL prefix (ending in `/`).
    Store {
        url: Url,
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
    },
}

impl Destination {
    /// Parses `--to` without touching anything.
    pub(super) fn parse(to: &str, allow_http: bool) -> Result<Self, ExportError> {
        let bad = |message: String| ExportError::Destination {
            to: to.to_string(),
            message,
        };
        if to.trim().is_empty() {
            return Err(bad(
                "give a folder or a URL such as s3://bucket/prefix".into()
            ));
        }
        match Url::parse(to) {
            // One-letter schemes are Windows drive letters (C:\exports).
            Ok(mut url) if url.scheme().len() > 1 => {
                if url.scheme() == "memory" {
                    return Err(bad(
                        "an in-memory store vanishes when macrolake exits; give a folder or a \
                         persistent store URL"
                            .into(),
                    ));
                }
                if !url.path().ends_with('/') {
                    let path = format!("{}/", url.path());
                    url.set_path(&path);
                }
                let store = crate::lake::store::store_for(&url, allow_http)
                    .map_err(|e| bad(e.to_string()))?;
                let prefix = ObjectPath::from_url_path(url.path())
                    .map_err(|e| bad(format!("bad path in the URL: {e}")))?;
                Ok(Destination::Store { url, store, prefix })
            }
            _ => {
                let dir = PathBuf::from(to);
                if dir.exists() && !dir.is_dir() {
                    return Err(bad("exists and is not a folder".into()));
                }
                Ok(Destination::Dir(dir))
            }
        }
    }

    /// Creates the local folder if needed.
    pub(super) fn prepare(&self, to: &str) -> Result<(), ExportError> {
        if let Destination::Dir(dir) = self {
            std::fs::create_dir_all(dir).map_err(|e| ExportError::Destination {
                to: to.to_string(),
                message: format!("cannot create the folder: {e}"),
            })?;
        }
        Ok(())
    }

    /// Opens the file `file_name` for writing, and says where it will be.
    pub(super) async fn open(&self, file_name: &str) -> Result<(Sink, String), ExportError> {
        match self {
            Destination::Dir(dir) => {
                let path = dir.join(file_name);
                let file = AtomicFile::create(&path).map_err(|source| ExportError::Write {
                    path: path.clone(),
                    source,
                })?;
                let location = path.display().to_string();
                Ok((Sink::File { file, path }, location))
            }
            Destination::Store { url, store, prefix } => {
                let location = prefix.clone().join(file_name);
                let target = url
                    .join(file_name)
                    .map_or_else(|_| format!("{url}{file_name}"), |u| u.to_string());
                let upload =
                    store
                        .put_multipart(&location)
                        .await
                        .map_err(|source| ExportError::Put {
                            url: target.clone(),
                            source,
                        })?;
                let sink = Sink::Upload {
                    upload: WriteMultipart::new(upload),
                    url: target.clone(),
                };
                Ok((sink, target))
            }
        }
    }
}

/// One file being written.
pub(super) enum Sink {
    /// A temporary file beside `path`.
    File { file: AtomicFile, path: PathBuf },
    /// A multipart upload to `url`.
    Upload { upload: WriteMultipart, url: String },
}

/// Parts of a multipart upload in flight at most: memory stays at a few parts.
const PARTS_IN_FLIGHT: usize = 4;

impl Sink {
    /// Appends `bytes`.
    pub(super) async fn put(&mut self, bytes: &[u8]) -> Result<(), ExportError> {
        match self {
            Sink::File { file, path } => {
                std::io::Write::write_all(file.file(), bytes).map_err(|source| ExportError::Write {
                    path: path.clone(),
                    source,
                })
            }
            Sink::Upload { upload, url } => {
                upload
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|source| ExportError::Put {
                        url: url.clone(),
                        source,
                    })?;
                upload.write(bytes);
                Ok(())
            }
        }
    }

    /// Makes the file visible whole.
    pub(super) async fn finish(self) -> Result<(), ExportError> {
        match self {
            Sink::File { file, path } => file
                .commit()
                .map_err(|source| ExportError::Write { path, source }),
            Sink::Upload { upload, url } => upload
                .finish()
                .await
                .map(|_| ())
                .map_err(|source| ExportError::Put { url, source }),
        }
    }

    /// Drops what was written: the temporary file, or the upload's parts.
    pub(super) async fn abort(self) {
        match self {
            Sink::File { file, .. } => drop(file),
            Sink::Upload { upload, url } => {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(url = %url, error = %e, "could not abort the upload of an export that failed");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_folders_or_store_urls() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let d = Destination::parse(sub.to_str().unwrap(), false).unwrap();
        assert!(matches!(&d, Destination::Dir(p) if *p == sub));
        assert!(!sub.exists(), "parsing creates nothing");
        d.prepare("x").unwrap();
        assert!(sub.is_dir());

        let d = Destination::parse("s3://bucket/some/prefix", false).unwrap();
        let Destination::Store { url, prefix, .. } = d else {
            panic!("s3 is a store")
        };
        assert_eq!(url.as_str(), "s3://bucket/some/prefix/");
        assert_eq!(prefix.as_ref(), "some/prefix");

        let file = dir.path().join("f");
        std::fs::write(&file, "x").unwrap();
        for bad in [file.to_str().unwrap(), "memory://", "ftp://host/x", ""] {
            let err = Destination::parse(bad, false).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains("--to")),
                "{bad}: {err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_store_destination_writes_one_object_under_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let url = Url::from_directory_path(dir.path()).unwrap();
        let d = Destination::parse(&format!("{url}exports"), false).unwrap();
        let written = dir.path().join("exports/marts.x.csv");
        let (mut sink, location) = d.open("marts.x.csv").await.unwrap();
        assert!(location.starts_with("file://") && location.ends_with("/exports/marts.x.csv"));
        sink.put(b"a\n").await.unwrap();
        sink.put(b"1\n").await.unwrap();
        assert!(
            !written.exists(),
            "nothing is visible before the upload completes"
        );
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"a\n1\n");
        // An aborted one leaves the object as it was.
        let (mut sink, _) = d.open("marts.x.csv").await.unwrap();
        sink.put(b"b\n2\n").await.unwrap();
        sink.abort().await;
        assert_eq!(std::fs::read(&written).unwrap(), b"a\n1\n");
    }

    #[tokio::test]
    async fn a_folder_destination_shows_the_file_whole_or_leaves_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let d = Destination::parse(dir.path().to_str().unwrap(), false).unwrap();
        let written = dir.path().join("marts.x.csv");
        std::fs::write(&written, "old\n").unwrap();
        let (mut sink, _) = d.open("marts.x.csv").await.unwrap();
        sink.put(b"a\n").await.unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"old\n");
        sink.abort().await;
        assert_eq!(std::fs::read(&written).unwrap(), b"old\n");
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "the temporary file is removed");
        let (mut sink, _) = d.open("marts.x.csv").await.unwrap();
        sink.put(b"a\n1\n").await.unwrap();
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&written).unwrap(), b"a\n1\n");
    }
}
