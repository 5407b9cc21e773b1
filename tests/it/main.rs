//! Integration tests: one binary (every extra test binary re-links the DataFusion stack).

mod atomic;
mod cli;
mod common;
mod eps;
mod faults;
mod secrets;
mod vintages;
