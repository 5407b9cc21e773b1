//! Building models: plan everything first, then compute, audit and publish each model in DAG
//! order (write-audit-publish), skipping what sits downstream of a failure.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::job::{Finished, Job, ModelOutcome};
use super::plan::{Attached, attach_custom, plan_all};
use super::select::selected;
use super::spec::{Materialized, Model};
use super::{ModelError, dag, discover};
use crate::lake::runs::RunStatus;
use crate::lake::{Lake, TableName, ViewDef};

/// A build's outcome, in build order.
#[derive(Debug, Default)]
pub struct BuildReport {
    /// One entry per selected model.
    pub outcomes: Vec<ModelOutcome>,
}

impl BuildReport {
    /// Whether every model built (or tested) cleanly.
    pub fn ok(&self) -> bool {
        self.outcomes.iter().all(|o| o.status == RunStatus::Ok)
    }

    /// One line per model that failed or was skipped: `marts.x failed: why`.
    pub fn problems(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter(|o| o.status != RunStatus::Ok)
            .map(|o| {
                format!(
                    "{} {}: {}",
                    o.name,
                    o.status.as_str(),
                    o.message.as_deref().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// How a build runs.
#[derive(Debug, Clone)]
pub struct BuildOptions<'a> {
    /// Folder of models and tests.
    pub sql_dir: &'a Path,
    /// `--select`.
    pub selector: Option<&'a str>,
    /// Plan only.
    pub dry_run: bool,
    /// Audit what is published instead of building.
    pub test_only: bool,
    /// Day freshness tests measure from.
    pub reference_date: chrono::NaiveDate,
    /// Rebuild incremental models from scratch.
    pub full_refresh: bool,
}

/// Registers the seeds in a session and returns every table a model may read there: the lake's
/// tables, the seeds and the views whose input exists.
pub(super) async fn readable(
    session: &crate::lake::QuerySession,
    views: &[ViewDef],
    sql_dir: &Path,
) -> Result<BTreeSet<TableName>, ModelError> {
    let mut existing: BTreeSet<TableName> = session.tables.iter().map(|(t, _)| t.clone()).collect();
    existing.extend(super::seeds::register_seeds(&session.ctx, sql_dir).await?);
    existing.extend(
        views
            .iter()
            .filter(|v| existing.contains(&v.requires))
            .map(|v| v.name.clone())
            .collect::<Vec<_>>(),
    );
    Ok(existing)
}

/// Builds (or, with `test_only`, only audits the published) models.
pub async fn build(
    lake: &Lake,
    views: &[ViewDef],
    options: &BuildOptions<'_>,
) -> Result<BuildReport, ModelError> {
    let clock = Instant::now();
    let (models, custom) = discover(options.sql_dir)?;
    let session = lake.session(None, views).await?;
    let opened_s = clock.elapsed().as_secs_f64();
    let existing = readable(&session, views, options.sql_dir).await?;
    let models = selected(models, &existing, options.sql_dir, options.selector)?;
    let order = dag::order(&models, &existing)?;
    let ctx = session.ctx.clone();
    let read = super::added::versions(&session.tables);
    let mut schemas = plan_all(&ctx, &models, &order, &existing, options.test_only).await?;
    let planned_s = clock.elapsed().as_secs_f64() - opened_s;
    let attached = attach_custom(&custom, &models, &order)?;
    let mut report = BuildReport::default();
    if options.dry_run {
        report.outcomes = order
            .iter()
            .map(|(i, _)| ModelOutcome::planned(&models[*i]))
            .collect();
        return Ok(report);
    }
    let run_id = uuid::Uuid::new_v4().to_string();
    let kind = if options.test_only { "test" } else { "build" };
    // `test` reads them too: the unique keys each build proved on the version it published.
    let states = if options.full_refresh {
        HashMap::new()
    } else {
        lake.model_states().await?
    };
    tracing::debug!(
        opened_s,
        planned_s,
        states_s = clock.elapsed().as_secs_f64() - opened_s - planned_s,
        "build started: models found, session opened, models planned, states read"
    );
    // Models that do not read each other build at once; incremental ones one at a time (their
    // append and last-row queries bind fixed table names in the shared session).
    let upstream = upstream_of(&models, &order, &attached);
    let one_incremental = Arc::new(tokio::sync::Mutex::new(()));
    let width = std::thread::available_parallelism().map_or(1, |n| n.get());
    let finished = crate::parallel::run(
        &upstream,
        width,
        |p, done: &[Option<Finished>], release| {
            let (i, refs) = &order[p];
            let m = &models[*i];
            let failed_up = upstream[p]
                .iter()
                .filter_map(|&q| done[q].as_ref())
                .find(|up| up.outcome.status != RunStatus::Ok)
                .map(|up| up.outcome.name.clone());
            let job = Job {
                lake: lake.clone(),
                ctx: ctx.clone(),
                model: m.clone(),
                inputs: refs.clone(),
                custom: attached.get(i).cloned().unwrap_or_default(),
                reference: options.reference_date,
                read: read.clone(),
                // A model not in the lake yet, or a full refresh, builds from scratch.
                previous: (existing.contains(&m.name) && !options.full_refresh)
                    .then(|| states.get(&m.name.to_string()).cloned().unwrap_or_default()),
                planned: schemas.remove(i),
                test_only: options.test_only,
                lock: (m.materialized == Materialized::Incremental)
                    .then(|| one_incremental.clone()),
            };
            job.run(failed_up, run_id.clone(), kind, release)
        },
        |message| Finished::panicked(&run_id, kind, message),
    )
    .await;
    report.outcomes = record(lake, &models, &order, finished).await?;
    Ok(report)
}

/// For each model in build order, the positions of the models it waits for: those it reads, or
/// for a model carrying custom tests (`sql/tests/`) every model before it (a test may read models
/// that do not read each other, and sees each of them built).
fn upstream_of(
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    attached: &Attached,
) -> Vec<Vec<usize>> {
    let position: HashMap<&TableName, usize> = order
        .iter()
        .enumerate()
        .map(|(p, (i, _))| (&models[*i].name, p))
        .collect();
    order
        .iter()
        .enumerate()
        .map(|(p, (i, refs))| {
            if attached.contains_key(i) {
                (0..p).collect()
            } else {
                refs.iter()
                    .filter_map(|r| position.get(r).copied())
                    .collect()
            }
        })
        .collect()
}

/// Records what each model's build left (its state and its `meta.runs` row) and returns the
/// outcomes in build order.
async fn record(
    lake: &Lake,
    models: &[Model],
    order: &[(usize, Vec<TableName>)],
    finished: Vec<Finished>,
) -> Result<Vec<ModelOutcome>, ModelError> {
    let mut built_states = Vec::new();
    let mut records = Vec::new();
    let mut outcomes = Vec::new();
    for (p, mut f) in finished.into_iter().enumerate() {
        // A panic's outcome knows no name: the node's model.
        f.outcome.name = models[order[p].0].name.clone();
        f.record.target = Some(f.outcome.name.to_string());
        built_states.extend(f.state.map(|s| (f.outcome.name.clone(), s)));
        records.push(f.record);
        outcomes.push(f.outcome);
    }
    // Two tables, two commits: side by side.
    tokio::try_join!(
        lake.set_model_states(&built_states),
        lake.record_runs(&records)
    )?;
    Ok(outcomes)
}
