//! The server's object-store registry: only the lake, and only for reading.
//!
//! DataFusion's default registry answers every `file://` URL with the whole local file system,
//! and its stores accept writes. The server's registry starts empty; the Delta tables register
//! the stores they read through, and each is wrapped so that writes, deletes, copies and renames
//! fail with "permission denied" and reads outside the lake's folder fail too. Any other URL
//! (another bucket, `/etc/passwd`) has no store at all. This holds even if a statement got past
//! the guard and the plan checks ([`super::guard`], [`super::readonly`]).

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use url::Url;

/// `scheme://host:port`, the key DataFusion registers stores under.
fn url_key(url: &Url) -> String {
    format!(
        "{}://{}",
        url.scheme(),
        &url[url::Position::BeforeHost..url::Position::AfterPort]
    )
}

/// A registry that holds read-only views of the lake's stores and nothing else.
#[derive(Debug)]
pub struct LakeOnlyRegistry {
    lake_key: String,
    lake_prefix: Path,
    stores: RwLock<Vec<(String, Arc<dyn ObjectStore>)>>,
}

impl LakeOnlyRegistry {
    /// A registry for the lake at `root`.
    pub fn new(root: &Url) -> Self {
        Self {
            lake_key: url_key(root),
            lake_prefix: Path::from_url_path(root.path()).unwrap_or_default(),
            stores: RwLock::default(),
        }
    }
}

impl ObjectStoreRegistry for LakeOnlyRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        let key = url_key(url);
        // delta-rs registers per-table stores under `delta-rs://…`, already rooted at the table;
        // a store for the lake's bucket (or `file://`) is confined to the lake's folder.
        let scope = if url.scheme() == "delta-rs" {
            None
        } else if key == self.lake_key {
            Some(self.lake_prefix.clone())
        } else {
            tracing::warn!(url = %url, "refused to register an object store outside the lake");
            return None;
        };
        let wrapped: Arc<dyn ObjectStore> = Arc::new(ReadOnlyStore {
            inner: store,
            scope,
        });
        let mut stores = self.stores.write().expect("registry lock");
        match stores.iter_mut().find(|(k, _)| *k == key) {
            Some((_, old)) => Some(std::mem::replace(old, wrapped)),
            None => {
                stores.push((key, wrapped));
                None
            }
        }
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let key = url_key(url);
        self.stores
            .read()
            .expect("registry lock")
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| {
                DataFusionError::Execution(format!(
                    "permission denied: this server reads only its lake; {url} is not available"
                ))
            })
    }
}

/// A store that only reads, and only under `scope` when set.
#[derive(Debug)]
struct ReadOnlyStore {
    inner: Arc<dyn ObjectStore>,
    scope: Option<Path>,
}

impl fmt::Display for ReadOnlyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadOnly({})", self.inner)
    }
}

fn denied(path: &Path, why: &str) -> object_store::Error {
    object_store::Error::PermissionDenied {
        path: path.to_string(),
        source: why.to_string().into(),
    }
}

const READ_ONLY: &str = "the server's object store is read-only";
const OUTSIDE: &str = "the server reads only inside its lake";

impl ReadOnlyStore {
    fn check(&self, path: &Path) -> Result<()> {
        match &self.scope {
            Some(scope) if !path.prefix_matches(scope) && path != scope => {
                Err(denied(path, OUTSIDE))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ObjectStore for ReadOnlyStore {
    async fn put_opts(&self, location: &Path, _: PutPayload, _: PutOptions) -> Result<PutResult> {
        Err(denied(location, READ_ONLY))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        Err(denied(location, READ_ONLY))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.check(location)?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.check(location)?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        locations
            .map(|p| p.and_then(|p| Err(denied(&p, READ_ONLY))))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let path = prefix.cloned().unwrap_or_default();
        match self.check(&path) {
            Ok(()) => self.inner.list(prefix),
            Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
        }
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.check(&prefix.cloned().unwrap_or_default())?;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, _: &Path, to: &Path, _: CopyOptions) -> Result<()> {
        Err(denied(to, READ_ONLY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;
    use object_store::{ObjectStoreExt, PutPayload};

    #[tokio::test]
    async fn only_the_lake_and_only_reads() {
        let registry = LakeOnlyRegistry::new(&Url::parse("file:///srv/lake/").unwrap());
        let backing = Arc::new(InMemory::new());
        let inside = Path::from("srv/lake/marts/t/_delta_log/0.json");
        backing
            .put(&inside, PutPayload::from_static(b"{}"))
            .await
            .unwrap();
        backing
            .put(&Path::from("etc/passwd"), PutPayload::from_static(b"root"))
            .await
            .unwrap();
        // Nothing is available before a table registers its store: no implicit local files.
        let file = Url::parse("file:///etc/passwd").unwrap();
        let e = registry.get_store(&file).unwrap_err().to_string();
        assert!(e.contains("reads only its lake"), "{e}");
        // Another bucket is never registered.
        let other = Url::parse("s3://elsewhere/").unwrap();
        assert!(registry.register_store(&other, backing.clone()).is_none());
        assert!(registry.get_store(&other).is_err());

        registry.register_store(&Url::parse("file:///").unwrap(), backing.clone());
        let store = registry.get_store(&file).unwrap();
        assert_eq!(
            store.get(&inside).await.unwrap().bytes().await.unwrap(),
            "{}"
        );
        let e = store.get(&Path::from("etc/passwd")).await.unwrap_err();
        assert!(e.to_string().contains(OUTSIDE), "{e}");
        let e = store
            .put(&inside, PutPayload::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(e.to_string().contains(READ_ONLY), "{e}");
        assert!(store.delete(&inside).await.is_err());
        assert!(
            store
                .copy(&inside, &Path::from("srv/lake/x"))
                .await
                .is_err()
        );
        // The backing store is untouched.
        assert_eq!(
            backing.get(&inside).await.unwrap().bytes().await.unwrap(),
            "{}"
        );
    }
}
