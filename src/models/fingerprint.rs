//! What a model was built from, as fingerprints that move whenever its result could: per input
//! table its Delta version; per view its plan and the fingerprints of what it reads; per seed a
//! hash of its rows; for the model itself a hash of its files and the lake's daily cut-off (which
//! `known_on` turns into days). A table model whose fingerprints all equal those its last build
//! recorded, and whose own table is still the version that build published, would be rebuilt
//! into the same rows: the build keeps them (dbt's `state:modified`, SQLMesh's "no changes",
//! without a second command) and only runs its tests on them, since a test's verdict can change
//! without its rows (a freshness test, on a later reference date; an edited custom test).

use std::collections::HashMap;

use datafusion::catalog::view::ViewTable;
use datafusion::common::TableReference;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use sha2::{Digest, Sha256};

use super::session::collect;
use super::spec::Model;
use super::state_keys::{is_proof, version_print};
use crate::lake::model_state::ModelState;
use crate::lake::{Lake, TableName, Zone};

/// The key of the model's own files (SQL, append query, custom tests, cut-off).
pub(super) const FILES: &str = "model files";
/// The key of the model's own table version, recorded after it published.
pub(super) const PUBLISHED: &str = "published version";
/// How deep views over views are followed before an input counts as unknowable.
const MAX_VIEW_DEPTH: usize = 8;

/// A hash of everything in the model's files that shapes its rows: its SQL (header included),
/// its append query and the lake's cut-off.
pub(super) fn files(m: &Model, lake: &Lake) -> String {
    let mut hash = Sha256::new();
    hash.update(m.sql.as_bytes());
    if let Some(a) = &m.append {
        hash.update(b"\0append\0");
        hash.update(a.sql.as_bytes());
    }
    let cutoff = lake.cutoff();
    hash.update(format!("\0cutoff\0{} {}", cutoff.time, cutoff.zone).as_bytes());
    format!("sha256 {}", hex::encode(hash.finalize()))
}

/// The fingerprint of one input as the session sees it, `None` when it cannot be known (a view
/// nested deeper than [`MAX_VIEW_DEPTH`]).
pub(super) async fn input(
    lake: &Lake,
    ctx: &SessionContext,
    name: &TableName,
) -> Result<Option<String>, String> {
    print(lake, ctx, name, 0).await
}

/// [`input`] of each of `inputs`, in their order. The inputs are looked at side by side: each
/// reads its table's log tail (a round trip per file on S3), and a model reading ten tables
/// waited for ten reads in a row before its query started.
pub(super) async fn each_input(
    lake: &Lake,
    ctx: &SessionContext,
    inputs: &[TableName],
) -> Result<Vec<Option<String>>, String> {
    futures::future::try_join_all(inputs.iter().map(|name| input(lake, ctx, name))).await
}

fn print<'a>(
    lake: &'a Lake,
    ctx: &'a SessionContext,
    name: &'a TableName,
    depth: usize,
) -> futures::future::BoxFuture<'a, Result<Option<String>, String>> {
    Box::pin(async move {
        if depth > MAX_VIEW_DEPTH {
            return Ok(None);
        }
        if name.zone != Zone::Seeds
            && let Some(v) = lake.version(name).await.map_err(|e| e.to_string())?
        {
            return Ok(Some(version_print(v)));
        }
        let provider = ctx
            .table_provider(name.to_string())
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        if let Some(view) = provider.downcast_ref::<ViewTable>() {
            let plan = view.logical_plan();
            let mut hash = Sha256::new();
            hash.update(plan.display_indent().to_string().as_bytes());
            for read in scanned(plan) {
                let Some(inner) = print(lake, ctx, &read, depth + 1).await? else {
                    return Ok(None);
                };
                hash.update(format!("\0{read}\0{inner}").as_bytes());
            }
            return Ok(Some(format!(
                "view sha256 {}",
                hex::encode(hash.finalize())
            )));
        }
        rows(ctx, name).await.map(Some)
    })
}

/// A hash of every row of a small input that has no version (a seed).
async fn rows(ctx: &SessionContext, name: &TableName) -> Result<String, String> {
    let batches = collect(ctx, &format!("SELECT * FROM {name}"))
        .await
        .map_err(|e| format!("{name}: DataFusion: {e}"))?;
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "sha256 {}",
        hex::encode(Sha256::digest(text.to_string()))
    ))
}

