//! Seeds: reference data committed with the models as `sql/seeds/<name>.csv` (header row,
//! types inferred), readable in SQL as `seeds.<name>` — like dbt seeds.

use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::prelude::{CsvReadOptions, SessionContext};

use super::ModelError;
use crate::lake::TableName;

/// Registers every seed under `sql_dir/seeds/` in the session's `seeds` schema and returns
/// their names.
pub async fn register_seeds(
    ctx: &SessionContext,
    sql_dir: &Path,
) -> Result<Vec<TableName>, ModelError> {
    let dir = sql_dir.join("seeds");
    let mut names = Vec::new();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(names);
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Ok(names);
    }
    let catalog = ctx.catalog("datafusion").expect("default catalog");
    if catalog.schema("seeds").is_none() {
        let _ = catalog.register_schema("seeds", Arc::new(MemorySchemaProvider::new()));
    }
    for path in files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let invalid = |message: String| ModelError::Invalid {
            path: path.clone(),
            line: 1,
            message,
        };
        let df = ctx
            .read_csv(
                path.to_string_lossy().as_ref(),
                CsvReadOptions::new().has_header(true),
            )
            .await
            .map_err(|e| invalid(e.to_string()))?;
        let batches = df.collect().await.map_err(|e| invalid(e.to_string()))?;
        let schema = batches
            .first()
            .map(|b| b.schema())
            .ok_or_else(|| invalid("seed has no rows".into()))?;
        let table = datafusion::catalog::MemTable::try_new(schema, vec![batches])
            .map_err(|e| invalid(e.to_string()))?;
        ctx.register_table(format!("seeds.{name}"), Arc::new(table))
            .map_err(|e| invalid(e.to_string()))?;
        names.push(TableName {
            zone: crate::lake::Zone::Seeds,
            name,
        });
    }
    Ok(names)
}
