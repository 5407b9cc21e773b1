//! A MERGE known to change nothing without reading the table: the same rows as the last landing
//! into a table nothing has written to since.
//!
//! Most nights most sources receive what they received the night before (a weekly FRED series,
//! the FOMC calendar, the reference rates of a day already landed). Their MERGE then reads the
//! table's log and the stored rows of the incoming keys, compares, and commits nothing: 30–70 ms
//! of CPU each, eight sources side by side with the one that does have new rows (the prices).
//! After each MERGE the lake writes, beside the table's log, the digest of what it merged (the
//! table, the keys, the ignored columns and every compared column's data, in Arrow IPC form) and
//! the version it left the table at, with that version's commit file's identity (e-tag, else
//! modification time). A MERGE whose digest equals the recorded one, into a table still at that
//! version from that very commit, would find every row equal: it returns "unchanged" after
//! listing the log's tail and reading two small objects. Anything else (a new commit, a table
//! deleted and made again, a missing or unreadable record, other rows) runs the MERGE.

use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::arrow::record_batch::RecordBatch;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use serde::{Deserialize, Serialize};

use super::{Lake, LakeError, Result, TableName};

/// The record's file name in the table's folder (a name starting with `_`: Delta's readers and
/// VACUUM leave it alone, as they do `_delta_log`).
const FILE: &str = "_macrolake_landed.json";

/// The file of the second kind of record: the digest of what a source read to make its rows
/// ([`Lake::inputs_unchanged`]).
const INPUTS_FILE: &str = "_macrolake_inputs.json";

/// What the last MERGE into a table merged, and the version it left the table at.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Record {
    /// The table's version after that MERGE.
    version: u64,
    /// The identity of that version's commit file (e-tag, else modification time).
    commit: String,
    /// The digest of the MERGE's input ([`digest`]).
    digest: String,
}

/// The digest of a MERGE into `table` on `keys` of `batches`, leaving out the `ignore` columns.
pub(super) fn digest(
    table: &TableName,
    keys: &[String],
    ignore: &[String],
    batches: &[RecordBatch],
) -> Result<String> {
    let data_err = |e: &dyn std::fmt::Display| LakeError::Data {
        table: table.clone(),
        message: format!("digest of the rows to merge: {e}"),
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(format!("{table}\n{keys:?}\n{ignore:?}\n").as_bytes());
    for batch in batches {
        let compared: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| !ignore.contains(batch.schema().field(i).name()))
            .collect();
        let batch = batch.project(&compared).map_err(|e| data_err(&e))?;
        let mut writer =
            StreamWriter::try_new(Vec::new(), &batch.schema()).map_err(|e| data_err(&e))?;
        writer.write(&batch).map_err(|e| data_err(&e))?;
        let bytes = writer.into_inner().map_err(|e| data_err(&e))?;
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

fn record_path(lake: &Lake, table: &TableName, file: &str) -> Path {
    lake.path(&format!("{}/{}/{file}", table.zone.as_str(), table.name))
}

/// The identity of the commit file of `version`, when it can be read.
async fn commit_identity(lake: &Lake, table: &TableName, version: u64) -> Option<String> {
    let log = lake.path(&format!(
        "{}/{}/_delta_log/{version:020}.json",
        table.zone.as_str(),
        table.name
    ));
    let meta = lake.store().head(&log).await.ok()?;
    Some(match meta.e_tag {
        Some(tag) => format!("etag:{tag}"),
        None => format!("modified:{}:{}", meta.last_modified.to_rfc3339(), meta.size),
    })
}

/// The table's version when its last MERGE merged exactly `digest` and nothing was committed
/// since; `None` otherwise (the MERGE must run).
pub(super) async fn unchanged(lake: &Lake, table: &TableName, digest: &str) -> Option<u64> {
    unchanged_in(lake, table, FILE, digest).await
}

async fn unchanged_in(lake: &Lake, table: &TableName, file: &str, digest: &str) -> Option<u64> {
    let body = lake
        .store()
        .get(&record_path(lake, table, file))
        .await
        .ok()?;
    let record: Record = serde_json::from_slice(&body.bytes().await.ok()?).ok()?;
    if record.digest != digest {
        return None;
    }
    let latest = lake
        .latest_version(table, Some(record.version))
        .await
        .ok()??;
    if latest != record.version {
        return None;
    }
    let commit = commit_identity(lake, table, latest).await?;
    (commit == record.commit).then_some(latest)
}

/// Records that a MERGE of `digest` left `table` at `version`. A failure to record only costs the
/// next identical MERGE its shortcut, so it is logged, not returned.
pub(super) async fn record(lake: &Lake, table: &TableName, version: Option<u64>, digest: String) {
    record_in(lake, table, FILE, version, digest).await
}

async fn record_in(
    lake: &Lake,
    table: &TableName,
    file: &str,
    version: Option<u64>,
    digest: String,
) {
    let path = record_path(lake, table, file);
    let Some(version) = version else {
        return;
    };
    let Some(commit) = commit_identity(lake, table, version).await else {
        return;
    };
    let record = Record {
        version,
        commit,
        digest,
    };
    let body = serde_json::to_vec(&record).expect("a record serializes");
    if let Err(error) = lake.store().put(&path, body.into()).await {
        tracing::warn!(table = %table, %error, "could not record the landing's digest (the next identical landing will compare its rows)");
    }
}

impl Lake {
    /// The table's version when a source's last landing into it read exactly the inputs of
    /// `digest` ([`Lake::record_inputs`]) and nothing was committed to it since; `None`
    /// otherwise. Parsing those inputs again would make the rows the table already holds: a
    /// source that reads files it must parse at a cost (the EPS workbooks) checks this first.
    /// The digest must cover everything the rows depend on: the inputs' bytes, the settings,
    /// and the program that parses them.
    pub async fn inputs_unchanged(&self, table: &TableName, digest: &str) -> Option<u64> {
        unchanged_in(self, table, INPUTS_FILE, digest).await
    }

    /// Records that a landing of the inputs of `digest` left `table` at `version` (after its
    /// write, committed or not). A failure to record only costs the next landing of the same
    /// inputs its shortcut: it is logged, not returned.
    pub async fn record_inputs(&self, table: &TableName, version: Option<u64>, digest: String) {
        record_in(self, table, INPUTS_FILE, version, digest).await
    }
}
