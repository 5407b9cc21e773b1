//! The stored last row of each partition of an incremental model with an append query, kept
//! beside it in `meta.<model>_last_rows` so that a nightly append reads a row per partition, not
//! the partition's history.
//!
//! An append (`super::append`) needs, per partition, its last stored value of the order column
//! and that row itself (e.g. the running high it continues). Read from the model, both cost a
//! scan of the whole table: it is stored in (partition, order) order, so a filter on the newest
//! days cannot skip the pages that also hold older days (8.23M of 13.15M rows read to find 2,000
//! on the bench's full-scale lake). Each build that publishes a version of the model therefore
//! also writes the last rows of that version to the side table, and records in
//! `meta.model_state` which versions of the two go together (`proven last rows in version 3 of
//! meta.asset_daily_last_rows` → `version 42`, a proof in the sense of [`super::proven`]: kept
//! while the model stays at that version). The next build takes them only when both tables are
//! still at those versions; at any other (a write to either outside the build, an `optimize`, a
//! crash between the two writes) it reads them from the model, as before, and the side table is
//! rewritten at its next publish. The side table is a cache: the results are the
//! same either way (`tests/it/incremental.rs` compares appends with full refreshes).

use std::collections::HashMap;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;

use super::session::bind;
use super::spec::Model;
use super::state_keys::version_print;
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, WriteMode};

/// The start of the state entry naming the side table's version (the rest of the key) and the
/// model's version it describes (the value).
const ENTRY: &str = "proven last rows in version ";

/// The state entry: key and value.
fn entry(m: &Model, side_version: u64, version: u64) -> (String, String) {
    let key = format!("{ENTRY}{side_version} of {}", table(m));
    (key, version_print(version))
}

/// The side table's version that `state` records as holding the last rows of `version`.
fn recorded(m: &Model, state: &ModelState, version: u64) -> Option<u64> {
    let of = format!(" of {}", table(m));
    state.inputs.iter().find_map(|(k, v)| {
        let side = k.strip_prefix(ENTRY)?.strip_suffix(&of)?;
        (*v == version_print(version)).then(|| side.parse().ok())?
    })
}

/// The side table of `m`: `meta.<model>_last_rows`.
pub(super) fn table(m: &Model) -> TableName {
    TableName::meta(&format!("{}_last_rows", m.name.name))
}

