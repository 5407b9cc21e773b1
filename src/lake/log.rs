//! What a table's Delta log says happened between two versions, read commit by commit: the log's
//! tail, not a snapshot.

use super::{Lake, TableName};

/// At most this many commits are read to answer [`Lake::only_added_between`]; further apart,
/// the answer is "not known" (the caller then does the work the answer would have spared it).
pub const MAX_COMMITS: u64 = 64;

impl Lake {
    /// Whether every row of `table` at version `since` is still there at version `now`: no
    /// commit in between removed a data file that carried rows (a `remove` action with
    /// `dataChange`; the removes of a compaction carry none, its rows are rewritten as they
    /// were). Appends, and MERGEs that only inserted (`crate::lake::merge` commits those as
    /// appends), keep every row; an overwrite, a replace-where, a DELETE or a MERGE that updated
    /// rows does not.
    ///
    /// `false` also when the answer is not known: `now` before `since`, more than
    /// [`MAX_COMMITS`] commits apart, or a commit that is no longer in the log or cannot be read
    /// or parsed.
    pub async fn only_added_between(&self, table: &TableName, since: u64, now: u64) -> bool {
        if now < since || now - since > MAX_COMMITS {
            return false;
        }
        let Some(delta) = self.builder(table).ok().and_then(|b| b.build().ok()) else {
            return false;
        };
        let log = delta.log_store();
        for version in since + 1..=now {
            let kept = match log.read_commit_entry(version).await {
                Ok(Some(bytes)) => keeps_every_row(&bytes),
                Ok(None) | Err(_) => false,
            };
            if !kept {
                tracing::debug!(%table, version, "a commit may have removed rows");
                return false;
            }
        }
        true
    }
}

/// Whether a commit's actions (one JSON object per line) remove no row: no `remove` action with
/// `dataChange` true (or absent). `false` for a line that is not JSON.
fn keeps_every_row(commit: &[u8]) -> bool {
    commit
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
        .all(|line| {
            let Ok(action) = serde_json::from_slice::<serde_json::Value>(line) else {
                return false;
            };
            match action.get("remove") {
                None => true,
                Some(remove) => remove.get("dataChange") == Some(&serde_json::Value::Bool(false)),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_keeps_its_rows_unless_it_removes_a_file_with_data() {
        let add = r#"{"add":{"path":"a.parquet","size":1,"dataChange":true}}"#;
        let info = r#"{"commitInfo":{"operation":"WRITE"}}"#;
        assert!(keeps_every_row(format!("{info}\n{add}\n").as_bytes()));
        let compaction = r#"{"remove":{"path":"b.parquet","dataChange":false}}"#;
        assert!(keeps_every_row(format!("{compaction}\n{add}").as_bytes()));
        let removes = r#"{"remove":{"path":"b.parquet","dataChange":true}}"#;
        assert!(!keeps_every_row(
            format!("{info}\n{removes}\n{add}").as_bytes()
        ));
        let unstated = r#"{"remove":{"path":"b.parquet"}}"#;
        assert!(!keeps_every_row(unstated.as_bytes()));
        assert!(!keeps_every_row(b"{\"add\":"), "not JSON: not known");
    }
}
