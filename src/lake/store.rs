//! The one function from a lake URL to an object store.

use std::path::Path;
use std::sync::Arc;

use deltalake::DeltaResult;
use deltalake::logstore::{
    LogStore, LogStoreFactory, ObjectStoreRef, StorageConfig, default_logstore, logstore_factories,
};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use url::Url;

use super::LakeError;

/// Cloud schemes whose Delta log goes through [`register_log_stores`].
const CLOUD_SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "azure"];

/// Delta's log store for a table on an object store we built ([`store_for`]): commits are a
/// conditional "create if absent" put of the next log entry (S3's `If-None-Match`, GCS's and
/// Azure's preconditions), as delta-rs' own S3, GCS and Azure factories do — registered here so
/// their crates (and the AWS SDK they pull in) are not built.
struct ConditionalPutLogStores;

impl LogStoreFactory for ConditionalPutLogStores {
    fn with_options(
        &self,
        prefixed_store: ObjectStoreRef,
        root_store: ObjectStoreRef,
        location: &Url,
        options: &StorageConfig,
    ) -> DeltaResult<Arc<dyn LogStore>> {
        Ok(default_logstore(
            prefixed_store,
            root_store,
            location,
            options,
        ))
    }
}

/// Registers the log store of every cloud scheme with delta-rs (once per process).
pub(super) fn register_log_stores() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let factories = logstore_factories();
        for scheme in CLOUD_SCHEMES {
            let url = Url::parse(&format!("{scheme}://")).expect("a scheme is a URL");
            factories.insert(url, Arc::new(ConditionalPutLogStores));
        }
    });
}

/// Turns what a user typed (`./lake`, `/data/lake`, `file:///…`, `memory://`, `s3://bucket/p`,
/// `gs://…`, `az://…`) into a normalised URL ending in `/`. Local paths are made absolute and
/// created if missing.
pub fn normalize_lake_url(input: &str) -> Result<Url, LakeError> {
    let bad = |message: String| LakeError::BadUrl {
        url: input.to_string(),
        message,
    };
    let parsed = match Url::parse(input) {
        Ok(url) if url.scheme().len() > 1 => url,
        _ => {
            let path = Path::new(input);
            std::fs::create_dir_all(path).map_err(|e| bad(format!("cannot create folder: {e}")))?;
            let abs = std::fs::canonicalize(path).map_err(|e| bad(e.to_string()))?;
            Url::from_directory_path(&abs).map_err(|_| bad("not an absolute path".into()))?
        }
    };
    let mut url = parsed;
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|_| bad("not a local path".into()))?;
        std::fs::create_dir_all(&path).map_err(|e| bad(format!("cannot create folder: {e}")))?;
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Builds the object store behind a lake URL. The store's root is the root of the bucket (or
/// of the file system, or of the in-memory store); table locations are full URLs below it.
///
/// * `s3://` — endpoint, region and credentials from the usual AWS variables
///   (`AWS_ENDPOINT_URL`, `AWS_REGION`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, …);
///   `allow_http` permits a plain-HTTP endpoint such as a local S3 server.
/// * `gs://` — `GOOGLE_SERVICE_ACCOUNT*` variables; `az://` — `AZURE_STORAGE_*` variables.
pub fn store_for(url: &Url, allow_http: bool) -> Result<Arc<dyn ObjectStore>, LakeError> {
    let bad = |message: String| LakeError::BadUrl {
        url: url.to_string(),
        message,
    };
    let store: Arc<dyn ObjectStore> = match url.scheme() {
        "file" => Arc::new(LocalFileSystem::new()),
        "memory" => Arc::new(InMemory::new()),
        "s3" | "s3a" => {
            let mut builder = AmazonS3Builder::from_env().with_url(url.as_str());
            if allow_http {
                builder = builder.with_allow_http(true);
            }
            // Delta commits need an atomic "create if absent": S3 provides it as a conditional put.
            builder = builder.with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
            Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
        }
        "gs" => Arc::new(
            GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "az" | "abfs" | "abfss" | "azure" => {
            let mut builder = MicrosoftAzureBuilder::from_env().with_url(url.as_str());
            if allow_http {
                builder = builder.with_allow_http(true);
            }
            Arc::new(builder.build().map_err(|e| bad(e.to_string()))?)
        }
        other => {
            return Err(bad(format!(
                "unsupported scheme {other:?}; use a path, file://, memory://, s3://, gs:// or az://"
            )));
        }
    };
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_become_absolute_file_urls() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("lake");
        let url = normalize_lake_url(input.to_str().unwrap()).unwrap();
        assert_eq!(url.scheme(), "file");
        assert!(url.path().ends_with("/lake/"));
        assert!(input.is_dir());
    }

    #[test]
    fn memory_and_s3_urls_are_accepted() {
        let mem = normalize_lake_url("memory://").unwrap();
        assert!(store_for(&mem, false).is_ok());
        let s3 = normalize_lake_url("s3://bucket/prefix").unwrap();
        assert_eq!(s3.as_str(), "s3://bucket/prefix/");
        assert!(store_for(&s3, true).is_ok());
    }

    #[test]
    fn unknown_scheme_is_a_clear_error() {
        let url = Url::parse("ftp://x/y/").unwrap();
        let err = store_for(&url, false).unwrap_err().to_string();
        assert!(err.contains("unsupported scheme"), "{err}");
    }
}
