//! Table maintenance: `optimize` compacts the small files that nightly appends and merges leave
//! into fewer large ones (a new version with the same rows), `vacuum` deletes files no version
//! within the retention period still needs, and files no version ever named once they are older
//! than the retention (what a build staged before a crash, see [`super::Staged`]).
//!
//! Retention is the time-travel guarantee: `--as-of` any time within it keeps working after a
//! vacuum. The default and the minimum without `--allow-short-retention` is 7 days (Delta's
//! default `deletedFileRetentionDuration`); keep it longer than your longest-running reader.

use std::num::NonZeroU64;

use chrono::Duration;

use super::{Lake, LakeError, Result, TableName, Zone};

/// What maintenance did to one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Maintained {
    /// The table.
    pub table: TableName,
    /// Files written (optimize).
    pub files_added: u64,
    /// Files replaced (optimize) or deleted (vacuum).
    pub files_removed: u64,
    /// The table's version afterwards.
    pub version: Option<u64>,
}

/// Default vacuum retention.
pub const DEFAULT_RETENTION_HOURS: u64 = 168;

impl Lake {
    /// Parses `zone.name` (or a bare name found in exactly one zone) into an existing table.
    pub async fn resolve_table(&self, name: &str) -> Result<TableName> {
        let tables = self.tables().await?;
        let found: Vec<&TableName> = tables
            .iter()
            .filter(|t| t.to_string() == name || t.name == name)
            .collect();
        match found.as_slice() {
            [one] => Ok((*one).clone()),
            _ => Err(LakeError::UnknownTable {
                name: name.to_string(),
                known: tables
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The named tables, or every table in the lake when `names` is empty.
    pub async fn resolve_tables(&self, names: &[String]) -> Result<Vec<TableName>> {
        if names.is_empty() {
            return self.tables().await;
        }
        let mut out = Vec::new();
        for n in names {
            out.push(self.resolve_table(n).await?);
        }
        Ok(out)
    }

    /// Compacts a table's files towards `target_mb` each; one commit, same rows.
    pub async fn optimize(&self, table: &TableName, target_mb: u64) -> Result<Maintained> {
        let delta = self.load(table, None).await?;
        let target = NonZeroU64::new(target_mb.max(1) * 1024 * 1024).expect("non-zero");
        let (delta, metrics) = delta
            .optimize()
            .with_target_size(target)
            // Compacted files are like every other file of the lake (delta-rs would write Zstd).
            .with_writer_properties(super::files::writer_properties())
            .await
            .map_err(|source| LakeError::Delta {
                table: table.clone(),
                action: "optimize",
                source: Box::new(source),
            })?;
        Ok(Maintained {
            table: table.clone(),
            files_added: metrics.num_files_added,
            files_removed: metrics.num_files_removed,
            version: delta.version(),
        })
    }

    /// Deletes files unreferenced for longer than `retention_hours` (all of them with `dry_run`
    /// false; lists them otherwise). Below the 7-day default only with `allow_short`.
    pub async fn vacuum(
        &self,
        table: &TableName,
        retention_hours: u64,
        dry_run: bool,
        allow_short: bool,
    ) -> Result<(Maintained, Vec<String>)> {
        if table.zone == Zone::Seeds {
            return Ok((
                Maintained {
                    table: table.clone(),
                    files_added: 0,
                    files_removed: 0,
                    version: None,
                },
                Vec::new(),
            ));
        }
        let delta = self.load(table, None).await?;
        let (delta, metrics) = delta
            .vacuum()
            .with_retention_period(Duration::hours(retention_hours as i64))
            .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
            .with_enforce_retention_duration(!allow_short)
            .with_dry_run(dry_run)
            .await
            .map_err(|source| LakeError::Delta {
                table: table.clone(),
                action: "vacuum",
                source: Box::new(source),
            })?;
        Ok((
            Maintained {
                table: table.clone(),
                files_added: 0,
                files_removed: metrics.files_deleted.len() as u64,
                version: delta.version(),
            },
            metrics.files_deleted,
        ))
    }
}
