//! Planning every model before anything is written: SQL and planning errors stop the build
//! with the model's file and line.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::SchemaError;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::ModelError;
use super::dag::{self, line_of};
use super::session::register;
use super::spec::Model;
use crate::lake::TableName;

/// A model's SQL failed to plan or run: the error with the model's file and the line DataFusion
/// points at (its diagnostic's span, else the line of the unknown column it names).
pub(super) fn planning_error(model: &Model, e: &DataFusionError) -> ModelError {
    let line = e
        .diagnostic()
        .and_then(|d| d.span)
        .map(|span| span.start.line as usize)
        .filter(|line| *line > 0)
        .or_else(|| match e.find_root() {
            DataFusionError::SchemaError(schema, _) => match schema.as_ref() {
                SchemaError::FieldNotFound { field, .. } => Some(line_of(&model.sql, &field.name)),
                _ => None,
            },
            _ => None,
        })
        .unwrap_or(1);
    ModelError::Invalid {
        path: model.path.clone(),
        line,
        message: format!("DataFusion: {e}"),
    }
}

/// Custom tests (`sql/tests/*.sql`) by the index of the model they attach to.
pub(super) type Attached = BTreeMap<usize, Vec<(std::path::PathBuf, String)>>;

/// Plans every model in `order` (downstream ones against their upstreams' plans), and each
/// append query: SQL and planning errors stop the build before anything is written. Returns the
/// schema each model's SQL planned to, by position in `models`.
pub(super) async fn plan_all(
    ctx: &SessionContext,
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    existing: &BTreeSet<TableName>,
    test_only: bool,
) -> Result<HashMap<usize, SchemaRef>, ModelError> {
    // Every model stored (a nightly build): each plans against stored tables only, so they plan
    // side by side, a task each (a mart's SQL takes up to ~40 ms of CPU to plan); else in order,
    // downstream ones against the views of the new upstream ones.
    let (mut planned, mut schemas) = (HashMap::new(), HashMap::new());
    if order
        .iter()
        .all(|(i, _)| existing.contains(&models[*i].name))
    {
        let tasks: Vec<_> = order
            .iter()
            .map(|(i, _)| {
                let (ctx, sql) = (ctx.clone(), models[*i].sql.clone());
                (*i, tokio::spawn(async move { ctx.sql(&sql).await }))
            })
            .collect();
        for (i, task) in tasks {
            let plan = task
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            planned.insert(i, plan);
        }
    }
    for (i, _) in order {
        let m = &models[*i];
        let plan = match planned.remove(i) {
            Some(plan) => plan,
            None => ctx.sql(&m.sql).await,
        };
        let plan = plan.map_err(|e| planning_error(m, &e))?;
        schemas.insert(*i, plan.schema().inner().clone());
        if existing.contains(&m.name) {
            // Tests read the published table; its append query is not run.
            if test_only {
                continue;
            }
        } else {
            register(ctx, &m.name, plan.clone().into_view()).map_err(|e| planning_error(m, &e))?;
        }
        // The append query plans against the model (stored, or as just planned).
        if let Some(a) = &m.append {
            super::append::plan(ctx, a, &m.partition_by, plan.schema().inner())
                .await
                .map_err(|message| ModelError::Invalid {
                    path: a.path.clone(),
                    line: 1,
                    message,
                })?;
        }
    }
    Ok(schemas)
}

/// Attaches each custom test to the last model (in build order) it references.
pub(super) fn attach_custom(
    custom: &[(std::path::PathBuf, String)],
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
) -> Result<Attached, ModelError> {
    let mut attached = Attached::new();
    for (path, sql) in custom {
        let probe = Model::parse(TableName::marts("custom_test"), path, sql)?;
        let refs = dag::references(&probe)?;
        if let Some((i, _)) = order
            .iter()
            .rev()
            .find(|(i, _)| refs.contains(&models[*i].name))
        {
            attached
                .entry(*i)
                .or_default()
                .push((path.clone(), sql.clone()));
        }
    }
    Ok(attached)
}