fn quoted(cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The query keeping, of the rows of `from`, those holding their partition's greatest order
/// value (every such row: a NULL partition value is a partition too; a partition whose order
/// values are all NULL keeps them all).
fn newest_sql(m: &Model, order: &str, from: &str, columns: &str) -> String {
    format!(
        "SELECT {columns} FROM (SELECT *, max(\"{order}\") OVER (PARTITION BY {}) AS __newest FROM {from}) \
         WHERE \"{order}\" = __newest OR __newest IS NULL",
        quoted(&m.partition_by)
    )
}

/// The last rows of every partition of a model, and where they were read.
pub(super) struct LastRows {
    /// The rows, with every column of the model.
    pub rows: Vec<RecordBatch>,
    /// Read from the side table (else from the model).
    pub from_side_table: bool,
}

/// The last rows of every partition of `m` as stored now: from the side table when `state`
/// records that it describes the table's current `version`, else from the model itself.
pub(super) async fn read(
    lake: &Lake,
    m: &Model,
    order: &str,
    state: &ModelState,
    version: Option<u64>,
) -> Result<LastRows, String> {
    let err = |e: crate::lake::LakeError| e.to_string();
    let side = version.and_then(|v| recorded(m, state, v));
    if side.is_some() && side == lake.version(&table(m)).await.map_err(err)? {
        tracing::debug!(model = %m.name, table = %table(m), "last rows read from the side table");
        let rows = lake
            .query_table(&table(m), "SELECT * FROM t", Vec::new())
            .await
            .map_err(err)?;
        return Ok(LastRows {
            rows,
            from_side_table: true,
        });
    }
    tracing::debug!(model = %m.name, "last rows read from the model (its side table describes another version)");
    let rows = from_model(lake, m, order).await?;
    Ok(LastRows {
        rows,
        from_side_table: false,
    })
}

/// The last rows of every partition, read from the model as stored now.
async fn from_model(lake: &Lake, m: &Model, order: &str) -> Result<Vec<RecordBatch>, String> {
    // Only the rows from the earliest partition's last value on can be any partition's last:
    // with every partition current, a few days of rows. A partition that ended long ago (a
    // delisted symbol) widens that to most of the table; the window's sort then spills past
    // `[lake] memory_limit_mb` (`Lake::query_table`) rather than growing.
    let sql = newest_sql(
        m,
        order,
        &format!(
            "t WHERE \"{order}\" >= (SELECT min(l) FROM (SELECT max(\"{order}\") AS l FROM t GROUP BY {}))",
            quoted(&m.partition_by)
        ),
        "*",
    );
    let rows = lake
        .query_table(&m.name, &sql, Vec::new())
        .await
        .map_err(|e| e.to_string())?;
    // Without the helper column.
    rows.into_iter()
        .map(|b| {
            let keep: Vec<usize> = (0..b.num_columns() - 1).collect();
            b.project(&keep).map_err(|e| e.to_string())
        })
        .collect()
}

/// The last rows once `rows` (with `schema`, the model's columns) are published in place of
/// the partitions matching `replaced`: `before`'s rows outside those partitions and the new rows,
/// the newest of each partition. Runs in the build's session `ctx` (within its memory limit: a
/// night that recomputes every partition has the whole table as new rows).
pub(super) async fn after(
    ctx: &SessionContext,
    m: &Model,
    order: &str,
    (before, replaced): (Vec<RecordBatch>, Option<&str>),
    schema: &SchemaRef,
    rows: &[RecordBatch],
) -> Result<Vec<RecordBatch>, String> {
    let err =
        |e: datafusion::error::DataFusionError| format!("{}: last rows: {e}", m.path.display());
    let before_schema = before
        .first()
        .map(RecordBatch::schema)
        .unwrap_or_else(|| schema.clone());
    let tables = [
        ("__last_rows_before", before_schema, before),
        ("__last_rows_new", schema.clone(), rows.to_vec()),
    ];
    for (name, schema, batches) in tables {
        bind(ctx, name, schema, batches).map_err(err)?;
    }
    let out = newest(ctx, m, order, replaced, schema).await;
    for name in ["__last_rows_before", "__last_rows_new"] {
        ctx.deregister_table(name).map_err(err)?;
    }
    out.map_err(err)
}

async fn newest(
    ctx: &SessionContext,
    m: &Model,
    order: &str,
    replaced: Option<&str>,
    schema: &SchemaRef,
) -> Result<Vec<RecordBatch>, datafusion::error::DataFusionError> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| format!("\"{}\"", f.name()))
        .collect::<Vec<_>>()
        .join(", ");
    let kept = match replaced {
        Some(p) => format!("WHERE ({p}) IS NOT TRUE"),
        None => String::new(),
    };
    let union = format!(
        "(SELECT {columns} FROM __last_rows_before {kept} \
         UNION ALL SELECT {columns} FROM __last_rows_new) AS rows"
    );
    ctx.sql(&newest_sql(m, order, &union, &columns))
        .await?
        .collect()
        .await
}

/// After a full build published `version` of `m`: its side table rewritten from it, and the
/// state entry to record (none for a model without an append query, or when that failed: a
/// warning says why).
pub(super) async fn rewrite(
    lake: &Lake,
    m: &Model,
    version: Option<u64>,
) -> HashMap<String, String> {
    let Some(a) = &m.append else {
        return HashMap::new();
    };
    match from_model(lake, m, &a.order_by).await {
        Ok(rows) => save(lake, m, rows, version).await,
        Err(e) => {
            tracing::warn!(model = %m.name, error = %e,
                "could not read the last rows of each partition; the next build reads them from the model");
            HashMap::new()
        }
    }
}

