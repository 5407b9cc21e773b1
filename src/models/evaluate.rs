//! Models computed in memory, without publishing: the marts "as known on" a past day. Every
//! staging table is cut to the rows public by that day's cut-off (`available_at`), then each model
//! runs in DAG order over the ones before it. `macrolake sql --known-on DAY` queries the result;
//! the point-in-time test compares its rows with the published marts.

use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;

use super::build::readable;
use super::plan::planning_error;
use super::select::whole_order;
use super::session::{collect, register};
use super::spec::Materialized;
use super::{ModelError, discover};
use crate::lake::{Lake, ViewDef};

/// A session where `staging.*` is as known on `known_on` (every row when `None`) and every model
/// under `sql_dir` is computed from it in memory (nothing is written).
pub async fn evaluate(
    lake: &Lake,
    views: &[ViewDef],
    sql_dir: &Path,
    known_on: Option<NaiveDate>,
) -> Result<SessionContext, ModelError> {
    let (models, _) = discover(sql_dir)?;
    let session = lake.session_known_on(None, views, known_on).await?;
    let existing = readable(&session, views, sql_dir).await?;
    let ctx = session.ctx;
    for (i, _) in whole_order(&models, &existing)? {
        let m = &models[i];
        let plan = ctx.sql(&m.sql).await.map_err(|e| planning_error(m, &e))?;
        let provider: Arc<dyn datafusion::catalog::TableProvider> =
            if m.materialized == Materialized::View {
                plan.into_view()
            } else {
                let rows = collect(&ctx, &m.sql)
                    .await
                    .map_err(|e| planning_error(m, &e))?;
                let schema = match rows.first() {
                    Some(b) => b.schema(),
                    None => plan.schema().inner().clone(),
                };
                Arc::new(MemTable::try_new(schema, vec![rows]).map_err(|e| planning_error(m, &e))?)
            };
        register(&ctx, &m.name, provider).map_err(|e| planning_error(m, &e))?;
    }
    Ok(ctx)
}
