//! What a staging table that has only gained rows proves about a model's stored version.
//!
//! Two verdicts of the build that published a version stay true while an input only gains rows
//! (no commit since removed a file with rows: [`Lake::only_added_between`]):
//! - **present**: every stored partition of an incremental model is still present in its
//!   partitioned input, so the change step need not list the partitions present there, a scan of
//!   every input row's partition columns (13M values at the bench's full scale);
//! - **relationships**: every value the stored rows take from a staging table is still there, so
//!   a `relationships` test need only check what new rows add; `test` need not run it at all
//!   while the table is at that version.
//!
//! The build records each verdict in `meta.model_state` beside the unique-key proofs
//! (`super::proven`), with the version of the input it read, e.g.
//! `proven relationships(symbol, staging.prices_daily.symbol)` →
//! `version 42 with staging.prices_daily at version 41`. A verdict counts only while the model is
//! at the version it names, and only as far as the input's log can be read
//! ([`crate::lake::log::MAX_COMMITS`] commits); otherwise the work runs as it would without it.
//!
//! Only staging tables count: connectors write them, never a build. A mart's registered version
//! is not what a model downstream reads during a build (it reads the rows being published).
//!
//! A third verdict needs no record: in an incremental build every input the build fingerprints
//! (a seed, a table read whole) is as the stored rows' build saw it (a changed one makes a full
//! build), so a test that reads only such inputs beside the model's own row still passes on the
//! stored rows: a `relationships` test to one, a `no_rows_where` whose subqueries read only them
//! ([`unchanged_inputs_hold`]). It then runs over the new rows alone.
//!
//! The log is read by version number: a staging table deleted by hand and landed again from
//! scratch up to the recorded version or past it would look as if it had only gained rows
//! (macrolake itself never deletes a table; a full-refresh ingest MERGEs into it). After such a
//! deletion, run `macrolake build --full-refresh`: it records the verdicts anew.

use std::collections::HashMap;

use super::spec::{DataTest, Model};
use super::state_keys::{PREFIX, on_version, version_print};
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, Zone};

/// The version of each staging table a build's session reads, by name (`staging.prices_daily`).
pub(super) type Versions = HashMap<String, u64>;

/// The staging tables' versions among a session's registered tables.
pub(super) fn versions(tables: &[(TableName, Option<u64>)]) -> Versions {
    tables
        .iter()
        .filter(|(t, _)| t.zone == Zone::Staging)
        .filter_map(|(t, v)| v.map(|v| (t.to_string(), v)))
        .collect()
}

/// The state key of the verdict that the stored partitions are present in `input`.
fn present_key(input: &str) -> String {
    format!("{}present in {input}", PREFIX)
}

/// The state key of a relationships test's verdict (the test's name).
fn relationship_key(test: &DataTest) -> String {
    format!("{}{}", PREFIX, test.name())
}

/// How a verdict's value starts for `version` of the model and `input`; the input's version
/// follows.
fn value_prefix(version: u64, input: &str) -> String {
    format!("{}{input} at version ", on_version(&version_print(version)))
}

/// The verdict under `key` on `version` of the model, with the version of `input` the build
/// read; `None` when the session did not read it.
fn verdict(key: String, input: &str, read: &Versions, version: u64) -> Option<(String, String)> {
    let at = read.get(input)?;
    Some((key, format!("{}{at}", value_prefix(version, input))))
}

/// The staging table a relationships test reads, when it is one.
fn parent(test: &DataTest) -> Option<&str> {
    match test {
        DataTest::Relationships { to_table, .. } if to_table.starts_with("staging.") => {
            Some(to_table)
        }
        _ => None,
    }
}

/// The verdicts of a build that published `version` of `m`: each partitioned input in which
/// every stored partition is present, and each relationships test on a staging table (every
/// test passed, or nothing was published).
pub(super) fn on_publish(
    m: &Model,
    partitioned: &[TableName],
    read: &Versions,
    version: u64,
) -> HashMap<String, String> {
    let relationships = m.tests.iter().filter_map(|(_, t)| {
        let input = parent(t)?;
        verdict(relationship_key(t), input, read, version)
    });
    present(partitioned, read, version)
        .into_iter()
        .chain(relationships)
        .collect()
}

/// The present verdicts alone: what a build that published nothing records anew (its change
/// step listed the partitions present, or knew them from an earlier verdict).
pub(super) fn present(
    partitioned: &[TableName],
    read: &Versions,
    version: u64,
) -> HashMap<String, String> {
    partitioned
        .iter()
        .map(|t| t.to_string())
        .filter_map(|input| verdict(present_key(&input), &input, read, version))
        .collect()
}

