//! # macrolake
//!
//! A macro-liquidity data pipeline: connectors pull Federal Reserve balance-sheet data, rates
//! and prices through one HTTP engine ([`http`]) into Delta tables on any object store
//! ([`lake`]); SQL runs over them with DataFusion ([`query`]).
//!
//! * [`config`] — `macrolake.toml`.
//! * [`http`] — the HTTP engine: retries, backoff, `Retry-After`, per-host limits, record/replay,
//!   secret redaction.
//! * [`lake`] — the store factory, atomic Delta writes (append, overwrite, MERGE), the query
//!   session, raw landing zone, run history and watermarks, and when each staged value became
//!   public ([`lake::availability`]: `available_at` and the daily cut-off, `known_on`).
//! * [`sources`] — connectors, each a small [`sources::Source`] over the HTTP engine.
//! * [`models`] — SQL models: discovery, DAG, write-audit-publish builds and data tests.
//! * [`schedule`] — job files (`schedules/*.toml`), cron + time zone, `macrolake run`.
//! * [`export`] — lake tables to Parquet/CSV files (local folder or object store), atomically.
//! * [`chart`] — net liquidity vs bitcoin vs Russell 2000 as a PNG or SVG.
//! * [`serve`] — the lake over the PostgreSQL wire protocol; [`web`] — the status page.
//! * [`memory`] — when freed memory goes back to the system (mimalloc's purge delay per workload).
//! * [`bench`] — `macrolake bench` against DuckDB and PostgreSQL.
//! * [`app`] — the application context and its commands' logic; [`cli`] — the arguments and
//!   the dispatch of each command, on top of everything else.

pub mod app;
pub mod bench;
pub mod chart;
pub mod cli;
pub mod config;
pub mod export;
pub mod http;
pub mod lake;
pub mod memory;
pub mod models;
mod parallel;
pub mod query;
pub mod schedule;
pub mod serve;
pub mod sources;
pub mod web;
