//! SQL models: one `.sql` file per model under `sql/staging/` and `sql/marts/`, built in the
//! order their table references imply, each one audited before it is published.
//!
//! A model file is a single `SELECT` (CTEs welcome) with an optional header of `--` comments:
//!
//! ```sql
//! -- description: Fed total assets minus TGA minus ON RRP, one row per calendar day
//! -- materialized: table            (table | view | incremental, with unique_key and partition_by,
//!                                      and optionally append_sql: append/<name>.sql)
//! -- column date: calendar day
//! -- test: unique(date)
//! -- test: not_null(date, net_liquidity_musd)
//! -- test: accepted_range(net_liquidity_musd, 0, 20000000)
//! -- test: relationships(symbol, staging.prices_daily.symbol)
//! -- test: freshness(date, 10)     (newest date at most 10 days before [models] reference_date, default today)
//! SELECT …
//! ```
//!
//! Dependencies are the `staging.*`, `marts.*` and `meta.*` tables the SQL names (found with
//! DataFusion's SQL parser), so the build order is a DAG computed from the files. Before
//! anything is written, cycles, unknown tables and SQL errors are reported with file and line.
//! **Write-audit-publish:** a model's new rows are computed, its tests run against exactly those
//! rows, and only then are they committed (one Delta commit); a failing test leaves the previous
//! version visible, prints sample offending rows, and skips every model downstream. Custom tests
//! are files in `sql/tests/`: a query that must return no rows. A table model whose inputs, file
//! and cut-off are as at the build that published it keeps its rows, and only its tests run
//! (`fingerprint.rs`).

mod added;
mod append;
mod audit;
pub mod build;
mod changes;
pub mod dag;
pub mod docs;
pub mod evaluate;
mod fingerprint;
mod incremental;
mod job;
mod lap;
mod last_rows;
mod logged;
mod new_rows;
mod plan;
mod proven;
pub mod seeds;
mod select;
mod session;
pub mod spec;
mod state_keys;
mod step;

pub use build::{BuildOptions, BuildReport, build};
pub use evaluate::evaluate;
pub use job::ModelOutcome;
pub use spec::{DataTest, Materialized, Model, discover};

use std::path::PathBuf;

/// Errors of the model runner. Each names the file (and line where known).
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A model file cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A header line or the SQL is not valid.
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The models folder does not exist: a project without it is an error, never "0 models".
    #[error(
        "no models folder at {}: run from the project's folder, pass --config \
         <project>/macrolake.toml, or set [models] dir (nothing was built)",
        dir.display()
    )]
    MissingDir {
        /// The folder looked for.
        dir: PathBuf,
    },
    /// Models reference each other in a cycle.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The models in the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
}
