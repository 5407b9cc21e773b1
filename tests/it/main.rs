//! Integration tests: one binary (every extra test binary re-links the DataFusion stack).

mod atomic;
mod chart;
mod cli;
mod common;
mod concurrency;
mod connector_faults;
mod daemon;
mod eps;
mod export;
mod fault_matrix;
mod faults;
mod fedwatch;
mod fomc;
mod incremental;
mod jobs;
mod maintain;
mod models;
mod nyfed;
mod point_in_time;
mod prices_history;
mod product;
mod secrets;
mod serve;
mod sources;
mod vintages;
