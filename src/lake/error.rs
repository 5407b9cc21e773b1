//! The lake's errors: each names the table, path or query it is about.

use super::TableName;

/// Errors of the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// No table of that name.
    #[error("no table {name:?} in the lake (tables: {known})")]
    UnknownTable {
        /// The name asked for.
        name: String,
        /// The tables there.
        known: String,
    },
    /// The lake URL cannot be used.
    #[error("lake URL {url:?}: {message}")]
    BadUrl {
        /// What was given.
        url: String,
        /// Why it cannot be used.
        message: String,
    },
    /// A Delta operation on a table failed.
    #[error("table {table}: {action} failed: {source}")]
    Delta {
        /// The table.
        table: TableName,
        /// What was being done (load, write, merge …).
        action: &'static str,
        /// Delta's error.
        #[source]
        source: Box<deltalake::DeltaTableError>,
    },
    /// Preparing data for a write failed.
    #[error("table {table}: {message}")]
    Data {
        /// The table.
        table: TableName,
        /// What is wrong.
        message: String,
    },
    /// A table asked for does not exist.
    #[error("table {table} does not exist in the lake (run `macrolake ingest` first?)")]
    NoSuchTable {
        /// The table.
        table: TableName,
    },
    /// Object store access outside Delta (raw landing, listing) failed.
    #[error("lake storage at {path}: {source}")]
    Store {
        /// The object path.
        path: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// A DataFusion step (session, registration, query) failed.
    #[error("{context}: {source}")]
    DataFusion {
        /// What was being done.
        context: String,
        /// DataFusion's error.
        #[source]
        source: Box<datafusion::error::DataFusionError>,
    },
}

/// Result alias of the lake.
pub type Result<T, E = LakeError> = std::result::Result<T, E>;