/// The lake tables and seeds a plan scans, subqueries included, in plan order.
fn scanned(plan: &LogicalPlan) -> Vec<TableName> {
    let mut out = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Some(name) = table_name(&scan.table_name)
            && !out.contains(&name)
        {
            out.push(name);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

/// A zone-qualified reference as a lake name (`None` for anything else).
fn table_name(reference: &TableReference) -> Option<TableName> {
    let zone = match reference.schema()? {
        "staging" => Zone::Staging,
        "marts" => Zone::Marts,
        "meta" => Zone::Meta,
        "seeds" => Zone::Seeds,
        _ => return None,
    };
    Some(TableName {
        zone,
        name: reference.table().to_string(),
    })
}

/// Every fingerprint of a model about to build: [`FILES`] and one per input. `None` when an
/// input cannot be fingerprinted.
pub(super) async fn all(
    lake: &Lake,
    ctx: &SessionContext,
    m: &Model,
    inputs: &[TableName],
) -> Result<Option<HashMap<String, String>>, String> {
    let mut prints = HashMap::from([(FILES.to_string(), files(m, lake))]);
    for (name, p) in inputs.iter().zip(each_input(lake, ctx, inputs).await?) {
        let Some(p) = p else {
            return Ok(None);
        };
        prints.insert(name.to_string(), p);
    }
    Ok(Some(prints))
}

/// Whether a table model would be rebuilt into the rows it holds: `now` (from [`all`], plus the
/// table's current version under [`PUBLISHED`]) equals what its last build recorded.
pub(super) fn unchanged(previous: &ModelState, now: &HashMap<String, String>) -> bool {
    let recorded = previous.inputs.iter().filter(|(k, _)| !is_proof(k));
    previous.inputs.contains_key(PUBLISHED)
        && recorded.clone().count() == now.len()
        && recorded.into_iter().all(|(k, v)| now.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;
    use crate::lake::{ViewDef, WriteMode};

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn view(sql: &str) -> ViewDef {
        ViewDef {
            name: TableName::staging("base_view"),
            requires: TableName::marts("base"),
            sql: sql.into(),
            description: "test view",
        }
    }

    /// The fingerprints of the table and of the view over it, in a new session.
    async fn prints(lake: &Lake, view_sql: &str) -> (String, String) {
        let session = lake.session(None, &[view(view_sql)]).await.unwrap();
        let table = input(lake, &session.ctx, &TableName::marts("base"))
            .await
            .unwrap()
            .unwrap();
        let view = input(lake, &session.ctx, &TableName::staging("base_view"))
            .await
            .unwrap()
            .unwrap();
        (table, view)
    }

    #[tokio::test]
    async fn a_view_moves_with_its_sql_and_with_the_table_it_reads() {
        let lake = Lake::open("memory://", false).unwrap();
        let base = TableName::marts("base");
        lake.write(&base, vec![rows(&[1, 2])], WriteMode::Append)
            .await
            .unwrap();
        let sql = "SELECT n FROM marts.base WHERE n > (SELECT min(n) FROM marts.base)";
        let (table, over) = prints(&lake, sql).await;
        assert_eq!(table, "version 0");
        assert!(over.starts_with("view sha256 "), "{over}");
        // The same inputs give the same prints.
        assert_eq!(prints(&lake, sql).await, (table.clone(), over.clone()));
        // Another query over the same table is another view.
        let (_, other) = prints(&lake, "SELECT n FROM marts.base").await;
        assert_ne!(other, over);
        // A new version of the table moves both.
        lake.write(&base, vec![rows(&[3])], WriteMode::Append)
            .await
            .unwrap();
        let (table2, over2) = prints(&lake, sql).await;
        assert_eq!(table2, "version 1");
        assert_ne!(over2, over);
    }

    #[test]
    fn only_a_state_with_its_published_version_can_be_unchanged() {
        let now = HashMap::from([
            (FILES.to_string(), "sha256 a".to_string()),
            ("marts.base".to_string(), "version 3".to_string()),
        ]);
        let mut previous = ModelState {
            built_at: None,
            inputs: now.clone(),
        };
        // An incremental model's state (no published version) never skips a table build.
        assert!(!unchanged(&previous, &now));
        previous.inputs.insert(PUBLISHED.into(), "version 7".into());
        let mut later = now.clone();
        later.insert(PUBLISHED.into(), "version 7".into());
        assert!(unchanged(&previous, &later));
        later.insert(PUBLISHED.into(), "version 8".into());
        assert!(!unchanged(&previous, &later));
        later.insert(PUBLISHED.into(), "version 7".into());
        // The unique keys the build proved are recorded beside the fingerprints, not among them.
        let proof = ("proven unique(date)".to_string(), "version 7".to_string());
        previous.inputs.insert(proof.0.clone(), proof.1.clone());
        assert!(unchanged(&previous, &later));
        later.insert("seeds.x".into(), "sha256 b".into());
        assert!(!unchanged(&previous, &later));
        // Another input in place of one is a change, though the counts agree.
        later.remove("seeds.x");
        later.remove("marts.base");
        later.insert("marts.other".into(), "version 3".into());
        assert!(!unchanged(&previous, &later));
    }
}