/// Writes `rows` as `m`'s side table, describing `version` of the model: the state entry to
/// record, or none when the write failed (the next build then reads the model; a warning says
/// why).
pub(super) async fn save(
    lake: &Lake,
    m: &Model,
    rows: Vec<RecordBatch>,
    version: Option<u64>,
) -> HashMap<String, String> {
    let Some(version) = version.filter(|_| rows.iter().any(|b| b.num_rows() > 0)) else {
        return HashMap::new();
    };
    match lake.write(&table(m), rows, WriteMode::Overwrite).await {
        Ok(written) => written
            .version
            .map(|side| entry(m, side, version))
            .into_iter()
            .collect(),
        Err(e) => {
            tracing::warn!(model = %m.name, table = %table(m), error = %e,
                "could not write the last rows of each partition; the next build reads them from the model");
            HashMap::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Date32Array, Float64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn model() -> Model {
        let name = TableName::marts("m");
        let mut m = Model::parse(name, std::path::Path::new("m.sql"), "SELECT 1 AS a").unwrap();
        m.partition_by = vec!["symbol".into()];
        m
    }

    fn rows(schema: &SchemaRef, r: &[(Option<&str>, Option<i32>, f64)]) -> RecordBatch {
        let symbols: StringArray = r.iter().map(|x| x.0).collect();
        let dates: Date32Array = r.iter().map(|x| x.1).collect();
        let closes: Float64Array = r.iter().map(|x| Some(x.2)).collect();
        RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(symbols), Arc::new(dates), Arc::new(closes)],
        )
        .unwrap()
    }

    fn text(batches: &[RecordBatch]) -> Vec<String> {
        let mut lines: Vec<String> = crate::query::render_rows(batches)
            .into_iter()
            .map(|r| r.join(","))
            .collect();
        lines.sort();
        lines
    }

    #[tokio::test]
    async fn the_last_rows_after_a_publish_are_the_newest_of_each_partition() {
        let m = model();
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("symbol", DataType::Utf8, true),
            Field::new("date", DataType::Date32, true),
            Field::new("close", DataType::Float64, false),
        ]));
        let before = rows(
            &schema,
            &[
                (Some("A"), Some(10), 1.0),
                (Some("B"), Some(10), 2.0),
                (Some("C"), Some(9), 3.0),
                (Some("D"), Some(10), 4.0),
                (None, Some(8), 5.0),
                (Some("E"), None, 6.0),
            ],
        );
        // A is extended by two days; B is recomputed and now ends earlier (its last day was
        // withdrawn); D disappeared (recomputed, no rows); C, the NULL symbol and E (NULL date)
        // are untouched.
        let new = rows(
            &schema,
            &[
                (Some("A"), Some(11), 1.1),
                (Some("A"), Some(12), 1.2),
                (Some("B"), Some(8), 2.8),
                (Some("B"), Some(9), 2.9),
            ],
        );
        let replaced = "\"symbol\" IN ('B', 'D')";
        let ctx = SessionContext::new();
        let replacing = (vec![before], Some(replaced));
        let got = after(&ctx, &m, "date", replacing, &schema, &[new])
            .await
            .unwrap();
        assert_eq!(
            text(&got),
            [
                ",1970-01-09,5.0",
                "A,1970-01-13,1.2",
                "B,1970-01-10,2.9",
                "C,1970-01-10,3.0",
                "E,,6.0"
            ]
        );
    }

    #[test]
    fn the_side_table_is_trusted_only_for_the_recorded_pair_of_versions() {
        let m = model();
        let (key, value) = entry(&m, 3, 42);
        assert_eq!(key, "proven last rows in version 3 of meta.m_last_rows");
        assert!(
            super::super::state_keys::is_proof(&key),
            "kept and ignored like a proof"
        );
        let state = ModelState {
            built_at: None,
            inputs: HashMap::from([(key, value)]),
        };
        assert_eq!(recorded(&m, &state, 42), Some(3));
        assert_eq!(recorded(&m, &state, 43), None, "the model moved on");
        let mut other = model();
        other.name = TableName::marts("n");
        assert_eq!(recorded(&other, &state, 42), None, "another model's table");
    }
}
