//! A Delta table provider that keeps `LIMIT` when it reads no column.
//!
//! deltalake 1.1 answers a scan that reads no column (`SELECT 1 FROM t LIMIT 1`, `SELECT
//! 'label' … LIMIT 5`, the existence probes BI tools send) from the Delta log alone, and that
//! path drops the limit DataFusion pushed into it: every row of the table comes back. This
//! wrapper puts the limit back on top of such a scan; every other call goes to the Delta
//! provider unchanged.

use std::borrow::Cow;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, Statistics};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::{Expr, LogicalPlan, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

/// `inner` with its limit kept.
#[derive(Debug)]
pub struct KeepLimit(pub Arc<dyn TableProvider>);

#[async_trait]
impl TableProvider for KeepLimit {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.0.constraints()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    fn get_table_definition(&self) -> Option<&str> {
        self.0.get_table_definition()
    }

    fn get_logical_plan(&'_ self) -> Option<Cow<'_, LogicalPlan>> {
        self.0.get_logical_plan()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Only the metadata-only scan (no column read) loses the limit: read the narrowest
        // column instead (a data scan honours the limit per file) and project it away.
        let reads_nothing = projection.is_some_and(|p| p.is_empty());
        if limit.is_none() || !reads_nothing || self.0.schema().fields().is_empty() {
            return self.0.scan(state, projection, filters, limit).await;
        }
        let narrowest = (0..self.0.schema().fields().len())
            .min_by_key(|i| {
                self.0
                    .schema()
                    .field(*i)
                    .data_type()
                    .primitive_width()
                    .unwrap_or(64)
            })
            .unwrap_or(0);
        let plan = self
            .0
            .scan(state, Some(&vec![narrowest]), filters, limit)
            .await?;
        let none: Vec<ProjectionExpr> = Vec::new();
        Ok(Arc::new(ProjectionExec::try_new(none, plan)?))
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        self.0.supports_filters_pushdown(filters)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.0.statistics()
    }

    async fn insert_into(
        &self,
        state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.insert_into(state, input, insert_op).await
    }
}
