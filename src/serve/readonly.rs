//! The second wall: every statement the guard let through is planned here and its plan checked
//! with DataFusion's own [`SQLOptions`] — no DDL (`CREATE`, `DROP`, `COPY TO`, external tables),
//! no DML (`INSERT`, `UPDATE`, `DELETE`), no engine statements (`SET` of DataFusion settings,
//! `PREPARE`/`EXECUTE`) — before it runs. The guard reads the SQL; this reads the plan
//! DataFusion would execute, so a statement one parser misjudges is still caught by the other.
//!
//! The hook comes last in the server's list (after settings, `SHOW`, transactions and cursors)
//! and runs the query itself, so the statement is planned once.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::ParamValues;
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;
use datafusion_postgres::QueryHook;
use datafusion_postgres::arrow_pg::datatypes::df::encode_dataframe;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire;
use pgwire::api::ClientInfo;
use pgwire::api::portal::Format;
use pgwire::api::results::Response;
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::types::format::FormatOptions;

/// What a plan may contain on this server: reads only.
fn options() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Refuses a plan that would write, define or change the engine (42501).
pub fn verify(plan: &LogicalPlan) -> PgWireResult<()> {
    options().verify_plan(plan).map_err(|e| {
        super::pg_error(
            "ERROR",
            "42501",
            format!("permission denied: this server is read-only ({e})"),
        )
    })
}

fn api(e: datafusion::error::DataFusionError) -> PgWireError {
    PgWireError::ApiError(Box::new(e))
}

/// Types untyped `LIMIT $n` / `OFFSET $n` parameters as BIGINT, their only sensible type:
/// drivers such as node-postgres send every parameter untyped, and DataFusion would otherwise
/// read them as text ("Expected LIMIT to be an integer or null, but got Utf8").
fn type_limit_parameters(plan: LogicalPlan) -> datafusion::common::Result<LogicalPlan> {
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::tree_node::Transformed;
    use datafusion::logical_expr::Expr;
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Limit(mut limit) = node else {
            return Ok(Transformed::no(node));
        };
        let mut changed = false;
        for e in [&mut limit.skip, &mut limit.fetch].into_iter().flatten() {
            if let Expr::Placeholder(p) = e.as_mut()
                && p.field.is_none()
            {
                p.field = Some(Arc::new(Field::new(p.id.clone(), DataType::Int64, true)));
                changed = true;
            }
        }
        let node = LogicalPlan::Limit(limit);
        Ok(if changed {
            Transformed::yes(node)
        } else {
            Transformed::no(node)
        })
    })
    .map(|t| t.data)
}

/// Plans `statement` and checks the plan.
async fn plan(statement: &Statement, ctx: &SessionContext) -> PgWireResult<LogicalPlan> {
    let plan = ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(statement.clone())))
        .await
        .and_then(type_limit_parameters)
        .map_err(api)?;
    verify(&plan)?;
    Ok(plan)
}

/// The plan check as a query hook.
#[derive(Debug)]
pub struct ReadOnly;

#[async_trait]
impl QueryHook for ReadOnly {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        let run = async {
            let plan = plan(statement, ctx).await?;
            let df = ctx.execute_logical_plan(plan).await.map_err(api)?;
            let format = Arc::new(FormatOptions::from_client_metadata(client.metadata()));
            encode_dataframe(df, &Format::UnifiedText, Some(format))
                .await
                .map(Response::Query)
        };
        Some(run.await)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        ctx: &SessionContext,
        _: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        Some(plan(statement, ctx).await)
    }

    async fn handle_extended_query(
        &self,
        _: &Statement,
        plan: &LogicalPlan,
        _: &ParamValues,
        _: &SessionContext,
        _: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        // Checked again at execution: the portal's plan is what will run.
        verify(plan).err().map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn plans_that_write_are_refused_and_reads_pass() {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t AS VALUES (1)").await.unwrap();
        let parse = |sql: &str| {
            datafusion::sql::sqlparser::parser::Parser::parse_sql(
                &datafusion::sql::sqlparser::dialect::PostgreSqlDialect {},
                sql,
            )
            .unwrap()
            .remove(0)
        };
        for sql in [
            "INSERT INTO t VALUES (2)",
            "CREATE TABLE u (a int)",
            "CREATE VIEW v AS SELECT 1",
            "DROP TABLE t",
            "EXPLAIN ANALYZE INSERT INTO t VALUES (3)",
            "SET datafusion.execution.batch_size = 1",
            "PREPARE p AS SELECT 1",
        ] {
            let e = plan(&parse(sql), &ctx).await.expect_err(sql);
            assert!(e.to_string().contains("read-only"), "{sql}: {e}");
        }
        plan(&parse("SELECT * FROM t"), &ctx).await.unwrap();
        plan(&parse("EXPLAIN SELECT * FROM t"), &ctx).await.unwrap();
        // Nothing above changed the table.
        let n = ctx.sql("SELECT count(*) FROM t").await.unwrap();
        let batches = n.collect().await.unwrap();
        assert_eq!(
            datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string()
                .matches("| 1 ")
                .count(),
            1
        );
    }
}