/// Whether the verdict `state` records under `key` for `version` of the model, read from
/// `input`, holds now: `input` has only gained rows since.
async fn holds(
    lake: &Lake,
    state: &ModelState,
    key: &str,
    version: u64,
    input: &str,
    read: &Versions,
) -> bool {
    let since = state
        .inputs
        .get(key)
        .and_then(|v| v.strip_prefix(&value_prefix(version, input)))
        .and_then(|v| v.parse::<u64>().ok());
    let (Some(since), Some(now)) = (since, read.get(input)) else {
        return false;
    };
    // Versions holds staging tables only.
    let Some(table) = input.strip_prefix("staging.").map(TableName::staging) else {
        return false;
    };
    lake.only_added_between(&table, since, *now).await
}

/// Whether every stored partition of the model at `version` is still present in each of its
/// partitioned inputs (`false` without any).
pub(super) async fn present_holds(
    lake: &Lake,
    state: &ModelState,
    version: Option<u64>,
    partitioned: &[TableName],
    read: &Versions,
) -> bool {
    let Some(version) = version else {
        return false;
    };
    for input in partitioned.iter().map(|t| t.to_string()) {
        if !holds(lake, state, &present_key(&input), version, &input, read).await {
            return false;
        }
    }
    !partitioned.is_empty()
}

/// The names of `m`'s tests the stored rows still pass because everything they read beside the
/// row itself is among `unchanged`, the inputs an incremental build found as the stored rows'
/// build did (their fingerprints, by table name): a relationships test to such an input, or a
/// `no_rows_where` whose subqueries read only such inputs (not the model itself, nor a name that
/// is no input, such as a CTE: the test may then compare a row with other rows).
pub(super) fn unchanged_inputs_hold(m: &Model, unchanged: &HashMap<String, String>) -> Vec<String> {
    let own = m.name.to_string();
    let is_unchanged = |t: &str| t != own && unchanged.contains_key(t);
    m.tests
        .iter()
        .filter(|(_, t)| match t {
            DataTest::Relationships { to_table, .. } => {
                is_unchanged(&to_table.to_ascii_lowercase())
            }
            DataTest::NoRowsWhere(cond) if t.row_condition().is_none() => {
                super::dag::relations_in_condition(cond)
                    .is_some_and(|r| !r.is_empty() && r.iter().all(|t| is_unchanged(t)))
            }
            _ => false,
        })
        .map(|(_, t)| t.name())
        .collect()
}

/// The names of `m`'s relationships tests that hold on the stored rows of `version`.
pub(super) async fn relationships_holding(
    lake: &Lake,
    m: &Model,
    state: &ModelState,
    version: Option<u64>,
    read: &Versions,
) -> Vec<String> {
    let Some(version) = version else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (_, test) in &m.tests {
        if let Some(input) = parent(test)
            && holds(lake, state, &relationship_key(test), version, input, read).await
        {
            out.push(test.name());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tests_reading_only_unchanged_inputs_beside_the_row_hold_on_the_stored_rows() {
        let sql = "-- materialized: incremental\n-- unique_key: role, date\n-- partition_by: role\n\
            -- test: relationships(symbol, seeds.roles.symbol)\n\
            -- test: relationships(symbol, staging.prices_daily.symbol)\n\
            -- test: no_rows_where(EXISTS (SELECT 1 FROM seeds.roles GROUP BY symbol HAVING count(*) > 1))\n\
            -- test: no_rows_where(close > (SELECT max(close) FROM marts.m))\n\
            -- test: no_rows_where(close > (WITH t AS (SELECT 1 AS x) SELECT max(x) FROM t))\n\
            -- test: no_rows_where(close < 0)\n\
            SELECT r.role, p.symbol, p.date, p.close FROM staging.prices_daily p JOIN seeds.roles r ON r.symbol = p.symbol\n";
        let m = Model::parse(TableName::marts("m"), std::path::Path::new("m.sql"), sql).unwrap();
        let unchanged = HashMap::from([
            ("seeds.roles".to_string(), "sha256 a".to_string()),
            ("marts.m".to_string(), "version 3".to_string()),
        ]);
        assert_eq!(
            unchanged_inputs_hold(&m, &unchanged),
            [
                "relationships(symbol, seeds.roles.symbol)",
                "no_rows_where(EXISTS (SELECT 1 FROM seeds.roles GROUP BY symbol HAVING count(*) > 1))",
            ],
            "not: a table not among the unchanged inputs, the model's own rows, a CTE, a plain row condition"
        );
        assert!(unchanged_inputs_hold(&m, &HashMap::new()).is_empty());
    }
}
