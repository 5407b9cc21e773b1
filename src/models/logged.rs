//! Marts an incremental model reads by partition, followed through their Delta logs.
//!
//! A staging input tells its new rows by `ingested_at`; a mart has no such column. When an
//! incremental model's partition columns are all in a mart it reads (`marts.asset_roles_daily`,
//! partitioned by `role`, reads `marts.asset_daily`, which carries each symbol's `role`), the
//! rows that mart gained since the model's last build are those of the data files its commits
//! added since the version that build read ([`Lake::added_between`]), as long as no commit
//! removed a row. The build records the version it read (`read marts.asset_daily at` →
//! `version 42`); the next build lists the partitions in the added files and recomputes only
//! those. A commit that removed rows (the mart recomputed a partition, or was rebuilt), a
//! version not recorded, or a log too far behind makes the build a full one, so the result is
//! always that of a full refresh. A compaction adds no new rows and changes nothing.
//!
//! The mart's rows must map to the model's partitions by their own partition columns: a row of
//! `marts.asset_daily` belongs to the role in its `role` column, which is why a symbol stands
//! for one role (`asset_roles_daily`'s header tests it).

use std::collections::HashMap;

use super::spec::Model;
use super::state_keys::version_print;
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, Zone};

/// A mart input followed by its log, with the version this build reads.
pub(super) type Logged = (TableName, u64);

/// The state key of the version of `input` a build read.
fn key(input: &TableName) -> String {
    format!("read {input} at")
}

/// Whether `input`, whose columns `has` tells, is followed by its log for `m`: a mart with all
/// of `m`'s partition columns.
pub(super) fn follows(m: &Model, input: &TableName, has: impl Fn(&str) -> bool) -> bool {
    input.zone == Zone::Marts && !m.partition_by.is_empty() && m.partition_by.iter().all(|c| has(c))
}

/// The version of each of `inputs` now: the one this build reads (a model's inputs are built
/// before it starts, and nothing writes them while it runs).
pub(super) async fn versions(lake: &Lake, inputs: &[TableName]) -> Result<Vec<Logged>, String> {
    let mut out = Vec::new();
    for input in inputs {
        let version = lake
            .version(input)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{input} has no version"))?;
        out.push((input.clone(), version));
    }
    Ok(out)
}

/// The state entries recording the versions read.
pub(super) fn entries(logged: &[Logged]) -> HashMap<String, String> {
    logged
        .iter()
        .map(|(input, v)| (key(input), version_print(*v)))
        .collect()
}

/// The URLs of the data files each logged input gained since the version `previous` recorded
/// (readable by the build's session, which has every table's store);
/// `None` when that is not known for one of them (no version recorded, rows removed since, the
/// log too far behind): the build is then a full one.
pub(super) async fn added_since(
    lake: &Lake,
    previous: &ModelState,
    logged: &[Logged],
) -> Option<Vec<(TableName, Vec<String>)>> {
    let mut out = Vec::new();
    for (input, now) in logged {
        let since = previous.inputs.get(&key(input)).and_then(|v| {
            v.strip_prefix("version ")
                .and_then(|n| n.parse::<u64>().ok())
        });
        let Some(since) = since else {
            tracing::info!(%input, "full build: no version of the input recorded by the last build");
            return None;
        };
        let Some(urls) = lake.added_between(input, since, *now).await else {
            tracing::info!(%input, since, now, "full build: the input may have lost rows since the last build");
            return None;
        };
        out.push((input.clone(), urls));
    }
    Some(out)
}
